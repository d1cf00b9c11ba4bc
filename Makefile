# Duplex: `make run` starts the demo and its browser app, `make test` runs every test.
GO        ?= go
BIN       ?= bin/duplex
export CGO_ENABLED = 1
SHELL     := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all build app run test prereqs test-e2e peers vet fmt-check unit fuzz-short race figures hostile test-frontend test-browser bench bench-cluster bench-micro clean

all: build

# The binary embeds the browser app (frontend/dist, built from frontend/app).
# Without Node.js the Go code still builds and embeds a placeholder page.
# `duplex version` names the commit (the toolchain records none in a git worktree).
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
build: app
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o $(BIN) ./cmd/duplex

APP     := frontend/app
APP_SRC := $(shell find $(APP)/src $(APP)/public $(APP)/index.html $(APP)/vite.config.ts $(APP)/tsconfig.json $(APP)/package.json -type f 2>/dev/null)

app: frontend/dist/index.html

# npm ci again only when the lock file changed.
$(APP)/node_modules/.package-lock.json: $(APP)/package-lock.json
	cd $(APP) && npm ci --no-audit --no-fund

frontend/dist/index.html: $(APP)/node_modules/.package-lock.json $(APP_SRC)
	cd $(APP) && npm run build

# The demo: two SQLite databases in ./duplex-demo, a connection from the
# support-escalation template, the API and the app on http://127.0.0.1:8080.
# A second run continues the demo; `make run DEMO_FLAGS=--reset` starts fresh.
run: build
	./$(BIN) demo $(DEMO_FLAGS)

# Every test. PostgreSQL and MariaDB tests run when DUPLEX_TEST_POSTGRES and
# DUPLEX_TEST_MYSQL are set (.ci/run sets both) and say why they skip otherwise.
# The end-to-end part installs Redmine and Request Tracker from Debian's
# packages on first use (root, about 3 minutes), so it runs last.
#
# A new stage is one more target named in TEST_STAGES. Every stage runs even
# when an earlier one failed; the run ends with a table of the stages (result
# and seconds) and fails when any stage failed, naming them, so one run shows
# everything. `make test TEST_STAGES="vet unit"` runs a subset the same way.
TEST_STAGES := fmt-check vet unit race figures hostile test-frontend test-browser test-e2e

test: prereqs
	@failed=(); table=""; \
	for s in $(TEST_STAGES); do \
	  echo "=== make $$s"; start=$$SECONDS; \
	  if $(MAKE) --no-print-directory $$s; then r=ok; else r=FAILED; failed+=("$$s"); fi; \
	  table+=$$(printf '  %-16s %-7s %5ds' "$$s" "$$r" $$((SECONDS - start)))$$'\n'; \
	done; \
	echo; echo "=== make test: $(words $(TEST_STAGES)) stages"; printf '%s' "$$table"; \
	if [ $${#failed[@]} -gt 0 ]; then echo "make test FAILED: $${failed[*]}"; exit 1; fi; \
	echo "make test: all stages passed"

# What the stages need, checked in the first seconds rather than minutes in,
# each missing piece with the command that installs it (Debian).
prereqs:
	@missing=0; \
	command -v $(GO) >/dev/null || { echo "missing: Go $$(sed -n 's/^go //p' go.mod) (go.mod): install it and put its bin/ on PATH"; missing=1; }; \
	command -v $${CC:-gcc} >/dev/null || { echo "missing: a C compiler for the cgo SQLite driver: apt-get install -y gcc"; missing=1; }; \
	command -v sqlite3 >/dev/null || { echo "missing: the sqlite3 command (browser tests edit demo tickets with it): apt-get install -y sqlite3"; missing=1; }; \
	test -x $(CHROMIUM) || { echo "missing: Chromium at $(CHROMIUM) (browser tests): apt-get install -y chromium, or set CHROMIUM"; missing=1; }; \
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then echo "missing: Node.js ^20.19 or >= 22.12 with npm (Vite builds the app): apt-get install -y nodejs npm"; missing=1; \
	elif ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)'; then \
	  echo "Node.js $$(node --version) is too old: Vite needs ^20.19 or >= 22.12"; missing=1; fi; \
	exit $$missing

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# -short skips only the crash run here; `figures` runs it, verbosely.
unit:
	$(GO) test -count=1 -short ./...

# Each fuzz target over outside input, briefly (FUZZTIME each; the first run
# compiles the instrumented packages, which takes minutes). Not a stage of
# `make test` yet: run it after changing a parser.
FUZZTIME ?= 5s
FUZZ_TARGETS := ./scripts:FuzzImportArchive ./connectors/pollwindow:FuzzParse ./connectors/httpconn:FuzzWebhook \
	./connectors/github:FuzzWebhook ./connectors/jira:FuzzWebhook ./connectors/jira:FuzzADF
fuzz-short:
	@for x in $(FUZZ_TARGETS); do \
	  echo "== $${x#*:} ($${x%%:*})"; \
	  $(GO) test -run '^$$' -fuzz "^$${x#*:}$$" -fuzztime $(FUZZTIME) $${x%%:*} || exit 1; \
	done

# The packages with goroutines and shared caches, again under the race detector.
race:
	$(GO) test -count=1 -race ./scripting/... ./engine/...

# The fault and crash runs again, verbosely, so their figures (changes sent,
# applied, duplicated, lost, looped) show in the output, and the webhook
# latency run (webhook received → applied on the other side, at 100 and
# 1,000 changes per second, bounded to 2 s of sending each), and the slow
# clients run (1,000 stalled clients on loopback, about 10 s; server/limits_test.go),
# and the peer link runs (two `duplex serve` on loopback; "peer faults:" is the
# fault proxy and SIGKILL run, test/peerlink).
figures:
	$(GO) test -count=1 -v -run 'TestHTTPFaults|TestKillNine|TestClusterKillAndStop|TestWebhookLatency|TestSlowClientsLoad|TestTwoDeploymentsSyncBothWays|TestFaultsAndKills|TestDemoPeers' ./engine/ ./test/crash/ ./test/hookload/ ./server/ ./test/peerlink/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|faults:|crash:|cluster:|hooks:|slow clients:|_test.go'

# The hostile-script suite (test/hostile, issue 23): every attack through the
# test run and saved on an active connection of the real binary, each in its
# own `duplex demo` on loopback; prints the figures (worst /livez, RSS, the
# other connection's sync time, time to quarantine). Bounded: about 2 min.
hostile:
	$(GO) test -count=1 -v -timeout 15m ./test/hostile/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS|panic)|hostile:|_test.go'

# Redmine, Request Tracker and Tryton on loopback (ports 3100, 3200, 3300), installed
# from Debian's packages on first use; see test/e2e/peers/.
peers:
	test/e2e/peers/redmine.sh install
	test/e2e/peers/redmine.sh start
	test/e2e/peers/rt.sh install
	test/e2e/peers/rt.sh start
	test/e2e/peers/tryton.sh install
	test/e2e/peers/tryton.sh start

# The connectors and the escalation template against the real servers, with
# their figures (latency, requests per change); the servers stop afterwards.
test-e2e: peers
	eval "$$(test/e2e/peers/redmine.sh env)"; eval "$$(test/e2e/peers/rt.sh env)"; eval "$$(test/e2e/peers/tryton.sh env)"; \
	status=0; $(GO) test -p 1 -count=1 -v -timeout 30m ./connectors/redmine/ ./connectors/rt/ ./connectors/tryton/ ./test/e2e/ \
	  | grep -E '^(--- |ok|FAIL|PASS|panic)|e2e:|_test.go' || status=$$?; \
	test/e2e/peers/tryton.sh stop; test/e2e/peers/rt.sh stop; test/e2e/peers/redmine.sh stop; exit $$status

# The app's logic (routes, diff, markers, activity) under Vitest, and the
# README's bundle table against the build (so it builds the app first).
test-frontend: app
	cd $(APP) && npm test

# The app in Debian's Chromium (playwright-core) against bin/duplex running
# `duplex demo` on a free loopback port; screenshots in frontend/app/test-output.
CHROMIUM ?= /usr/bin/chromium
test-browser: build
	@test -x $(CHROMIUM) || { echo "test-browser needs Chromium at $(CHROMIUM): apt-get install -y chromium (or set CHROMIUM)"; exit 1; }
	@command -v sqlite3 >/dev/null || { echo "test-browser needs the sqlite3 command (it edits a demo ticket): apt-get install -y sqlite3"; exit 1; }
	cd $(APP) && CHROMIUM=$(CHROMIUM) DUPLEX_BIN=$(CURDIR)/$(BIN) npm run test:browser

# The end-to-end benchmark (docs/performance.md): the floor server and
# `duplex serve` under the same webhook load (16 connections, BENCH_DUR per
# phase), then a backfill of 100,000 entities; loopback only, bounded. Not
# part of `make test`. The micro-benchmarks stay under bench-micro.
BENCH_DUR   ?= 10s
BENCH_FLAGS ?=
bench:
	$(GO) build -o bin/bench/duplex ./cmd/duplex
	$(GO) build -o bin/bench/floor ./bench/floor
	$(GO) build -o bin/bench/load ./bench/load
	./bin/bench/load -duplex bin/bench/duplex -floor bin/bench/floor -dur $(BENCH_DUR) $(BENCH_FLAGS)

# Scale-out: the demo connection with 3,000 waiting tickets, run by one
# process on SQLite and by 1, 2 and 3 processes sharing PostgreSQL, in the
# same run (needs DUPLEX_TEST_POSTGRES; docs/operations.md has the figures).
bench-cluster:
	DUPLEX_BENCH_CLUSTER=1 $(GO) test -count=1 -v -timeout 20m -run TestClusterThroughput ./test/crash/ | grep -E '^(--- |ok|FAIL)|cluster bench:'

bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./scripting/ ./scripting/sandbox/ ./connectors/sqlconn/

clean:
	rm -rf bin duplex-demo $(APP)/test-output
	find frontend/dist -mindepth 1 ! -name .keep -delete

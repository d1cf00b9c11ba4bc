# Duplex: `make run` starts the demo, `make test` runs every test.
GO        ?= go
BIN       ?= bin/duplex
export CGO_ENABLED = 1
SHELL     := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all build run test test-e2e peers vet fmt-check unit race figures bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/duplex

# The demo: two SQLite databases in ./duplex-demo, a connection from the
# support-escalation template, the API and page on http://127.0.0.1:8080.
run: build
	./$(BIN) demo

# Every test. PostgreSQL and MariaDB tests run when DUPLEX_TEST_POSTGRES and
# DUPLEX_TEST_MYSQL are set (.ci/run sets both) and say why they skip otherwise.
# The end-to-end part installs Redmine and Request Tracker from Debian's
# packages on first use (root, about 3 minutes), so it runs last.
test: fmt-check vet unit race figures test-e2e

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# -short skips only the crash run here; `figures` runs it, verbosely.
unit:
	$(GO) test -count=1 -short ./...

# The packages with goroutines and shared caches, again under the race detector.
race:
	$(GO) test -count=1 -race ./scripting/ ./engine/...

# The fault and crash runs again, verbosely, so their figures (changes sent,
# applied, duplicated, lost, looped) show in the output, and the webhook
# latency run (webhook received → applied on the other side, at 100 and
# 1,000 changes per second, bounded to 2 s of sending each).
figures:
	$(GO) test -count=1 -v -run 'TestHTTPFaults|TestKillNine|TestWebhookLatency' ./engine/ ./test/crash/ ./test/hookload/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|faults:|crash:|hooks:|_test.go'

# Redmine and Request Tracker on loopback (ports 3100 and 3200), installed
# from Debian's packages on first use; see test/e2e/peers/.
peers:
	test/e2e/peers/redmine.sh install
	test/e2e/peers/redmine.sh start
	test/e2e/peers/rt.sh install
	test/e2e/peers/rt.sh start

# The connectors and the escalation template against the real servers, with
# their figures (latency, requests per change); the servers stop afterwards.
test-e2e: peers
	eval "$$(test/e2e/peers/redmine.sh env)"; eval "$$(test/e2e/peers/rt.sh env)"; \
	status=0; $(GO) test -count=1 -v -timeout 30m ./connectors/redmine/ ./connectors/rt/ ./test/e2e/ \
	  | grep -E '^(--- |ok|FAIL|PASS|panic)|e2e:|_test.go' || status=$$?; \
	test/e2e/peers/rt.sh stop; test/e2e/peers/redmine.sh stop; exit $$status

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./scripting/ ./connectors/sqlconn/

clean:
	rm -rf bin duplex-demo

# Duplex: `make run` starts the demo, `make test` runs every test.
GO        ?= go
BIN       ?= bin/duplex
export CGO_ENABLED = 1
SHELL     := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all build run test vet fmt-check unit race figures bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/duplex

# The demo: two SQLite databases in ./duplex-demo, a connection from the
# support-escalation template, the API and page on http://127.0.0.1:8080.
run: build
	./$(BIN) demo

# Every test. PostgreSQL and MariaDB tests run when DUPLEX_TEST_POSTGRES and
# DUPLEX_TEST_MYSQL are set (.ci/run sets both) and say why they skip otherwise.
test: fmt-check vet unit race figures

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
# applied, duplicated, lost, looped) show in the output.
figures:
	$(GO) test -count=1 -v -run 'TestHTTPFaults|TestKillNine' ./engine/ ./test/crash/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|faults:|crash:|_test.go'

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./scripting/ ./connectors/sqlconn/

clean:
	rm -rf bin duplex-demo

# Every build, vet and test uses the goolm tag (pure-Go Matrix encryption).
GO      ?= go
TAGS    := goolm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

RELEASE_TARGETS := linux/amd64 linux/arm64 linux/armv7 darwin/arm64 darwin/amd64 windows/amd64

.PHONY: build release test deps fmt-check vet staticcheck unit fuzz bench bench-store bench-takeover bench-short bench-sse crash crash-runs crash-short soak demo sim readme clean

# A static binary: no cgo.
build:
	CGO_ENABLED=0 $(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o herald ./cmd/herald

# Static binaries for every platform Herald is released for (linux/armv7
# is the Raspberry Pi's 32-bit ARM), named herald-VERSION-OS-ARCH, into
# dist/ with their SHA256SUMS (sha256sum -c reads it).
release:
	rm -rf dist && mkdir dist
	set -e; for target in $(RELEASE_TARGETS); do \
		os=$${target%/*}; arch=$${target#*/}; goarch=$$arch; goarm=; ext=; \
		if [ $$arch = armv7 ]; then goarch=arm; goarm=7; fi; \
		if [ $$os = windows ]; then ext=.exe; fi; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$goarch GOARM=$$goarm $(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' \
			-o dist/herald-$(VERSION)-$$os-$$arch$$ext ./cmd/herald; \
	done
	cd dist && sha256sum herald-* > SHA256SUMS

# The whole check CI runs: what the tests need (.ci/deps: chromium, npm,
# Dendrite, PostgreSQL), formatting, vet, staticcheck, and the tests with the race
# detector (which needs cgo for its runtime; the code itself stays pure Go).
test: deps fmt-check vet staticcheck unit

deps:
	.ci/deps

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags $(TAGS) ./...

# staticcheck's version is pinned in go.mod (a tool directive).
staticcheck:
	$(GO) tool staticcheck -tags $(TAGS) ./...

unit:
	PATH="$$(.ci/dendrite.sh):$$PATH" HERALD_TEST_DATABASE_URL="$$(.ci/postgres.sh)" CGO_ENABLED=1 $(GO) test -race -tags $(TAGS) -count=1 ./...

# Short fuzzing runs beyond the committed seed corpora. FUZZTIME is a
# duration or an execution count (20000x, as CI runs it: see .ci/run).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME) ./internal/sse/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzSplit -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/format/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzStripThinking -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/format/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz 'FuzzGrowingHTML$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/format/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzGrowingHTMLLines -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/format/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzPlainParagraph -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/format/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDecodeMatchesEncodingJSON -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/agent/completions/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzDotenv -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/config/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzIdentityHeaders -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/agent/hermes/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzSummary -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/agent/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzClient -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/httpserve/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzRenderHTML -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/platform/telegram/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzRender -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/platform/slack/
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzPost -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/deliver/

# The crash run: the real binary killed 100 times over 400 messages (see
# test/crash); it prints what became of every message.
crash:
	$(GO) test -tags $(TAGS) -count=1 -v -timeout 30m -run TestCrash ./test/crash/ -crash.kills=100 -crash.messages=400

# The crash run against an agent server that serves runs (/v1/runs, its
# events consumed once as on the Hermes API server).
crash-runs:
	$(GO) test -tags $(TAGS) -count=1 -v -timeout 30m -run TestCrash ./test/crash/ -crash.kills=100 -crash.messages=400 -crash.runs

# The crash run as CI runs it on every change: 10 kills over 40 messages,
# every one inside a platform call (after the platform applied it), the
# windows a kill at random almost never finds. It fails on a message
# answered twice; what Telegram's sends without an idempotency key leave
# (see test/crash) is reported.
crash-short:
	$(GO) test -tags $(TAGS) -count=1 -v -timeout 10m -run TestCrash ./test/crash/ -crash.kills=10 -crash.messages=40 -crash.incall=1 -crash.shutdown=0 -crash.strict=false

# The soak: 20,000 turns through Telegram and the web chat against the
# binary, with its RSS, goroutines and open files sampled (test/crash).
soak:
	$(GO) test -tags $(TAGS) -count=1 -v -timeout 60m -run TestSoak ./test/crash/ -soak.turns=20000 -soak.rate=40

# End-to-end benchmarks (some minutes): bench/results/report.md and latency.svg/.png.
bench: bench-store bench-takeover
	$(GO) run -tags $(TAGS) ./bench

# The stores' journal under the gateway's load, SQLite beside PostgreSQL:
# write p50/p99 and turns a second at 1,000 conversations.
bench-store:
	HERALD_TEST_DATABASE_URL="$$(.ci/postgres.sh)" $(GO) test -tags $(TAGS) -run '^$$' -bench Journal -benchtime 3s ./internal/store/sqlite/ ./internal/store/postgres/

# Two replicas on PostgreSQL, the holder killed with -9 20 times: how soon
# the other is ready (p50, longest) with the lease TTL at 2 s.
bench-takeover:
	HERALD_TEST_DATABASE_URL="$$(.ci/postgres.sh)" $(GO) test -tags $(TAGS) -count=1 -v -run TestTakeoverTimes ./test/crash/ -replicas.takeovers=20

# The same with small counts, as CI runs it; the report goes to a temporary directory.
bench-short: build
	$(GO) run -tags $(TAGS) ./bench -short -herald ./herald -out $$(mktemp -d)

# The SSE reader against openai-go's decoder, as a Go micro-benchmark.
bench-sse:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem ./internal/sse/

# The demo: the gateway with its web chat, relaying to the simulator.
demo: build
	./herald demo

# Rewrites the README's tables of settings from the registry.
readme:
	$(GO) test -tags $(TAGS) -run TestReadmeTablesAreGenerated ./cmd/herald -update

# The Hermes API simulator on its default address.
sim: build
	./herald sim

clean:
	rm -f herald

# Every build, vet and test uses the goolm tag (pure-Go Matrix encryption).
GO      ?= go
TAGS    := goolm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build test fmt-check vet unit fuzz bench sim clean

# A static binary: no cgo.
build:
	CGO_ENABLED=0 $(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o herald ./cmd/herald

# The whole check CI runs: formatting, vet, and the tests with the race
# detector (which needs cgo for its runtime; the code itself stays pure Go).
test: fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags $(TAGS) ./...

unit:
	CGO_ENABLED=1 $(GO) test -race -tags $(TAGS) -count=1 ./...

# A short fuzzing run of the SSE reader beyond its committed seed corpus.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME) ./internal/sse/

bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem ./internal/sse/

# The Hermes API simulator on its default address.
sim: build
	./herald sim

clean:
	rm -f herald

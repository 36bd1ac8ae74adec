# kemu: run Linux kernel modules on an emulated x86-64 machine.
# `make demo` and `make test` install what they need (scripts/install-deps) and are what README promises.

GO      ?= go
BIN     := bin/kemu
export CGO_ENABLED := 1

.PHONY: all deps build demo test vet unit fuzz bench fixtures corpus-fetch clean

all: build

deps:
	@scripts/install-deps build

build: deps
	$(GO) build -o $(BIN) ./cmd/kemu

demo: build
	$(BIN) demo

vet: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...

# Every test, the Debian-corpus tests included (they fetch the corpus into ~/.cache/kemu themselves), and
# the run of all 4023 Debian modules' init and exit (KEMU_DEBIAN_ALL, about 4 minutes on 2 cores).
test: deps vet
	KEMU_DEBIAN_ALL=1 $(GO) test -count=1 -timeout 60m ./...

# Short tests only: no corpus download.
unit: deps
	$(GO) test -short -count=1 ./...

fuzz: deps
	$(GO) test ./loader -run '^$$' -fuzz FuzzLoad -fuzztime $${FUZZTIME:-60s}

# Benchmarks against kmod, bare Unicorn and decode_stacktrace.sh (installs linux-source-6.1 for the latter).
bench:
	@scripts/install-deps bench
	$(GO) test ./bench/... -run '^$$' -bench . -benchtime $${BENCHTIME:-1x}

# Rebuild the fixture modules with Debian's kernel build system (installs linux-headers-amd64).
fixtures:
	@scripts/install-deps fixtures
	scripts/build-fixtures

# Download and extract Debian's current kernel packages and write their profile.
corpus-fetch: deps
	scripts/fetch-debian-kernel

clean:
	rm -rf bin

# The two commands a newcomer runs: `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test lint bench build

## Build every binary: the emulator, the example functions and the test fixtures.
build:
	$(CARGO) build --workspace --bins

## Start the emulator with the example functions, invoke them for real, shut down.
run: build
	$(CARGO) run --quiet -p ironlambda-integration-tests --bin tour

## All tests: unit, doc and end-to-end (the end-to-end tests use the binaries built above).
test: build
	$(CARGO) test --workspace

## Formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Benchmarks against the reference runtime (not written yet: see the open benchmark issue).
bench:
	@echo "make bench: no benchmarks yet; the harness is tracked as its own issue."

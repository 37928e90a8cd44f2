# The two commands a newcomer runs: `make run` and `make test`.
CARGO ?= cargo

RUNTIME ?= provided.al2023

# Where cargo puts what it builds (CARGO_TARGET_DIR, or the workspace's target/): asked of
# cargo, never assumed. Evaluated only by the targets that use it.
TARGET_DIR = $(shell $(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

.PHONY: run test lint bench build package fuzz

FUZZ_TARGETS = http1_framing next_headers telemetry_batch invoke_name
FUZZ_SECONDS ?= 60

## Build every binary: the emulator, the example functions and the test fixtures.
build:
	$(CARGO) build --workspace --bins

## Start the emulator with the example functions, invoke them for real, shut down.
run: build
	$(CARGO) run --quiet -p ironlambda-integration-tests --bin tour

## All tests: unit, doc and end-to-end (the end-to-end tests use the binaries built above).
test: build
	@command -v curl >/dev/null 2>&1 || echo "note: curl is not installed, so the curl client test of the Function URL front door is skipped (apt-get install curl runs it)"
	@command -v go >/dev/null 2>&1 || echo "note: Go is not installed, so the Go net/http Runtime API test is skipped (apt-get install golang-go runs it)"
	@python3 -c 'import boto3' >/dev/null 2>&1 || echo "note: boto3 is not installed, so the boto3 streaming test is skipped (pip install boto3 runs it)"
	@$(CARGO) zigbuild --help >/dev/null 2>&1 || echo "note: cargo-zigbuild is not installed, so the provided.al2 packaging test only checks its advice (pip install ziglang cargo-zigbuild runs it)"
	$(if $(shell command -v go),,IRONLAMBDA_SKIP_GO=1) $(CARGO) test --workspace
	# Optional features with tests of their own.
	$(CARGO) test -p ironlambda-runtime --features sonic --lib sonic_tests

## Deployable zips of the examples under <cargo target dir>/lambda/$(RUNTIME)/<target>/:
## functions (bootstrap) and layers (extensions/<name>), through `cargo ironlambda package`,
## refused when a binary needs a newer glibc than $(RUNTIME) has.
package:
	$(CARGO) build --quiet -p cargo-ironlambda
	cd examples && $(TARGET_DIR)/debug/cargo-ironlambda ironlambda package --release --runtime $(RUNTIME)

## Formatting, clippy and the API docs, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p ironlambda-runtime --all-targets --features sonic -- -D warnings
	# The API docs build without a broken link or a stray tag.
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p ironlambda-runtime --features sonic --no-deps

## Benchmarks: ironlambda vs the reference lambda_runtime (and a hand-written floor), side by
## side in one run; writes BENCHMARKS.md.
bench:
	$(CARGO) build --release -p ironlambda-benchmarks --bins --examples
	# Apart, so cargo builds them as a user's crate would (see benchmarks/subjects/src/lib.rs).
	$(CARGO) build --release -p ironlambda-bench-subjects --examples
	$(CARGO) build --release --manifest-path benchmarks/subjects-sonic/Cargo.toml --target-dir $(TARGET_DIR) --examples
	$(TARGET_DIR)/release/bench --runs $(or $(RUNS),5) --out BENCHMARKS.md
	benchmarks/release-profiles.sh >> BENCHMARKS.md

## Fuzz every reader of untrusted bytes for FUZZ_SECONDS each (cargo install cargo-fuzz
## first). cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets a stable toolchain take
## them. Findings land in fuzz/artifacts/<target>/.
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 || exit 1; \
	done

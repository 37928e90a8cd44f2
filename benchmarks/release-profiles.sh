#!/usr/bin/env bash
# Appends to stdout a Markdown section measuring the release profile: the echo function on
# ironlambda built with several profiles, its stripped size, and the instructions it runs
# per tiny invocation (callgrind, through `bench --profile`: repeatable on a noisy machine).
# Used by `make bench`; needs valgrind and the release `bench` binary and examples.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo builds (CARGO_TARGET_DIR or the workspace's target/): ask cargo, never assume.
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if ! command -v valgrind >/dev/null 2>&1; then
  echo; echo "(release-profile section skipped: valgrind is not installed)"; exit 0
fi
echo
echo "## Instructions per invocation (repeatable)"
echo
echo "CPU time above swings by ±10% between runs on this machine because most of it is the"
echo "kernel's loopback TCP and cross-core wake-up work. Instruction counts of the function's"
echo "own code (callgrind, 5,000 tiny invocations, \`bench --profile tiny\`) repeat to within a"
echo "fraction of a percent:"
echo
cg=$(mktemp -d)
"$target/release/bench" --profile tiny -- valgrind --tool=callgrind --callgrind-out-file="$cg/cg-%p.out" >/dev/null 2>&1
count() { local f; f=$(grep -l "examples/$1\$" "$cg"/cg-*.out | head -1); echo $(( $(grep -m1 '^summary:' "$f" | awk '{print $2}') / 5000 )); }
ours=$(count echo_ironlambda); reference=$(count echo_reference); floor=$(count echo_floor)
echo "| ironlambda | reference | ours / reference | floor |"
echo "|---:|---:|---:|---:|"
echo "| $ours | $reference | $(awk "BEGIN { printf \"%.2f×\", $ours / $reference }") | $floor |"
rm -rf "$cg"

echo
echo "## Release profile"
echo
echo "The echo function built with each profile (stripped), on ironlambda and on the reference"
echo "\`lambda_runtime\`, and the same for the axum Router behind \`ironlambda-http\` and"
echo "\`lambda_http\`; instructions per tiny invocation of ours from callgrind over 5,000"
echo "invocations (\`bench --profile tiny\`)."
echo
echo "| profile | echo: ours (bytes) | reference | ours / reference | HTTP: ours | reference | ours / reference | instructions / invocation |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
ratio() { awk "BEGIN { printf \"%.2f×\", $1 / $2 }"; }
variant() {
  local label=$1; shift
  local dir="$target/profile-variants/$(echo "$label" | tr -c 'a-z0-9' '-')"
  # Two builds: ours apart, as a user's crate builds it (see benchmarks/subjects/src/lib.rs).
  env "$@" CARGO_PROFILE_RELEASE_STRIP=true CARGO_TARGET_DIR="$dir" \
    cargo build -q --release -p ironlambda-benchmarks --example echo_reference \
      --example http_reference >&2
  env "$@" CARGO_PROFILE_RELEASE_STRIP=true CARGO_TARGET_DIR="$dir" \
    cargo build -q --release -p ironlambda-bench-subjects --example echo_ironlambda \
      --example http_ironlambda >&2
  mkdir -p "$dir/cmp"
  cp "$dir/release/examples/echo_ironlambda" "$dir/cmp/"
  ln -sf "$target/release/examples/echo_reference" "$dir/cmp/"
  ln -sf "$target/release/examples/echo_floor" "$dir/cmp/"
  local out; out=$(mktemp -d)
  "$target/release/bench" --examples "$dir/cmp" --profile tiny -- \
    valgrind --tool=callgrind --callgrind-out-file="$out/cg-%p.out" >/dev/null 2>&1
  local file; file=$(grep -l echo_ironlambda "$out"/cg-*.out | head -1)
  local ir; ir=$(grep -m1 '^summary:' "$file" | awk '{print $2}')
  local eo er ho hr
  eo=$(stat -c %s "$dir/release/examples/echo_ironlambda")
  er=$(stat -c %s "$dir/release/examples/echo_reference")
  ho=$(stat -c %s "$dir/release/examples/http_ironlambda")
  hr=$(stat -c %s "$dir/release/examples/http_reference")
  echo "| $label | $eo | $er | $(ratio "$eo" "$er") | $ho | $hr | $(ratio "$ho" "$hr") | $((ir / 5000)) |"
  rm -rf "$out"
}
variant "cargo's default release (opt-level 3, codegen-units 16, thin local LTO)" \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
variant "recommended: opt-level 3, lto = \"fat\", codegen-units 1, panic = \"unwind\"" \
  CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
variant "recommended with opt-level \"s\"" \
  CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_OPT_LEVEL=s
variant "recommended with opt-level \"z\"" \
  CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_OPT_LEVEL=z
echo
echo "\`panic = \"abort\"\` is not an option: a panicking handler must fail one invocation, not the"
echo "process, and catching the panic needs unwinding."

#!/usr/bin/env bash
# Appends to stdout a Markdown section measuring the release profile: the echo function on
# ironlambda built with several profiles, its stripped size, and the instructions it runs
# per tiny invocation (callgrind, through `bench --profile`: repeatable on a noisy machine),
# and the cold start of the echo functions linked statically.
# Used by `make bench`; needs valgrind and the release `bench` binary and examples, and
# cargo-bloat for the table of what each crate costs (skipped with a note without it).
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

echo
echo "## Static linking"
echo
echo "The echo functions built as static-pie binaries (\`-C target-feature=+crt-static\` with"
echo "\`--target\`, so that build scripts and proc macros stay dynamic), against the same"
echo "functions dynamically linked as above: spawn → first \`/next\`, each line from"
echo "\`bench --only \"cold start\" --runs 5\` (medians of 100 spawns per subject, interleaved)."
echo "A static binary skips the dynamic loader's work: mapping libc and libgcc_s, resolving"
echo "their symbols and running their initialisers."
echo
triple=$(rustc -vV | sed -n 's/^host: //p')
static_dir="$target/profile-variants/static"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$static_dir" \
  cargo build -q --release --target "$triple" -p ironlambda-benchmarks --example echo_reference \
    --example echo_floor >&2
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$static_dir" \
  cargo build -q --release --target "$triple" -p ironlambda-bench-subjects --example echo_ironlambda >&2
# Ours, the reference's and the floor's cold start (µs) for the subjects in directory $1;
# fails, and so stops the script, when bench does or writes no such row.
cold() {
  local out row; out=$(mktemp)
  "$target/release/bench" --examples "$1" --only "cold start" --runs 5 --out "$out" >/dev/null
  row=$(grep -m1 '^| cold start | spawn' "$out" | awk -F'|' '{ gsub(/ /, ""); print $4, $5, $7 }')
  rm -f "$out"
  [ -n "$row" ] || { echo "release-profiles.sh: no cold start row for $1" >&2; return 1; }
  echo "$row"
}
dynamic=$(cold "$target/release/examples")
static=$(cold "$static_dir/$triple/release/examples")
read -r dyn_ours dyn_ref dyn_floor <<<"$dynamic"
read -r st_ours st_ref st_floor <<<"$static"
echo "| linking | ours µs | reference µs | ours / reference | floor µs |"
echo "|---|---:|---:|---:|---:|"
echo "| dynamic (glibc, cargo's default) | $dyn_ours | $dyn_ref | $(ratio "$dyn_ours" "$dyn_ref") | $dyn_floor |"
echo "| static-pie (\`+crt-static\`) | $st_ours | $st_ref | $(ratio "$st_ours" "$st_ref") | $st_floor |"
echo "| static / dynamic | $(ratio "$st_ours" "$dyn_ours") | $(ratio "$st_ref" "$dyn_ref") | | $(ratio "$st_floor" "$dyn_floor") |"
echo
echo "Stripped size of ours, static: $(stat -c %s "$static_dir/$triple/release/examples/echo_ironlambda") bytes (glibc's static parts included)."

echo
echo "## What the echo binary is made of"
echo
if ! cargo bloat --version >/dev/null 2>&1; then
  echo "(skipped: cargo-bloat is not installed; \`cargo install cargo-bloat\` adds this table)"
  exit 0
fi
echo "\`cargo bloat --crates\` on the echo function on ironlambda, unstripped, with each profile:"
echo "KiB of \`.text\` per crate. Generic code counts where it is instantiated (much of tokio's"
echo "and serde's in \`ironlambda_runtime\`), so the figures are an approximation. \`std\` is"
echo "mostly the panic machinery and its backtrace symbolizer, which any Rust binary that"
echo "unwinds carries. What a typical function does not need is behind a feature, off by"
echo "default: \`sonic\` (sonic-rs), \`graceful-shutdown\` (the extension client), \`anyhow\`,"
echo "\`eyre\`; the JSON log format is our own, so \`tracing-subscriber\` is only its filter."
echo
bloat() {
  local dir="$target/profile-variants/bloat-$1"; shift
  env "$@" CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR="$dir" \
    cargo bloat -q --release -p ironlambda-bench-subjects --example echo_ironlambda \
      --crates -n 0 --message-format json 2>/dev/null
}
default_json=$(bloat default CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)
recommended_json=$(bloat recommended CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1)
python3 - "$default_json" "$recommended_json" <<'PY'
import json, sys
default, recommended = (json.loads(a) for a in sys.argv[1:3])
sizes = {}
for column, report in enumerate((default, recommended)):
    for c in report["crates"]:
        sizes.setdefault(c["name"], [0, 0])[column] += c["size"]
rows = sorted(sizes.items(), key=lambda kv: -kv[1][1])
shown, rest = rows[:12], rows[12:]
kib = lambda b: f"{b / 1024:.0f}"
print("| crate | cargo's default release (KiB) | recommended (KiB) |")
print("|---|---:|---:|")
for name, (d, r) in shown:
    print(f"| {name} | {kib(d)} | {kib(r)} |")
print(f"| {len(rest)} others | {kib(sum(v[0] for _, v in rest))} | {kib(sum(v[1] for _, v in rest))} |")
print(f"| **.text** | {kib(default['text-section-size'])} | {kib(recommended['text-section-size'])} |")
PY

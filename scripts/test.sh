#!/usr/bin/env bash
# Every check, in the order CI runs them: install what is missing, formatting, lints (host and
# wasm32), the release page build, unit and integration tests, then the browser tests in
# headless Chromium. Screenshots go to target/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
step "clippy (host)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "clippy (wasm32 frontend)"
cargo clippy -p coreplay-frontend --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
step "the release page (scripts/page.sh)"
scripts/page.sh
step "the page carries no float formatting or parsing (shared/src/fixed.rs says why)"
# The unoptimised wasm keeps function names: one `{x:.1}` or `str::parse::<f64>` anywhere in the
# page brings back core's float code and its tables (~20 kB gzip).
if grep -aoE 'float_to_decimal[a-z_]*|dec2flt' target/wasm32-unknown-unknown/wasm-release/coreplay-frontend.wasm | sort -u | grep .; then
  echo "the page formats or parses f64 with core's code: use coreplay_shared::Fixed / whole-number parsing" >&2
  exit 1
fi
echo "none"
step "unit and integration tests"
cargo test --workspace --locked
step "the Python probe's own tests (python3, standard library)"
if command -v python3 >/dev/null; then
  python3 agent/src/watch/python/probe_test.py
else
  echo "skipped: no python3"
fi
step "fuzz the message decoders (short run, corpus in shared/tests/corpus)"
cargo test -p coreplay-shared --test fuzz --locked -- --test-threads=1 --nocapture 2>&1 | grep -oE "fuzz executions.*|test result.*"
step "robustness figures"
cargo test -p coreplay --test robustness --locked -- --nocapture --test-threads=1 2>&1 \
  | grep -oE "(clients held|peak RSS|run stopped|the stalled|flood of).*|test result.*"
step "browser tests (headless Chromium)"
cargo test -p coreplay --test browser --locked -- --ignored --test-threads=1
step "replay and embed in the browser (static host, gallery, iframe + postMessage)"
cargo test -p coreplay --test embed --locked -- --ignored --test-threads=1
step "the lessons in the browser (static host and live agent)"
cargo test -p coreplay --test learn --locked -- --ignored --test-threads=1
step "all checks passed"

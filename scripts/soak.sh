#!/usr/bin/env bash
# Runs the scheduling-sensitive tests again and again, first on a quiet machine, then beside a
# CPU hog that keeps one core busy, and prints each test's pass rate. Exits non-zero when any
# test passed less than every time. A flaky test is a bug: this is how we find them.
#
#   scripts/soak.sh            # 20 rounds each way
#   scripts/soak.sh 5          # 5 rounds each way
#   SOAK_BINARIES="watch" scripts/soak.sh 10   # only agent/tests/watch.rs
#   SOAK_BINARIES="browser embed" scripts/soak.sh 5   # the browser tests (after trunk build --release)
#
# Each round runs whole test binaries (agent/tests/{scenarios,server,watch,python_probe,robustness,other_load}.rs,
# and with SOAK_BROWSER=1 the browser, embed and learn tests too, which need `trunk build --release`
# first) as CI runs them: `cargo test --workspace` runs a binary's tests side by side (the test
# harness's default, one thread per CPU), scripts/test.sh runs the browser tests one at a time.
# Tests that share something (a folder, a port) only collide side by side, as CI found: two of
# server.rs's tests kept runs in one folder. Each test's result is read from the test harness's
# output, and a failure's message is printed as it happens.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

rounds="${1:-20}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/soak.sh [ROUNDS]" >&2; exit 2; }
binaries=()
ignored_binaries=()
# The browser and embed tests are #[ignore]d in `cargo test` (they need Chromium and dist/).
for b in ${SOAK_BINARIES:-scenarios server watch python_probe robustness other_load}; do
  case "$b" in
    browser | embed | learn) ignored_binaries+=("$b") ;;
    *) binaries+=("$b") ;;
  esac
done
if [[ "${SOAK_BROWSER:-0}" == 1 ]]; then
  ignored_binaries+=(browser embed learn)
fi

log() { printf '\033[1msoak:\033[0m %s\n' "$*" >&2; }

# Build once; find each test binary's path from cargo's own report.
declare -A path
[[ ${#ignored_binaries[@]} -gt 0 && ! -f dist/index.html ]] && {
  echo "soak: the browser tests need the page: run scripts/page.sh first" >&2
  exit 1
}
for b in "${binaries[@]}" "${ignored_binaries[@]}"; do
  p=$(cargo test -p coreplay --test "$b" --locked --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
  [[ -x "$p" ]] || { echo "soak: could not build the $b tests" >&2; exit 1; }
  path[$b]=$p
done

results=$(mktemp)
hog_pid=""
cleanup() {
  [[ -n "$hog_pid" ]] && kill "$hog_pid" 2>/dev/null || true
  rm -f "$results"
}
trap cleanup EXIT

# One round: every binary once; lines "MODE TEST ok|FAILED" into $results.
round() {
  local mode=$1 b args out log
  log=$(mktemp)
  for b in "${binaries[@]}" "${ignored_binaries[@]}"; do
    args=(--logfile "$log")
    [[ " ${ignored_binaries[*]} " == *" $b "* ]] && args+=(--ignored --test-threads=1)
    rm -f "$log"
    # The tests find the crate's files relative to the crate, as under cargo. The harness's
    # log file has one "ok NAME" or "failed NAME" line per test (its terminal output can be
    # interleaved with what a test's child processes print).
    out=$(cd agent && "${path[$b]}" "${args[@]}" 2>&1) || true
    if [[ -s "$log" ]]; then
      awk -v m="$mode" -v b="$b" \
        '$1 == "ok" { print m, b "::" $2, "ok" } $1 == "failed" { print m, b "::" $2, "FAILED" }' \
        "$log" >>"$results"
    else
      # A binary that ran no test (it did not start, or stopped before its first) is a
      # failure, not a silence.
      echo "$mode $b::(no test ran) FAILED" >>"$results"
      log "$mode: $b ran no test (its output ends:)"
      tail -5 <<<"$out" | cut -c1-400 >&2
    fi
    if grep -q FAILED <<<"$out"; then
      log "$mode: a failure in $b (round output follows)"
      grep -E -A2 'panicked at' <<<"$out" | cut -c1-400 | head -30 >&2
    fi
  done
  rm -f "$log"
}

start=$(date +%s)
for ((i = 1; i <= rounds; i++)); do
  log "quiet machine: round $i of $rounds"
  round quiet
done
# The hog: one busy loop, as another program on the machine would be.
sh -c 'while :; do :; done' &
hog_pid=$!
for ((i = 1; i <= rounds; i++)); do
  log "beside a CPU hog: round $i of $rounds"
  round hog
done
kill "$hog_pid" 2>/dev/null || true
hog_pid=""

printf '\n%-90s %10s %10s\n' "test" "quiet" "CPU hog"
fail=0
for t in $(awk '{print $2}' "$results" | sort -u); do
  cells=()
  for mode in quiet hog; do
    runs=$(awk -v m="$mode" -v t="$t" '$1 == m && $2 == t' "$results" | wc -l)
    ok=$(awk -v m="$mode" -v t="$t" '$1 == m && $2 == t && $3 == "ok"' "$results" | wc -l)
    cells+=("$ok/$runs")
    [[ "$ok" == "$runs" && "$runs" == "$rounds" ]] || fail=1
  done
  printf '%-90s %10s %10s\n' "$t" "${cells[0]}" "${cells[1]}"
done
printf '\n%s rounds each way in %d s on %s CPUs\n' "$rounds" "$(($(date +%s) - start))" "$(nproc)"
if [[ ! -s "$results" ]]; then
  # Nothing ran (a binary that printed no results, a harness log that was not written): that
  # is not "every test passed".
  echo "soak: no test result was recorded" >&2
  exit 1
fi
if ((fail)); then
  echo "soak: some test passed less than every time" >&2
  exit 1
fi
echo "soak: every test passed every time"

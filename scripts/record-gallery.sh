#!/usr/bin/env bash
# Records the gallery of example traces that the static page ships: one small run of every
# scenario on this machine, written to gallery/<scenario>.coreplay.gz (trace format 2,
# docs/trace-format.md), and gallery/index.json listing them:
#   [{"file", "scenario", "title", "machine", "recorded_at", "events", "bytes"}, …]
# Parameters are chosen so that each file stays well under 300 KB yet shows its idea.
#
# Usage: scripts/record-gallery.sh [OUT_DIR]   (default: gallery)
# Uses target/release/coreplay, built first (COREPLAY_BIN=PATH uses another binary).
# Needs python3 (for index.json). Runs take about a minute in all.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gallery}
MAX_BYTES=300000

if [[ -n ${COREPLAY_BIN:-} ]]; then
    BIN=$COREPLAY_BIN
else
    # shellcheck source=scripts/env.sh
    source scripts/env.sh
    cargo build --release -p coreplay
    BIN=target/release/coreplay
fi
command -v python3 >/dev/null || { echo "record-gallery: python3 is needed for index.json" >&2; exit 1; }

# Hardware threads as the agent counts them (the scenarios' ranges depend on it).
PUS=$("$BIN" topology --json | python3 -c 'import json,sys
def pus(n): return [n["os_index"]] if n["kind"] == "pu" else [p for c in n["children"] for p in pus(c)]
print(len(pus(json.load(sys.stdin)["root"])))')
echo "record-gallery: $PUS hardware threads, writing to $OUT/" >&2
mkdir -p "$OUT"

record() {
    local scenario=$1
    shift
    local file="$OUT/$scenario.coreplay.gz"
    echo "record-gallery: $scenario $*" >&2
    "$BIN" run "$scenario" "$@" --max-secs 60 --out "$file.tmp" >/dev/null
    # The agent's own reader must accept it (export reads it whole).
    "$BIN" export "$file.tmp" --format chrome-trace --out /dev/null 2>/dev/null
    local bytes
    bytes=$(stat -c %s "$file.tmp")
    if ((bytes > MAX_BYTES)); then
        echo "record-gallery: $file is $bytes bytes, over $MAX_BYTES: use smaller parameters" >&2
        exit 1
    fi
    mv "$file.tmp" "$file"
}

record parallel-compute --threads "$PUS" --work 8000
record oversubscribed --threads $((PUS * 8)) --work 8000
record gil --threads 4 --work 2000 --switch-interval-ms 5
record process-pool --processes "$PUS" --work 8000
record io-sequential --requests 20 --latency-ms 20
record io-threads --threads 5 --requests 20 --latency-ms 20
record io-async --requests 20 --latency-ms 50
record event-loop-blocked --requests 20 --latency-ms 20 --block-ms 30
record async-vs-threads --requests 20 --threads 10 --latency-ms 20

# Real Python programs watched from outside (examples/python/), as a course would run them.
watch() {
    local name=$1
    shift
    local file="$OUT/python-$name.coreplay.gz"
    echo "record-gallery: watch $*" >&2
    "$BIN" watch --max-secs 60 --out "$file.tmp" -- "$@" >/dev/null
    "$BIN" export "$file.tmp" --format chrome-trace --out /dev/null 2>/dev/null
    local bytes
    bytes=$(stat -c %s "$file.tmp")
    if ((bytes > MAX_BYTES)); then
        echo "record-gallery: $file is $bytes bytes, over $MAX_BYTES" >&2
        exit 1
    fi
    mv "$file.tmp" "$file"
}
if command -v python3 >/dev/null; then
    # The interpreter itself, not a wrapper (pyenv's shims are shell scripts that would show up
    # as processes of their own).
    PY=$(python3 -c 'import sys; print(sys.executable)')
    watch cpu-threads "$PY" examples/python/cpu_threads.py
    watch pools "$PY" examples/python/pools.py
    # With the Python probe (on by default): asyncio's own tasks, ready queue and selector.
    watch asyncio-sleeps "$PY" examples/python/asyncio_sleeps.py
    watch asyncio-loopback "$PY" examples/python/asyncio_loopback.py
fi

"$BIN" scenarios | python3 -c '
import gzip, json, os, re, sys
out = sys.argv[1]
titles = {}
for line in sys.stdin:
    m = re.match(r"^(\S+)  —  (.+)$", line.rstrip("\n"))
    if m:
        titles[m.group(1)] = m.group(2)
def pus(n):
    return [n["os_index"]] if n["kind"] == "pu" else [p for c in n["children"] for p in pus(c)]
def machine_line(h):
    # As Machine::describe in shared/src/trace_file.rs.
    m, n = h["machine"], len(pus(h["topology"]["root"]))
    parts = [m["cpu_model"].strip()] if m.get("cpu_model") else []
    parts.append("%d hardware thread%s" % (n, "" if n == 1 else "s"))
    if m.get("os"): parts.append(m["os"].strip())
    if m.get("kernel"): parts.append("Linux " + m["kernel"].strip())
    if m.get("arch"): parts.append(m["arch"].strip())
    return " · ".join(parts)
entries = []
titles.update({
    "python-cpu-threads": "Python: CPU-bound threads behind the GIL (examples/python/cpu_threads.py, watched)",
    "python-pools": "Python: ThreadPoolExecutor vs ProcessPoolExecutor (examples/python/pools.py, watched)",
    "python-asyncio-sleeps": "Python: asyncio with many concurrent sleeps (examples/python/asyncio_sleeps.py, watched with the Python probe)",
    "python-asyncio-loopback": "Python: an asyncio loop serving its own loopback requests (examples/python/asyncio_loopback.py, watched with the Python probe)",
})
for scenario in titles:
    name = scenario + ".coreplay.gz"
    path = os.path.join(out, name)
    if not os.path.exists(path):
        continue
    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        events = sum(len(json.loads(l).get("events", [])) for l in f if l.strip())
    entries.append({
        "file": name,
        "scenario": scenario,
        "title": titles[scenario],
        "machine": machine_line(header),
        "recorded_at": header["recorded_at"],
        "events": events,
        "bytes": os.path.getsize(path),
    })
with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as f:
    json.dump(entries, f, ensure_ascii=False, indent=1)
    f.write("\n")
for e in entries:
    print("%-20s %7d events %8d bytes" % (e["scenario"], e["events"], e["bytes"]), file=sys.stderr)
' "$OUT"
echo "record-gallery: wrote $OUT/index.json" >&2

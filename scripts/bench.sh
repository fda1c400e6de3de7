#!/usr/bin/env bash
# Benchmarks: builds the release page, then prints probe times and page weight.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/page.sh
cargo bench -p coreplay --bench skeleton --locked
cargo bench -p coreplay --bench scenarios --locked
cargo bench -p coreplay --bench watch --locked
cargo bench -p coreplay --bench page --locked

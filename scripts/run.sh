#!/usr/bin/env bash
# The main job: install what is missing, build the page and the agent (release, page embedded),
# and start the agent. Extra arguments go to `coreplay serve`, e.g. `--listen 127.0.0.1:9000`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/page.sh
cargo build --release -p coreplay
exec target/release/coreplay serve "$@"

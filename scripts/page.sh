#!/usr/bin/env bash
# Builds the release page into dist/ (`trunk build --release`, extra arguments passed on, e.g.
# `--public-url /that/folder/`), smaller than a plain release build by rebuilding the standard
# library with the page (optimised for size, as the page is) and making a panic stop the
# WebAssembly at once (a trap) instead of formatting a message: 276 -> 254 kB gzip
# (docs/benchmarks.md). The page then says it failed from JavaScript (index.html), without
# Rust's message.
#
# Both are unstable Cargo/rustc options. The compiler is pinned (rust-toolchain.toml), so they
# are turned on for this build only with RUSTC_BOOTSTRAP=1, as the Linux kernel does for its
# pinned compilers; the std sources come from the pinned toolchain's rust-src component.
# COREPLAY_PAGE_PLAIN=1 builds without them (a bigger page whose panics show their message).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [[ "${COREPLAY_PAGE_PLAIN:-0}" == 1 ]]; then
  exec trunk build --release "$@"
fi
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
export CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
flags="-Zunstable-options -Cpanic=immediate-abort"
if [[ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ]]; then
  echo "page.sh: CARGO_ENCODED_RUSTFLAGS is set and would replace the page's flags; unset it" >&2
  exit 1
elif [[ -n "${RUSTFLAGS:-}" ]]; then
  # RUSTFLAGS, when set, wins over the target's flags: add the page's to it.
  export RUSTFLAGS="$RUSTFLAGS $flags"
else
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$flags"
fi
exec trunk build --release "$@"

#!/usr/bin/env bash
# Installs everything coreplay needs to build and test, idempotently, from package registries only.
# Called by scripts/run.sh and scripts/test.sh; safe to run again (it skips what is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tools this installs must be found by the checks below (cargo's bin, .tools/).
source scripts/env.sh

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132
# esbuild minifies the release page's JavaScript and CSS (scripts/pack-page.mjs).
ESBUILD_VERSION=0.28.2
# wasm-bindgen-cli must equal the wasm-bindgen crate locked in Cargo.lock.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# fonts-dejavu-core: the fonts `coreplay render` draws PNG and GIF text with. python3: the
# watched examples, the Python probe and its tests (standard library only).
apt_pkgs=(pkg-config libhwloc-dev libudev-dev fonts-dejavu-core chromium chromium-driver npm python3)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from a non-Debian Node.js install; do not ask apt for it then.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
# Likewise python3 from pyenv or a build of one's own.
if command -v python3 >/dev/null 2>&1; then
  missing=("${missing[@]/python3}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# rust-toolchain.toml names the wasm target and the std sources (scripts/page.sh rebuilds std
# for the page); this makes sure they are present.
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup component add rust-src >/dev/null 2>&1 || rustup component add rust-src

# Trunk builds offline (Trunk.toml), so every crate the page's build needs is fetched here: the
# workspace's, and those of the standard library that scripts/page.sh rebuilds (its own
# Cargo.lock, inside rust-src; its manifest uses unstable Cargo features, hence
# RUSTC_BOOTSTRAP). Without them a fresh machine's first page build fails with "no matching
# package named `moto-rt` found".
cargo fetch --locked --quiet
RUSTC_BOOTSTRAP=1 cargo fetch --locked --quiet \
  --manifest-path "$(rustc --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml"

if [[ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]]; then
  log "cargo install trunk $TRUNK_VERSION (several minutes on 2 cores)"
  cargo install trunk --version "$TRUNK_VERSION" --locked --quiet
fi

if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Without --locked: its lockfile names a crate version the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --quiet --force
fi

if [[ ! -x .tools/node_modules/.bin/wasm-opt ]] || ! .tools/node_modules/.bin/wasm-opt --version | grep -q "version $BINARYEN_VERSION"; then
  log "npm install binaryen@$BINARYEN_VERSION (wasm-opt)"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi
if [[ ! -x .tools/node_modules/.bin/esbuild ]] || [[ "$(.tools/node_modules/.bin/esbuild --version)" != "$ESBUILD_VERSION" ]]; then
  log "npm install esbuild@$ESBUILD_VERSION (minifies the page's JavaScript and CSS)"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent --save-exact "esbuild@$ESBUILD_VERSION"
fi
log "toolchain ready"

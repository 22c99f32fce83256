#!/usr/bin/env bash
# Builds libsitesync_mobile and writes its Kotlin, Swift and Python bindings.
# Usage: mobile-bindings/generate.sh [debug|release] [OUT_DIR]   (default: release target/bindings)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-release}
OUT=${2:-target/bindings}
if [ "$PROFILE" = release ]; then cargo build -q --release -p sitesync-mobile; else cargo build -q -p sitesync-mobile; fi
cargo run -q --bin uniffi-bindgen -- generate "target/$PROFILE/libsitesync_mobile.so" \
    --language kotlin --language swift --language python --no-format --out-dir "$OUT"
echo "bindings written to $OUT (Kotlin in $OUT/uniffi/sitesync_mobile/, Swift and Python at the top)"

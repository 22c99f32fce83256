#!/usr/bin/env bash
# The long form of the server crash test (server/tests/crash_loop.rs): ROUNDS times, SIGKILL the
# real sitesync-server at a random moment while PHONES phones log labor on shared site-days and
# sync, restart it on the same data; then check that every acknowledged change is on the server,
# that every replica converges and that every database passes PRAGMA integrity_check. Release build.
# A failure prints its seed; replay it with SITESYNC_CRASH_SEED=<seed> scripts/crash-loop.sh ….
#
#   scripts/crash-loop.sh [ROUNDS=60] [PHONES=8]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-60}
phones=${2:-8}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
SITESYNC_CRASH_ROUNDS=$rounds SITESYNC_CRASH_PHONES=$phones \
    cargo test --release -p sitesync-server --test crash_loop -- --nocapture 2>&1 | tee "$out" || status=$?

echo
if grep -q '^crash loop summary:' "$out"; then
    grep '^crash loop summary:' "$out"
else
    echo "crash loop FAILED (exit $status); seed: $(grep -o 'SITESYNC_CRASH_SEED=[0-9]*' "$out" | head -1)" >&2
    exit $((status == 0 ? 1 : status))
fi
exit "$status"

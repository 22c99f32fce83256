#!/usr/bin/env bash
# Runs Schemathesis (property-based API testing, from PyPI) against the real server's OpenAPI
# document: builds and starts `sitesync-server serve --demo` on a fresh data directory and a free
# loopback port, then tests every operation with the demo org admin's token (who may read every
# report, decide approvals and use the admin API), with every check, and exits non-zero on any
# failure. The virtualenv lives in target/schemathesis-venv; reports go to
# target/schemathesis-report.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES [SCHEMATHESIS ARGS...]]
#
# MAX_EXAMPLES is per operation and phase (default 100: about a minute once built). Failures already
# understood are listed, each with its reason, in scripts/schemathesis-baseline.json: they are
# reported but do not fail the run; anything else does. After fixing one, drop its entry (or run
# with `--baseline-prune`).
#
# Left out, with the reason:
#   GET /v1/sync    a WebSocket upgrade: Schemathesis speaks HTTP only (tests/tests/sync/ covers it).
#   GET /v1/events  a server-sent-events stream that stays open by design.
# Checks left out, with the reason:
#   positive_data_acceptance  the schema cannot say that `to` is not before `from`, that a site or
#                             a cycle must exist, or that a month must be a real month: the server
#                             rightly answers such schema-valid requests 400/403/404.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-100}
shift || true
version=4.32.5
venv=target/schemathesis-venv

if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --release -p sitesync-server
data=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$data/server.log"
# The per-token API rate limit would answer most of the run 429 (documented, but it tests nothing
# else); the limiter has its own tests (tests/tests/sync/limits.rs).
target/release/sitesync-server serve --demo --data "$data" --listen "127.0.0.1:$port" \
    --api-rate 100000 --api-burst 100000 >"$log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    if [ -s "$data/demo-tokens.txt" ] && curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
token=$(awk -F'\t' '$1 == "u-admin" { print $3 }' "$data/demo-tokens.txt")
[ -n "$token" ] || { echo "no demo admin token in $data/demo-tokens.txt" >&2; exit 1; }

status=0
# One worker: with more, Hypothesis 6 on Python 3.11 sometimes fails inside Schemathesis's coverage
# phase ("AST constructor recursion depth mismatch"), an error of the tool, not of the server.
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --exclude-path /v1/sync \
    --exclude-path /v1/events \
    --max-examples "$examples" \
    --seed 20261125 \
    --request-timeout 20 \
    --workers 1 \
    --generation-database none \
    --no-color \
    --baseline scripts/schemathesis-baseline.json \
    --report junit \
    --report-dir target/schemathesis-report \
    "$@" ||
    status=$?

if grep -q "panicked" "$log"; then
    echo "the server panicked during the run:" >&2
    grep -A3 "panicked" "$log" >&2
    status=1
fi
if grep -q "internal error\|request failed" "$log"; then
    echo "the server logged internal errors:" >&2
    grep "request failed" "$log" | head -20 >&2
fi
exit "$status"

#!/usr/bin/env bash
# Peer benchmark: the automerge-repo sync server under the same workloads as ours.
#
#   bash bench/peer/run.sh upload  [--docs 200] [--entries 50] [--timeout 300]
#   bash bench/peer/run.sh devices [--n 10|100|1000] [--lines 45] [--timeout 300] [--no-fanout]
#   bash bench/peer/run.sh idle    [--n 1000] [--idle 10]
#
# Installs the pinned packages (package.json + package-lock.json beside this file)
# into target/bench-peer/ when they are missing or changed, starts the published
# @automerge/automerge-repo-sync-server as its own Node process on a free loopback
# port with storage in a fresh temp dir, runs driver.mjs (one more Node process,
# holding every simulated client), samples the server's CPU time and peak RSS from
# /proc, and prints ONE JSON object as the last line of stdout. Everything else
# goes to stderr. Set KEEP_DATA=1 to keep the temp dir (server log + storage), and
# DRIVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") to profile the driver.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="$ROOT/target/bench-peer"
say() { echo "[run.sh] $*" >&2; }

if [[ $# -lt 1 ]]; then
  sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
WORKLOAD="$1"
shift
case "$WORKLOAD" in upload | devices | idle) ;; *)
  say "unknown workload '$WORKLOAD' (upload | devices | idle)"
  exit 2
  ;;
esac
DRIVER_TIMEOUT=300
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[$i]}" == "--timeout" ]]; then DRIVER_TIMEOUT="${args[$((i + 1))]:-300}"; fi
done

# ------------------------------------------------------------------ install
command -v node >/dev/null || { say "node is not installed"; exit 1; }
command -v npm >/dev/null || { say "npm is not installed"; exit 1; }
mkdir -p "$PREFIX"
STAMP="$(cat "$HERE/package.json" "$HERE/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)-$(node --version)"
if [[ ! -d "$PREFIX/node_modules/@automerge/automerge-repo-sync-server" || "$(cat "$PREFIX/.install-stamp" 2>/dev/null)" != "$STAMP" ]]; then
  say "installing pinned packages into $PREFIX"
  cp "$HERE/package.json" "$PREFIX/package.json"
  # The lock pins every transitive version (with integrity hashes, no registry URLs).
  # `npm install` rather than `npm ci`: cbor-extract names optional prebuilt packages that
  # the registry does not serve for its version, and `npm ci` rejects the lock over that.
  rm -rf "$PREFIX/node_modules"
  cp "$HERE/package-lock.json" "$PREFIX/package-lock.json"
  (cd "$PREFIX" && timeout 600 npm install --no-audit --no-fund --loglevel=error) >&2
  echo "$STAMP" >"$PREFIX/.install-stamp"
fi
# ESM resolves packages from the importing file's folder: run our scripts from $PREFIX.
cp "$HERE/driver.mjs" "$HERE/server-preload.mjs" "$PREFIX/"

# ------------------------------------------------------------------ server
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-peer.XXXXXX")"
mkdir -p "$WORK/store"
SERVER_PID=""
DRIVER_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill "$DRIVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  if [[ "${KEEP_DATA:-0}" == "1" ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
SERVER_JS="$PREFIX/node_modules/@automerge/automerge-repo-sync-server/src/index.js"
# The published server, unmodified: it reads PORT and DATA_DIR and serves express.static("public")
# relative to its cwd (the empty temp dir). server-preload.mjs makes it bind 127.0.0.1 and
# records its event-loop delay into $WORK/server-probe.json.
(cd "$WORK" && PORT="$PORT" DATA_DIR="$WORK/store" PROBE_FILE="$WORK/server-probe.json" \
  exec node --import "$PREFIX/server-preload.mjs" "$SERVER_JS") \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    say "sync server exited early:"; cat "$WORK/server.log" >&2; exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if [[ $i == 300 ]]; then say "sync server did not listen within 30 s"; cat "$WORK/server.log" >&2; exit 1; fi
  sleep 0.1
done
say "sync server pid $SERVER_PID listening on 127.0.0.1:$PORT, storage $WORK/store"

CLK_TCK="$(getconf CLK_TCK)"
cpu_s() { # utime+stime of a pid in seconds
  awk -v t="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"
}
SERVER_CPU_START="$(cpu_s "$SERVER_PID")"
LOAD_START="$(cut -d' ' -f1 /proc/loadavg)" # other work on the 2 cores skews every figure
kill -USR2 "$SERVER_PID" 2>/dev/null || true # reset the server's loop-delay histogram

# ------------------------------------------------------------------ driver
say "driver: $WORKLOAD ${args[*]:-}"
T0=$(date +%s.%N)
set +e
PEER_URL="ws://127.0.0.1:$PORT" SERVER_PID="$SERVER_PID" SERVER_DATA_DIR="$WORK/store" \
  FIXTURES="$ROOT/fixtures/logs.json" CLK_TCK="$CLK_TCK" \
  timeout --kill-after=15 "$((DRIVER_TIMEOUT + 180))" \
  node --max-old-space-size=8192 ${DRIVER_NODE_ARGS:-} "$PREFIX/driver.mjs" "$WORKLOAD" "${args[@]}" >"$WORK/driver.out" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_RC=$?
DRIVER_PID=""
set -e
T1=$(date +%s.%N)

SERVER_ALIVE=true # (a dead, not yet reaped server is a zombie: state Z)
[[ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$SERVER_PID/stat" 2>/dev/null)" =~ ^[RSDI]$ ]] || SERVER_ALIVE=false
if $SERVER_ALIVE; then
  SERVER_CPU_END="$(cpu_s "$SERVER_PID")"
  SERVER_HWM="$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")"
  SERVER_RSS="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")"
else
  say "sync server died during the run:"; tail -20 "$WORK/server.log" >&2
  SERVER_CPU_END=""; SERVER_HWM=""; SERVER_RSS=""
fi
STORE_KIB="$(du -sk "$WORK/store" 2>/dev/null | cut -f1)"
sleep 1.1 # let the probe write its last figures

# ------------------------------------------------------------------ report
DRIVER_RC="$DRIVER_RC" SERVER_ALIVE="$SERVER_ALIVE" SERVER_CPU_START="$SERVER_CPU_START" \
  SERVER_CPU_END="$SERVER_CPU_END" SERVER_HWM="$SERVER_HWM" SERVER_RSS="$SERVER_RSS" \
  STORE_KIB="$STORE_KIB" LOAD_START="$LOAD_START" PROBE_FILE="$WORK/server-probe.json" ELAPSED="$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')" \
  node -e '
const fs = require("fs"), path = require("path")
const [prefix, outFile] = process.argv.slice(1)
const e = process.env
const num = x => (x === undefined || x === "" ? null : Number(x))
let r
const lines = fs.readFileSync(outFile, "utf8").trim().split("\n").filter(Boolean)
try { r = JSON.parse(lines[lines.length - 1]) } catch { r = { fatal: "driver printed no result", errors: 1 } }
const ver = p => { try { return JSON.parse(fs.readFileSync(path.join(prefix, "node_modules", p, "package.json"), "utf8")).version } catch { return null } }
let cborNative = false
try { require(path.join(prefix, "node_modules", "cbor-extract")); cborNative = true } catch {}
const start = num(e.SERVER_CPU_START), end = num(e.SERVER_CPU_END)
let probe = {}
try { probe = JSON.parse(fs.readFileSync(e.PROBE_FILE, "utf8")) } catch {}
Object.assign(r, {
  server: "@automerge/automerge-repo-sync-server (published src/index.js, own process)",
  // server_cpu_s (from the driver): server CPU over the measured window only.
  server_cpu_total_s: end,
  server_cpu_during_driver_s: start != null && end != null ? Number((end - start).toFixed(2)) : null,
  server_peak_rss_kib: num(e.SERVER_HWM),
  server_rss_end_kib: num(e.SERVER_RSS),
  server_alive_at_end: e.SERVER_ALIVE === "true",
  server_store_kib: num(e.STORE_KIB),
  server_loop_delay_max_ms: probe.loop_delay_max_ms ?? null,
  server_loop_delay_p99_ms: probe.loop_delay_p99_ms ?? null,
  driver_exit: Number(e.DRIVER_RC),
  loadavg_1m_start: num(e.LOAD_START),
  cores: require("os").cpus().length,
  elapsed_total_s: e.ELAPSED ? Number(Number(e.ELAPSED).toFixed(1)) : null,
  versions: {
    node: process.version,
    "@automerge/automerge": ver("@automerge/automerge"),
    "@automerge/automerge-repo": ver("@automerge/automerge-repo"),
    "@automerge/automerge-repo-network-websocket": ver("@automerge/automerge-repo-network-websocket"),
    "@automerge/automerge-repo-storage-nodefs": ver("@automerge/automerge-repo-storage-nodefs"),
    "@automerge/automerge-repo-sync-server": ver("@automerge/automerge-repo-sync-server"),
    ws: ver("ws"), express: ver("express"), "cbor-x": ver("cbor-x"),
  },
  cbor_extract_native: cborNative,
})
if (e.DRIVER_RC !== "0" && !r.fatal) r.fatal = "driver exit " + e.DRIVER_RC
console.log(JSON.stringify(r))
' "$PREFIX" "$WORK/driver.out"
exit "$DRIVER_RC"

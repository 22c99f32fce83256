#!/usr/bin/env bash
# The mobile bindings end to end: builds the library and the server, generates Kotlin, Swift and
# Python, checks the committed Swift is current, starts a real server on loopback, and runs the same
# scenario from Kotlin (kotlinc + JNA on the JVM) and from Python. Installs kotlinc (npm package
# kotlin-compiler) and JNA (Debian libjna-java) when missing. Prints one line per scenario.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/bindings
TOOLS=target/mobile-tools
KOTLIN_VERSION=2.4.20

bash mobile-bindings/generate.sh debug "$OUT"
if ! diff -u mobile-bindings/bindings/swift/sitesync_mobile.swift "$OUT/sitesync_mobile.swift"; then
    echo "the committed Swift bindings are stale: run mobile-bindings/generate.sh and commit mobile-bindings/bindings/swift" >&2
    exit 1
fi
cargo build -q -p sitesync-server

# Each install says what it installs and where, before it runs.
installing() { echo "run.sh: installing $*" >&2; }

if [ ! -x "$TOOLS/package/bin/kotlinc" ]; then
    installing "kotlinc $KOTLIN_VERSION (npm package kotlin-compiler) into $TOOLS"
    mkdir -p "$TOOLS"
    (cd "$TOOLS" && npm pack -q "kotlin-compiler@$KOTLIN_VERSION" >/dev/null && tar xzf "kotlin-compiler-$KOTLIN_VERSION.tgz")
fi
JNA=/usr/share/java/jna.jar
if [ ! -f "$JNA" ]; then
    installing "JNA (Debian package libjna-java, apt-get, needs root)"
    apt-get update -qq && apt-get install -y -qq libjna-java >/dev/null
fi
KLIB="$TOOLS/package/lib"

# A real server on a free loopback port, with the fixture company and two devices.
DATA=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
target/debug/sitesync-server admin --data "$DATA/data" import fixtures/company.json >/dev/null
FOREMAN=$(target/debug/sitesync-server admin --data "$DATA/data" device add --user u-foreman-hz-01 2>/dev/null)
MANAGER=$(target/debug/sitesync-server admin --data "$DATA/data" device add --user u-manager-hz-01 2>/dev/null)
# More phones for the site mesh: for Kotlin two of site-hz-01 and one of another site, for Python two.
MESH=()
for user in u-foreman-hz-01 u-manager-hz-01 u-foreman-sz-02; do
    MESH+=("$(target/debug/sitesync-server admin --data "$DATA/data" device add --user "$user" 2>/dev/null)")
done
PY_MESH=()
for user in u-foreman-hz-01 u-manager-hz-01; do
    PY_MESH+=("$(target/debug/sitesync-server admin --data "$DATA/data" device add --user "$user" 2>/dev/null)")
done
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn target/debug/sitesync-server serve --data "$DATA/data" --listen "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
    curl -sf "$URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# A second server over HTTPS, with a company CA and a certificate for 127.0.0.1 made here (openssl).
command -v openssl >/dev/null || { installing "openssl (Debian package openssl, apt-get, needs root)"; apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
PKI="$DATA/pki"
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=sitesync scenario CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$PKI/server.key" -out "$PKI/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$PKI/ext"
openssl x509 -req -days 2 -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
    -extfile "$PKI/ext" -out "$PKI/server.pem" 2>/dev/null
target/debug/sitesync-server admin --data "$DATA/tls-data" import fixtures/company.json >/dev/null
TLS_FOREMAN=$(target/debug/sitesync-server admin --data "$DATA/tls-data" device add --user u-foreman-hz-01 2>/dev/null)
TLS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn target/debug/sitesync-server serve --data "$DATA/tls-data" --listen "127.0.0.1:$TLS_PORT" \
    --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" >"$DATA/tls-server.log" 2>&1 &
TLS_SERVER=$!
trap 'kill "$SERVER" "$TLS_SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
TLS_URL="https://127.0.0.1:$TLS_PORT"
for _ in $(seq 1 300); do
    curl -sf --cacert "$PKI/ca.pem" "$TLS_URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
TLS_ARGS=("$TLS_URL" "$TLS_FOREMAN" "$PKI/ca.pem")

# Python: the module loads the library from its own folder.
mkdir -p "$DATA/py"
cp "$OUT/sitesync_mobile.py" "$DATA/py/"
ln -sf "$PWD/target/debug/libsitesync_mobile.so" "$DATA/py/libsitesync_mobile.so"
# The scenario makes the library panic on purpose (the panic must arrive as an error): keep its
# report short.
export RUST_BACKTRACE=0
PYTHONPATH="$DATA/py" python3 mobile-bindings/tests/scenario.py "$URL" "$FOREMAN" "$MANAGER" "$DATA/python-phone.sqlite3" 2026-12-01 2026-12-02 "${TLS_ARGS[@]}" "${PY_MESH[@]}"

# Kotlin: compile the generated bindings with the scenario, run on the JVM with JNA.
JAR="$TOOLS/scenario.jar"
rm -f "$JAR"
CP="$JNA:$KLIB/kotlinx-coroutines-core-jvm.jar"
"$TOOLS/package/bin/kotlinc" -nowarn "$OUT/uniffi/sitesync_mobile/sitesync_mobile.kt" mobile-bindings/tests/Scenario.kt -cp "$CP" -d "$JAR" 2>&1 | grep -v "^warning" || true
[ -f "$JAR" ] || { echo "kotlinc failed" >&2; exit 1; }
java -Djna.library.path=target/debug -cp "$JAR:$KLIB/kotlin-stdlib.jar:$CP" ScenarioKt "$URL" "$FOREMAN" "$MANAGER" "$DATA/kotlin-phone.sqlite3" 2026-12-11 2026-12-12 "${TLS_ARGS[@]}" "${MESH[@]}"

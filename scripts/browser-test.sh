#!/usr/bin/env bash
# Real-browser test of the server's /docs page: Swagger UI renders offline and "Try it out" works.
#
# Installs Debian's chromium + chromium-driver if /usr/bin/chromium is missing, installs
# playwright-core from the npm registry (tests/browser/package-lock.json; no browser download),
# builds and starts the server on a free loopback port with a temporary SQLite database and no model
# key, waits for /support/health, runs tests/browser/docs.test.mjs, and stops the server.
# Exits non-zero when anything fails. The screenshot lands in test-output/docs.png.
#
# Settings (environment):
#   SUPPORT_BIN      server binary to run; default target/<profile>/support, built first
#   BUILD_PROFILE    debug (default, faster to build) or release
#   SKIP_BUILD=1     do not run cargo build (use SUPPORT_BIN / the existing binary as is)
#   CHROMIUM_PATH    default /usr/bin/chromium
#   OUTPUT_DIR       default <repo>/test-output
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

log() { printf '[browser-test] %s\n' "$*"; }

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
BUILD_PROFILE="${BUILD_PROFILE:-debug}"
OUTPUT_DIR="${OUTPUT_DIR:-$ROOT/test-output}"

# 1. Chromium from Debian's packages.
if [ ! -x "$CHROMIUM_PATH" ]; then
    log "installing chromium and chromium-driver (Debian packages)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
"$CHROMIUM_PATH" --version 2>/dev/null | head -n 1 || true

# 2. playwright-core from the npm registry (lockfile only; never downloads a browser).
log "installing tests/browser dependencies"
(
    cd tests/browser
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
)

# 3. The server binary.
case "$BUILD_PROFILE" in
    debug) PROFILE_FLAG="" ;;
    release) PROFILE_FLAG="--release" ;;
    *) echo "BUILD_PROFILE must be debug or release, not $BUILD_PROFILE" >&2; exit 2 ;;
esac
SUPPORT_BIN="${SUPPORT_BIN:-target/$BUILD_PROFILE/support}"
if [ "${SKIP_BUILD:-0}" != "1" ]; then
    log "cargo build $PROFILE_FLAG -p support"
    cargo build $PROFILE_FLAG -p support
fi
if [ ! -x "$SUPPORT_BIN" ]; then
    echo "server binary $SUPPORT_BIN not found (build it or set SUPPORT_BIN)" >&2
    exit 1
fi
SUPPORT_BIN="$(cd "$(dirname "$SUPPORT_BIN")" && pwd)/$(basename "$SUPPORT_BIN")"

# 4. Start it: free loopback port, temporary database, no model key, no .env (runs in the temp dir).
WORK="$(mktemp -d "${TMPDIR:-/tmp}/browser-test.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
BASE_URL="http://127.0.0.1:$PORT"
log "starting $SUPPORT_BIN on $BASE_URL"
(
    cd "$WORK"
    exec env -u OPENAI_API_KEY -u GEMINI_API_KEY -u GOOGLE_API_KEY -u MODEL_PROVIDER \
        HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite://$WORK/chatkit.db" RUST_LOG="${RUST_LOG:-info}" \
        "$SUPPORT_BIN" >"$WORK/server.log" 2>&1
) &
SERVER_PID=$!

healthy=0
for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null --max-time 2 "$BASE_URL/support/health" 2>/dev/null; then
        healthy=1
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ "$healthy" != "1" ]; then
    echo "server did not become healthy; its log:" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
    exit 1
fi
log "server healthy"

# 5. The browser test.
status=0
(
    cd tests/browser
    BASE_URL="$BASE_URL" CHROMIUM_PATH="$CHROMIUM_PATH" OUTPUT_DIR="$OUTPUT_DIR" node --test docs.test.mjs
) || status=$?
if [ "$status" -ne 0 ]; then
    echo "browser test failed (exit $status); server log tail:" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
    exit "$status"
fi
log "passed; screenshot at $OUTPUT_DIR/docs.png"

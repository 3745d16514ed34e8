#!/usr/bin/env bash
# Real-browser test of the server's /docs page: Swagger UI renders offline and "Try it out" works, and on
# a server in AUTH_MODE=jwt answers 401 until a token (from `support token`) is entered through "Authorize".
#
# Installs Debian's chromium + chromium-driver if /usr/bin/chromium is missing, installs
# playwright-core from the npm registry (tests/browser/package-lock.json; no browser download),
# builds and starts two servers (AUTH_MODE=none and AUTH_MODE=jwt with a random secret) on free loopback
# ports with temporary SQLite databases and no model key, waits for /support/health, mints a token with
# `support token`, runs tests/browser/docs.test.mjs, and stops the servers.
# Exits non-zero when anything fails. The screenshots land in test-output/.
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

# 4. Start two servers, each on a free loopback port with a temporary database, no model key and no .env
#    (each runs in its own temp dir): one in the default AUTH_MODE=none, one in AUTH_MODE=jwt with a random
#    secret, for which `support token` mints the token the test enters through Swagger UI's "Authorize".
WORK="$(mktemp -d "${TMPDIR:-/tmp}/browser-test.XXXXXX")"
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# run_support DIR VAR=VALUE... [-- ARGS...]: the binary in DIR with a clean model environment.
run_support() {
    local dir="$1"; shift
    local vars=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    cd "$dir" && exec env -u OPENAI_API_KEY -u GEMINI_API_KEY -u GOOGLE_API_KEY -u MODEL_PROVIDER \
        -u AUTH_MODE -u AUTH_JWT_SECRET -u AUTH_JWKS_URL -u AUTH_JWT_PUBLIC_KEY "${vars[@]}" "$SUPPORT_BIN" "$@"
}

# start_server NAME VAR=VALUE...: starts a server in $WORK/NAME; sets SERVER_URL and waits for its health.
start_server() {
    local name="$1"; shift
    local dir="$WORK/$name"
    mkdir -p "$dir"
    local port
    port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
    SERVER_URL="http://127.0.0.1:$port"
    log "starting $SUPPORT_BIN ($name) on $SERVER_URL"
    ( run_support "$dir" HOST=127.0.0.1 PORT="$port" DATABASE_URL="sqlite://$dir/chatkit.db" \
        RUST_LOG="${RUST_LOG:-info}" "$@" >"$dir/server.log" 2>&1 ) &
    local pid=$!
    SERVER_PIDS+=("$pid")
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null --max-time 2 "$SERVER_URL/support/health" 2>/dev/null; then
            log "server ($name) healthy"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "server ($name) did not become healthy; its log:" >&2
    tail -n 40 "$dir/server.log" >&2 || true
    exit 1
}

start_server open
BASE_URL="$SERVER_URL"
JWT_SECRET="$(node -e "console.log(require('crypto').randomBytes(32).toString('hex'))")"
start_server jwt AUTH_MODE=jwt AUTH_JWT_SECRET="$JWT_SECRET"
AUTH_BASE_URL="$SERVER_URL"
AUTH_TOKEN="$( (run_support "$WORK/jwt" AUTH_MODE=jwt AUTH_JWT_SECRET="$JWT_SECRET" -- token --sub browser-test --ttl 10m) )"

# 5. The browser test.
status=0
(
    cd tests/browser
    BASE_URL="$BASE_URL" AUTH_BASE_URL="$AUTH_BASE_URL" AUTH_TOKEN="$AUTH_TOKEN" CHROMIUM_PATH="$CHROMIUM_PATH" \
        OUTPUT_DIR="$OUTPUT_DIR" node --test docs.test.mjs
) || status=$?
if [ "$status" -ne 0 ]; then
    echo "browser test failed (exit $status); server log tails:" >&2
    for name in open jwt; do
        echo "--- $name" >&2
        tail -n 40 "$WORK/$name/server.log" >&2 || true
    done
    exit "$status"
fi
log "passed; screenshots in $OUTPUT_DIR (docs.png, docs-chatkit.png, docs-authorized.png)"

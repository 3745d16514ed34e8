#!/usr/bin/env bash
# Contract test: schemathesis generates requests from the server's own /openapi.json and checks every
# response against it (all checks on). Any 5xx or conformance failure fails the script.
#
# Installs schemathesis (pinned) from PyPI into a virtualenv under ~/.cache when missing, builds the
# debug `support` and `mock-llm` binaries, starts the mock model with its demo script and the server on
# free loopback ports with a fresh SQLite database in a temp dir, runs schemathesis with a bounded
# number of examples and a time bound, and stops every process it started, whatever happens.
#
# Settings (environment):
#   SCHEMATHESIS_VERSION   pinned version to install (default below)
#   SCHEMATHESIS_VENV      virtualenv location, default ~/.cache/chatkit-schemathesis/venv
#   SEED                   the random seed of the run (same seed, same requests), default 1
#   MAX_EXAMPLES           examples per operation and phase, default 30
#   TIME_LIMIT             seconds before the schemathesis run is stopped and counted as failed, default 120
#   SKIP_BUILD=1           use the existing target/debug binaries as they are
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

log() { printf '[schemathesis] %s\n' "$*"; }

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
SCHEMATHESIS_VENV="${SCHEMATHESIS_VENV:-$HOME/.cache/chatkit-schemathesis/venv}"
SEED="${SEED:-1}"
MAX_EXAMPLES="${MAX_EXAMPLES:-30}"
TIME_LIMIT="${TIME_LIMIT:-120}"

# 1. schemathesis, pinned, in its own virtualenv (PyPI is the only network access).
ST="$SCHEMATHESIS_VENV/bin/schemathesis"
if [ ! -x "$ST" ] || ! "$ST" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis==$SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
    python3 -m venv "$SCHEMATHESIS_VENV"
    "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$ST" --version

# 2. The binaries.
if [ "${SKIP_BUILD:-0}" != "1" ]; then
    log "cargo build -p support -p mock-llm"
    cargo build -p support -p mock-llm
fi
SUPPORT_BIN="$ROOT/target/debug/support"
MOCK_BIN="$ROOT/target/debug/mock-llm"
for bin in "$SUPPORT_BIN" "$MOCK_BIN"; do
    if [ ! -x "$bin" ]; then echo "$bin not found (build it or drop SKIP_BUILD)" >&2; exit 1; fi
done

# 3. Start the mock model and the server; the trap stops both (and removes the temp dir) on any exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # url pid name
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "$3 did not come up; its log:" >&2
    tail -n 40 "$WORK/$3.log" >&2 || true
    exit 1
}

MOCK_PORT="$(free_port)"
"$MOCK_BIN" --port "$MOCK_PORT" --record 0 --script "$ROOT/crates/mock-llm/scripts/openskies-demo.json" \
    >"$WORK/mock-llm.log" 2>&1 &
PIDS+=("$!")

PORT="$(free_port)"
BASE_URL="http://127.0.0.1:$PORT"
(
    cd "$WORK"
    exec env -u GEMINI_API_KEY -u GOOGLE_API_KEY -u MODEL_PROVIDER \
        HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite://$WORK/chatkit.db" \
        OPENAI_API_KEY=mock OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" RUST_LOG="${RUST_LOG:-warn}" \
        "$SUPPORT_BIN" >"$WORK/server.log" 2>&1
) &
PIDS+=("$!")
wait_for "$BASE_URL/support/health" "${PIDS[1]}" server
log "server at $BASE_URL, mock model at 127.0.0.1:$MOCK_PORT; seed $SEED, $MAX_EXAMPLES examples"

# 4. One uploaded image, whose signed links the run uses for the attachment routes (schemathesis cannot
#    sign a link, so without them those routes would only ever answer 403): uploads to it reach the multipart
#    parser and answer 409 once the body is read, and its content is served.
chatkit() {
    curl -fsS --max-time 10 -H 'content-type: application/json' --data "$1" "$BASE_URL/support/chatkit"
}
link_parts() { # json-from-stdin field: "<attachment id> <owner> <expires> <sig>" of the signed URL at that field
    python3 -c '
import json, sys, urllib.parse
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
url = urllib.parse.urlsplit(value)
query = urllib.parse.parse_qs(url.query)
print(url.path.split("/")[3], query["owner"][0], query["expires"][0], query["sig"][0])
' "$1"
}
created="$(chatkit '{"type":"attachments.create","params":{"name":"probe.png","size":4,"mime_type":"image/png"}}')"
read -r ATTACHMENT_ID UPLOAD_OWNER UPLOAD_EXPIRES UPLOAD_SIG < <(link_parts upload_descriptor.url <<<"$created")
printf 'PNG!' >"$WORK/probe.png"
uploaded="$(curl -fsS --max-time 10 -F "file=@$WORK/probe.png;type=image/png" \
    "$BASE_URL/support/attachments/$ATTACHMENT_ID/upload?owner=$UPLOAD_OWNER&expires=$UPLOAD_EXPIRES&sig=$UPLOAD_SIG")"
read -r _ PREVIEW_OWNER PREVIEW_EXPIRES PREVIEW_SIG < <(link_parts preview_url <<<"$uploaded")
export ATTACHMENT_ID UPLOAD_OWNER UPLOAD_EXPIRES UPLOAD_SIG PREVIEW_OWNER PREVIEW_EXPIRES PREVIEW_SIG
log "attachment $ATTACHMENT_ID uploaded; its links go to the attachment routes"

# 5. The run: every check, a fixed seed, bounded examples, bounded in time.
status=0
timeout --kill-after=10 "$TIME_LIMIT" "$ST" --config-file "$ROOT/scripts/schemathesis.toml" run "$BASE_URL/openapi.json" \
    --url "$BASE_URL" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --request-timeout 10 \
    --no-color \
    || status=$?
if [ "$status" -ne 0 ]; then
    if [ "$status" -eq 124 ]; then echo "schemathesis did not finish within ${TIME_LIMIT}s" >&2; fi
    echo "schemathesis failed (exit $status); server log tail:" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
    exit "$status"
fi
log "passed: no 5xx, no conformance failure"

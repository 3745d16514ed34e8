#!/usr/bin/env bash
# Builds llama.cpp's own OpenAI-compatible server (`llama-server`) for the real-model tests, from the
# llama.cpp sources vendored in the llama-cpp-python package (the same pinned release the Python
# server is built from), when it is not built yet. Unlike llama-cpp-python's server it reports token
# usage in a streamed response (`stream_options.include_usage`), and it answers a request with tools
# but without `--jinja` with an error: the tests need both.
#
# Usage: scripts/build-llama-server.sh [DIR]   (default: ~/.cache/chatkit-llama; the binary ends up in
# DIR/llama-server/bin/llama-server). Only PyPI is used: the source is llama-cpp-python's sdist, CMake
# comes from its PyPI wheel in a build-only virtual environment. About 15 minutes on 2 cores.
set -euo pipefail

VERSION="0.3.36"
# The CPU flags the build targets (see scripts/llama-cpu-flags.sh); part of what a cached build must match.
. "$(dirname "$0")/llama-cpu-flags.sh"
ROOT="${1:-$HOME/.cache/chatkit-llama}"
OUT="$ROOT/llama-server"
BIN="$OUT/bin/llama-server"

if [ -x "$BIN" ] && [ "$(cat "$OUT/version" 2>/dev/null)" = "$VERSION $LLAMA_CPU_TARGET" ]; then
    echo "llama-server $VERSION present at $BIN"
    exit 0
fi

mkdir -p "$ROOT"
WORK="$(mktemp -d "$ROOT/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# CMake from PyPI, in its own environment so the model server's environment stays as pip made it.
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet "cmake>=3.21,<5"

# The sdist only (no build: pip just prepares its metadata).
"$WORK/venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$VERSION" -d "$WORK/sdist"
tar -xzf "$WORK/sdist/llama_cpp_python-$VERSION.tar.gz" -C "$WORK" "llama_cpp_python-$VERSION/vendor/llama.cpp"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"

# A static binary with only the server: no web UI download, no HTTPS, no tests or other tools.
"$WORK/venv/bin/cmake" -S "$SRC" -B "$WORK/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$OUT" \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_CURL=OFF \
    $LLAMA_CPU_CMAKE_ARGS
"$WORK/venv/bin/cmake" --build "$WORK/build" --target llama-server --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

rm -rf "$OUT"
mkdir -p "$OUT/bin"
cp "$WORK/build/bin/llama-server" "$BIN"
echo "$VERSION $LLAMA_CPU_TARGET" > "$OUT/version"
"$BIN" --version || true
echo "llama-server $VERSION built at $BIN"

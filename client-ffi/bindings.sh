#!/usr/bin/env bash
# Phone bindings for amparo-core, in one command.
#
#   client-ffi/bindings.sh            build libamparo_ffi, generate Python, Kotlin and Swift
#                                     sources into client-ffi/out/ (gitignored)
#   client-ffi/bindings.sh test       the same, then the binding tests: pytest drives the whole
#                                     story from Python, and a Kotlin program does it on the JVM,
#                                     each against a real amparo-relay process
#
# Installs what the tests need, once, inside client-ffi/.tools/ (gitignored): pytest from
# PyPI in a virtualenv, the Kotlin compiler from npm (package kotlin-compiler), and JNA from
# Debian (libjna-java, with apt-get) when /usr/share/java/jna.jar is missing.
# The Android and iOS builds are documented in README.md; they need SDKs this script does
# not install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
FFI="$ROOT/client-ffi"
OUT="$FFI/out"
TOOLS="$FFI/.tools"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LIB="$TARGET_DIR/debug/libamparo_ffi.so"
MODE="${1:-generate}"

say() { printf '\n-- %s\n' "$*"; }

say "building libamparo_ffi (cdylib) and uniffi-bindgen"
start=$(date +%s)
cargo build -p amparo-ffi -p uniffi-bindgen
echo "built in $(( $(date +%s) - start )) s: $LIB"

say "generating Python, Kotlin and Swift sources into $OUT"
rm -rf "$OUT"
for lang in python kotlin swift; do
    "$TARGET_DIR/debug/uniffi-bindgen" generate --library "$LIB" --language "$lang" \
        --out-dir "$OUT/$lang" --no-format
done
cp "$LIB" "$OUT/python/"
find "$OUT" -type f | sort

[ "$MODE" = "test" ] || exit 0

# --- tools (idempotent) ---
say "test tools"
if [ ! -x "$TOOLS/venv/bin/pytest" ]; then
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check pytest
fi
"$TOOLS/venv/bin/pytest" --version
KOTLINC="$TOOLS/npm/node_modules/kotlin-compiler/bin/kotlinc"
if [ ! -x "$KOTLINC" ]; then
    mkdir -p "$TOOLS/npm"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" kotlin-compiler
fi
JNA_JAR=/usr/share/java/jna.jar
if [ ! -f "$JNA_JAR" ]; then
    if command -v sudo >/dev/null && [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libjna-java
fi
ls -l "$JNA_JAR"

# The relay the tests talk to.
cargo build -p amparo-relay --bin amparo-relay
export AMPARO_RELAY_BIN="$TARGET_DIR/debug/amparo-relay"

say "Python: pytest client-ffi/tests/python"
start=$(date +%s)
PYTHONPATH="$OUT/python" "$TOOLS/venv/bin/pytest" -q "$FFI/tests/python"
echo "Python tests took $(( $(date +%s) - start )) s"

say "Kotlin: compile and run client-ffi/tests/kotlin on the JVM"
start=$(date +%s)
mkdir -p "$OUT/kotlin-build"
"$KOTLINC" -nowarn -cp "$JNA_JAR" \
    "$OUT/kotlin/uniffi/amparo_ffi/amparo_ffi.kt" "$FFI/tests/kotlin/Story.kt" \
    -d "$OUT/kotlin-build/story.jar" 2>&1 | grep -v '^warning:' || true
[ -f "$OUT/kotlin-build/story.jar" ] || { echo "the Kotlin test did not compile" >&2; exit 1; }
echo "compiled in $(( $(date +%s) - start )) s"
KOTLIN_LIB="$(dirname "$KOTLINC")/../lib"
java -Djna.library.path="$(dirname "$LIB")" \
    -cp "$OUT/kotlin-build/story.jar:$JNA_JAR:$KOTLIN_LIB/kotlin-stdlib.jar" \
    StoryKt "$AMPARO_RELAY_BIN"
echo "Kotlin test took $(( $(date +%s) - start )) s in all"

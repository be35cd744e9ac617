#!/usr/bin/env bash
# The API bad-input sweep (issue 9): schemathesis, from PyPI, against a real
# amparo-relay process and the OpenAPI document it serves (/v1/openapi.json).
#
# Checks on every response: no 5xx, status codes, content types, headers and
# JSON bodies as documented, and (.ci/schemathesis_hooks.py) the framing of the
# binary bodies. The hooks also sign mailbox requests for real and generate
# well-framed envelope batches, so the sweep reaches storage, not only the
# first refusals. After the sweep the relay's log must hold no panic.
#
# Runs on SQLite, and also on a fresh PostgreSQL database when
# AMPARO_TEST_POSTGRES_URL is set (CI sets it).
#
#   .ci/schemathesis.sh                       # 150 examples per operation, 60 s per backend
#   SWEEP_EXAMPLES=1000 SWEEP_SECONDS=600 .ci/schemathesis.sh
#
# schemathesis is installed into .ci/venv (gitignored) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

examples="${SWEEP_EXAMPLES:-150}"
seconds="${SWEEP_SECONDS:-60}"
venv=.ci/venv

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q '4.32.5' \
    || ! "$venv/bin/python" -c 'import cryptography' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'schemathesis==4.32.5' 'cryptography>=42'
fi

# Where cargo put it (CARGO_TARGET_DIR may point anywhere), from its build messages.
relay_bin=$(cargo build --quiet -p amparo-relay --bin amparo-relay \
    --message-format=json-render-diagnostics \
    | grep -o '"executable":"[^"]*/amparo-relay"' | head -n1 | sed -e 's/^"executable":"//' -e 's/"$//')
[ -x "$relay_bin" ] || { echo "cargo did not say where it built amparo-relay" >&2; exit 1; }

work=$(mktemp -d)
relay=""
pgdb=""
cleanup() {
    if [ -n "$relay" ]; then kill "$relay" 2>/dev/null || true; wait "$relay" 2>/dev/null || true; fi
    if [ -n "$pgdb" ]; then
        psql -q "$AMPARO_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

sweep() { # sweep NAME [DATABASE_URL]
    local name=$1 db=${2:-}
    local log="$work/$name.log"
    # The hooks hold this coordinator key, so signed directories reach storage.
    local coordinator
    coordinator=$("$venv/bin/python" .ci/schemathesis_hooks.py)
    env -u DATABASE_URL ${db:+DATABASE_URL="$db"} "$relay_bin" --listen 127.0.0.1:0 \
        --data-dir "$work/$name-data" \
        --coordinator-key "$coordinator" --metrics-token "sweep-$RANDOM$RANDOM-metrics-token" \
        --log info 2>"$log" &
    relay=$!
    for _ in $(seq 1 300); do
        grep -q "listening on" "$log" 2>/dev/null && break
        kill -0 "$relay" 2>/dev/null || { cat "$log" >&2; echo "the relay did not start" >&2; exit 1; }
        sleep 0.1
    done
    local addr
    addr=$(grep -o 'listening on http://[^,]*' "$log" | head -n1 | cut -d' ' -f3)
    echo "== schemathesis on $name ($addr): $examples examples per operation, at most $seconds s"
    local status=0
    # From the scratch directory: schemathesis keeps a cache in its working directory.
    (cd "$work" && AMPARO_SWEEP_URL="$addr" SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$repo/.ci" \
        "$repo/$venv/bin/schemathesis" run "$addr/v1/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,binary_bodies_are_framed \
        --max-examples "$examples" --max-time "$seconds" --workers 2 \
        --request-timeout 30 --suppress-health-check all --no-color \
        --report junit --report-dir "$work/report-$name") || status=$?
    kill "$relay" 2>/dev/null || true
    wait "$relay" 2>/dev/null || true
    relay=""
    if grep -qi "panick" "$log"; then
        grep -i -B2 -A10 "panick" "$log" >&2
        echo "the relay panicked during the sweep on $name" >&2
        exit 1
    fi
    if [ "$status" -ne 0 ]; then
        echo "schemathesis found failures on $name (exit $status)" >&2
        exit "$status"
    fi
}

sweep sqlite

if [ -n "${AMPARO_TEST_POSTGRES_URL:-}" ]; then
    pgdb="amparo_sweep_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql -q "$AMPARO_TEST_POSTGRES_URL" -c "CREATE DATABASE $pgdb" >/dev/null
    sweep postgres "${AMPARO_TEST_POSTGRES_URL%/*}/$pgdb"
fi
echo "== the API sweep passed"

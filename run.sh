#!/usr/bin/env bash
# The main job: builds Amparo, starts the relay on 127.0.0.1:8470 with its
# embedded SQLite database in ./amparo-relay-data, sends one report end to end
# through it (`amparo demo`: a survivor seals a report with a photo, a focal
# point fetches, opens and answers it, the survivor reads the answer), then
# keeps the relay running until Ctrl-C.
#
# Settings go through the relay's own variables (see `amparo-relay --help`),
# e.g. AMPARO_LISTEN=0.0.0.0:8470 ./run.sh
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release -p amparo-relay -p amparo

log=$(mktemp)
trap 'kill "$relay" 2>/dev/null || true; rm -f "$log"' EXIT INT TERM
./target/release/amparo-relay 2> >(tee "$log" >&2) &
relay=$!

for _ in $(seq 1 100); do
    grep -q "listening on" "$log" 2>/dev/null && break
    kill -0 "$relay" 2>/dev/null || { echo "run.sh: the relay did not start (see above)" >&2; exit 1; }
    sleep 0.1
done
addr=$(grep -o 'listening on http://[^,]*' "$log" | head -n1 | cut -d' ' -f3)
key=$(grep -o 'receipt key [A-Za-z0-9_-]*' "$log" | head -n1 | cut -d' ' -f3)

echo
./target/release/amparo demo --relay "$addr" --relay-key="$key"
echo
echo "The relay keeps running at $addr (data in ./amparo-relay-data). Ctrl-C stops it."
wait "$relay"

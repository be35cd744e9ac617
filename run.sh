#!/usr/bin/env bash
# The main job: builds Amparo, starts the relay on 127.0.0.1:8470 with its
# embedded SQLite database in ./amparo-relay-data, sends one report end to end
# through it (`amparo demo`: a survivor seals a report with a photo, a focal
# point fetches, opens and answers it, the survivor reads the answer), then
# keeps the relay running until Ctrl-C. The demo's profiles are kept in
# ./amparo-demo (made anew at each run; AMPARO_DEMO_DIR to change it), so the focal point's desk can be
# opened on the case the demo sent: the command is printed at the end.
#
# Settings go through the relay's own variables (see `amparo-relay --help`),
# e.g. AMPARO_LISTEN=0.0.0.0:8470 ./run.sh
#
# The programs are run from wherever cargo put them (CARGO_TARGET_DIR,
# build.target-dir, a cross target): cargo's build messages say where.
set -euo pipefail
cd "$(dirname "$0")"

# Cargo's JSON messages go to stdout (one per line); its progress and any
# compiler errors still go to stderr, as usual.
messages=$("${CARGO:-cargo}" build --release -p amparo-relay -p amparo -p amparo-desk \
    --message-format=json-render-diagnostics)

# binary NAME: the executable cargo reported for the binary target NAME.
binary() {
    local path
    path=$(printf '%s\n' "$messages" | grep '"reason":"compiler-artifact"' \
        | grep -o "\"executable\":\"[^\"]*/$1\"" | head -n1 \
        | sed -e 's/^"executable":"//' -e 's/"$//') || true
    if [ -z "$path" ] || [ ! -x "$path" ]; then
        echo "run.sh: cargo built $1 but did not say where (or it is not there: '$path')" >&2
        exit 1
    fi
    printf '%s\n' "$path"
}
relay_bin=$(binary amparo-relay)
amparo_bin=$(binary amparo)
desk_bin=$(binary amparo-desk)

log=$(mktemp)
relay=""
trap '[ -n "$relay" ] && kill "$relay" 2>/dev/null; rm -f "$log"' EXIT INT TERM
"$relay_bin" 2> >(tee "$log" >&2) &
relay=$!

for _ in $(seq 1 100); do
    grep -q "listening on" "$log" 2>/dev/null && break
    kill -0 "$relay" 2>/dev/null || { echo "run.sh: the relay did not start (see above)" >&2; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$log" || { echo "run.sh: the relay did not start within 10 s (see above)" >&2; exit 1; }
addr=$(grep -o 'listening on http://[^,]*' "$log" | head -n1 | cut -d' ' -f3)
# The receipt key, as an operator reads it (same settings, same data directory).
key=$("$relay_bin" key)

# The demo's profiles, kept for the desk (only what this script made;
# AMPARO_DEMO_DIR puts them elsewhere).
demo_dir="${AMPARO_DEMO_DIR:-amparo-demo}"
rm -rf "$demo_dir"
echo
"$amparo_bin" demo --relay "$addr" --relay-key="$key" --keep "$demo_dir"
echo
echo "The focal point's desk, on the case the demo sent (PIN: focal-ucayali-pin-2468):"
echo "    $desk_bin --profile $demo_dir/focal-ucayali"
echo
echo "The relay keeps running at $addr (data in ${AMPARO_DATA_DIR:-./amparo-relay-data}; receipt key $key, also printed by \`$relay_bin key\`). Ctrl-C stops it."
wait "$relay"

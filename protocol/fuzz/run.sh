#!/usr/bin/env bash
# Fuzz every decoder of amparo-protocol with cargo-fuzz (libFuzzer).
#
#   ./run.sh [seconds-per-target] [target...]     (default: 60 s, all targets)
#
# How it works:
# * This directory is a cargo-fuzz project of its own (own [workspace], own
#   Cargo.lock and target/), with one target per decoder in fuzz_targets/:
#   envelope, padding, payload, directory, receipt, bundle, envelope_open,
#   wire (the relay's binary HTTP bodies), mailboxes (the many-mailbox
#   fetch/ack bodies and answers), request (Amparo-Signature) and
#   admission (challenges and proofs), token (admission tokens, token
#   requests, vouchers, issuer keys), decompress (compressed bodies).
#   Each calls the decoder on the raw input and, where it succeeds, checks
#   that re-encoding gives the input (or an equal value) back; a panic or a
#   failed assert is a finding.
# * cargo-fuzz is installed if missing (`cargo install cargo-fuzz --locked`).
# * cargo-fuzz passes nightly-only flags (-Zsanitizer=address, sancov
#   options). There is no nightly toolchain to rely on, so the script uses the
#   machine's STABLE toolchain (RUSTUP_TOOLCHAIN=stable where rustup is
#   present) with RUSTC_BOOTSTRAP=1, which makes stable rustc accept them.
#   The stable toolchain ships the AddressSanitizer runtime. If the
#   address-sanitized build fails, the script falls back to
#   `--sanitizer none` and says so; FUZZ_SANITIZER=none forces that.
# * All targets are built first (`cargo fuzz build`), then run ONE AT A TIME
#   (the machine has 2 cores) for N seconds each:
#     cargo fuzz run <target> target/fuzz-corpus/<target> corpus/<target> \
#         -- -max_total_time=N -print_final_stats=1
#   corpus/<target>/ is the committed seed corpus (real encoded values,
#   written by `cargo run --release --example make_corpus`); it is only read.
#   New inputs the fuzzer finds go to target/fuzz-corpus/<target>/ (ignored
#   by git, kept between runs so a later run starts from them).
# * A crash, failed assert, timeout or out-of-memory makes libFuzzer stop that
#   target and write the input to artifacts/<target>/ (ignored by git).
#   Reproduce one with: cargo fuzz run <target> artifacts/<target>/<file>
# * At the end it prints, per target, the executions reached and whether
#   anything was found; logs are in target/fuzz-logs/<target>.log. The exit
#   status is 1 if any target found something (or failed to run), else 0.
set -uo pipefail

cd "$(dirname "$0")"
SECS="${1:-60}"
shift || true
case "$SECS" in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target] [target...]" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
if command -v rustup >/dev/null 2>&1; then
  export RUSTUP_TOOLCHAIN=stable
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { echo "cannot install cargo-fuzz" >&2; exit 1; }
fi
echo "== $(cargo fuzz --version), $(rustc --version), RUSTC_BOOTSTRAP=1"

if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi

SANITIZER="${FUZZ_SANITIZER:-address}"
echo "== building ${TARGETS[*]} (sanitizer: $SANITIZER)"
if ! cargo fuzz build --sanitizer "$SANITIZER"; then
  if [ "$SANITIZER" = none ]; then
    echo "build failed" >&2
    exit 1
  fi
  echo "!! the build with --sanitizer $SANITIZER failed: falling back to --sanitizer none" >&2
  SANITIZER=none
  cargo fuzz build --sanitizer none || { echo "build failed" >&2; exit 1; }
fi

mkdir -p target/fuzz-logs
declare -A EXECS RESULT
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "target/fuzz-corpus/$t" "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  log="target/fuzz-logs/$t.log"
  echo "== fuzzing $t for ${SECS}s (log: $log)"
  cargo fuzz run --sanitizer "$SANITIZER" "$t" "target/fuzz-corpus/$t" "corpus/$t" -- \
    -max_total_time="$SECS" -print_final_stats=1 -timeout=30 >"$log" 2>&1
  rc=$?
  after=$(ls "artifacts/$t" | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  fi
  EXECS[$t]="${execs:-?}"
  if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
    RESULT[$t]="none"
  else
    status=1
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //')
    if [ -n "$artifact" ]; then
      RESULT[$t]="FOUND: $artifact"
    elif [ "$after" -ne "$before" ]; then
      RESULT[$t]="FOUND: new file in artifacts/$t/"
    else
      RESULT[$t]="FAILED to run (exit $rc, see $log)"
    fi
    echo "!! $t: ${RESULT[$t]}"
    grep -m1 -A3 'panicked at' "$log" || grep -m3 -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" || tail -20 "$log"
  fi
done

echo
echo "== summary (${SECS}s per target, sanitizer: $SANITIZER)"
printf '%-15s %14s  %s\n' target executions findings
for t in "${TARGETS[@]}"; do
  printf '%-15s %14s  %s\n' "$t" "${EXECS[$t]}" "${RESULT[$t]}"
done
exit "$status"

# shellcheck shell=sh
# batch.sh MODE CMD...: several commands in one round trip (src/remote/batch.ts), in order, each a
# child `sh -c CMD` with no stdin (nothing it sets leaks into the next). For each command that ran:
#   "pgtls-cmd RC OUTLEN ERRLEN\n", then OUTLEN bytes of its stdout, then ERRLEN bytes of its stderr.
# MODE stop: the first command that fails ends the batch (the rest did not run: no frame);
# MODE all: every command runs.
# MODE first: only the first command's failure ends the batch (the run lock, then what it guards).
# Framed by lengths, not a marker: what a command prints can come from files another user
# controls, and the argv of this script is visible in /proc.
set -u
mode=$1
shift
# no temp file (a full or read-only /tmp): say so, the controller sends the commands one by one
out=$(mktemp 2>/dev/null) && err=$(mktemp 2>/dev/null) || { rm -f -- "${out:-}"; echo pgtls-batch-unavailable; exit 0; }
trap 'rm -f -- "$out" "$err"' EXIT
n=0
for c; do
  n=$((n + 1))
  rc=0
  sh -c "$c" </dev/null >"$out" 2>"$err" || rc=$?
  printf 'pgtls-cmd %s %s %s\n' "$rc" "$(wc -c <"$out" | tr -d ' ')" "$(wc -c <"$err" | tr -d ' ')"
  cat -- "$out" "$err"
  if [ "$rc" != 0 ] && { [ "$mode" = stop ] || { [ "$mode" = first ] && [ "$n" = 1 ]; }; }; then exit 0; fi
done

# shellcheck shell=sh
# batch.sh MODE INPUTS CMD...: several commands in one round trip (src/remote/batch.ts), in order, each a
# child `sh -c CMD` (nothing it sets leaks into the next). For each command that ran:
#   "pgtls-cmd RC OUTLEN ERRLEN\n", then OUTLEN bytes of its stdout, then ERRLEN bytes of its stderr.
# MODE stop: the first command that fails ends the batch (the rest did not run: no frame);
# MODE all: every command runs.
# MODE first: only the first command's failure ends the batch (the run lock, then what it guards).
# INPUTS "-": no command has stdin (each gets /dev/null). Else one character per command, 1 for a
# command with stdin: the batch's own stdin is one base64 line per such command, in order, decoded
# into that command's stdin through a pipe (a password for psql: never in argv, never in a file).
# Framed by lengths, not a marker: what a command prints can come from files another user
# controls, and the argv of this script is visible in /proc.
set -u
mode=$1 inputs=$2
shift 2
# no temp file (a full or read-only /tmp), or stdin to decode without base64: say so, the
# controller sends the commands one by one
if [ "$inputs" != - ] && ! command -v base64 >/dev/null 2>&1; then echo pgtls-batch-unavailable; exit 0; fi
out=$(mktemp 2>/dev/null) && err=$(mktemp 2>/dev/null) || { rm -f -- "${out:-}"; echo pgtls-batch-unavailable; exit 0; }
trap 'rm -f -- "$out" "$err"' EXIT
n=0
for c; do
  n=$((n + 1))
  rc=0
  case $inputs in
  1*)
    line=''
    IFS= read -r line || :
    # printf is a builtin: the decoded text is in no process's argv
    printf '%s\n' "$line" | base64 -d 2>/dev/null | sh -c "$c" >"$out" 2>"$err" || rc=$?
    ;;
  *) sh -c "$c" </dev/null >"$out" 2>"$err" || rc=$? ;;
  esac
  [ "$inputs" = - ] || inputs=${inputs#?}
  printf 'pgtls-cmd %s %s %s\n' "$rc" "$(wc -c <"$out" | tr -d ' ')" "$(wc -c <"$err" | tr -d ' ')"
  cat -- "$out" "$err"
  if [ "$rc" != 0 ] && { [ "$mode" = stop ] || { [ "$mode" = first ] && [ "$n" = 1 ]; }; }; then exit 0; fi
done

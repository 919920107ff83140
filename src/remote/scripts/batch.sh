# shellcheck shell=sh
# batch.sh MODE INPUTS CMD...: several commands in one round trip (src/remote/batch.ts), each a child
# `sh -c CMD` (nothing it sets leaks into the next). For each command that ran, in order:
#   "pgtls-cmd RC OUTLEN ERRLEN\n", then OUTLEN bytes of its stdout, then ERRLEN bytes of its stderr.
# MODE stop: one after the other; the first command that fails ends the batch (the rest did not
#   run: no frame).
# MODE all: one after the other, every command runs.
# MODE first: one after the other; only the first command's failure ends the batch (the run lock,
#   then what it guards).
# MODE parallel: every command at once (read-only commands: reads and queries), answers in order.
# MODE first-parallel: the first alone (the lock; its failure ends the batch), then the rest at once.
# INPUTS "-": no command has stdin (each gets /dev/null). Else one character per command, 1 for a
# command with stdin: the batch's own stdin is one base64 line per such command, in order, decoded
# into that command's stdin through a pipe (a password for psql: never in argv, never in a file).
# Framed by lengths, not a marker: what a command prints can come from files another user
# controls, and the argv of this script is visible in /proc.
set -u
nl='
'
mode=$1 inputs=$2
shift 2
# The agent ends a command whose controller is gone with TERM, its children first (a commit.sh that
# is installing ignores it and finishes). So batch.sh lives until what it started has ended (a run
# lock is not seen as dead while its commit still writes) and starts nothing more.
stopped=0
trap 'stopped=1' HUP INT TERM
# no private temp directory (a full or read-only /tmp), or stdin to decode without base64: say so,
# the controller sends the commands one by one
if [ "$inputs" != - ] && ! command -v base64 >/dev/null 2>&1; then echo pgtls-batch-unavailable; exit 0; fi
d=$(mktemp -d 2>/dev/null) || { echo pgtls-batch-unavailable; exit 0; }
trap 'rm -rf -- "$d"' EXIT
# next_input: whether the next command has stdin, and its line (read here, in order: a command put
# in the background gets /dev/null for stdin)
next_input() {
  has=0 line=''
  case $inputs in 1*) has=1 ;; esac
  [ "$inputs" = - ] || inputs=${inputs#?}
  if [ "$has" = 1 ]; then IFS= read -r line || :; fi
}
# run N CMD HAS LINE: command N, its outputs in $d
run() {
  if [ "$3" = 1 ]; then
    # printf is a builtin: the decoded text is in no process's argv
    printf '%s\n' "$4" | base64 -d 2>/dev/null | sh -c "$2" >"$d/$1.out" 2>"$d/$1.err"
  else
    sh -c "$2" </dev/null >"$d/$1.out" 2>"$d/$1.err"
  fi
}
# frame N RC: command N's frame, its two lengths from one `stat` (the parallel modes frame all their
# commands at the end with one stat and one cat: a run of a few hundred commands counts processes)
frame() {
  # shellcheck disable=SC2046
  set -- "$1" "$2" $(stat -c %s -- "$d/$1.out" "$d/$1.err")
  printf 'pgtls-cmd %s %s %s\n' "$2" "$3" "$4"
  cat -- "$d/$1.out" "$d/$1.err"
}
n=0
for c; do
  [ "$stopped" = 0 ] || break
  n=$((n + 1))
  case $mode in
  parallel | first-parallel)
    if [ "$mode" = first-parallel ] && [ "$n" = 1 ]; then
      rc=0
      next_input
      run 1 "$c" "$has" "$line" || rc=$?
      frame 1 "$rc"
      [ "$rc" = 0 ] && [ "$stopped" = 0 ] || exit 0
    else
      next_input
      { rc=0; run "$n" "$c" "$has" "$line" || rc=$?; echo "$rc" >"$d/$n.rc"; } &
    fi
    ;;
  *)
    rc=0
    next_input
    run "$n" "$c" "$has" "$line" || rc=$?
    frame "$n" "$rc"
    [ "$stopped" = 0 ] || exit 0
    if [ "$rc" != 0 ] && { [ "$mode" = stop ] || { [ "$mode" = first ] && [ "$n" = 1 ]; }; }; then exit 0; fi
    ;;
  esac
done
case $mode in parallel | first-parallel) ;; *) exit 0 ;; esac
# (a trapped TERM interrupts wait: wait again until every command has ended)
until wait; do :; done
first=1
[ "$mode" = first-parallel ] && first=2
[ "$first" -le "$n" ] || exit 0
i=$((first - 1))
set --
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  set -- "$@" "$d/$i.out" "$d/$i.err"
done
sizes=$(stat -c %s -- "$@")
# every header in a file of its own, then ONE cat for all the frames (a cat per frame was a process
# per command)
i=$((first - 1))
set --
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  rc=255
  IFS= read -r rc <"$d/$i.rc" 2>/dev/null || rc=255
  out=${sizes%%"$nl"*} sizes=${sizes#*"$nl"}
  err=${sizes%%"$nl"*} sizes=${sizes#*"$nl"}
  printf 'pgtls-cmd %s %s %s\n' "$rc" "$out" "$err" >"$d/$i.head"
  set -- "$@" "$d/$i.head" "$d/$i.out" "$d/$i.err"
done
cat -- "$@"

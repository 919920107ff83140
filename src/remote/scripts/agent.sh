# shellcheck shell=sh
# agent.sh READY: the long-lived shell of one (host, user) for a whole run (src/remote/stream-shell.ts).
# It is started ONCE per (host, user) through the same wrapper a single command used to get (plain,
# runuser, `sudo -n`, or `sudo -S` with the become password as the first line of stdin), so sudo runs
# once per shell, not once per command. Then, for every command, on stdin:
#   "NONCE CMDLEN INLEN\n", CMDLEN bytes of command text, INLEN bytes of that command's stdin
# and back: the command's stdout then "NONCE RC\n" on stdout; its stderr then "NONCE\n" on stderr.
# NONCE is 32 random hex digits per command: the controller cuts each stream at its first NONCE, so
# every byte before it is the command's own (binary-safe, nothing to escape).
# Why each command is a child `sh -c` behind its own pipes:
#  - nothing a command sets (variables, cwd, traps, umask) leaks into the next one;
#  - stdin: the command reads exactly INLEN bytes and then EOF; what it leaves unread is drained,
#    so the next header is always where the controller put it (a command that reads no stdin is fine);
#  - stdout/stderr go through `cat`, which ends only when every writer is gone: a daemon the command
#    left holding them delays the marker (as an ssh channel would wait) instead of writing into the
#    next command's output. The command never sees this shell's own descriptors (3-9 closed).
#  - a command longer than an argument may be (128 KiB: a batch of scripts) reaches its `sh`
#    through a pipe instead.
# A command that is given stdin (content from the controller: commit.sh, SQL for psql) is watched:
# while it runs nothing may arrive on our stdin (the controller sends the next header only once it
# has this command's marker), so once the command has its stdin a watcher reads ours, and end of
# file there means the connection is gone (a killed controller, a cut network): the command gets
# TERM, so that its own traps clean up (commit.sh removes the content it was receiving; in its commit
# phase it ignores TERM and finishes) instead of it going on for a controller that is gone. The
# watcher is ended before the marker is printed. A command without stdin needs nothing from the
# controller and runs to its end whatever happens to the connection (a restart cut between its stop
# and its start would leave the server down).
# Anything unexpected (bad header, short read) ends this shell: the controller then opens a new one.
set -u
ready=$1
# Exact-length reads: GNU head -c never reads past N bytes of a pipe; proved here, not assumed.
# Elsewhere dd bs=1 (one read(2) per byte: slow, but exact).
if [ "$(printf abc | { head -c 1 >/dev/null; cat; })" = bc ]; then
  take() { head -c "$1"; }
else
  take() { dd bs=1 count="$1" 2>/dev/null; }
fi
# run_text: the command (stdin: its stdin; fd 6: its stdout; fd 8: where it reports its pid). An
# argument is limited to 128 KiB, so a long command (a batch of scripts) is read from a pipe.
run_text() {
  if [ "${#wrapped}" -le 32768 ]; then
    sh -c "$wrapped" 1>&6 3>&- 4>&- 5<&- 6>&- 7>&-
  else
    exec 5<&0
    printf '%s\n' "$wrapped" | sh -c '. /dev/fd/9' sh 9<&0 0<&5 5<&- 1>&6 3>&- 4>&- 6>&- 7>&-
  fi
}
# run_command: the command, its code on fd 7. Without stdin, as it is; with stdin, behind a line that
# reports its pid on fd 8, fed exactly ilen bytes of our stdin and drained after, next to
# watch_command.
run_command() {
  if [ "$ilen" -eq 0 ]; then
    wrapped=$cmd
    run_text </dev/null
    echo "$?" >&7
    return 0
  fi
  exec 5<&0
  wrapped="printf '%s\\n' \"\$\$\" >&8; exec 8>&- 9<&-
$cmd"
  {
    { take "$ilen" <&5; echo fed >&8; } | {
      run_text
      echo "$?" >&7
      cat >/dev/null
    }
  } 8>&1 | watch_command >/dev/null 2>&1 7>&-
}
# children PID: the processes PID started (Linux /proc; without the children file, by their parent)
children() {
  if [ -r "/proc/$1/task/$1/children" ]; then
    cat -- "/proc/$1/task/$1/children"
    return 0
  fi
  for st in /proc/[0-9]*/stat; do
    IFS= read -r l 2>/dev/null <"$st" || continue
    # shellcheck disable=SC2086
    set -- "$1" ${l##*) }
    [ "${3:-}" != "$1" ] || { st=${st%/stat} && printf '%s\n' "${st##*/}"; }
  done
}
# watch_command (stdin: the command's pid, and "fed" once its stdin is complete; end of file once
# it has ended): from then until it ends, end of file on fd 5 (our stdin) TERMs it.
watch_command() {
  pid='' fed=''
  while [ -z "$pid" ] || [ -z "$fed" ]; do
    IFS= read -r l || return 0
    case $l in fed) fed=1 ;; '' | *[!0-9]*) ;; *) pid=$l ;; esac
  done
  (
    IFS= read -r l <&5 || :
    # the command's shell runs its commands as children (it does not pass TERM on): they get it
    # first (a script's own traps: commit.sh's), then the shell (a command line's own traps)
    # shellcheck disable=SC2046
    kill -TERM $(children "$pid") "$pid" 2>/dev/null
  ) &
  w=$!
  while IFS= read -r l; do :; done
  kill -KILL "$w" 2>/dev/null
  wait "$w" 2>/dev/null
  return 0
}
exec 3>&1 4>&2
printf 'pgtls-agent-ready %s\n' "$ready"
while IFS=' ' read -r nonce clen ilen; do
  case $nonce in '' | *[!0-9a-f]*) exit 90 ;; esac
  [ "${#nonce}" -eq 32 ] || exit 90
  case $clen in '' | *[!0-9]*) exit 90 ;; esac
  case $ilen in '' | *[!0-9]*) exit 90 ;; esac
  cmd=$(take "$clen"; echo x) || exit 91
  cmd=${cmd%x}
  [ "${#cmd}" -gt 0 ] || exit 91
  rc=$(
    {
      {
        {
          run_command
        } 2>&1 1>&6 | cat >&4
      } 6>&1 | cat >&3
    } 7>&1
  )
  case $rc in '' | *[!0-9]*) rc=255 ;; esac
  printf '%s %s\n' "$nonce" "$rc" >&3
  printf '%s\n' "$nonce" >&4
done

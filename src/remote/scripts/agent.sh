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
#    next command's output. The command never sees this shell's own descriptors (3, 4, 6, 7 closed).
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
          if [ "$ilen" -eq 0 ]; then
            sh -c "$cmd" </dev/null 3>&- 4>&- 6>&- 7>&-
            echo "$?" >&7
          else
            take "$ilen" | {
              sh -c "$cmd" 3>&- 4>&- 6>&- 7>&-
              echo "$?" >&7
              cat >/dev/null
            }
          fi
        } 2>&1 1>&6 | cat >&4
      } 6>&1 | cat >&3
    } 7>&1
  )
  case $rc in '' | *[!0-9]*) rc=255 ;; esac
  printf '%s %s\n' "$nonce" "$rc" >&3
  printf '%s\n' "$nonce" >&4
done

# read-many.sh DIROP CAP PATH...: several files in one round trip, each exactly as read.sh reads it
# (as the user who controls its directory, never through a link another user owns, at most CAP
# bytes), for the executor's read cache (src/core/host-session.ts). For each PATH, in order:
#   "pgtls-file RC OUTLEN ERRLEN\n", then OUTLEN bytes of read.sh's output ("MODE OWNER GROUP\n" and
#   the content; RC 0), then ERRLEN bytes of its stderr. RC 3: absent; any other RC: that file failed
#   (the controller reads it again on its own, for read.sh's own error).
# Framed by lengths, not by a marker: a file another user controls (postgresql.auto.conf) could hold
# any marker, since the argv of this script is visible in /proc; lengths it cannot forge.
#
# The cost is per directory, not per file: each directory is resolved once and all its files are
# read by ONE dirop (`read-many`, as that directory's user). That dirop frames its files itself, so
# what it prints is checked here before any of it is passed on: every header, every length, and the
# total, each file's frame copied into a file of root's own. A directory whose answer does not add up
# (a file that changed while it was read, or a user who tampered with the dirop's output) gets
# RC 97 for each of its files: the controller reads those again one by one. Whatever happens in one
# directory (a refusal: pgtls_die exits) stays in its own subshell and its own frames.
set -u
DIROP=$1 cap=$2
shift 2
# no temp directory (a full or read-only /tmp): exit 97, the controller reads each file on its own
tmp=$(mktemp -d 2>/dev/null) || exit 97
trap 'rm -rf -- "$tmp"' EXIT
n=0
for p; do
  n=$((n + 1))
  pgtls_split "$p"
  eval "rm_dir_$n=\$pparent rm_base_$n=\$pbase"
done

# bad FRAME RC ERRFILE: FRAME is a failure, with ERRFILE's text as its stderr
bad() {
  { printf 'pgtls-file %s 0 %s\n' "$2" "$(wc -c < "$3" | tr -d ' ')"; cat -- "$3"; } > "$tmp/f$1"
}

# the directories in order of first appearance; each with the indexes of its files
i=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  [ ! -e "$tmp/f$i" ] || continue
  eval "dir=\$rm_dir_$i"
  idx='' d='' b=''
  set --
  j=$((i - 1))
  while [ "$j" -lt "$n" ]; do
    j=$((j + 1))
    eval "d=\$rm_dir_$j"
    [ "$d" = "$dir" ] || continue
    eval "b=\$rm_base_$j"
    idx="$idx $j"
    set -- "$@" "$b"
    : > "$tmp/f$j"
  done
  rc=0
  (
    pgtls_resolve_dir "$dir" || exit 3
    pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$pdir" read-many "$cap" "$@"
  ) > "$tmp/out" 2> "$tmp/err" || rc=$?
  if [ "$rc" != 0 ]; then
    # the whole directory failed (absent, refused, cannot be entered): each of its files says so
    for j in $idx; do bad "$j" "$rc" "$tmp/err"; done
    continue
  fi
  # each frame of the dirop's answer checked, then copied into its file's own frame
  used=0 ok=1
  set --
  {
    for j in $idx; do
      IFS=' ' read -r tag frc olen elen || { ok=''; break; }
      [ "$tag" = pgtls-file ] || { ok=''; break; }
      case "$frc$olen$elen" in '' | *[!0-9]*) ok=''; break ;; esac
      case "$frc" in 0 | 1 | 3 | 65) ;; *) ok=''; break ;; esac
      h="pgtls-file $frc $olen $elen"
      used=$((used + ${#h} + 1 + olen + elen))
      if [ $((olen + elen)) -eq 0 ]; then printf '%s\n' "$h" > "$tmp/f$j"
      else { printf '%s\n' "$h"; head -c "$((olen + elen))"; } > "$tmp/f$j"; fi
      set -- "$@" "$tmp/f$j"
    done
  } < "$tmp/out"
  if [ -n "$ok" ]; then
    # every frame whole (root's own copies add up), and nothing in the answer but its frames:
    # wc prints the answer's size first and, last, that plus the copies' (the total)
    sizes=$(wc -c -- "$tmp/out" "$@") || ok=''
    first=${sizes%%'
'*} last=${sizes##*'
'}
    # shellcheck disable=SC2086
    set -- $first
    [ "${1:-}" = "$used" ] || ok=''
    # shellcheck disable=SC2086
    set -- $last
    [ "${1:-}" = "$((used * 2))" ] || ok=''
  fi
  if [ -z "$ok" ]; then
    printf 'pgtls: %s: its files changed while they were read (or the answer was not what pgtls sent): read one by one\n' "$dir" > "$tmp/err"
    for j in $idx; do bad "$j" 97 "$tmp/err"; done
  fi
done
i=0
set --
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  set -- "$@" "$tmp/f$i"
done
[ "$n" = 0 ] || cat -- "$@"

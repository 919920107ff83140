# shellcheck shell=sh
# Functions every pgtls host script starts with (src/remote/scripts.ts prepends this file).
#
# The rule they enforce: no privilege crosses a directory boundary. pgtls runs as root, but many of
# the directories it writes into belong to the database's OS user (postgres). Inside such a directory
# every operation runs AS ITS OWNER (runuser), so a link or a swapped file there can only ever reach
# what that user could reach anyway. Root acts by itself only in directories where nobody else can
# add, rename or replace an entry (root-owned, not writable by others, every parent too).
# Symbolic links owned by another user are refused, naming the link.

# pgtls_die MESSAGE: the error the controller shows (exit 65: a refusal, not a crash).
pgtls_die() {
  printf 'pgtls: %s\n' "$*" >&2
  exit 65
}

umask 077
pgtls_me=$(id -u)

# pgtls_started PID: when the process started (clock ticks since boot; empty when it is gone): with the
# pid, it names one process for good (a pid can be reused, a pid and a start time cannot)
pgtls_started() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
pgtls_me_name=$(id -un)
# the largest file pgtls reads (the controller passes it; a link to /dev/zero must not hang a run)
cap=${cap:-16777216}

# pgtls_user_of UID: the user name for a uid (the number when it has none).
pgtls_user_of() { getent passwd "$1" 2>/dev/null | cut -d: -f1 | grep . || printf '%s\n' "$1"; }

# pgtls_writable_by_others MODE (octal from stat %a): group or others may write (no process spawned)
pgtls_writable_by_others() { [ $((0$1 & 022)) -ne 0 ]; }
pgtls_sticky() { [ $((0$1 & 01000)) -ne 0 ]; }

# pgtls_resolve_dir DIR: sets pdir (its physical path) and puser (who acts inside it: root only
# when root alone controls the directory and every parent, else the owner of the first directory
# that is not root's). Returns 1 (pmissing = the first missing component) when DIR does not exist.
pgtls_resolve_dir() {
  # the same directory twice in one script (a write resolves it, then works in it): known
  if [ -n "${presolved:-}" ] && [ "$presolved" = "$1" ]; then pdir=$presolved_dir puser=$presolved_user; return 0; fi
  case "$1" in /*) ;; *) pgtls_die "$1: not an absolute path" ;; esac
  case "$1" in *'
'*) pgtls_die "a path with a newline is refused" ;; esac
  rest=${1#/} pdir='' puser='' pmissing='' hops=0
  if [ "$pgtls_me" != 0 ]; then puser=$pgtls_me_name; fi   # not root: nothing to cross, the kernel decides
  while [ -n "$rest" ]; do
    c=${rest%%/*}
    case "$rest" in */*) rest=${rest#*/} ;; *) rest='' ;; esac
    case "$c" in '' | .) continue ;; ..) pgtls_die "$1: '..' in a path is refused" ;; esac
    next="$pdir/$c"
    if [ -L "$next" ]; then
      lu=$(stat -c %u -- "$next")
      # only root's links are followed, and only where root alone could have made them
      if [ "$lu" != 0 ] && [ "$lu" != "$pgtls_me" ]; then
        pgtls_die "refusing $next: a symbolic link owned by $(pgtls_user_of "$lu") (pgtls follows no link another user controls)"
      fi
      hops=$((hops + 1))
      [ "$hops" -le 20 ] || pgtls_die "$1: too many levels of symbolic links"
      t=$(readlink -- "$next")
      case "$t" in /*) ;; *) t="$pdir/$t" ;; esac
      rest="${t#/}${rest:+/$rest}" pdir=''
      continue
    fi
    if [ ! -e "$next" ]; then pmissing=$next; return 1; fi
    [ -d "$next" ] || pgtls_die "$next is not a directory"
    # shellcheck disable=SC2046
    set -- "$1" $(stat -c '%u %a %U' -- "$next")
    o=$2 m=$3 on=$4
    if [ -z "$puser" ]; then
      if [ "$o" = 0 ]; then
        if pgtls_writable_by_others "$m" && ! pgtls_sticky "$m"; then
          pgtls_die "refusing $next: root's directory but writable by group or others (mode $m): anyone there could swap what pgtls writes"
        fi
      else
        # the boundary: from here on everything is done as this user
        puser=$on
        pboundary=$next
      fi
    elif [ "$pgtls_me" = 0 ] && [ "$o" != 0 ] && [ "$on" != "$puser" ]; then
      pgtls_die "refusing $next: owned by $on inside $pboundary, which $puser owns"
    fi
    pdir=$next
  done
  [ -n "$pdir" ] || pdir=/
  [ -n "$puser" ] || puser=root
  presolved=$1 presolved_dir=$pdir presolved_user=$puser
  return 0
}

# pgtls_as USER CMD...: CMD as USER (directly when that is who runs this script)
pgtls_as() {
  u=$1
  shift
  if [ "$u" = "$pgtls_me_name" ]; then "$@"
  elif [ "$pgtls_me" != 0 ]; then pgtls_die "cannot act as $u: pgtls is not root here (set ansible_become)"
  elif command -v runuser >/dev/null 2>&1; then runuser -u "$u" -- "$@"
  elif command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
  else pgtls_die "cannot act as $u: neither runuser nor setpriv is installed"
  fi
}

# pgtls_in DIR OP ARGS...: runs the directory operation OP (dirop.sh) inside DIR as the user who
# controls DIR. DIROP holds dirop.sh's text (the controller passes it as an argument).
pgtls_in() {
  pgtls_resolve_dir "$1" || pgtls_die "$1 does not exist (${pmissing} is missing)"
  d=$pdir
  shift
  pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$d" "$@"
}

# pgtls_state_ready: the state directory ($state) exists, is a real directory owned by the user
# running pgtls (root), mode 0700, and nobody else can change it or any of its parents.
pgtls_state_ready() {
  [ -n "$state" ] || return 0
  case "$state" in /*) ;; *) pgtls_die "pgtls_state_dir $state: not an absolute path" ;; esac
  if [ ! -e "$state" ] && [ ! -L "$state" ]; then (umask 077 && mkdir -p -- "$state"); fi
  p='' rest=${state#/}
  while [ -n "$rest" ]; do
    c=${rest%%/*}
    case "$rest" in */*) rest=${rest#*/} ;; *) rest='' ;; esac
    [ -n "$c" ] || continue
    p="$p/$c"
    [ ! -L "$p" ] || pgtls_die "state directory $state refused: $p is a symbolic link"
    # shellcheck disable=SC2046
    set -- $(stat -c '%u %a' -- "$p")
    if [ "$1" != 0 ] && [ "$1" != "$pgtls_me" ]; then
      pgtls_die "state directory $state refused: $p is owned by $(pgtls_user_of "$1"), not root (its records could have been written by anyone with that user's rights; check them and move the directory aside)"
    fi
    # (a sticky directory like /tmp is fine: nobody else can rename or remove root's entries there)
    if pgtls_writable_by_others "$2" && ! pgtls_sticky "$2"; then pgtls_die "state directory $state refused: $p is writable by group or others (mode $2)"; fi
  done
  # shellcheck disable=SC2046
  set -- $(stat -c '%u %a' -- "$state")
  [ "$1" = "$pgtls_me" ] || pgtls_die "state directory $state refused: owned by $(pgtls_user_of "$1"), not $(id -un)"
  [ "$2" = 700 ] || pgtls_die "state directory $state refused: mode $2, expected 700"
  return 0
}

# pgtls_journal PATH: the run ($runid) may leave rollback copies next to PATH: a later run that finds
# this journal of a dead run cleans them (state/runs/RUNID.journal).
pgtls_journal() {
  [ -n "$state" ] && [ -n "$runid" ] || return 0
  [ -d "$state/runs" ] || (umask 077 && mkdir -p -- "$state/runs")
  j="$state/runs/$runid.journal"
  if [ ! -e "$j" ] || ! grep -qxF -- "$1" "$j"; then printf '%s\n' "$1" >> "$j"; fi
}

# pgtls_record_original PATH RECORD: the content, owner and mode before pgtls first changed PATH,
# once ever, read as the directory's user. Prints "pgtls-orig RECORD SHA256 MODE OWNER GROUP" (or
# "... absent") for the controller to sign; a record left unsigned by a killed run is printed again.
pgtls_record_original() {
  [ -n "$state" ] && [ -n "$2" ] || return 0
  case "$1" in "$state"/*) return 0 ;; esac   # the records themselves are never recorded
  n=$2
  if [ -e "$n.orig" ] || [ -e "$n.absent" ]; then
    [ -e "$n.orig.mac" ] || pgtls_print_original "$n"
    return 0
  fi
  dir=$(dirname -- "$1") base=$(basename -- "$1")
  printf '%s' "$1" > "$n.path.tmp" && mv -f -- "$n.path.tmp" "$n.path"
  if ! pgtls_resolve_dir "$dir"; then
    : > "$n.absent"
  else
    t=$(mktemp "$n.orig.XXXXXX")
    rc=0
    pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$pdir" read "$base" "$cap" > "$t" || rc=$?
    if [ "$rc" = 3 ]; then rm -f -- "$t"; : > "$n.absent"
    elif [ "$rc" != 0 ]; then rm -f -- "$t"; exit "$rc"
    else
      head -n 1 "$t" > "$n.meta.tmp"
      tail -n +2 "$t" > "$n.orig.tmp"
      rm -f -- "$t"
      mv -f -- "$n.meta.tmp" "$n.meta"
      mv -f -- "$n.orig.tmp" "$n.orig"
    fi
  fi
  pgtls_print_original "$n"
}
# An original the controller expected (pgtls_omacs: "RECORD MAC DIGEST" lines, commit.sh's OMACS:
# it had read the file) gets the controller's MAC stored at once; any other is printed to be signed.
pgtls_print_original() {
  if [ -e "$1.orig" ]; then d="$(sha256sum < "$1.orig" | cut -c1-64) $(cat -- "$1.meta")"; else d=absent; fi
  if [ -n "${pgtls_omacs:-}" ]; then
    m=$(printf '%s\n' "$pgtls_omacs" | while read -r r mac rest; do
      if [ "$r" = "$1" ] && [ "$rest" = "$d" ]; then printf '%s\n' "$mac"; break; fi
    done)
    if [ -n "$m" ]; then
      printf '%s\n' "$m" > "$1.orig.mac.tmp" && mv -f -- "$1.orig.mac.tmp" "$1.orig.mac"
      return 0
    fi
  fi
  printf 'pgtls-orig %s %s\n' "$1" "$d"
}

# pgtls_record_installed PATH RECORD SHA MAC: what pgtls left at PATH (SHA 'absent': nothing) and the
# controller's MAC of it (empty: print "pgtls-installed RECORD SHA" for the controller to sign).
# CONTENT (a file in the state directory) is kept as RECORD.installed when PATH had an original.
pgtls_record_installed() {
  [ -n "$state" ] && [ -n "$2" ] || return 0
  case "$1" in "$state"/*) return 0 ;; esac
  n=$2
  rm -f -- "$n.installed" "$n.installed.sha256" "$n.installed.absent" "$n.installed.mac"
  if [ "$3" = absent ]; then : > "$n.installed.absent"
  elif [ -e "$n.orig" ]; then
    if [ -n "${content:-}" ]; then mv -f -- "$content" "$n.installed"; content=''
    else
      dir=$(dirname -- "$1") base=$(basename -- "$1")
      pgtls_resolve_dir "$dir" || pgtls_die "$dir vanished"
      t=$(mktemp "$n.installed.XXXXXX")
      pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$pdir" read "$base" "$cap" | tail -n +2 > "$t"
      mv -f -- "$t" "$n.installed"
    fi
  fi
  printf '%s\n' "$3" > "$n.installed.sha256"
  if [ -n "$4" ]; then printf '%s\n' "$4" > "$n.installed.mac"; else printf 'pgtls-installed %s %s\n' "$n" "$3"; fi
}

# pgtls_file_sha PATH: sha256 of a file as the directory's user sees it ('absent' when there is none)
pgtls_file_sha() {
  dir=$(dirname -- "$1") base=$(basename -- "$1")
  if ! pgtls_resolve_dir "$dir"; then echo absent; return 0; fi
  rc=0
  s=$(pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$pdir" sha "$base") || rc=$?
  if [ "$rc" = 3 ]; then echo absent; elif [ "$rc" = 0 ]; then printf '%s\n' "$s"; else exit "$rc"; fi
}

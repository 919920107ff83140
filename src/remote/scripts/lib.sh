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
# our effective uid, as `id -u` prints it (from /proc: one process less for every script)
pgtls_me=''
while IFS='	 ' read -r pgtls_k _ pgtls_e _; do
  if [ "$pgtls_k" = Uid: ]; then pgtls_me=$pgtls_e; break; fi
done 2>/dev/null </proc/self/status
case "$pgtls_me" in '' | *[!0-9]*) pgtls_me=$(id -u) ;; esac

# pgtls_started PID: when the process started (clock ticks since boot; empty when it is gone): with the
# pid, it names one process for good (a pid can be reused, a pid and a start time cannot). Read by
# the shell itself (field 22 of /proc/PID/stat, the 20th after "PID (COMM) "): no process spawned.
pgtls_started() {
  pgtls_l=''
  { IFS= read -r pgtls_l <"/proc/$1/stat"; } 2>/dev/null || return 0
  # shellcheck disable=SC2086
  set -- ${pgtls_l##*) }
  [ $# -lt 20 ] || printf '%s\n' "${20}"
}
# our user name, asked of `id` once and only where a script needs it (pgtls_me_named): as root only
# the uid matters, and a fleet run starts hundreds of these scripts (every process counts)
pgtls_me_name=''
pgtls_me_named() { [ -n "$pgtls_me_name" ] || pgtls_me_name=$(id -un); }
# the largest file pgtls reads (the controller passes it; a link to /dev/zero must not hang a run)
cap=${cap:-16777216}

# pgtls_user_of UID: the user name for a uid (the number when it has none).
pgtls_user_of() { getent passwd "$1" 2>/dev/null | cut -d: -f1 | grep . || printf '%s\n' "$1"; }

# pgtls_writable_by_others MODE (octal from stat %a): group or others may write (no process spawned)
pgtls_writable_by_others() { [ $((0$1 & 022)) -ne 0 ]; }
pgtls_sticky() { [ $((0$1 & 01000)) -ne 0 ]; }

# pgtls_split PATH: sets pparent and pbase as dirname and basename would (no process spawned)
pgtls_split() {
  pbase=$1
  while :; do case "$pbase" in ?*/) pbase=${pbase%/} ;; *) break ;; esac; done
  case "$pbase" in
  */*)
    pparent=${pbase%/*} pbase=${pbase##*/}
    while :; do case "$pparent" in ?*/) pparent=${pparent%/} ;; *) break ;; esac; done
    [ -n "$pparent" ] || pparent=/
    ;;
  *) pparent=. ;;
  esac
}

# pgtls_resolve_dir DIR: sets pdir (its physical path), puser (who acts inside it: root only
# when root alone controls the directory and every parent, else the owner of the first directory
# that is not root's) and pstat ("MODE OWNER GROUP" of pdir itself; empty for /). Returns 1
# (pmissing = the first missing component) when DIR does not exist.
# One `stat` for all the components of a path (and one more per root-owned link followed), and
# each directory resolved once per script: a script asks for the same few directories again and
# again (pgtls_resolved caches them; pgtls_in forgets them all after an operation that changes a
# directory). What is cached was checked; a directory swapped since is caught where it is used
# (dirop.sh enters it with `cd -P` and checks where it landed).
pgtls_resolved=0
pgtls_resolve_dir() {
  pr_i=0 pr_k=''
  while [ "$pr_i" -lt "$pgtls_resolved" ]; do
    pr_i=$((pr_i + 1))
    eval "pr_k=\$pgtls_rk_$pr_i"
    if [ "$pr_k" = "$1" ]; then
      eval "pdir=\$pgtls_rd_$pr_i puser=\$pgtls_ru_$pr_i pstat=\$pgtls_rs_$pr_i"
      return 0
    fi
  done
  case "$1" in /*) ;; *) pgtls_die "$1: not an absolute path" ;; esac
  case "$1" in *'
'*) pgtls_die "a path with a newline is refused" ;; esac
  pr_arg=$1 pr_path=$1 pdir='' puser='' pstat='' pmissing='' pr_hops=0
  if [ "$pgtls_me" != 0 ]; then pgtls_me_named && puser=$pgtls_me_name; fi   # not root: nothing to cross, the kernel decides
  while :; do
    # the components of pr_path as paths from /, up to a '..' (refused once reached: pr_tail)
    set --
    pr_rest=${pr_path#/} pr_pre='' pr_tail=''
    while [ -n "$pr_rest" ]; do
      pr_c=${pr_rest%%/*}
      case "$pr_c" in '' | .) ;; ..) pr_tail=$pr_rest; break ;; *) pr_pre="$pr_pre/$pr_c"; set -- "$@" "$pr_pre" ;; esac
      case "$pr_rest" in */*) pr_rest=${pr_rest#*/} ;; *) pr_rest='' ;; esac
    done
    # one line per component that exists, in order (lstat: a link is itself): "TYPE UID MODE USER GROUP PATH"
    pr_lines=''
    if [ $# -gt 0 ]; then pr_lines=$(stat -c '%A %u %a %U %G %n' -- "$@" 2>/dev/null) || true; fi
    pr_last=$pr_pre pdir='' pr_restart=''
    for pr_p; do
      pr_line=${pr_lines%%'
'*}
      case "$pr_lines" in *'
'*) pr_lines=${pr_lines#*'
'} ;; *) pr_lines='' ;; esac
      # no line for it (or the line of a later one): it does not exist (or cannot be reached)
      if [ "${pr_line#* * * * * }" != "$pr_p" ]; then pmissing=$pr_p; return 1; fi
      pr_t=${pr_line%% *} pr_r=${pr_line#* }
      pr_o=${pr_r%% *} pr_r=${pr_r#* }
      pr_m=${pr_r%% *} pr_r=${pr_r#* }
      pr_on=${pr_r%% *} pr_r=${pr_r#* }
      pr_g=${pr_r%% *}
      case "$pr_t" in
      l*)
        # only root's links are followed, and only where root alone could have made them
        if [ "$pr_o" != 0 ] && [ "$pr_o" != "$pgtls_me" ]; then
          pgtls_die "refusing $pr_p: a symbolic link owned by $(pgtls_user_of "$pr_o") (pgtls follows no link another user controls)"
        fi
        pr_hops=$((pr_hops + 1))
        [ "$pr_hops" -le 20 ] || pgtls_die "$pr_arg: too many levels of symbolic links"
        pr_tgt=$(readlink -- "$pr_p")
        case "$pr_tgt" in /*) ;; *) pr_tgt="$pdir/$pr_tgt" ;; esac
        pr_path="$pr_tgt${pr_last#"$pr_p"}${pr_tail:+/$pr_tail}" pr_restart=1
        break
        ;;
      d*) ;;
      *) pgtls_die "$pr_p is not a directory" ;;
      esac
      if [ -z "$puser" ]; then
        if [ "$pr_o" = 0 ]; then
          if pgtls_writable_by_others "$pr_m" && ! pgtls_sticky "$pr_m"; then
            pgtls_die "refusing $pr_p: root's directory but writable by group or others (mode $pr_m): anyone there could swap what pgtls writes"
          fi
        else
          # the boundary: from here on everything is done as this user
          puser=$pr_on
          pboundary=$pr_p
        fi
      elif [ "$pgtls_me" = 0 ] && [ "$pr_o" != 0 ] && [ "$pr_on" != "$puser" ]; then
        pgtls_die "refusing $pr_p: owned by $pr_on inside $pboundary, which $puser owns"
      fi
      # shellcheck disable=SC2034 # pstat: for the caller (gencert-probe.sh)
      pdir=$pr_p pstat="$pr_m $pr_on $pr_g"
    done
    [ -n "$pr_restart" ] || break
  done
  [ -z "$pr_tail" ] || pgtls_die "$pr_arg: '..' in a path is refused"
  [ -n "$pdir" ] || pdir=/
  [ -n "$puser" ] || puser=root
  pgtls_resolved=$((pgtls_resolved + 1))
  eval "pgtls_rk_$pgtls_resolved=\$pr_arg pgtls_rd_$pgtls_resolved=\$pdir pgtls_ru_$pgtls_resolved=\$puser pgtls_rs_$pgtls_resolved=\$pstat"
  return 0
}

# pgtls_as USER CMD...: CMD as USER (directly when that is who runs this script)
pgtls_as() {
  u=$1
  shift
  if [ "$pgtls_me" = 0 ] && [ "$u" = root ]; then "$@"
  elif [ "$pgtls_me" != 0 ]; then
    pgtls_me_named
    [ "$u" = "$pgtls_me_name" ] || pgtls_die "cannot act as $u: pgtls is not root here (set ansible_become)"
    "$@"
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
  # a directory made or given away: what was resolved may no longer hold
  case "$1" in mkdir) pgtls_resolved=0 ;; esac
  pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$d" "$@"
}

# pgtls_state_ready: the state directory ($state) exists, is a real directory owned by the user
# running pgtls (root), mode 0700, and nobody else can change it or any of its parents.
pgtls_state_ready() {
  [ -n "$state" ] || return 0
  case "$state" in /*) ;; *) pgtls_die "pgtls_state_dir $state: not an absolute path" ;; esac
  if [ ! -e "$state" ] && [ ! -L "$state" ]; then (umask 077 && mkdir -p -- "$state"); fi
  set --
  p='' rest=${state#/}
  while [ -n "$rest" ]; do
    c=${rest%%/*}
    case "$rest" in */*) rest=${rest#*/} ;; *) rest='' ;; esac
    [ -n "$c" ] || continue
    p="$p/$c"
    [ ! -L "$p" ] || pgtls_die "state directory $state refused: $p is a symbolic link"
    set -- "$@" "$p"
  done
  # one `stat` for the state directory and every parent: "UID MODE" each, in order
  sr=$(stat -c '%u %a' -- "$@" 2>/dev/null) || pgtls_die "state directory $state: cannot examine it"
  sr="$sr
"
  for p; do
    l=${sr%%'
'*} sr=${sr#*'
'}
    su=${l%% *} sm=${l#* }
    if [ "$su" != 0 ] && [ "$su" != "$pgtls_me" ]; then
      pgtls_die "state directory $state refused: $p is owned by $(pgtls_user_of "$su"), not root (its records could have been written by anyone with that user's rights; check them and move the directory aside)"
    fi
    # (a sticky directory like /tmp is fine: nobody else can rename or remove root's entries there)
    if pgtls_writable_by_others "$sm" && ! pgtls_sticky "$sm"; then pgtls_die "state directory $state refused: $p is writable by group or others (mode $sm)"; fi
  done
  # the last one is the state directory itself
  [ "$su" = "$pgtls_me" ] || pgtls_die "state directory $state refused: owned by $(pgtls_user_of "$su"), not $(id -un)"
  [ "$sm" = 700 ] || pgtls_die "state directory $state refused: mode $sm, expected 700"
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
  pgtls_split "$1"
  dir=$pparent base=$pbase
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
      pgtls_split "$1"
      dir=$pparent base=$pbase
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
  pgtls_split "$1"
  dir=$pparent base=$pbase
  if ! pgtls_resolve_dir "$dir"; then echo absent; return 0; fi
  rc=0
  s=$(pgtls_as "$puser" sh -c "$DIROP" pgtls-dirop "$pdir" sha "$base") || rc=$?
  if [ "$rc" = 3 ]; then echo absent; elif [ "$rc" = 0 ]; then printf '%s\n' "$s"; else exit "$rc"; fi
}

# commit.sh DIROP RUNID STATE CAP TOTAL OMACS [OP PATH FROM LEN SHA MODE OWNER GROUP BACKUP RECORD IMAC VALIDATE]...
# Every file change the executor held back until something depends on them (a reload, a verify, the
# end of a play), made in one go. OP is
#   write   the next LEN bytes of stdin become PATH (sha256 SHA; MODE OWNER GROUP, BACKUP 1: Ansible's
#           backup, VALIDATE: a command with "$1" for the temp file)
#   remove  PATH goes (into this run's rollback copy)
#   rename  FROM, a temp file this run made in PATH's directory (a key generated on the host), becomes PATH
# RECORD is where the originals are kept ('' when not tracked), IMAC the controller's MAC of what a
# write leaves ('' : printed for the controller to sign). OMACS: "RECORD MAC DIGEST" lines, the
# controller's MACs of the originals it expects (it read those files): an original recorded as
# expected is signed at once (lib.sh pgtls_print_original), any other is printed to be signed.
#
# All of stdin (TOTAL bytes) is received where only root can see it, and every write's length and
# sha256 are checked BEFORE anything on the host changes: a cut connection (its stdin ends early, like
# an ordinary end of file) installs nothing. From then on the host needs nothing more from the
# controller, so the changes are made with hangups, broken pipes and TERM ignored and the output kept
# in a file until the end: a controller that dies now cannot stop the commit half-way (which could
# leave `ssl = on` in one file while the key it names is not there yet).
set -eu
DIROP=$1 runid=$2 state=$3 cap=$4 total=$5 pgtls_omacs=$6
shift 6
[ $(($# % 12)) -eq 0 ] || pgtls_die "commit.sh: arguments must come in groups of 12"
pgtls_state_ready
all=$(mktemp "$state/.in.$runid.XXXXXX")
out=''
marker="$state/runs/$runid.commit"
finish() {
  rc=$?
  if [ -n "$out" ]; then
    cat -- "$out" >&3 2>/dev/null || true
    cat -- "$out.err" >&4 2>/dev/null || true
  fi
  rm -f -- "$all" "$all".* "$marker"
  exit "$rc"
}
trap finish EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$all"
got=$(wc -c < "$all")
[ "$got" -eq "$total" ] || pgtls_die "received $got of $total bytes (connection cut?): nothing installed, every file is unchanged"

# receive ARGS...: each write's content sliced into $all.N and checked; every directory must exist
receive() {
  off=0 i=0
  while [ $# -ge 12 ]; do
    i=$((i + 1))
    if [ "$1" = write ]; then
      tail -c "+$((off + 1))" -- "$all" | head -c "$4" > "$all.$i"
      off=$((off + $4))
      [ "$(wc -c < "$all.$i")" -eq "$4" ] || pgtls_die "$2: received too few bytes: nothing installed, every file is unchanged"
      [ "$(sha256sum < "$all.$i" | cut -c1-64)" = "$5" ] || pgtls_die "$2: the content arrived altered (sha256 differs): nothing installed, every file is unchanged"
    fi
    if [ "$1" != remove ]; then
      pgtls_split "$2"
      pgtls_resolve_dir "$pparent" || pgtls_die "cannot write $2: $pmissing does not exist; nothing installed"
    fi
    shift 12
  done
  [ "$off" -eq "$total" ] || pgtls_die "commit.sh: $total bytes sent for $off bytes of content"
}

# commit ARGS...: the changes, in the order the tasks made them
commit() {
  i=0
  while [ $# -ge 12 ]; do
    i=$((i + 1))
    op=$1 p=$2 from=$3 len=$4 sha=$5 mode=$6 owner=$7 group=$8 backup=$9
    rec=${10} imac=${11} validate=${12}
    shift 12
    pgtls_split "$p"
    dir=$pparent base=$pbase
    case "$op" in
    write)
      pgtls_resolve_dir "$dir" || pgtls_die "cannot write $p: $pmissing does not exist"
      pgtls_journal "$pdir/$base"
      pgtls_record_original "$p" "$rec"
      # (the directory's side checks the length again; the hash was checked on receipt)
      pgtls_in "$dir" write "$base" "$len" '' "$mode" "$owner" "$group" "$backup" "$runid" "$validate" < "$all.$i"
      content="$all.$i"
      pgtls_record_installed "$p" "$rec" "$sha" "$imac"
      ;;
    remove)
      pgtls_resolve_dir "$dir" || continue
      pgtls_journal "$pdir/$base"
      pgtls_record_original "$p" "$rec"
      pgtls_in "$dir" remove "$base" "$runid"
      content=''
      pgtls_record_installed "$p" "$rec" absent "$imac"
      ;;
    rename)
      pgtls_split "$from"
      [ "$pparent" = "$dir" ] || pgtls_die "$from and $p are not in one directory"
      fbase=$pbase
      pgtls_resolve_dir "$dir" || pgtls_die "cannot install $p: $pmissing does not exist"
      pgtls_journal "$pdir/$base"
      pgtls_record_original "$p" "$rec"
      pgtls_in "$dir" keep "$base" "$runid"
      pgtls_in "$dir" rename "$fbase" "$base"
      content=''
      pgtls_record_installed "$p" "$rec" "$(pgtls_file_sha "$p")" "$imac"
      ;;
    *) pgtls_die "commit.sh: unknown operation $op" ;;
    esac
  done
}

receive "$@"
trap '' HUP INT TERM PIPE
# while this runs, a later run that takes over the lock waits for it (lock.sh)
[ -d "$state/runs" ] || (umask 077 && mkdir -p -- "$state/runs")
printf '%s %s\n' "$$" "$(pgtls_started "$$")" > "$marker"
exec 3>&1 4>&2
out="$all.out"
exec > "$out" 2> "$out.err"
commit "$@"

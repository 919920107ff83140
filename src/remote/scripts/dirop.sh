# shellcheck shell=sh
# pgtls-dirop DIR OP ARGS...: one file operation inside DIR, run as the user who controls DIR
# (lib.sh's pgtls_in decides who that is). Every name is relative to DIR after a physical `cd`
# that is checked, so a directory swapped on the way cannot redirect it, and nothing here can
# reach further than the user running it.
set -eu
pgtls_die() {
  printf 'pgtls: %s\n' "$*" >&2
  exit 65
}
here=$1 op=$2
shift 2
cd -P -- "$here" 2>/dev/null || pgtls_die "cannot enter $here as $(id -un)"
[ "$(pwd -P)" = "$here" ] || pgtls_die "$here was replaced while pgtls worked on it (it is now $(pwd -P)): nothing done"
# our effective uid, as `id -u` prints it (from /proc: one process less)
me=''
while IFS='	 ' read -r k _ e _; do
  if [ "$k" = Uid: ]; then me=$e; break; fi
done 2>/dev/null </proc/self/status
case "$me" in '' | *[!0-9]*) me=$(id -u) ;; esac

# a plain name in this directory
pgtls_name() {
  case "$1" in '' | . | .. | */*) pgtls_die "bad file name '$1' in $here" ;; esac
}
# a link here is followed only when it is ours or root's
pgtls_link_ok() {
  if [ -L "$1" ]; then
    lu=$(stat -c %u -- "$1")
    [ "$lu" = "$me" ] || [ "$lu" = 0 ] || pgtls_die "refusing $here/$1: a symbolic link owned by uid $lu"
  fi
}
exists() { [ -e "$1" ] || [ -L "$1" ]; }

# rollback copies (and temp files) of NAME left by other runs: dead, since one run at a time holds
# the host's lock. They are removed, never restored.
clean_others() {
  name=$1 rid=$2
  for f in ".$name.pgtls-rb."* ".$name.pgtls-rollback" ".$name.pgtls-rollback.absent" .pgtls-tmp.*; do
    case "$f" in ".$name.pgtls-rb.$rid" | ".$name.pgtls-rb.$rid.absent" | ".pgtls-tmp.$rid."*) continue ;; esac
    if exists "$f"; then rm -f -- "$f"; fi
  done
}

# keep NAME RUNID: the state of NAME before this run first changed it, for a rollback by this run only
keep() {
  rb=".$1.pgtls-rb.$2"
  exists "$rb" || exists "$rb.absent" && return 0
  if [ -f "$1" ] && [ ! -L "$1" ] && [ ! -r "$1" ]; then
    # A file we (this directory's owner) cannot read, e.g. a key planted root:root 0600: no copy can
    # be made, but the directory is ours, so the file itself becomes the rollback copy (a rename). Its
    # readers (the server, running as this user) could not read it either, so its brief absence until
    # the command installs the new file costs nothing; a rollback renames it back.
    mv -f -- "$1" "$rb"
  elif exists "$1"; then
    t=$(mktemp ".pgtls-tmp.$2.XXXXXX")
    # owner/mode kept when we may; else the content alone. A copy that fails (a full disk) leaves no temp file.
    cp -P -p -- "$1" "$t" 2>/dev/null || { rm -f -- "$t" && cp -P -- "$1" "$t"; } || { rm -f -- "$t"; pgtls_die "cannot keep a rollback copy of $here/$1 (disk full?)"; }
    mv -f -- "$t" "$rb"
  else
    : > "$rb.absent"
  fi
}

case "$op" in
read)
  # read NAME CAP: "MODE OWNER GROUP" then the content; exit 3 when absent
  pgtls_name "$1"
  exists "$1" || exit 3
  pgtls_link_ok "$1"
  [ -e "$1" ] || exit 3   # a dangling link of ours or root's: nothing to read
  [ -f "$1" ] || pgtls_die "$here/$1 is not a regular file: refusing to read it"
  size=$(stat -L -c %s -- "$1")
  [ "$size" -le "$2" ] || pgtls_die "$here/$1 is $size bytes, above the $2-byte limit for files pgtls reads"
  stat -L -c '%a %U %G' -- "$1"
  exec head -c "$(($2 + 1))" -- "$1"
  ;;
read-many)
  # read-many CAP NAME...: each NAME as `read` reads it, in one go. For each NAME, in order:
  # "pgtls-file RC OUTLEN ERRLEN\n", OUTLEN bytes of what `read` prints (RC 0), ERRLEN bytes of why
  # not (RC 3: absent, 65: a refusal, 1: unreadable). A file that changes while it is read (its
  # length is not the one announced) breaks the frame: the caller (read-many.sh) checks every
  # length, and has such a directory's files read again one by one.
  cap=$1
  shift
  LC_ALL=C   # ${#...} counts bytes
  export LC_ALL
  refuse() {
    msg="pgtls: $2
"
    printf 'pgtls-file %s 0 %s\n%s' "$1" "${#msg}" "$msg"
  }
  # the checks a shell makes without a process first, then ONE `stat` for every file that passed
  # them (a stat per file was most of a no-change re-run's processes on a host), then the frames
  nf=0
  for n; do
    nf=$((nf + 1))
    v=''
    case "$n" in '' | . | .. | */*) v="65 bad file name '$n' in $here" ;; esac
    if [ -z "$v" ] && ! exists "$n"; then v=absent; fi
    if [ -z "$v" ] && [ -L "$n" ]; then
      lu=$(stat -c %u -- "$n")
      if [ "$lu" != "$me" ] && [ "$lu" != 0 ]; then v="65 refusing $here/$n: a symbolic link owned by uid $lu"
      elif [ ! -e "$n" ]; then v=absent; fi
    fi
    [ -n "$v" ] || [ -f "$n" ] || v="65 $here/$n is not a regular file: refusing to read it"
    [ -n "$v" ] || [ -r "$n" ] || v="1 $here/$n: Permission denied"
    eval "rm_n_$nf=\$n rm_v_$nf=\$v"
  done
  set --
  i=0
  while [ "$i" -lt "$nf" ]; do
    i=$((i + 1))
    eval "[ -n \"\$rm_v_$i\" ] || set -- \"\$@\" \"\$rm_n_$i\""
  done
  # one line per file, in order; a file gone since its check fails the stat: each stat'ed on its own
  sts=''
  [ $# = 0 ] || sts=$(stat -L -c '%s %a %U %G' -- "$@" 2>/dev/null) || sts=''
  i=0
  while [ "$i" -lt "$nf" ]; do
    i=$((i + 1))
    eval "n=\$rm_n_$i v=\$rm_v_$i"
    case "$v" in
      absent) echo 'pgtls-file 3 0 0'; continue ;;
      ?*) refuse "${v%% *}" "${v#* }"; continue ;;
    esac
    if [ -n "$sts" ]; then
      st=${sts%%'
'*} sts=${sts#"$st"} sts=${sts#'
'}
    else
      st=$(stat -L -c '%s %a %U %G' -- "$n") || { refuse 1 "cannot stat $here/$n"; continue; }
    fi
    size=${st%% *} meta="${st#* }
"
    [ "$size" -le "$cap" ] || { refuse 65 "$here/$n is $size bytes, above the $cap-byte limit for files pgtls reads"; continue; }
    printf 'pgtls-file 0 %s 0\n%s' "$((${#meta} + size))" "$meta"
    # one byte more than announced when it grew meanwhile: the frame breaks, nothing half-read is taken
    head -c "$((size + 1))" -- "$n" || true
  done
  ;;
probe)
  # probe PUB NAME...: for each NAME, never through a link, "MODE OWNER GROUP TYPE" or "absent";
  # with PUB 1, after a regular file, its public half (a private key's; the key itself never leaves
  # this directory) then "pgtls-pub-end".
  pub=$1
  shift
  for n; do
    pgtls_name "$n"
    if [ -L "$n" ]; then t='link'; elif [ -d "$n" ]; then t='dir'; elif [ -e "$n" ]; then t='file'; else t=''; fi
    if [ -z "$t" ]; then echo absent; continue; fi
    printf '%s %s\n' "$(stat -c '%a %U %G' -- "$n")" "$t"
    if [ "$pub" = 1 ] && [ "$t" = file ]; then
      [ ! -f "$n" ] || openssl pkey -in "$n" -pubout -passin pass: 2>/dev/null || true
      echo pgtls-pub-end
    fi
  done
  ;;
sha)
  pgtls_name "$1"
  [ -e "$1" ] || exit 3
  pgtls_link_ok "$1"
  sha256sum < "$1" | cut -c1-64
  ;;
stat)
  # stat NAME: never follows a link (the link itself is reported)
  pgtls_name "$1"
  if [ -L "$1" ]; then t='link'; elif [ -d "$1" ]; then t='dir'; elif [ -e "$1" ]; then t='file'; else t=''; fi
  if [ -n "$t" ]; then printf '%s %s\n' "$(stat -c '%a %U %G' -- "$1")" "$t"; else echo absent; fi
  ;;
pubkey)
  # pubkey NAME: the public half of a private key; the key itself never leaves this directory
  pgtls_name "$1"
  [ -f "$1" ] && [ ! -L "$1" ] || exit 0
  openssl pkey -in "$1" -pubout -passin pass: 2>/dev/null || true
  ;;
write)
  # write NAME LEN SHA256 MODE OWNER GROUP BACKUP RUNID VALIDATE: content on stdin (SHA256 '': the
  # caller checked it already)
  name=$1 len=$2 sha=$3 mode=$4 owner=$5 group=$6 backup=$7 rid=$8 validate=$9
  pgtls_name "$name"
  pgtls_link_ok "$name"
  if [ -n "$rid" ]; then clean_others "$name" "$rid"; keep "$name" "$rid"; fi
  umask 077
  tmp=$(mktemp ".pgtls-tmp.${rid:-norun}.XXXXXX")
  trap 'rm -f -- "$tmp"' EXIT
  trap 'exit 1' HUP INT TERM PIPE
  cat > "$tmp"
  # only the very bytes that were sent are installed: a cut channel ends stdin early, and looks like EOF
  got=$(wc -c < "$tmp")
  [ "$got" -eq "$len" ] || pgtls_die "$here/$name: received $got of $len bytes (connection cut?): not installed, the file is unchanged"
  [ -z "$sha" ] || [ "$(sha256sum < "$tmp" | cut -c1-64)" = "$sha" ] || pgtls_die "$here/$name: the content arrived altered (sha256 differs): not installed, the file is unchanged"
  sync -- "$tmp" 2>/dev/null || sync
  if [ -e "$name" ]; then
    chown --reference="$name" -- "$tmp" 2>/dev/null || true
    chmod --reference="$name" -- "$tmp"
    if [ "$backup" = 1 ]; then
      b="$name.$(date +%Y-%m-%d@%H:%M:%S)~"
      cp -p -- "$name" "$b"
      echo "backup=$here/$b"
    fi
  else
    chmod 0644 -- "$tmp"
  fi
  if [ -n "$owner" ]; then chown -- "$owner" "$tmp" || pgtls_die "cannot give $here/$name to $owner: pgtls writes there as $(id -un), who owns that directory"; fi
  if [ -n "$group" ]; then chgrp -- "$group" "$tmp" || pgtls_die "cannot give $here/$name to group $group as $(id -un)"; fi
  if [ -n "$mode" ]; then chmod -- "$mode" "$tmp"; fi
  if [ -n "$validate" ]; then
    sh -c "$validate" pgtls-validate "$here/$tmp" >&2 || pgtls_die "$here/$name: the validate command failed: not installed"
  fi
  mv -f -- "$tmp" "$name"
  trap - EXIT
  sync -- . 2>/dev/null || true
  ;;
keep)
  pgtls_name "$1"
  pgtls_link_ok "$1"
  clean_others "$1" "$2"
  keep "$1" "$2"
  ;;
remove)
  # remove NAME RUNID: the file goes into this run's rollback copy (or away when it already has one)
  pgtls_name "$1"
  exists "$1" || exit 0
  if [ -n "$2" ]; then
    clean_others "$1" "$2"
    rb=".$1.pgtls-rb.$2"
    if exists "$rb" || exists "$rb.absent"; then rm -f -- "$1"; else mv -f -- "$1" "$rb"; fi
  else
    rm -f -- "$1"
  fi
  ;;
restore)
  # restore NAME RUNID: back to this run's copy (never another run's)
  pgtls_name "$1"
  rb=".$1.pgtls-rb.$2"
  if exists "$rb.absent"; then rm -f -- "$1" "$rb.absent"
  elif exists "$rb"; then mv -f -- "$rb" "$1"; fi
  ;;
drop)
  pgtls_name "$1"
  rm -f -- ".$1.pgtls-rb.$2" ".$1.pgtls-rb.$2.absent"
  ;;
clean)
  # clean NAME RUNID: what other (dead) runs left for NAME
  pgtls_name "$1"
  clean_others "$1" "$2"
  ;;
attrs)
  # attrs NAME OWNER GROUP MODE: never through a link
  pgtls_name "$1"
  [ ! -L "$1" ] || pgtls_die "refusing $here/$1: a symbolic link where pgtls expects a file"
  [ -f "$1" ] || pgtls_die "$here/$1 is not a regular file"
  chown -h -- "$2:$3" "$1"
  chmod -- "$4" "$1"
  ;;
mkdir)
  # mkdir NAME OWNER GROUP MODE: create or fix a subdirectory, through no link
  pgtls_name "$1"
  [ ! -L "$1" ] || pgtls_die "refusing $here/$1: a symbolic link owned by $(stat -c %U -- "$1") where pgtls expects a directory"
  if [ ! -e "$1" ]; then mkdir -m 0700 -- "$1"; fi
  [ -d "$1" ] || pgtls_die "$here/$1 is not a directory"
  cd -P -- "$1"
  [ "$(pwd -P)" = "${here%/}/$1" ] || pgtls_die "$here/$1 was replaced while pgtls worked on it"
  if [ -n "$2" ]; then chown -- "$2${3:+:$3}" . || pgtls_die "cannot give $here/$1 to $2 as $(id -un)"; fi
  chmod -- "$4" .
  ;;
drop-temp)
  # drop-temp NAME [RUNID]: a temp file of pgtls's own (a key that will not be installed); with RUNID, only that run's
  case "$1" in ".pgtls-tmp.${2:-}"*) rm -f -- "$1" ;; *) pgtls_die "$1 is not a pgtls temp file${2:+ of run $2}" ;; esac
  ;;
rename)
  # rename SRC DST: within this directory (atomic)
  pgtls_name "$1"
  pgtls_name "$2"
  [ -f "$1" ] && [ ! -L "$1" ] || pgtls_die "$here/$1 is missing or not a regular file"
  mv -f -- "$1" "$2"
  ;;
keygen)
  # keygen BITS OWNER GROUP RUNID NAME: a new private key for NAME under a fresh temp name (0600,
  # OWNER:GROUP), then its CSR. Prints "new NAME TEMP" and the CSR; the rename comes later.
  umask 077
  pgtls_name "$5"
  k=$(mktemp ".pgtls-tmp.$4.XXXXXX")
  e=$(mktemp ".pgtls-tmp.$4.XXXXXX")
  cnf=$(mktemp ".pgtls-tmp.$4.XXXXXX")
  trap 'rm -f -- "$e" "$cnf"' EXIT
  if ! openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$1" -out "$k" 2> "$e" || [ ! -s "$k" ]; then
    grep -v '^[.+*]*$' "$e" >&2 || true
    rm -f -- "$k"
    pgtls_die "key generation failed in $here"
  fi
  if [ "$me" = 0 ]; then chown -- "$2:$3" "$k"; fi
  chmod 600 -- "$k"
  printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = pgtls-csr\n' > "$cnf"
  echo "new $5 $here/$k"
  openssl req -new -key "$k" -config "$cnf" -sha256
  ;;
*)
  pgtls_die "unknown directory operation $op"
  ;;
esac

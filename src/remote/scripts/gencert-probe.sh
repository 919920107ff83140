# gencert-probe.sh DIROP NKEYS PATH...: read-only. Owner and mode of the key directories and key
# files (never through a link: a link another user owns is refused, naming it), and the PUBLIC half
# of each of the first NKEYS paths (keys). The private key is read by openssl on the host, as the
# user who controls its directory; only the public key comes back.
# The cost is per directory: the keys of one directory are probed by ONE dirop (`probe`, as that
# directory's user), and each directory is resolved once (the key directories themselves, probed
# after the keys, are known by then). What that dirop prints is checked line by line: a public key
# is passed on only when every line of it is PEM.
set -eu
DIROP=$1 nkeys=$2
shift 2
if command -v openssl >/dev/null 2>&1; then ossl=1; else ossl=0; fi
n=0
for p; do
  n=$((n + 1))
  eval "gp_path_$n=\$p"
  [ "$n" -le "$nkeys" ] || continue
  pgtls_split "$p"
  eval "gp_dir_$n=\$pparent gp_base_$n=\$pbase gp_done_$n=''"
done
[ "$nkeys" -le "$n" ] || nkeys=$n
pubs=''
i=0 d='' b='' gp=''
while [ "$i" -lt "$nkeys" ]; do
  i=$((i + 1))
  eval "[ -z \"\$gp_done_$i\" ]" || continue
  eval "dir=\$gp_dir_$i"
  # the keys of this directory
  idx=''
  set --
  j=$((i - 1))
  while [ "$j" -lt "$nkeys" ]; do
    j=$((j + 1))
    eval "d=\$gp_dir_$j"
    [ "$d" = "$dir" ] || continue
    eval "b=\$gp_base_$j gp_done_$j=1"
    idx="$idx $j"
    set -- "$@" "$b"
  done
  if ! pgtls_resolve_dir "$dir"; then
    for j in $idx; do
      eval "gp=\$gp_path_$j"
      printf 'absent %s\n' "$gp"
    done
    continue
  fi
  ans="$(pgtls_in "$dir" probe "$ossl" "$@")
"
  for j in $idx; do
    eval "gp=\$gp_path_$j"
    s=${ans%%'
'*} ans=${ans#*'
'}
    case "$s" in
    absent) printf 'absent %s\n' "$gp"; continue ;;
    *" link") pgtls_die "refusing $gp: a symbolic link where pgtls expects a private key" ;;
    [0-7]*" dir" | [0-7]*" file") printf 'stat %s %s\n' "${s% *}" "$gp" ;;
    *) pgtls_die "$dir: an answer pgtls did not expect while probing $gp" ;;
    esac
    [ "$ossl" = 1 ] && [ "${s##* }" = file ] || continue
    # its public key, up to the end marker; passed on only when it is PEM through and through
    pem='' good=1
    while :; do
      case "$ans" in *'
'*) ;; *) pgtls_die "$dir: the probe of $gp ended early" ;; esac
      l=${ans%%'
'*} ans=${ans#*'
'}
      case "$l" in
      pgtls-pub-end) break ;;
      '-----BEGIN PUBLIC KEY-----' | '-----END PUBLIC KEY-----') ;;
      '' | *[!A-Za-z0-9+/=]*) good='' ;;
      esac
      pem="$pem$l
"
    done
    if [ -n "$good" ] && [ -n "$pem" ]; then pubs="${pubs}pub $gp
$pem"; fi
  done
done
# the directories: their physical selves, reached through no link another user owns
j=$nkeys
while [ "$j" -lt "$n" ]; do
  j=$((j + 1))
  eval "gp=\$gp_path_$j"
  if ! pgtls_resolve_dir "$gp"; then printf 'absent %s\n' "$gp"; continue; fi
  [ -n "$pstat" ] || pstat=$(stat -c '%a %U %G' -- "$pdir")
  printf 'stat %s %s\n' "$pstat" "$gp"
done
echo "openssl=$ossl"
printf '%s' "$pubs"

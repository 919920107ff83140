# gencert-dirs.sh DIROP GROUP MODE DIR...: creates or fixes the key directories (parents first), each
# owned by root and GROUP, or, inside a directory another user controls, by that user (it could
# replace a root-owned one there anyway). Never through a link; missing parents are created 0755.
set -eu
DIROP=$1 group=$2 mode=$3
shift 3
for d in "$@"; do
  pgtls_split "$d"
  parent=$pparent name=$pbase
  n=0
  while ! pgtls_resolve_dir "$parent"; do
    n=$((n + 1))
    [ "$n" -le 32 ] || pgtls_die "cannot create $parent"
    pgtls_split "$pmissing"
    pgtls_in "$pparent" mkdir "$pbase" '' '' 755
  done
  owner=$puser
  pgtls_in "$parent" mkdir "$name" "$owner" "$group" "$mode"
done

# gencert-install.sh DIROP TEMPPATH KEYPATH: the new key replaces the old one by a rename in the
# same directory (atomic), as the user who controls it.
set -eu
DIROP=$1 t=$2 k=$3
pgtls_resolve_dir "$(dirname -- "$k")" || pgtls_die "$(dirname -- "$k") does not exist"
kd=$pdir
pgtls_resolve_dir "$(dirname -- "$t")" || pgtls_die "$(dirname -- "$t") does not exist"
[ "$pdir" = "$kd" ] || pgtls_die "$t and $k are not in one directory"
pgtls_in "$kd" rename "$(basename -- "$t")" "$(basename -- "$k")"

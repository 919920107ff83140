# gencert-attrs.sh DIROP PATH OWNER GROUP MODE: a key's owner and mode, never through a link.
set -eu
DIROP=$1 p=$2 owner=$3 group=$4 mode=$5
pgtls_split "$p"
pgtls_in "$pparent" attrs "$pbase" "$owner" "$group" "$mode"

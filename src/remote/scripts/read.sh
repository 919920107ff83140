# read.sh DIROP PATH CAP: "MODE OWNER GROUP", a newline, then the content (at most CAP bytes);
# exit 3 when the file does not exist. Read as the user who controls its directory.
set -eu
DIROP=$1 p=$2 cap=$3
pgtls_split "$p"
dir=$pparent base=$pbase
pgtls_resolve_dir "$dir" || exit 3
pgtls_in "$dir" read "$base" "$cap"

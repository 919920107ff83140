# rollback.sh DIROP OP RUNID PATH...: OP restore puts back this run's copies (newest change first:
# the caller orders the paths), OP drop forgets them, OP drop-temp removes this run's temp files
# (PATH: .pgtls-tmp.RUNID.*, e.g. a new key that will not be installed). Never another run's.
set -eu
DIROP=$1 op=$2 runid=$3
shift 3
for p in "$@"; do
  pgtls_split "$p"
  dir=$pparent base=$pbase
  pgtls_resolve_dir "$dir" || continue
  pgtls_in "$dir" "$op" "$base" "$runid"
done

# rollback.sh DIROP OP RUNID PATH...: OP restore puts back this run's copies (newest change first:
# the caller orders the paths), OP drop forgets them. Never another run's copies.
set -eu
DIROP=$1 op=$2 runid=$3
shift 3
for p in "$@"; do
  dir=$(dirname -- "$p") base=$(basename -- "$p")
  pgtls_resolve_dir "$dir" || continue
  pgtls_in "$dir" "$op" "$base" "$runid"
done

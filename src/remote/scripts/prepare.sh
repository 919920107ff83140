# prepare.sh DIROP RUNID STATE CAP [PATH RECORD]...: before a command that changes these files
# (a key generated on the host): this run's rollback copies and, once ever, the originals.
set -eu
DIROP=$1 runid=$2 state=$3 cap=$4
shift 4
pgtls_state_ready
while [ $# -ge 2 ]; do
  p=$1 r=$2
  shift 2
  pgtls_split "$p"
  dir=$pparent base=$pbase
  pgtls_resolve_dir "$dir" || continue
  pgtls_journal "$pdir/$base"
  pgtls_record_original "$p" "$r"
  pgtls_in "$dir" keep "$base" "$runid"
done

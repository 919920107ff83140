# remove.sh DIROP PATH RUNID STATE RECORD INSTALLED_MAC CAP: removes a file, keeping it for this run's
# rollback and its original for an uninstall.
set -eu
DIROP=$1 p=$2 runid=$3 state=$4 rec=$5 imac=$6 cap=$7
dir=$(dirname -- "$p") base=$(basename -- "$p")
pgtls_resolve_dir "$dir" || exit 0
pgtls_state_ready
pgtls_journal "$pdir/$base"
pgtls_record_original "$p" "$rec"
pgtls_in "$dir" remove "$base" "$runid"
content=''
pgtls_record_installed "$p" "$rec" absent "$imac"

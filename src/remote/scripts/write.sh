# write.sh DIROP PATH LEN SHA256 MODE OWNER GROUP BACKUP RUNID STATE RECORD INSTALLED_MAC CAP VALIDATE
# The content arrives on stdin. It is received in the state directory (where only root can see it)
# and checked against the length and sha256 the controller sent BEFORE anything on the host changes:
# a cut connection ends stdin early, which looks like an end of file, and must not install half a file.
set -eu
DIROP=$1 dst=$2 len=$3 sha=$4 mode=$5 owner=$6 group=$7 backup=$8 runid=$9
shift 9
state=$1 rec=$2 imac=$3 cap=$4 validate=$5
dir=$(dirname -- "$dst") base=$(basename -- "$dst")
pgtls_resolve_dir "$dir" || pgtls_die "cannot write $dst: $pmissing does not exist"
pgtls_state_ready
content=$(mktemp "$state/.in.$runid.XXXXXX")
trap 'rm -f -- "$content"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$content"
got=$(wc -c < "$content")
[ "$got" -eq "$len" ] || pgtls_die "$dst: received $got of $len bytes (connection cut?): not installed, the file is unchanged"
[ "$(sha256sum < "$content" | cut -c1-64)" = "$sha" ] || pgtls_die "$dst: the content arrived altered (sha256 differs): not installed, the file is unchanged"
pgtls_journal "$pdir/$base"
pgtls_record_original "$dst" "$rec"
# (the directory's side checks the length again; the hash was just checked here)
pgtls_in "$dir" write "$base" "$len" '' "$mode" "$owner" "$group" "$backup" "$runid" "$validate" < "$content"
pgtls_record_installed "$dst" "$rec" "$sha" "$imac"

# gencert-keygen.sh DIROP BITS OWNER GROUP RUNID STATE [NAME KEYPATH]...: a new private key for each
# KEYPATH, generated ON the host in the key's directory under a temp name from mktemp (0600,
# OWNER:GROUP), as the user who controls that directory, all at once (RSA generation is the slow
# part). Prints "new NAME TEMPPATH" and a CSR per key; the key is renamed into place later
# (a rename action, committed with the certificate). The CSR subject is a constant: the controller sets the real one when it signs.
set -eu
DIROP=$1 bits=$2 owner=$3 group=$4 runid=$5 state=$6
shift 6
pgtls_state_ready
out=$(mktemp -d)
trap 'rm -rf -- "$out"' EXIT
pids=''
i=0
while [ $# -ge 2 ]; do
  name=$1 k=$2
  shift 2
  i=$((i + 1))
  pgtls_split "$k"
  dir=$pparent
  pgtls_resolve_dir "$dir" || pgtls_die "cannot generate $k: $pmissing does not exist"
  pgtls_journal "$k"
  pgtls_in "$dir" keygen "$bits" "$owner" "$group" "$runid" "$name" > "$out/$i.out" 2> "$out/$i.err" &
  pids="$pids $!"
done
fail=0
j=0
for pid in $pids; do
  j=$((j + 1))
  wait "$pid" || fail=1
  cat -- "$out/$j.err" >&2
done
if [ "$fail" = 1 ]; then
  # keys that did get made are not left behind
  for f in "$out"/*.out; do
    t=$(sed -n 's/^new [^ ]* //p' "$f")
    [ -z "$t" ] || pgtls_in "$(dirname -- "$t")" drop-temp "$(basename -- "$t")" || true
  done
  exit 1
fi
cat -- "$out"/*.out

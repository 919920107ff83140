# sign.sh STATE [FILE MAC]...: stores the controller's MACs of records (FILE must be in STATE).
set -eu
state=$1
shift
pgtls_state_ready
while [ $# -ge 2 ]; do
  case "$1" in "$state"/*) ;; *) pgtls_die "$1 is not in $state" ;; esac
  printf '%s\n' "$2" > "$1.tmp"
  mv -f -- "$1.tmp" "$1"
  shift 2
done

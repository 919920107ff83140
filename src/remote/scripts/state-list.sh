# state-list.sh STATE: the records of originals kept in STATE (NUL-framed: base, path), after
# checking that nobody but root could have written them (owner and mode of STATE and its parents).
set -eu
state=$1
[ -e "$state" ] || [ -L "$state" ] || exit 0
pgtls_state_ready
for f in "$state"/*.path; do
  [ -e "$f" ] || continue
  printf '%s\0' "${f%.path}"
  cat -- "$f"
  printf '\0'
done

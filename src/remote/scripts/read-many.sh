# read-many.sh DIROP CAP PATH...: several files in one round trip, each exactly as read.sh reads it
# (as the user who controls its directory, never through a link another user owns, at most CAP
# bytes), for the executor's read cache (src/core/host-session.ts). For each PATH, in order:
#   "pgtls-file RC OUTLEN ERRLEN\n", then OUTLEN bytes of read.sh's output ("MODE OWNER GROUP\n" and
#   the content; RC 0), then ERRLEN bytes of its stderr. RC 3: absent; any other RC: that file failed
#   (the controller reads it again on its own, for read.sh's own error).
# Framed by lengths, not by a marker: a file another user controls (postgresql.auto.conf) could hold
# any marker, since the argv of this script is visible in /proc; lengths it cannot forge.
# Each file runs in a subshell, so a refusal (pgtls_die exits) ends only that file's read.
set -u
DIROP=$1 cap=$2
shift 2
# no temp file (a full or read-only /tmp): exit 97, the controller reads each file on its own
out=$(mktemp 2>/dev/null) && err=$(mktemp 2>/dev/null) || { rm -f -- "${out:-}"; exit 97; }
trap 'rm -f -- "$out" "$err"' EXIT
for p; do
  rc=0
  (
    set -e
    dir=$(dirname -- "$p") base=$(basename -- "$p")
    pgtls_resolve_dir "$dir" || exit 3
    pgtls_in "$dir" read "$base" "$cap"
  ) > "$out" 2> "$err" || rc=$?
  printf 'pgtls-file %s %s %s\n' "$rc" "$(wc -c < "$out" | tr -d ' ')" "$(wc -c < "$err" | tr -d ' ')"
  cat -- "$out" "$err"
done

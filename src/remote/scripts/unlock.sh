# unlock.sh STATE RUNID: the end of this run on this host: its journal and temp files go, then the lock.
set -eu
state=$1 runid=$2
[ -d "$state" ] || exit 0
rm -f -- "$state/runs/$runid.journal" "$state/.in.$runid."*
owner=$(cat -- "$state/lock/owner" 2>/dev/null || true)
case "$owner" in "run=$runid "*) rm -rf -- "$state/lock" ;; esac

#!/usr/bin/env bash
# Wall time of every playbook of the product on a lab, measured with /usr/bin/time:
#   bench/lifecycle.sh 2   # pg1 primary + pg2 streaming standby
#   bench/lifecycle.sh 3   # + pg3 Pgpool-II in front of both
# Order: install, install again, status, reissue server, reissue ca, ca-finish, uninstall, uninstall again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
N=${1:-3}; DIR=$ROOT/.lab-bench
[ -f dist/src/cli.js ] || npm run --silent build
args=(--dir "$DIR" --hosts "$N" --postgres pg1,pg2 --standby pg2:pg1)
[ "$N" -ge 3 ] && args+=(--pgpool pg3:pg1,pg2)
lab/lab.sh up "${args[@]}" >/dev/null
trap 'lab/lab.sh down --dir "$DIR" >/dev/null 2>&1 || true' EXIT
INV=$DIR/inventory.yaml
t() {  # t LABEL CMD...: wall seconds and exit code of one pgtls command
  local label=$1; shift
  local rc=0 f; f=$(mktemp)
  /usr/bin/time -o "$f" -f %e env CI=1 node bin/pgtls.js "$@" >/dev/null 2>&1 || rc=$?
  printf '%-34s %6s s  exit %s\n' "$label" "$(tail -1 "$f")" "$rc"; rm -f "$f"
}
echo "lab: $N hosts (pg1 primary, pg2 standby$([ "$N" -ge 3 ] && echo ', pg3 Pgpool-II'))"
t "install.yaml (first run)"     run playbooks/install.yaml -i "$INV"
t "install.yaml (re-run)"        run playbooks/install.yaml -i "$INV"
t "status"                       status -i "$INV"
t "reissue.yaml reissue=server"  run playbooks/reissue.yaml -i "$INV" -e reissue=server
t "reissue.yaml reissue=ca"      run playbooks/reissue.yaml -i "$INV" -e reissue=ca
t "reissue.yaml reissue=ca-finish" run playbooks/reissue.yaml -i "$INV" -e reissue=ca-finish
t "uninstall.yaml (first run)"   run playbooks/uninstall.yaml -i "$INV"
t "uninstall.yaml (re-run)"      run playbooks/uninstall.yaml -i "$INV"

#!/usr/bin/env bash
# Side-by-side benchmark on the same lab hosts, one run, reported as ratios:
#   pgtls  vs  ansible-playbook (same playbook file)  vs  the floor of plain parallel ssh
# Each tool does the 5-task lineinfile playbook twice: first run (changes) and re-run (no change).
# The file is removed between tools so every first run starts from the same state.
#   bench/run.sh [HOSTS]      (default 10; needs root, builds its own lab in .lab-bench)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
N=${1:-10}; DIR=$ROOT/.lab-bench
command -v ansible-playbook >/dev/null || { echo "bench: needs ansible (apt-get install -y ansible)" >&2; exit 2; }
[ -f dist/src/cli.js ] || npm run --silent build
lab/lab.sh up --dir "$DIR" --hosts "$N" >/dev/null
trap 'lab/lab.sh down --dir "$DIR" >/dev/null 2>&1 || true' EXIT
INV=$DIR/inventory.yaml; KEY=$DIR/id_ed25519; KH=$DIR/known_hosts
HOSTS=$(grep -o 'ansible_host: [0-9.]*' "$INV" | awk '{print $2}' | sort -u)
clean() { for h in $HOSTS; do ssh -i "$KEY" -o UserKnownHostsFile="$KH" -o BatchMode=yes root@"$h" 'rm -f /etc/postgresql/bench.conf' & done; wait; }
secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }

clean
p1=$(secs env CI=1 node bin/pgtls.js run bench/five-lines.yaml -i "$INV")
p2=$(secs env CI=1 node bin/pgtls.js run bench/five-lines.yaml -i "$INV")
clean
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=$KH -o ControlMaster=auto -o ControlPersist=60s" \
       ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_FORKS=$N ANSIBLE_NOCOLOR=1 ANSIBLE_PIPELINING=True
a1=$(secs ansible-playbook -i "$INV" bench/five-lines.yaml)
a2=$(secs ansible-playbook -i "$INV" bench/five-lines.yaml)
clean
# The floor: 5 ssh commands per host (one per edit, each a real sed/grep edit), hosts in parallel.
EDIT='f=/etc/postgresql/bench.conf; touch $f; grep -q "^ssl = on$" $f || echo "ssl = on" >> $f'
floor() { for h in $HOSTS; do ( for i in 1 2 3 4 5; do ssh -i "$KEY" -o UserKnownHostsFile="$KH" -o BatchMode=yes root@"$h" "$EDIT"; done ) & done; wait; }
f1=$(secs bash -c "$(declare -f floor); HOSTS='$HOSTS' KEY='$KEY' KH='$KH' EDIT='$EDIT' floor")
clean
# The lowest floor: ONE ssh session per host running all 5 edits, hosts in parallel.
floor1() { for h in $HOSTS; do ssh -i "$KEY" -o UserKnownHostsFile="$KH" -o BatchMode=yes root@"$h" "$EDIT; $EDIT; $EDIT; $EDIT; $EDIT" & done; wait; }
f2=$(secs bash -c "$(declare -f floor1); HOSTS='$HOSTS' KEY='$KEY' KH='$KH' EDIT='$EDIT' floor1")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n%d hosts, 5 lineinfile tasks (wall seconds)\n' "$N"
printf '%-26s %8s %8s\n' tool "run 1" "re-run"
printf '%-26s %8s %8s\n' pgtls "$p1" "$p2"
printf '%-26s %8s %8s\n' "ansible-playbook (pipelining)" "$a1" "$a2"
printf '%-26s %8s\n' "parallel ssh, 1 per task" "$f1"
printf '%-26s %8s\n' "parallel ssh, 1 per host" "$f2"
printf 'ratios: ansible/pgtls run1 %s, re-run %s; pgtls/ssh-per-task %s; pgtls/ssh-per-host %s\n' \
  "$(ratio "$a1" "$p1")" "$(ratio "$a2" "$p2")" "$(ratio "$p1" "$f1")" "$(ratio "$p1" "$f2")"

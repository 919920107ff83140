#!/usr/bin/env bash
# The main job, end to end, on a local lab of real hosts (run as root on Debian 12):
#   1. installs what is missing (Debian packages, npm packages) and builds pgtls,
#   2. builds a lab: pg1 = PostgreSQL 15 primary, pg2 = its streaming standby, pg3 = Pgpool-II
#      in front of both; md5 passwords and `host ... md5` rules, as before the add-on,
#   3. runs `pgtls run playbooks/install.yaml` on it (then once more: it must report changed=0),
#   4. prints how to connect with sslmode=verify-full. The lab keeps running; stop it with the
#      command printed at the end.
#   lab/demo.sh [--dir DIR]      (default DIR: .lab)
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd); cd "$ROOT"
DIR=$ROOT/.lab
[ "${1:-}" = --dir ] && DIR=$(readlink -f "${2:?--dir needs a directory}")
[ "$(id -u)" = 0 ] || { echo "demo: run as root (the lab uses network namespaces)" >&2; exit 1; }

echo "==> packages"; bash lab/install-deps.sh
if [ ! -d node_modules ]; then echo "==> npm ci"; npm ci --no-audit --no-fund; fi
echo "==> build"; npm run --silent build
echo "==> lab"; bash lab/lab.sh up --dir "$DIR" --hosts 3 --postgres pg1,pg2 --standby pg2:pg1 --pgpool pg3:pg1,pg2
INV=$DIR/inventory.yaml
echo "==> pgtls run playbooks/install.yaml -i $INV"
node bin/pgtls.js run playbooks/install.yaml -i "$INV"
echo "==> again: a converged fleet reports changed=0"
node bin/pgtls.js run playbooks/install.yaml -i "$INV"

ip_of() { grep -o "$1: { ansible_host: [0-9.]*" "$INV" | head -1 | awk '{print $NF}'; }
CA=$DIR/ca/ca.crt
cat <<MSG

Encryption in transit is on. Connect (the password of webadmin is in $INV):
  PGPASSWORD=... psql "host=$(ip_of pg1) port=5432 dbname=postgres user=webadmin sslmode=verify-full sslrootcert=$CA"   # primary
  PGPASSWORD=... psql "host=$(ip_of pg2) port=5432 dbname=postgres user=webadmin sslmode=verify-full sslrootcert=$CA"   # standby
  PGPASSWORD=... psql "host=$(ip_of pg3) port=9999 dbname=postgres user=webadmin sslmode=verify-full sslrootcert=$CA"   # through Pgpool-II
A connection without TLS (sslmode=disable) is refused. Shell on a host: lab/lab.sh exec --dir $DIR pg1
Stop the lab: lab/lab.sh down --dir $DIR
MSG

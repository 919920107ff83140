#!/usr/bin/env bash
# pgtls vs an equivalent Ansible playbook (bench/ansible/) vs the plain-ssh floor, fresh lab hosts
# for each tool, one invocation: a table with ratios on stdout, JSON in .lab-bench/ (or --out).
#   bench/compare.sh 3                     # pg1 primary, pg2 standby, pg3 Pgpool-II
#   bench/compare.sh 50 --busy 420         # 50 PostgreSQL hosts, each seeing ~420 processes
#   bench/compare.sh 200 --lineinfile      # 200 hosts without PostgreSQL, lineinfile playbook
#   bench/compare.sh --quick               # N = 3, pgtls + floor (CI: test/e2e/bench.test.ts)
# Needs root (the lab), GNU time (/usr/bin/time), and for Ansible: WITH_ANSIBLE=1 lab/install-deps.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
npm run --silent build         # fast; dist/ (and the bundle bin/pgtls.js starts) must match the sources being measured
exec node dist/bench/compare.js "$@"

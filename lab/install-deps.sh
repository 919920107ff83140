#!/usr/bin/env bash
# Installs what pgtls's lab and tests need on Debian 12, only what is missing, without starting
# any service (there may be no init system). Used by .ci/run and lab/demo.sh.
#   lab/install-deps.sh            openssh-server postgresql pgpool2 sudo iproute2 util-linux procps,
#                                  ansible (the tests check vaults and inventories against ansible-vault and
#                                  ansible-inventory) and openjdk-17-jdk-headless (the JUnit report is
#                                  validated against the JUnit XSD by the JDK's validator), shellcheck
#                                  (the host shell scripts in src/remote/scripts are checked by a unit test),
#                                  time (GNU time: bench/compare.sh measures with it; its quick mode runs in CI)
#   WITH_ANSIBLE=1 lab/install-deps.sh   also python3-psycopg2 (community.postgresql, for the Ansible side
#                                  of bench/compare.sh); ansible itself is always installed now
set -euo pipefail
PKGS="openssh-server postgresql pgpool2 sudo iproute2 util-linux procps ansible openjdk-17-jdk-headless shellcheck time"
[ "${WITH_ANSIBLE:-0}" = 1 ] && PKGS="$PKGS python3-psycopg2"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # no service may start during the install
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  echo "installed:$missing"
else
  echo "all present: $PKGS"
fi
install -d -m 0755 /run/sshd        # sshd's privilege separation dir (normally made by systemd)

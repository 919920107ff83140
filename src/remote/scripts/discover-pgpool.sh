# shellcheck shell=sh
# discover-pgpool.sh CONF... -- UNIT...: the host's Pgpool-II, for src/facts/pgpool.ts. Output lines:
#   systemd=1                      PID 1 is systemd
#   pp PID PPID STATE NET PARENT_COMM USER HOME UNIT PGPOOLKEYFILE DEFAULT_CONF ARGV...   (tab-separated)
#   conf=FILE                      a package's pgpool.conf that exists
#   unit=NAME                      a systemd unit of a package that exists
#   home_postgres=DIR
# One "pp" row per pgpool process whose parent is not pgpool (children are skipped early: they are
# never the main process). The main process is the one its pid_file_name names (decided in
# src/facts/pgpool.ts with a second, small script); these rows only say where the config is.
# The walk costs no process per /proc entry (builtins only), so a busy host costs what an idle one does.
self_net=$(readlink /proc/self/ns/net 2>/dev/null)
init=''
{ IFS= read -r init </proc/1/comm; } 2>/dev/null
[ "$init" = systemd ] && echo "systemd=1"
# the packages' config files and units (arguments: CONF... -- UNIT...)
units=0
for a in "$@"; do
  if [ "$a" = -- ]; then units=1; continue; fi
  if [ "$units" = 0 ]; then
    [ -f "$a" ] && echo "conf=$a"
  elif [ "$init" = systemd ]; then
    systemctl cat -- "$a" >/dev/null 2>&1 && echo "unit=$a"
  fi
done
echo "home_postgres=$(getent passwd postgres | cut -d: -f6)"
# (the walk below reuses the positional parameters: the arguments were used above)
for d in /proc/[0-9]*; do
  comm='' stat='' pcomm=''
  { IFS= read -r comm <"$d/comm"; } 2>/dev/null || continue
  [ "$comm" = pgpool ] || continue
  { IFS= read -r stat <"$d/stat"; } 2>/dev/null
  # shellcheck disable=SC2086
  set -- ${stat##*) } x x
  state=$1 ppid=$2
  { IFS= read -r pcomm <"/proc/$ppid/comm"; } 2>/dev/null
  [ "$pcomm" = pgpool ] && continue
  net=$(readlink "$d/ns/net" 2>/dev/null)
  if [ -z "$self_net" ] || [ -z "$net" ]; then netrel=unknown; elif [ "$net" = "$self_net" ]; then netrel=same; else netrel=other; fi
  user=$(stat -c %U "$d" 2>/dev/null)
  unit=$(sed -n 's|.*/\([^/]*\.service\)$|\1|p' "$d/cgroup" 2>/dev/null | head -n 1)
  keyenv=$(tr '\0' '\n' <"$d/environ" 2>/dev/null | sed -n 's/^PGPOOLKEYFILE=//p' | head -n 1)
  defconf=''
  case $(head -c 8 "$d/cmdline" 2>/dev/null) in
    "pgpool: "*) ;;
    *) exe=$(readlink "$d/exe" 2>/dev/null) && [ -x "$exe" ] && defconf=$("$exe" --help 2>&1 | sed -n '/--config-file/{n;s/.*(default: \(.*\))/\1/p}' | head -n 1) ;;
  esac
  printf 'pp\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${d#/proc/}" "$ppid" "$state" "$netrel" "$pcomm" \
    "$user" "$(getent passwd "$user" | cut -d: -f6)" "$unit" "$keyenv" "$defconf" "$(tr '\0' '\t' <"$d/cmdline" 2>/dev/null)"
done

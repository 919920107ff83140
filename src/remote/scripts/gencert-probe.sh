# gencert-probe.sh DIROP NKEYS PATH...: read-only. Owner and mode of the key directories and key
# files (never through a link: a link another user owns is refused, naming it), and the PUBLIC half
# of each of the first NKEYS paths (keys). The private key is read by openssl on the host, as the
# user who controls its directory; only the public key comes back.
set -eu
DIROP=$1 nkeys=$2
shift 2
i=0
for p in "$@"; do
  i=$((i + 1))
  if [ "$i" -gt "$nkeys" ]; then
    # a directory: its physical self, reached through no link another user owns
    if pgtls_resolve_dir "$p"; then printf 'stat %s %s\n' "$(stat -c '%a %U %G' -- "$pdir")" "$p"; else printf 'absent %s\n' "$p"; fi
    continue
  fi
  dir=$(dirname -- "$p") base=$(basename -- "$p")
  if ! pgtls_resolve_dir "$dir"; then printf 'absent %s\n' "$p"; continue; fi
  s=$(pgtls_in "$dir" stat "$base")
  case "$s" in
  absent) printf 'absent %s\n' "$p" ;;
  *" link") pgtls_die "refusing $p: a symbolic link where pgtls expects a private key" ;;
  *) printf 'stat %s %s\n' "${s% *}" "$p" ;;
  esac
done
if command -v openssl >/dev/null 2>&1; then echo openssl=1; else echo openssl=0; exit 0; fi
i=0
for p in "$@"; do
  i=$((i + 1))
  [ "$i" -le "$nkeys" ] || break
  dir=$(dirname -- "$p") base=$(basename -- "$p")
  pgtls_resolve_dir "$dir" || continue
  pub=$(pgtls_in "$dir" pubkey "$base")
  if [ -n "$pub" ]; then printf 'pub %s\n%s\n' "$p" "$pub"; fi
done

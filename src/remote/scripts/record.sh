# record.sh DIROP STATE CAP [PATH RECORD]...: after a command changed these files, what pgtls left
# there (printed for the controller to sign).
set -eu
DIROP=$1 state=$2 cap=$3
shift 3
pgtls_state_ready
while [ $# -ge 2 ]; do
  p=$1 r=$2
  shift 2
  content=''
  s=$(pgtls_file_sha "$p")
  pgtls_record_installed "$p" "$r" "$s" ''
done

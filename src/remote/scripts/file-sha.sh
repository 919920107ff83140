# file-sha.sh DIROP PATH: sha256 of PATH ('absent' when missing), read as the user who controls its
# directory: a private key is hashed on the host, never sent.
set -eu
DIROP=$1
pgtls_file_sha "$2"

#!/bin/sh
# make_certs.sh DIR - test certificates for the TLS tests (C and Python),
# made with the openssl CLI at test time; nothing here is a secret kept in
# the repository.  Writes into DIR (created if missing):
#   ca.pem / ca.key              a test CA
#   server.pem / server.key      a server certificate signed by it, for
#                                localhost, 127.0.0.1 and ::1
#   wrongname.pem / wrongname.key   signed by the same CA for
#                                wrong.invalid only (name checks must fail)
#   other-ca.pem                 an unrelated CA (verification must fail)
# Keys are EC P-256 (fast to make); certificates are valid for 2 days.
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1 || { echo "make_certs.sh: $* failed" >&2; exit 1; }; }
key() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key ca.key
q openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=cbffi test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
key other-ca.key
q openssl req -x509 -new -key other-ca.key -sha256 -days 2 -subj "/CN=cbffi other CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out other-ca.pem
rm -f other-ca.key

leaf() { # name san
  key "$1.key"
  q openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$2" > "$1.ext"
  q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -sha256 -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
leaf server "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf wrongname "DNS:wrong.invalid"
rm -f ca.srl
chmod 644 ./*.key ./*.pem   # memcached -u nobody reads them

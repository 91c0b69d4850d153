#!/bin/sh
# Make the TLS material of the Kubernetes example in DIR (default: ./certs): a CA, a
# worker certificate for the name "wool-worker" (workers advertise pod IPs, which change;
# callers verify this name instead, WorkerCredentials(server_name="wool-worker")), and a
# client certificate for callers. Then:
#   kubectl create secret generic wool-tls --from-file=DIR/ca.pem \
#     --from-file=DIR/worker-cert.pem --from-file=DIR/worker-key.pem \
#     --from-file=DIR/client-cert.pem --from-file=DIR/client-key.pem
set -eu
dir=${1:-certs}
mkdir -p "$dir"
cd "$dir"
umask 077

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=wool demo CA" -keyout ca-key.pem -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  2>/dev/null

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=wool-worker" -keyout worker-key.pem -out worker.csr 2>/dev/null
printf '%s\n' "subjectAltName=DNS:wool-worker" "extendedKeyUsage=serverAuth,clientAuth" \
  > worker.ext
openssl x509 -req -in worker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -days 90 -extfile worker.ext -out worker-cert.pem 2>/dev/null

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=wool caller" -keyout client-key.pem -out client.csr 2>/dev/null
printf '%s\n' "extendedKeyUsage=clientAuth" > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -days 90 -extfile client.ext -out client-cert.pem 2>/dev/null

rm -f worker.csr worker.ext client.csr client.ext ca.srl
openssl verify -CAfile ca.pem worker-cert.pem client-cert.pem

#!/bin/sh
# A self-signed TLS setup for the compose proxy: a private CA and a server certificate it signs.
#
#   ./make-cert.sh [NAME ...]     names (DNS or IP) the certificate is for; default: localhost 127.0.0.1
#
# Writes to $TLS_DIR (default: tls/ next to this script): ca.crt (give it to clients: REQUESTS_CA_BUNDLE or
# SSL_CERT_FILE), ca.key (keep offline), server.crt and server.key (nginx's). The CA is made once and kept,
# so running the script again (new names, renewal) issues a new server certificate clients already trust.
# Keys are written 0600. For a public deployment use certificates from your own CA or ACME instead.
set -eu

dir=${TLS_DIR:-$(dirname "$0")/tls}
days_ca=3650
days_server=397
[ "$#" -gt 0 ] || set -- localhost 127.0.0.1

umask 077
mkdir -p "$dir"
cd "$dir"

san=""
for name in "$@"; do
    case "$name" in
        *[!0-9.]*) entry="DNS:$name" ;;   # anything but digits and dots: a host name
        *) entry="IP:$name" ;;
    esac
    san="${san:+$san,}$entry"
done

if [ ! -f ca.key ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
        -days "$days_ca" -subj "/CN=tallystick private CA" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
    echo "made a new CA: $dir/ca.crt"
fi

cat > server.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
    -subj "/CN=$1"
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days "$days_server" \
    -sha256 -extfile server.ext
rm -f server.csr server.ext
chmod 644 ca.crt server.crt
echo "server certificate for $san: $dir/server.crt (key $dir/server.key), signed by $dir/ca.crt"

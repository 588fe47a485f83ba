#!/bin/sh
# burrow doctor NAME for certificate connections, through a real burrowd: our certificate's
# dates (ok, expired), whether the private key belongs to it, an encrypted key without a
# passphrase in the secrets file reported "encrypted, not checked" (no prompt), and the ca file.
# The certificates are made with openssl at test time (nothing committed).
set -u
. "$(dirname "$0")/../tap.sh"
SRC=${BURROW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BURROW_BUILD:-$SRC/build}
[ -x "$BUILD/burrowd" ] || skip_all "burrowd is not built in $BUILD"
[ -x "$BUILD/burrow" ] || skip_all "burrow is not built in $BUILD"
command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"

T=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
mkdir -p "$T/etc/connections" "$T/etc/secrets" "$T/etc/policies" "$T/state" "$T/pki"
SOCK=$T/burrowd.sock
P=$T/pki
bw() { "$BUILD/burrow" --socket "$SOCK" "$@"; }

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 30 \
	-subj "/CN=Doctor CA" 2>/dev/null &&
openssl genrsa -out "$P/me.key" 2048 2>/dev/null &&
openssl genrsa -out "$P/other.key" 2048 2>/dev/null &&
openssl req -new -key "$P/me.key" -subj "/CN=me.lab.example" -out "$P/me.csr" 2>/dev/null &&
openssl x509 -req -in "$P/me.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -set_serial 1 -days 200 -out "$P/me.pem" 2>/dev/null &&
: >"$P/index.txt" && echo 10 >"$P/serial" &&
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s\nnew_certs_dir = %s\nserial = %s\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n' \
	"$P/index.txt" "$P" "$P/serial" >"$P/ca.cnf" &&
openssl ca -batch -notext -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" \
	-startdate 20200101000000Z -enddate 20210101000000Z -in "$P/me.csr" -out "$P/old.pem" 2>/dev/null &&
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$P/me.key" -passout pass:doc-pass -out "$P/me-enc.key"
ok $? "openssl made a CA, our certificate (200 days), an expired one and keys"

printf '[agent]\nike_port = 0\nnatt_port = 0\n' > "$T/etc/burrow.conf"
# conn NAME CERT KEY CA
conn() {
	printf '[connection]\ngateway = 127.0.0.1\nremote_networks = 10.1.0.0/24\n\n[auth]\nmethod = rsa\ncertificate = %s\nprivate_key = %s\nca = %s\n' \
		"$2" "$3" "$4" > "$T/etc/connections/$1.conf"
}
conn good "$P/me.pem" "$P/me-enc.key" "$P/ca.pem"
printf '[secrets]\nprivate_key_passphrase = doc-pass\n' > "$T/etc/secrets/good.secrets"
chmod 600 "$T/etc/secrets/good.secrets"
conn enc "$P/me.pem" "$P/me-enc.key" "$P/ca.pem"
conn bad "$P/old.pem" "$P/other.key" "$P/nope.pem"

"$BUILD/burrowd" --foreground --config-dir "$T/etc" --state-dir "$T/state" --socket "$SOCK" \
	--devices-dir "$SRC/devices" --log-level debug 2>"$T/burrowd.log" &
PID=$!
wait_for 10 test -S "$SOCK"
ok $? "burrowd starts"

out=$(bw doctor good)
diag "$out"
like "$out" "^OK   cert-dates: our certificate CN=me\\.lab\\.example \\($P/me\\.pem\\) is valid until 20" \
	"good: our certificate's dates are ok, with its expiry"
like "$out" "^OK   cert-key: the private key $P/me-enc\\.key belongs to the certificate" \
	"good: the encrypted key, opened with the passphrase of the secrets file, belongs to the certificate"
like "$out" "^OK   cert-ca: ca $P/ca\\.pem loads: 1 CA certificate" "good: the ca file loads"

out=$(bw doctor enc </dev/null)
like "$out" "^OK   cert-key: the private key $P/me-enc\\.key: encrypted, not checked" \
	"enc: an encrypted key without a passphrase in the secrets file is 'encrypted, not checked'"
is "$(bw list 2>/dev/null | grep -c needs-secret)" 0 "enc: doctor asked for nothing (no connection waits for a secret)"

out=$(bw doctor bad); rc=$?
diag "$out"
like "$out" "^FAIL cert-dates: our certificate CN=me\\.lab\\.example \\($P/old\\.pem\\) expired on 2021-01-01 00:00:00 UTC; this machine's clock says 20.* — " \
	"bad: an expired certificate fails with its expiry, the clock and what to do"
like "$out" "^FAIL cert-key: the private key $P/other\\.key does not belong to the certificate $P/old\\.pem" \
	"bad: a key of another certificate fails, both files named"
like "$out" "^FAIL cert-ca: the CA $P/nope\\.pem cannot be read" "bad: a missing ca file fails, named"
is "$rc" 1 "bad: doctor exits 1"

out=$(bw doctor good)
if printf '%s\n' "$out" | grep -q 'doc-pass' || grep -q 'doc-pass' "$T/burrowd.log"; then
	ok 1 "the passphrase appears neither in doctor's output nor in burrowd's log"
else
	ok 0 "the passphrase appears neither in doctor's output nor in burrowd's log"
fi
kill "$PID" && wait "$PID" 2>/dev/null
PID=
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$T/burrowd.log"; then
	ok 1 "burrowd ran without sanitizer reports"; grep -E -A20 'Sanitizer|runtime error' "$T/burrowd.log" | diag
else
	ok 0 "burrowd ran without sanitizer reports"
fi
done_testing

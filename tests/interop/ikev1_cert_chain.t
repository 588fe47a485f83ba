#!/bin/sh
# Certificate chains in IKEv1 Main Mode against a strongSwan gateway with auth = pubkey. The
# lab's PKI is made with openssl at test time in the lab directory (nothing committed): a root
# CA, under it a gateway sub CA and a client sub CA, and under those the gateway's and the
# client's certificates. Only the root is a trust anchor on either side, so each side's chain
# verifies only with the intermediate the other side sends in an additional CERT payload.
# Cases:
#   our identity from a PKCS#12 file (openssl pkcs12 -export with the client sub CA and the root,
#     password in the secrets file, no private_key): tunnel up, ping passes, the gateway verified
#     us through the sub CA we sent and we verified it through the one it sent;
#   the same with a PEM certificate file that holds our certificate and then the sub CA;
#   crl = the gateway sub CA's CRL (made with openssl ca -gencrl) listing nothing: tunnel up;
#   a gateway certificate that CRL revokes: cert-revoked with the serial, the revocation date
#     and the CRL file, the gateway left with no SA of ours; the same file with a wrong password refused with
#     passphrase-wrong before any packet, nothing left behind; without a password in the secrets
#     file the connection waits in needs-secret naming pkcs12_password, and the password typed in
#     at burrow start (the secret request) brings it up.
# Each refusal leaves no bw- device and no route behind.
set -u
. "$(dirname "$0")/lib.sh"
lab_require perl openssl
lab_up


# ---- the PKI, made now
P=$LAB_DIR/pki
mkdir -p "$P"
# mkca NAME CN [ISSUER]  -- a root CA, or an intermediate CA signed by ISSUER
mkca() {
    if [ $# -lt 3 ]; then
        openssl req -x509 -newkey rsa:3072 -nodes -keyout "$P/$1.key" -out "$P/$1.pem" -days 30 \
            -subj "/C=CH/O=Burrow Lab/CN=$2" -addext basicConstraints=critical,CA:true \
            -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        return
    fi
    openssl req -new -newkey rsa:3072 -nodes -keyout "$P/$1.key" -subj "/C=CH/O=Burrow Lab/CN=$2" \
        -out "$P/$1.csr" 2>/dev/null &&
    printf 'basicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n' >"$P/$1.ext" &&
    openssl x509 -req -in "$P/$1.csr" -CA "$P/$3.pem" -CAkey "$P/$3.key" -set_serial "0x$(_lab_rand)" \
        -days 30 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
}
# mkcert NAME ISSUER SUBJECT SAN
mkcert() {
    openssl genrsa -out "$P/$1.key" 3072 2>/dev/null &&
    openssl req -new -key "$P/$1.key" -subj "$3" -out "$P/$1.csr" 2>/dev/null &&
    printf 'basicConstraints = CA:false\nkeyUsage = digitalSignature\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = %s\n' "$4" >"$P/$1.ext" &&
    openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -set_serial "0x$(_lab_rand)" \
        -days 30 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
}
mkca root "Burrow Lab Root CA" &&
mkca gwsub "Burrow Lab Gateway Sub CA" root &&
mkca clisub "Burrow Lab Client Sub CA" root &&
mkcert gw gwsub "/C=CH/O=Burrow Lab/CN=gw.lab.example" "DNS:gw.lab.example, IP:$GW_ADDR" &&
mkcert alice clisub "/C=CH/O=Burrow Lab/CN=alice.lab.example" "email:alice@lab.example" &&
mkcert bob clisub "/C=CH/O=Burrow Lab/CN=bob.lab.example" "email:bob@lab.example" &&
cat "$P/clisub.pem" "$P/root.pem" >"$P/alice-cas.pem" &&
openssl pkcs12 -export -in "$P/alice.pem" -inkey "$P/alice.key" -certfile "$P/alice-cas.pem" \
    -passout pass:p12-lab-pass -out "$P/alice.p12" &&
cat "$P/bob.pem" "$P/clisub.pem" >"$P/bob-chain.pem" &&
mkcert gwrev gwsub "/C=CH/O=Burrow Lab/CN=gw-revoked.lab.example" "DNS:gw-revoked.lab.example, IP:$GW_ADDR"
ok $? "openssl made the lab PKI (root, two sub CAs), alice.p12, bob-chain.pem and a second gateway certificate"

# the gateway sub CA's CRLs: one empty, one revoking gwrev (openssl ca's database in $P/crl)
mkdir -p "$P/crl"
: >"$P/crl/index.txt"
printf '[ca]\ndefault_ca = sub\n[sub]\ndatabase = %s\ndefault_md = sha256\ndefault_crl_days = 7\n' \
    "$P/crl/index.txt" >"$P/crl/ca.cnf"
crl() { openssl ca -gencrl -config "$P/crl/ca.cnf" -cert "$P/gwsub.pem" -keyfile "$P/gwsub.key" -out "$1" 2>/dev/null; }
crl "$P/gwsub-empty.crl" &&
openssl ca -config "$P/crl/ca.cnf" -cert "$P/gwsub.pem" -keyfile "$P/gwsub.key" -revoke "$P/gwrev.pem" 2>/dev/null &&
crl "$P/gwsub.crl.pem" && openssl crl -in "$P/gwsub.crl.pem" -outform DER -out "$P/gwsub.crl"
ok $? "openssl ca made the gateway sub CA's CRLs (empty, and revoking gw-revoked; DER)"
REV_SERIAL=$(openssl x509 -in "$P/gwrev.pem" -noout -serial | sed 's/^serial=//')
REV_DATE=$(openssl crl -in "$P/gwsub.crl" -inform DER -noout -text | sed -n 's/^ *Revocation Date: //p' | head -n 1)
REV_DAY=$(date -u -d "$REV_DATE" +%Y-%m-%d)
diag "gw-revoked: serial $REV_SERIAL revoked $REV_DATE"

! openssl verify -CAfile "$P/root.pem" "$P/gw.pem" >/dev/null 2>&1
ok $? "the gateway's certificate does not verify against the root alone (the sub CA is needed)"


# ---- the gateway: one swanctl.conf per case, credentials under LAB_DIR/gw (swanctl's dir)
mkdir -p "$LAB_DIR/gw/x509" "$LAB_DIR/gw/x509ca" "$LAB_DIR/gw/rsa"
cp "$P/root.pem" "$P/gwsub.pem" "$LAB_DIR/gw/x509ca/"
cp "$P/gw.pem" "$P/gwrev.pem" "$LAB_DIR/gw/x509/"
cp "$P/gw.key" "$P/gwrev.key" "$LAB_DIR/gw/rsa/"
# gw_conf CERT
gw_conf() {
    cat >"$LAB_DIR/gw-$1.conf" <<EOF
connections {
    bw {
        version = 1
        proposals = aes256-sha256-modp2048
        local_addrs = $GW_ADDR
        encap = yes
        send_cert = always
        local {
            auth = pubkey
            certs = $1.pem
        }
        remote {
            auth = pubkey
            id = %any
        }
        children {
            bw {
                local_ts = $LAN_NET
                remote_ts = 10.9.0.2/32
                esp_proposals = aes256-sha256-modp2048
            }
        }
    }
}
EOF
    echo "$LAB_DIR/gw-$1.conf"
}
gw_switch() { gw_stop; sleep 0.3; gw_start "$(gw_conf "$1")"; }

# ---- the connections
# cconn NAME CERT KEY CA [MORE AUTH LINES]
cconn() {
    write_conn "$1" <<EOF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[auth]
method = rsa
certificate = $2
$( [ -n "$3" ] && echo "private_key = $3" )
ca = $4
${5:-}

[phase1]
proposals = aes256-sha256-modp2048

[phase2]
proposals = aes256-sha256
pfs = modp2048
EOF
}
cconn p12 "$P/alice.p12" "" "$P/root.pem"
write_secret p12 <<EOF
[secrets]
pkcs12_password = p12-lab-pass
EOF
cconn p12bad "$P/alice.p12" "" "$P/root.pem"
write_secret p12bad <<EOF
[secrets]
pkcs12_password = not-the-password
EOF
cconn p12ask "$P/alice.p12" "" "$P/root.pem"
cconn chain "$P/bob-chain.pem" "$P/bob.key" "$P/root.pem"
cconn crlok "$P/bob-chain.pem" "$P/bob.key" "$P/root.pem" "crl = $P/gwsub-empty.crl"
cconn revoked "$P/bob-chain.pem" "$P/bob.key" "$P/root.pem" "crl = $P/gwsub.crl"
burrow_start
ok $? "burrowd starts with the certificate chain connections"

# refused NAME CODE EXPLAIN_REGEX RC OUT
refused() {
    is "$4" 1 "$1: burrow start exits 1"
    is "$(list_state "$1")" failed "$1: burrow list shows the connection failed"
    is "$(json_field "$1" last_failure.code)" "$2" "$1: burrow status --json has last_failure.code $2"
    _exp=$(bw explain "$1" 2>&1)
    diag "$1: burrow start said: $5" "$1: burrow explain said: $_exp"
    like "$_exp" "$3" "$1: burrow explain says: /$3/"
    ip -n "$NS_CLI" link show "bw-$1" >/dev/null 2>&1
    ok $((! $?)) "$1: no bw-$1 device left in the client namespace"
    is "$(ip -n "$NS_CLI" route show | grep -c 'dev bw-')" 0 "$1: no route through a bw- device"
}
# up NAME WHAT -- burrow start, the gateway established, ping through, stop, the gateway clean
up() {
    out=$(bw start "$1" 2>&1); rc=$?
    is "$rc" 0 "$1: burrow start returns success once the tunnel is up ($2)"
    [ "$rc" = 0 ] || { diag "$out"; gw_log | tail -n 30 | diag; }
    lab_ping "$NS_CLI" 3
    ok $? "$1: the LAN host answers ping through the tunnel"
}
down() {
    bw stop "$1" >/dev/null 2>&1
    gw_none
    ok $? "$1: after stop the gateway holds no SA of ours"
}

# ---- a PKCS#12 identity
gw_start "$(gw_conf gw)"
ok $? "the gateway starts with its certificate from the gateway sub CA"
up p12 "certificate, key from alice.p12"
like "$(gw_log)" "received issuer cert \"C=CH, O=Burrow Lab, CN=Burrow Lab Client Sub CA\"" \
    "p12: the gateway received the client sub CA from the PKCS#12 file in a second CERT payload"
like "$(gw_log)" "authentication of 'C=CH, O=Burrow Lab, CN=alice.lab.example' with RSA.*successful" \
    "p12: the gateway verified our signature through that sub CA (it has only the root)"
like "$(gw_log)" "sending issuer cert \"C=CH, O=Burrow Lab, CN=Burrow Lab Gateway Sub CA\"" \
    "p12: the gateway sent its sub CA"
is "$(json_field p12 gateway_certificate.issuer)" "CN=Burrow Lab Gateway Sub CA,O=Burrow Lab,C=CH" \
    "p12: we verified the gateway's certificate through the sub CA it sent (ca is the root alone)"
like "$(bw log p12 2>&1)" 'our certificate: CN=alice\.lab\.example,O=Burrow Lab,C=CH, issued by CN=Burrow Lab Client Sub CA' \
    "p12: burrow log names the certificate loaded from the PKCS#12 file"
down p12
if grep -q 'p12-lab-pass' "$LAB_DIR/burrowd.out"; then ok 1 "p12: the PKCS#12 password is not in burrowd's log"
else ok 0 "p12: the PKCS#12 password is not in burrowd's log"; fi

# ---- a PEM certificate file with the sub CA after our certificate
gw_log_before=$(gw_log | wc -l)
up chain "bob-chain.pem"
newlog=$(gw_log | tail -n +"$((gw_log_before + 1))")
like "$newlog" "received issuer cert \"C=CH, O=Burrow Lab, CN=Burrow Lab Client Sub CA\"" \
    "chain: the sub CA that follows our certificate in the PEM file went out in a second CERT payload"
like "$newlog" "authentication of 'C=CH, O=Burrow Lab, CN=bob.lab.example' with RSA.*successful" \
    "chain: the gateway verified bob through it"
down chain

n0=$(ike_packets)
out=$(bw start p12bad 2>&1); rc=$?
refused p12bad passphrase-wrong "password and the one Burrow has does not open it" "$rc" "$out"
like "$out" "password does not open the PKCS#12 file $P/alice\\.p12" "p12bad: the error names the PKCS#12 file"
is "$(ike_packets)" "$n0" "p12bad: refused before any IKE packet was sent"

n0=$(ike_packets)
out=$(bw start p12ask </dev/null 2>&1); rc=$?
is "$rc" 1 "p12ask: burrow start without a terminal exits 1"
like "$out" "PKCS#12 file $P/alice\\.p12 is protected by a password; put pkcs12_password = \\.\\.\\. in $LAB_DIR/cli/etc/secrets/p12ask\\.secrets" \
    "p12ask: the error says where the PKCS#12 password goes"
is "$(list_state p12ask)" needs-secret "p12ask: the connection waits in state needs-secret"
is "$(json_field p12ask needs_secret)" pkcs12_password "p12ask: burrow status --json asks for pkcs12_password (what burrow start prompts for)"
is "$(ike_packets)" "$n0" "p12ask: no IKE packet was sent"
perl -MIO::Socket::UNIX -e '
    my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 3;
    print $s "{\"v\":1,\"cmd\":\"secret\",\"args\":{\"name\":\"p12ask\",\"key\":\"pkcs12_password\",\"value\":\"p12-lab-pass\"}}\n";
    my $r = <$s>; exit($r =~ /"ok":true/ ? 0 : 1);' "$LAB_DIR/cli/burrowd.sock"
ok $? "p12ask: burrowd takes the PKCS#12 password as a typed-in secret"
up p12ask "the typed PKCS#12 password"
down p12ask

# ---- CRLs
up crlok "crl = the sub CA's empty CRL"
down crlok
gw_switch gwrev
ok $? "the gateway restarts with the certificate its sub CA revoked"
out=$(bw start revoked 2>&1); rc=$?
refused revoked cert-revoked "CN=gw-revoked\\.lab\\.example,O=Burrow Lab,C=CH \\(serial 0*$REV_SERIAL\\) is on the revocation list of CN=Burrow Lab Gateway Sub CA,O=Burrow Lab,C=CH in $P/gwsub\\.crl, revoked on $REV_DAY" "$rc" "$out"
like "$out" "serial 0*$REV_SERIAL\\) was revoked on $REV_DAY [0-9:]+ UTC \\(CRL $P/gwsub\\.crl\\)" \
    "revoked: burrow start names the serial, the revocation date and the CRL file"
gw_none
ok $? "revoked: the gateway holds no IKE SA afterwards (our delete reached it)"

left=$(ip -n "$NS_CLI" -o link show | grep -c ': bw-')
is "$left" 0 "no bw-* device left in the client namespace"
burrow_stop
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out"; then
    ok 1 "burrowd ran without sanitizer reports"; grep -E -A20 'Sanitizer|runtime error' "$LAB_DIR/burrowd.out" | diag
else
    ok 0 "burrowd ran without sanitizer reports"
fi
done_testing

#!/bin/sh
# Certificate authentication (IKEv1 Main Mode) against a strongSwan gateway with auth = pubkey.
# The lab's CA, gateway and client certificates are made with openssl at test time in the lab
# directory (nothing committed). Cases, one gateway configuration after the other:
#   RSA 3072, our key an encrypted PKCS#8 file: tunnel up, ping passes, burrow status shows the
#     gateway's certificate; a wrong CA (cert-untrusted), a remote_id the gateway does not use
#     (id-mismatch), a private key of another certificate (key-mismatch, before any packet) and a
#     wrong passphrase (passphrase-wrong) each refused with their code and explanation, and an
#     encrypted key without a passphrase waiting in needs-secret;
#   ECDSA P-384 with asn1dn identities written in both DN forms, ca a directory: tunnel up, ping;
#   RSA signatures followed by XAUTH (the xauth-rsa method): tunnel up, ping;
#   an expired gateway certificate: cert-expired with the dates and the local clock.
# Each refusal leaves no bw- device and no route behind.
set -u
. "$(dirname "$0")/lib.sh"
lab_require perl openssl
lab_up


# ---- the PKI, made now
P=$LAB_DIR/pki
mkdir -p "$P/new" "$P/cadir" "$P/otherca"
: >"$P/index.txt"
echo 1000 >"$P/serial"
cat >"$P/ca.cnf" <<EOF
[ca]
default_ca = lab
[lab]
database = $P/index.txt
new_certs_dir = $P/new
serial = $P/serial
default_md = sha256
policy = anydn
unique_subject = no
copy_extensions = none
[anydn]
countryName = optional
organizationName = optional
commonName = supplied
EOF
# mkca NAME CN
mkca() {
    openssl req -x509 -newkey rsa:3072 -nodes -keyout "$P/$1.key" -out "$P/$1.pem" -days 30 \
        -subj "/C=CH/O=Burrow Lab/CN=$2" -addext basicConstraints=critical,CA:true \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
# mkcert NAME KEYSPEC SUBJECT SAN [STARTDATE ENDDATE]  -- signed by the lab CA
mkcert() {
    case $2 in
        rsa) openssl genrsa -traditional -out "$P/$1.key" 3072 2>/dev/null ;;
        ec) openssl ecparam -name secp384r1 -genkey -noout -out "$P/$1.key" 2>/dev/null ;;
    esac
    openssl req -new -key "$P/$1.key" -subj "$3" -out "$P/$1.csr" 2>/dev/null
    printf 'basicConstraints = CA:false\nkeyUsage = digitalSignature\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = %s\n' "$4" >"$P/$1.ext"
    if [ $# -ge 6 ]; then
        openssl ca -batch -notext -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" \
            -startdate "$5" -enddate "$6" -extfile "$P/$1.ext" -in "$P/$1.csr" -out "$P/$1.pem" 2>/dev/null
    else
        openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -set_serial "0x$(_lab_rand)" \
            -days 30 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
    fi
}
mkca ca "Burrow Lab CA" && mkca other "Some Other CA" &&
mkcert gw rsa "/C=CH/O=Burrow Lab/CN=gw.lab.example" "DNS:gw.lab.example, IP:$GW_ADDR" &&
mkcert gwec ec "/C=CH/O=Burrow Lab/CN=gw-ec.lab.example" "DNS:gw-ec.lab.example" &&
mkcert gwold rsa "/C=CH/O=Burrow Lab/CN=gw-old.lab.example" "DNS:gw-old.lab.example" 20200101000000Z 20210101000000Z &&
mkcert cli rsa "/C=CH/O=Burrow Lab/CN=client.lab.example" "email:client@lab.example" &&
mkcert cliec ec "/C=CH/O=Burrow Lab/CN=client-ec.lab.example" "email:client-ec@lab.example" &&
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$P/cli.key" -passout pass:lab-key-pass -out "$P/cli-enc.key" &&
openssl pkcs8 -topk8 -nocrypt -in "$P/cliec.key" -out "$P/cliec-p8.key"
ok $? "openssl made the lab CA and the gateway and client certificates"
cp "$P/ca.pem" "$P/cadir/lab-ca.pem"
cp "$P/other.pem" "$P/otherca/other-ca.pem"
openssl x509 -in "$P/gwold.pem" -noout -enddate | grep -q 'notAfter=Jan  1 00:00:00 2021 GMT'
ok $? "the old gateway certificate expired on 2021-01-01"

# ---- the gateway: one swanctl.conf per case, credentials under LAB_DIR/gw (swanctl's dir)
mkdir -p "$LAB_DIR/gw/x509" "$LAB_DIR/gw/x509ca" "$LAB_DIR/gw/rsa" "$LAB_DIR/gw/ecdsa"
cp "$P/ca.pem" "$LAB_DIR/gw/x509ca/"
cp "$P/gw.pem" "$P/gwec.pem" "$P/gwold.pem" "$LAB_DIR/gw/x509/"
cp "$P/gw.key" "$P/gwold.key" "$LAB_DIR/gw/rsa/"
cp "$P/gwec.key" "$LAB_DIR/gw/ecdsa/"
# gw_conf CERT [xauth]
gw_conf() {
    _xa=
    [ "${2:-}" != xauth ] || _xa='
        remote-xauth {
            auth = xauth
        }'
    cat >"$LAB_DIR/gw-$1.conf" <<EOF
connections {
    bw {
        version = 1
        proposals = aes256-sha256-modp2048
        local_addrs = $GW_ADDR
        encap = yes
        local {
            auth = pubkey
            certs = $1.pem
        }
        remote {
            auth = pubkey
            id = %any
        }$_xa
        children {
            bw {
                local_ts = $LAN_NET
                remote_ts = 10.9.0.2/32
                esp_proposals = aes256-sha256-modp2048
            }
        }
    }
}
secrets {
    xauth-bw {
        id = alice
        secret = "alice-secret"
    }
}
EOF
    echo "$LAB_DIR/gw-$1.conf"
}
gw_switch() { gw_stop; sleep 0.3; gw_start "$(gw_conf "$1" "${2:-}")"; }

# ---- the connections
# cconn NAME METHOD CERT KEY CA [IDENTIFIER LINES]
cconn() {
    write_conn "$1" <<EOF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[auth]
method = $2
certificate = $3
private_key = $4
ca = $5

[identifiers]
${6:-}

[phase1]
proposals = aes256-sha256-modp2048

[phase2]
proposals = aes256-sha256
pfs = modp2048
EOF
}
cconn rsa rsa "$P/cli.pem" "$P/cli-enc.key" "$P/ca.pem"
write_secret rsa <<EOF
[secrets]
private_key_passphrase = lab-key-pass
EOF
cconn wrongca rsa "$P/cli.pem" "$P/cli.key" "$P/other.pem"
cconn idmis rsa "$P/cli.pem" "$P/cli.key" "$P/ca.pem" 'remote_id_type = fqdn
remote_id = other.lab.example
verify_remote_id = yes'
cconn keymis rsa "$P/cli.pem" "$P/gw.key" "$P/ca.pem"
cconn badpass rsa "$P/cli.pem" "$P/cli-enc.key" "$P/ca.pem"
write_secret badpass <<EOF
[secrets]
private_key_passphrase = not-the-pass
EOF
cconn xauth rsa "$P/cli.pem" "$P/cli.key" "$P/ca.pem"
sed -i 's/^ca = .*/&\nxauth = yes\nxauth_user = alice/' "$LAB_DIR/cli/etc/connections/xauth.conf"
write_secret xauth <<EOF
[secrets]
xauth_password = alice-secret
EOF
cconn nopass rsa "$P/cli.pem" "$P/cli-enc.key" "$P/ca.pem"
cconn ec ecdsa "$P/cliec.pem" "$P/cliec-p8.key" "$P/cadir" 'local_id_type = asn1dn
local_id = /C=CH/O=Burrow Lab/CN=client-ec.lab.example
remote_id_type = asn1dn
remote_id = CN=gw-ec.lab.example, O=Burrow Lab, C=CH
verify_remote_id = yes'
cconn expired rsa "$P/cli.pem" "$P/cli.key" "$P/ca.pem"
burrow_start
ok $? "burrowd starts with the certificate connections"

# refused NAME CODE EXPLAIN_REGEX RC OUT
refused() {
    is "$4" 1 "$1: burrow start exits 1"
    _lines=$(printf '%s\n' "$5" | grep -c .)
    if [ -n "$5" ] && [ "$_lines" = 1 ]; then ok 0 "$1: burrow start prints a one-line error"
    else ok 1 "$1: burrow start prints a one-line error"; diag "got: $5"; fi
    is "$(list_state "$1")" failed "$1: burrow list shows the connection failed"
    is "$(json_field "$1" last_failure.code)" "$2" "$1: burrow status --json has last_failure.code $2"
    _exp=$(bw explain "$1" 2>&1)
    diag "$1: burrow start said: $5" "$1: burrow explain said: $_exp"
    like "$_exp" "$3" "$1: burrow explain says: /$3/"
    like "$(bw log "$1" 2>&1)" "$(printf '%s' "$5" | sed 's/^.*: //' | cut -c1-30 | sed 's/[].[*^$()+?{}|\\]/./g')" \
        "$1: burrow log has the error"
    ip -n "$NS_CLI" link show "bw-$1" >/dev/null 2>&1
    ok $((! $?)) "$1: no bw-$1 device left in the client namespace"
    is "$(ip -n "$NS_CLI" route show | grep -c 'dev bw-')" 0 "$1: no route through a bw- device"
}

# ---- RSA 3072
gw_start "$(gw_conf gw)"
ok $? "the gateway starts with its RSA 3072 certificate"
out=$(bw start rsa 2>&1); rc=$?
is "$rc" 0 "rsa: burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || { diag "$out"; gw_log | tail -n 30 | diag; }
gw_established
ok $? "rsa: the gateway has the IKE SA established"
like "$(gw_log)" "authentication of 'C=CH, O=Burrow Lab, CN=client.lab.example' with RSA.*successful" \
    "rsa: the gateway verified our RSA signature and our asn1dn identity (the certificate's subject)"
lab_ping "$NS_CLI" 3
ok $? "rsa: the LAN host answers ping through the tunnel"
like "$(bw log rsa 2>&1)" 'our certificate: CN=client\.lab\.example,O=Burrow Lab,C=CH, issued by CN=Burrow Lab CA' \
    "rsa: burrow log names our certificate (loaded from the encrypted PKCS#8 key's pair)"
st=$(bw status rsa)
like "$st" 'gateway certificate: CN=gw\.lab\.example,O=Burrow Lab,C=CH' "rsa: burrow status shows the gateway certificate's subject"
like "$st" 'issued by: CN=Burrow Lab CA,O=Burrow Lab,C=CH' "rsa: burrow status shows its issuer"
like "$st" 'expires: +20[0-9][0-9]-[0-9][0-9]-[0-9][0-9] ' "rsa: burrow status shows its expiry"
is "$(json_field rsa gateway_certificate.subject)" "CN=gw.lab.example,O=Burrow Lab,C=CH" \
    "rsa: burrow status --json has gateway_certificate.subject"
like "$(json_field rsa gateway_certificate.not_after)" "^$(date -u -d '+30 days' +%Y-%m-%d) " \
    "rsa: gateway_certificate.not_after is the certificate's expiry (30 days from now)"
bw stop rsa >/dev/null 2>&1
gw_none
ok $? "rsa: after stop the gateway holds no SA of ours"

# ---- failures against the same gateway
out=$(bw start wrongca 2>&1); rc=$?
refused wrongca cert-untrusted "issued by CN=Burrow Lab CA,O=Burrow Lab,C=CH, which is not a CA this connection trusts \(ca = $P/other.pem\)" "$rc" "$out"
gw_none
ok $? "wrongca: the gateway holds no IKE SA afterwards (our delete reached it)"

out=$(bw start idmis 2>&1); rc=$?
refused idmis id-mismatch 'identity \(asn1dn CN=gw\.lab\.example,O=Burrow Lab,C=CH\) is not the one this connection expects \(fqdn other\.lab\.example\)' "$rc" "$out"

n0=$(ike_packets)
out=$(bw start keymis 2>&1); rc=$?
refused keymis key-mismatch "belongs to another certificate" "$rc" "$out"
like "$out" "private key $P/gw.key does not belong to the certificate $P/cli.pem" "keymis: the error names both files"
is "$(ike_packets)" "$n0" "keymis: refused before any IKE packet was sent"

n0=$(ike_packets)
out=$(bw start badpass 2>&1); rc=$?
refused badpass passphrase-wrong "passphrase Burrow has does not decrypt it" "$rc" "$out"
is "$(ike_packets)" "$n0" "badpass: refused before any IKE packet was sent"

# an encrypted key and no passphrase anywhere: needs-secret, like a missing psk
n0=$(ike_packets)
out=$(bw start nopass </dev/null 2>&1); rc=$?
is "$rc" 1 "nopass: burrow start without a terminal exits 1"
like "$out" "private key $P/cli-enc.key is encrypted; put private_key_passphrase = \\.\\.\\. in $LAB_DIR/cli/etc/secrets/nopass\\.secrets" \
    "nopass: the error says the key is encrypted and where the passphrase goes"
is "$(list_state nopass)" needs-secret "nopass: the connection waits in state needs-secret"
is "$(ike_packets)" "$n0" "nopass: no IKE packet was sent"
# the passphrase typed at a terminal reaches burrowd as a `secret` request (what burrow start sends)
perl -MIO::Socket::UNIX -e '
    my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 3;
    print $s "{\"v\":1,\"cmd\":\"secret\",\"args\":{\"name\":\"nopass\",\"key\":\"private_key_passphrase\",\"value\":\"lab-key-pass\"}}\n";
    my $r = <$s>; exit($r =~ /"ok":true/ ? 0 : 1);' "$LAB_DIR/cli/burrowd.sock"
ok $? "nopass: burrowd takes the passphrase as a typed-in secret"
out=$(bw start nopass 2>&1); rc=$?
is "$rc" 0 "nopass: with the typed passphrase the tunnel comes up"
[ "$rc" = 0 ] || diag "$out"
bw stop nopass >/dev/null 2>&1
gw_none
ok $? "nopass: after stop the gateway holds no SA of ours"
if grep -q 'lab-key-pass' "$LAB_DIR/burrowd.out"; then ok 1 "nopass: the passphrase is not in burrowd's log"
else ok 0 "nopass: the passphrase is not in burrowd's log"; fi

# ---- ECDSA P-384, asn1dn identities in both DN forms, ca a directory
gw_switch gwec
ok $? "the gateway restarts with its ECDSA P-384 certificate"
out=$(bw start ec 2>&1); rc=$?
is "$rc" 0 "ec: burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || { diag "$out"; gw_log | tail -n 30 | diag; }
like "$(gw_log)" "authentication of 'C=CH, O=Burrow Lab, CN=client-ec.lab.example' with ECDSA.*successful" \
    "ec: the gateway verified our ECDSA P-384 signature and the asn1dn written in one-line form"
like "$(bw log ec 2>&1)" 'gateway identity: asn1dn CN=gw-ec\.lab\.example' "ec: the gateway's asn1dn identity matched the RFC 4514 remote_id"
lab_ping "$NS_CLI" 3
ok $? "ec: the LAN host answers ping through the tunnel"
is "$(json_field ec gateway_certificate.subject)" "CN=gw-ec.lab.example,O=Burrow Lab,C=CH" \
    "ec: burrow status --json shows the gateway's ECDSA certificate"
bw stop ec >/dev/null 2>&1
gw_none
ok $? "ec: after stop the gateway holds no SA of ours"

# ---- RSA signatures followed by XAUTH (auth method 65005)
gw_switch gw xauth
ok $? "the gateway restarts asking for XAUTH after the RSA signatures"
out=$(bw start xauth 2>&1); rc=$?
is "$rc" 0 "xauth: burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || { diag "$out"; gw_log | tail -n 30 | diag; }
like "$(gw_log)" "XAuth authentication of 'alice' successful" "xauth: the gateway accepted our XAUTH credentials"
lab_ping "$NS_CLI" 3
ok $? "xauth: the LAN host answers ping through the tunnel"
bw stop xauth >/dev/null 2>&1
gw_none
ok $? "xauth: after stop the gateway holds no SA of ours"

# ---- an expired gateway certificate
gw_switch gwold
ok $? "the gateway restarts with a certificate that expired in 2021"
out=$(bw start expired 2>&1); rc=$?
refused expired cert-expired "gw-old\.lab\.example,O=Burrow Lab,C=CH expired on 2021-01-01 00:00:00 UTC; this machine's clock says $(date -u +%Y-%m-%d)" "$rc" "$out"

left=$(ip -n "$NS_CLI" -o link show | grep -c ': bw-')
is "$left" 0 "no bw-* device left in the client namespace"
burrow_stop
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out"; then
    ok 1 "burrowd ran without sanitizer reports"; grep -E -A20 'Sanitizer|runtime error' "$LAB_DIR/burrowd.out" | diag
else
    ok 0 "burrowd ran without sanitizer reports"
fi
done_testing

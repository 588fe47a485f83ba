#!/bin/sh
# Several proposals offered, the strongSwan gateway accepts only the last one of each phase:
# phase 1 aes256-sha512-modp4096, aes128-sha256-modp3072, aes128-sha1-modp2048 and phase 2
# aes256gcm16, aes256-sha512, aes128-sha1 (PFS modp2048) against a gateway that allows only
# aes128-sha1-modp2048 / aes128-sha1-modp2048: the tunnel comes up with the last ones.
# Then a GCM-only gateway (aes256gcm16-modp2048) and a GCM-only connection: traffic flows.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up

gw_clear() {
    lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
}

# ---- 1. the gateway accepts only the last proposal of each phase
GW_IKE_PROPOSALS=aes128-sha1-modp2048 \
GW_ESP_PROPOSALS=aes128-sha1-modp2048 \
GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "the strongSwan gateway starts (only aes128-sha1-modp2048 in both phases)"

write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[phase1]
proposals = aes256-sha512-modp4096, aes128-sha256-modp3072, aes128-sha1-modp2048

[phase2]
proposals = aes256gcm16, aes256-sha512, aes128-sha1
pfs = modp2048
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
write_conn gcm <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[phase1]
proposals = aes256-sha256-modp2048

[phase2]
proposals = aes256gcm16
pfs = modp2048
CONF
write_secret gcm <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts in the client namespace"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start returns success with the last proposals"
[ "$rc" = 0 ] || { diag "$out"; bw explain office 2>&1 | diag; }
like "$(bw list)" '^office .* up ' "burrow list shows the connection up"

glog=$(gw_log)
like "$glog" 'received proposals: IKE:AES_CBC_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/MODP_4096, IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072, IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048' \
    "the gateway received our three phase-1 proposals, in order"
like "$glog" 'selected proposal: IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048' \
    "the gateway selected the last phase-1 proposal"
like "$glog" 'received proposals: ESP:AES_GCM_16_256/MODP_2048/NO_EXT_SEQ, ESP:AES_CBC_256/HMAC_SHA2_512_256/MODP_2048/NO_EXT_SEQ, ESP:AES_CBC_128/HMAC_SHA1_96/MODP_2048/NO_EXT_SEQ' \
    "the gateway received our three phase-2 proposals, in order, each with PFS modp2048"
like "$glog" 'selected proposal: ESP:AES_CBC_128/HMAC_SHA1_96/MODP_2048' \
    "the gateway selected the last phase-2 proposal"

gw_established
ok $? "the strongSwan gateway has the IKE SA established"
sas=$(gw_swanctl --list-sas 2>&1)
like "$sas" 'AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048' "the gateway's IKE SA is aes128-sha1-modp2048"
like "$sas" 'INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96/MODP_2048' \
    "the gateway's IPsec SA is AES_CBC-128/HMAC_SHA1_96 with PFS modp2048"
like "$(bw log office 2>&1)" 'phase 1: gateway chose aes128-sha1-modp2048' "burrow's log names the chosen phase-1 proposal"
like "$(bw status office 2>&1)" 'SA: +10\.9\.0\.2 === 10\.1\.0\.0/24 aes128-sha1' "burrow status shows the chosen phase-2 proposal"

lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the aes128-sha1 tunnel"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
gw_clear
ok $? "the gateway holds no SA after stop"

# ---- 2. AES-GCM only
gw_stop
GW_IKE_PROPOSALS=aes256-sha256-modp2048 \
GW_ESP_PROPOSALS=aes256gcm16-modp2048 \
GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "the strongSwan gateway restarts with only aes256gcm16-modp2048 for ESP"

out=$(bw start gcm 2>&1); rc=$?
is "$rc" 0 "burrow start returns success with AES-GCM only"
[ "$rc" = 0 ] || { diag "$out"; bw explain gcm 2>&1 | diag; }
gw_established
ok $? "the strongSwan gateway has the IKE SA established"
like "$(gw_swanctl --list-sas 2>&1)" 'INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256/MODP_2048' \
    "the gateway's IPsec SA is AES_GCM_16-256 with PFS modp2048"

lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the AES-GCM tunnel"
lab_http_start
out=$(lab_fetch "$NS_CLI" "$LAB_HTTP_PATH" 2>/dev/null)
is "$out" "$LAB_HTTP_BODY" "a page from the LAN host arrives through the AES-GCM tunnel"
st=$(bw status gcm --json)
echo "$st" | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); exit($d->{bytes_in} > 0 && $d->{bytes_out} > 0 ? 0 : 1)'
ok $? "burrow status shows non-zero byte counters on the AES-GCM tunnel"

out=$(bw stop gcm 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
gw_clear
ok $? "the gateway holds no SA after stop"
done_testing

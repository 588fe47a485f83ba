#!/bin/sh
# Aggressive Mode PSK against strongSwan: aes128-sha1-modp1024, FQDN identifiers on both
# sides (client.example.com / vpn.example.com), Quick Mode aes128-sha1 without PFS,
# host-to-network with a static virtual address: up, traffic flows, stop deletes the SAs.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up


GW_AGGRESSIVE=yes \
GW_IKE_PROPOSALS=aes128-sha1-modp1024 \
GW_ESP_PROPOSALS=aes128-sha1 \
GW_LOCAL_ID=vpn.example.com \
GW_REMOTE_ID=client.example.com \
GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "the strongSwan gateway starts (Aggressive Mode, FQDN identities)"

write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[identifiers]
local_id_type = fqdn
local_id = client.example.com
remote_id_type = fqdn
remote_id = vpn.example.com
verify_remote_id = yes

[phase1]
exchange = aggressive
proposals = aes128-sha1-modp1024

[phase2]
proposals = aes128-sha1
pfs = none
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts in the client namespace"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || { diag "$out"; bw explain office 2>&1 | diag; }
like "$(bw list)" '^office .* up ' "burrow list shows the connection up"

gw_established
ok $? "the strongSwan gateway has the IKE SA established"
sas=$(gw_swanctl --list-sas 2>&1)
like "$sas" "remote +'client\\.example\\.com' @ $CLI_ADDR" "the gateway saw the client's FQDN identity client.example.com"
like "$sas" "local +'vpn\\.example\\.com' @ $GW_ADDR" "the gateway used its FQDN identity vpn.example.com"
like "$sas" 'AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024' "phase 1 is aes128-sha1-modp1024"
like "$sas" 'AES_CBC-128/HMAC_SHA1_96' "phase 2 is aes128-sha1"
not sh -c "printf '%s\n' \"\$1\" | grep -A3 INSTALLED | grep -q MODP" sh "$sas"
ok $? "phase 2 was negotiated without PFS"
gw_log | grep -q 'Aggressive Mode'
ok $? "the gateway log shows an Aggressive Mode exchange"
like "$(bw log office 2>&1)" 'vpn\.example\.com' "burrow's log names the gateway's FQDN identity"

lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "after stop the gateway holds no SA of ours"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "the tunnel interface is gone after stop"
done_testing

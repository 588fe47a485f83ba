#!/bin/sh
# A real NAT between client and gateway (nftables masquerade in a middle namespace), the
# gateway does not fake NAT detection (encap = no) and burrow runs nat_traversal = auto:
# NAT detected in front of us, IKE floats to UDP 4500, the gateway sees the client at the
# NAT's address on port 4500, ESP goes in UDP and traffic flows.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up --nat

NAT_ADDR=192.0.2.3

GW_ENCAP=no GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "the strongSwan gateway starts (encap = no: NAT must really be detected)"

write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[phase1]
proposals = aes256-sha256-modp2048
nat_traversal = auto

[phase2]
proposals = aes256-sha256
pfs = modp2048
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts in the client namespace (behind the NAT, $CLI_ADDR)"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || { diag "$out"; bw explain office 2>&1 | diag; }
like "$(bw list)" '^office .* up ' "burrow list shows the connection up"

log=$(bw log office 2>&1)
# The gateway computed the first NAT-D hash from the packet's real source (192.0.2.3:500),
# so this is a real detection even though burrowd fakes its own hash for the gateway
# (userspace datapath, ESP in UDP forced). (The gateway always looks NATed to us:
# kernel-libipsec makes charon fake its own NAT-D, whatever encap says.)
like "$log" 'NAT detection: NAT in front of us' "burrow log shows a NAT detected in front of us"
like "$log" 'moving to UDP port 4500' "burrow floats IKE to UDP port 4500"

gw_established
ok $? "the strongSwan gateway has the IKE SA established"
sas=$(gw_swanctl --list-sas 2>&1)
like "$sas" "remote .*@ $NAT_ADDR\\[4500\\]" "the gateway sees the client at the NAT's address $NAT_ADDR, port 4500"
like "$sas" "local .*@ $GW_ADDR\\[4500\\]" "the gateway talks to the client from its port 4500"
like "$sas" 'INSTALLED, TUNNEL-in-UDP' "the gateway installed the IPsec SA, ESP in UDP"

esp0=$(lab_counter natt_esp_in)
lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel across the NAT"
esp1=$(lab_counter natt_esp_in)
ok $((esp1 > esp0 ? 0 : 1)) "the pings crossed the NAT as ESP in UDP 4500 ($esp0 -> $esp1 packets)"
is "$(lab_counter clear_to_lan)" 0 "no cleartext reached the LAN side"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "after stop the gateway holds no SA of ours (our deletes crossed the NAT)"

# Behind the NAT with UDP 4500 blocked on the way: the exchange floats to 4500 and goes silent.
lab_in "$NS_GW" nft -f - <<NFT
table inet bwblock4500 {
	chain in {
		type filter hook prerouting priority -400; policy accept;
		udp dport 4500 drop
	}
}
NFT
out=$(bw start office 2>&1); rc=$?
is "$rc" 1 "with UDP 4500 blocked, burrow start fails"
is "$(bw status office --json | perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{last_failure}{code}')" \
	natt-blocked "the failure code is natt-blocked"
like "$(bw explain office)" 'blocks UDP 4500' "burrow explain says UDP 4500 is blocked on the way"
done_testing

#!/bin/sh
# A rekey that cannot complete (the gateway stops answering on UDP 4500 after the tunnel is up,
# as when its lifetime or PFS settings reject the renewal) ends in one clear failure,
# rekey-failed, whose explanation points at the phase-2 lifetime and PFS settings.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up

GW_REMOTE_TS=10.9.0.2/32 gw_start
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
local_address = 10.9.0.2
remote_networks = $LAN_NET

[phase1]
dpd = 0

[phase2]
lifetime = 10s
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"
bw start office >/dev/null 2>&1
ok $? "the tunnel comes up"
lab_in "$NS_GW" nft -f - <<NFT
table inet bwblock {
	chain in {
		type filter hook prerouting priority -400; policy accept;
		udp dport 4500 drop
	}
}
NFT
lab_wait 40 sh -c "ip netns exec $NS_CLI $BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock list | grep -Eq '^office .* failed '"
ok $? "the connection fails when its rekey gets no answer"
st=$(bw status office --json)
like "$st" '"code": "rekey-failed"' "the failure code is rekey-failed"
like "$(bw explain office)" 'could not be renewed.*lifetime and pfs' "burrow explain names the phase-2 lifetime and PFS settings"
is "$(bw events | grep -c 'tunnel_failed connection=office')" 1 "one tunnel_failed event, no storm"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "the tunnel interface is gone"
done_testing

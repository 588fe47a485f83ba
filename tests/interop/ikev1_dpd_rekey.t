#!/bin/sh
# Staying up against strongSwan: phase 2 rekeyed twice under a continuous ping without loss;
# the gateway killed and restarted: DPD notices within three intervals, defaults.lua restarts the
# connection and traffic flows again without anyone touching it; 30% loss on IKE still connects.
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
dpd = 2s

[phase2]
lifetime = 12s
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "the tunnel comes up"

# 1. Rekeying under load: 25 s of pings every 0.2 s span two rekeys (at 80-90% of 12 s).
out=$(lab_in "$NS_CLI" ping -q -i 0.2 -c 125 -W 1 "$LAN_HOST" 2>&1)
n=$(bw log office | grep -c 'rekeyed: the new SAs carry the traffic')
[ "$n" -ge 2 ]
ok $? "phase 2 was rekeyed at least twice during the run ($n)"
like "$out" ' 0% packet loss' "no ping was lost across the rekeys"
n=$(grep -c 'outbound traffic moves from SA .*: the gateway sends on the new SA' "$LAB_DIR/burrowd.out")
[ "$n" -ge 2 ]
ok $? "each time outbound traffic moved to the new SA only once the gateway sent on it ($n)"
gw_settles INSTALLED 1
is "$(gw_count INSTALLED)" 1 "the gateway holds one IPsec SA: the replaced ones were deleted"
like "$(bw list)" '^office .* (up|rekeying) ' "the connection is up after the rekeys"

# 2. The gateway dies (SIGKILL: no goodbye) and comes back.
t0=$(date +%s)
kill -KILL "$(cat "$LAB_DIR/pids/charon-gw.pid")"
lab_wait 10 sh -c "ip netns exec $NS_CLI $BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock events | grep -q 'tunnel_down connection=office reason=dpd'"
ok $? "DPD declares the gateway dead and emits tunnel_down with reason dpd"
t1=$(date +%s)
[ $((t1 - t0)) -le 7 ]
ok $? "within three DPD intervals ($((t1 - t0)) s, interval 2 s)"
like "$(bw explain office)" 'stopped answering' "burrow explain says the gateway stopped answering"
like "$(bw explain office)" 'failure code: dpd' "burrow explain gives the code dpd"
like "$(bw events | grep 'tunnel_failed connection=office')" 'code=dpd' "a tunnel_failed event carries code=dpd"
like "$(bw log office)" 'error +the gateway stopped answering \(DPD timeout\) \(failure dpd\)' "burrow log has the error line"
GW_REMOTE_TS=10.9.0.2/32 gw_start
lab_wait 30 sh -c "ip netns exec $NS_CLI $BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock list | grep -Eq '^office .* up '"
ok $? "defaults.lua restarts the connection once the gateway is back"
lab_ping "$NS_CLI" 2
ok $? "traffic flows again without user action"
bw stop office >/dev/null

# 3. 30% loss on the IKE ports in both directions.
lab_in "$NS_GW" nft -f - <<NFT
table inet bwloss {
	chain in {
		type filter hook prerouting priority -400; policy accept;
		udp dport { 500, 4500 } numgen random mod 10 < 3 drop
	}
	chain out {
		type filter hook output priority -400; policy accept;
		udp sport { 500, 4500 } numgen random mod 10 < 3 drop
	}
}
NFT
ok $? "30% loss on UDP 500/4500 is in place"
up=0
for i in 1 2 3; do
	if bw start office >/dev/null 2>&1; then up=$((up + 1)); fi
	bw stop office >/dev/null 2>&1
done
is "$up" 3 "the tunnel comes up three times out of three despite the loss"
done_testing

#!/bin/sh
# host-to-everywhere with kill_switch against strongSwan: everything goes through the tunnel while
# it is up; once the gateway drops it, nothing but IKE to the gateway leaves the client; burrow stop
# lifts the kill switch and restores normal routing.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up

GW_LOCAL_TS=0.0.0.0/0 GW_REMOTE_TS=10.9.0.2/32 gw_start
# What leaves the client, counted where it arrives: anything that is not IKE/NAT-T.
lab_in "$NS_GW" nft -f - <<NFT
table inet bwks {
	counter leaked {}
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		iifname "$IF_GW_OUT" ip saddr 192.0.2.2 udp dport { 500, 4500 } return
		iifname "$IF_GW_OUT" ip saddr 192.0.2.2 counter name leaked
	}
}
NFT
leaked() { lab_in "$NS_GW" nft list counter inet bwks leaked | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }

write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-everywhere
local_address = 10.9.0.2
kill_switch = yes
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "host-to-everywhere: burrow start succeeds"
[ "$rc" = 0 ] || diag "$out"
routes=$(ip -n "$NS_CLI" route show)
like "$routes" '^0\.0\.0\.0/1 dev bw-office' "the first half of the address space goes into the tunnel"
like "$routes" '^128\.0\.0\.0/1 dev bw-office' "the second half goes into the tunnel"
like "$routes" '^192\.0\.2\.1 via|^192\.0\.2\.1 dev' "the gateway itself stays reachable outside the tunnel"
n0=$(leaked)
lab_in "$NS_CLI" ping -c 2 -W 2 "$LAN_HOST" >/dev/null 2>&1
ok $? "a host beyond the gateway answers through the tunnel"
is "$(leaked)" "$n0" "nothing but IKE/ESP left the client while the tunnel was up"
lab_in "$NS_CLI" nft list tables | grep -q burrow_ks_office
ok $? "the kill switch table is installed"

# The gateway drops the tunnel: the kill switch stays.
gw_swanctl --terminate --ike bw >/dev/null 2>&1
lab_wait 10 sh -c "ip netns exec $NS_CLI $BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock list | grep -Eq '^office .* down '"
ok $? "the connection goes down when the gateway deletes it"
n1=$(leaked)
lab_in "$NS_CLI" ping -c 2 -W 1 "$LAN_HOST" >/dev/null 2>&1
ok $((! $?)) "with the tunnel down a host beyond the gateway is unreachable"
lab_in "$NS_CLI" ping -c 2 -W 1 "$GW_ADDR" >/dev/null 2>&1
ok $((! $?)) "even the gateway does not get plain pings"
is "$(leaked)" "$n1" "no packet but IKE left the client's interface while the tunnel was down"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
lab_in "$NS_CLI" nft list tables | grep -q burrow_ks_office
ok $((! $?)) "burrow stop removes the kill switch"
is "$(ip -n "$NS_CLI" route show | grep -c bw-office)" 0 "burrow stop removes the tunnel's routes"
lab_in "$NS_CLI" ping -c 1 -W 2 "$GW_ADDR" >/dev/null 2>&1
ok $? "normal routing is back: the gateway answers plain pings again"
done_testing

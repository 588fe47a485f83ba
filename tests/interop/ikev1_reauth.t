#!/bin/sh
# Short lifetimes against strongSwan (phase 2 30 s, phase 1 90 s): a continuous ping across three
# rekeys and one re-authentication loses at most one packet, and the gateway ends with one IKE SA.
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
lifetime = 90s

[phase2]
lifetime = 30s
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "the tunnel comes up"
# 125 s of pings every 0.2 s.
lab_in "$NS_CLI" ping -D -i 0.2 -c 625 -W 1 "$LAN_HOST" > "$LAB_DIR/ping.out" 2>&1
out=$(tail -n 3 "$LAB_DIR/ping.out")
log=$(bw log office)
n=$(printf '%s\n' "$log" | grep -c 'rekeyed: the new SAs carry the traffic')
[ "$n" -ge 3 ]
ok $? "phase 2 was rekeyed at least three times ($n)"
printf '%s\n' "$log" | grep -q 're-authenticated: a new IKE SA'
ok $? "phase 1 was re-authenticated"
lost=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
[ -n "$lost" ] && [ $((625 - lost)) -le 1 ]
ok $? "at most one of 625 pings was lost ($((625 - ${lost:-0})) lost)" ||
	awk -F'icmp_seq=' '/icmp_seq=/ { split($2, a, " "); s = a[1] + 0; if (s != prev + 1) print "missing before", $0; prev = s }' "$LAB_DIR/ping.out" | diag
gw_settles ESTABLISHED 1
is "$(gw_count ESTABLISHED)" 1 "the gateway holds one IKE SA: the old one was deleted"
gw_settles INSTALLED 1
is "$(gw_count INSTALLED)" 1 "and one IPsec SA"
# A renewal may be under way as the pings end: rekeying is up with a Quick Mode in flight.
like "$(bw list)" '^office .* (up|rekeying) ' "the connection is up"
out=$(lab_in "$NS_CLI" ping -c 3 -W 2 "$LAN_HOST" 2>&1)
rc=$?
ok $rc "traffic still flows"
[ $rc = 0 ] || {
	diag "$out"
	bw status office --json | diag
	ip -n "$NS_CLI" -s link show bw-office | diag
	ip -n "$NS_CLI" route | diag
	ip -n "$NS_CLI" addr show bw-office | diag
	bw log office --level debug | tail -n 40 | diag
	ip -n "$NS_GW" route show table 220 | diag
	ip -n "$NS_GW" -s link show ipsec0 | diag
	sleep 5
	lab_in "$NS_CLI" ping -c 3 -W 2 "$LAN_HOST" 2>&1 | diag
}
done_testing

#!/bin/sh
# The gateway renews the IPsec SA before we do (its phase-2 rekey time is shorter than our
# lifetime): Burrow answers its Quick Mode as responder, switches to the new SAs and keeps the
# traffic flowing.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up

GW_REMOTE_TS=10.9.0.2/32 GW_CHILD_REKEY_TIME=10s gw_start
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
local_address = 10.9.0.2
remote_networks = $LAN_NET

[phase2]
lifetime = 1h
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"
bw start office >/dev/null 2>&1
ok $? "the tunnel comes up"
lab_in "$NS_CLI" ping -D -i 0.2 -c 125 -W 1 "$LAN_HOST" > "$LAB_DIR/ping.out" 2>&1
log=$(bw log office)
n=$(printf '%s\n' "$log" | grep -c 'the gateway renewed the IPsec SA')
[ "$n" -ge 2 ]
ok $? "the gateway renewed the SA at least twice and Burrow answered ($n)"
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$LAB_DIR/ping.out")
[ -n "$received" ] && [ $((125 - received)) -le 1 ]
ok $? "at most one of 125 pings was lost across the renewals ($((125 - ${received:-0})) lost)"
gw_settles INSTALLED 1
is "$(gw_count INSTALLED)" 1 "the gateway holds one IPsec SA"
like "$(bw list)" '^office .* up ' "the connection is up"
done_testing

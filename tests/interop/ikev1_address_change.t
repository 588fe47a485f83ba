#!/bin/sh
# The client's address changes under an up tunnel (the veth address moves): the network watcher
# notices, the tunnel goes down with reason network and defaults.lua brings it back from the new
# address, with traffic flowing again and no user action.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up
bwq() { ip netns exec "$NS_CLI" "$BURROW_BUILD/burrow" --socket "$LAB_DIR/cli/burrowd.sock" "$@"; }

GW_REMOTE_TS=10.9.0.2/32 gw_start
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
local_address = 10.9.0.2
remote_networks = $LAN_NET
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"
bw start office >/dev/null 2>&1
ok $? "the tunnel comes up from 192.0.2.2"
like "$(gw_swanctl --list-sas)" "remote .*192\.0\.2\.2\[4500\]" "the gateway sees the client at its first address"

# Move the address: the new one first (kept when the old primary goes), then the old one away.
lab_in "$NS_CLI" sysctl -qw "net.ipv4.conf.$IF_CLI.promote_secondaries=1"
ip -n "$NS_CLI" addr add 192.0.2.7/24 dev "$IF_CLI"
ip -n "$NS_CLI" addr del 192.0.2.2/24 dev "$IF_CLI"
ip -n "$NS_CLI" route replace default via "$GW_ADDR" dev "$IF_CLI"
lab_wait 10 sh -c "ip netns exec $NS_CLI $BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock events | grep -q 'tunnel_down connection=office reason=network'"
ok $? "the tunnel goes down with reason network"
like "$(bwq explain office)" 'network changed|address or route' "burrow explain says the network changed"
like "$(bw events | grep 'tunnel_failed connection=office')" 'code=network' "a tunnel_failed event carries code=network"
lab_wait 30 sh -c "ip netns exec $NS_CLI $BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock list | grep -Eq '^office .* up '"
ok $? "defaults.lua brings the tunnel back without user action"
like "$(gw_swanctl --list-sas)" "remote .*192\.0\.2\.7\[4500\]" "the gateway now sees the client at its new address"
lab_ping "$NS_CLI" 2
ok $? "traffic flows again through the tunnel"
done_testing

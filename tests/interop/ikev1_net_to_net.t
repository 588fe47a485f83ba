#!/bin/sh
# network-to-network against strongSwan: a host on the client's LAN reaches the LAN host behind
# the gateway through the tunnel; the client forwards for its LAN while the tunnel is up.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up
NS_HOME=bw-home-$LAB_ID
trap 'ip netns del "$NS_HOME" 2>/dev/null; lab_down' EXIT INT TERM

# The client's own LAN: 192.168.50.0/24 with one host behind the client.
ip netns add "$NS_HOME"
ip link add home0 netns "$NS_CLI" type veth peer name eth0 netns "$NS_HOME"
ip -n "$NS_CLI" addr add 192.168.50.1/24 dev home0
ip -n "$NS_CLI" link set home0 up
ip -n "$NS_HOME" addr add 192.168.50.10/24 dev eth0
ip -n "$NS_HOME" link set eth0 up
ip -n "$NS_HOME" link set lo up
ip -n "$NS_HOME" route add default via 192.168.50.1
lab_in "$NS_CLI" sysctl -qw net.ipv4.ip_forward=0

GW_REMOTE_TS=192.168.50.0/24 gw_start
write_conn branch <<CONF
[connection]
gateway = $GW_ADDR
topology = network-to-network
local_networks = 192.168.50.0/24
remote_networks = $LAN_NET
CONF
write_secret branch <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts"
out=$(bw start branch 2>&1); rc=$?
is "$rc" 0 "network-to-network: burrow start succeeds"
[ "$rc" = 0 ] || diag "$out"
like "$(bw status branch)" 'SA: +192\.168\.50\.0/24 === 10\.1\.0\.0/24' "the SA carries the two networks"
is "$(lab_in "$NS_CLI" sysctl -n net.ipv4.ip_forward)" 1 "the client forwards for its LAN while the tunnel is up"
lab_in "$NS_HOME" ping -c 3 -W 2 "$LAN_HOST" >/dev/null 2>&1
ok $? "a host behind the client reaches the LAN host behind the gateway"
lab_http_start
is "$(lab_fetch "$NS_HOME" "$LAB_HTTP_PATH" 2>/dev/null)" "$LAB_HTTP_BODY" "a page crosses the tunnel between the two networks"
bw stop branch >/dev/null
ok $? "burrow stop succeeds"
is "$(lab_in "$NS_CLI" sysctl -n net.ipv4.ip_forward)" 0 "forwarding is off again after stop"
done_testing

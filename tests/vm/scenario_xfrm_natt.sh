#!/bin/sh
# Inside the VM: burrowd with backend = xfrm behind a NAT, host-to-everywhere. ESP travels in
# UDP 4500 through the kernel (the NAT-T socket has UDP_ENCAP_ESPINUDP), IKE and the gateway's
# own address stay outside the tunnel (socket bypass policies, the pinned route), everything
# else goes through it; stop leaves nothing in XFRM and no route behind.
set -u
. "$BURROW_SRC/tests/interop/lib.sh"
LAB_CHARON_PLUGINS=$(echo "$LAB_CHARON_PLUGINS" | sed 's/ kernel-libipsec//')
lab_require perl
lab_up --nat

lab_in "$NS_GW" nft -f - <<NFT
flush chain inet bwlab forward
table inet bwlab {
    chain forward {
        iifname "gw-out" ip daddr $LAN_NET meta ipsec exists counter name tunnel_to_lan accept
        iifname "gw-out" ip daddr $LAN_NET counter name clear_to_lan drop
    }
}
NFT

GW_REMOTE_TS=10.9.0.2/32 GW_LOCAL_TS=0.0.0.0/0 gw_start
ok $? "strongSwan gateway (kernel-netlink) for host-to-everywhere starts"
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-everywhere
local_address = 10.9.0.2

[phase1]
proposals = aes256-sha256-modp2048

[phase2]
proposals = aes256-sha256
pfs = modp2048
CONF
write_secret office <<SEC
[secrets]
psk = burrow-lab-psk
SEC
printf '[agent]\nbackend = xfrm\nlog_level = debug\n' >"$LAB_DIR/cli/etc/burrow.conf"
# After each burrowd run: an ASan/UBSan build reports into burrowd.out.
clean_run() {
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out"; then
        ok 1 "burrowd ran without sanitizer reports ($1)"
        grep -E -A20 'Sanitizer|runtime error' "$LAB_DIR/burrowd.out" | head -n 40 | diag
    else
        ok 0 "burrowd ran without sanitizer reports ($1)"
    fi
}
like() { if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 0 "$3"; else ok 1 "$3"; diag "got: $1"; fi; }
# SAs and policies, but not the per-socket bypass policies of burrowd's IKE sockets
# ("socket in|out"): they live and die with the sockets.
n_all() { echo $(( $(ip -n "$NS_CLI" -o xfrm state | wc -l) + $(ip -n "$NS_CLI" -o xfrm policy | grep -vc 'socket \(in\|out\) ') )); }

burrow_start
ok $? "burrowd starts with backend = xfrm"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start office: host-to-everywhere through the NAT is up"
[ "$rc" = 0 ] || diag "$out"
like "$(ip -n "$NS_CLI" xfrm state)" 'encap type espinudp sport [0-9]+ dport 4500' "the kernel SAs carry ESP in UDP to port 4500"
like "$(ip -n "$NS_CLI" -o xfrm policy)" 'src 10\.9\.0\.2/32 dst 0\.0\.0\.0/0.*dir out' "policy out 10.9.0.2/32 -> everything"
like "$(ip -n "$NS_CLI" route show)" "$GW_ADDR via 10\.99\.0\.1 dev cli0" "the route to the gateway is pinned outside the tunnel"
like "$(ip -n "$NS_CLI" route show dev bw-office)" '128\.0\.0\.0/1' "everything else is routed through bw-office"

esp0=$(lab_counter natt_esp_in)
lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel"
esp1=$(lab_counter natt_esp_in)
check "the pings crossed the NAT as ESP in UDP 4500 ($esp0 -> $esp1)" test "$esp1" -ge $((esp0 + 3))
is "$(lab_counter clear_to_lan)" 0 "nothing reached the LAN in clear"
ip netns exec "$NS_CLI" ping -n -q -c 2 -i 0.2 -W 1 "$GW_ADDR" >/dev/null 2>&1
ok $? "the gateway's own address answers outside the tunnel"

out=$(bw stop office 2>&1)
ok $? "burrow stop office"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "our deletes reached the gateway through the NAT"
is "$(n_all)" 0 "after stop: nothing in ip xfrm state/policy"
if ip -n "$NS_CLI" route show | grep -q "$GW_ADDR via"; then ok 1 "after stop: the pinned gateway route is gone"; else ok 0 "after stop: the pinned gateway route is gone"; fi
is "$(ip -n "$NS_CLI" -o xfrm policy | grep -c 'socket \(in\|out\) ')" 4 "while burrowd runs its two IKE sockets hold their bypass policies"
burrow_stop
clean_run "behind a NAT"
is "$(ip -n "$NS_CLI" -o xfrm policy | wc -l)" 0 "after burrowd exits not even the socket policies remain"
lab_teardown

# Host-to-everywhere without a virtual address: the client's own address is the local
# selector, so IKE (same addresses) matches the 0.0.0.0/0 policy and only the sockets'
# bypass policies keep it in clear. The gateway counts IKE that arrives in clear and IKE
# that arrives inside ESP.
lab_up
lab_in "$NS_GW" nft -f - <<NFT
flush chain inet bwlab forward
table inet bwlab {
    counter ike_clear {}
    counter ike_tunneled {}
    chain forward {
        iifname "gw-out" ip daddr $LAN_NET meta ipsec exists counter name tunnel_to_lan accept
        iifname "gw-out" ip daddr $LAN_NET counter name clear_to_lan drop
    }
    chain input {
        iifname "gw-out" udp dport 500 meta ipsec missing counter name ike_clear
        iifname "gw-out" udp dport 500 meta ipsec exists counter name ike_tunneled
    }
}
NFT
GW_ENCAP=no GW_POOL='' GW_LOCAL_TS=0.0.0.0/0 gw_start
ok $? "gateway for host-to-everywhere with the client's own address"
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-everywhere

[phase1]
proposals = aes256-sha256-modp2048

[phase2]
proposals = aes256-sha256
pfs = modp2048
CONF
write_secret office <<SEC
[secrets]
psk = burrow-lab-psk
SEC
printf '[agent]\nbackend = xfrm\nlog_level = debug\n' >"$LAB_DIR/cli/etc/burrow.conf"
burrow_start
ok $? "burrowd starts"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start office: $CLI_ADDR/32 <-> 0.0.0.0/0 is up"
[ "$rc" = 0 ] || diag "$out"
like "$(ip -n "$NS_CLI" -o xfrm policy)" "src $CLI_ADDR/32 dst 0\.0\.0\.0/0.*dir out" "policy out covers the client's own address to everything"
lab_ping "$NS_CLI" 3
ok $? "the LAN host answers through the tunnel"
is "$(lab_counter clear_to_lan)" 0 "nothing reached the LAN in clear"
clear0=$(lab_counter ike_clear)
out=$(bw stop office 2>&1)
ok $? "burrow stop office (sends its deletes while the 0.0.0.0/0 policy is in place)"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "the deletes reached the gateway"
clear1=$(lab_counter ike_clear)
check "IKE reached the gateway in clear ($clear0 -> $clear1 packets)" test "$clear1" -gt "$clear0"
is "$(lab_counter ike_tunneled)" 0 "no IKE packet ever went into the tunnel"
is "$(n_all)" 0 "after stop: nothing in ip xfrm state/policy"
burrow_stop
clean_run "own address"
done_testing

#!/bin/sh
# Inside the VM: burrowd with backend = xfrm against strongSwan using kernel-netlink (real
# XFRM on both sides), Main Mode PSK host-to-network; then backend = auto, SIGKILL and a
# restart, and SIGTERM, after each of which the client's XFRM state and policies are empty.
set -u
. "$BURROW_SRC/tests/interop/lib.sh"
# This kernel has ESP: the gateway's SAs go into its own XFRM, not into kernel-libipsec.
LAB_CHARON_PLUGINS=$(echo "$LAB_CHARON_PLUGINS" | sed 's/ kernel-libipsec//')
lab_require perl
lab_up

# ESP the gateway's kernel decrypted arrives on gw-out carrying a security path: count it as
# tunnel traffic; anything else from outside to the LAN is cleartext and dropped.
lab_in "$NS_GW" nft -f - <<NFT
flush chain inet bwlab forward
table inet bwlab {
    chain forward {
        iifname "gw-out" ip daddr $LAN_NET meta ipsec exists counter name tunnel_to_lan accept
        iifname "gw-out" ip daddr $LAN_NET counter name clear_to_lan drop
    }
}
NFT

GW_ENCAP=no GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "strongSwan gateway with kernel-netlink SAs starts"
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

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
conf_backend() {
    printf '[agent]\nbackend = %s\nlog_level = debug\n' "$1" >"$LAB_DIR/cli/etc/burrow.conf"
}
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
json() { bw status office --json | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); print $d->{$ARGV[0]} // ""' "$1"; }
n_states() { ip -n "$NS_CLI" -o xfrm state | grep -c 'proto esp'; }
# SAs and policies, but not the per-socket bypass policies of burrowd's IKE sockets
# ("socket in|out"): they live and die with the sockets.
n_all() { echo $(( $(ip -n "$NS_CLI" -o xfrm state | wc -l) + $(ip -n "$NS_CLI" -o xfrm policy | grep -vc 'socket \(in\|out\) ') )); }
start_office() {
    _out=$(bw start office 2>&1); _rc=$?
    is "$_rc" 0 "$1"
    [ "$_rc" = 0 ] || diag "$_out"
}

conf_backend xfrm
burrow_start
ok $? "burrowd starts with backend = xfrm"
start_office "burrow start office: the tunnel is up"
is "$(json backend)" xfrm "burrow status names the xfrm backend"
is "$(n_states)" 2 "two ESP SAs in the client's kernel"
like "$(ip -n "$NS_CLI" xfrm state)" 'mode tunnel' "tunnel mode"
if ip -n "$NS_CLI" xfrm state | grep -q encap; then ok 1 "plain ESP, no UDP encapsulation (no NAT here)"; else ok 0 "plain ESP, no UDP encapsulation (no NAT here)"; fi
pols=$(ip -n "$NS_CLI" -o xfrm policy)
like "$pols" 'src 10\.9\.0\.2/32 dst 10\.1\.0\.0/24.*dir out' "policy out 10.9.0.2/32 -> 10.1.0.0/24"
like "$pols" 'src 10\.1\.0\.0/24 dst 10\.9\.0\.2/32.*dir in' "policy in"
like "$pols" 'src 10\.1\.0\.0/24 dst 10\.9\.0\.2/32.*dir fwd' "policy fwd"
like "$(ip -n "$NS_CLI" route show dev bw-office)" '10\.1\.0\.0/24.*src 10\.9\.0\.2' "route to the LAN through bw-office from 10.9.0.2"
gw_established
ok $? "the gateway has the IKE SA established"
like "$(gw_swanctl --list-sas)" 'INSTALLED, TUNNEL,' "the gateway installed a kernel SA, plain ESP"

lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel"
is "$(lab_counter clear_to_lan)" 0 "nothing reached the LAN in clear"
tl=$(lab_counter tunnel_to_lan)
check "what reached the LAN was decrypted by the gateway's kernel ($tl packets)" test "${tl:-0}" -ge 3
bi=$(json bytes_in) bo=$(json bytes_out)
check "burrow status shows the kernel's byte counters ($bi in, $bo out)" test "${bi:-0}" -gt 0 -a "${bo:-0}" -gt 0

out=$(bw stop office 2>&1)
ok $? "burrow stop office"
is "$(n_all)" 0 "after burrow stop: ip xfrm state and ip xfrm policy hold nothing"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "after burrow stop: bw-office is gone"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "the gateway holds no SA of ours (our deletes reached it)"
burrow_stop
clean_run "backend = xfrm, stopped by SIGTERM"

# backend = auto picks the kernel here; a SIGKILL leaves everything behind, the next start
# of the connection undoes it first.
conf_backend auto
burrow_start
ok $? "burrowd starts with backend = auto"
start_office "burrow start office with backend = auto"
is "$(json backend)" xfrm "backend = auto picks xfrm on a kernel with ESP"
grep -q 'backend = auto: xfrm' "$LAB_DIR/burrowd.out"
ok $? "the log says auto chose xfrm and why"
kill -KILL "$(cat "$LAB_DIR/pids/burrowd.pid")"
sleep 0.5
is "$(n_states)" 2 "SIGKILL leaves burrowd's SAs in the kernel"
burrow_start
ok $? "burrowd restarts"
start_office "burrow start office after the crash"
is "$(n_states)" 2 "the leftovers were replaced: two SAs, not four"
lab_ping "$NS_CLI" 3
ok $? "ping through the new tunnel"
out=$(bw stop office 2>&1)
ok $? "burrow stop office"
is "$(n_all)" 0 "after SIGKILL, restart and stop: nothing of Burrow's in ip xfrm state/policy"
is "$(find "$LAB_DIR/cli/state" -name '*.xfrm' | wc -l)" 0 "no state record is left"

start_office "burrow start office once more"
burrow_stop
grep -q 'burrowd stopped' "$LAB_DIR/burrowd.out"
ok $? "burrowd stops on SIGTERM with the tunnel up"
clean_run "backend = auto after a restart, stopped by SIGTERM with the tunnel up"
is "$(n_all)" 0 "after SIGTERM: nothing in ip xfrm state/policy"
done_testing

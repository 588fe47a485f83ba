#!/bin/sh
# Main Mode PSK against strongSwan: aes256-sha256-modp2048, Quick Mode aes256-sha256 with PFS
# modp2048, host-to-network with a static virtual address; traffic flows and stop deletes the SAs.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up

GW_REMOTE_TS=10.9.0.2/32 gw_start
write_conn office <<EOF
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
EOF
write_secret office <<EOF
[secrets]
psk = burrow-lab-psk
EOF
# A second connection to the same networks: refused while office holds their route.
sed 's/^local_address = .*/local_address = 10.9.0.3/' "$LAB_DIR/cli/etc/connections/office.conf" | write_conn office2
printf '[secrets]\npsk = burrow-lab-psk\n' | write_secret office2
burrow_start
ok $? "burrowd starts in the client namespace"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || diag "$out"
like "$(bw list)" '^office .* up ' "burrow list shows the connection up"
gw_established
ok $? "the strongSwan gateway has the IKE SA established"
like "$(gw_swanctl --list-sas)" 'INSTALLED, TUNNEL-in-UDP' "the gateway installed the IPsec SA, ESP in UDP"

lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel"
lab_http_start
out=$(lab_fetch "$NS_CLI" "$LAB_HTTP_PATH" 2>/dev/null)
is "$out" "$LAB_HTTP_BODY" "a page from the LAN host arrives through the tunnel"

st=$(bw status office --json)
echo "$st" | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); exit($d->{bytes_in} > 0 && $d->{bytes_out} > 0 ? 0 : 1)'
ok $? "burrow status shows non-zero byte counters in both directions"
like "$(bw status office)" 'SA: +10\.9\.0\.2 === 10\.1\.0\.0/24 aes256-sha256' "burrow status names the SA and its algorithms"

out=$(bw start office2 2>&1); rc=$?
is "$rc" 1 "a second connection to $LAN_NET is refused while office is up"
like "$out" "office2: the route $LAN_NET is already held by the Burrow connection 'office'" \
    "with one sentence naming the route and the connection that holds it"
like "$(bw list)" '^office2 .* failed ' "burrow list shows office2 failed"
exp=$(bw explain office2)
like "$exp" 'failure code: route-conflict' "burrow explain office2 gives the code route-conflict"
like "$exp" "office2 cannot route $LAN_NET into its tunnel: the Burrow connection 'office' \\(up\\).*burrow stop office" \
    "and names both connections"
like "$(bw log office2)" "error +.*\\(failure route-conflict\\)" "burrow log office2 has the error line"
like "$(bw events | grep 'tunnel_failed connection=office2')" 'code=route-conflict' "tunnel_failed carries code=route-conflict"
is "$(gw_count ESTABLISHED)" 1 "office2 sent nothing: the gateway still holds one IKE SA"
like "$(bw list)" '^office .* up ' "office stays up"
lab_ping "$NS_CLI" 1
ok $? "and its traffic still flows"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "after stop the gateway holds no SA of ours (our deletes reached it)"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "the tunnel interface is gone after stop"
like "$(bw events)" 'tunnel_up connection=office' "tunnel_up was emitted"
like "$(bw events)" 'tunnel_down connection=office reason=stopped' "tunnel_down with reason stopped was emitted"

# A route that another program holds: the tunnel negotiates, then cannot route LAN_NET.
ip -n "$NS_CLI" route add blackhole "$LAN_NET"
out=$(bw start office 2>&1); rc=$?
is "$rc" 1 "with $LAN_NET already routed by another program, burrow start exits 1"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "with one line"
like "$out" "the route $LAN_NET is already held by another program \\(ip route show $LAN_NET\\)" \
    "that names the route and says it is another program's"
like "$(bw list)" '^office .* failed ' "burrow list shows the connection failed"
exp=$(bw explain office)
like "$exp" 'failure code: route-conflict' "burrow explain gives the code route-conflict"
like "$exp" "office cannot route $LAN_NET into its tunnel.*ip route del $LAN_NET.*burrow start office" \
    "and explains with the real name and route"
like "$(bw log office)" "error +.*route $LAN_NET is already held.*\\(failure route-conflict\\)" "burrow log has the error line"
like "$(bw events | grep 'tunnel_failed connection=office')" 'code=route-conflict' "tunnel_failed carries code=route-conflict"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "the SAs negotiated before the failure are deleted on the gateway"
ip -n "$NS_CLI" route show "$LAN_NET" | grep -q '^blackhole'
ok $? "the other program's route is left in place"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "the tunnel interface is gone"
ip -n "$NS_CLI" route del blackhole "$LAN_NET"
burrow_stop
grep -q 'burrowd stopped' "$LAB_DIR/burrowd.out"
ok $? "burrowd shuts down cleanly on SIGTERM"
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out"; then
	ok 1 "burrowd ran without sanitizer reports"; grep -E -A20 'Sanitizer|runtime error' "$LAB_DIR/burrowd.out" | diag
else
	ok 0 "burrowd ran without sanitizer reports"
fi
done_testing

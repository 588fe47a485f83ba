#!/bin/sh
# Split DNS without systemd-resolved: burrowd runs a dnsmasq forwarder that sends the gateway's
# domains (Cisco Unity split DNS) through the tunnel to the office's DNS server and every other
# name to the servers of the previous /etc/resolv.conf. That file is restored byte for byte on
# stop and after burrowd is killed and started again, and no forwarder is left running. Without
# dnsmasq the tunnel still comes up with the gateway's DNS for all names and one warning.
#
# burrowd runs under `ip netns exec`, which gives it a private mount namespace with
# /etc/netns/NS/resolv.conf bound over /etc/resolv.conf: the host's file is never touched.
set -u
. "$(dirname "$0")/lib.sh"
lab_require dnsmasq getent pgrep
[ -x /usr/sbin/dnsmasq ] || skip_all "/usr/sbin/dnsmasq not installed (apt install dnsmasq-base)"
lab_up
NETNS_ETC=/etc/netns/$NS_CLI
trap 'rm -rf "$NETNS_ETC"; lab_down' EXIT INT TERM
unlike() { if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 1 "$3"; diag "got: $1"; else ok 0 "$3"; fi; }
HOST_RESOLV=$(cksum </etc/resolv.conf 2>/dev/null || true)
export BURROW_RESOLVED=no	# as on a default Debian 12, even where resolved runs

# The client's previous resolv.conf: its own DNS server outside the tunnel (on the gateway's
# outside address, reached in the clear), a comment and a search line to be kept exactly.
mkdir -p "$NETNS_ETC"
printf '# the client network'"'"'s DNS\nnameserver %s\nsearch home.example\noptions timeout:2\n' "$GW_ADDR" \
	>"$NETNS_ETC/resolv.conf"
cp "$NETNS_ETC/resolv.conf" "$LAB_DIR/resolv.orig"
same_resolv() { cmp -s "$LAB_DIR/resolv.orig" "$NETNS_ETC/resolv.conf"; }
# The office's DNS server, only reachable through the tunnel, knows the office's names; the
# client network's server knows a public name and nothing of the office's.
lab_bg dns-lan ip netns exec "$NS_LAN" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--listen-address="$LAN_HOST" --address=/intranet.corp.example/10.1.0.77 --pid-file=
lab_bg dns-outside ip netns exec "$NS_GW" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--listen-address="$GW_ADDR" --address=/www.public.example/198.51.100.7 --pid-file=
GW_DNS=$LAN_HOST GW_UNITY="28675 = corp.example" gw_start

write_conn office <<CONF
[connection]
gateway = $GW_ADDR
remote_networks = $LAN_NET

[provisioning]
mode_config = pull
dns = yes
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
STATE=$LAB_DIR/cli/state
# Each burrowd run's output, for the sanitizer check at the end (lib.sh sees the last run's).
keep_log() { cat "$LAB_DIR/burrowd.out" >>"$LAB_DIR/burrowd.earlier"; }
ours() { pgrep -f -- "--conf-file=$STATE/office.dnsmasq.conf" >/dev/null; }

burrow_start
ok $? "burrowd starts"
like "$(bw doctor office 2>&1)" 'dnsmasq forwarder' "burrow doctor says the connection will use the dnsmasq forwarder"

# 1. Up: split DNS through the forwarder.
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start succeeds with dns = yes and scope = split without systemd-resolved"
[ "$rc" = 0 ] || diag "$out"
conf=$(cat "$NETNS_ETC/resolv.conf")
FWD_ADDR=$(printf '%s\n' "$conf" | sed -n 's/^nameserver //p')
like "$conf" '^nameserver 127\.0\.87\.[0-9]+$' "resolv.conf points at the forwarder on 127.0.87.x"
like "$conf" '^search corp\.example home\.example$' "the gateway's domain is searched, then the previous ones"
is "$(printf '%s\n' "$conf" | grep -c '^nameserver')" 1 "and names no other server"
check "a dnsmasq forwarder of ours runs" ours
is "$(stat -c %a "$STATE/office.dnsmasq.conf")" 600 "its configuration is mode 0600"
n0=$(lab_counter tunnel_to_lan)
like "$(lab_in "$NS_CLI" getent hosts intranet.corp.example)" '^10\.1\.0\.77 ' \
	"a name in the split domain resolves through the office's DNS server"
n1=$(lab_counter tunnel_to_lan)
[ "$n1" -gt "$n0" ]
ok $? "its query went through the tunnel (the gateway counted $n0 -> $n1 packets from it to the LAN)"
like "$(lab_in "$NS_CLI" getent hosts www.public.example)" '^198\.51\.100\.7 ' \
	"another name resolves through the previous DNS server"
prev=$(lab_in "$NS_CLI" busybox nslookup intranet.corp.example "$GW_ADDR" 2>&1)
unlike "$prev" '10\.1\.0\.77' "(the previous server does not know the office's name)"
bw stop office >/dev/null
ok $? "burrow stop succeeds"
check "resolv.conf is restored byte for byte on stop" same_resolv
lab_wait 5 not ours
ok $? "the forwarder is stopped"
check "its configuration and record are removed" \
	not test -e "$STATE/office.dnsmasq.conf" -o -e "$STATE/office.dnsmasq.pid"

# 2. burrowd killed while the tunnel is up: the next start undoes the change.
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start succeeds again"
check "(resolv.conf is changed while up)" not same_resolv
fwd=$(pgrep -f -- "--conf-file=$STATE/office.dnsmasq.conf")
kill -KILL "$(cat "$LAB_DIR/pids/burrowd.pid")"
sleep 0.3
check "(the forwarder outlives a killed burrowd)" ours
keep_log
burrow_start
ok $? "burrowd starts again after SIGKILL"
check "resolv.conf is restored byte for byte after the crash" same_resolv
check "no dnsmasq of ours is left running" not ours
check "(the forwarder that ran is gone: pid $fwd)" not _pid_alive "$fwd"
like "$(cat "$LAB_DIR/burrowd.out")" 'stopping the DNS forwarder \(pid [0-9]+\) left running' \
	"the log says the stale forwarder was stopped"

# 3. burrowd stopped with SIGTERM while the tunnel is up.
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start succeeds after the restart"
check "(a forwarder runs again)" ours
burrow_stop
keep_log
check "resolv.conf is restored byte for byte when burrowd gets SIGTERM" same_resolv
lab_wait 5 not ours
ok $? "and its forwarder is stopped"

# 4. No dnsmasq: global DNS with one warning, in the log and in burrow status.
export BURROW_DNSMASQ=none
burrow_start
ok $? "burrowd starts with BURROW_DNSMASQ=none"
like "$(bw doctor office 2>&1)" 'apt install dnsmasq-base' "burrow doctor warns that split DNS needs resolved or dnsmasq"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "without dnsmasq the tunnel still comes up"
[ "$rc" = 0 ] || diag "$out"
like "$(cat "$NETNS_ETC/resolv.conf")" "^nameserver $LAN_HOST\$" "resolv.conf names the gateway's DNS server"
like "$(bw status office)" 'warning: +split DNS needs systemd-resolved or dnsmasq \(apt install dnsmasq-base\)' \
	"burrow status shows the warning"
like "$(bw status office --json)" '"warnings": *\[' "burrow status --json has a warnings field"
is "$(grep -c 'split DNS needs systemd-resolved or dnsmasq' "$LAB_DIR/burrowd.out")" 1 "the log has the warning once"
like "$(lab_in "$NS_CLI" getent hosts intranet.corp.example)" '^10\.1\.0\.77 ' "the office's name resolves"
bw stop office >/dev/null
check "resolv.conf is restored byte for byte" same_resolv
is "$(cksum </etc/resolv.conf 2>/dev/null || true)" "$HOST_RESOLV" "the host's own /etc/resolv.conf was never touched"

# 5. The connection's forwarder address is taken by another DNS server (which would answer the
# readiness probe too): the forwarder moves to the next address, and split DNS still works.
burrow_stop
keep_log
unset BURROW_DNSMASQ
lab_bg squatter ip netns exec "$NS_CLI" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--listen-address="$FWD_ADDR" --address=/intranet.corp.example/192.0.2.99 --pid-file=
lab_wait 5 sh -c "ip netns exec '$NS_CLI' ss -Hlun | grep -q '$FWD_ADDR:53'"
ok $? "(another DNS server holds $FWD_ADDR port 53)"
burrow_start
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start succeeds though the forwarder's address is taken"
[ "$rc" = 0 ] || diag "$out"
ns=$(sed -n 's/^nameserver //p' "$NETNS_ETC/resolv.conf")
like "$ns" '^127\.0\.87\.[0-9]+$' "resolv.conf points at a forwarder"
check "at another address than the taken $FWD_ADDR ($ns)" not test "$ns" = "$FWD_ADDR"
like "$(lab_in "$NS_CLI" getent hosts intranet.corp.example)" '^10\.1\.0\.77 ' \
	"the split domain still resolves through the office's DNS server"
like "$(cat "$LAB_DIR/burrowd.out")" "port 53 of $FWD_ADDR is taken by another program" "the log says why it moved"
# The forwarder dies while the tunnel is up: the previous resolv.conf comes back at once.
kill -TERM "$(pgrep -f -- "--conf-file=$STATE/office.dnsmasq.conf")"
lab_wait 5 same_resolv
ok $? "when the forwarder dies, resolv.conf is restored byte for byte"
like "$(cat "$LAB_DIR/burrowd.out")" 'the DNS forwarder .* exited .*restored' "the log says so"
like "$(bw list)" '^office .* up ' "the tunnel stays up"
bw stop office >/dev/null
check "resolv.conf is still the original after stop" same_resolv
check "no forwarder of ours is left" not ours
keep_log

unlike "$(cat "$LAB_DIR/burrowd.earlier")" 'AddressSanitizer|LeakSanitizer|runtime error' \
	"the earlier burrowd runs reported no sanitizer error"

done_testing

#!/bin/sh
# XAUTH and Mode Config against strongSwan: Main Mode + XAUTH + pull with the gateway's DNS
# resolving an office-only name; Aggressive Mode + XAUTH with Unity split-include and a banner;
# a wrong XAUTH password ends with a clear error and no retry storm.
set -u
. "$(dirname "$0")/lib.sh"
lab_require dnsmasq
lab_up
NETNS_ETC=/etc/netns/$NS_CLI
trap 'rm -rf "$NETNS_ETC"; lab_down' EXIT INT TERM

# The client's own resolv.conf (ip netns exec binds it over /etc/resolv.conf).
mkdir -p "$NETNS_ETC"
printf 'nameserver 192.0.2.53\n' > "$NETNS_ETC/resolv.conf"
ORIG=$(cat "$NETNS_ETC/resolv.conf")
# The office's DNS server knows a name nobody else knows.
lab_bg dnsmasq ip netns exec "$NS_LAN" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--listen-address="$LAN_HOST" --address=/intranet.corp.example/10.1.0.10 --pid-file=
GW_XAUTH=yes GW_POOL=10.3.0.0/24 GW_DNS=$LAN_HOST GW_LOCAL_TS="10.1.0.0/24,10.2.0.0/24" \
	GW_UNITY="split_include = 10.1.0.0/24,10.2.0.0/24
28672 = Welcome to the office network
28674 = corp.example" gw_start

write_conn office <<CONF
[connection]
gateway = $GW_ADDR
remote_networks = $LAN_NET

[auth]
xauth = yes
xauth_user = alice

[provisioning]
mode_config = pull
dns = yes

[dns]
scope = global
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
xauth_password = alice-secret
CONF
write_conn branch <<CONF
[connection]
gateway = $GW_ADDR

[phase1]
exchange = aggressive
proposals = aes256-sha256-modp2048

[auth]
xauth = yes
xauth_user = alice

[provisioning]
mode_config = pull
CONF
write_secret branch <<CONF
[secrets]
psk = burrow-lab-psk
xauth_password = alice-secret
CONF
write_conn wrongpw <<CONF
[connection]
gateway = $GW_ADDR
remote_networks = $LAN_NET

[auth]
xauth = yes
xauth_user = alice

[provisioning]
mode_config = pull
CONF
write_secret wrongpw <<CONF
[secrets]
psk = burrow-lab-psk
xauth_password = not-alices-password
CONF
burrow_start
ok $? "burrowd starts"

# 1. Main Mode + XAUTH + Mode Config pull + DNS
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "Main Mode + XAUTH + Mode Config: burrow start succeeds"
[ "$rc" = 0 ] || diag "$out"
st=$(bw status office)
like "$st" 'virtual IP: +10\.3\.0\.[0-9]+' "the virtual address comes from the gateway's pool"
vip=$(printf '%s\n' "$st" | sed -n 's/.*virtual IP: *\([0-9.]*\).*/\1/p')
ip -n "$NS_CLI" -o addr show dev bw-office | grep -q "inet $vip/32"
ok $? "the virtual address is on the tunnel interface"
lab_in "$NS_CLI" ping -c 2 -W 2 -I "$vip" "$LAN_HOST" >/dev/null 2>&1
ok $? "the LAN host answers ping from the virtual address"
like "$(cat "$NETNS_ETC/resolv.conf")" "nameserver $LAN_HOST" "resolv.conf names the gateway's DNS server"
like "$(lab_in "$NS_CLI" getent hosts intranet.corp.example)" '^10\.1\.0\.10 ' "the office-only name resolves through the tunnel"
like "$(bw log office)" 'XAUTH: accepted by the gateway' "the log shows XAUTH accepted"
bw stop office >/dev/null
ok $? "burrow stop succeeds"
is "$(cat "$NETNS_ETC/resolv.conf")" "$ORIG" "resolv.conf is restored exactly on stop"

# 2. Wrong XAUTH password
before=$(lab_counter ike_in)
out=$(bw start wrongpw 2>&1); rc=$?
is "$rc" 1 "a wrong XAUTH password makes burrow start fail"
like "$out" 'rejected the XAUTH user name or password' "with a sentence that says so"
like "$(bw explain wrongpw)" 'xauth_password' "burrow explain says what to check"
like "$(bw list)" '^wrongpw .* failed ' "the connection ends failed"
n1=$(lab_counter ike_in); sleep 3; n2=$(lab_counter ike_in)
is "$n2" "$n1" "no retry storm: no IKE packet reaches the gateway afterwards"
[ "$n1" -gt "$before" ]
ok $? "(the counter does count our IKE packets)"
# 3. Aggressive Mode + XAUTH + Unity split-include of two networks + banner
# (strongSwan allows Aggressive Mode per connection: a gateway configured for it)
gw_stop
GW_AGGRESSIVE=yes GW_XAUTH=yes GW_POOL=10.3.0.0/24 GW_DNS=$LAN_HOST GW_LOCAL_TS="10.1.0.0/24,10.2.0.0/24" \
	GW_UNITY="split_include = 10.1.0.0/24,10.2.0.0/24
28672 = Welcome to the office network
28674 = corp.example" gw_start
out=$(bw start branch 2>&1); rc=$?
is "$rc" 0 "Aggressive Mode + XAUTH + split-include: burrow start succeeds"
like "$out" 'Welcome to the office network' "burrow start shows the gateway's banner"
like "$(bw status branch)" 'banner: +Welcome to the office network' "burrow status shows the banner"
routes=$(ip -n "$NS_CLI" route show dev bw-branch)
like "$routes" '10\.1\.0\.0/24' "the first split network is routed through the tunnel"
like "$routes" '10\.2\.0\.0/24' "the second split network is routed through the tunnel"
is "$(printf '%s\n' "$routes" | grep -c .)" 2 "nothing else is routed through the tunnel"
is "$(ip -n "$NS_CLI" route show default | grep -c bw-branch)" 0 "the default route stays outside the tunnel"
lab_in "$NS_CLI" ping -c 2 -W 2 "$LAN_HOST" >/dev/null 2>&1
ok $? "the LAN host answers through the split tunnel"
bw stop branch >/dev/null

done_testing

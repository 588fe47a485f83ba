#!/bin/sh
# mount-on-connect.lua against strongSwan: on tunnel_up the policy mounts a directory of the
# LAN host (sshd in NS_LAN) over sshfs through the tunnel; a file is read through the mount;
# `burrow stop` unmounts it while the tunnel is stopping, before the SAs go.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BURROW_SRC:-$PWD}
lab_require sshfs fusermount3 nsenter ssh-keygen
[ -x /usr/sbin/sshd ] || skip_all "openssh-server is not installed (/usr/sbin/sshd)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
lab_up

# --- the LAN host's sshd: own host key, one authorized key, listening on 10.1.0.10:22 -----
mkdir -p "$LAB_DIR/ssh" "$LAB_DIR/share" "$LAB_DIR/mnt" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$LAB_DIR/ssh/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$LAB_DIR/ssh/id_ed25519"
cp "$LAB_DIR/ssh/id_ed25519.pub" "$LAB_DIR/ssh/authorized_keys"
echo "the office share, through the tunnel" > "$LAB_DIR/share/hello.txt"
cat > "$LAB_DIR/sshd_config" <<SSHD
ListenAddress $LAN_HOST:22
HostKey $LAB_DIR/ssh/host_ed25519
AuthorizedKeysFile $LAB_DIR/ssh/authorized_keys
PidFile $LAB_DIR/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
SSHD
lab_bg sshd ip netns exec "$NS_LAN" /usr/sbin/sshd -D -e -f "$LAB_DIR/sshd_config"
lab_wait 5 ip netns exec "$NS_LAN" sh -c "ss -ltn | grep -q '$LAN_HOST:22 '"
ok $? "sshd listens on the LAN host ($LAN_HOST:22)"

# --- the policy: policies/examples/mount-on-connect.lua pointed at the lab ---------------
sed -e "s|alice@10.1.0.10:/srv/share|root@$LAN_HOST:$LAB_DIR/share|" \
    -e "s|\"/mnt/office\"|\"$LAB_DIR/mnt\"|" \
    -e "s|options = \".*\"|options = \"IdentityFile=$LAB_DIR/ssh/id_ed25519,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null\"|" \
    "$SRC/policies/examples/mount-on-connect.lua" > "$LAB_DIR/cli/etc/policies/50-mount-on-connect.lua"
grep -q "root@$LAN_HOST:$LAB_DIR/share" "$LAB_DIR/cli/etc/policies/50-mount-on-connect.lua" &&
	grep -q "target  = \"$LAB_DIR/mnt\"" "$LAB_DIR/cli/etc/policies/50-mount-on-connect.lua"
ok $? "the example policy is adapted to the lab (source, target, options)"

GW_REMOTE_TS=10.9.0.2/32 gw_start
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
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts in the client namespace with the policy"
BPID=$(cat "$LAB_DIR/pids/burrowd.pid")
MNT=$LAB_DIR/mnt
# ip netns exec gives burrowd a mount namespace of its own: look at the mount from inside it.
in_burrowd() { nsenter -t "$BPID" -m -n "$@"; }
is_mounted() { in_burrowd grep -q " $MNT " /proc/self/mountinfo; }

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start brings the tunnel up"
[ "$rc" = 0 ] || diag "$out"
lab_wait 20 is_mounted
ok $? "the policy mounted the LAN host's directory over sshfs after tunnel_up"
out=$(in_burrowd cat "$MNT/hello.txt" 2>&1)
is "$out" "the office share, through the tunnel" "a file is read through the mount"
grep -q "$MNT" "$LAB_DIR/cli/state/mounts.json" 2>/dev/null
ok $? "the mount is recorded in the state directory"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
lab_wait 15 sh -c "! nsenter -t $BPID -m grep -q ' $MNT ' /proc/self/mountinfo"
ok $? "the share is unmounted after stop"
lab_wait 10 grep -q 'state stopping -> down' "$LAB_DIR/burrowd.out"
ok $? "the tunnel went from stopping to down"
u=$(grep -n "unmount $MNT" "$LAB_DIR/burrowd.out" | head -n 1 | cut -d: -f1)
d=$(grep -n 'state stopping -> down' "$LAB_DIR/burrowd.out" | head -n 1 | cut -d: -f1)
[ -n "$u" ] && [ -n "$d" ] && [ "$u" -lt "$d" ]
ok $? "the log shows the unmount before \"state stopping -> down\" (lines ${u:-?} < ${d:-?})"
grep -q "stopping goes on without the tunnel_stopping actions" "$LAB_DIR/burrowd.out"
ok $((! $?)) "the unmount finished within the bound (no timeout logged)"
grep -q "$MNT" "$LAB_DIR/cli/state/mounts.json" 2>/dev/null
ok $((! $?)) "no mount record is left in the state directory"

burrow_stop
lab_kill sshd
done_testing

#!/bin/sh
# The xfrm backend end to end: boots Debian's kernel (which has ESP) under qemu with this
# machine's userspace over 9p (tests/vm/vm.sh) and runs tests/vm/guest_xfrm.sh inside: the
# backend's kernel test, then burrowd with backend = xfrm/auto against strongSwan using
# kernel-netlink. One boot, a few minutes under software emulation.
set -u
cd "$(dirname "$0")/../.." || exit 1
VM_SRC=$PWD
. tests/vm/vm.sh
: "${BURROW_BUILD:=./build}"
case $BURROW_BUILD in /*) ;; *) BURROW_BUILD=$PWD/${BURROW_BUILD#./} ;; esac

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (qemu's 9p export of /, network namespaces)"; exit 0; }
vm_find || { echo "1..0 # SKIP $VM_MISSING"; exit 0; }
[ -x /usr/lib/ipsec/charon ] || { echo "1..0 # SKIP strongSwan charon not installed"; exit 0; }
for f in burrowd burrow tests/test_xfrm_kernel; do
    [ -x "$BURROW_BUILD/$f" ] || { echo "1..0 # SKIP no $BURROW_BUILD/$f (set BURROW_BUILD)"; exit 0; }
done
if ! vm_prepare >/dev/null 2>&1; then
    echo "1..1"
    echo "not ok 1 - the VM's kernel and initramfs are prepared from $VM_KERNEL_DEB"
    exit 1
fi

# The guest mounts its own /tmp; the host's /tmp is seen there as /srv (tests/vm/init).
guest_path() { case $1 in /tmp/*) echo "/srv/${1#/tmp/}" ;; *) echo "$1" ;; esac; }
G_SRC=$(guest_path "$VM_SRC")
G_BUILD=$(guest_path "$BURROW_BUILD")

if ! vm_accel; then
    echo "1..1"
    echo "not ok 1 - the VM's accelerator is chosen: $VM_ACCEL_WHY"
    exit 1
fi
console=$(mktemp "${TMPDIR:-/tmp}/bw-vm-console.XXXXXX")
# on stderr, so that prove (and CI's log) shows which accelerator ran and why
echo "# booting $KVER with $VM_ACCEL ($VM_ACCEL_WHY); serial console in $console" >&2
vm_run "$G_SRC/tests/vm/guest_xfrm.sh" "$G_SRC" "$G_BUILD" >"$console"
awk -v console="$console" '
/^(not )?ok / {
    n++
    st = ($1 == "not") ? "not ok" : "ok"
    sub(/^(not )?ok[ \t]*[0-9]*[ \t]*/, "")
    print st " " n " " $0
    if (st == "not ok") fail++
    next
}
/^BW-VM-EXIT / { code = $2; next }
/^bw-vm: stopped qemu/ { stopped = $0; sub(/^bw-vm: /, "", stopped); print "# " $0 > "/dev/stderr"; next }
/^# / { print; next }
END {
    n++
    if (code == "") {
        print "not ok " n " - the VM ran everything to the end (no exit line: " (stopped != "" ? stopped : "qemu exited early or the guest crashed") ")"
        fail++
    } else if (code != 0) {
        print "not ok " n " - the VM ran everything to the end (the guest script exited with " code ")"
        fail++
    } else {
        print "ok " n " - the VM ran everything to the end"
    }
    # A guest that ran nothing must not pass: the scenarios hold well over a hundred checks.
    n++
    if (n - 2 < 100) {
        print "not ok " n " - the guest ran the scenarios (only " n - 2 " checks came back)"
        fail++
    } else {
        print "ok " n " - the guest ran the scenarios (" n - 2 " checks)"
    }
    if (fail) print "# the whole serial console is in " console
    print "1.." n
    exit fail ? 1 : 0
}' "$console"
rc=$?
[ "$rc" != 0 ] || rm -f "$console"
exit "$rc"

#!/bin/sh
# tests/vm/vm.sh chooses the accelerator and stops a silent guest, proven with a stand-in
# for qemu (tests/vm/fake/qemu) that behaves like the machines we met: no /dev/kvm, a
# /dev/kvm whose guest never reaches init, one where qemu aborts, a working one.
set -u
cd "$(dirname "$0")/../.." || exit 1
VM_SRC=$PWD
. tests/vm/vm.sh
. tests/interop/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/bw-vm-accel.XXXXXX")
trap 'rm -rf "$work"' EXIT
VM_DIR=$work
: >"$work/vmlinuz"; : >"$work/initrd.gz"; : >"$work/kvm"
BURROW_VM_QEMU=$VM_SRC/tests/vm/fake/qemu
FAKE_QEMU_PIDS=$work/pids
export FAKE_QEMU_PIDS
BURROW_VM_PROBE_TIMEOUT=3
BURROW_VM_SILENCE=3

# none_left  -- every fake qemu started so far has ended
none_left() {
    for p in $(cat "$FAKE_QEMU_PIDS" 2>/dev/null); do
        kill -0 "$p" 2>/dev/null && { diag "fake qemu $p still runs"; return 1; }
    done
    return 0
}

contains() { case $1 in *"$2"*) return 0 ;; esac; diag "no '$2' in: $1"; return 1; }
lacks() { case $1 in *"$2"*) diag "'$2' in: $1"; return 1 ;; esac; return 0; }

plan 22

BURROW_VM_KVM_DEV=$work/absent
unset BURROW_VM_ACCEL
vm_accel
is "$VM_ACCEL" tcg "no /dev/kvm: TCG"
check "no /dev/kvm: the reason names the missing device" contains "$VM_ACCEL_WHY" "no $work/absent"

BURROW_VM_KVM_DEV=$work/kvm
FAKE_QEMU_KVM=ok; export FAKE_QEMU_KVM
vm_accel
is "$VM_ACCEL" kvm "a /dev/kvm whose probe boot reaches init: KVM"
check "working KVM: the reason says the probe reached init" contains "$VM_ACCEL_WHY" "reached the guest's init"

FAKE_QEMU_KVM=hang
vm_accel
is "$VM_ACCEL" tcg "a /dev/kvm whose guest stops after 'Booting from ROM...': TCG"
check "hanging KVM: the reason gives the probe's time limit and last console line" \
    contains "$VM_ACCEL_WHY" "did not reach the guest's init within 3 s (last console line: Booting from ROM...)"
check "hanging KVM: the probe's qemu was stopped" none_left

FAKE_QEMU_KVM=abort
vm_accel
is "$VM_ACCEL" tcg "qemu aborting with KVM: TCG"
check "aborting KVM: the reason quotes qemu's error" contains "$VM_ACCEL_WHY" "failed to set MSR 0x10a"

chmod 000 "$work/kvm"
if [ "$(id -u)" = 0 ]; then
    # root reads and writes a mode-000 file anyway; the check is about the probe, not the mode
    skip "an unreadable /dev/kvm: TCG (root ignores file modes)"
else
    vm_accel
    is "$VM_ACCEL" tcg "an unreadable /dev/kvm: TCG"
fi
chmod 600 "$work/kvm"

BURROW_VM_ACCEL=kvm BURROW_VM_KVM_DEV=$work/absent vm_accel
is "$VM_ACCEL/$VM_ACCEL_WHY" "kvm/BURROW_VM_ACCEL=kvm" "BURROW_VM_ACCEL=kvm overrides the probe"
FAKE_QEMU_KVM=ok BURROW_VM_ACCEL=tcg vm_accel
is "$VM_ACCEL" tcg "BURROW_VM_ACCEL=tcg overrides a working KVM"
if BURROW_VM_ACCEL=fast vm_accel; then rc=0; else rc=1; fi
is "$rc" 1 "BURROW_VM_ACCEL=fast is refused"
check "the refusal says what the values are" contains "$VM_ACCEL_WHY" "must be kvm or tcg, not 'fast'"

# The real run: a guest that ends, one silent from the start, one silent on the console but
# alive (its heartbeat goes on), one that never ends.
VM_ACCEL=tcg
FAKE_QEMU_TCG=ok; export FAKE_QEMU_TCG
out=$(vm_run /bin/true); rc=$?
is "$rc" 0 "a guest that ends: qemu's status"
check "a guest that ends: its console is printed" contains "$out" "BW-VM-EXIT 0"

FAKE_QEMU_TCG=hang
out=$(timeout 60 sh -c ". tests/vm/vm.sh; VM_DIR=$work VM_ACCEL=tcg BURROW_VM_QEMU=$BURROW_VM_QEMU BURROW_VM_SILENCE=3 vm_run /bin/true")
check "a silent guest is stopped with a line naming the cause" \
    contains "$out" "bw-vm: stopped qemu (tcg): the VM printed nothing, not even its heartbeat, for 3 s"
check "a silent guest: nothing left running" none_left

FAKE_QEMU_TCG=beat
out=$(vm_run /bin/true)
check "a guest silent on the console but with a heartbeat is not stopped" contains "$out" "BW-VM-EXIT 0"
check "a guest with a heartbeat: no stop line" lacks "$out" "bw-vm: stopped"

FAKE_QEMU_TCG=forever
out=$(BURROW_VM_TIMEOUT=4 vm_run /bin/true)
check "a guest that never ends is stopped at BURROW_VM_TIMEOUT" \
    contains "$out" "bw-vm: stopped qemu (tcg): the VM was still running after 4 s"
check "a guest that never ends: nothing left running" none_left
done_testing

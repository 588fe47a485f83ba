#!/bin/sh
# scripts/check-layers: the tree keeps its layers, and the check catches an include that goes
# up a layer, a file outside every layer, and an allowed edge that no longer exists.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/interop/lib.sh
plan 7

out=$(scripts/check-layers 2>&1); rc=$?
is "$rc" 0 "the tree has no upward include beyond scripts/layers.allow"
[ "$rc" = 0 ] || printf '%s\n' "$out" | diag

work=$(mktemp -d "${TMPDIR:-/tmp}/bw-layers.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r agent lua sa-backends scripts "$work"/

# A backend that reaches up into the IKE engine.
sed -i '1a #include "ike/ike_conn.h"' "$work/sa-backends/backend.c"
out=$(scripts/check-layers "$work" 2>&1); rc=$?
is "$rc" 1 "an include from a backend up into the engine fails the check"
case $out in
*"sa-backends/backend.c (backends) includes agent/ike/ike_conn.h (ike)"*) ok 0 "the failure names the file, the header and both layers" ;;
*) ok 1 "the failure names the file, the header and both layers"; printf '%s\n' "$out" | diag ;;
esac
sed -i '2d' "$work/sa-backends/backend.c"

out=$(scripts/check-layers "$work" 2>&1); rc=$?
is "$rc" 0 "the copy passes again once the include is gone"

# An allowed edge that no longer exists must be removed from the list.
printf 'agent/log.c -> agent/agent.h\n' >>"$work/scripts/layers.allow"
out=$(scripts/check-layers "$work" 2>&1); rc=$?
is "$rc" 1 "an allowed include that no longer exists fails the check"
case $out in
*"no longer exist"*"agent/log.c -> agent/agent.h"*) ok 0 "the failure names the stale line" ;;
*) ok 1 "the failure names the stale line"; printf '%s\n' "$out" | diag ;;
esac
sed -i '$d' "$work/scripts/layers.allow"

# A new file in no layer.
: >"$work/agent/stray.c"
out=$(scripts/check-layers "$work" 2>&1); rc=$?
is "$rc" 1 "a source file that belongs to no layer fails the check"
done_testing

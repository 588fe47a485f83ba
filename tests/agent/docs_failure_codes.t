#!/bin/sh
# docs/policies.md documents what the sources emit: every failure code passed to the
# failure functions, every event name and every field of tunnel_failed; and it documents
# nothing the sources do not have. Reads the sources and the document, runs nothing.
set -u
. "$(dirname "$0")/../tap.sh"
SRC=${BURROW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DOC=$SRC/docs/policies.md
[ -r "$DOC" ] || skip_all "no $DOC"
command -v perl >/dev/null || skip_all "needs perl"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM

# Failure codes in the sources: the code argument of ike_fail/ike_failf/bw_conn_fail/refuse
# (every string literal in it, for `p2 ? "a" : "b"`), the fourth of bw_conn_fail_to, the certificate
# checks' SET_ERR, and the codes ike_new_x hands back.
find "$SRC/agent" "$SRC/lua" "$SRC/sa-backends" -name '*.c' | sort | xargs perl -0777 -ne '
	my $arg = qr/((?:[^,"()]|"[^"]*"|\([^()]*\))+)/;
	my @exprs;
	push @exprs, $1 while /\b(?:ike_failf?|bw_conn_fail|refuse)\(\s*[^,()]+,\s*$arg,/g;
	push @exprs, $1 while /\bSET_ERR\(\s*[^,()]+,\s*$arg,/g;
	push @exprs, $1 while /\bbw_conn_fail_to\(\s*[^,]+,\s*[^,]+,\s*[^,]+,\s*$arg,/g;
	push @exprs, "\"$1\"" while /\*code_out\s*=\s*"([^"]+)"/g;
	push @exprs, "\"$1\"" while /return\s+"(secrets-[a-z-]+)"/g;
	for my $e (@exprs) { print "$1\n" while $e =~ /"([^"]*)"/g }
' | sort -u > "$T/src-codes"
perl -ne '$in = 1 if /^### Failure codes/; $in = 0 if $in && /^##/ && !/^### Failure codes/;
	print "$1\n" if $in && /^\| `([^`]+)` \|/' "$DOC" | sort -u > "$T/doc-codes"

n=$(grep -c . "$T/src-codes")
[ "$n" -ge 30 ]
ok $? "the sources yield the failure codes ($n found; fewer than 30 means this test no longer reads them)"
grep -c . "$T/doc-codes" >/dev/null
ok $? "docs/policies.md has a failure code table"
missing=$(comm -23 "$T/src-codes" "$T/doc-codes" | tr '\n' ' ')
is "$missing" "" "every failure code of the sources is in the table of docs/policies.md"
extra=$(comm -13 "$T/src-codes" "$T/doc-codes" | tr '\n' ' ')
is "$extra" "" "the table names no code the sources do not use"
for code in secrets-insecure needs-secret unsupported-method route-conflict dpd deleted-by-peer network; do
	grep -qx -- "$code" "$T/src-codes"
	ok $? "the sources report the failure code $code"
done

# Events: the bus's known names, and the names emitted anywhere.
find "$SRC/agent" "$SRC/lua" -name '*.c' | sort | xargs perl -0777 -ne '
	if (/known\[\]\s*=\s*\{(.*?)\};/s) { my $k = $1; print "$1\n" while $k =~ /"([^"]+)"/g }
	print "$1\n" while /\b(?:bw_events_emitf\(\s*[^,]+|->emit\(\s*[^,]+),\s*"([a-z_]+)"/g;
' | sort -u > "$T/src-events"
perl -ne '$in = 1 if /^## Events/; $in = 0 if /^### /;
	if ($in && /^\| ([^|]+) \|/) { my $c = $1; print "$1\n" while $c =~ /`([a-z_]+)`/g }' "$DOC" |
	sort -u > "$T/doc-events"
n=$(grep -c . "$T/src-events")
[ "$n" -ge 12 ]
ok $? "the sources yield the event names ($n found)"
missing=$(comm -23 "$T/src-events" "$T/doc-events" | tr '\n' ' ')
is "$missing" "" "every event of the sources is in the events table of docs/policies.md"
extra=$(comm -13 "$T/src-events" "$T/doc-events" | tr '\n' ' ')
is "$extra" "" "the events table names no event the sources do not emit"

# The fields of tunnel_failed, as conn.c packs them (its values are variables: every
# string literal after the format is a key).
fields=$(perl -0777 -ne 'if (/"tunnel_failed",\s*json_pack\("[^"]*",(.*?)\)\);/s) {
	my @s = $1 =~ /"([^"]+)"/g; print join(" ", @s), "\n" }' "$SRC/agent/conn.c")
like "$fields" 'connection .*code .*explanation' "conn.c packs the fields of tunnel_failed ($fields)"
row=$(grep '^| `tunnel_failed` |' "$DOC")
for f in $fields; do
	like "$row" "\`$f\`" "the events table lists the tunnel_failed field $f"
done

done_testing

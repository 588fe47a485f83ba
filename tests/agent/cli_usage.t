#!/bin/sh
# The command line says only what is true: the help lists exactly the options the parser
# takes, an unknown option is bad usage for every command, stop --all is not failed by an
# invalid file, reload names the policies that did not load, devices/policy/doctor work
# without an agent, and the installed unit names the configured prefix.
set -u
. "$(dirname "$0")/../tap.sh"
SRC=${BURROW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BURROW_BUILD:-$SRC/build}
[ -x "$BUILD/burrowd" ] || skip_all "burrowd is not built in $BUILD"
command -v perl >/dev/null || skip_all "perl is needed to read the help"

T=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
mkdir -p "$T/etc/connections" "$T/etc/secrets" "$T/etc/policies" "$T/state"
printf '[agent]\nbackend = userspace\n' > "$T/etc/burrow.conf"
SOCK=$T/burrowd.sock
bw() { "$BUILD/burrow" --socket "$SOCK" "$@"; }

cat > "$T/etc/connections/office.conf" <<'CONF'
[connection]
group = Work
gateway = 192.0.2.1
remote_networks = 10.1.0.0/24
CONF
cat > "$T/etc/connections/broken.conf" <<'CONF'
[connection]
gateway = 192.0.2.1
remote_networks = 10.1.0.0/24
colour = blue
CONF
printf 'burrow.on("ssid", function(ev) burrow.log("info", "ssid " .. tostring(ev.ssid)) end)\n' > "$T/ok.lua"
printf '{"name":"ssid","time":1,"ssid":"CafeFree"}\n' > "$T/trace.jsonl"

# ---- Without an agent: the help against the parser --------------------------------------

help=$(bw help); rc=$?
is "$rc" 0 "burrow help exits 0"
cmds=$(printf '%s\n' "$help" | sed -n 's/^  burrow \([a-z]*\).*/\1/p' | sort -u)
[ "$(printf '%s\n' "$cmds" | grep -c .)" -ge 18 ]
ok $? "burrow help lists every command ($(printf '%s' "$cmds" | tr '\n' ' '))"

# Each form of a command's usage → one invocation per option it lists: the operands of the
# form, the options it requires, and the option with a value for its placeholder.
perl -e '
	my ($src, $t) = @ARGV;
	my %val = (NAME => "office", G => "Work", L => "debug", N => "5", EVENT => "ssid",
		   ID => "cisco-asa", "TRACE.jsonl" => "$t/trace.jsonl", COMMAND => "list");
	sub value {
		my ($cmd, $opt, $ph) = @_;
		return "$src/devices" if $opt eq "--devices-dir";
		return "$t/etc" if $ph eq "DIR";
		return ($cmd eq "policy" ? "$t/ok.lua" : "$t/report.out") if $ph =~ /^FILE/;
		(my $k = $ph) =~ s/\.\.\.$//;
		return $val{$k} // "x";
	}
	while (my $form = <STDIN>) {
		chomp $form;
		my @tok = split " ", $form;
		my $cmd = shift @tok;
		my (@pos, @req, @opts);
		my $in_opts = 0;
		for (my $i = 0; $i < @tok; $i++) {
			my $w = $tok[$i];
			my $bracket = $w =~ /^\[/;
			(my $bare = $w) =~ s/[][]//g;
			if ($bare eq "|" || $bare eq "") { $in_opts = 1; next; }
			my @alts = grep { /^-/ } split /\|/, $bare;
			if (!@alts) {
				# Operands before the options; optional ones ([NAME]) are left out.
				next if $in_opts || $bracket || $w =~ /\]/ || $bare =~ /=/;
				push @pos, $bare =~ /^[a-z]/ ? $bare : value($cmd, "", $bare);
				next;
			}
			$in_opts = 1;
			my $ph = ($i + 1 < @tok && $tok[$i + 1] =~ /^[A-Z]/) ? $tok[++$i] : undef;
			$ph =~ s/[][]//g if defined $ph;
			my $alone = !$bracket && @alts == 1 && !($i > 0 && $tok[$i - 1] eq "|" ) &&
				    !($i + 1 < @tok && $tok[$i + 1] eq "|") && !(defined $ph && $i > 1 && $tok[$i - 2] eq "|");
			for my $o (@alts) {
				my @one = ($o, defined $ph ? value($cmd, $o, $ph) : ());
				push @opts, [@one];
				push @req, [@one] if $alone;
			}
		}
		for my $o (@opts) {
			my @extra = map { @$_ } grep { $_->[0] ne $o->[0] } @req;
			print join("\t", $o->[0], $cmd, @pos, @extra, @$o), "\n";
		}
	}
' "$SRC" "$T" > "$T/invocations" <<EOF
$(for c in $cmds; do bw help "$c" | sed -n 's/^\(usage:\|      \) burrow //p'; done)
EOF
n_inv=$(grep -c . "$T/invocations")
[ "$n_inv" -ge 20 ]
ok $? "the help lists options to try ($n_inv invocations)"

bad=
while IFS= read -r line; do
	opt=$(printf '%s' "$line" | cut -f1)
	args=$(printf '%s' "$line" | cut -f2- | tr '\t' ' ')
	# shellcheck disable=SC2086
	out=$(timeout 20 "$BUILD/burrow" --socket "$SOCK" $args 2>&1 </dev/null); rc=$?
	if printf '%s' "$out" | grep -q 'unknown option' || [ "$rc" -eq 2 ]; then
		bad="$bad [$args: rc $rc: $out]"
	fi
done < "$T/invocations"
is "$bad" "" "every option the help lists is accepted by its command (none is unknown, none is bad usage)"

# The other way round: every option string the parsers compare against is in the help.
global=$(bw --help)
missing=
for o in $(grep -ohE 'str(n)?cmp\(argv\[[a-z]+\], "-[a-z-]*' "$SRC"/agent/cli/*.c | sed 's/.*"//' | sort -u); do
	printf '%s\n' "$global" | grep -qE -- "(^|[ [|])$o([] |]|\$)" || missing="$missing $o"
done
is "$missing" "" "every option the parsers accept is listed in burrow help"

# Per command, from the binary's behaviour: an option it does not call unknown must be in
# its own help. (The global --socket, --json, --help/-h, --version are main's.)
opts=$(grep -ohE 'str(n)?cmp\(argv\[[a-z]+\], "-[a-z-]*' "$SRC"/agent/cli/*.c | sed 's/.*"//' | sort -u |
	grep -vxE -- '--socket|--json|--help|-h|--version')
bad=
for c in $cmds; do
	subs=
	[ "$c" = policy ] && subs="check test"
	for o in $opts; do
		for s in ${subs:-""}; do
			# shellcheck disable=SC2086
			out=$(timeout 20 "$BUILD/burrow" --socket "$SOCK" $c $s "$o" 2>&1 </dev/null)
			printf '%s' "$out" | grep -q "unknown option $o" && continue
			bw help "$c" | grep -qE -- "(burrow $c $s.*|[ [|])$o([] |]|\$)" || bad="$bad [$c $s $o]"
		done
	done
done
is "$bad" "" "every option a command accepts is in that command's help"

bad=
for c in $cmds; do
	a=$(bw "$c" --help); rc=$?
	b=$(bw help "$c")
	[ "$rc" -eq 0 ] && [ "$a" = "$b" ] && printf '%s' "$a" | grep -q "^usage: burrow $c" || bad="$bad $c"
done
is "$bad" "" "COMMAND --help prints that command's usage and exits 0 for every command"

bad=
for c in $cmds; do
	out=$(bw "$c" --no-such-option 2>&1 </dev/null); rc=$?
	{ [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -q "unknown option --no-such-option"; } || bad="$bad [$c: rc $rc: $out]"
done
is "$bad" "" "an unknown option is bad usage (exit 2, 'unknown option') for every command"

out=$(bw emit ssid --ssid=x 2>&1); rc=$?
is "$rc" 2 "an option among emit's key=value pairs is bad usage, not a field named --ssid"
out=$("$BUILD/burrow" list --socket 2>&1); rc=$?
is "$rc" 2 "--socket without a path is bad usage"
like "$out" '--socket needs the path' "that says what is missing"

out=$(bw export office 2>&1); rc=$?
is "$rc" 1 "export says it is not available yet (exit 1)"
like "$(bw help export)" 'not available yet' "and the help says so, with no options"

# ---- Without an agent: devices, policy check/test, doctor ---------------------------------

out=$(bw devices --devices-dir "$SRC/devices"); rc=$?
is "$rc" 0 "burrow devices --devices-dir works without an agent"
like "$out" '^cisco-asa ' "and lists the profiles of that directory"
out=$(bw devices cisco-asa --devices-dir "$SRC/devices"); rc=$?
is "$rc" 0 "burrow devices ID --devices-dir shows one profile without an agent"
like "$out" 'source: .+' "with its source"
out=$(bw devices --devices-dir "$T/etc/connections" 2>&1); rc=$?
is "$rc" 1 "a directory without profiles is an error"
like "$out" "no device profiles in $T/etc/connections" "that names the directory"

out=$(bw policy check "$T/ok.lua"); rc=$?
is "$rc" 0 "burrow policy check works without an agent"
out=$(bw policy test "$T/ok.lua" --events "$T/trace.jsonl"); rc=$?
is "$rc" 0 "burrow policy test works without an agent"
like "$out" 'ssid CafeFree' "and replays the trace"
printf 'burrow.on("policy_error", function(ev) burrow.log("info", ev.file) end)\n' > "$T/onerr.lua"
out=$(bw policy check "$T/onerr.lua" 2>&1); rc=$?
is "$rc" 0 "a policy may subscribe to policy_error (check knows the event)"
printf 'burrow.on("ssid", function() end)\nlocal f = io.open("/etc/passwd")\n' > "$T/io.lua"
out=$(bw policy check "$T/io.lua" 2>&1); rc=$?
is "$rc" 1 "policy check of a policy that uses io fails"
like "$out" "io.lua:2: io is not available in policies; use burrow.exec" "with the sandbox's sentence at file:line"

out=$(bw doctor --config-dir "$T/etc" 2>"$T/doctor.err"); rc=$?
is "$rc" 1 "doctor without an agent exits 1"
like "$(cat "$T/doctor.err")" "burrowd is not running: no agent at $SOCK" "and says burrowd is not running"
like "$out" '^FAIL agent: burrowd is not running' "the checks name the missing agent"
like "$out" '^(OK  |WARN|FAIL) tun: ' "it still checks TUN"
like "$out" '^(OK  |WARN|FAIL) kernel-esp: ' "and kernel ESP"
like "$out" '^(OK  |WARN|FAIL) port-ike: ' "and the IKE port"
like "$out" 'agent-config: .*burrow.conf is valid' "and burrow.conf"
like "$out" 'FAIL config: .*broken.conf:4: ' "and the connection files, naming the invalid one"
json=$(bw --json doctor --config-dir "$T/etc" 2>/dev/null)
echo "$json" | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); exit(ref $d eq "ARRAY" && grep({ $_->{name} eq "tun" } @$d) ? 0 : 1)'
ok $? "doctor --json without an agent is a JSON array of the checks"

# ---- With an agent -------------------------------------------------------------------------

"$BUILD/burrowd" --foreground --config-dir "$T/etc" --state-dir "$T/state" --socket "$SOCK" \
	--devices-dir "$SRC/devices" --log-level debug 2>"$T/burrowd.log" &
PID=$!
wait_for 10 test -S "$SOCK"
ok $? "burrowd starts"

out=$(bw location --bogus 2>&1); rc=$?
is "$rc" 2 "burrow location --bogus is bad usage (exit 2)"
like "$out" 'unknown option --bogus for location' "in one sentence"
out=$(bw location --json 2>/dev/null)
if printf '%s' "$out" | grep -q -- '--bogus'; then ok 1 "no location named --bogus was set"; else ok 0 "no location named --bogus was set"; fi
out=$(bw status --bogus 2>&1); rc=$?
is "$rc" 2 "burrow status --bogus is bad usage, not a connection named --bogus"
out=$(bw devices --bogus 2>&1); rc=$?
is "$rc" 2 "burrow devices --bogus is bad usage, not a device named --bogus"

out=$(bw devices); rc=$?
is "$rc" 0 "burrow devices asks the running agent"
like "$out" '^cisco-asa ' "and lists the agent's profiles"

like "$(bw list)" 'broken .*invalid' "an invalid connection file is there"
out=$(bw stop --all 2>&1); rc=$?
is "$rc" 0 "stop --all exits 0 although one connection file is invalid"
out=$(bw stop broken 2>&1); rc=$?
is "$rc" 1 "stopping the invalid connection by name still fails"

printf 'burrow.on("ssid", function() end)\nlocal x = = 1\n' > "$T/etc/policies/20-broken.lua"
printf 'burrow.on("ssid", function() end)\nerror("refuse to load")\n' > "$T/etc/policies/30-raises.lua"
out=$(bw reload); rc=$?
is "$rc" 0 "burrow reload succeeds with broken policies"
like "$out" "20-broken.lua:2: .*\(policy not loaded\)" "reload names a policy that does not compile, with file:line"
like "$out" "30-raises.lua:2: refuse to load \(policy not loaded\)" "reload names a policy whose main chunk raises, with file:line and the error"
like "$out" 'reloaded: 2 connection\(s\), 1 invalid; 2 policies failed to load' "and counts them"
json=$(bw --json reload)
echo "$json" | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); my @e = @{$d->{policy_errors}};
	exit(@e == 2 && $e[1]{line} == 2 && $e[1]{message} eq "refuse to load" && $e[1]{file} =~ /30-raises\.lua$/ && ref $d->{connections} eq "ARRAY" ? 0 : 1)'
ok $? "reload --json has connections and policy_errors with file, line and message"
out=$(bw events)
like "$out" "policy_error .*file=$T/etc/policies/30-raises.lua .*line=2 .*message=refuse to load|policy_error .*line=2 .*message=refuse to load" "burrow events shows a policy_error for the policy that raised"
like "$out" "policy_error .*20-broken.lua" "and one for the policy that does not compile"
rm "$T/etc/policies/20-broken.lua" "$T/etc/policies/30-raises.lua"
out=$(bw reload); rc=$?
like "$out" 'reloaded: 2 connection\(s\), 1 invalid; 0 policies failed to load' "once fixed, reload reports no policy errors"

kill -TERM "$PID"
wait "$PID"; rc=$?
PID=
is "$rc" 0 "burrowd stops cleanly after the reloads (exit 0, no leak under ASan)"

# ---- The installed unit follows the install prefix ---------------------------------------

if command -v cmake >/dev/null; then
	cmake -S "$SRC" -B "$T/b" -DCMAKE_INSTALL_PREFIX=/opt/x >"$T/cmake.log" 2>&1
	ok $? "cmake configures a build with prefix /opt/x"
	like "$(cat "$T/b/burrowd.service" 2>/dev/null)" '^ExecStart=/opt/x/sbin/burrowd --foreground$' \
		"the generated burrowd.service starts /opt/x/sbin/burrowd"
	if grep -q '/usr/local' "$T/b/burrowd.service"; then ok 1 "and names no /usr/local path"; else ok 0 "and names no /usr/local path"; fi
	grep -q 'burrowd.service' "$T/b/cmake_install.cmake"
	ok $? "and it is the file cmake --install installs"
fi

done_testing

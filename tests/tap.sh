# TAP helpers for Burrow's shell tests (sourced). One line per check, named for what it proves.
# shellcheck shell=sh

TAP_N=0
TAP_FAILED=0

plan() { echo "1..$1"; }
# TAP comments go to stderr, where prove shows them (CI logs included).
diag() { printf '%s\n' "$*" | sed 's/^/# /' >&2; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }

# ok STATUS NAME: passes when STATUS is 0 (use: cmd; ok $? "name").
ok() {
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_N - $2"
	else
		echo "not ok $TAP_N - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
	return "$1"
}

# is GOT WANT NAME
is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "  got:  '$1'"
		diag "  want: '$2'"
		return 1
	fi
}

# like GOT PATTERN NAME (grep -E)
like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "  got: '$1'"
		diag "  does not match: $2"
		return 1
	fi
}

done_testing() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds or time runs out.
wait_for() {
	_limit=$(( $1 * 10 )); shift
	_i=0
	while [ "$_i" -lt "$_limit" ]; do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

/* The support report: redaction of keyfiles and policies, scrubbing of known secrets from
 * free text, the tar.gz, and a whole report of a fake agent searched for its secrets. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "agent.h"
#include "diag/report.h"
#include "util.h"

#define PSK "Sup3r-S3cret-PSK"
#define XPW "x4uth-Pa55word!"
#define KPP "k3y-phrase-77"

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

static void test_redact_secrets(void)
{
	static const char in[] =
		"; the old one was Old-PSK-0000\n"
		"[secrets]\n"
		"psk = " PSK " ; rotated in May\n"
		"xauth_password: '" XPW "'\n"
		"  continued-" PSK "\n"
		"private_key_passphrase = " KPP "\n"
		"just-a-stray-line-" PSK "\n";
	char *out = bw_report_redact_keyfile(in, sizeof(in) - 1, true);

	tap_ok(out != NULL, "a secrets file is redacted");
	tap_ok(!has(out, PSK) && !has(out, XPW) && !has(out, KPP) && !has(out, "Old-PSK"),
	       "no secret value, continuation, comment or stray line survives");
	tap_ok(has(out, "psk = <removed>") && has(out, "xauth_password = <removed>") &&
	       has(out, "private_key_passphrase = <removed>"), "every key name survives with the marker");
	tap_ok(has(out, "[secrets]"), "the section header survives");
	tap_ok(!has(out, "rotated"), "inline comments go with the value");
	free(out);
}

static void test_redact_conn(void)
{
	static const char in[] =
		"[connection]\n"
		"gateway = vpn.example.com   ; the office\n"
		"remote_networks = 10.1.0.0/24,\n"
		"    10.2.0.0/16\n"
		"[auth]\n"
		"xauth_user = alice\n"
		"xauth_password = " XPW "\n"
		"  and-more-" XPW "\n"
		"My_PSK_Hint = " PSK "\n"
		"api_token: tok-123456\n";
	char *out = bw_report_redact_keyfile(in, sizeof(in) - 1, false);

	tap_ok(has(out, "gateway = vpn.example.com   ; the office"), "ordinary values and comments survive");
	tap_ok(has(out, "    10.2.0.0/16"), "continuation lines of ordinary keys survive");
	tap_ok(has(out, "xauth_user = alice"), "the XAUTH user name survives");
	tap_ok(!has(out, XPW) && !has(out, "and-more"), "a password key in a connection and its continuation go");
	tap_ok(!has(out, PSK) && has(out, "My_PSK_Hint = <removed>"), "keys named like *psk* are redacted, case aside");
	tap_ok(!has(out, "tok-123456") && has(out, "api_token = <removed>"), "keys named like *token* are redacted");
	free(out);
}

static void test_redact_lua(void)
{
	static const char in[] =
		"burrow.on(\"tunnel_up\", function(ev)\n"
		"  burrow.mount{source=\"u@10.1.0.10:/srv\", target=\"/mnt/o\", options=\"password=Hunter22,uid=1000\"}\n"
		"  local secret = 'abc\\'def'\n"
		"end)\n";
	char *out = bw_report_redact_lua(in, sizeof(in) - 1);

	tap_ok(has(out, "burrow.on(\"tunnel_up\", function(ev)"), "lines without secret words are untouched");
	tap_ok(!has(out, "Hunter22") && !has(out, "def'"), "string literals on lines that mention a secret go");
	tap_ok(has(out, "options=\"<removed>\""), "and are replaced by the marker");
	free(out);
}

static void test_scrub(void)
{
	static const char sec[] = "[secrets]\npsk = 0x6869646465" "6e21\nxauth_password = \"" XPW "\"\n"
				  "private_key_passphrase = abc\n";
	struct bw_report_needles nd = { 0 };
	char *out;
	const char text[] = "debug: sent " XPW " and hidden! and 0x68696464656e21 and abc";

	bw_report_needles_from_keyfile(&nd, sec, sizeof(sec) - 1, true);
	out = bw_report_scrub(&nd, text, sizeof(text) - 1);
	tap_ok(!has(out, XPW), "a quoted secret is found without its quotes");
	tap_ok(!has(out, "hidden!") && !has(out, "0x68696464656e21"), "a 0x-hex psk is found as written and decoded");
	tap_ok(has(out, "and abc"), "secrets shorter than %d bytes are not hunted in free text", BW_REPORT_SCRUB_MIN);
	tap_ok(has(out, "debug: sent <removed>"), "what is found becomes the marker");
	free(out);
	bw_report_needles_free(&nd);
}

static int write_file(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -1;
	}
	fchmod(fd, mode);
	return close(fd);
}

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[2 * PATH_MAX + 256];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

static void test_tar(const char *tmp)
{
	char dir[PATH_MAX], out[PATH_MAX], list[PATH_MAX + 32], *text = NULL, err[256];
	FILE *f;
	int fd;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/pack/top/sub", tmp);
	sh("mkdir -p %s%s", dir, "");
	snprintf(dir, sizeof(dir), "%s/pack", tmp);
	write_file(dir, "top/a.txt", "a\n", 0600);
	write_file(dir, "top/sub/b.txt", "b\n", 0600);
	snprintf(out, sizeof(out), "%s/pack.tgz", tmp);
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
	tap_is_int(bw_report_tar(dir, "top", fd, err, sizeof(err)), 0, "tar packs a directory");
	close(fd);
	snprintf(list, sizeof(list), "%s.list", out);
	sh("tar -tzf %s > %s", out, list);
	if ((f = fopen(list, "r"))) {
		text = calloc(1, 4096);
		n = fread(text, 1, 4095, f);
		fclose(f);
	}
	tap_ok(n && has(text, "top/a.txt") && has(text, "top/sub/b.txt"), "tar -tzf lists every file of it");
	free(text);
}

static void test_whole_report(const char *tmp)
{
	struct bw_agent a;
	struct bw_conn *c, *conns[1];
	char etc[PATH_MAX], out[PATH_MAX], x[PATH_MAX], err[512], path[PATH_MAX + 128];
	struct stat st;
	json_t *ev;

	memset(&a, 0, sizeof(a));
	snprintf(etc, sizeof(etc), "%s/etc", tmp);
	sh("mkdir -p %s/connections %s/secrets", etc, etc);
	sh("mkdir -p %s/policies %s/../state", etc, etc);
	write_file(etc, "burrow.conf", "[agent]\nbackend = auto\n", 0644);
	write_file(etc, "connections/office.conf",
		   "[connection]\ngateway = 192.0.2.1\nremote_networks = 10.1.0.0/24\n"
		   "; do not write the key here: " PSK "\n[auth]\nxauth = yes\nxauth_user = alice\n", 0644);
	write_file(etc, "secrets/office.secrets", "[secrets]\npsk = " PSK "\nxauth_password = " XPW "\n", 0600);
	write_file(etc, "policies/50-mount.lua", "local password = \"" XPW "\"\nburrow.log('info', 'hi')\n", 0644);
	bw_strlcpy(a.opts.config_dir, etc, sizeof(a.opts.config_dir));
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s/state", tmp);
	bw_strlcpy(a.opts.socket_path, "/nonexistent/burrowd.sock", sizeof(a.opts.socket_path));
	bw_agent_config_defaults(&a.cfg);
	a.cfg.ike_port = 0;	/* no bind test on 500 from a unit test */
	a.cfg.natt_port = 0;
	bw_events_init(&a.events);
	ev = json_pack("{s:s,s:s}", "name", "ssid", "ssid", "leak " XPW " here");
	bw_events_emit(&a.events, ev);
	c = bw_conn_new(&a, "office", "office.conf");
	bw_conn_log_append(c, BW_LOG_DEBUG, "a careless line with " PSK " in it");
	bw_conn_log_append(c, BW_LOG_INFO, "phase 1: gateway chose aes256-sha256-modp2048");
	conns[0] = c;
	a.conns = conns;
	a.n_conns = 1;

	snprintf(out, sizeof(out), "%s/report.tgz", tmp);
	if (!tap_is_int(bw_report_write(&a, out, err, sizeof(err)), 0, "a report is written"))
		tap_diag("%s", err);
	tap_ok(stat(out, &st) == 0 && (st.st_mode & 0777) == 0600, "the report file has mode 0600");
	tap_is_int(bw_report_write(&a, out, err, sizeof(err)), -1, "an existing file is not overwritten");
	tap_ok(has(err, "already exists"), "and the error says so");
	tap_is_int(bw_report_write(&a, "relative.tgz", err, sizeof(err)), -1, "a relative path is refused");
	snprintf(path, sizeof(path), "%s/no/such/dir/r.tgz", tmp);
	tap_is_int(bw_report_write(&a, path, err, sizeof(err)), -1, "a missing directory is refused");
	tap_ok(access(path, F_OK) != 0, "and nothing is left behind");

	/* As a member of group burrow would ask: the file is theirs, and only where they may write. */
	if (geteuid() == 0) {
		chmod(tmp, 0755);
		snprintf(path, sizeof(path), "%s/state/as-nobody.tgz", tmp);
		tap_is_int(bw_report_write_as(&a, path, 65534, 65534, err, sizeof(err)), -1,
			   "a user cannot have a report written into a directory they cannot write");
		snprintf(path, sizeof(path), "%s/open", tmp);
		mkdir(path, 01777);
		chmod(path, 01777);
		snprintf(path, sizeof(path), "%s/open/as-nobody.tgz", tmp);
		if (!tap_ok(bw_report_write_as(&a, path, 65534, 65534, err, sizeof(err)) == 0 && stat(path, &st) == 0 &&
			    st.st_uid == 65534, "a report written for a user belongs to that user"))
			tap_diag("%s", err);
	} else {
		tap_ok(1, "# SKIP writing as another user needs root");
		tap_ok(1, "# SKIP writing as another user needs root");
	}

	snprintf(x, sizeof(x), "%s/x", tmp);
	sh("mkdir -p %s && cd %s && tar -xzf ../report.tgz", x, x);
	tap_is_int(sh("grep -rqF -e '" PSK "' -e '" XPW "' %s%s", x, ""), 256,
		   "no secret string appears anywhere in the unpacked report");
	tap_ok(sh("zcat %s | grep -qaF -e '" PSK "' -e '" XPW "'%s", out, "") == 256 &&
	       sh("zcat %s | grep -qaF 'psk = <removed>'%s", out, "") == 0,
	       "nor in the archive's raw bytes, where the marker is");
	tap_is_int(sh("test -f %s/burrow-report-*/configuration/connections/office.conf%s", x, ""), 0,
		   "the connection file is in it");
	tap_is_int(sh("grep -q 'gateway = 192.0.2.1' %s/burrow-report-*/configuration/connections/office.conf%s", x, ""),
		   0, "with its ordinary values");
	tap_is_int(sh("grep -qx 'psk = <removed>' %s/burrow-report-*/configuration/secrets/office.secrets%s", x, ""), 0,
		   "the secrets file is there as key names only");
	tap_is_int(sh("grep -q 'gateway chose aes256' %s/burrow-report-*/logs/office.log%s", x, ""), 0,
		   "the connection log is in it");
	tap_is_int(sh("grep -q '\"ssid\"' %s/burrow-report-*/events.jsonl%s", x, ""), 0, "the recent events are in it");
	tap_is_int(sh("grep -q '\"name\": \"clock\"' %s/burrow-report-*/doctor.json%s", x, ""), 0,
		   "the doctor's checks are in it");
	tap_is_int(sh("grep -q '^burrow " BURROW_VERSION "' %s/burrow-report-*/version.txt%s", x, ""), 0,
		   "version.txt names the version");
	tap_is_int(sh("grep -q '## ip -o addr' %s/burrow-report-*/environment.txt%s", x, ""), 0,
		   "environment.txt has the addresses");
	tap_is_int(sh("! grep -q 'ip xfrm state' %s/burrow-report-*/environment.txt || grep -q 'left out on purpose' %s/burrow-report-*/environment.txt", x, x), 0,
		   "and never the xfrm states, which hold keys");
	snprintf(path, sizeof(path), "%s/state", tmp);
	tap_is_int(sh("test -z \"$(ls -A %s)\"%s", path, ""), 0, "the temporary directory is removed");
	bw_conn_free(c);
	bw_events_free(&a.events);
}

int main(void)
{
	char tmp[] = "/tmp/bw-report-test-XXXXXX";

	test_redact_secrets();
	test_redact_conn();
	test_redact_lua();
	test_scrub();
	if (!mkdtemp(tmp)) {
		tap_ok(0, "mkdtemp: %s", strerror(errno));
		return tap_done_testing();
	}
	test_tar(tmp);
	test_whole_report(tmp);
	sh("rm -rf %s%s", tmp, "");
	return tap_done_testing();
}

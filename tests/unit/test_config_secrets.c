/* Tests for secrets/NAME.secrets: the values, hex keys, the permission and owner checks
 * that refuse a file others could read, and that no error ever quotes a secret. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "config/config.h"

static char dir[] = "/tmp/burrow-secrets-XXXXXX";
static struct bw_secrets s;
static struct bw_cfg_error err;

static int parse(const char *text)
{
	memset(&err, 0, sizeof(err));
	return bw_secrets_parse("work.secrets", text, strlen(text), &s, &err);
}

static void write_secret(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	fchmod(fd, mode);
	close(fd);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void test_parse(void)
{
	tap_is_int(parse("[secrets]\npsk = correct horse\nxauth_password = battery\n"
			 "private_key_passphrase = staple\npkcs12_password = p12 pass\n"), 0,
		   "a secrets file with every key parses");
	tap_ok(s.has_psk && s.psk_len == 13 && strcmp(s.psk, "correct horse") == 0, "psk is read as text");
	tap_ok(s.has_xauth_password && strcmp(s.xauth_password, "battery") == 0, "xauth_password is read");
	tap_ok(s.has_private_key_passphrase && strcmp(s.private_key_passphrase, "staple") == 0,
	       "private_key_passphrase is read");
	tap_ok(s.has_pkcs12_password && strcmp(s.pkcs12_password, "p12 pass") == 0, "pkcs12_password is read");

	tap_is_int(parse("[secrets]\npsk = 0x00ff10Ab\n"), 0, "a hex psk parses");
	tap_ok(s.has_psk && s.psk_len == 4 && memcmp(s.psk, "\x00\xff\x10\xab", 4) == 0,
	       "a 0x psk becomes its bytes, NUL included");
	tap_ok(!s.has_xauth_password && !s.has_private_key_passphrase && !s.has_pkcs12_password,
	       "secrets that are not given are not set");

	tap_is_int(parse("[secrets]\npsk =\n"), 0, "an empty psk is accepted");
	tap_ok(!s.has_psk, "an empty psk means none (the agent will ask)");
	tap_is_int(parse("[secrets]\npsk = \"  spaced  \"\n"), 0, "a quoted psk parses");
	tap_is_str(s.psk, "  spaced  ", "quotes keep the psk's surrounding spaces, not the quotes");
	tap_is_int(parse("[secrets]\npsk = abc ;comment\n"), 0, "a psk with a comment parses");
	tap_is_str(s.psk, "abc", "' ;' starts a comment in a psk too (documented; use 0x for such keys)");
	tap_is_int(parse("[secrets]\npsk = a;b\n"), 0, "a ';' not after a space is part of the value");
	tap_is_str(s.psk, "a;b", "the psk keeps its ';'");

	memset(&s, 0x11, sizeof(s));
	tap_ok(parse("[secrets]\npsk = 0xabc\n") == -1 && err.line == 2 &&
		       strstr(err.msg, "even number of hex digits"),
	       "an odd-length hex psk is refused");
	tap_ok(s.psk_len == 0x1111111111111111ull && s.psk[0] == 0x11,
	       "a refused secrets file leaves out untouched");
	tap_ok(parse("[secrets]\npsk = 0xzz\n") == -1 && strstr(err.msg, "hex digits only"),
	       "a psk of 0x and non-hex is refused");
	tap_ok(parse("[secrets]\npsk = 0x\n") == -1, "a bare 0x psk is refused");

	tap_ok(parse("[secrets]\nsecret_word = hunter2\n") == -1 && err.line == 2 &&
		       strstr(err.msg, "unknown key in [secrets]") && !strstr(err.msg, "secret_word") &&
		       !strstr(err.msg, "hunter2"),
	       "an unknown key is refused without echoing what was written");
	tap_ok(parse("[secrets]\nhunter2\n") == -1 && err.line == 2 && !strstr(err.msg, "hunter2"),
	       "a line that is not key = value is refused without echoing it");
	tap_ok(parse("[hunter2]\npsk = x\n") == -1 && err.line == 1 && !strstr(err.msg, "hunter2"),
	       "an unknown section is refused without echoing its name");
	tap_ok(parse("[secrets]\npsk = x\npsk = hunter2\n") == -1 && err.line == 3 &&
		       strstr(err.msg, "set twice") && !strstr(err.msg, "hunter2"),
	       "a psk given twice is refused without echoing it");

	char longer[400];
	snprintf(longer, sizeof(longer), "[secrets]\nxauth_password = %0190d\n", 7);
	tap_ok(parse(longer) == -1 && !strstr(err.msg, "0000000007"),
	       "an over-long password is refused without echoing it");
	tap_ok(parse("[secrets]\npsk = hunter2\n[connection]\n") == -1 && err.line == 3,
	       "secrets files only have [secrets]");

	bw_secrets_wipe(&s);
	tap_ok(all_zero(&s, sizeof(s)), "bw_secrets_wipe zeroes every byte");
}

static void test_load(void)
{
	char path[128], link[128];
	struct bw_secrets out;

	snprintf(path, sizeof(path), "%s/work.secrets", dir);
	write_secret(path, "[secrets]\npsk = hunter2\n", 0600);
	tap_ok(bw_secrets_load(path, &out, &err) == 0 && out.has_psk && strcmp(out.psk, "hunter2") == 0,
	       "a 0600 secrets file owned by us loads");
	bw_secrets_wipe(&out);

	write_secret(path, "[secrets]\npsk = hunter2\n", 0644);
	memset(&out, 0, sizeof(out));
	tap_ok(bw_secrets_load(path, &out, &err) == -1 && !out.has_psk, "a 0644 secrets file is refused");
	tap_ok(err.line == 0 && strstr(err.msg, "is readable by others; run chmod 600 ") &&
		       strstr(err.msg, "/work.secrets") && !strstr(err.msg, "hunter2"),
	       "the error says the file is readable by others and gives the chmod");
	write_secret(path, "[secrets]\npsk = hunter2\n", 0640);
	tap_ok(bw_secrets_load(path, &out, &err) == -1 && strstr(err.msg, "run chmod 600"),
	       "a group-readable (0640) secrets file is refused");
	write_secret(path, "[secrets]\npsk = hunter2\n", 0620);
	tap_ok(bw_secrets_load(path, &out, &err) == -1 && strstr(err.msg, "is accessible by others"),
	       "a group-writable (0620) secrets file is refused");

	write_secret(path, "[secrets]\npsk = hunter2\n", 0600);
	if (geteuid() == 0) {
		tap_ok(chown(path, 12345, 12345) == 0, "the file can be given to another uid");
		tap_ok(bw_secrets_load(path, &out, &err) == -1 && strstr(err.msg, "run chown root") &&
			       strstr(err.msg, "uid 12345"),
		       "a secrets file owned by another user is refused with the chown to run");
	} else {
		tap_ok(1, "# SKIP the owner check needs root to chown");
		tap_ok(1, "# SKIP the owner check needs root to chown");
	}

	write_secret(path, "[secrets]\npsk = hunter2\n", 0600);
	snprintf(link, sizeof(link), "%s/link.secrets", dir);
	unlink(link);
	if (symlink(path, link) != 0)
		abort();
	tap_ok(bw_secrets_load(link, &out, &err) == -1 && strstr(err.msg, "symbolic link"),
	       "a symbolic link is not followed");
	unlink(link);

	write_secret(path, "[secrets]\npsk = 0x0102\nbogus = 1\n", 0600);
	tap_ok(bw_secrets_load(path, &out, &err) == -1 && err.line == 3 && strcmp(err.file, path) == 0,
	       "a syntax problem in a loaded secrets file names its path and line");
	unlink(path);
	tap_ok(bw_secrets_load(path, &out, &err) == -1 && strstr(err.msg, "cannot open"),
	       "a missing secrets file is reported");
	tap_ok(bw_secrets_load(dir, &out, &err) == -1 && strstr(err.msg, "not a regular file"),
	       "a directory is not a secrets file");
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_parse();
	test_load();
	rmdir(dir);
	return tap_done_testing();
}

/* secrets/NAME.secrets: refused unless only its owner (root or the agent) can read it;
 * every buffer that held a secret is wiped, and no error ever quotes a value. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "keyfile.h"
#include "util.h"

#define SECRETS_FILE_MAX (64 * 1024)

enum sk { SK_PSK, SK_XAUTH_PASSWORD, SK_PASSPHRASE, SK_PKCS12, SK_COUNT };

static const struct bw_kf_key secret_keys[SK_COUNT] = {
	[SK_PSK] = { "secrets", "psk", 0x100 },
	[SK_XAUTH_PASSWORD] = { "secrets", "xauth_password", 0x100 },
	[SK_PASSPHRASE] = { "secrets", "private_key_passphrase", 0x100 },
	[SK_PKCS12] = { "secrets", "pkcs12_password", 0x100 },
};

static const struct bw_kf_schema secret_schema = {
	.keys = secret_keys, .n_keys = SK_COUNT, .known = 0x100, .allowed = 0x100, .secret = true,
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "0x..." is the key in hex, so that keys with any bytes can be written down. */
static int set_psk(struct bw_secrets *s, const char *v, const char *file, int line,
		   struct bw_cfg_error *err)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		const char *h = v + 2;
		size_t hn = n - 2;

		if (hn == 0 || hn % 2 || hn / 2 >= sizeof(s->psk)) {
			bw_cfg_error_set(err, file, line, "a psk in hex needs an even number of hex "
					 "digits after 0x, at most %zu bytes", sizeof(s->psk) - 1);
			return -1;
		}
		for (size_t i = 0; i < hn / 2; i++) {
			int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				bw_cfg_error_set(err, file, line, "a psk that starts with 0x must be "
						 "hex digits only");
				return -1;
			}
			s->psk[i] = (char)(hi << 4 | lo);
		}
		s->psk_len = hn / 2;
		s->psk[s->psk_len] = '\0';
	} else {
		if (n >= sizeof(s->psk)) {
			bw_cfg_error_set(err, file, line, "the psk is longer than %zu characters",
					 sizeof(s->psk) - 1);
			return -1;
		}
		memcpy(s->psk, v, n + 1);
		s->psk_len = n;
	}
	s->has_psk = true;
	return 0;
}

static int set_secret(const char *key, const char *v, char *dst, size_t size, bool *has,
		      const char *file, int line, struct bw_cfg_error *err)
{
	size_t n = strlen(v);

	if (n >= size) {
		bw_cfg_error_set(err, file, line, "%s is longer than %zu characters", key, size - 1);
		return -1;
	}
	memcpy(dst, v, n + 1);
	*has = true;
	return 0;
}

int bw_secrets_parse(const char *file, const char *buf, size_t len, struct bw_secrets *out,
		     struct bw_cfg_error *err)
{
	struct bw_kf_value vals[SK_COUNT];
	struct bw_secrets s;
	struct bw_cfg_error scratch;
	int rc = -1;

	if (!err)
		err = &scratch;
	if (!file)
		file = "";
	memset(vals, 0, sizeof(vals));
	memset(&s, 0, sizeof(s));
	if (bw_kf_parse(&secret_schema, file, buf, len, vals, err) != 0)
		goto out;
	/* An empty value is the same as no value: the agent will ask for it. */
	if (vals[SK_PSK].set && vals[SK_PSK].value[0] &&
	    set_psk(&s, vals[SK_PSK].value, file, vals[SK_PSK].line, err) != 0)
		goto out;
	if (vals[SK_XAUTH_PASSWORD].set && vals[SK_XAUTH_PASSWORD].value[0] &&
	    set_secret("xauth_password", vals[SK_XAUTH_PASSWORD].value, s.xauth_password,
		       sizeof(s.xauth_password), &s.has_xauth_password, file,
		       vals[SK_XAUTH_PASSWORD].line, err) != 0)
		goto out;
	if (vals[SK_PASSPHRASE].set && vals[SK_PASSPHRASE].value[0] &&
	    set_secret("private_key_passphrase", vals[SK_PASSPHRASE].value,
		       s.private_key_passphrase, sizeof(s.private_key_passphrase),
		       &s.has_private_key_passphrase, file, vals[SK_PASSPHRASE].line, err) != 0)
		goto out;
	if (vals[SK_PKCS12].set && vals[SK_PKCS12].value[0] &&
	    set_secret("pkcs12_password", vals[SK_PKCS12].value, s.pkcs12_password,
		       sizeof(s.pkcs12_password), &s.has_pkcs12_password, file, vals[SK_PKCS12].line,
		       err) != 0)
		goto out;
	*out = s;
	rc = 0;
out:
	bw_kf_values_clear(vals, SK_COUNT);
	OPENSSL_cleanse(&s, sizeof(s));
	return rc;
}

/* "secrets/NAME.secrets" out of a longer path: what the user recognises. */
static const char *short_name(const char *path)
{
	const char *last = strrchr(path, '/'), *prev = NULL;

	if (!last)
		return path;
	for (const char *p = path; p < last; p++)
		if (*p == '/')
			prev = p;
	return prev ? prev + 1 : path;
}

static int check_owner_mode(const char *path, const struct stat *st, struct bw_cfg_error *err)
{
	if (st->st_mode & 077) {
		bw_cfg_error_set(err, path, 0, "%.80s is %s by others; run chmod 600 %.120s",
				 short_name(path), st->st_mode & 044 ? "readable" : "accessible", path);
		return -1;
	}
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		bw_cfg_error_set(err, path, 0, "%.80s belongs to uid %u, not root; run chown root "
				 "%.120s", short_name(path), (unsigned)st->st_uid, path);
		return -1;
	}
	return 0;
}

int bw_secrets_load(const char *path, struct bw_secrets *out, struct bw_cfg_error *err)
{
	char *buf;
	size_t len;
	int rc;

	/* O_NOFOLLOW, then fstat and read on the same descriptor: what is checked is what is
	 * read, and a refused file is never read at all. */
	if (bw_kf_read_file(path, true, SECRETS_FILE_MAX, check_owner_mode, &buf, &len, err) != 0)
		return -1;
	rc = bw_secrets_parse(path, buf, len, out, err);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

void bw_secrets_wipe(struct bw_secrets *s)
{
	if (s)
		OPENSSL_cleanse(s, sizeof(*s));
}

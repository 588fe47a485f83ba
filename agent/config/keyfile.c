/* The keyfile reader every Burrow configuration file goes through: libinih does the
 * syntax, this file feeds it one checked line at a time and applies a key schema. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util.h"

void bw_cfg_error_set(struct bw_cfg_error *err, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	bw_strlcpy(err->file, file ? file : "", sizeof(err->file));
	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* How inih will treat the line the reader hands it; mirrored here because inih's
 * handler cannot tell a continuation line from a key line. */
enum kf_line { KF_LINE_SKIP, KF_LINE_KEY, KF_LINE_SECTION, KF_LINE_CONT };

struct kf_ctx {
	const struct bw_kf_schema *sc;
	const char *file;
	const char *buf;
	size_t len, pos;
	int lineno;
	enum kf_line kind;
	long prev_key;		/* key of the last key line, -1 after a section header */
	struct bw_kf_value *vals;
	struct bw_cfg_error *err;
	bool failed;
};

static void kf_fail(struct kf_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kf_fail(struct kf_ctx *k, const char *fmt, ...)
{
	va_list ap;

	if (k->failed)
		return;
	k->failed = true;
	bw_strlcpy(k->err->file, k->file, sizeof(k->err->file));
	k->err->line = k->lineno;
	va_start(ap, fmt);
	vsnprintf(k->err->msg, sizeof(k->err->msg), fmt, ap);
	va_end(ap);
}

/* inih's own idea of white space (it uses isspace in the C locale). */
static bool kf_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static bool section_known(const struct bw_kf_schema *sc, const char *name, size_t n)
{
	for (size_t i = 0; i < sc->n_keys; i++) {
		const char *s = sc->keys[i].section;

		if ((sc->keys[i].flags & sc->known) && strlen(s) == n && memcmp(s, name, n) == 0)
			return true;
	}
	return false;
}

/* Decides what inih will make of the line, exactly as inih 55 does: comments and blank
 * lines first, then an indented line after a key continues that key, then sections. */
static enum kf_line kf_classify(struct kf_ctx *k, const char *line, size_t n)
{
	size_t i = 0;

	if (k->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n && kf_space((unsigned char)line[i]))
		i++;
	if (i == n || line[i] == ';' || line[i] == '#')
		return KF_LINE_SKIP;
	if (k->prev_key >= 0 && i > 0)
		return KF_LINE_CONT;
	if (line[i] == '[') {
		const char *name = line + i + 1;
		const char *end = memchr(name, ']', n - i - 1);

		/* Without ']' inih reports the line itself. */
		if (end && !section_known(k->sc, name, (size_t)(end - name))) {
			if (k->sc->secret || end - name > 40)
				kf_fail(k, "unknown section; see docs/configuration.md");
			else
				kf_fail(k, "unknown section [%.*s]; see docs/configuration.md",
					(int)(end - name), name);
		}
		return KF_LINE_SECTION;
	}
	return KF_LINE_KEY;
}

/* inih's reader: hands over exactly one line per call so that the count of calls is
 * the line number, and refuses what inih would silently mangle (long lines, NULs). */
static char *kf_reader(char *str, int num, void *stream)
{
	struct kf_ctx *k = stream;
	const char *line, *nl;
	size_t n, content;

	if (k->failed || k->pos >= k->len)
		return NULL;
	line = k->buf + k->pos;
	nl = memchr(line, '\n', k->len - k->pos);
	n = nl ? (size_t)(nl - line) + 1 : k->len - k->pos;
	content = nl ? n - 1 : n;
	k->lineno++;
	k->pos += n;

	if (memchr(line, '\0', n)) {
		kf_fail(k, "the line contains a NUL byte; configuration files must be text");
		return NULL;
	}
	if (num < 3 || n + 1 > (size_t)num) {
		kf_fail(k, "the line is longer than %d characters; shorten it or continue a list "
			"on indented lines", num < 3 ? 0 : num - 2);
		return NULL;
	}
	for (size_t i = 0; i < content;) {
		size_t s = utf8_seq((const unsigned char *)line + i, content - i);

		if (!s) {
			kf_fail(k, "the line is not valid UTF-8; save the file as UTF-8");
			return NULL;
		}
		i += s;
	}
	k->kind = kf_classify(k, line, n);
	if (k->failed)
		return NULL;
	if (k->kind == KF_LINE_SECTION)
		k->prev_key = -1;
	memcpy(str, line, n);
	str[n] = '\0';
	return str;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

static void kf_continue(struct kf_ctx *k, const char *value)
{
	const struct bw_kf_key *key = &k->sc->keys[k->prev_key];
	struct bw_kf_value *v = &k->vals[k->prev_key];
	size_t have, add = strlen(value);
	char *grown;

	/* inih 55 keeps inline comments on continuation lines; cut them as on key lines. */
	for (size_t i = 1; i < add; i++) {
		if (value[i] == ';' && kf_space((unsigned char)value[i - 1])) {
			add = i;
			break;
		}
	}
	while (add > 0 && kf_space((unsigned char)value[add - 1]))
		add--;

	if (!(key->flags & BW_KF_LIST) || strchr(value, '=') || value[0] == '[') {
		kf_fail(k, "the line is indented, so it continues '%s' from above; remove the "
			"indentation", key->name);
		return;
	}
	if (has_control(value)) {
		kf_fail(k, "the value of '%s' contains a control character; remove it", key->name);
		return;
	}
	if (add == 0)
		return;
	have = strlen(v->value);
	if (have + add + 3 > BW_KF_VALUE_MAX) {
		kf_fail(k, "the list '%s' is longer than %d characters; shorten it", key->name,
			BW_KF_VALUE_MAX - 1);
		return;
	}
	grown = malloc(have + add + 3);
	if (!grown) {
		kf_fail(k, "out of memory");
		return;
	}
	/* "a,\n b" and "a\n b" both mean "a, b". */
	memcpy(grown, v->value, have);
	if (have && v->value[have - 1] != ',')
		grown[have++] = ',';
	if (have)
		grown[have++] = ' ';
	memcpy(grown + have, value, add);
	grown[have + add] = '\0';
	if (k->sc->secret)
		OPENSSL_cleanse(v->value, strlen(v->value));
	free(v->value);
	v->value = grown;
}

static int kf_handler(void *user, const char *section, const char *name, const char *value)
{
	struct kf_ctx *k = user;
	const struct bw_kf_schema *sc = k->sc;
	const struct bw_kf_key *key = NULL;
	struct bw_kf_value *v;
	size_t idx = 0, n;

	if (k->failed)
		return 1;
	if (k->kind == KF_LINE_CONT && k->prev_key >= 0) {
		kf_continue(k, value);
		return 1;
	}
	if (!*section) {
		if (sc->secret)
			kf_fail(k, "the key comes before any [section] header; put it under [secrets]");
		else
			kf_fail(k, "key '%.40s' comes before any [section] header; see "
				"docs/configuration.md", name);
		return 1;
	}
	for (idx = 0; idx < sc->n_keys; idx++) {
		key = &sc->keys[idx];
		if ((key->flags & sc->known) && strcmp(key->section, section) == 0 &&
		    strcmp(key->name, name) == 0)
			break;
	}
	if (idx == sc->n_keys) {
		if (sc->secret)
			kf_fail(k, "unknown key in [%.40s]; the keys are psk, xauth_password, "
				"private_key_passphrase and pkcs12_password", section);
		else
			kf_fail(k, "unknown key '%.40s' in [%.40s]; see docs/configuration.md", name,
				section);
		return 1;
	}
	if (!(key->flags & sc->allowed)) {
		kf_fail(k, "%s '%s'%s", sc->deny_prefix, key->name, sc->deny_suffix);
		return 1;
	}
	v = &k->vals[idx];
	if (v->set) {
		kf_fail(k, "'%s' is set twice in [%s] (first on line %d); keep one", key->name,
			key->section, v->line);
		return 1;
	}
	if (has_control(value)) {
		kf_fail(k, "the value of '%s' contains a control character; remove it", key->name);
		return 1;
	}
	n = strlen(value);
	/* Quotes let a value keep leading or trailing spaces; they are not part of it. */
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		value++;
		n -= 2;
	}
	v->value = malloc(n + 1);
	if (!v->value) {
		kf_fail(k, "out of memory");
		return 1;
	}
	memcpy(v->value, value, n);
	v->value[n] = '\0';
	v->set = true;
	v->line = k->lineno;
	k->prev_key = (long)idx;
	return 1;
}

/* inih leaves the last line in a buffer on its own stack; for secrets, overwrite the
 * stack it used. noinline so that this frame lies where inih's was. */
static __attribute__((noinline)) void kf_scrub_stack(void)
{
	volatile char pad[4096];

	OPENSSL_cleanse((void *)pad, sizeof(pad));
}

int bw_kf_parse(const struct bw_kf_schema *sc, const char *file, const char *buf, size_t len,
		struct bw_kf_value *vals, struct bw_cfg_error *err)
{
	struct bw_cfg_error scratch;
	struct kf_ctx k = {
		.sc = sc, .file = file ? file : "", .buf = buf, .len = buf ? len : 0,
		.prev_key = -1, .vals = vals, .err = err ? err : &scratch,
	};
	int rc;

	rc = ini_parse_stream(kf_reader, &k, kf_handler, &k);
	if (sc->secret)
		kf_scrub_stack();
	/* inih goes on after a syntax error; whichever problem comes first is the one to fix. */
	if (rc > 0 && (!k.failed || rc < k.err->line)) {
		k.failed = false;
		k.lineno = rc;
		kf_fail(&k, "the line is neither a [section] header nor 'key = value'; see "
			"docs/configuration.md");
	} else if (rc < 0 && !k.failed) {
		kf_fail(&k, "out of memory");
	}
	return k.failed ? -1 : 0;
}

void bw_kf_values_clear(struct bw_kf_value *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (vals[i].value) {
			OPENSSL_cleanse(vals[i].value, strlen(vals[i].value));
			free(vals[i].value);
		}
		vals[i].value = NULL;
		vals[i].set = false;
		vals[i].line = 0;
	}
}

int bw_kf_split_list(const char *value, char (*items)[BW_KF_ITEM_MAX], size_t max, size_t *n)
{
	size_t count = 0;
	const char *p = value;

	for (;;) {
		const char *end = strchr(p, ','), *b = p, *e;

		if (!end)
			end = p + strlen(p);
		e = end;
		while (b < e && kf_space((unsigned char)*b))
			b++;
		while (e > b && kf_space((unsigned char)e[-1]))
			e--;
		if (b == e)
			return BW_KF_LIST_EMPTY_ITEM;
		if ((size_t)(e - b) >= BW_KF_ITEM_MAX)
			return BW_KF_LIST_TOO_LONG;
		if (count == max)
			return BW_KF_LIST_TOO_MANY;
		count++;
		if (!*end)
			break;
		p = end + 1;
	}
	/* Second pass writes: nothing is touched when the list is bad. */
	p = value;
	for (size_t i = 0; i < count; i++) {
		const char *end = strchr(p, ','), *b = p, *e;

		if (!end)
			end = p + strlen(p);
		e = end;
		while (b < e && kf_space((unsigned char)*b))
			b++;
		while (e > b && kf_space((unsigned char)e[-1]))
			e--;
		memcpy(items[i], b, (size_t)(e - b));
		items[i][e - b] = '\0';
		p = end + 1;
	}
	*n = count;
	return 0;
}

int bw_kf_read_file(const char *path, bool nofollow, size_t max,
		    int (*check)(const char *path, const struct stat *st, struct bw_cfg_error *err),
		    char **out, size_t *outlen, struct bw_cfg_error *err)
{
	int fd, flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct stat stbuf, *st = &stbuf;
	size_t len = 0;
	char *buf;

	if (nofollow)
		flags |= O_NOFOLLOW;
	fd = open(path, flags);
	if (fd < 0) {
		if (errno == ELOOP && nofollow)
			bw_cfg_error_set(err, path, 0, "the file is a symbolic link; replace it with "
					 "the file it points to");
		else
			bw_cfg_error_set(err, path, 0, "cannot open the file (%s); check that it "
					 "exists and is readable", strerror(errno));
		return -1;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		bw_cfg_error_set(err, path, 0, "not a regular file; configuration must be in "
				 "plain files");
		close(fd);
		return -1;
	}
	if (check && check(path, st, err) != 0) {
		close(fd);
		return -1;
	}
	if ((uintmax_t)st->st_size > max) {
		bw_cfg_error_set(err, path, 0, "the file is larger than %zu KiB; is it the right "
				 "file?", max / 1024);
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (!buf) {
		bw_cfg_error_set(err, path, 0, "out of memory");
		close(fd);
		return -1;
	}
	/* The size may change under us; read no more than was allotted. */
	while (len < (size_t)st->st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st->st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			bw_cfg_error_set(err, path, 0, "cannot read the file (%s)", strerror(errno));
			OPENSSL_cleanse(buf, len);
			free(buf);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

bool bw_cfg_is_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= BW_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

bool bw_cfg_is_hostname(const char *s)
{
	size_t n = strlen(s), label = 0;
	bool all_digits = true;

	if (n == 0 || n > 253 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (!(c >= '0' && c <= '9'))
			all_digits = false;
		if (++label > 63)
			return false;
	}
	if (s[n - 1] == '-')
		return false;
	/* "10.1.2.300" is a mistyped address, not a name. */
	return !all_digits;
}

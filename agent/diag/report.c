/* The support report: files are written to a private temporary directory, every one through
 * the same scrubber, then packed by tar(1) into a file created with O_EXCL and mode 0600. */
#include "diag/report.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent.h"
#include "diag/doctor.h"
#include "proc.h"
#include "util.h"

#define REPORT_FILE_MAX (1024 * 1024)	/* a configuration file or a command's output */
#define CMD_TIMEOUT_MS 5000
#define TAR_TIMEOUT_MS 30000

/* ---- Growing text buffers ------------------------------------------------------------------ */

struct buf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *g = realloc(b->s, cap);

		if (!g) {
			b->oom = true;
			return;
		}
		b->s = g;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Returns the text (never NULL unless out of memory), owned by the caller. */
static char *buf_take(struct buf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

/* ---- Redaction ----------------------------------------------------------------------------- */

static const char *const secret_words[] = { "pass", "psk", "secret", "token" };

static bool has_secret_word(const char *s, size_t len)
{
	for (size_t w = 0; w < BW_ARRAY_SIZE(secret_words); w++) {
		size_t wl = strlen(secret_words[w]);

		for (size_t i = 0; i + wl <= len; i++)
			if (strncasecmp(s + i, secret_words[w], wl) == 0)
				return true;
	}
	return false;
}

bool bw_report_secret_key(const char *key, size_t len)
{
	return has_secret_word(key, len);
}

static bool kf_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line of a keyfile, classified as inih does (see agent/config/keyfile.c). */
struct kf_line {
	const char *p;
	size_t len;		/* without the newline */
	enum { L_BLANK, L_COMMENT, L_SECTION, L_KEY, L_CONT, L_JUNK } kind;
	const char *key;	/* L_KEY: name, trimmed */
	size_t key_len;
	const char *val;	/* L_KEY/L_CONT: value, trimmed */
	size_t val_len;
};

struct kf_iter {
	const char *text;
	size_t len, pos;
	bool in_key;		/* the last non-blank line was a key: an indented line continues it */
};

static bool kf_next(struct kf_iter *it, struct kf_line *l)
{
	const char *nl;
	size_t i = 0, n;

	if (it->pos >= it->len)
		return false;
	memset(l, 0, sizeof(*l));
	l->p = it->text + it->pos;
	nl = memchr(l->p, '\n', it->len - it->pos);
	n = nl ? (size_t)(nl - l->p) : it->len - it->pos;
	it->pos += n + (nl ? 1 : 0);
	l->len = n;
	while (i < n && kf_space(l->p[i]))
		i++;
	if (i == n) {
		l->kind = L_BLANK;
		return true;
	}
	if (l->p[i] == ';' || l->p[i] == '#') {
		l->kind = L_COMMENT;
		return true;
	}
	if (i > 0 && it->in_key) {
		l->kind = L_CONT;
		l->val = l->p + i;
		l->val_len = n - i;
		while (l->val_len && kf_space(l->val[l->val_len - 1]))
			l->val_len--;
		return true;
	}
	if (l->p[i] == '[') {
		l->kind = L_SECTION;
		it->in_key = false;
		return true;
	}
	{
		const char *start = l->p + i, *sep = NULL;

		for (size_t k = i; k < n; k++)
			if (l->p[k] == '=' || l->p[k] == ':') {
				sep = l->p + k;
				break;
			}
		if (!sep) {
			l->kind = L_JUNK;
			it->in_key = false;
			return true;
		}
		l->kind = L_KEY;
		l->key = start;
		l->key_len = (size_t)(sep - start);
		while (l->key_len && kf_space(start[l->key_len - 1]))
			l->key_len--;
		l->val = sep + 1;
		l->val_len = (size_t)(l->p + n - l->val);
		while (l->val_len && kf_space(l->val[0])) {
			l->val++;
			l->val_len--;
		}
		while (l->val_len && kf_space(l->val[l->val_len - 1]))
			l->val_len--;
		it->in_key = true;
	}
	return true;
}

static bool printable_name(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

char *bw_report_redact_keyfile(const char *text, size_t len, bool secrets_file)
{
	struct kf_iter it = { .text = text, .len = len };
	struct buf out = { 0 };
	struct kf_line l;
	bool redacting = false;		/* the current key's continuation lines go too */

	while (kf_next(&it, &l)) {
		switch (l.kind) {
		case L_BLANK:
			break;
		case L_COMMENT:
			/* A comment in a secrets file may well be an old secret. */
			if (secrets_file)
				continue;
			buf_add(&out, l.p, l.len);
			break;
		case L_SECTION:
			if (secrets_file && !printable_name(l.p + 1, strcspn(l.p + 1, "]")))
				buf_str(&out, "[" BW_REPORT_REMOVED "]");
			else
				buf_add(&out, l.p, l.len);
			redacting = false;
			break;
		case L_KEY:
			redacting = secrets_file || bw_report_secret_key(l.key, l.key_len);
			if (!redacting) {
				buf_add(&out, l.p, l.len);
				break;
			}
			if (printable_name(l.key, l.key_len))
				buf_add(&out, l.key, l.key_len);
			else
				buf_str(&out, BW_REPORT_REMOVED);
			buf_str(&out, " = " BW_REPORT_REMOVED);
			break;
		case L_CONT:
			if (redacting)
				continue;
			buf_add(&out, l.p, l.len);
			break;
		case L_JUNK:
			/* Not a key line: in a secrets file it can only be a stray secret. */
			if (secrets_file)
				continue;
			buf_add(&out, l.p, l.len);
			redacting = false;
			break;
		}
		buf_str(&out, "\n");
	}
	return buf_take(&out);
}

char *bw_report_redact_lua(const char *text, size_t len)
{
	struct buf out = { 0 };
	size_t pos = 0;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		pos += n + (nl ? 1 : 0);
		if (!has_secret_word(line, n)) {
			buf_add(&out, line, n);
		} else {
			/* Each '...' or "..." literal (escapes honoured) becomes "<removed>". */
			for (size_t i = 0; i < n;) {
				char q = line[i];

				if (q != '"' && q != '\'') {
					buf_add(&out, &line[i++], 1);
					continue;
				}
				for (i++; i < n && line[i] != q; i++)
					if (line[i] == '\\')
						i++;
				i++;
				buf_str(&out, "\"" BW_REPORT_REMOVED "\"");
			}
		}
		if (nl)
			buf_str(&out, "\n");
	}
	return buf_take(&out);
}

/* ---- Scrubbing known secrets everywhere ---------------------------------------------------- */

void bw_report_needles_add(struct bw_report_needles *nd, const char *s, size_t len)
{
	char *c;

	if (len < BW_REPORT_SCRUB_MIN)
		return;
	for (size_t i = 0; i < nd->n; i++)
		if (strlen(nd->v[i]) == len && memcmp(nd->v[i], s, len) == 0)
			return;
	if (nd->n == nd->cap) {
		size_t cap = nd->cap ? nd->cap * 2 : 16;
		char **g = realloc(nd->v, cap * sizeof(*g));

		if (!g)
			return;
		nd->v = g;
		nd->cap = cap;
	}
	if (!(c = malloc(len + 1)))
		return;
	memcpy(c, s, len);
	c[len] = '\0';
	nd->v[nd->n++] = c;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void needles_value(struct bw_report_needles *nd, const char *v, size_t n)
{
	char dec[256];
	size_t cut = n, dn = 0;

	bw_report_needles_add(nd, v, n);
	/* inih ends a value at " ;" (an inline comment). */
	for (size_t i = 1; i < n; i++)
		if (v[i] == ';' && kf_space(v[i - 1])) {
			cut = i;
			break;
		}
	while (cut && kf_space(v[cut - 1]))
		cut--;
	bw_report_needles_add(nd, v, cut);
	if (cut >= 2 && (v[0] == '"' || v[0] == '\'') && v[cut - 1] == v[0])
		bw_report_needles_add(nd, v + 1, cut - 2);
	if (cut > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') && (cut - 2) % 2 == 0 &&
	    (cut - 2) / 2 < sizeof(dec)) {
		for (size_t i = 2; i + 1 < cut; i += 2) {
			int hi = hexval(v[i]), lo = hexval(v[i + 1]);

			if (hi < 0 || lo < 0)
				return;
			dec[dn++] = (char)(hi << 4 | lo);
		}
		bw_report_needles_add(nd, dec, dn);
		OPENSSL_cleanse(dec, sizeof(dec));
	}
}

void bw_report_needles_from_keyfile(struct bw_report_needles *nd, const char *text, size_t len,
				    bool secrets_file)
{
	struct kf_iter it = { .text = text, .len = len };
	struct kf_line l;
	bool secret = false;

	while (kf_next(&it, &l)) {
		if (l.kind == L_KEY) {
			secret = secrets_file || bw_report_secret_key(l.key, l.key_len);
			if (secret)
				needles_value(nd, l.val, l.val_len);
		} else if (l.kind == L_CONT && secret) {
			needles_value(nd, l.val, l.val_len);
		} else if (l.kind == L_JUNK && secrets_file) {
			const char *s = l.p;
			size_t n = l.len;

			while (n && kf_space(*s)) {
				s++;
				n--;
			}
			while (n && kf_space(s[n - 1]))
				n--;
			needles_value(nd, s, n);
		} else if (l.kind == L_SECTION) {
			secret = false;
		}
	}
}

void bw_report_needles_free(struct bw_report_needles *nd)
{
	for (size_t i = 0; i < nd->n; i++) {
		OPENSSL_cleanse(nd->v[i], strlen(nd->v[i]));
		free(nd->v[i]);
	}
	free(nd->v);
	memset(nd, 0, sizeof(*nd));
}

char *bw_report_scrub(const struct bw_report_needles *nd, const char *text, size_t len)
{
	struct buf out = { 0 };
	size_t i = 0, lit = 0;

	while (i < len) {
		size_t best = 0;

		/* The longest needle wins, so that "secret" inside "secret42" does not leave "42". */
		for (size_t k = 0; nd && k < nd->n; k++) {
			size_t nl = strlen(nd->v[k]);

			if (nl > best && nl <= len - i && memcmp(text + i, nd->v[k], nl) == 0)
				best = nl;
		}
		if (!best) {
			i++;
			continue;
		}
		buf_add(&out, text + lit, i - lit);
		buf_str(&out, BW_REPORT_REMOVED);
		i += best;
		lit = i;
	}
	buf_add(&out, text + lit, len - lit);
	return buf_take(&out);
}

/* Scrubs every string of a JSON value in place: what json_dumps would escape is compared
 * before escaping. */
static void scrub_json(const struct bw_report_needles *nd, json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		void *tmp;

		json_object_foreach_safe(j, tmp, key, v) {
			if (json_is_string(v)) {
				char *s = bw_report_scrub(nd, json_string_value(v), json_string_length(v));

				json_object_set_new(j, key, json_stringn(s ? s : BW_REPORT_REMOVED,
									 s ? strlen(s) : strlen(BW_REPORT_REMOVED)));
				free(s);
			} else {
				scrub_json(nd, v);
			}
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (json_is_string(v)) {
				char *s = bw_report_scrub(nd, json_string_value(v), json_string_length(v));

				json_array_set_new(j, i, json_string(s ? s : BW_REPORT_REMOVED));
				free(s);
			} else {
				scrub_json(nd, v);
			}
		}
	}
}

/* ---- Files and processes ------------------------------------------------------------------- */

static int read_small(const char *path, char **out, size_t *len)
{
	struct buf b = { 0 };
	char chunk[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && b.len < REPORT_FILE_MAX)
		buf_add(&b, chunk, (size_t)n);
	close(fd);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	*out = buf_take(&b);
	*len = *out ? b.len : 0;
	return *out ? 0 : -ENOMEM;
}

struct report_ctx {
	struct bw_agent *a;
	char root[PATH_MAX];		/* the private temporary directory */
	char top[64];			/* burrow-report-DATE, the directory inside the archive */
	struct bw_report_needles nd;
	int failed;			/* errno of the first failure */
};

/* Writes rel (under top) with text scrubbed; creates the directories on the way. */
static void put(struct report_ctx *r, const char *rel, const char *text, size_t len)
{
	char path[PATH_MAX + 256];
	char *clean;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", r->root, r->top, rel);
	for (char *p = path + strlen(r->root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST && !r->failed)
			r->failed = errno;
		*p = '/';
	}
	clean = bw_report_scrub(&r->nd, text, len);
	if (!clean) {
		r->failed = r->failed ? r->failed : ENOMEM;
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, clean, strlen(clean)) != (ssize_t)strlen(clean)) {
		if (!r->failed)
			r->failed = errno ? errno : EIO;
	}
	if (fd >= 0)
		close(fd);
	free(clean);
}

static void put_json(struct report_ctx *r, const char *rel, json_t *j)
{
	char *s;

	scrub_json(&r->nd, j);
	s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!s) {
		r->failed = r->failed ? r->failed : ENOMEM;
		return;
	}
	put(r, rel, s, strlen(s));
	free(s);
}

/* Runs argv (absolute path, no shell) with stdout into out_fd and stderr into err_fd, through
 * the agent's one child-process module. The exit status, 128+signal, or -errno. */
static int run(const char *const argv[], int out_fd, int err_fd, int timeout_ms)
{
	static char *const env_add[] = { "LC_ALL=C", NULL };

	return bw_child_run_sync_to((char *const *)argv, env_add, out_fd, err_fd, timeout_ms / 1000.0);
}

static const char *find_prog(const char *const *candidates)
{
	for (; *candidates; candidates++)
		if (access(*candidates, X_OK) == 0)
			return *candidates;
	return NULL;
}

/* Appends "## title" and the output of argv to b; a missing program is said, not fatal. */
static void env_cmd(struct report_ctx *r, struct buf *b, const char *title, const char *const *progs,
		    const char *const *args)
{
	const char *argv[16];
	const char *prog = find_prog(progs);
	char out[PATH_MAX + 16], *text = NULL;
	size_t n = 0, len = 0;
	int fd, rc;

	buf_printf(b, "\n## %s\n", title);
	if (!prog) {
		buf_printf(b, "(%s is not installed)\n", progs[0]);
		return;
	}
	argv[n++] = prog;
	for (; *args && n < BW_ARRAY_SIZE(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	snprintf(out, sizeof(out), "%s/cmd.out", r->root);
	fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		buf_printf(b, "(cannot run: %s)\n", strerror(errno));
		return;
	}
	rc = run(argv, fd, fd, CMD_TIMEOUT_MS);
	close(fd);
	if (read_small(out, &text, &len) == 0) {
		buf_add(b, text, len);
		free(text);
	}
	unlink(out);
	if (rc == -ETIMEDOUT)
		buf_printf(b, "(stopped after %d s)\n", CMD_TIMEOUT_MS / 1000);
	else if (rc != 0)
		buf_printf(b, "(exit status %d)\n", rc);
}

/* ---- The report's files -------------------------------------------------------------------- */

static void write_version(struct report_ctx *r)
{
	struct bw_agent *a = r->a;
	struct buf b = { 0 };
	struct utsname u;
	time_t now = time(NULL);
	char when[64];
	char *text;

	buf_printf(&b, "burrow %s\n", BURROW_VERSION);
	if (uname(&u) == 0)
		buf_printf(&b, "system: %s %s %s %s %s\n", u.sysname, u.nodename, u.release, u.version, u.machine);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	buf_printf(&b, "date: %s\n", when);
	if (a->started) {
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&a->started));
		buf_printf(&b, "agent started: %s\n", when);
	}
	buf_printf(&b, "config dir: %s\nstate dir: %s\nsocket: %s\n", a->opts.config_dir, a->opts.state_dir,
		   a->opts.socket_path);
	buf_printf(&b, "backend: %s\nike_port: %u\nnatt_port: %u\nconnections: %zu\n", bw_backend_name(a->cfg.backend),
		   a->cfg.ike_port, a->cfg.natt_port, a->n_conns);
	if ((text = buf_take(&b))) {
		put(r, "version.txt", text, strlen(text));
		free(text);
	}
}

static void write_environment(struct report_ctx *r)
{
	static const char *const ip[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip", NULL };
	static const char *const nft[] = { "/usr/sbin/nft", "/sbin/nft", NULL };
	static const char *const modules[] = { "esp4", "esp6", "xfrm_user", "xfrm_interface", "tun", "af_key" };
	struct buf b = { 0 };
	char *text;
	size_t len;

	buf_str(&b, "# What the host looks like to burrowd. `ip xfrm state` is left out on purpose: it prints keys.\n");
	buf_str(&b, "\n## kernel modules (/sys/module)\n");
	for (size_t i = 0; i < BW_ARRAY_SIZE(modules); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/sys/module/%s", modules[i]);
		buf_printf(&b, "%s: %s\n", modules[i], access(path, F_OK) == 0 ? "loaded"
							: "not loaded (or built into the kernel)");
	}
	if (read_small("/etc/os-release", &text, &len) == 0) {
		buf_str(&b, "\n## /etc/os-release\n");
		buf_add(&b, text, len);
		free(text);
	}
	env_cmd(r, &b, "ip -o link", ip, (const char *const[]){ "-o", "link", "show", NULL });
	env_cmd(r, &b, "ip -o addr", ip, (const char *const[]){ "-o", "addr", "show", NULL });
	env_cmd(r, &b, "ip route show table all", ip, (const char *const[]){ "route", "show", "table", "all", NULL });
	env_cmd(r, &b, "ip rule", ip, (const char *const[]){ "rule", "show", NULL });
	env_cmd(r, &b, "ip xfrm policy", ip, (const char *const[]){ "xfrm", "policy", "show", NULL });
	env_cmd(r, &b, "nft list ruleset", nft, (const char *const[]){ "list", "ruleset", NULL });
	if (read_small("/etc/resolv.conf", &text, &len) == 0) {
		buf_str(&b, "\n## /etc/resolv.conf\n");
		buf_add(&b, text, len);
		free(text);
	}
	if ((text = buf_take(&b))) {
		put(r, "environment.txt", text, strlen(text));
		free(text);
	}
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Names in dir ending with suffix, sorted; NULL-terminated, malloc'd (NULL when none). */
static char **list_dir(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		char **g;

		if (e->d_name[0] == '.' || !has_suffix(e->d_name, suffix))
			continue;
		if (!(g = realloc(v, (n + 2) * sizeof(*v))))
			break;
		v = g;
		if ((v[n] = strdup(e->d_name)))
			n++;
		v[n] = NULL;
	}
	closedir(d);
	if (v)
		qsort(v, n, sizeof(*v), name_cmp);
	return v;
}

static void free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

enum kind { K_CONF, K_SECRETS, K_LUA };

/* Reads every secret value before anything is written, so that the scrubber knows them all. */
static void collect_needles(struct report_ctx *r)
{
	static const struct { const char *dir, *suffix; bool secrets; } where[] = {
		{ "secrets", ".secrets", true },
		{ "connections", ".conf", false },
		{ ".", ".conf", false },
	};

	for (size_t w = 0; w < BW_ARRAY_SIZE(where); w++) {
		char dir[PATH_MAX + 32];
		char **names;

		snprintf(dir, sizeof(dir), "%s/%s", r->a->opts.config_dir, where[w].dir);
		names = list_dir(dir, where[w].suffix);
		for (size_t i = 0; names && names[i]; i++) {
			char path[PATH_MAX + 320], *text;
			size_t len;

			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			if (read_small(path, &text, &len) != 0)
				continue;
			bw_report_needles_from_keyfile(&r->nd, text, len, where[w].secrets);
			OPENSSL_cleanse(text, len);
			free(text);
		}
		free_list(names);
	}
}

static void copy_config(struct report_ctx *r, const char *sub, const char *suffix, enum kind kind)
{
	char dir[PATH_MAX + 32];
	char **names;

	snprintf(dir, sizeof(dir), "%s/%s", r->a->opts.config_dir, sub);
	names = list_dir(dir, suffix);
	for (size_t i = 0; names && names[i]; i++) {
		char path[PATH_MAX + 320], rel[PATH_MAX], *text, *red;
		size_t len;
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		snprintf(rel, sizeof(rel), "configuration/%s%s%s", strcmp(sub, ".") ? sub : "",
			 strcmp(sub, ".") ? "/" : "", names[i]);
		if ((rc = read_small(path, &text, &len)) != 0) {
			char note[256];

			snprintf(note, sizeof(note), "(not readable: %s)\n", strerror(-rc));
			put(r, rel, note, strlen(note));
			continue;
		}
		red = kind == K_LUA ? bw_report_redact_lua(text, len)
				    : bw_report_redact_keyfile(text, len, kind == K_SECRETS);
		OPENSSL_cleanse(text, len);
		free(text);
		if (red) {
			put(r, rel, red, strlen(red));
			free(red);
		}
	}
	free_list(names);
}

static void write_logs(struct report_ctx *r)
{
	json_t *status = json_array();

	for (size_t i = 0; i < r->a->n_conns; i++) {
		const struct bw_conn *c = r->a->conns[i];
		json_t *lines = bw_conn_log_json(c, BW_LOG_DEBUG, 0), *l;
		struct buf b = { 0 };
		char rel[BW_NAME_MAX + 16], *text;
		size_t k;

		json_array_append_new(status, bw_conn_to_json(c, true));
		json_array_foreach(lines, k, l) {
			double t = json_number_value(json_object_get(l, "time"));
			time_t secs = (time_t)t;
			struct tm tm;
			char when[32];

			gmtime_r(&secs, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			buf_printf(&b, "%s.%03d %-5s ", when, (int)((t - (double)secs) * 1000),
				   json_string_value(json_object_get(l, "level")));
			buf_str(&b, json_string_value(json_object_get(l, "msg")) ? json_string_value(json_object_get(l, "msg")) : "");
			buf_str(&b, "\n");
		}
		json_decref(lines);
		snprintf(rel, sizeof(rel), "logs/%s.log", c->name);
		if ((text = buf_take(&b))) {
			put(r, rel, text, strlen(text));
			free(text);
		}
	}
	put_json(r, "status.json", status);
}

static void write_events(struct report_ctx *r)
{
	json_t *evs = bw_events_recent(&r->a->events), *e;
	struct buf b = { 0 };
	char *text;
	size_t i;

	scrub_json(&r->nd, evs);
	json_array_foreach(evs, i, e) {
		char *s = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);

		if (s) {
			buf_str(&b, s);
			buf_str(&b, "\n");
			free(s);
		}
	}
	json_decref(evs);
	if ((text = buf_take(&b))) {
		put(r, "events.jsonl", text, strlen(text));
		free(text);
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int bw_report_tar(const char *parent, const char *top, int out_fd, char *err, size_t errlen)
{
	static const char *const tars[] = { "/usr/bin/tar", "/bin/tar", NULL };
	const char *tar = find_prog(tars);
	const char *argv[] = { tar, "--numeric-owner", "--owner=0", "--group=0", "-czf", "-", "-C", parent, top, NULL };
	char errpath[PATH_MAX + 16], *msg = NULL;
	size_t len;
	int efd, rc;

	if (!tar) {
		snprintf(err, errlen, "tar is not installed; install it (apt install tar gzip)");
		return -1;
	}
	snprintf(errpath, sizeof(errpath), "%s/tar.err", parent);
	efd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (efd < 0) {
		snprintf(err, errlen, "cannot write in %s: %s", parent, strerror(errno));
		return -1;
	}
	rc = run(argv, out_fd, efd, TAR_TIMEOUT_MS);
	close(efd);
	if (rc != 0) {
		if (read_small(errpath, &msg, &len) == 0 && len)
			msg[strcspn(msg, "\n")] = '\0';
		snprintf(err, errlen, "tar failed (%s): %s", rc < 0 ? strerror(-rc) : "exit status",
			 msg && *msg ? msg : "no message; is gzip installed?");
		free(msg);
		unlink(errpath);
		return -1;
	}
	unlink(errpath);
	return 0;
}

/* A private directory for the files: in the state directory (root's) when it exists. */
static int make_root(struct report_ctx *r, char *err, size_t errlen)
{
	const char *bases[] = { r->a->opts.state_dir, getenv("TMPDIR"), "/tmp" };

	for (size_t i = 0; i < BW_ARRAY_SIZE(bases); i++) {
		if (!bases[i] || !bases[i][0])
			continue;
		if (snprintf(r->root, sizeof(r->root), "%s/.burrow-report-XXXXXX", bases[i]) >= (int)sizeof(r->root))
			continue;	/* a base path this long cannot hold the report */
		if (mkdtemp(r->root))
			return 0;
	}
	snprintf(err, errlen, "cannot create a temporary directory: %s", strerror(errno));
	r->root[0] = '\0';
	return -1;
}

int bw_report_write_as(struct bw_agent *a, const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct report_ctx r = { .a = a };
	time_t now = time(NULL);
	struct tm tm;
	int fd, rc = -1, saved;
	uid_t old_uid = 0;
	gid_t old_gid = 0;
	bool as_user = uid != (uid_t)-1;

	if (!path || path[0] != '/') {
		snprintf(err, errlen, "the report path must be absolute");
		return -1;
	}
	/* Created first, with O_EXCL: an existing file is never overwritten, and a refusal
	 * costs nothing. With setfsuid the kernel checks the directory as the user would. */
	if (as_user) {
		old_gid = (gid_t)setfsgid(gid);
		old_uid = (uid_t)setfsuid(uid);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	saved = errno;
	if (as_user) {
		setfsuid(old_uid);
		setfsgid(old_gid);
	}
	if (fd < 0) {
		if (saved == EEXIST)
			snprintf(err, errlen, "%s already exists; burrowd never overwrites a file, so choose another name", path);
		else if (saved == ENOENT || saved == ENOTDIR)
			snprintf(err, errlen, "the directory of %s does not exist; create it or choose another path", path);
		else
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(saved));
		return -1;
	}
	fchmod(fd, 0600);

	gmtime_r(&now, &tm);
	strftime(r.top, sizeof(r.top), "burrow-report-%Y%m%d-%H%M%S", &tm);
	if (make_root(&r, err, errlen) != 0)
		goto out;

	collect_needles(&r);
	write_version(&r);
	write_environment(&r);
	put_json(&r, "doctor.json", bw_doctor_run(a, NULL));
	copy_config(&r, ".", ".conf", K_CONF);
	copy_config(&r, "connections", ".conf", K_CONF);
	copy_config(&r, "secrets", ".secrets", K_SECRETS);
	copy_config(&r, "policies", ".lua", K_LUA);
	write_logs(&r);
	write_events(&r);
	if (r.failed) {
		snprintf(err, errlen, "cannot write the report's files in %s: %s", r.root, strerror(r.failed));
		goto out;
	}
	if (bw_report_tar(r.root, r.top, fd, err, errlen) != 0)
		goto out;
	if (fsync(fd) != 0 && errno != EINVAL) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	if (rc != 0) {
		if (as_user) {
			old_gid = (gid_t)setfsgid(gid);
			old_uid = (uid_t)setfsuid(uid);
		}
		unlink(path);
		if (as_user) {
			setfsuid(old_uid);
			setfsgid(old_gid);
		}
	}
	if (r.root[0])
		nftw(r.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	bw_report_needles_free(&r.nd);
	return rc;
}

int bw_report_write(struct bw_agent *a, const char *path, char *err, size_t errlen)
{
	return bw_report_write_as(a, path, (uid_t)-1, (gid_t)-1, err, errlen);
}

json_t *bw_report_request_as(struct bw_agent *a, const char *path, uid_t uid, gid_t gid, char *err,
			     size_t errlen)
{
	if (!path || !*path) {
		snprintf(err, errlen, "say where to write the report: burrow report -o FILE");
		return NULL;
	}
	if (bw_report_write_as(a, path, uid, gid, err, errlen) != 0)
		return NULL;
	return json_pack("{s:s}", "path", path);
}

json_t *bw_report_request(struct bw_agent *a, const char *path, char *err, size_t errlen)
{
	return bw_report_request_as(a, path, (uid_t)-1, (gid_t)-1, err, errlen);
}

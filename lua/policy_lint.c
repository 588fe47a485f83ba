/* The static half of `burrow policy check`: reads a policy's text (without running it) for
 * burrow.on with an unknown event name and burrow.start/stop/restart of a connection that
 * the config dir does not have, where the name is a literal or a one-line string constant. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/events.h"
#include "policy_sim.h"

struct lint_const {
	char name[64], value[256];
};

/* The line with comments blanked out (strings kept); *in_long tracks --[[ ]] blocks. */
static void strip_comment(char *s, int *in_long)
{
	char quote = 0;

	for (char *p = s; *p; p++) {
		if (*in_long) {
			char *end = strstr(p, "]]");

			memset(p, ' ', end ? (size_t)(end + 2 - p) : strlen(p));
			if (!end)
				return;
			*in_long = 0;
			p = end + 1;
			continue;
		}
		if (quote) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (p[0] == '-' && p[1] == '-') {
			if (p[2] == '[' && p[3] == '[') {
				*in_long = 1;
				memset(p, ' ', 4);
				p += 3;
				continue;
			}
			*p = '\0';
			return;
		}
	}
}

/* A quoted literal at p (after blanks): copies it to out, returns the end, or NULL. */
static const char *literal(const char *p, char *out, size_t outlen)
{
	char q;
	size_t n = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (*p != '"' && *p != '\'')
		return NULL;
	q = *p++;
	while (*p && *p != q && *p != '\\' && n + 1 < outlen)
		out[n++] = *p++;
	out[n] = '\0';
	return *p == q ? p + 1 : NULL;
}

static const char *ident(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (!isalpha((unsigned char)*p) && *p != '_')
		return NULL;
	while ((isalnum((unsigned char)*p) || *p == '_') && n + 1 < outlen)
		out[n++] = *p++;
	out[n] = '\0';
	return p;
}

static bool known_conn(const json_t *conns, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(conns, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return true;
	return false;
}

json_t *bw_policy_lint_text(const char *path, const json_t *conns, const char *config_dir)
{
	static const char *const verbs[] = { "start", "stop", "restart", "on" };
	json_t *out = json_array();
	struct lint_const consts[64];
	size_t n_consts = 0;
	char line[4096];
	int lineno = 0, in_long = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return out;
	while (fgets(line, sizeof(line), f)) {
		char id[64], val[256];
		const char *p;

		lineno++;
		strip_comment(line, &in_long);
		/* local NAME = "value" (or NAME = "value"): a constant used as a name later. */
		p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "local", 5) == 0 && isspace((unsigned char)p[5]))
			p += 5;
		if ((p = ident(p, id, sizeof(id)))) {
			while (isspace((unsigned char)*p))
				p++;
			if (*p == '=' && p[1] != '=' && (p = literal(p + 1, val, sizeof(val)))) {
				while (isspace((unsigned char)*p))
					p++;
				if (*p == '\0' && n_consts < sizeof(consts) / sizeof(consts[0])) {
					snprintf(consts[n_consts].name, sizeof(consts[0].name), "%s", id);
					snprintf(consts[n_consts].value, sizeof(consts[0].value), "%s", val);
					n_consts++;
				}
			}
		}
		for (const char *at = line; (at = strstr(at, "burrow.")); at++) {
			const char *q = at + 7;
			size_t v;

			if (at > line && (isalnum((unsigned char)at[-1]) || at[-1] == '_' || at[-1] == '.'))
				continue;
			for (v = 0; v < 4; v++) {
				size_t len = strlen(verbs[v]);

				if (strncmp(q, verbs[v], len) == 0 && !isalnum((unsigned char)q[len]) && q[len] != '_')
					break;
			}
			if (v == 4)
				continue;
			q += strlen(verbs[v]);
			while (isspace((unsigned char)*q))
				q++;
			if (*q != '(')
				continue;
			q++;
			if (!literal(q, val, sizeof(val))) {
				/* A constant defined on its own line earlier. */
				const char *e = ident(q, id, sizeof(id));
				size_t k;

				if (!e)
					continue;
				while (isspace((unsigned char)*e))
					e++;
				if (*e != ')' && *e != ',')
					continue;
				for (k = n_consts; k-- > 0;)
					if (strcmp(consts[k].name, id) == 0)
						break;
				if (k == (size_t)-1)
					continue;
				snprintf(val, sizeof(val), "%s", consts[k].value);
			}
			if (v == 3) {
				if (!bw_event_name_known(val) && strcmp(val, "policy_disabled") != 0 && strcmp(val, "policy_error") != 0)
					json_array_append_new(out, json_sprintf("%s:%d: burrow.on: unknown event '%s'", path,
										 lineno, val));
			} else if (conns && !known_conn(conns, val)) {
				json_array_append_new(out, json_sprintf("%s:%d: burrow.%s: no connection named '%s' in %s/connections",
									 path, lineno, verbs[v], val, config_dir));
			}
		}
	}
	fclose(f);
	return out;
}

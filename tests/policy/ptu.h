/* Helpers shared by the policy tests: policy files in a temporary directory, replays through
 * the simulator, and searches in its transcript. Included by one test binary each. */
#ifndef BURROW_TESTS_POLICY_PTU_H
#define BURROW_TESTS_POLICY_PTU_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua/policy_sim.h"

static char ptu_dir[] = "/tmp/burrow-policy-test-XXXXXX";

static __attribute__((unused)) const char *ptu_write(const char *name, const char *text)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];
	FILE *f;

	if (ptu_dir[sizeof(ptu_dir) - 2] == 'X' && !mkdtemp(ptu_dir))
		abort();
	snprintf(p, 512, "%s/%s", ptu_dir, name);
	f = fopen(p, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
	return p;
}

static __attribute__((unused)) void ptu_cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ptu_dir);
	if (ptu_dir[sizeof(ptu_dir) - 2] != 'X' && system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", ptu_dir);
}

/* The source tree: BURROW_SRC, else derived from this file's path. */
static __attribute__((unused)) const char *ptu_src(void)
{
	static char buf[512];
	const char *env = getenv("BURROW_SRC");
	const char *f = __FILE__;
	const char *end = strstr(f, "tests/policy/");

	if (env)
		return env;
	if (!end || end == f)
		return ".";
	snprintf(buf, sizeof(buf), "%.*s", (int)(end - f - 1), f);
	return buf;
}

struct ptu_run {
	char *out;		/* the transcript (free it) */
	unsigned errors;
	int replay_rc;
};

/* Loads the policy files (NULL-terminated) and replays trace_text. */
static __attribute__((unused)) struct ptu_run ptu_replay(const char *const *files, const char *trace_text)
{
	struct ptu_run r = { 0 };
	size_t len;
	FILE *out = open_memstream(&r.out, &len);
	struct bw_policy_sim *s = bw_policy_sim_new(out);
	FILE *trace = fmemopen((void *)trace_text, strlen(trace_text), "r");
	char err[512] = "";

	for (size_t i = 0; files[i]; i++)
		bw_policy_sim_load(s, files[i]);
	r.replay_rc = bw_policy_sim_replay(s, trace, "trace", err, sizeof(err));
	if (r.replay_rc)
		printf("# replay: %s\n", err);
	r.errors = bw_policy_sim_errors(s);
	bw_policy_sim_free(s);
	fclose(trace);
	fclose(out);
	return r;
}

static __attribute__((unused)) struct ptu_run ptu_run1(const char *policy_text, const char *trace_text)
{
	const char *files[] = { ptu_write("policy.lua", policy_text), NULL };

	return ptu_replay(files, trace_text);
}

static __attribute__((unused)) int ptu_has(const char *out, const char *needle)
{
	return out && strstr(out, needle) != NULL;
}

static __attribute__((unused)) int ptu_count(const char *out, const char *needle)
{
	int n = 0;

	for (const char *p = out; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

#endif

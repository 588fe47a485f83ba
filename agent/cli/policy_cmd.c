/* `burrow policy check FILE...` and `burrow policy test FILE... --events TRACE.jsonl`:
 * the policy host of the agent against the simulator of lua/policy_sim.c; no daemon. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/policy_sim.h"
#include "policy_cmd.h"

#define USAGE "usage: burrow policy check FILE... [--config-dir DIR] | policy test FILE... --events TRACE.jsonl [--config-dir DIR] [--json]\n"

/* Host messages say "not loaded: FILE:LINE: ..."; the user wants FILE:LINE first. */
static void print_problem(const char *file, const char *msg)
{
	const char *at = strstr(msg, file);

	if (at)
		fprintf(stderr, "%s\n", at);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

static bool json_flag;

void bw_cli_policy_set_json(int on)
{
	json_flag = on != 0;
}

static bool seen(const json_t *list, const char *msg)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(v), msg) == 0)
			return true;
	return false;
}

static int check(int argc, char **argv)
{
	const char *config_dir = NULL;
	json_t *conns = NULL;
	int status = 0, n_files = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc) {
			config_dir = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "burrow: unknown option %s\n" USAGE, argv[i]);
			return 2;
		} else {
			argv[n_files++] = argv[i];
		}
	}
	if (n_files < 1) {
		fputs(USAGE, stderr);
		return 2;
	}
	if (config_dir) {
		struct bw_policy_sim *s = bw_policy_sim_new(NULL);
		char err[512];

		if (!s || bw_policy_sim_load_config_dir(s, config_dir, err, sizeof(err)) != 0) {
			fprintf(stderr, "burrow: %s\n", s ? err : "out of memory");
			bw_policy_sim_free(s);
			return 2;
		}
		conns = bw_policy_sim_connection_names(s);
		bw_policy_sim_free(s);
	}
	for (int i = 0; i < n_files; i++) {
		struct bw_policy_sim *s = bw_policy_sim_new(NULL);
		json_t *lint, *text_lint, *m;
		size_t k;
		int rc;

		if (!s) {
			fprintf(stderr, "burrow: out of memory\n");
			json_decref(conns);
			return 1;
		}
		if (config_dir) {
			char err[512];

			bw_policy_sim_load_config_dir(s, config_dir, err, sizeof(err));
		}
		rc = bw_policy_sim_load(s, argv[i]);
		lint = bw_policy_sim_lint(s);
		/* The text too: burrow.on inside handlers, names passed to start/stop/restart. */
		text_lint = bw_policy_lint_text(argv[i], conns, config_dir);
		json_array_foreach(text_lint, k, m)
			if (!seen(lint, json_string_value(m)))
				json_array_append(lint, m);
		json_array_foreach(bw_policy_sim_messages(s), k, m)
			print_problem(argv[i], json_string_value(m));
		json_array_foreach(lint, k, m)
			print_problem(argv[i], json_string_value(m));
		if (rc != 0 || bw_policy_sim_errors(s) || json_array_size(lint))
			status = 1;
		else
			printf("%s: ok\n", argv[i]);
		json_decref(lint);
		json_decref(text_lint);
		bw_policy_sim_free(s);
	}
	json_decref(conns);
	return status;
}

static int test(int argc, char **argv)
{
	const char *trace = NULL, *config_dir = NULL;
	bool json = json_flag;
	struct bw_policy_sim *s;
	char err[512];
	int n_files = 0, status;
	FILE *f;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
			trace = argv[++i];
		else if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc)
			config_dir = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "burrow: unknown option %s\n" USAGE, argv[i]);
			return 2;
		} else
			argv[n_files++] = argv[i];
	}
	if (!trace || n_files == 0) {
		fputs(USAGE, stderr);
		return 2;
	}
	f = strcmp(trace, "-") == 0 ? stdin : fopen(trace, "r");
	if (!f) {
		fprintf(stderr, "burrow: cannot open the trace %s; check the path\n", trace);
		return 2;
	}
	s = bw_policy_sim_new(stdout);
	if (!s) {
		fprintf(stderr, "burrow: out of memory\n");
		return 1;
	}
	bw_policy_sim_set_json(s, json);
	if (config_dir && bw_policy_sim_load_config_dir(s, config_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "burrow: %s\n", err);
		bw_policy_sim_free(s);
		return 2;
	}
	for (int i = 0; i < n_files; i++)
		bw_policy_sim_load(s, argv[i]);
	if (bw_policy_sim_replay(s, f, trace, err, sizeof(err)) != 0) {
		fprintf(stderr, "burrow: %s\n", err);
		status = 2;
	} else if (bw_policy_sim_errors(s)) {
		fprintf(stderr, "burrow: policies raised %u error(s); see the log lines above\n", bw_policy_sim_errors(s));
		status = 1;
	} else {
		status = 0;
	}
	if (f != stdin)
		fclose(f);
	bw_policy_sim_free(s);
	return status;
}

int bw_cli_policy(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return check(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return test(argc - 2, argv + 2);
	if (argc >= 2 && argv[1][0] == '-' && argv[1][1])
		fprintf(stderr, "burrow: unknown option %s for policy; burrow policy --help lists its options\n", argv[1]);
	fputs(USAGE, stderr);
	return 2;
}

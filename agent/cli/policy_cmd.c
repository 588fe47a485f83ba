/* `burrow policy check FILE...` and `burrow policy test FILE... --events TRACE.jsonl`:
 * the policy host of the agent against the simulator of lua/policy_sim.c; no daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/policy_sim.h"
#include "policy_cmd.h"

#define USAGE "usage: burrow policy check FILE... | policy test FILE... --events TRACE.jsonl [--config-dir DIR]\n"

/* Host messages say "not loaded: FILE:LINE: ..."; the user wants FILE:LINE first. */
static void print_problem(const char *file, const char *msg)
{
	const char *at = strstr(msg, file);

	if (at)
		fprintf(stderr, "%s\n", at);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

static int check(int argc, char **argv)
{
	int status = 0;

	if (argc < 1) {
		fputs(USAGE, stderr);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		struct bw_policy_sim *s = bw_policy_sim_new(NULL);
		json_t *lint, *m;
		size_t k;
		int rc;

		if (!s) {
			fprintf(stderr, "burrow: out of memory\n");
			return 1;
		}
		rc = bw_policy_sim_load(s, argv[i]);
		lint = bw_policy_sim_lint(s);
		json_array_foreach(bw_policy_sim_messages(s), k, m)
			print_problem(argv[i], json_string_value(m));
		json_array_foreach(lint, k, m)
			print_problem(argv[i], json_string_value(m));
		if (rc != 0 || bw_policy_sim_errors(s) || json_array_size(lint))
			status = 1;
		else
			printf("%s: ok\n", argv[i]);
		json_decref(lint);
		bw_policy_sim_free(s);
	}
	return status;
}

static int test(int argc, char **argv)
{
	const char *trace = NULL, *config_dir = NULL;
	struct bw_policy_sim *s;
	char err[512];
	int n_files = 0, status;
	FILE *f;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
			trace = argv[++i];
		else if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc)
			config_dir = argv[++i];
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
	fputs(USAGE, stderr);
	return 2;
}

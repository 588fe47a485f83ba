/* `burrow doctor` prints the agent's checks as OK/WARN/FAIL lines with what to do;
 * `burrow report` asks the agent to write the support report and says where it is. */
#include "diag_cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

#define EXIT_USAGE 2

/* One request, one reply: the result (new reference) or NULL after printing the error. */
static json_t *call(const char *socket_path, const char *cmd, json_t *args, int *status)
{
	struct bw_client cl = { .fd = -1 };
	json_t *reply, *res = NULL;

	*status = 1;
	if (bw_client_connect(&cl, socket_path) != 0) {
		json_decref(args);
		return NULL;
	}
	if (bw_client_send(&cl, cmd, args) != 0 || !(reply = bw_client_read(&cl))) {
		bw_client_close(&cl);
		return NULL;
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		res = json_incref(json_object_get(reply, "result"));
		if (!res)
			res = json_null();
		*status = 0;
	} else {
		const char *e = json_string_value(json_object_get(reply, "error"));
		const char *code = json_string_value(json_object_get(reply, "code"));

		fprintf(stderr, "burrow: %s\n", e ? e : "burrowd refused the request");
		if (code && strcmp(code, "usage") == 0)
			*status = EXIT_USAGE;
	}
	json_decref(reply);
	bw_client_close(&cl);
	return res;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

int bw_cli_doctor(int argc, char **argv, const char *socket_path, bool json)
{
	json_t *res, *c;
	int status, failed = 0;
	size_t i;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: burrow doctor [NAME] [--json]\n");
		return EXIT_USAGE;
	}
	if (argc == 2 && isatty(STDERR_FILENO))
		fprintf(stderr, "checking %s; the gateway probe takes up to 5 seconds...\n", argv[1]);
	res = call(socket_path, "doctor", argc == 2 ? json_pack("{s:s}", "name", argv[1]) : json_object(),
		   &status);
	if (!res)
		return status;
	json_array_foreach(res, i, c)
		if (strcmp(str(c, "status"), "fail") == 0)
			failed = 1;
	if (json) {
		json_dumpf(res, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		putchar('\n');
		json_decref(res);
		return failed;
	}
	json_array_foreach(res, i, c) {
		const char *st = str(c, "status"), *hint = str(c, "hint");
		const char *tag = strcmp(st, "ok") == 0 ? "OK  " : strcmp(st, "warn") == 0 ? "WARN" : "FAIL";

		printf("%s %s: %s", tag, str(c, "name"), str(c, "detail"));
		if (strcmp(st, "ok") != 0 && *hint)
			printf(" — %s", hint);
		putchar('\n');
	}
	json_decref(res);
	return failed;
}

int bw_cli_report(int argc, char **argv, const char *socket_path)
{
	const char *file = NULL;
	char path[PATH_MAX];
	json_t *res;
	int status;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc && !file)
			file = argv[++i];
		else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2] && !file)
			file = argv[i] + 2;
		else
			file = NULL, i = argc;
	}
	if (!file || !*file || argc > 3) {
		fprintf(stderr, "usage: burrow report -o FILE\n");
		return EXIT_USAGE;
	}
	/* The agent has another working directory: it gets an absolute path. */
	if (file[0] == '/') {
		if (snprintf(path, sizeof(path), "%s", file) >= (int)sizeof(path))
			goto too_long;
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "burrow: cannot tell the current directory (%s); give an absolute path\n",
				strerror(errno));
			return 1;
		}
		if (snprintf(path, sizeof(path), "%s/%s", cwd, file) >= (int)sizeof(path))
			goto too_long;
	}
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "burrow: %s already exists; choose another name\n", path);
		return 1;
	}
	res = call(socket_path, "report", json_pack("{s:s}", "path", path), &status);
	if (!res)
		return status;
	json_decref(res);
	printf("report written to %s\n", path);
	if (access(path, R_OK) != 0)
		printf("burrowd wrote it as root with mode 0600: read it with sudo, or chown it\n");
	printf("it holds no secrets, but it does show addresses, routes and firewall rules: check it before you send it\n");
	return 0;
too_long:
	fprintf(stderr, "burrow: the path %s is too long\n", file);
	return EXIT_USAGE;
}

/* `burrow doctor` prints the agent's checks as OK/WARN/FAIL lines with what to do;
 * `burrow report` asks the agent to write the support report and says where it is. */
#include "diag_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "config/config.h"
#include "diag/doctor.h"
#include "log.h"

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

/* Prints the checks (people or JSON); 1 when one of them failed, else 0. */
static int print_checks(json_t *res, bool json)
{
	json_t *c;
	int failed = 0;
	size_t i;

	json_array_foreach(res, i, c)
		if (strcmp(str(c, "status"), "fail") == 0)
			failed = 1;
	if (json) {
		json_dumpf(res, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		putchar('\n');
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
	return failed;
}

static void device_error(void *ctx, const struct bw_cfg_error *err)
{
	(void)ctx;
	(void)err;	/* a connection that uses the profile reports it */
}

/* Every connections/ *.conf of config_dir parses (the agent would mark the others invalid). */
static void local_conn_checks(const char *config_dir, const char *name, json_t *arr)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct bw_devices devs = { 0 };
	struct bw_conn_config *cfg = malloc(sizeof(*cfg));
	struct bw_cfg_error err;
	struct dirent *de;
	size_t n = 0, bad = 0;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/connections", config_dir);
	if (!cfg || !(d = opendir(dir))) {
		json_array_append_new(arr, bw_doctor_check("connections", "warn", errno == ENOENT ?
			"there is no connections directory" : "cannot read the connections directory",
			"add a connection as connections/NAME.conf (see docs/configuration.md)"));
		free(cfg);
		return;
	}
	bw_devices_load_dir(BURROW_DEVICES_DIR, &devs, device_error, NULL);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n++;
		if (name && strncmp(de->d_name, name, len - 5) == 0 && strlen(name) == len - 5)
			found = true;
		if (bw_conn_config_load(path, &devs, cfg, &err) != 0) {
			char detail[PATH_MAX + 512];

			bad++;
			snprintf(detail, sizeof(detail), "%s:%d: %s", err.file, err.line, err.msg);
			json_array_append_new(arr, bw_doctor_check("config", "fail", detail,
				"fix that line; burrowd marks the connection invalid until then"));
		}
	}
	closedir(d);
	bw_devices_free(&devs);
	free(cfg);
	if (!bad) {
		char detail[PATH_MAX + 64];

		snprintf(detail, sizeof(detail), "%zu connection file(s) in %s, none invalid", n, dir);
		json_array_append_new(arr, bw_doctor_check("config", "ok", detail, ""));
	}
	if (name && !found) {
		char detail[PATH_MAX + 128];

		snprintf(detail, sizeof(detail), "no connection named %s in %s", name, dir);
		json_array_append_new(arr, bw_doctor_check("gateway", "fail", detail, "check the name"));
	} else if (name) {
		json_array_append_new(arr, bw_doctor_check("gateway", "warn",
			"the checks of the path to the gateway need burrowd", "start burrowd and run burrow doctor again"));
	}
}

/* The checks that need no agent: burrow.conf, the kernel, TUN, the ports, other IKE
 * daemons, the clock and the connection files. */
static json_t *local_checks(const char *config_dir, const char *name, const char *why)
{
	json_t *arr = json_array();
	struct bw_agent_config cfg;
	struct bw_cfg_error err;
	char path[PATH_MAX + 16], detail[PATH_MAX + 512];
	const char *picked = NULL;

	bw_log_set_level(BW_LOG_ERROR);	/* the checks say it; the library's log lines would repeat it */
	json_array_append_new(arr, bw_doctor_check("agent", "fail", why, "start it with systemctl start burrowd"));
	bw_agent_config_defaults(&cfg);
	snprintf(path, sizeof(path), "%s/burrow.conf", config_dir);
	if (access(path, F_OK) != 0) {
		snprintf(detail, sizeof(detail), "no %s: the defaults apply", path);
		json_array_append_new(arr, bw_doctor_check("agent-config", "ok", detail, ""));
	} else if (bw_agent_config_load(path, &cfg, &err) != 0) {
		snprintf(detail, sizeof(detail), "%s:%d: %s", err.file, err.line, err.msg);
		json_array_append_new(arr, bw_doctor_check("agent-config", "fail", detail,
			"fix that line; burrowd keeps its defaults until then"));
		bw_agent_config_defaults(&cfg);
	} else {
		snprintf(detail, sizeof(detail), "%s is valid", path);
		json_array_append_new(arr, bw_doctor_check("agent-config", "ok", detail, ""));
	}
	json_array_append_new(arr, bw_doctor_check_backend(cfg.backend, &picked));
	json_array_append_new(arr, bw_doctor_check_kernel_esp(cfg.backend));
	json_array_append_new(arr, bw_doctor_check_tun());
	json_array_append_new(arr, bw_doctor_check_port("port-ike", "ike_port", cfg.ike_port));
	json_array_append_new(arr, bw_doctor_check_port("port-natt", "natt_port", cfg.natt_port));
	json_array_append_new(arr, bw_doctor_check_daemons("/proc"));
	json_array_append_new(arr, bw_doctor_check_clock(time(NULL)));
	local_conn_checks(config_dir, name, arr);
	return arr;
}

int bw_cli_doctor(int argc, char **argv, const char *socket_path, bool json)
{
	const char *name = NULL, *config_dir = BURROW_CONFIG_DIR;
	struct bw_client probe;
	json_t *res;
	int status, failed;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc) {
			config_dir = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--config-dir") != 0) {
			fprintf(stderr, "burrow: unknown option %s for doctor; burrow doctor --help lists its options\n",
				argv[i]);
			return EXIT_USAGE;
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			fprintf(stderr, "usage: burrow doctor [NAME] [--config-dir DIR] [--json]\n");
			return EXIT_USAGE;
		}
	}
	if (bw_client_connect_quiet(&probe, socket_path) != 0) {
		char why[512];

		if (errno == ENOENT || errno == ECONNREFUSED)
			snprintf(why, sizeof(why), "burrowd is not running: no agent at %s", socket_path);
		else
			bw_client_connect_error(socket_path, errno, why, sizeof(why));
		fprintf(stderr, "burrow: %s; checking this machine without it\n", why);
		res = local_checks(config_dir, name, why);
		failed = print_checks(res, json);
		json_decref(res);
		return 1 | failed;
	}
	bw_client_close(&probe);
	if (name && isatty(STDERR_FILENO))
		fprintf(stderr, "checking %s; the gateway probe takes up to 5 seconds...\n", name);
	res = call(socket_path, "doctor", name ? json_pack("{s:s}", "name", name) : json_object(), &status);
	if (!res)
		return status;
	failed = print_checks(res, json);
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
		else if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "-o") != 0 &&
			 strcmp(argv[i], "--output") != 0) {
			fprintf(stderr, "burrow: unknown option %s for report; burrow report --help lists its options\n",
				argv[i]);
			return EXIT_USAGE;
		} else
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

/* burrow: the command line of the Burrow agent. One table of subcommands; each turns its
 * arguments into one control request and prints the reply for people or, with --json, as is. */
#include <getopt.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "config/config.h"
#include "diag_cmd.h"
#include "policy_cmd.h"
#include "ctl_proto.h"
#include "util.h"

#define EXIT_USAGE 2

static const char *socket_path = BURROW_SOCKET;
static bool json_out;

struct subcmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;	/* one line per form, '\n' between forms */
	const char *summary;
};

/* Prints "usage: burrow FORM" for each form of a command's usage. */
static void print_usage(FILE *f, const char *usage)
{
	const char *lead = "usage:";

	while (*usage) {
		size_t n = strcspn(usage, "\n");

		fprintf(f, "%s burrow %.*s\n", lead, (int)n, usage);
		lead = "      ";
		usage += n + (usage[n] == '\n');
	}
}

static int usage_err(const char *usage)
{
	print_usage(stderr, usage);
	return EXIT_USAGE;
}

/* An argument that looks like an option ("-" alone is an operand, e.g. stdin). */
static bool is_option(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

/* An option the command does not know: bad usage, said in one sentence. */
static int bad_option(const char *cmd, const char *opt)
{
	fprintf(stderr, "burrow: unknown option %s for %s; burrow %s --help lists its options\n", opt, cmd, cmd);
	return EXIT_USAGE;
}

static char last_code[32];	/* error code of the last failed call */
static bool quiet_needs_secret;	/* do not print a needs-secret error: the caller prompts */

/* Sends one request and returns the reply's result (new reference), or NULL after printing
 * the agent's one-sentence error. */
static json_t *call(struct bw_client *cl, const char *cmd, json_t *args, int *status)
{
	json_t *reply, *res;

	*status = 1;
	if (bw_client_connect(cl, socket_path) != 0) {
		json_decref(args);
		return NULL;
	}
	if (bw_client_send(cl, cmd, args) != 0)
		return NULL;
	reply = bw_client_read(cl);
	if (!reply)
		return NULL;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *e = json_string_value(json_object_get(reply, "error"));
		const char *code = json_string_value(json_object_get(reply, "code"));

		bw_strlcpy(last_code, code ? code : "", sizeof(last_code));
		if (!(quiet_needs_secret && code && strcmp(code, "needs-secret") == 0))
			fprintf(stderr, "burrow: %s\n", e ? e : "burrowd refused the request");
		*status = code && strcmp(code, "usage") == 0 ? EXIT_USAGE : 1;
		json_decref(reply);
		return NULL;
	}
	res = json_incref(json_object_get(reply, "result"));
	json_decref(reply);
	*status = 0;
	return res ? res : json_null();
}

/* A result for people, or with --json as is. */
static void show(json_t *res, void (*print)(json_t *))
{
	if (json_out) {
		json_dumpf(res, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		putchar('\n');
	} else if (print) {
		print(res);
	}
}

static int simple(const char *cmd, json_t *args, void (*print)(json_t *))
{
	struct bw_client cl = { .fd = -1 };
	int status;
	json_t *res = call(&cl, cmd, args, &status);

	if (res) {
		show(res, print);
		json_decref(res);
	}
	bw_client_close(&cl);
	return status;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void print_list(json_t *res)
{
	size_t i;
	json_t *c;

	if (json_array_size(res) == 0) {
		printf("no connections: add one to connections/NAME.conf (see docs/configuration.md)\n");
		return;
	}
	printf("%-20s %-12s %-13s %s\n", "NAME", "GROUP", "STATE", "GATEWAY");
	json_array_foreach(res, i, c) {
		printf("%-20s %-12s %-13s %s\n", str(c, "name"), str(c, "group")[0] ? str(c, "group") : "-",
		       str(c, "state"), str(c, "gateway"));
		if (json_object_get(c, "error"))
			printf("  invalid: %s\n", str(c, "error"));
	}
}

static void human_bytes(char *buf, size_t len, double v, const char *unit)
{
	static const char *const p[] = { "", "k", "M", "G", "T" };
	size_t i = 0;

	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s%s" : "%.0f %s%s", v, p[i], unit);
}

static void print_status_one(json_t *c)
{
	json_t *v, *speed = json_object_get(c, "speed"), *fail = json_object_get(c, "last_failure");
	char a[32], b[32];

	printf("%s: %s\n", str(c, "name"), str(c, "state"));
	if (json_object_get(c, "error"))
		printf("  invalid:     %s\n", str(c, "error"));
	if (str(c, "gateway")[0])
		printf("  gateway:     %s\n", str(c, "gateway"));
	if (str(c, "virtual_ip")[0])
		printf("  virtual IP:  %s\n", str(c, "virtual_ip"));
	if (str(c, "interface")[0])
		printf("  interface:   %s\n", str(c, "interface"));
	if ((v = json_object_get(c, "gateway_certificate"))) {
		printf("  gateway certificate: %s\n", str(v, "subject"));
		printf("    issued by: %s\n", str(v, "issuer"));
		printf("    expires:   %s\n", str(v, "not_after"));
	}
	if ((v = json_object_get(c, "uptime_s")))
		printf("  uptime:      %llds\n", (long long)json_integer_value(v));
	if ((v = json_object_get(c, "sas")) && json_array_size(v)) {
		size_t i;
		json_t *sa;

		json_array_foreach(v, i, sa)
			printf("  SA:          %s\n", json_string_value(sa) ? json_string_value(sa) : "");
	}
	if (json_object_get(c, "bytes_in")) {
		human_bytes(a, sizeof(a), (double)json_integer_value(json_object_get(c, "bytes_in")), "B");
		human_bytes(b, sizeof(b), (double)json_integer_value(json_object_get(c, "bytes_out")), "B");
		printf("  traffic:     %s in, %s out\n", a, b);
	}
	if (speed && strcmp(str(c, "state"), "up") == 0) {
		human_bytes(a, sizeof(a), json_real_value(json_object_get(speed, "in_bps")), "bit/s");
		human_bytes(b, sizeof(b), json_real_value(json_object_get(speed, "out_bps")), "bit/s");
		printf("  speed now:   %s in, %s out\n", a, b);
		human_bytes(a, sizeof(a), json_real_value(json_object_get(speed, "max_in_bps")), "bit/s");
		human_bytes(b, sizeof(b), json_real_value(json_object_get(speed, "max_out_bps")), "bit/s");
		printf("  speed max:   %s in, %s out\n", a, b);
	}
	if (str(c, "banner")[0])
		printf("  banner:      %s\n", str(c, "banner"));
	if ((v = json_object_get(c, "warnings")) && json_array_size(v)) {
		size_t i;
		json_t *w;

		json_array_foreach(v, i, w)
			printf("  warning:     %s\n", json_string_value(w) ? json_string_value(w) : "");
	}
	if (fail)
		printf("  last error:  %s (failure code %s)\n", str(fail, "error"), str(fail, "code"));
}

static void print_status(json_t *res)
{
	size_t i;
	json_t *c;

	if (json_is_object(res)) {
		print_status_one(res);
		return;
	}
	if (json_array_size(res) == 0)
		printf("no connections: add one to connections/NAME.conf (see docs/configuration.md)\n");
	json_array_foreach(res, i, c) {
		if (i)
			putchar('\n');
		print_status_one(c);
	}
}

static int cmd_list(int argc, char **argv)
{
	if (argc > 1 && is_option(argv[1]))
		return bad_option("list", argv[1]);
	if (argc > 1)
		return usage_err("list [--json]");
	return simple("list", NULL, print_list);
}

static int cmd_status(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (is_option(argv[i]))
			return bad_option("status", argv[i]);
	if (argc > 2)
		return usage_err("status [NAME] [--json]");
	return simple("status", argc == 2 ? json_pack("{s:s}", "name", argv[1]) : NULL, print_status);
}

/* After start: the gateway's banner, as a desktop client shows it. */
static void print_banner(json_t *res)
{
	size_t i;
	json_t *c;

	json_array_foreach(res, i, c)
		if (str(c, "banner")[0])
			printf("%s: %s\n", str(c, "name"), str(c, "banner"));
}

/* start/stop/restart share their arguments: NAME... | --group G [| --all for stop]. */
static int startstop(const char *cmd, int argc, char **argv, bool allow_all)
{
	json_t *args = json_object(), *names = json_array();
	bool wait = true;
	char usage[128];

	snprintf(usage, sizeof(usage), "%s NAME... | --group G%s [--no-wait]", cmd,
		 allow_all ? " | --all" : "");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
			json_object_set_new(args, "group", json_string(argv[++i]));
		else if (strcmp(argv[i], "--all") == 0 && allow_all)
			json_object_set_new(args, "all", json_true());
		else if (strcmp(argv[i], "--no-wait") == 0)
			wait = false;
		else if (strcmp(argv[i], "--group") == 0) {
			json_decref(args);
			json_decref(names);
			fprintf(stderr, "burrow: --group needs a group name, e.g. burrow %s --group Work\n", cmd);
			return EXIT_USAGE;
		} else if (is_option(argv[i])) {
			json_decref(args);
			json_decref(names);
			return bad_option(cmd, argv[i]);
		} else
			json_array_append_new(names, json_string(argv[i]));
	}
	if (json_array_size(names))
		json_object_set(args, "names", names);
	json_decref(names);
	if (json_object_size(args) == 0) {
		json_decref(args);
		return usage_err(usage);
	}
	json_object_set_new(args, "wait", json_boolean(wait));
	return simple(cmd, args, strcmp(cmd, "start") == 0 ? print_banner : NULL);
}

/* Reads a secret from the terminal without echo. */
static int prompt_secret(const char *what, const char *conn, char *buf, size_t len)
{
	struct termios old, noecho;
	bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n;

	fprintf(stderr, "%s for %s: ", what, conn);
	fflush(stderr);
	if (tty) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	if (!fgets(buf, (int)len, stdin))
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return n ? 0 : -1;
}

/* When the agent needs a secret and we have a terminal, ask for it and try again. */
static int cmd_start(int argc, char **argv)
{
	int status = 1;

	quiet_needs_secret = isatty(STDIN_FILENO);
	for (int round = 0; round < 3; round++) {
		struct bw_client cl = { .fd = -1 };
		json_t *st, *key;
		char secret[256];
		int s2;

		last_code[0] = '\0';
		status = startstop("start", argc, argv, false);
		if (status == 0 || strcmp(last_code, "needs-secret") != 0 || !quiet_needs_secret)
			return status;
		/* Which connection and which key: the first named connection that waits. */
		for (int i = 1; i < argc; i++) {
			if (argv[i][0] == '-')
				continue;
			st = call(&cl, "status", json_pack("{s:s}", "name", argv[i]), &s2);
			bw_client_close(&cl);
			key = st ? json_object_get(st, "needs_secret") : NULL;
			if (key) {
				const char *k = json_string_value(key);
				int ok = prompt_secret(strcmp(k, "psk") == 0 ? "Pre-shared key" :
						       strcmp(k, "private_key_passphrase") == 0 ? "Private key passphrase" :
						       strcmp(k, "pkcs12_password") == 0 ? "PKCS#12 file password" :
						       "XAUTH password",
						       argv[i], secret, sizeof(secret));

				if (ok == 0) {
					json_decref(call(&cl, "secret", json_pack("{s:s,s:s,s:s}", "name", argv[i],
										 "key", k, "value", secret), &s2));
					bw_client_close(&cl);
				}
				OPENSSL_cleanse(secret, sizeof(secret));
				json_decref(st);
				if (ok != 0) {
					fprintf(stderr, "burrow: no secret entered; %s stays down\n", argv[i]);
					return 1;
				}
				break;
			}
			json_decref(st);
		}
	}
	return status;
}
static int cmd_stop(int argc, char **argv) { return startstop("stop", argc, argv, true); }
static int cmd_restart(int argc, char **argv) { return startstop("restart", argc, argv, false); }

static void print_log_line(json_t *l)
{
	double t = json_number_value(json_object_get(l, "time"));
	time_t secs = (time_t)t;
	struct tm tm;
	char when[32];

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s %-5s %s\n", when, str(l, "level"), str(l, "msg"));
}

/* Prints stream lines until the agent closes the connection or the user interrupts. */
static int follow(struct bw_client *cl, void (*print)(json_t *))
{
	json_t *m;

	while ((m = bw_client_read(cl))) {
		json_t *d = json_object_get(m, "data");

		if (d) {
			if (json_out) {
				json_dumpf(d, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
				putchar('\n');
			} else
				print(d);
			fflush(stdout);
		}
		json_decref(m);
	}
	return 1;
}

#define LOG_USAGE "log NAME [--level L] [--lines N] [--follow|-f]"

static int cmd_log(int argc, char **argv)
{
	struct bw_client cl = { .fd = -1 };
	json_t *args = json_object(), *res, *l;
	const char *name = NULL;
	bool fol = false;
	int status;
	size_t i;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--level") == 0 && k + 1 < argc)
			json_object_set_new(args, "level", json_string(argv[++k]));
		else if (strcmp(argv[k], "--follow") == 0 || strcmp(argv[k], "-f") == 0)
			fol = true;
		else if (strcmp(argv[k], "--lines") == 0 && k + 1 < argc) {
			char *end;
			long n = strtol(argv[++k], &end, 10);

			if (!*argv[k] || *end || n < 1) {
				json_decref(args);
				fprintf(stderr, "burrow: --lines needs a positive number, not %s\n", argv[k]);
				return EXIT_USAGE;
			}
			json_object_set_new(args, "lines", json_integer(n));
		} else if (is_option(argv[k]) && strcmp(argv[k], "--level") != 0 &&
			   strcmp(argv[k], "--lines") != 0) {
			json_decref(args);
			return bad_option("log", argv[k]);
		} else if (!is_option(argv[k]) && !name)
			name = argv[k];
		else {
			json_decref(args);
			return usage_err(LOG_USAGE);
		}
	}
	if (!name) {
		json_decref(args);
		return usage_err(LOG_USAGE);
	}
	json_object_set_new(args, "name", json_string(name));
	if (fol)
		json_object_set_new(args, "follow", json_true());
	res = call(&cl, "log", args, &status);
	if (res) {
		json_array_foreach(res, i, l) {
			if (json_out) {
				json_dumpf(l, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
				putchar('\n');
			} else
				print_log_line(l);
		}
		fflush(stdout);
		json_decref(res);
		if (fol)
			status = follow(&cl, print_log_line);
	}
	bw_client_close(&cl);
	return status;
}

static void print_explain(json_t *res)
{
	if (json_is_null(json_object_get(res, "code"))) {
		printf("%s has not failed since the agent started.\n", str(res, "connection"));
		return;
	}
	printf("%s\n", str(res, "explanation"));
	printf("failure code: %s\n", str(res, "code"));
}

static int cmd_explain(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (is_option(argv[i]))
			return bad_option("explain", argv[i]);
	if (argc != 2)
		return usage_err("explain NAME");
	return simple("explain", json_pack("{s:s}", "name", argv[1]), print_explain);
}

static void print_event(json_t *e)
{
	double t = json_number_value(json_object_get(e, "time"));
	time_t secs = (time_t)t;
	const char *key;
	json_t *v;
	struct tm tm;
	char when[32];

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("%s %s", when, str(e, "name"));
	json_object_foreach(e, key, v) {
		char *s;

		if (strcmp(key, "name") == 0 || strcmp(key, "time") == 0)
			continue;
		s = json_is_string(v) ? strdup(json_string_value(v))
				      : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf(" %s=%s", key, s ? s : "?");
		free(s);
	}
	putchar('\n');
}

static int cmd_events(int argc, char **argv)
{
	struct bw_client cl = { .fd = -1 };
	bool fol = false;
	json_t *res, *e;
	int status;
	size_t i;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--follow") == 0 || strcmp(argv[k], "-f") == 0)
			fol = true;
		else if (is_option(argv[k]))
			return bad_option("events", argv[k]);
		else
			return usage_err("events [--follow|-f] [--json]");
	}
	res = call(&cl, "events", fol ? json_pack("{s:b}", "follow", 1) : NULL, &status);
	if (res) {
		json_array_foreach(res, i, e) {
			if (json_out) {
				json_dumpf(e, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
				putchar('\n');
			} else
				print_event(e);
		}
		fflush(stdout);
		json_decref(res);
		if (fol)
			status = follow(&cl, print_event);
	}
	bw_client_close(&cl);
	return status;
}

/* key=value → a string, except true/false, integers and "nil"/"null" (absent). */
static json_t *emit_value(const char *v)
{
	char *end;
	long long n;

	if (strcmp(v, "true") == 0)
		return json_true();
	if (strcmp(v, "false") == 0)
		return json_false();
	if (strcmp(v, "nil") == 0 || strcmp(v, "null") == 0)
		return json_null();
	n = strtoll(v, &end, 10);
	if (*v && !*end && (v[0] != '0' || !v[1]))
		return json_integer(n);
	return json_string(v);
}

static int cmd_emit(int argc, char **argv)
{
	json_t *ev;

	if (argc >= 2 && is_option(argv[1]))
		return bad_option("emit", argv[1]);
	if (argc < 2 || strchr(argv[1], '='))
		return usage_err("emit EVENT [key=value...]");
	ev = json_pack("{s:s}", "name", argv[1]);
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (is_option(argv[i])) {
			json_decref(ev);
			return bad_option("emit", argv[i]);
		}
		if (!eq || eq == argv[i]) {
			json_decref(ev);
			fprintf(stderr, "burrow: %s is not key=value\n", argv[i]);
			return EXIT_USAGE;
		}
		*eq = '\0';
		if (strcmp(argv[i], "name") == 0 || strcmp(argv[i], "time") == 0) {
			json_decref(ev);
			fprintf(stderr, "burrow: the event's %s cannot be set\n", argv[i]);
			return EXIT_USAGE;
		}
		json_t *val = emit_value(eq + 1);
		if (json_is_null(val))
			json_decref(val);
		else
			json_object_set_new(ev, argv[i], val);
	}
	return simple("emit", json_pack("{s:o}", "event", ev), NULL);
}

static void print_location(json_t *res)
{
	const char *loc = json_string_value(json_object_get(res, "location"));

	if (!loc)
		printf("no location: no rule matches (burrow location NAME sets one by hand)\n");
	else if (json_is_true(json_object_get(res, "manual")))
		printf("%s (set by hand; burrow location --auto hands it back to the rules)\n", loc);
	else
		printf("%s\n", loc);
}

static int cmd_location(int argc, char **argv)
{
	json_t *args = NULL;

	for (int i = 1; i < argc; i++)
		if (is_option(argv[i]) && strcmp(argv[i], "--auto") != 0)
			return bad_option("location", argv[i]);
	if (argc > 2)
		return usage_err("location [NAME | --auto]");
	if (argc == 2)
		args = strcmp(argv[1], "--auto") == 0 ? json_pack("{s:b}", "auto", 1)
						      : json_pack("{s:s}", "set", argv[1]);
	return simple("location", args, print_location);
}

/* {connections, policy_errors}; an older agent replies with the connections alone. */
static void print_reload(json_t *res)
{
	json_t *conns = json_is_array(res) ? res : json_object_get(res, "connections");
	json_t *perr = json_object_get(res, "policy_errors"), *c;
	size_t i, bad = 0;

	json_array_foreach(conns, i, c)
		if (json_object_get(c, "error")) {
			bad++;
			printf("%s: invalid: %s\n", str(c, "name"), str(c, "error"));
		}
	json_array_foreach(perr, i, c) {
		json_int_t line = json_integer_value(json_object_get(c, "line"));

		if (line > 0)
			printf("%s:%lld: %s (policy not loaded)\n", str(c, "file"), (long long)line, str(c, "message"));
		else
			printf("%s: %s (policy not loaded)\n", str(c, "file"), str(c, "message"));
	}
	printf("reloaded: %zu connection(s), %zu invalid", json_array_size(conns), bad);
	if (perr)
		printf("; %zu polic%s failed to load", json_array_size(perr), json_array_size(perr) == 1 ? "y" : "ies");
	putchar('\n');
}

static int cmd_reload(int argc, char **argv)
{
	if (argc > 1 && is_option(argv[1]))
		return bad_option("reload", argv[1]);
	if (argc != 1)
		return usage_err("reload");
	return simple("reload", NULL, print_reload);
}

#define DEVICES_USAGE "devices [ID] [--devices-dir DIR] [--json]"

static void print_devices(json_t *res)
{
	size_t i;
	json_t *d;

	if (json_is_object(res)) {
		printf("%s: %s\nsource: %s\nfile: %s\n\n%s", str(res, "id"), str(res, "name"),
		       str(res, "source"), str(res, "file"), str(res, "text"));
		return;
	}
	printf("%-28s %s\n", "ID", "NAME");
	json_array_foreach(res, i, d)
		printf("%-28s %s\n", str(d, "id"), str(d, "name"));
}

static void devices_error(void *ctx, const struct bw_cfg_error *err)
{
	(void)ctx;
	fprintf(stderr, "burrow: device profile %s:%d: %s (skipped)\n", err->file, err->line, err->msg);
}

/* The profiles of dir, read here: what the agent would answer, without the agent. */
static int devices_local(const char *dir, const char *id)
{
	struct bw_devices devs = { 0 };
	json_t *res;
	int rc = bw_devices_load_dir(dir, &devs, devices_error, NULL);

	if (rc != 0) {
		fprintf(stderr, "burrow: cannot read the device profiles in %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	if (!id && devs.n == 0) {
		fprintf(stderr, "burrow: no device profiles in %s; burrow devices --devices-dir DIR reads another directory\n",
			dir);
		bw_devices_free(&devs);
		return 1;
	}
	if (id) {
		const struct bw_device *d = bw_devices_find(&devs, id);

		if (!d) {
			fprintf(stderr, "burrow: no device profile %s in %s; burrow devices lists them\n", id, dir);
			bw_devices_free(&devs);
			return 1;
		}
		res = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s%}", "id", d->id, "name", d->name, "vendor", d->vendor,
				"source", d->source, "file", d->file, "text", d->text ? d->text : "", d->text_len);
	} else {
		res = json_array();
		for (size_t i = 0; i < devs.n; i++)
			json_array_append_new(res, json_pack("{s:s,s:s,s:s}", "id", devs.items[i].id, "name",
							     devs.items[i].name, "vendor", devs.items[i].vendor));
	}
	bw_devices_free(&devs);
	show(res, print_devices);
	json_decref(res);
	return 0;
}

/* The agent's profiles when it runs (it may read another directory); else the files of
 * --devices-dir DIR or of the installed directory. */
static int cmd_devices(int argc, char **argv)
{
	const char *dir = NULL, *id = NULL;
	struct bw_client cl;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--devices-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (is_option(argv[i]) && strcmp(argv[i], "--devices-dir") != 0)
			return bad_option("devices", argv[i]);
		else if (!is_option(argv[i]) && !id)
			id = argv[i];
		else
			return usage_err(DEVICES_USAGE);
	}
	if (dir)
		return devices_local(dir, id);
	if (bw_client_connect_quiet(&cl, socket_path) == 0) {
		bw_client_close(&cl);
		return simple("devices", id ? json_pack("{s:s}", "id", id) : NULL, print_devices);
	}
	return devices_local(BURROW_DEVICES_DIR, id);
}

/* Commands whose machinery belongs to later issues: say so, do not pretend. They take no
 * options yet, and the help lists none. */
static int not_yet(const char *cmd, const char *what, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (is_option(argv[i]))
			return bad_option(cmd, argv[i]);
	fprintf(stderr, "burrow: %s is not available yet in this release\n", what);
	return 1;
}

static int cmd_export(int argc, char **argv) { return not_yet("export", "profile export", argc, argv); }
static int cmd_import(int argc, char **argv) { return not_yet("import", "profile import", argc, argv); }
static int cmd_report(int argc, char **argv) { return bw_cli_report(argc, argv, socket_path); }
static int cmd_doctor(int argc, char **argv) { return bw_cli_doctor(argc, argv, socket_path, json_out); }

static int cmd_version(int argc, char **argv)
{
	if (argc > 1)
		return is_option(argv[1]) ? bad_option("version", argv[1]) : usage_err("version");
	printf("burrow %s\n", BURROW_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct subcmd subcmds[] = {
	{ "list", cmd_list, "list [--json]", "connections, groups and their state" },
	{ "status", cmd_status, "status [NAME] [--json]",
	  "state, gateway, virtual IP, SAs, traffic, speed, uptime" },
	{ "start", cmd_start, "start NAME... | --group G [--no-wait]",
	  "start; returns when up or failed (--no-wait: at once)" },
	{ "stop", cmd_stop, "stop NAME... | --group G | --all [--no-wait]",
	  "stop (--all: every valid connection)" },
	{ "restart", cmd_restart, "restart NAME... | --group G [--no-wait]", "stop, then start again" },
	{ "log", cmd_log, LOG_USAGE, "the connection's log (--lines N: the last N lines)" },
	{ "explain", cmd_explain, "explain NAME", "the last failure in plain English, with what to check" },
	{ "events", cmd_events, "events [--follow|-f] [--json]", "the event stream that policies see" },
	{ "emit", cmd_emit, "emit EVENT [key=value...]", "inject an event, e.g. burrow emit ssid ssid=CafeFree" },
	{ "location", cmd_location, "location [NAME | --auto]", "show or set the location (--auto: by the rules)" },
	{ "policy", bw_cli_policy,
	  "policy check FILE... [--config-dir DIR]\npolicy test FILE... --events TRACE.jsonl [--config-dir DIR] [--json]",
	  "compile and lint policies, or replay events through them (no agent needed)" },
	{ "reload", cmd_reload, "reload", "re-read configuration and policies; report what failed to load" },
	{ "export", cmd_export, "export", "profile export: not available yet" },
	{ "import", cmd_import, "import", "profile import: not available yet" },
	{ "report", cmd_report, "report -o|--output FILE", "support report; secrets removed" },
	{ "doctor", cmd_doctor, "doctor [NAME] [--config-dir DIR] [--json]",
	  "check this machine (and NAME's path to its gateway)" },
	{ "devices", cmd_devices, DEVICES_USAGE, "device profiles (read from the files when burrowd is not running)" },
	{ "version", cmd_version, "version", "the version of burrow" },
	{ "help", cmd_help, "help [COMMAND]", "this list, or one command's usage" },
};

static const struct subcmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < BW_ARRAY_SIZE(subcmds); i++)
		if (strcmp(name, subcmds[i].name) == 0)
			return &subcmds[i];
	return NULL;
}

static void help_one(const struct subcmd *c)
{
	print_usage(stdout, c->usage);
	printf("%s\n", c->summary);
}

static int cmd_help(int argc, char **argv)
{
	const struct subcmd *c;

	if (argc >= 2 && is_option(argv[1]))
		return bad_option("help", argv[1]);
	if (argc > 2)
		return usage_err("help [COMMAND]");
	if (argc == 2) {
		if (!(c = find_cmd(argv[1]))) {
			fprintf(stderr, "burrow: unknown command %s; burrow help lists the commands\n", argv[1]);
			return EXIT_USAGE;
		}
		help_one(c);
		return 0;
	}
	printf("usage: burrow [--socket PATH] [--json] COMMAND [ARGS]\n"
	       "       burrow --help|-h | --version | COMMAND --help\n\ncommands:\n");
	for (size_t i = 0; i < BW_ARRAY_SIZE(subcmds); i++) {
		const char *u = subcmds[i].usage;

		while (*u) {
			size_t n = strcspn(u, "\n");

			printf("  burrow %.*s\n", (int)n, u);
			u += n + (u[n] == '\n');
		}
		printf("      %s\n", subcmds[i].summary);
	}
	printf("\n--socket PATH (or BURROW_SOCKET) names the agent's control socket (default %s);\n"
	       "--json prints the replies as JSON.\n", BURROW_SOCKET);
	return 0;
}

int main(int argc, char **argv)
{
	char *args[256];
	int n = 0;
	const char *env = getenv("BURROW_SOCKET");
	const struct subcmd *c;

	if (env && *env)
		socket_path = env;
	/* Global flags may come anywhere; everything else is the subcommand's. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			socket_path = argv[++i];
		else if (strcmp(argv[i], "--socket") == 0) {
			fprintf(stderr, "burrow: --socket needs the path of the agent's socket, e.g. --socket %s\n",
				BURROW_SOCKET);
			return EXIT_USAGE;
		}
		else if (strncmp(argv[i], "--socket=", 9) == 0)
			socket_path = argv[i] + 9;
		else if (strcmp(argv[i], "--json") == 0)
			json_out = true;
		else if (strcmp(argv[i], "--version") == 0 && n == 0)
			return cmd_version(1, NULL);
		else if ((strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) && n == 0)
			return cmd_help(1, NULL);
		else if (n < (int)BW_ARRAY_SIZE(args))
			args[n++] = argv[i];
		else
			return usage_err("COMMAND [ARGS] (too many arguments)");
	}
	if (n == 0) {
		cmd_help(1, NULL);
		return EXIT_USAGE;
	}
	bw_cli_policy_set_json(json_out);
	if (!(c = find_cmd(args[0]))) {
		if (is_option(args[0]))
			fprintf(stderr, "burrow: unknown option %s; burrow --help lists the options and commands\n",
				args[0]);
		else
			fprintf(stderr, "burrow: unknown command %s; burrow help lists the commands\n", args[0]);
		return EXIT_USAGE;
	}
	/* COMMAND --help anywhere: that command's usage, and nothing is sent. */
	for (int i = 1; i < n; i++)
		if (strcmp(args[i], "--help") == 0 || strcmp(args[i], "-h") == 0) {
			help_one(c);
			return 0;
		}
	return c->fn(n, args);
}

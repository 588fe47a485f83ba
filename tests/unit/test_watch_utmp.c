/* utmp records written into a temporary file become exactly one `login` or `logout` each,
 * also for changes in the same second; other record types and torn records are ignored. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <utmpx.h>

#include "agent.h"
#include "log.h"
#include "tap.h"
#include "lua/policy_host.h"
#include "watch/watch.h"

static json_t *seen;

static void collect(void *ctx, json_t *ev)
{
	const char *n = json_string_value(json_object_get(ev, "name"));

	(void)ctx;
	if (strcmp(n, "login") == 0 || strcmp(n, "logout") == 0)
		json_array_append(seen, ev);
}

static void on_stop(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static void run_for(struct ev_loop *loop, double s)
{
	ev_timer t;

	ev_now_update(loop);
	ev_timer_init(&t, on_stop, s, 0.0);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

static void put(const char *path, long slot, short type, const char *user, const char *tty, pid_t pid)
{
	struct utmpx u;
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	memset(&u, 0, sizeof(u));
	u.ut_type = type;
	u.ut_pid = pid;
	strncpy(u.ut_user, user, sizeof(u.ut_user));
	strncpy(u.ut_line, tty, sizeof(u.ut_line));
	if (fd < 0 || pwrite(fd, &u, sizeof(u), slot * (long)sizeof(u)) != (ssize_t)sizeof(u))
		tap_diag("cannot write %s", path);
	close(fd);
}

static int one(const char *name, const char *user, const char *tty)
{
	json_t *ev = json_array_get(seen, 0);
	int ok = json_array_size(seen) == 1 &&
		 strcmp(json_string_value(json_object_get(ev, "name")), name) == 0 &&
		 strcmp(json_string_value(json_object_get(ev, "user")), user) == 0 &&
		 strcmp(json_string_value(json_object_get(ev, "tty")), tty) == 0;

	if (!ok) {
		char *s = json_dumps(seen, JSON_COMPACT);

		tap_diag("  events: %s", s ? s : "?");
		free(s);
	}
	json_array_clear(seen);
	return ok;
}

int main(void)
{
	char tmpl[] = "/tmp/bw-test-utmp-XXXXXX", path[PATH_MAX], cmd[PATH_MAX + 16];
	char longname[64];
	struct bw_agent a;
	struct bw_watch *w;
	json_t *f, *u;
	int fd;

	bw_log_init("test", 0, BW_LOG_WARN);
	memset(&a, 0, sizeof(a));
	a.loop = EV_DEFAULT;
	bw_events_init(&a.events);
	seen = json_array();
	bw_events_subscribe(&a.events, collect, NULL);
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s", tmpl);
	snprintf(path, sizeof(path), "%s/resolv.conf", tmpl);
	setenv("BURROW_RESOLV_CONF", path, 1);
	snprintf(path, sizeof(path), "%s/utmp", tmpl);
	put(path, 0, BOOT_TIME, "reboot", "~", 0);
	put(path, 1, USER_PROCESS, "root", "tty1", 100);
	bw_watch_set_utmp_path(path);

	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	run_for(a.loop, 0.3);
	tap_is_int(json_array_size(seen), 0, "sessions already there at start are not events");
	f = bw_watch_facts(w);
	u = json_array_get(json_object_get(f, "users"), 0);
	tap_ok(json_array_size(json_object_get(f, "users")) == 1 &&
	       strcmp(json_string_value(json_object_get(u, "user")), "root") == 0 &&
	       strcmp(json_string_value(json_object_get(u, "tty")), "tty1") == 0,
	       "but facts.users lists them (the boot record is not a user)");
	json_decref(f);

	put(path, 2, USER_PROCESS, "alice", "pts/3", 1234);
	run_for(a.loop, 1.6);
	tap_ok(one("login", "alice", "pts/3"), "a USER_PROCESS record appended: one login {user=alice, tty=pts/3}");

	put(path, 3, LOGIN_PROCESS, "LOGIN", "tty2", 300);
	run_for(a.loop, 1.6);
	tap_is_int(json_array_size(seen), 0, "a LOGIN_PROCESS (getty) record is no login");

	put(path, 3, USER_PROCESS, "bob", "tty2", 300);
	put(path, 2, DEAD_PROCESS, "", "pts/3", 1234);
	run_for(a.loop, 1.6);
	tap_is_int(json_array_size(seen), 2, "one logout and one login written in the same instant: two events");
	tap_ok(strcmp(json_string_value(json_object_get(json_array_get(seen, 0), "name")), "logout") == 0 &&
	       strcmp(json_string_value(json_object_get(json_array_get(seen, 1), "name")), "login") == 0,
	       "the logout comes first");
	json_array_clear(seen);

	put(path, 3, DEAD_PROCESS, "", "tty2", 300);
	run_for(a.loop, 1.6);
	tap_ok(one("logout", "bob", "tty2"), "the record turned DEAD_PROCESS: one logout {user=bob, tty=tty2}");

	put(path, 2, USER_PROCESS, "carol", "pts/3", 1300);
	usleep(50 * 1000);
	put(path, 2, DEAD_PROCESS, "", "pts/3", 1300);
	run_for(a.loop, 1.6);
	tap_is_int(json_array_size(seen) % 2, 0, "a session shorter than a second gives both events or none");
	json_array_clear(seen);

	memset(longname, 'x', sizeof(longname));
	longname[sizeof(longname) - 1] = '\0';
	put(path, 4, USER_PROCESS, longname, "pts/9\001", 400);
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "torn", 4) != 4)
		tap_diag("cannot append a torn record");
	close(fd);
	run_for(a.loop, 1.6);
	u = json_array_get(seen, 0);
	tap_ok(json_array_size(seen) == 1 &&
	       strlen(json_string_value(json_object_get(u, "user"))) == sizeof(((struct utmpx *)0)->ut_user) &&
	       strcmp(json_string_value(json_object_get(u, "tty")), "pts/9?") == 0,
	       "a user name without NUL is cut at the field, a control character replaced, a torn record skipped");
	json_array_clear(seen);

	f = bw_watch_facts(w);
	tap_is_int(json_array_size(json_object_get(f, "users")), 2, "facts.users follows logins and logouts");
	json_decref(f);

	unlink(path);
	run_for(a.loop, 1.6);
	tap_is_int(json_array_size(seen), 2, "utmp removed: everyone logged out");

	bw_watch_close(w);
	bw_events_free(&a.events);
	json_decref(seen);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		return 1;
	return tap_done_testing();
}

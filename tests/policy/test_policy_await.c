/* bw_policy_host_await_stopping against a real event bus and libev loop, and the mount
 * records in the state directory: a real sshfs mount (sftp-server through ssh_command, no
 * sshd needed) recorded, unmounted while stopping, and unmounted by a restarted agent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "lua/policy_host.h"
#include "tap.h"

#define SFTP_SERVER "/usr/lib/openssh/sftp-server"

static char logbuf[1 << 20];
static size_t loglen;

static void sink(void *ctx, enum bw_log_level level, const char *conn, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)conn;
	if (loglen + strlen(msg) + 2 < sizeof(logbuf))
		loglen += (size_t)snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static void done_cb(void *ctx)
{
	*(double *)ctx = ev_time();
}

/* Runs the loop until *flag is set or seconds pass. */
static int run_until_set(struct ev_loop *loop, const double *flag, double seconds)
{
	ev_timer t;
	double end = ev_time() + seconds;

	ev_timer_init(&t, tick, 0.01, 0.01);
	ev_timer_start(loop, &t);
	while (*flag == 0 && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	return *flag != 0;
}

static void run_for(struct ev_loop *loop, double seconds)
{
	double never = 0;

	run_until_set(loop, &never, seconds);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int mounted(const char *target)
{
	char line[8192], want[1024];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	snprintf(want, sizeof(want), " %s ", target);
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return found;
}

static int wait_mounted(struct ev_loop *loop, const char *target, int want, double seconds)
{
	double end = ev_time() + seconds;

	while (mounted(target) != want && ev_time() < end)
		run_for(loop, 0.05);
	return mounted(target) == want;
}

static void test_await(struct bw_agent *a, const char *dir)
{
	char path[700];
	struct bw_policy_host *h;
	double done = 0, t0;

	snprintf(path, sizeof(path), "%s/10-stopping.lua", dir);
	put(path, "burrow.on('tunnel_stopping', function(ev)\n"
		  "  if ev.connection == 'office' then\n"
		  "    burrow.exec{'/bin/sleep', '0.3', on_exit = function() burrow.log('info', 'sleep done') end}\n"
		  "  elseif ev.connection == 'lab' then\n"
		  "    burrow.exec{'/bin/sleep', '5'}\n"
		  "  end\n"
		  "end)\n");
	h = bw_policy_host_new(a, dir, NULL);
	run_for(a->loop, 0.05);

	bw_events_emitf(&a->events, "tunnel_stopping", json_pack("{s:s,s:s}", "connection", "office", "reason", "stopped"));
	t0 = ev_time();
	bw_policy_host_await_stopping(h, "office", 10, done_cb, &done);
	tap_ok(done == 0, "await_stopping never calls done from inside the call");
	tap_ok(run_until_set(a->loop, &done, 5), "done is called from the loop");
	tap_ok(done - t0 >= 0.28 && done - t0 < 2.0, "an exec of /bin/sleep 0.3 from a tunnel_stopping handler delays done by ~0.3 s (%.3f s)",
	       done - t0);
	tap_ok(strstr(logbuf, "sleep done") != NULL, "and done comes after the action's on_exit ran");

	done = 0;
	bw_events_emitf(&a->events, "tunnel_stopping", json_pack("{s:s,s:s}", "connection", "lab", "reason", "stopped"));
	t0 = ev_time();
	bw_policy_host_await_stopping(h, "lab", 0.5, done_cb, &done);
	tap_ok(run_until_set(a->loop, &done, 5), "a hung action does not hold done forever");
	tap_ok(done - t0 >= 0.45 && done - t0 < 1.5, "it is cut by the timeout (%.3f s of 0.5)", done - t0);
	tap_ok(strstr(logbuf, "lab: stopping goes on without the tunnel_stopping actions still running: exec /bin/sleep 5") != NULL,
	       "and the log names the action still running");

	done = 0;
	bw_events_emitf(&a->events, "tunnel_stopping", json_pack("{s:s,s:s}", "connection", "home", "reason", "stopped"));
	t0 = ev_time();
	bw_policy_host_await_stopping(h, "home", 10, done_cb, &done);
	tap_ok(done == 0 && run_until_set(a->loop, &done, 2) && done - t0 < 0.2,
	       "with no handler for the connection, done comes on the next loop turns");

	done = 0;
	bw_policy_host_await_stopping(NULL, "office", 10, done_cb, &done);
	tap_ok(done == 0, "with no host, done is not called from inside the call either");
	ev_run(a->loop, EVRUN_NOWAIT);
	tap_ok(done != 0, "but on the next loop turn");

	done = 0;
	bw_events_emitf(&a->events, "tunnel_stopping", json_pack("{s:s,s:s}", "connection", "lab", "reason", "stopped"));
	bw_policy_host_await_stopping(h, "lab", 10, done_cb, &done);
	bw_policy_host_free(h);
	tap_ok(done != 0, "freeing the host calls the done of an await still waiting");
	unlink(path);
}

static void test_mounts(struct bw_agent *a, const char *tmp, const char *dir)
{
	char path[PATH_MAX + 64], src[600], mnt[600], records[PATH_MAX + 16], saved[8192], cmd[2400], *text;
	struct bw_policy_host *h;
	double done = 0;

	if (access("/dev/fuse", R_OK | W_OK) != 0 || access(SFTP_SERVER, X_OK) != 0 ||
	    system("command -v sshfs >/dev/null && command -v fusermount3 >/dev/null") != 0) {
		tap_ok(1, "# SKIP mount records: needs /dev/fuse, sshfs, fusermount3 and " SFTP_SERVER);
		return;
	}
	snprintf(src, sizeof(src), "%s/share", tmp);
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmp);
	snprintf(records, sizeof(records), "%s/mounts.json", a->opts.state_dir);
	mkdir(src, 0700);
	mkdir(mnt, 0700);
	snprintf(path, sizeof(path), "%s/share/hello.txt", tmp);
	put(path, "through sshfs\n");
	snprintf(path, sizeof(path), "%s/20-mount.lua", dir);
	snprintf(cmd, sizeof(cmd),
		 "burrow.on('tunnel_up', function(ev)\n"
		 "  burrow.mount{source = 'x:%s', target = '%s', type = 'sshfs',\n"
		 "    options = 'ssh_command=/bin/sh -c " SFTP_SERVER "',\n"
		 "    on_exit = function(st, out) burrow.log('info', 'mount exit ' .. st .. ' ' .. out) end}\n"
		 "end)\n", src, mnt);
	put(path, cmd);

	h = bw_policy_host_new(a, dir, NULL);
	bw_events_emitf(&a->events, "tunnel_up", json_pack("{s:s}", "connection", "office"));
	tap_ok(wait_mounted(a->loop, mnt, 1, 10), "burrow.mount of type sshfs really mounts");
	snprintf(path, sizeof(path), "%s/hello.txt", mnt);
	text = slurp(path);
	tap_ok(text && strcmp(text, "through sshfs\n") == 0, "a file is read through the mount");
	run_for(a->loop, 0.1);
	text = slurp(records);
	tap_ok(text && strstr(text, mnt) && strstr(text, "\"sshfs\"") && strstr(text, "\"office\""),
	       "the mount is recorded in the state directory (target, type, connection)");
	snprintf(saved, sizeof(saved), "%s", text ? text : "");

	bw_events_emitf(&a->events, "tunnel_stopping", json_pack("{s:s,s:s}", "connection", "office", "reason", "stopped"));
	bw_policy_host_await_stopping(h, "office", 10, done_cb, &done);
	tap_ok(run_until_set(a->loop, &done, 10) && !mounted(mnt),
	       "what a policy left mounted is unmounted by the host while stopping, before done");
	text = slurp(records);
	tap_ok(text && !strstr(text, mnt), "and its record is gone");
	bw_policy_host_free(h);

	/* A crashed agent: the share is still mounted and the record still there. */
	snprintf(cmd, sizeof(cmd), "sshfs -o 'ssh_command=/bin/sh -c " SFTP_SERVER "' 'x:%s' '%s'", src, mnt);
	if (system(cmd) != 0 || !mounted(mnt)) {
		tap_ok(0, "could not mount again by hand: %s", cmd);
		return;
	}
	snprintf(path, sizeof(path), "%s/gone", tmp);
	{
		char with_stale[9000];
		char *end = strrchr(saved, ']');

		/* Plus the record of a mount that is no longer there. */
		if (!end)
			abort();
		snprintf(with_stale, sizeof(with_stale), "%.*s, {\"target\": \"%s\", \"type\": \"nfs\"}%s",
			 (int)(end - saved), saved, path, end);
		put(records, with_stale);
	}
	snprintf(path, sizeof(path), "%s/20-mount.lua", dir);
	unlink(path);
	loglen = 0;
	logbuf[0] = '\0';
	h = bw_policy_host_new(a, dir, NULL);
	tap_ok(wait_mounted(a->loop, mnt, 0, 10), "a restarted agent unmounts what the crashed one left mounted");
	tap_ok(strstr(logbuf, "is still mounted from the last run") != NULL, "and says so in the log");
	run_for(a->loop, 0.1);
	text = slurp(records);
	tap_ok(text && !strstr(text, mnt) && !strstr(text, "/gone"),
	       "the records are cleared, a stale one (no longer mounted) without running anything");
	tap_ok(!strstr(logbuf, "umount"), "no umount was run for the stale record");
	bw_policy_host_free(h);
}

int main(void)
{
	char tmp[] = "/tmp/burrow-policy-await-XXXXXX", dir[600], cmd[700];
	struct bw_agent a;

	if (!mkdtemp(tmp))
		return 1;
	snprintf(dir, sizeof(dir), "%s/policies", tmp);
	if (mkdir(dir, 0700) != 0)
		return 1;
	memset(&a, 0, sizeof(a));
	a.loop = ev_default_loop(0);
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s/state", tmp);
	mkdir(a.opts.state_dir, 0700);
	bw_events_init(&a.events);
	bw_log_init("test", 0, BW_LOG_ERROR);
	bw_log_set_sink(sink, NULL);

	test_await(&a, dir);
	test_mounts(&a, tmp, dir);

	bw_events_free(&a.events);
	bw_log_set_sink(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "fusermount3 -uz '%s/mnt' 2>/dev/null; rm -rf '%s'", tmp, tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	if (tap_failed)
		tap_diag("log:\n%s", logbuf);
	return tap_done_testing();
}

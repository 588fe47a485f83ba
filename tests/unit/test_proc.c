/* agent/proc.c, the one module that starts child processes: the synchronous run (exit
 * status, missing program, time limit that kills the whole group, stdin fed, a child that
 * reads none of it), the fixed PATH, and the asynchronous spawn through libev (output,
 * status, timeout). Real processes, no mocks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "proc.h"
#include "tap.h"

static char dir[] = "/tmp/bw-proc.XXXXXX";

static char *path_in(const char *name)
{
	static char buf[2][256];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static long file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* Running, as opposed to gone or a zombie waiting for whoever inherited it to reap it. */
static int running(int pid)
{
	char p[64], st[256];
	FILE *f;
	int alive = 0;

	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	if (!(f = fopen(p, "r")))
		return 0;
	if (fgets(st, sizeof(st), f)) {
		const char *close_paren = strrchr(st, ')');

		alive = close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z';
	}
	fclose(f);
	return alive;
}

static void test_sync(void)
{
	char *exit3[] = { "sh", "-c", "exit 3", NULL };
	char *none[] = { "burrow-no-such-program", NULL };
	char script[512], *argv[4] = { "sh", "-c", script, NULL };
	char *big;
	FILE *f;
	int pid = 0;

	tap_is_int(bw_child_run_sync(exit3, NULL, 0, 5.0), 3, "run_sync returns the exit status");
	tap_is_int(bw_child_run_sync(none, NULL, 0, 5.0), -ENOENT, "a program not in the fixed PATH is -ENOENT");

	/* A time limit that kills the group: sh's own child (sleep) must go too. */
	snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait", path_in("pid"));
	tap_is_int(bw_child_run_sync(argv, NULL, 0, 0.5), -ETIMEDOUT, "a child past its time limit is -ETIMEDOUT");
	f = fopen(path_in("pid"), "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	usleep(100 * 1000);
	tap_ok(pid > 0 && !running(pid), "and the process it started is killed with it (pid %d)", pid);

	snprintf(script, sizeof(script), "cat > %s", path_in("in"));
	tap_is_int(bw_child_run_sync(argv, "rule 1\nrule 2\n", 14, 5.0), 0, "stdin is fed to the child");
	tap_is_int(file_size(path_in("in")), 14, "all of it");

	big = malloc(1 << 20);
	memset(big, 'x', 1 << 20);
	snprintf(script, sizeof(script), "wc -c > %s", path_in("wc"));
	tap_is_int(bw_child_run_sync(argv, big, 1 << 20, 10.0), 0, "1 MiB through the pipe, more than it holds");
	f = fopen(path_in("wc"), "r");
	{
		long n = -1;

		if (f) {
			if (fscanf(f, "%ld", &n) != 1)
				n = -1;
			fclose(f);
		}
		tap_is_int(n, 1 << 20, "the child read every byte");
	}
	{
		char *skip[] = { "true", NULL };

		tap_is_int(bw_child_run_sync(skip, big, 1 << 20, 5.0), 0,
			   "a child that exits without reading its input is not an error and does not hang us");
	}
	{
		char *hang[] = { "sleep", "30", NULL };

		tap_is_int(bw_child_run_sync(hang, big, 1 << 20, 0.5), -ETIMEDOUT,
			   "a child that neither reads nor exits is stopped at the time limit");
	}
	free(big);

	/* The fixed PATH, not ours: argv[0] without a slash is found in BW_CHILD_PATH. */
	setenv("PATH", "/nonexistent", 1);
	tap_is_int(bw_child_run_sync(exit3, NULL, 0, 5.0), 3, "programs are found in BW_CHILD_PATH whatever PATH says");
	setenv("PATH", "/usr/bin:/bin", 1);
}

struct seen {
	int calls, status;
	char reason[16];
	char out[64];
};

static void done_cb(void *ctx, uint64_t token, int status, const char *reason, const char *out, size_t len)
{
	struct seen *s = ctx;

	(void)token;
	s->calls++;
	s->status = status;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	snprintf(s->out, sizeof(s->out), "%.*s", (int)(len < 63 ? len : 63), out);
}

static void test_spawn(void)
{
	struct ev_loop *loop = EV_DEFAULT;
	char *echo[] = { "sh", "-c", "echo hello; exit 2", NULL };
	char *slow[] = { "sleep", "30", NULL };
	struct seen a = { 0 }, b = { 0 };
	char err[200];

	tap_is_int(bw_child_spawn(loop, echo, NULL, 5.0, done_cb, &a, 1, err, sizeof(err)), 0, "spawn starts a child");
	tap_is_int(a.calls, 0, "its callback never runs from the spawn call itself");
	tap_is_int(bw_child_spawn(loop, slow, NULL, 0.3, done_cb, &b, 2, err, sizeof(err)), 0, "and a slow one");
	while (a.calls == 0 || b.calls == 0)
		ev_run(loop, EVRUN_ONCE);
	tap_ok(a.status == 2 && strcmp(a.reason, "exited") == 0 && strcmp(a.out, "hello\n") == 0,
	       "the first exits 2 with its output (%d %s '%s')", a.status, a.reason, a.out);
	tap_ok(strcmp(b.reason, "timeout") == 0, "the slow one is killed at its timeout (%s)", b.reason);
	tap_ok(bw_child_spawn(loop, (char *[]){ "burrow-no-such-program", NULL }, NULL, 1.0, done_cb, &a, 3, err,
			      sizeof(err)) < 0 && strstr(err, "cannot find the program burrow-no-such-program"),
	       "a missing program is refused at once with a sentence: %s", err);
}

/* ---- bw_child_fork: work in a forked copy, answered through the loop ------------------------ */

static char snapshot[32] = "before";

static char *work_snapshot(void *arg)
{
	(void)arg;
	usleep(200 * 1000);	/* the parent changes snapshot meanwhile */
	return strdup(snapshot);
}

static char *work_nothing(void *arg)
{
	(void)arg;
	return NULL;
}

static char *work_slow(void *arg)
{
	(void)arg;
	sleep(30);
	return strdup("late");
}

/* Gone and reaped: not even a zombie is left. */
static int reaped(pid_t pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void test_fork(void)
{
	struct ev_loop *loop = EV_DEFAULT;
	struct seen a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	char err[200];
	pid_t slow_pid, forgotten_pid;
	ev_timer guard;

	tap_is_int(bw_child_fork(loop, work_snapshot, NULL, 5.0, done_cb, &a, 1, err, sizeof(err)), 0,
		   "fork starts a worker");
	snprintf(snapshot, sizeof(snapshot), "after");
	tap_is_int(a.calls, 0, "its callback never runs from the fork call itself");
	tap_is_int(bw_child_fork(loop, work_nothing, NULL, 5.0, done_cb, &b, 2, err, sizeof(err)), 0,
		   "and one whose work gives no answer");
	tap_is_int(bw_child_fork(loop, work_slow, NULL, 0.3, done_cb, &c, 3, err, sizeof(err)), 0,
		   "and one that takes too long");
	slow_pid = bw_child_pid(&c);
	tap_is_int(bw_child_fork(loop, work_snapshot, NULL, 5.0, done_cb, &d, 4, err, sizeof(err)), 0,
		   "and one whose asker goes away");
	forgotten_pid = bw_child_pid(&d);
	bw_child_forget(&d);
	ev_timer_init(&guard, on_guard, 10.0, 0.0);
	ev_timer_start(loop, &guard);
	while ((a.calls == 0 || b.calls == 0 || c.calls == 0 || !reaped(forgotten_pid)) && ev_is_active(&guard))
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	tap_ok(a.status == 0 && strcmp(a.reason, "exited") == 0 && strcmp(a.out, "before") == 0,
	       "the worker answers from the agent's memory as it was at the fork (%d %s '%s')", a.status, a.reason,
	       a.out);
	tap_ok(b.calls == 1 && b.status == 1 && strcmp(b.reason, "exited") == 0 && b.out[0] == '\0',
	       "work that gives no answer ends with status 1 and no output (%d %s)", b.status, b.reason);
	tap_ok(c.calls == 1 && strcmp(c.reason, "timeout") == 0, "a worker past its time limit is stopped (%s)", c.reason);
	tap_ok(slow_pid > 0 && reaped(slow_pid), "and reaped (pid %d)", (int)slow_pid);
	tap_ok(forgotten_pid > 0 && reaped(forgotten_pid), "a forgotten worker is still reaped (pid %d)",
	       (int)forgotten_pid);
	tap_is_int(d.calls, 0, "but its answer reaches nobody");
}

static void test_run_sync_to(void)
{
	char script[512], *argv[] = { "sh", "-c", script, NULL };
	char *env_add[] = { "BW_PROC_TEST=added", NULL };
	char *text;
	FILE *o = fopen(path_in("out"), "w+"), *e = fopen(path_in("err"), "w+");
	long n;

	snprintf(script, sizeof(script), "echo \"$BW_PROC_TEST\"; echo oops >&2; exit 4");
	tap_is_int(bw_child_run_sync_to(argv, env_add, fileno(o), fileno(e), 5.0), 4,
		   "run_sync_to returns the exit status");
	text = calloc(1, 64);
	rewind(o);
	n = (long)fread(text, 1, 63, o);
	tap_ok(n == 6 && strcmp(text, "added\n") == 0, "stdout goes to out_fd, with env_add in the environment ('%s')", text);
	memset(text, 0, 64);
	rewind(e);
	n = (long)fread(text, 1, 63, e);
	tap_ok(n == 5 && strcmp(text, "oops\n") == 0, "stderr goes to err_fd ('%s')", text);
	free(text);
	fclose(o);
	fclose(e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* as burrowd does */
	if (!mkdtemp(dir)) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	test_sync();
	test_spawn();
	test_fork();
	test_run_sync_to();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done_testing();
}

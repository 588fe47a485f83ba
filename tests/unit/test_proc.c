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

int main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* as burrowd does */
	if (!mkdtemp(dir)) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	test_sync();
	test_spawn();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done_testing();
}

/* Child processes (proc.h). Every child gets its own process group so that a timeout kills
 * what it spawned too; the loop never waits for one, except in bw_child_run_sync, which is
 * bounded in time and waits on a pidfd rather than polling. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

extern char **environ;

struct bw_child {
	struct ev_loop *loop;
	pid_t pid;
	int fd;				/* read end of the output pipe, -1 once closed */
	ev_child cw;
	ev_io rw;
	ev_timer tw;
	bool timed_out;
	bw_child_done_cb cb;
	void *ctx;
	uint64_t token;
	char *out;
	size_t len;
	struct bw_child *next;
};

static struct bw_child *children;

int bw_child_find(const char *argv0, char *out, size_t outlen)
{
	const char *dir = BW_CHILD_PATH;

	if (strchr(argv0, '/'))
		return snprintf(out, outlen, "%s", argv0) < (int)outlen ? 0 : -1;
	while (*dir) {
		size_t n = strcspn(dir, ":");

		if (snprintf(out, outlen, "%.*s/%s", (int)n, dir, argv0) < (int)outlen &&
		    access(out, X_OK) == 0)
			return 0;
		dir += n + (dir[n] == ':');
	}
	return -1;
}

static void read_some(struct bw_child *c)
{
	char buf[4096];
	ssize_t n;

	while (c->fd >= 0) {
		n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ev_io_stop(c->loop, &c->rw);
			close(c->fd);
			c->fd = -1;
			return;
		}
		/* Keep the first BW_CHILD_OUTPUT_MAX bytes; drain the rest so the child never blocks. */
		if (c->len < BW_CHILD_OUTPUT_MAX) {
			size_t take = (size_t)n < BW_CHILD_OUTPUT_MAX - c->len ? (size_t)n : BW_CHILD_OUTPUT_MAX - c->len;

			memcpy(c->out + c->len, buf, take);
			c->len += take;
		}
	}
}

static void unlink_child(struct bw_child *c)
{
	for (struct bw_child **pp = &children; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			return;
		}
	}
}

static void on_output(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	read_some(bw_container_of(w, struct bw_child, rw));
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_child *c = bw_container_of(w, struct bw_child, tw);

	(void)loop;
	(void)revents;
	c->timed_out = true;
	kill(-c->pid, SIGKILL);
}

static void on_exit_child(struct ev_loop *loop, ev_child *w, int revents)
{
	struct bw_child *c = bw_container_of(w, struct bw_child, cw);
	int st = w->rstatus, status;
	const char *reason;

	(void)revents;
	ev_child_stop(loop, &c->cw);
	ev_timer_stop(loop, &c->tw);
	/* What the child wrote before it exited is in the pipe; what its own children still
	 * write later is not waited for. */
	read_some(c);
	if (c->fd >= 0) {
		ev_io_stop(loop, &c->rw);
		close(c->fd);
	}
	if (WIFEXITED(st)) {
		status = WEXITSTATUS(st);
		reason = "exited";
	} else {
		status = 128 + WTERMSIG(st);
		reason = "signal";
	}
	if (c->timed_out)
		reason = "timeout";
	unlink_child(c);
	if (c->cb)
		c->cb(c->ctx, c->token, status, reason, c->out, c->len);
	free(c->out);
	free(c);
}

static char **build_env(char *const *env_add)
{
	size_t n = 0, k = 0;
	char **env;

	for (char **e = environ; e && *e; e++)
		n++;
	for (char *const *e = env_add; e && *e; e++)
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (char *const *e = env_add; e && *e; e++)
		env[k++] = *e;
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "BURROW_", 7) != 0)
			env[k++] = *e;
	env[k] = NULL;
	return env;
}

/* in_fd, out_fd, err_fd: the child's stdin, stdout and stderr; -1 for /dev/null. */
static pid_t fork_exec(const char *path, char *const *argv, char **env, int in_fd, int out_fd, int err_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* Child: only async-signal-safe calls from here. */
	setpgid(0, 0);
	{
		int null = open("/dev/null", O_RDWR);

		dup2(in_fd >= 0 ? in_fd : null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(err_fd >= 0 ? err_fd : null, 2);
	}
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	close_range(3, ~0U, 0);
	execve(path, argv, env);
	{
		static const char msg[] = "burrow: cannot execute the program\n";

		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
	}
	_exit(127);
}

/* Registers a forked child (c->pid set): its output pipe, its exit and its time limit. */
static void watch(struct bw_child *c, struct ev_loop *loop, int fd, double timeout_s, bw_child_done_cb cb,
		  void *ctx, uint64_t token)
{
	setpgid(c->pid, c->pid);	/* also here: no window in which a kill misses it */
	c->loop = loop;
	c->fd = fd;
	c->cb = cb;
	c->ctx = ctx;
	c->token = token;
	ev_child_init(&c->cw, on_exit_child, c->pid, 0);
	ev_child_start(loop, &c->cw);
	ev_io_init(&c->rw, on_output, c->fd, EV_READ);
	ev_io_start(loop, &c->rw);
	ev_timer_init(&c->tw, on_timeout, timeout_s, 0);
	if (timeout_s > 0)
		ev_timer_start(loop, &c->tw);
	c->next = children;
	children = c;
}

int bw_child_spawn(struct ev_loop *loop, char *const *argv, char *const *env_add, double timeout_s,
		   bw_child_done_cb cb, void *ctx, uint64_t token, char *err, size_t errlen)
{
	struct bw_child *c;
	char path[4096];
	char **env;
	int fds[2];

	if (!argv || !argv[0] || bw_child_find(argv[0], path, sizeof(path)) != 0) {
		snprintf(err, errlen, "cannot find the program %s in %s; give its full path",
			 argv && argv[0] ? argv[0] : "(none)", BW_CHILD_PATH);
		return -1;
	}
	if (access(path, X_OK) != 0) {
		snprintf(err, errlen, "cannot execute %s: %s", path, strerror(errno));
		return -1;
	}
	c = calloc(1, sizeof(*c));
	env = build_env(env_add);
	if (!c || !env || !(c->out = malloc(BW_CHILD_OUTPUT_MAX))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Only our end is non-blocking: a child must block on a full pipe, not fail. */
	if (pipe2(fds, O_CLOEXEC) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	c->pid = fork_exec(path, argv, env, -1, fds[1], fds[1]);
	close(fds[1]);
	if (c->pid < 0) {
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
		close(fds[0]);
		goto fail;
	}
	free(env);
	watch(c, loop, fds[0], timeout_s, cb, ctx, token);
	return 0;
fail:
	free(env);
	if (c)
		free(c->out);
	free(c);
	return -1;
}

void bw_child_forget(void *ctx)
{
	for (struct bw_child *c = children; c; c = c->next)
		if (c->ctx == ctx)
			c->cb = NULL;
}

pid_t bw_child_pid(const void *ctx)
{
	for (struct bw_child *c = children; c; c = c->next)
		if (c->ctx == ctx)
			return c->pid;
	return 0;
}

/* Writes input to fd (a pipe to the child's stdin) as far as the child reads it, until the
 * deadline; closes fd. 0 or -errno. */
static int feed(int fd, const char *input, size_t len, int pidfd, uint64_t deadline)
{
	int rc = 0;

	while (len > 0 && rc == 0) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLOUT }, { .fd = pidfd, .events = POLLIN } };
		uint64_t now = bw_now_ms();
		ssize_t n;

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(p, 2, (int)(deadline - now)) < 0) {
			rc = errno == EINTR ? 0 : -errno;
			continue;
		}
		if (p[1].revents)	/* the child ended without reading everything */
			break;
		n = write(fd, input, len);
		if (n < 0)
			rc = errno == EAGAIN || errno == EINTR ? 0 : -errno;
		else
			input += n, len -= (size_t)n;
	}
	close(fd);
	return rc == -EPIPE ? 0 : rc;
}

static int run_sync(char *const *argv, char *const *env_add, const char *input, size_t input_len, int out_fd,
		    int err_fd, double timeout_s)
{
	uint64_t deadline = bw_now_ms() + (uint64_t)(timeout_s * 1000);
	char path[4096];
	int fds[2] = { -1, -1 }, pidfd, st, rc = 0;
	char **env;
	pid_t pid;

	if (!argv || !argv[0] || bw_child_find(argv[0], path, sizeof(path)) != 0 || access(path, X_OK) != 0)
		return -ENOENT;
	if (!(env = build_env(env_add)))
		return -ENOMEM;
	if (input && pipe2(fds, O_CLOEXEC) != 0) {
		free(env);
		return -errno;
	}
	pid = fork_exec(path, argv, env, fds[0], out_fd, err_fd);
	free(env);
	if (fds[0] >= 0)
		close(fds[0]);
	if (pid < 0) {
		rc = -errno;
		if (fds[1] >= 0)
			close(fds[1]);
		return rc;
	}
	setpgid(pid, pid);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fds[1] >= 0) {
		fcntl(fds[1], F_SETFL, O_NONBLOCK);
		rc = feed(fds[1], input, input_len, pidfd, deadline);
	}
	/* Wait for the exit until the deadline: the pidfd becomes readable when the child ends. */
	while (rc == 0 && pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		uint64_t now = bw_now_ms();

		if (now >= deadline)
			rc = -ETIMEDOUT;
		else if (poll(&p, 1, (int)(deadline - now)) > 0)
			break;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (rc == -ETIMEDOUT)
		kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (rc < 0)
		return rc;
	if (WIFEXITED(st))
		return WEXITSTATUS(st) == 127 ? -ENOENT : WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int bw_child_run_sync(char *const *argv, const char *input, size_t input_len, double timeout_s)
{
	return run_sync(argv, NULL, input, input_len, -1, -1, timeout_s);
}

int bw_child_run_sync_to(char *const *argv, char *const *env_add, int out_fd, int err_fd, double timeout_s)
{
	return run_sync(argv, env_add, NULL, 0, out_fd, err_fd, timeout_s);
}

/* The forked worker: a process group of its own, default signal handling (the agent's
 * handlers would wake the agent's loop through descriptors the two share), fn's text into
 * the pipe, then _exit. */
static void __attribute__((noreturn)) work_child(bw_child_work_fn fn, void *arg, int out_fd)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
	sigset_t none;
	size_t off = 0, len;
	char *text;

	setpgid(0, 0);
	for (size_t i = 0; i < BW_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &dfl, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	text = fn(arg);
	if (!text)
		_exit(1);
	len = strlen(text);
	while (off < len) {
		ssize_t n = write(out_fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		off += (size_t)n;
	}
	_exit(0);
}

int bw_child_fork(struct ev_loop *loop, bw_child_work_fn fn, void *arg, double timeout_s,
		  bw_child_done_cb cb, void *ctx, uint64_t token, char *err, size_t errlen)
{
	struct bw_child *c = calloc(1, sizeof(*c));
	int fds[2];

	if (!c || !(c->out = malloc(BW_CHILD_OUTPUT_MAX))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pipe2(fds, O_CLOEXEC) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	c->pid = fork();
	if (c->pid == 0) {
		close(fds[0]);
		work_child(fn, arg, fds[1]);
	}
	close(fds[1]);
	if (c->pid < 0) {
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
		close(fds[0]);
		goto fail;
	}
	watch(c, loop, fds[0], timeout_s, cb, ctx, token);
	return 0;
fail:
	if (c)
		free(c->out);
	free(c);
	return -1;
}

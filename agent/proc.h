/* Child processes, the one module that starts them: policy actions, the DNS forwarder and
 * resolvectl, nft for the kill switch, the doctor and report workers and the report's
 * commands. fork/execve without a shell, a fixed PATH, in their
 * own process group, output captured through a pipe, a timeout that kills the group, reaped
 * by libev (or, for the few synchronous uses, waited on through a pidfd with a time limit). */
#ifndef BURROW_PROC_H
#define BURROW_PROC_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* status: exit code; 128+N when killed by signal N. reason: "exited", "signal" or
 * "timeout". out holds at most BW_CHILD_OUTPUT_MAX bytes of stdout and stderr. */
#define BW_CHILD_OUTPUT_MAX (64u << 10)
typedef void (*bw_child_done_cb)(void *ctx, uint64_t token, int status, const char *reason,
				 const char *out, size_t len);

/* The directories searched when argv[0] has no slash (the agent's own PATH is not trusted). */
#define BW_CHILD_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Starts argv with the agent's environment plus env_add ("K=V", NULL-terminated; earlier
 * BURROW_* variables are dropped). loop must be the default loop. cb runs later from
 * the loop, never from this call. timeout_s <= 0: no timeout (a service such as the DNS
 * forwarder). 0, or -1 with a reason in err (nothing started). */
int bw_child_spawn(struct ev_loop *loop, char *const *argv, char *const *env_add, double timeout_s,
		   bw_child_done_cb cb, void *ctx, uint64_t token, char *err, size_t errlen);

/* Children started with ctx still run and are reaped, but their cb is not called. */
void bw_child_forget(void *ctx);

/* The process id of the newest running child started with ctx, or 0. */
pid_t bw_child_pid(const void *ctx);

/* Runs argv and waits for it, killing its process group after timeout_s. input (may be NULL)
 * is written to its stdin, which is /dev/null otherwise; its stdout and stderr go to
 * /dev/null. For short commands whose result the caller needs before it goes on (nft,
 * resolvectl) and for shutdown. Exit status; -ENOENT when the program is not in
 * BW_CHILD_PATH or cannot be run; -ETIMEDOUT; 128+N after signal N; another -errno. */
int bw_child_run_sync(char *const *argv, const char *input, size_t input_len, double timeout_s);

/* The same with the command's stdout and stderr written to out_fd and err_fd (-1: /dev/null;
 * they may be the same fd) and env_add added to its environment, as bw_child_spawn does. */
int bw_child_run_sync_to(char *const *argv, char *const *env_add, int out_fd, int err_fd, double timeout_s);

/* Work done in a forked copy of the agent, off the loop: fn(arg) runs in the child, which
 * sees the agent's memory as it was at the fork (copy on write); the text it returns
 * (malloc'd, may be NULL) goes back through a pipe and reaches cb as out (at most
 * BW_CHILD_OUTPUT_MAX bytes), status 0 when fn returned text. The child is in its own
 * process group, which the timeout kills; it must not touch the loop, and it leaves with
 * _exit (no atexit handlers, no leak check). Signals the agent handles are reset to their
 * defaults in it. Same contract as bw_child_spawn otherwise (cb from the loop, never from
 * this call; bw_child_forget). */
typedef char *(*bw_child_work_fn)(void *arg);
int bw_child_fork(struct ev_loop *loop, bw_child_work_fn fn, void *arg, double timeout_s,
		  bw_child_done_cb cb, void *ctx, uint64_t token, char *err, size_t errlen);

/* Resolves argv0 against BW_CHILD_PATH into out; 0 or -1. */
int bw_child_find(const char *argv0, char *out, size_t outlen);

#endif

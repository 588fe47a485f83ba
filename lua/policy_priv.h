/* Inside the policy host: the operations it asks of an agent (real in policy_agent.c,
 * simulated in policy_sim.c), the per-policy state and the pieces shared by its files. */
#ifndef BURROW_POLICY_PRIV_H
#define BURROW_POLICY_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lua.h>

#include "agent/log.h"
#include "agent/proc.h"

#define BW_POLICY_INSN_BUDGET 10000000	/* instructions per call into Lua */
#define BW_POLICY_HOOK_STEP 1000	/* the count hook runs every this many */
#define BW_POLICY_MEM_CAP (32u << 20)	/* bytes per policy */
#define BW_POLICY_ERR_MAX 10		/* errors within BW_POLICY_ERR_WINDOW_S disable it */
#define BW_POLICY_ERR_WINDOW_S 60.0
#define BW_POLICY_OUTPUT_MAX BW_CHILD_OUTPUT_MAX	/* exec output kept for on_exit (proc.h) */
#define BW_POLICY_EXEC_TIMEOUT_S 30.0

/* One child process that a policy asked for (exec, mount, unmount, notify). The host
 * owns the strings; the ops copy what they keep. Completion comes back, never
 * synchronously from inside the Lua call, through bw_policy_host_exec_done(). */
struct bw_policy_exec_req {
	const char *policy;		/* file name, for logs */
	const char *conn;		/* connection of the event being handled, or NULL */
	const char *what;		/* "exec /bin/true", "mount SRC TARGET": for log and transcript */
	char **argv;			/* argv[0] absolute or searched in a fixed PATH */
	char **env;			/* "BURROW_X=..." entries added to the environment */
	double timeout_s;
	uint64_t token;
};

struct bw_policy_ops {
	double (*now)(void *ctx);	/* seconds on the host's clock */
	/* Asks for bw_policy_host_run() at time `at` (at <= now: soon, not from this call). */
	void (*arm)(void *ctx, double at);
	/* Connection actions: 0, or -1 with a one-sentence reason in err. */
	int (*start)(void *ctx, const char *policy, const char *name, char *err, size_t errlen);
	int (*stop)(void *ctx, const char *policy, const char *name, char *err, size_t errlen);
	int (*restart)(void *ctx, const char *policy, const char *name, char *err, size_t errlen);
	json_t *(*connections)(void *ctx);	/* new array of bw_conn_to_json-shaped objects */
	/* One of those, new, or NULL when there is none; may be NULL (connections is searched). */
	json_t *(*connection)(void *ctx, const char *name);
	int (*exec)(void *ctx, const struct bw_policy_exec_req *req, char *err, size_t errlen);
	void (*notify)(void *ctx, const char *policy, const char *title, const char *body);
	/* Log lines of the host and of burrow.log(); policy may be NULL. */
	void (*log)(void *ctx, enum bw_log_level level, const char *policy, const char *msg);
	/* An event about the host itself (policy_disabled); consumes fields. */
	void (*emit)(void *ctx, const char *name, json_t *fields);
	/* Observers for the transcript; may be NULL. */
	void (*dispatching)(void *ctx, const json_t *event);
	void (*timer_firing)(void *ctx, const char *policy);
	/* Runs argv to completion now (shutdown unmounts): exit status or -1; may be NULL. */
	int (*run_sync)(void *ctx, char **argv, double timeout_s);
	/* Whether target is a mount point now (stale records); may be NULL: assume it is. */
	bool (*is_mounted)(void *ctx, const char *target);
	/* The wall clock os.time()/os.date() see (the simulator's virtual one, dates in UTC);
	 * NULL: the real clock and local time. */
	double (*wall)(void *ctx);
};

struct bw_policy_handler {
	int id;
	char *event;
	int ref;			/* the function, in the registry */
};

struct bw_policy {
	struct bw_policy_host *host;
	uint64_t id;			/* unique over reloads: late callbacks find no policy */
	char path[PATH_MAX];
	const char *name;		/* base name of path */
	lua_State *L;			/* NULL once disabled */

	size_t mem_used, mem_cap;
	bool mem_hit;
	long hook_left;			/* count-hook calls left in this call */
	bool budget_hit;

	double err_times[BW_POLICY_ERR_MAX];	/* ring of the latest error times */
	size_t n_err;
	bool disabled;

	struct bw_policy_handler *handlers;
	size_t n_handlers;
	int next_handler_id;

	json_t *locations;		/* [{"name":..., "rule":{...}}, ...] */
	json_t *loc_tmp;		/* rules being built by burrow.locations */
	const json_t *cur_event;	/* the event being handled, for exec's environment */
	json_t *lint;			/* ["LINE: message", ...] found while loading (check) */
	char last_error[1024];		/* the first line of the latest error */
};

struct bw_policy_timer {
	uint64_t id;
	uint64_t policy_id;
	double due, interval_s;		/* interval 0: one-shot */
	int ref;
};

struct bw_policy_pending {
	uint64_t token;
	uint64_t policy_id;
	int ref;			/* on_exit or LUA_NOREF */
	int kind;			/* PENDING_EXEC, _MOUNT, _UNMOUNT */
	char *target, *type, *conn;	/* mount bookkeeping */
	char *what;			/* for the log of an await that timed out */
	char *stop_conn;		/* started for the tunnel_stopping of this connection */
};

struct bw_policy_mount {
	char *target, *type, *conn;
};

struct bw_policy_item {			/* the run queue */
	uint64_t seq;			/* in queue order; h->done_seq says how far the host got */
	json_t *event;			/* an event, or NULL for an exit */
	char *stop_conn;		/* an exit: the pending record's stop_conn */
	uint64_t policy_id;
	int ref, status;
	char *reason, *output;
	size_t output_len;
	struct bw_policy_item *next;
};

/* Someone (the connection manager) waits for the tunnel_stopping of conn to be handled. */
struct bw_policy_await {
	char *conn;
	uint64_t wait_seq;		/* the queued tunnel_stopping item; 0: none was queued */
	double deadline;
	void (*done)(void *ctx);
	void *ctx;
};

struct bw_policy_host {
	const struct bw_policy_ops *ops;
	void *ctx;
	char *dir, *defaults;		/* what reload reads; dir may be NULL */
	char **files;			/* or an explicit list (the simulator) */
	size_t n_files;

	struct bw_policy **policies;
	size_t n_policies;
	uint64_t next_policy_id, next_timer_id, next_token;

	struct bw_policy_timer *timers;
	size_t n_timers;
	struct bw_policy_pending *pending;
	size_t n_pending;
	struct bw_policy_mount *mounts;
	size_t n_mounts;
	struct bw_policy_item *q_head, *q_tail;
	uint64_t next_seq, done_seq;
	bool running;
	const char *cur_stop_conn;	/* tag for what the running call starts, or NULL */
	struct bw_policy_await *awaits;
	size_t n_awaits;
	char *mounts_path;		/* where the mount records live (the agent), or NULL */

	json_t *facts;
	unsigned errors;		/* every error of every policy, for `policy test` */
	json_t *load_errors;		/* [{file, line, message}] of the last (re)load */
};

/* policy_host.c */
struct bw_policy_host *bw_policy_host_new_ops(const struct bw_policy_ops *ops, void *ctx);
/* Loads one file as a new policy (after the others); -1 when it did not compile or its
 * main chunk raised (already reported through ops->log). */
int bw_policy_host_load_file(struct bw_policy_host *h, const char *path);
void bw_policy_host_set_dir(struct bw_policy_host *h, const char *dir, const char *defaults);
void bw_policy_host_unload(struct bw_policy_host *h);
void bw_policy_host_free_ops(struct bw_policy_host *h);
/* Queues an event (takes a new reference) and arms the host. */
void bw_policy_host_push_event(struct bw_policy_host *h, json_t *event);
/* Runs what is queued and the timers that are due, then re-arms. */
void bw_policy_host_run(struct bw_policy_host *h);
double bw_policy_host_next_due(const struct bw_policy_host *h);
bool bw_policy_host_busy(const struct bw_policy_host *h);
void bw_policy_host_exec_done(struct bw_policy_host *h, uint64_t token, int status,
			      const char *reason, const char *output, size_t len);
/* The core of bw_policy_host_await_stopping (h != NULL): done runs from bw_policy_host_run
 * once the queued tunnel_stopping of conn has been dispatched and every action tagged with
 * it has finished (its on_exit too), or at now + timeout_s. */
void bw_policy_host_await(struct bw_policy_host *h, const char *conn, double timeout_s,
			  void (*done)(void *ctx), void *ctx);
/* Mount records: kept in path (JSON) from now on; the records found there (an earlier run
 * that crashed) are unmounted now when still mounted. */
void bw_policy_host_mounts_file(struct bw_policy_host *h, const char *path);
/* Reports a failed call (what failed, Lua's message), counts it against the error budget
 * and disables the policy when the budget is spent. */
void bw_policy_error(struct bw_policy *p, const char *what, const char *msg);
void bw_policy_hostf(struct bw_policy_host *h, enum bw_log_level level, const char *policy,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* policy_lua.c: the sandbox and the one way into Lua */
lua_State *bw_policy_state_new(struct bw_policy *p);
/* Calls the function below nargs arguments on p->L's stack; pops them. 0 or -1 (the error
 * has been reported and counted; the policy may now be disabled). */
int bw_policy_call(struct bw_policy *p, int nargs, const char *what);
void bw_policy_push_json(lua_State *L, const json_t *v, int depth);
static inline struct bw_policy *bw_policy_of(lua_State *L)
{
	return *(struct bw_policy **)lua_getextraspace(L);
}

/* policy_api.c: the burrow module */
void bw_policy_open_burrow(lua_State *L);
int bw_policy_pending_add(struct bw_policy_host *h, struct bw_policy *p, int kind, int ref,
			  const char *target, const char *type, const char *conn, const char *what,
			  uint64_t *token);
enum { BW_PENDING_EXEC, BW_PENDING_MOUNT, BW_PENDING_UNMOUNT };

#endif

/* A connection: its configuration, its state machine, its own bounded log and its last
 * failure. bw_conn_set_state() is the only writer of the state. */
#ifndef BURROW_CONN_H
#define BURROW_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "config/config.h"
#include "log.h"

struct bw_agent;
struct bw_ike_conn;
struct bw_conn;

enum bw_conn_state {
	BW_CONN_DOWN,
	BW_CONN_CONNECTING,
	BW_CONN_UP,
	BW_CONN_REKEYING,
	BW_CONN_STOPPING,
	BW_CONN_FAILED,
	BW_CONN_INVALID,
	BW_CONN_NEEDS_SECRET,
};

#define BW_CONN_LOG_LINES 2000

/* Told of each state change of a connection (from -> c->state), and once with gone set just
 * before the connection is freed. An observer may add or remove observers, itself included,
 * while it is being told; it must not free the connection. */
typedef void (*bw_conn_observer_fn)(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone);

struct bw_conn_observer {
	bw_conn_observer_fn fn;			/* NULL: removed during a notification */
	void *ctx;
};

struct bw_conn_log_line {
	double time;
	enum bw_log_level level;
	char *msg;
};

struct bw_conn {
	struct bw_agent *agent;
	char name[BW_NAME_MAX];
	char file[PATH_MAX];

	bool valid;
	struct bw_conn_config cfg;		/* meaningful when valid */
	struct bw_cfg_error cfg_err;		/* why not valid */
	bool seen;				/* marks survivors during a reload */

	enum bw_conn_state state;
	time_t state_since;
	time_t up_since;

	/* The last failure, for `burrow explain` and tunnel_failed. */
	char fail_code[48];
	char fail_error[256];
	char fail_explanation[768];
	time_t fail_time;

	struct bw_conn_log_line *log;		/* BW_CONN_LOG_LINES slots, allocated at the first line */
	size_t log_head, log_count;

	/* The stopping barrier: who holds the stop of a tunnel that was up until its own actions
	 * are done (the policy host's tunnel_stopping handlers, wired by the agent). await calls
	 * done(done_ctx) exactly once, from the loop, within its own time bound. NULL: no wait. */
	struct {
		void *ctx;
		void (*await)(void *ctx, const char *conn, void (*done)(void *done_ctx), void *done_ctx);
	} stopping_barrier;

	struct bw_ike_conn *ike;		/* owned by the IKE engine while not down */
	char stop_reason[32];			/* carried from tunnel_stopping to tunnel_down */
	char needs_secret[32];			/* the secrets key that is missing, for the CLI's prompt */
	struct bw_secrets prompted;		/* typed in at `burrow start`; wiped once phase 1 is up */

	/* Who waits for state changes: the control server's waiting clients, policy restarts. */
	struct bw_conn_observer *observers;
	size_t n_observers;
	unsigned notifying;			/* notifications in progress: removal only marks */

	/* Speed figures for status, sampled by the agent once a second. */
	uint64_t last_bytes_in, last_bytes_out;
	double rate_in, rate_out, max_rate_in, max_rate_out;
};

const char *bw_conn_state_name(enum bw_conn_state s);

struct bw_conn *bw_conn_new(struct bw_agent *agent, const char *name, const char *file);
void bw_conn_free(struct bw_conn *c);

/* The only place that changes c->state: checks the transition, logs "old -> new", emits the
 * tunnel_* event that goes with it and tells the observers. reason is for tunnel_down/_stopping. */
void bw_conn_set_state(struct bw_conn *c, enum bw_conn_state to, const char *reason);

/* Records a failure (code like "no-proposal-chosen", one-sentence error, explanation
 * with what to check), moves to failed and emits tunnel_failed. */
void bw_conn_fail(struct bw_conn *c, const char *code, const char *error, const char *explanation);

/* The one way every failure is reported, wherever it is found (start refused, datapath,
 * IKE, DPD, the gateway's delete, a network change): logs error at error level in the
 * connection's log, records it for explain/status, moves to `to` (failed, down,
 * needs-secret; the current state for an invalid connection) and emits tunnel_down with
 * down_reason when the tunnel was up, then tunnel_failed with the code. The one exception,
 * as docs/policies.md says: the gateway's delete of a tunnel that was up (code
 * deleted-by-peer) ends in tunnel_down only, for it is the gateway's decision. */
void bw_conn_fail_to(struct bw_conn *c, enum bw_conn_state to, const char *down_reason, const char *code,
		     const char *error, const char *explanation);

/* Adds fn(ctx) to c's observers (0, or -1 out of memory); removes it again. Observers
 * added during a notification are told from the next change on. */
int bw_conn_observe(struct bw_conn *c, bw_conn_observer_fn fn, void *ctx);
void bw_conn_unobserve(struct bw_conn *c, bw_conn_observer_fn fn, void *ctx);

void bw_conn_log_append(struct bw_conn *c, enum bw_log_level level, const char *msg);

/* Start and stop, as the CLI and policies ask; 0 or -1 with a reason in err. */
int bw_conn_start(struct bw_conn *c, char *err, size_t errlen);
int bw_conn_stop(struct bw_conn *c, const char *reason, char *err, size_t errlen);

/* JSON views for list/status. */
json_t *bw_conn_to_json(const struct bw_conn *c, bool detail);
json_t *bw_conn_log_json(const struct bw_conn *c, enum bw_log_level max_level, size_t lines);

#endif

/* The policy simulator behind `burrow policy check` and `burrow policy test`: the real
 * policy host against a simulated agent, in virtual time, printing a transcript. */
#ifndef BURROW_POLICY_SIM_H
#define BURROW_POLICY_SIM_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>

struct bw_policy_sim;

/* out receives the transcript (may be NULL). */
struct bw_policy_sim *bw_policy_sim_new(FILE *out);
void bw_policy_sim_free(struct bw_policy_sim *s);
/* With json, every transcript line is one JSON object (see docs/policies.md). */
void bw_policy_sim_set_json(struct bw_policy_sim *s, bool json);
/* Names of the simulated connections declared so far, new array of strings. */
json_t *bw_policy_sim_connection_names(const struct bw_policy_sim *s);

/* Declares a simulated connection: {"name": "office", "autostart": "boot", "group": "Work",
 * "fail": "no-proposal-chosen"}; only name is required. With none declared, any name a
 * policy or the trace uses is created on first use. 0 or -1. */
int bw_policy_sim_add_connection(struct bw_policy_sim *s, const json_t *conn);
/* Declares the connections of DIR/connections/ *.conf (name, group, autostart). */
int bw_policy_sim_load_config_dir(struct bw_policy_sim *s, const char *dir, char *err, size_t errlen);

/* Loads a policy file; -1 when it does not compile or its main chunk raised. */
int bw_policy_sim_load(struct bw_policy_sim *s, const char *path);

/* Replays a JSONL trace (see docs/policies.md). 0, or -1 with "TRACE:LINE: reason" in err
 * for a malformed trace. */
int bw_policy_sim_replay(struct bw_policy_sim *s, FILE *trace, const char *trace_name, char *err,
			 size_t errlen);

/* Injects one event at virtual time t (>= the current time), running due timers first. */
void bw_policy_sim_event(struct bw_policy_sim *s, double t, const json_t *event);
/* Lets virtual time pass to t, firing timers. */
void bw_policy_sim_advance(struct bw_policy_sim *s, double t);

/* Errors raised by policies so far (compile errors included). */
unsigned bw_policy_sim_errors(const struct bw_policy_sim *s);
/* Error-level messages so far, oldest first (borrowed). */
const json_t *bw_policy_sim_messages(const struct bw_policy_sim *s);
/* Lint findings of the loaded policies ("FILE:LINE: ..."), new array. */
json_t *bw_policy_sim_lint(const struct bw_policy_sim *s);

/* policy_lint.c: reads the policy's text (it is not run) for burrow.on("unknown event")
 * and, when conns (array of names) is given, burrow.start/stop/restart of a name that is
 * not among them; the name may be a literal or a constant (NAME = "x" on a line of its
 * own). New array of "PATH:LINE: message". */
json_t *bw_policy_lint_text(const char *path, const json_t *conns, const char *config_dir);

#endif

/* The Lua policy host as the agent sees it: load the policies, feed them the event bus,
 * reload them on change. The Lua side, the sandbox and the simulator live behind this. */
#ifndef BURROW_POLICY_HOST_H
#define BURROW_POLICY_HOST_H

#include <stddef.h>
#include <jansson.h>

#include "watch/watch.h"

struct bw_agent;
struct bw_policy_host;

/* Creates the host, subscribes it to a->events and loads the policies: the shipped
 * system_defaults (or policies_dir/defaults.lua when the admin put one there), then
 * policies_dir/ *.lua in lexical order. a->loop must be the default loop (children are
 * reaped with ev_child). A "start" event already on the bus is delivered once. Mounts are
 * recorded in a->opts.state_dir/mounts.json; what an earlier run left mounted there is
 * unmounted (asynchronously) now. */
struct bw_policy_host *bw_policy_host_new(struct bw_agent *a, const char *policies_dir,
					  const char *system_defaults);

/* Drops every handler, timer and pending callback of the loaded policies and loads them
 * again from disk. Running connections and mounts are left alone. */
void bw_policy_host_reload(struct bw_policy_host *h);

/* The policies that did not load at the last load or reload, as [{file, line, message}]
 * (borrowed; line 0 when the message names none). Each was also emitted as a
 * policy_error event with those fields. NULL h gives NULL. */
const json_t *bw_policy_host_load_errors(const struct bw_policy_host *h);

/* Unsubscribes, unmounts what policies mounted, frees everything. NULL is fine. */
void bw_policy_host_free(struct bw_policy_host *h);

/* For the connection manager, between emitting tunnel_stopping for conn and deleting its
 * SAs: calls done(ctx) from the loop (never from this call) once that tunnel_stopping has
 * been delivered to every handler and every exec/mount/unmount those handlers started
 * (and whatever their on_exit callbacks started) has finished, including the host's own
 * unmount of what policies mounted for conn; or after timeout_s (default: use
 * BW_POLICY_STOPPING_TIMEOUT_S), logging the actions still running. With h == NULL, or no
 * handler and nothing mounted, done runs on the next loop turn. The event must have been
 * emitted before this call (else only actions already running for it are waited for).
 * bw_policy_host_free calls the done of awaits still outstanding. */
#define BW_POLICY_STOPPING_TIMEOUT_S 10.0
void bw_policy_host_await_stopping(struct bw_policy_host *h, const char *conn, double timeout_s,
				   void (*done)(void *ctx), void *ctx);

/* The sink the event sources give their facts to (watch/watch.h): set_facts and the
 * location rules of this host. h may be NULL (facts dropped, no rule matches). */
struct bw_watch_sink bw_policy_host_watch_sink(struct bw_policy_host *h);

/* Bytes held by the Lua states of the loaded policies. */
size_t bw_policy_host_memory(const struct bw_policy_host *h);

/* Replaces the facts that burrow.facts() returns (the host keeps its own reference and
 * also folds ssid/network/location events into them). */
void bw_policy_host_set_facts(struct bw_policy_host *h, json_t *facts);

/* Matches the burrow.locations{} rules of the loaded policies (in load order, then rule
 * order) against facts. Writes the first matching rule's name into out; returns 1 when
 * one matched, 0 when none did. Keys: ssid, bssid, gateway_mac, default_gateway,
 * interface, dns_domain; every key of a rule must match; a value may be a list (any of). */
int bw_policy_host_match_location(struct bw_policy_host *h, const json_t *facts, char *out,
				  size_t outlen);

#endif

/* The Lua policy host as the agent sees it: load the policies, feed them the event bus,
 * reload them on change. The Lua side, the sandbox and the simulator live behind this. */
#ifndef BURROW_POLICY_HOST_H
#define BURROW_POLICY_HOST_H

#include <stddef.h>
#include <jansson.h>

struct bw_agent;
struct bw_policy_host;

/* Creates the host, subscribes it to a->events and loads the policies: the shipped
 * system_defaults (or policies_dir/defaults.lua when the admin put one there), then
 * policies_dir/ *.lua in lexical order. a->loop must be the default loop (children are
 * reaped with ev_child). A "start" event already on the bus is delivered once. */
struct bw_policy_host *bw_policy_host_new(struct bw_agent *a, const char *policies_dir,
					  const char *system_defaults);

/* Drops every handler, timer and pending callback of the loaded policies and loads them
 * again from disk. Running connections and mounts are left alone. */
void bw_policy_host_reload(struct bw_policy_host *h);

/* Unsubscribes, unmounts what policies mounted, frees everything. NULL is fine. */
void bw_policy_host_free(struct bw_policy_host *h);

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

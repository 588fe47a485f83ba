/* The agent: the event loop, the connections, the control socket, the event bus.
 * One thread; everything here runs from libev callbacks. */
#ifndef BURROW_AGENT_H
#define BURROW_AGENT_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>

#include "config/config.h"
#include "conn.h"
#include "events.h"

struct bw_ctl_server;
struct bw_file_watch;
struct bw_policy_host;
struct bw_watch;

struct bw_agent_opts {
	char config_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char socket_path[PATH_MAX];
	char devices_dir[PATH_MAX];
	int log_level;			/* -1: take it from burrow.conf */
};

struct bw_agent {
	struct ev_loop *loop;
	struct bw_agent_opts opts;
	struct bw_agent_config cfg;
	struct bw_devices devices;

	struct bw_conn **conns;		/* sorted by name */
	size_t n_conns;

	struct bw_events events;
	struct bw_ctl_server *ctl;
	struct bw_file_watch *watch;
	struct bw_policy_host *policies;
	struct bw_watch *sources;	/* network, ssid, logins, location (watch/watch.h) */

	ev_signal sig_term, sig_int, sig_hup;
	ev_timer stats_timer;
	ev_timer net_timer;		/* checks tunnels shortly after a network event */
	bool stopping;
	time_t started;
};

int bw_agent_init(struct bw_agent *a, struct ev_loop *loop, const struct bw_agent_opts *opts);
/* Stops every connection, undoes side effects, frees everything. */
void bw_agent_shutdown(struct bw_agent *a);

/* Re-reads burrow.conf, devices, connections and secrets. Connections whose file is
 * unchanged keep running; a broken file marks only its connection invalid. */
void bw_agent_reload(struct bw_agent *a, const char *why);

struct bw_conn *bw_agent_find(struct bw_agent *a, const char *name);

/* Loads secrets/NAME.secrets; 0, 1 when the file does not exist, -1 with err on error. */
int bw_agent_load_secrets(struct bw_agent *a, const char *name, struct bw_secrets *out,
			  struct bw_cfg_error *err);

#endif

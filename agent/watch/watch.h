/* The agent's view of the machine: rtnetlink (links, addresses, default route), nl80211
 * (SSID), utmp (logins) and resolv.conf become events and facts; facts give the location. */
#ifndef BURROW_WATCH_WATCH_H
#define BURROW_WATCH_WATCH_H

#include <ev.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct bw_agent;
struct bw_watch;
struct nlmsghdr;

#define BW_WATCH_DEBOUNCE_S 0.5		/* quiet time that ends one change of network */
#define BW_WATCH_DEBOUNCE_MAX_S 3.0	/* a flapping link still gives an event this often */
#define BW_WATCH_LOCATION_MAX 64	/* bytes of a location name, with the NUL */

/* Where the facts go: the layer above the sources (the policy host, wired by the agent)
 * matches them against its location rules and keeps them for burrow.facts(). */
struct bw_watch_sink {
	void *ctx;
	/* The new facts; the sink takes its own reference if it keeps them. */
	void (*set_facts)(void *ctx, json_t *facts);
	/* The first location whose rule matches facts, into out: 1, or 0 when none does. */
	int (*match_location)(void *ctx, const json_t *facts, char *out, size_t outlen);
};

/* Opens every source it can: a source that cannot open (no nl80211 on this machine, no
 * utmp) is logged and left out. sink (functions NULL: facts go nowhere and no rule
 * matches) must be ready, its location rules loaded, before the loop runs; the first
 * location is computed from the loop. Never NULL but on ENOMEM. */
struct bw_watch *bw_watch_open(struct bw_agent *a, struct bw_watch_sink sink);
/* Stops every watcher and unsubscribes from the bus. NULL is fine. */
void bw_watch_close(struct bw_watch *w);

/* The facts as a new object: ssid, bssid, location, interfaces = {name = {up, addresses}},
 * default_gateway, gateway_mac, default_interface, online, users = [{user, tty}],
 * dns_domain, dns_domains. Unknown facts are absent (nil in Lua). */
json_t *bw_watch_facts(struct bw_watch *w);

/* name: set the location by hand until bw_watch_set_location(w, NULL), which hands it
 * back to the rules. 0, or -1 with a one-sentence err. Emits `location` on a change. */
int bw_watch_set_location(struct bw_watch *w, const char *name, char *err, size_t errlen);
/* The current location, NULL when there is none. Valid until the next change. */
const char *bw_watch_location(struct bw_watch *w);
/* True while the location was set by hand. */
bool bw_watch_location_manual(struct bw_watch *w);

/* Facts changed: matches the location rules again (unless set by hand), emits `location`
 * when it moves, and gives the policy host the new facts. Never call it from an event-bus
 * subscriber (it may emit). */
void bw_watch_facts_changed(struct bw_watch *w);

/* For tests: the utmp file to watch (before bw_watch_open; NULL for the default). The
 * environment variable BURROW_UTMP does the same for a whole agent; BURROW_RESOLV_CONF
 * moves /etc/resolv.conf. */
void bw_watch_set_utmp_path(const char *path);

/* One rtnetlink notification (RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH and the
 * DEL forms): notes what changed and arms the debounce. 1 when it counted, 0 when it was
 * ignored (Burrow's own bw-* interfaces, loopback, other tables), -1 when malformed. */
int bw_watch_rtnl_msg(struct bw_watch *w, struct nlmsghdr *nlh);

/* One nl80211 message (CONNECT, ROAM, DISCONNECT, or NEW_INTERFACE as the answer to
 * GET_INTERFACE): emits `ssid` once the SSID of a connect is known. 1 when it acted, 0 when
 * ignored, -1 when malformed. Tests feed constructed messages here. */
int bw_watch_nl80211_msg(struct bw_watch *w, struct nlmsghdr *nlh);

/* ---- Shared between agent/watch/{facts,netlink,nl80211,utmp}.c only. ---- */

struct nl_sock;

struct bw_watch_link {
	int ifindex;
	char name[IF_NAMESIZE];
};

struct bw_watch_wifi {
	int ifindex;
	char name[IF_NAMESIZE];
	char ssid[32 * 4 + 1];		/* printable: bytes that are not UTF-8 become \xNN */
	char bssid[18];
	bool pending;			/* CONNECT seen, SSID not yet asked */
};

struct bw_watch_user {
	char user[33];
	char tty[33];
	int pid;
};

struct bw_watch {
	struct bw_agent *agent;
	struct bw_watch_sink sink;

	/* rtnetlink (netlink.c) */
	struct nl_sock *rt_ev, *rt_sync;
	ev_io rt_io;
	ev_timer rt_debounce;
	double rt_first;			/* when the current debounce window opened */
	int rt_rank;				/* 0 nothing, 1 neigh, 2 route, 3 address, 4 link */
	char rt_ifname[IF_NAMESIZE];
	const char *rt_change;
	struct bw_watch_link *links;		/* last dump plus NEWLINK names (for DEL* lookups) */
	size_t n_links;
	json_t *interfaces;			/* {name: {up, addresses}} */
	char *net_sig;				/* what a `network` event compares */
	char gateway[64], gateway_mac[32], default_if[IF_NAMESIZE];
	int gateway_ifindex;
	bool online;
	char poked_gateway[64];			/* gateway we last sent a packet to for ARP */

	/* nl80211 (nl80211.c) */
	struct nl_sock *wl_ev, *wl_sync;
	int wl_family;
	ev_io wl_io;
	bool wl_initial;			/* the startup dump: set facts, emit nothing */
	struct bw_watch_wifi wifi[8];
	size_t n_wifi;

	/* utmp (utmp.c) */
	char utmp_path[PATH_MAX];
	ev_stat ut_stat;
	ev_timer ut_again;
	struct bw_watch_user *users;
	size_t n_users;

	/* facts and location (facts.c) */
	char *ssid, *bssid;			/* from the last `ssid` event on the bus */
	json_t *dns_domains;
	char resolv_path[PATH_MAX];
	ev_stat resolv_stat;
	char location[BW_WATCH_LOCATION_MAX];	/* "" when none */
	bool manual;
	bool restored;				/* location came from the state dir, no rule run yet */
	bool subscribed;
	ev_timer recompute;
};

int bw_watch_netlink_open(struct bw_watch *w);
void bw_watch_netlink_close(struct bw_watch *w);
/* Dumps links, addresses, routes, neighbours; 1 when the network signature changed. */
int bw_watch_netlink_refresh(struct bw_watch *w, bool *facts_changed);

int bw_watch_nl80211_open(struct bw_watch *w);
void bw_watch_nl80211_close(struct bw_watch *w);

int bw_watch_utmp_open(struct bw_watch *w);
void bw_watch_utmp_close(struct bw_watch *w);
/* Reads the utmp file again and emits login/logout for the difference. */
void bw_watch_utmp_scan(struct bw_watch *w, bool emit);

#endif

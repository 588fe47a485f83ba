/* In a fresh network namespace: each change of network (link up, address, default route,
 * link down) gives exactly one debounced `network` event, a burst gives one, Burrow's own
 * bw-* interfaces give none, and the facts show the interface, gateway and its MAC. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/attr.h>

#include "agent.h"
#include "log.h"
#include "tap.h"
#include "lua/policy_host.h"
#include "watch/watch.h"

static json_t *seen;

static void collect(void *ctx, json_t *ev)
{
	(void)ctx;
	if (strcmp(json_string_value(json_object_get(ev, "name")), "network") == 0)
		json_array_append(seen, ev);
}

static void on_stop(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static void run_for(struct ev_loop *loop, double s)
{
	ev_timer t;

	ev_now_update(loop);
	ev_timer_init(&t, on_stop, s, 0.0);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		tap_diag("command failed (%d): %s", rc, cmd);
	return rc;
}

/* Runs cmd, lets the debounce expire, returns the network events it gave. */
static size_t step(struct ev_loop *loop, const char *cmd)
{
	json_array_clear(seen);
	sh(cmd);
	run_for(loop, BW_WATCH_DEBOUNCE_S * 2 + 0.5);
	return json_array_size(seen);
}

static const char *field(const json_t *ev, const char *k)
{
	return json_string_value(json_object_get(ev, k));
}

static int is_event(const char *iface, const char *change, bool online)
{
	json_t *ev = json_array_get(seen, 0);
	int ok = ev && field(ev, "interface") && strcmp(field(ev, "interface"), iface) == 0 &&
		 field(ev, "change") && strcmp(field(ev, "change"), change) == 0 &&
		 json_is_boolean(json_object_get(ev, "online")) &&
		 json_is_true(json_object_get(ev, "online")) == online;

	if (!ok) {
		char *s = json_dumps(seen, JSON_COMPACT);

		tap_diag("  events: %s", s ? s : "?");
		free(s);
	}
	return ok;
}

static int feed_link(struct bw_watch *w, int type, const char *name, unsigned flags, int truncate)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = 99, .ifi_flags = flags };
	struct nl_msg *m = nlmsg_alloc_simple(type, 0);
	int rc;

	nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	nla_put_string(m, IFLA_IFNAME, name);
	if (truncate)
		nlmsg_hdr(m)->nlmsg_len = NLMSG_LENGTH(4);
	rc = bw_watch_rtnl_msg(w, nlmsg_hdr(m));
	nlmsg_free(m);
	return rc;
}

static int feed_route(struct bw_watch *w, unsigned char table)
{
	struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = table, .rtm_type = RTN_UNICAST };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWROUTE, 0);
	int rc;

	nlmsg_append(m, &rtm, sizeof(rtm), NLMSG_ALIGNTO);
	rc = bw_watch_rtnl_msg(w, nlmsg_hdr(m));
	nlmsg_free(m);
	return rc;
}

/* Constructed messages, no root needed: what counts as a change and what is refused. */
static void constructed(struct bw_agent *a)
{
	struct bw_watch *w = bw_watch_open(a, bw_policy_host_watch_sink(a->policies));

	tap_is_int(feed_link(w, RTM_NEWLINK, "eth9", IFF_UP | IFF_RUNNING, 0), 1, "constructed RTM_NEWLINK eth9: counted");
	tap_ok(strcmp(w->rt_change, "link-up") == 0 && strcmp(w->rt_ifname, "eth9") == 0, "as link-up of eth9");
	tap_is_int(feed_link(w, RTM_NEWLINK, "eth9", IFF_UP, 0), 1, "up without carrier (no IFF_RUNNING): counted");
	tap_ok(strcmp(w->rt_change, "link-down") == 0, "as link-down");
	tap_is_int(feed_link(w, RTM_NEWLINK, "bw-office", IFF_UP | IFF_RUNNING, 0), 0, "a bw-* link is ignored");
	tap_is_int(feed_link(w, RTM_NEWLINK, "lo", IFF_UP | IFF_RUNNING | IFF_LOOPBACK, 0), 0, "loopback is ignored");
	tap_is_int(feed_link(w, RTM_NEWLINK, "eth9", 0, 1), -1, "a truncated RTM_NEWLINK is malformed");
	tap_is_int(feed_route(w, RT_TABLE_LOCAL), 0, "a route of the local table is ignored");
	tap_is_int(feed_route(w, RT_TABLE_MAIN), 1, "a route of the main table counts");
	tap_ok(strcmp(w->rt_change, "link-down") == 0, "but a route does not outrank a link change in the same window");
	bw_watch_close(w);
}

int main(void)
{
	char tmpl[] = "/tmp/bw-test-netlink-XXXXXX", path[PATH_MAX], cmd[256];
	struct bw_agent a;
	struct bw_watch *w;
	json_t *f, *d0;
	size_t n;
	pid_t peer;
	int pfd[2];

	memset(&a, 0, sizeof(a));
	a.loop = EV_DEFAULT;
	bw_events_init(&a.events);
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s", tmpl);
	snprintf(path, sizeof(path), "%s/utmp", tmpl);
	bw_watch_set_utmp_path(path);
	snprintf(path, sizeof(path), "%s/resolv.conf", tmpl);
	setenv("BURROW_RESOLV_CONF", path, 1);
	bw_log_init("test", 0, BW_LOG_WARN);
	constructed(&a);

	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0 || system("ip link show lo >/dev/null 2>&1") != 0 ||
	    system("nsenter --version >/dev/null 2>&1") != 0) {
		printf("ok %d # SKIP the namespace part needs root, ip(8) and nsenter(1)\n", ++tap_n);
		snprintf(path, sizeof(path), "rm -rf '%s'", tmpl);
		if (system(path) != 0)
			return 1;
		return tap_done_testing();
	}
	/* The far end of the veth lives in a second namespace (this kernel has no dummy
	 * links), so that only d0 is seen here and its carrier follows d0's own state. */
	if (pipe(pfd) != 0 || (peer = fork()) < 0)
		return 1;
	if (peer == 0) {
		char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';

		close(pfd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (write(pfd[1], &c, 1) != 1 || c != 'y')
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	{
		char c = 'n';

		if (read(pfd[0], &c, 1) != 1 || c != 'y') {
			printf("1..0 # SKIP cannot create the peer namespace\n");
			return 0;
		}
		close(pfd[0]);
	}
	seen = json_array();
	bw_events_subscribe(&a.events, collect, NULL);

	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	run_for(a.loop, 0.2);
	f = bw_watch_facts(w);
	tap_ok(json_is_false(json_object_get(f, "online")) && json_object_size(json_object_get(f, "interfaces")) == 0,
	       "a fresh namespace is offline with no interfaces (loopback is not one)");
	json_decref(f);

	snprintf(cmd, sizeof(cmd), "ip link add d0 type veth peer name d0p netns %d && "
		 "nsenter -t %d -n ip link set d0p up", (int)peer, (int)peer);
	n = step(a.loop, cmd);
	tap_is_int(n, 0, "a new link that is down is not a change of network");
	f = bw_watch_facts(w);
	tap_ok(json_is_false(json_object_get(json_object_get(json_object_get(f, "interfaces"), "d0"), "up")),
	       "but the facts list it as down");
	json_decref(f);

	n = step(a.loop, "ip link set d0 up");
	tap_is_int(n, 1, "link up: exactly one network event");
	tap_ok(is_event("d0", "link-up", false), "it is {interface=d0, change=link-up, online=false}");

	n = step(a.loop, "ip addr add 10.9.0.2/24 dev d0");
	tap_is_int(n, 1, "an address (and its connected route): exactly one network event");
	tap_ok(is_event("d0", "address", false), "it is {interface=d0, change=address, online=false}");

	n = step(a.loop, "ip route add default via 10.9.0.1 dev d0");
	tap_is_int(n, 1, "a default route: exactly one network event");
	tap_ok(is_event("d0", "route", true), "it is {interface=d0, change=route, online=true}");
	f = bw_watch_facts(w);
	tap_ok(!json_object_get(f, "gateway_mac"), "the gateway's MAC is unknown while it does not answer ARP");
	json_decref(f);
	n = step(a.loop, "ip neigh replace 10.9.0.1 lladdr 00:11:22:33:44:55 dev d0 nud permanent");
	tap_is_int(n, 0, "the gateway's MAC turning up is a fact, not a change of network");

	f = bw_watch_facts(w);
	d0 = json_object_get(json_object_get(f, "interfaces"), "d0");
	tap_ok(json_is_true(json_object_get(d0, "up")), "facts: d0 is up");
	tap_ok(json_array_size(json_object_get(d0, "addresses")) == 1 &&
	       strcmp(json_string_value(json_array_get(json_object_get(d0, "addresses"), 0)), "10.9.0.2/24") == 0,
	       "facts: d0 has the address 10.9.0.2/24 (no link-local)");
	tap_is_str(field(f, "default_gateway"), "10.9.0.1", "facts: default_gateway");
	tap_is_str(field(f, "default_interface"), "d0", "facts: default_interface");
	tap_is_str(field(f, "gateway_mac"), "00:11:22:33:44:55", "facts: gateway_mac from the neighbour table");
	tap_ok(json_is_true(json_object_get(f, "online")), "facts: online");
	json_decref(f);

	n = step(a.loop, "ip addr add 10.9.1.2/24 dev d0 && ip addr add 10.9.2.2/24 dev d0 && "
			 "ip route add 10.50.0.0/16 via 10.9.0.1");
	tap_is_int(n, 1, "a burst of two addresses and a route is one network event");

	n = step(a.loop, "ip link add bw-office type veth peer name bw-office-p && "
			 "ip link set bw-office-p up && ip link set bw-office up && "
			 "ip addr add 10.200.0.1/32 dev bw-office && ip route add 10.1.0.0/24 dev bw-office && "
			 "ip route add 0.0.0.0/1 dev bw-office");
	tap_is_int(n, 0, "a Burrow tunnel interface (bw-*) coming up is not a change of network");
	f = bw_watch_facts(w);
	tap_ok(!json_object_get(json_object_get(f, "interfaces"), "bw-office") &&
	       field(f, "default_interface") && strcmp(field(f, "default_interface"), "d0") == 0,
	       "and the facts neither list it nor take it for the default route");
	json_decref(f);

	n = step(a.loop, "ip route add default via 10.9.0.1 dev d0 metric 50");
	tap_is_int(n, 0, "a second default route through the same gateway changes nothing that matters");

	n = step(a.loop, "ip route del default via 10.9.0.1 dev d0 metric 50 && ip link set d0 down");
	tap_is_int(n, 1, "link down: exactly one network event");
	tap_ok(is_event("d0", "link-down", false), "it is {interface=d0, change=link-down, online=false}");
	f = bw_watch_facts(w);
	tap_ok(!json_object_get(f, "default_gateway") && !json_object_get(f, "gateway_mac") &&
	       json_is_false(json_object_get(f, "online")), "facts: no gateway and offline once the link is down");
	json_decref(f);

	n = step(a.loop, "ip link del d0");
	tap_is_int(n, 0, "deleting a link that was already down is not another event");

	bw_watch_close(w);
	kill(peer, SIGTERM);
	waitpid(peer, NULL, 0);
	bw_events_free(&a.events);
	json_decref(seen);
	snprintf(path, sizeof(path), "rm -rf '%s'", tmpl);
	if (system(path) != 0)
		return 1;
	return tap_done_testing();
}

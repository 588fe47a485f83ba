/* rtnetlink through libnl-route: link, address, route and neighbour notifications arm a
 * debounce; when the network has been quiet for a moment it is dumped again and one
 * `network` event says what changed. Burrow's own bw-* interfaces are not the network. */
#include "watch/watch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include "agent.h"
#include "log.h"
#include "util.h"

enum { RANK_NONE, RANK_NEIGH, RANK_ROUTE, RANK_ADDRESS, RANK_LINK };

static bool ours(const char *ifname)
{
	return strncmp(ifname, "bw-", 3) == 0;
}

static const char *link_name(struct bw_watch *w, int ifindex, char *buf)
{
	for (size_t i = 0; i < w->n_links; i++)
		if (w->links[i].ifindex == ifindex)
			return w->links[i].name;
	if (ifindex > 0 && if_indextoname((unsigned)ifindex, buf))
		return buf;
	return NULL;
}

static void remember_link(struct bw_watch *w, int ifindex, const char *name)
{
	struct bw_watch_link *n;

	for (size_t i = 0; i < w->n_links; i++)
		if (w->links[i].ifindex == ifindex) {
			bw_strlcpy(w->links[i].name, name, sizeof(w->links[i].name));
			return;
		}
	n = realloc(w->links, (w->n_links + 1) * sizeof(*n));
	if (!n)
		return;
	w->links = n;
	n[w->n_links].ifindex = ifindex;
	bw_strlcpy(n[w->n_links].name, name, sizeof(n[w->n_links].name));
	w->n_links++;
}

static void note(struct bw_watch *w, int rank, const char *ifname, const char *change)
{
	struct ev_loop *loop = w->agent->loop;
	double now = ev_now(loop);

	/* The strongest kind of change in the window names the event: a cable plugged in
	 * brings link, addresses and a route, and that is one link-up. */
	if (rank >= w->rt_rank && rank > RANK_NEIGH) {
		bw_strlcpy(w->rt_ifname, ifname ? ifname : "", sizeof(w->rt_ifname));
		w->rt_change = change;
	}
	if (rank > w->rt_rank)
		w->rt_rank = rank;
	if (!ev_is_active(&w->rt_debounce)) {
		w->rt_first = now;
	} else if (now - w->rt_first >= BW_WATCH_DEBOUNCE_MAX_S) {
		return;		/* let the pending expiry fire: a flapping link still reports */
	}
	ev_timer_stop(loop, &w->rt_debounce);
	ev_timer_set(&w->rt_debounce, BW_WATCH_DEBOUNCE_S, 0.0);
	ev_timer_start(loop, &w->rt_debounce);
}

int bw_watch_rtnl_msg(struct bw_watch *w, struct nlmsghdr *nlh)
{
	char buf[IF_NAMESIZE];
	const char *name;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK: {
		struct nlattr *tb[IFLA_MAX + 1];
		struct ifinfomsg ifi;
		char ifname[IF_NAMESIZE] = "";
		bool up;

		if (nlmsg_parse(nlh, sizeof(ifi), tb, IFLA_MAX, NULL) < 0)
			return -1;
		memcpy(&ifi, nlmsg_data(nlh), sizeof(ifi));
		if (tb[IFLA_IFNAME])
			nla_strlcpy(ifname, tb[IFLA_IFNAME], sizeof(ifname));
		else if ((name = link_name(w, ifi.ifi_index, buf)))
			bw_strlcpy(ifname, name, sizeof(ifname));
		if (ifi.ifi_flags & IFF_LOOPBACK || ours(ifname))
			return 0;
		if (ifname[0])
			remember_link(w, ifi.ifi_index, ifname);
		up = nlh->nlmsg_type == RTM_NEWLINK && (ifi.ifi_flags & IFF_UP) && (ifi.ifi_flags & IFF_RUNNING);
		note(w, RANK_LINK, ifname, up ? "link-up" : "link-down");
		return 1;
	}
	case RTM_NEWADDR:
	case RTM_DELADDR: {
		struct ifaddrmsg ifa;

		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(ifa)))
			return -1;
		memcpy(&ifa, nlmsg_data(nlh), sizeof(ifa));
		name = link_name(w, (int)ifa.ifa_index, buf);
		if (!name || ours(name) || strcmp(name, "lo") == 0)
			return 0;
		/* Link-local IPv6 comes and goes with every link: it says nothing new. */
		if (ifa.ifa_scope >= RT_SCOPE_LINK)
			return 0;
		note(w, RANK_ADDRESS, name, "address");
		return 1;
	}
	case RTM_NEWROUTE:
	case RTM_DELROUTE: {
		struct nlattr *tb[RTA_MAX + 1];
		struct rtmsg rtm;
		uint32_t table;
		int oif = 0;

		if (nlmsg_parse(nlh, sizeof(rtm), tb, RTA_MAX, NULL) < 0)
			return -1;
		memcpy(&rtm, nlmsg_data(nlh), sizeof(rtm));
		table = tb[RTA_TABLE] && nla_len(tb[RTA_TABLE]) >= 4 ? nla_get_u32(tb[RTA_TABLE]) : rtm.rtm_table;
		if (table != RT_TABLE_MAIN || (rtm.rtm_flags & RTM_F_CLONED))
			return 0;
		if (tb[RTA_OIF] && nla_len(tb[RTA_OIF]) >= 4)
			oif = (int)nla_get_u32(tb[RTA_OIF]);
		name = oif ? link_name(w, oif, buf) : NULL;
		if (name && (ours(name) || strcmp(name, "lo") == 0))
			return 0;
		note(w, RANK_ROUTE, name, "route");
		return 1;
	}
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH: {
		struct nlattr *tb[NDA_MAX + 1];
		struct ndmsg nd;
		char addr[INET6_ADDRSTRLEN];

		if (nlmsg_parse(nlh, sizeof(nd), tb, NDA_MAX, NULL) < 0)
			return -1;
		memcpy(&nd, nlmsg_data(nlh), sizeof(nd));
		/* Only the default gateway's entry is a fact (its MAC tells networks apart). */
		if (!w->gateway[0] || !tb[NDA_DST] || nd.ndm_ifindex != w->gateway_ifindex)
			return 0;
		if (!((nd.ndm_family == AF_INET && nla_len(tb[NDA_DST]) == 4) ||
		      (nd.ndm_family == AF_INET6 && nla_len(tb[NDA_DST]) == 16)))
			return -1;
		if (!inet_ntop(nd.ndm_family, nla_data(tb[NDA_DST]), addr, sizeof(addr)) ||
		    strcmp(addr, w->gateway) != 0)
			return 0;
		/* REACHABLE/STALE/PROBE churn of a MAC we already know is no news. */
		if (nlh->nlmsg_type == RTM_NEWNEIGH && tb[NDA_LLADDR] && nla_len(tb[NDA_LLADDR]) == 6 &&
		    !(nd.ndm_state & (NUD_INCOMPLETE | NUD_FAILED))) {
			const uint8_t *m = nla_data(tb[NDA_LLADDR]);
			char mac[18];

			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
			if (strcmp(mac, w->gateway_mac) == 0)
				return 0;
		}
		note(w, RANK_NEIGH, NULL, NULL);
		return 1;
	}
	default:
		return 0;
	}
}

static int on_rt_msg(struct nl_msg *msg, void *arg)
{
	bw_watch_rtnl_msg(arg, nlmsg_hdr(msg));
	return NL_OK;
}

static void on_rt_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct bw_watch *w = bw_container_of(io, struct bw_watch, rt_io);
	struct nl_cb *cb = nl_socket_get_cb(w->rt_ev);	/* a reference of its own */
	int n, rounds = 0;

	(void)loop;
	(void)revents;
	/* Bounded so that a storm of notifications cannot starve the rest of the loop. */
	while ((n = nl_recvmsgs_report(w->rt_ev, cb)) > 0 && ++rounds < 64)
		;
	nl_cb_put(cb);
	if (n < 0 && n != -NLE_AGAIN) {
		/* Overrun (ENOBUFS) or similar: notifications were lost; dump it all again. */
		bw_debug("network: netlink receive: %s; dumping the state again", nl_geterror(n));
		note(w, RANK_ROUTE, "", "route");
	}
}

/* A stack of strings sorted, so that two dumps of the same state compare equal. */
static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static void sort_strings(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v;

	if (n < 2 || !(v = calloc(n, sizeof(*v))))
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp_json_str);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

/* Sends one empty datagram to the gateway so that the kernel resolves its MAC; the
 * neighbour notification that follows completes the facts. Once per gateway. */
static void poke_gateway(struct bw_watch *w)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };	/* discard */
	int fd;

	if (strcmp(w->poked_gateway, w->gateway) == 0 || inet_pton(AF_INET, w->gateway, &sin.sin_addr) != 1)
		return;
	bw_strlcpy(w->poked_gateway, w->gateway, sizeof(w->poked_gateway));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "", 0, 0, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		bw_debug("network: cannot reach the gateway %s to learn its MAC: %s", w->gateway, strerror(errno));
	close(fd);
}

struct dump {
	struct nl_cache *links, *addrs, *routes, *neighs;
};

static void dump_free(struct dump *d)
{
	nl_cache_free(d->links);
	nl_cache_free(d->addrs);
	nl_cache_free(d->routes);
	nl_cache_free(d->neighs);
}

int bw_watch_netlink_refresh(struct bw_watch *w, bool *facts_changed)
{
	struct dump d = { 0 };
	struct nl_object *o;
	struct rtnl_route *best = NULL;
	json_t *ifs = json_object(), *sig;
	char gw[sizeof(w->gateway)] = "", mac[sizeof(w->gateway_mac)] = "", dev[IF_NAMESIZE] = "";
	char buf[128];
	int gw_ifindex = 0, err, changed;
	char *s;

	*facts_changed = false;
	if (!w->rt_sync) {
		json_decref(ifs);
		return 0;
	}
	if ((err = rtnl_link_alloc_cache(w->rt_sync, AF_UNSPEC, &d.links)) < 0 ||
	    (err = rtnl_addr_alloc_cache(w->rt_sync, &d.addrs)) < 0 ||
	    (err = rtnl_route_alloc_cache(w->rt_sync, AF_INET, 0, &d.routes)) < 0) {
		bw_warn("network: cannot read the interfaces and routes: %s", nl_geterror(err));
		dump_free(&d);
		json_decref(ifs);
		return 0;
	}

	w->n_links = 0;
	for (o = nl_cache_get_first(d.links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *name = rtnl_link_get_name(l);
		unsigned flags = rtnl_link_get_flags(l);

		if (!name)
			continue;
		remember_link(w, rtnl_link_get_ifindex(l), name);
		if ((flags & IFF_LOOPBACK) || ours(name))
			continue;
		json_object_set_new(ifs, name, json_pack("{s:b,s:[]}", "up",
							 (flags & IFF_UP) && (flags & IFF_RUNNING), "addresses"));
	}
	for (o = nl_cache_get_first(d.addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *ad = (struct rtnl_addr *)o;
		const char *name = link_name(w, rtnl_addr_get_ifindex(ad), buf);
		json_t *ifo = name ? json_object_get(ifs, name) : NULL;

		if (!ifo || !rtnl_addr_get_local(ad) || rtnl_addr_get_scope(ad) >= RT_SCOPE_LINK)
			continue;
		nl_addr2str(rtnl_addr_get_local(ad), buf, sizeof(buf));
		json_array_append_new(json_object_get(ifo, "addresses"), json_string(buf));
	}
	/* The default route of the main table with the lowest metric, not through a tunnel
	 * of ours and not on a link without carrier. */
	for (o = nl_cache_get_first(d.routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct rtnl_nexthop *nh;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		const char *name;

		if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST ||
		    (dst && nl_addr_get_prefixlen(dst) != 0) || rtnl_route_get_nnexthops(r) < 1)
			continue;
		nh = rtnl_route_nexthop_n(r, 0);
		name = link_name(w, rtnl_route_nh_get_ifindex(nh), buf);
		if (!name || ours(name) || (rtnl_route_nh_get_flags(nh) & (RTNH_F_LINKDOWN | RTNH_F_DEAD)))
			continue;
		if (!best || rtnl_route_get_priority(r) < rtnl_route_get_priority(best))
			best = r;
	}
	if (best) {
		struct rtnl_nexthop *nh = rtnl_route_nexthop_n(best, 0);
		struct nl_addr *via = rtnl_route_nh_get_gateway(nh);

		gw_ifindex = rtnl_route_nh_get_ifindex(nh);
		bw_strlcpy(dev, link_name(w, gw_ifindex, buf), sizeof(dev));
		if (via)
			nl_addr2str(via, gw, sizeof(gw));
		if (via && rtnl_neigh_alloc_cache(w->rt_sync, &d.neighs) >= 0) {
			struct rtnl_neigh *n = rtnl_neigh_get(d.neighs, gw_ifindex, via);

			if (n) {
				int st = rtnl_neigh_get_state(n);

				if (rtnl_neigh_get_lladdr(n) && !(st & (NUD_INCOMPLETE | NUD_FAILED)))
					nl_addr2str(rtnl_neigh_get_lladdr(n), mac, sizeof(mac));
				rtnl_neigh_put(n);
			}
		}
	}

	{
		const char *k;
		json_t *v;

		json_object_foreach(ifs, k, v)
			sort_strings(json_object_get(v, "addresses"));
	}
	/* What a `network` event is about: the links that are up with their addresses, and
	 * the default route. Links that are down, and the gateway's MAC, are facts only. */
	sig = json_pack("{s:{},s:s,s:s,s:b}", "up", "gateway", gw, "dev", dev, "online", best != NULL);
	{
		const char *k;
		json_t *v;

		json_object_foreach(ifs, k, v)
			if (json_is_true(json_object_get(v, "up")))
				json_object_set(json_object_get(sig, "up"), k, json_object_get(v, "addresses"));
	}
	s = json_dumps(sig, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(sig);
	changed = !w->net_sig || !s || strcmp(w->net_sig, s) != 0;
	*facts_changed = changed || strcmp(mac, w->gateway_mac) != 0 || !json_equal(ifs, w->interfaces);
	free(w->net_sig);
	w->net_sig = s;
	json_decref(w->interfaces);
	w->interfaces = ifs;
	bw_strlcpy(w->gateway, gw, sizeof(w->gateway));
	bw_strlcpy(w->gateway_mac, mac, sizeof(w->gateway_mac));
	bw_strlcpy(w->default_if, dev, sizeof(w->default_if));
	w->gateway_ifindex = gw_ifindex;
	w->online = best != NULL;
	dump_free(&d);
	if (w->gateway[0] && !w->gateway_mac[0])
		poke_gateway(w);
	return changed;
}

static void on_rt_debounce(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct bw_watch *w = bw_container_of(t, struct bw_watch, rt_debounce);
	bool facts_changed;
	int rank = w->rt_rank;

	(void)loop;
	(void)revents;
	w->rt_rank = RANK_NONE;
	if (bw_watch_netlink_refresh(w, &facts_changed) && rank > RANK_NEIGH) {
		bw_debug("network: %s %s, %s", w->rt_ifname[0] ? w->rt_ifname : "-", w->rt_change,
			 w->online ? "online" : "offline");
		bw_events_emitf(&w->agent->events, "network",
				json_pack("{s:s,s:s,s:b}", "interface", w->rt_ifname, "change", w->rt_change,
					  "online", w->online));
		w->restored = false;	/* the network moved: a saved location may go now */
	}
	if (facts_changed)
		bw_watch_facts_changed(w);
}

int bw_watch_netlink_open(struct bw_watch *w)
{
	bool ign;
	int err;

	ev_timer_init(&w->rt_debounce, on_rt_debounce, BW_WATCH_DEBOUNCE_S, 0.0);
	w->interfaces = json_object();
	if (!(w->rt_ev = nl_socket_alloc()) || !(w->rt_sync = nl_socket_alloc()))
		return -ENOMEM;
	nl_socket_disable_seq_check(w->rt_ev);
	nl_socket_modify_cb(w->rt_ev, NL_CB_VALID, NL_CB_CUSTOM, on_rt_msg, w);
	if ((err = nl_connect(w->rt_ev, NETLINK_ROUTE)) < 0 || (err = nl_connect(w->rt_sync, NETLINK_ROUTE)) < 0 ||
	    (err = nl_socket_add_memberships(w->rt_ev, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
					     RTNLGRP_IPV4_ROUTE, RTNLGRP_NEIGH, 0)) < 0 ||
	    (err = nl_socket_set_nonblocking(w->rt_ev)) < 0) {
		bw_warn("network: cannot open rtnetlink: %s; network events are off", nl_geterror(err));
		bw_watch_netlink_close(w);
		w->interfaces = json_object();
		return -EIO;
	}
	/* Room for a burst (a VPN client elsewhere installing hundreds of routes). */
	nl_socket_set_buffer_size(w->rt_ev, 1 << 20, 0);
	bw_watch_netlink_refresh(w, &ign);
	ev_io_init(&w->rt_io, on_rt_io, nl_socket_get_fd(w->rt_ev), EV_READ);
	ev_io_start(w->agent->loop, &w->rt_io);
	return 0;
}

void bw_watch_netlink_close(struct bw_watch *w)
{
	if (w->rt_ev) {
		ev_io_stop(w->agent->loop, &w->rt_io);
		nl_socket_free(w->rt_ev);
	}
	nl_socket_free(w->rt_sync);
	w->rt_ev = w->rt_sync = NULL;
	ev_timer_stop(w->agent->loop, &w->rt_debounce);
	free(w->links);
	w->links = NULL;
	w->n_links = 0;
	json_decref(w->interfaces);
	w->interfaces = NULL;
	free(w->net_sig);
	w->net_sig = NULL;
}

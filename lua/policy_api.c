/* The `burrow` module: the few functions a policy can call. Each checks its arguments
 * (errors name the function and the argument), then hands the action to the host's ops;
 * nothing here waits for anything. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "agent/events.h"
#include "policy_priv.h"

#define TIMER_MT "burrow.timer"
#define MAX_HANDLERS 256
#define MAX_ARGV 64

static const char *arg_string(lua_State *L, int i, const char *fn, const char *what)
{
	if (lua_type(L, i) != LUA_TSTRING)
		luaL_error(L, "%s: argument %d must be %s (string)", fn, i, what);
	return lua_tostring(L, i);
}

static void arg_function(lua_State *L, int i, const char *fn, const char *what)
{
	if (lua_type(L, i) != LUA_TFUNCTION)
		luaL_error(L, "%s: argument %d must be %s (function)", fn, i, what);
}

static void arg_table(lua_State *L, int i, const char *fn, const char *what)
{
	if (lua_type(L, i) != LUA_TTABLE)
		luaL_error(L, "%s: argument %d must be %s (table)", fn, i, what);
}

/* burrow.on(event_name, fn) -> handle */
static int l_on(lua_State *L)
{
	struct bw_policy *p = bw_policy_of(L);
	const char *name = arg_string(L, 1, "burrow.on", "an event name");
	struct bw_policy_handler *n;
	char *ev;

	arg_function(L, 2, "burrow.on", "a handler");
	if (p->n_handlers >= MAX_HANDLERS)
		return luaL_error(L, "burrow.on: a policy may register at most %d handlers", MAX_HANDLERS);
	if (!bw_event_name_known(name) && strcmp(name, "policy_disabled") != 0 && strcmp(name, "policy_error") != 0) {
		luaL_where(L, 1);
		lua_pushfstring(L, "%sburrow.on: unknown event '%s'", lua_tostring(L, -1), name);
		json_array_append_new(p->lint, json_string(lua_tostring(L, -1)));
		bw_policy_hostf(p->host, BW_LOG_WARN, p->name, "%s", lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	n = realloc(p->handlers, (p->n_handlers + 1) * sizeof(*n));
	if (!n || !(ev = strdup(name))) {
		if (n)
			p->handlers = n;
		return luaL_error(L, "burrow.on: out of memory");
	}
	p->handlers = n;
	lua_settop(L, 2);
	n[p->n_handlers].ref = luaL_ref(L, LUA_REGISTRYINDEX);	/* name */
	n[p->n_handlers].event = ev;
	n[p->n_handlers].id = p->next_handler_id++;
	lua_pushinteger(L, n[p->n_handlers].id);
	p->n_handlers++;
	return 1;
}

/* burrow.off(handle) -> true when it was registered */
static int l_off(lua_State *L)
{
	struct bw_policy *p = bw_policy_of(L);
	lua_Integer id;

	if (!lua_isinteger(L, 1))
		return luaL_error(L, "burrow.off: argument 1 must be a handle returned by burrow.on (integer)");
	id = lua_tointeger(L, 1);
	for (size_t i = 0; i < p->n_handlers; i++) {
		if (p->handlers[i].id != id)
			continue;
		luaL_unref(L, LUA_REGISTRYINDEX, p->handlers[i].ref);
		free(p->handlers[i].event);
		memmove(&p->handlers[i], &p->handlers[i + 1], (p->n_handlers - i - 1) * sizeof(p->handlers[0]));
		p->n_handlers--;
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	return 1;
}

typedef int (*conn_op)(void *ctx, const char *policy, const char *name, char *err, size_t errlen);

static int conn_action(lua_State *L, const char *fn, const char *verb, conn_op op)
{
	struct bw_policy *p = bw_policy_of(L);
	const char *name = arg_string(L, 1, fn, "a connection name");
	char err[512];

	if (op(p->host->ctx, p->name, name, err, sizeof(err)) != 0) {
		bw_policy_hostf(p->host, BW_LOG_WARN, p->name, "%s %s: %s", verb, name, err);
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_start(lua_State *L)
{
	return conn_action(L, "burrow.start", "start", bw_policy_of(L)->host->ops->start);
}

static int l_stop(lua_State *L)
{
	return conn_action(L, "burrow.stop", "stop", bw_policy_of(L)->host->ops->stop);
}

static int l_restart(lua_State *L)
{
	return conn_action(L, "burrow.restart", "restart", bw_policy_of(L)->host->ops->restart);
}

static int l_connections(lua_State *L)
{
	struct bw_policy_host *h = bw_policy_of(L)->host;
	json_t *a = h->ops->connections(h->ctx);

	bw_policy_push_json(L, a, 0);
	json_decref(a);
	return 1;
}

static int l_connection(lua_State *L)
{
	struct bw_policy_host *h = bw_policy_of(L)->host;
	const char *name = arg_string(L, 1, "burrow.connection", "a connection name");
	json_t *a, *c;
	size_t i;

	if (h->ops->connection) {
		/* One lookup, not a JSON object for every connection (bench/policy.c). */
		c = h->ops->connection(h->ctx, name);
		if (c)
			bw_policy_push_json(L, c, 0);
		else
			lua_pushnil(L);
		json_decref(c);
		return 1;
	}
	a = h->ops->connections(h->ctx);
	lua_pushnil(L);
	json_array_foreach(a, i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));

		if (n && strcmp(n, name) == 0) {
			lua_pop(L, 1);
			bw_policy_push_json(L, c, 0);
			break;
		}
	}
	json_decref(a);
	return 1;
}

static int l_facts(lua_State *L)
{
	bw_policy_push_json(L, bw_policy_of(L)->host->facts, 0);
	return 1;
}

static int l_location(lua_State *L)
{
	json_t *v = json_object_get(bw_policy_of(L)->host->facts, "location");

	if (json_is_string(v))
		lua_pushstring(L, json_string_value(v));
	else
		lua_pushnil(L);
	return 1;
}

static const char *const location_keys[] = {
	"ssid", "bssid", "gateway_mac", "default_gateway", "interface", "dns_domain", NULL,
};

/* One rule (table at idx) into a JSON object; raises on anything unexpected. */
static json_t *location_rule(lua_State *L, int idx, const char *rname, bool skip_name)
{
	json_t *rule = json_object();

	lua_pushnil(L);					/* ... nil */
	while (lua_next(L, idx)) {			/* ... key value */
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		json_t *v = NULL;
		int i;

		if (skip_name && k && strcmp(k, "name") == 0) {
			lua_pop(L, 1);
			continue;
		}
		for (i = 0; k && location_keys[i] && strcmp(location_keys[i], k) != 0; i++)
			;
		if (!k || !location_keys[i]) {
			json_decref(rule);
			return luaL_error(L, "burrow.locations: rule %s: unknown key '%s' (known: ssid, bssid, gateway_mac, default_gateway, interface, dns_domain)",
					  rname, k ? k : luaL_typename(L, -2)), NULL;
		}
		if (lua_type(L, -1) == LUA_TSTRING) {
			v = json_string(lua_tostring(L, -1));
		} else if (lua_type(L, -1) == LUA_TTABLE) {
			lua_Integer n = luaL_len(L, -1);

			v = json_array();
			for (lua_Integer j = 1; j <= n; j++) {
				lua_rawgeti(L, -1, j);
				if (lua_type(L, -1) == LUA_TSTRING)
					json_array_append_new(v, json_string(lua_tostring(L, -1)));
				lua_pop(L, 1);
			}
			if (json_array_size(v) != (size_t)n) {
				json_decref(v);
				v = NULL;
			}
		}
		if (!v || (json_is_array(v) && json_array_size(v) == 0)) {
			json_decref(v);
			json_decref(rule);
			return luaL_error(L, "burrow.locations: rule %s: %s must be a string or a list of strings",
					  rname, k), NULL;
		}
		json_object_set_new(rule, k, v);
		lua_pop(L, 1);				/* ... key */
	}
	if (json_object_size(rule) == 0) {
		json_decref(rule);
		return luaL_error(L, "burrow.locations: rule %s has no keys; it would match everywhere", rname), NULL;
	}
	return rule;
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)x, "name")),
		      json_string_value(json_object_get(*(json_t *const *)y, "name")));
}

/* burrow.locations{ Name = {rule}, ... } (tried in name order) or
 * burrow.locations{ {name="Home", ssid=...}, ... } (tried in list order). Replaces the
 * policy's earlier rules. */
static int l_locations(lua_State *L)
{
	struct bw_policy *p = bw_policy_of(L);
	json_t *list = json_array();
	lua_Integer n;

	arg_table(L, 1, "burrow.locations", "the location rules");
	lua_settop(L, 1);
	/* Anchored in the policy so that a rule that raises does not leak it. */
	json_decref(p->loc_tmp);
	p->loc_tmp = list;
	n = luaL_len(L, 1);
	if (n > 0) {
		for (lua_Integer i = 1; i <= n; i++) {
			const char *name;

			lua_rawgeti(L, 1, i);			/* rules rule */
			if (lua_type(L, 2) != LUA_TTABLE) {
				return luaL_error(L, "burrow.locations: rule %d must be a table", (int)i);
			}
			lua_getfield(L, 2, "name");		/* rules rule name */
			if (lua_type(L, 3) != LUA_TSTRING) {
				return luaL_error(L, "burrow.locations: rule %d needs name = \"...\" (string)", (int)i);
			}
			name = lua_tostring(L, 3);
			json_array_append_new(list, json_pack("{s:s,s:o}", "name", name,
							      "rule", location_rule(L, 2, name, true)));
			lua_settop(L, 1);
		}
	} else {
		lua_pushnil(L);					/* rules nil */
		while (lua_next(L, 1)) {			/* rules name rule */
			const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;

			if (!name || lua_type(L, 3) != LUA_TTABLE) {
				return luaL_error(L, "burrow.locations: each entry must be Name = { key = value, ... }");
			}
			json_array_append_new(list, json_pack("{s:s,s:o}", "name", name,
							      "rule", location_rule(L, 3, name, false)));
			lua_pop(L, 1);				/* rules name */
		}
		{
			size_t cnt = json_array_size(list);
			json_t **v = cnt ? malloc(cnt * sizeof(*v)) : NULL;

			for (size_t i = 0; v && i < cnt; i++)
				v[i] = json_incref(json_array_get(list, i));
			if (v) {
				qsort(v, cnt, sizeof(*v), cmp_names);
				json_array_clear(list);
				for (size_t i = 0; i < cnt; i++)
					json_array_append_new(list, v[i]);
				free(v);
			}
		}
	}
	json_decref(p->locations);
	p->locations = list;
	p->loc_tmp = NULL;
	return 0;
}

/* Timers: a userdata holding the timer id, with :cancel(). */
static int add_timer(lua_State *L, const char *fn, bool repeat)
{
	struct bw_policy *p = bw_policy_of(L);
	struct bw_policy_host *h = p->host;
	struct bw_policy_timer *n;
	lua_Number secs;
	uint64_t *ud;

	if (lua_type(L, 1) != LUA_TNUMBER)
		return luaL_error(L, "%s: argument 1 must be a delay in seconds (number)", fn);
	secs = lua_tonumber(L, 1);
	if (!(secs >= (repeat ? 0.1 : 0)) || !isfinite(secs))
		return luaL_error(L, "%s: argument 1 must be %s", fn, repeat ? "at least 0.1 seconds" : "zero or more seconds");
	arg_function(L, 2, fn, "a callback");
	n = realloc(h->timers, (h->n_timers + 1) * sizeof(*n));
	if (!n)
		return luaL_error(L, "%s: out of memory", fn);
	h->timers = n;
	lua_settop(L, 2);
	ud = lua_newuserdatauv(L, sizeof(*ud), 0);	/* secs fn ud */
	luaL_setmetatable(L, TIMER_MT);
	lua_insert(L, 2);				/* secs ud fn */
	n = &h->timers[h->n_timers];
	n->ref = luaL_ref(L, LUA_REGISTRYINDEX);	/* secs ud */
	n->id = h->next_timer_id++;
	n->policy_id = p->id;
	n->due = h->ops->now(h->ctx) + secs;
	n->interval_s = repeat ? secs : 0;
	*ud = n->id;
	h->n_timers++;
	if (!h->running)
		h->ops->arm(h->ctx, bw_policy_host_next_due(h));
	return 1;
}

static int l_after(lua_State *L)
{
	return add_timer(L, "burrow.after", false);
}

static int l_every(lua_State *L)
{
	return add_timer(L, "burrow.every", true);
}

static int l_timer_cancel(lua_State *L)
{
	struct bw_policy *p = bw_policy_of(L);
	struct bw_policy_host *h = p->host;
	uint64_t *ud = luaL_testudata(L, 1, TIMER_MT);

	if (!ud)
		return luaL_error(L, "cancel: call it as timer:cancel()");
	for (size_t i = 0; i < h->n_timers; i++) {
		if (h->timers[i].id != *ud)
			continue;
		luaL_unref(L, LUA_REGISTRYINDEX, h->timers[i].ref);
		memmove(&h->timers[i], &h->timers[i + 1], (h->n_timers - i - 1) * sizeof(h->timers[0]));
		h->n_timers--;
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	return 1;
}

/* The environment a child gets from the event being handled. */
static size_t event_env(struct bw_policy *p, char **env, size_t max)
{
	static const struct { const char *field, *var; } map[] = {
		{ "name", "BURROW_EVENT" },
		{ "connection", "BURROW_CONNECTION" },
		{ "virtual_ip", "BURROW_VIRTUAL_IP" },
		{ "dns", "BURROW_DNS" },
		{ "networks", "BURROW_NETWORKS" },
		{ "location", "BURROW_LOCATION" },
		{ "ssid", "BURROW_SSID" },
	};
	size_t n = 0;

	if (n < max && asprintf(&env[n], "BURROW_POLICY=%s", p->name) > 0)
		n++;
	for (size_t i = 0; p->cur_event && i < sizeof(map) / sizeof(map[0]) && n < max; i++) {
		json_t *v = json_object_get(p->cur_event, map[i].field);
		char *s = NULL;

		if (json_is_string(v)) {
			s = strdup(json_string_value(v));
		} else if (json_is_array(v)) {		/* lists as space-separated words */
			size_t k;
			json_t *x;
			size_t len = 1;

			json_array_foreach(v, k, x)
				len += json_is_string(x) ? json_string_length(x) + 1 : 0;
			s = calloc(1, len);
			json_array_foreach(v, k, x) {
				if (!s || !json_is_string(x))
					continue;
				if (*s)
					strcat(s, " ");
				strcat(s, json_string_value(x));
			}
		}
		if (s && asprintf(&env[n], "%s=%s", map[i].var, s) > 0)
			n++;
		free(s);
	}
	env[n] = NULL;
	return n;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
}

/* Starts a child for the policy; returns what burrow.exec/mount/unmount return. The
 * on_exit reference (or LUA_NOREF) is owned by the pending record from here on. */
static int spawn(lua_State *L, int kind, char **argv, double timeout_s, int ref, const char *what,
		 const char *target, const char *type)
{
	struct bw_policy *p = bw_policy_of(L);
	struct bw_policy_host *h = p->host;
	const char *conn = p->cur_event ? json_string_value(json_object_get(p->cur_event, "connection")) : NULL;
	struct bw_policy_exec_req req = { 0 };
	char *env[16], err[512];
	uint64_t token;
	int rc;

	event_env(p, env, 15);
	if (bw_policy_pending_add(h, p, kind, ref, target, type, conn, what, &token) != 0) {
		free_strv(env);
		if (ref != LUA_NOREF)
			luaL_unref(L, LUA_REGISTRYINDEX, ref);
		lua_pushnil(L);
		lua_pushliteral(L, "out of memory");
		return 2;
	}
	req.policy = p->name;
	req.conn = conn;
	req.what = what;
	req.argv = argv;
	req.env = env;
	req.timeout_s = timeout_s;
	req.token = token;
	rc = h->ops->exec(h->ctx, &req, err, sizeof(err));
	free_strv(env);
	if (rc != 0) {
		/* Nothing started: forget the record, report at once. */
		bw_policy_host_exec_done(h, token, -1, "error", err, strlen(err));
		bw_policy_hostf(h, BW_LOG_WARN, p->name, "%s: %s", what, err);
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static void append(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "%s%s", n ? " " : "", s);
}

/* Optional on_exit = fn in the table at idx; returns a reference or LUA_NOREF. Call it
 * last: nothing may raise after it. */
static int take_on_exit(lua_State *L, int idx)
{
	lua_getfield(L, idx, "on_exit");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return LUA_NOREF;
	}
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

static double opt_timeout(lua_State *L, int idx, const char *fn)
{
	double t;

	lua_getfield(L, idx, "timeout");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return BW_POLICY_EXEC_TIMEOUT_S;
	}
	if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0) || lua_tonumber(L, -1) > 3600)
		luaL_error(L, "%s: timeout must be a number of seconds between 0 and 3600", fn);
	t = lua_tonumber(L, -1);
	lua_pop(L, 1);
	return t;
}

static void check_on_exit(lua_State *L, int idx, const char *fn)
{
	lua_getfield(L, idx, "on_exit");
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION)
		luaL_error(L, "%s: on_exit must be a function", fn);
	lua_pop(L, 1);
}

/* burrow.exec{"/path/cmd", "arg", ..., timeout=10, on_exit=fn(status, output, reason)} */
static int l_exec(lua_State *L)
{
	char *argv[MAX_ARGV + 1], what[1024] = "exec";
	lua_Integer n;
	double timeout;
	int ref, ret;

	arg_table(L, 1, "burrow.exec", "a command table like {\"/usr/bin/cmd\", \"arg\"}");
	lua_settop(L, 1);
	n = luaL_len(L, 1);
	if (n < 1 || n > MAX_ARGV)
		return luaL_error(L, "burrow.exec: the table must list the program and its arguments (1 to %d strings)", MAX_ARGV);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
			return luaL_error(L, "burrow.exec: element %d must be a string", (int)i);
		lua_pop(L, 1);
	}
	timeout = opt_timeout(L, 1, "burrow.exec");
	check_on_exit(L, 1, "burrow.exec");
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		argv[i - 1] = strdup(lua_tostring(L, -1));
		append(what, sizeof(what), lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	argv[n] = NULL;
	ref = take_on_exit(L, 1);
	ret = spawn(L, BW_PENDING_EXEC, argv, timeout, ref, what, NULL, NULL);
	free_strv(argv);
	return ret;
}

static const char *opt_field(lua_State *L, int idx, const char *key, const char *fn, bool required)
{
	int t = lua_getfield(L, idx, key);
	const char *s;

	if (t == LUA_TNIL && !required) {
		lua_pop(L, 1);
		return NULL;
	}
	if (t != LUA_TSTRING)
		luaL_error(L, "%s: %s must be a string", fn, key);
	s = lua_tostring(L, -1);
	lua_pop(L, 1);				/* still anchored in the table */
	return s;
}

/* burrow.mount{source=, target=, type="sshfs"|"cifs"|"nfs", options=, on_exit=} */
static int l_mount(lua_State *L)
{
	const char *src, *target, *type, *opts;
	char *argv[10], what[PATH_MAX * 2];
	size_t n = 0;
	int ref, ret;

	arg_table(L, 1, "burrow.mount", "a mount table like {source=..., target=...}");
	lua_settop(L, 1);
	src = opt_field(L, 1, "source", "burrow.mount", true);
	target = opt_field(L, 1, "target", "burrow.mount", true);
	type = opt_field(L, 1, "type", "burrow.mount", false);
	opts = opt_field(L, 1, "options", "burrow.mount", false);
	if (!type)
		type = "sshfs";
	if (strcmp(type, "sshfs") != 0 && strcmp(type, "cifs") != 0 && strcmp(type, "nfs") != 0)
		return luaL_error(L, "burrow.mount: type must be sshfs, cifs or nfs (got '%s')", type);
	if (target[0] != '/')
		return luaL_error(L, "burrow.mount: target must be an absolute path (got '%s')", target);
	check_on_exit(L, 1, "burrow.mount");
	if (strcmp(type, "sshfs") == 0) {
		argv[n++] = strdup("sshfs");
		argv[n++] = strdup(src);
		argv[n++] = strdup(target);
	} else {
		argv[n++] = strdup("mount");
		argv[n++] = strdup("-t");
		argv[n++] = strdup(type);
	}
	if (opts) {
		argv[n++] = strdup("-o");
		argv[n++] = strdup(opts);
	}
	if (strcmp(type, "sshfs") != 0) {
		argv[n++] = strdup(src);
		argv[n++] = strdup(target);
	}
	argv[n] = NULL;
	snprintf(what, sizeof(what), "mount %s %s (%s)", src, target, type);
	ref = take_on_exit(L, 1);
	ret = spawn(L, BW_PENDING_MOUNT, argv, 30, ref, what, target, type);
	free_strv(argv);
	return ret;
}

/* burrow.unmount(target [, on_exit]) */
static int l_unmount(lua_State *L)
{
	struct bw_policy_host *h = bw_policy_of(L)->host;
	const char *target = arg_string(L, 1, "burrow.unmount", "a mount point");
	const char *type = "sshfs";
	char *argv[4], what[PATH_MAX + 16];
	int ref = LUA_NOREF, ret;

	if (!lua_isnoneornil(L, 2))
		arg_function(L, 2, "burrow.unmount", "an on_exit callback");
	for (size_t i = 0; i < h->n_mounts; i++)
		if (strcmp(h->mounts[i].target, target) == 0)
			type = h->mounts[i].type;
	argv[0] = strdup(strcmp(type, "sshfs") == 0 ? "fusermount3" : "umount");
	argv[1] = strdup(strcmp(type, "sshfs") == 0 ? "-u" : "-l");
	argv[2] = strdup(target);
	argv[3] = NULL;
	snprintf(what, sizeof(what), "unmount %s", target);
	if (!lua_isnoneornil(L, 2)) {
		lua_settop(L, 2);
		ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	ret = spawn(L, BW_PENDING_UNMOUNT, argv, 30, ref, what, target, type);
	free_strv(argv);
	return ret;
}

static int l_notify(lua_State *L)
{
	struct bw_policy *p = bw_policy_of(L);
	const char *title = arg_string(L, 1, "burrow.notify", "a title");
	const char *body = lua_isnoneornil(L, 2) ? "" : arg_string(L, 2, "burrow.notify", "a body");

	p->host->ops->notify(p->host->ctx, p->name, title, body);
	return 0;
}

static int l_log(lua_State *L)
{
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	struct bw_policy *p = bw_policy_of(L);
	const char *lv = arg_string(L, 1, "burrow.log", "a level (error, warn, info or debug)");
	const char *msg;
	int i;

	for (i = 0; levels[i] && strcmp(levels[i], lv) != 0; i++)
		;
	if (!levels[i])
		return luaL_error(L, "burrow.log: argument 1 must be error, warn, info or debug (got '%s')", lv);
	if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER)
		return luaL_error(L, "burrow.log: argument 2 must be a message (string)");
	msg = lua_tostring(L, 2);
	p->host->ops->log(p->host->ctx, (enum bw_log_level)i, p->name, msg);
	return 0;
}

void bw_policy_open_burrow(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "on", l_on }, { "off", l_off },
		{ "start", l_start }, { "stop", l_stop }, { "restart", l_restart },
		{ "connections", l_connections }, { "connection", l_connection },
		{ "facts", l_facts }, { "locations", l_locations }, { "location", l_location },
		{ "after", l_after }, { "every", l_every },
		{ "exec", l_exec }, { "mount", l_mount }, { "unmount", l_unmount },
		{ "notify", l_notify }, { "log", l_log },
		{ NULL, NULL },
	};
	static const luaL_Reg timer_methods[] = { { "cancel", l_timer_cancel }, { NULL, NULL } };

	luaL_newmetatable(L, TIMER_MT);			/* mt */
	luaL_newlib(L, timer_methods);			/* mt methods */
	lua_setfield(L, -2, "__index");			/* mt */
	lua_pop(L, 1);					/* (empty) */
	luaL_newlib(L, fns);				/* burrow */
	lua_pushvalue(L, -1);				/* burrow burrow */
	lua_setglobal(L, "burrow");			/* burrow */
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);	/* burrow LOADED */
	lua_insert(L, -2);				/* LOADED burrow */
	lua_setfield(L, -2, "burrow");			/* LOADED */
	lua_pop(L, 1);					/* (empty) */
}

/* The sandbox a policy runs in, and policy_call(): the one way from C into Lua, with a
 * traceback, an instruction budget, a memory cap and the error budget behind it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "policy_priv.h"

/* Counts every byte the state holds; growth beyond the cap fails, which Lua turns into a
 * memory error after an emergency collection. Shrinking never fails (Lua relies on it). */
static void *policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct bw_policy *p = ud;
	size_t old = ptr ? osize : 0;
	void *n;

	if (nsize == 0) {
		free(ptr);
		p->mem_used -= old;
		return NULL;
	}
	if (nsize > old && p->mem_used - old + nsize > p->mem_cap) {
		p->mem_hit = true;
		return NULL;
	}
	n = realloc(ptr, nsize);
	if (!n)
		return NULL;
	p->mem_used = p->mem_used - old + nsize;
	return n;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct bw_policy *p = bw_policy_of(L);
	lua_Debug here;

	(void)ar;
	if (p->hook_left-- > 0)
		return;
	p->budget_hit = true;
	/* From now on every instruction raises, so a pcall inside the policy cannot swallow
	 * the error and carry on. */
	lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
		lua_pushfstring(L, "%s:%d: ", here.short_src, here.currentline);
	else
		lua_pushliteral(L, "");
	lua_pushfstring(L, "stopped: the instruction budget (%d instructions per call) is spent",
			BW_POLICY_INSN_BUDGET);
	lua_concat(L, 2);
	lua_error(L);
}

static int msgh(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int bw_policy_call(struct bw_policy *p, int nargs, const char *what)
{
	lua_State *L = p->L;
	int base = lua_gettop(L) - nargs;	/* the function */
	int rc;

	lua_pushcfunction(L, msgh);
	lua_insert(L, base);			/* msgh fn args... */
	p->budget_hit = false;
	p->mem_hit = false;
	p->hook_left = BW_POLICY_INSN_BUDGET / BW_POLICY_HOOK_STEP;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, BW_POLICY_HOOK_STEP);
	rc = lua_pcall(L, nargs, 0, base);	/* msgh [error] */
	lua_sethook(L, NULL, 0, 0);
	if (rc != LUA_OK) {
		char buf[1024];
		const char *msg = lua_tostring(L, -1);

		if (rc == LUA_ERRMEM || (p->mem_hit && msg && strstr(msg, "not enough memory"))) {
			snprintf(buf, sizeof(buf), "%s (the policy reached its memory cap of %u MiB)",
				 msg ? msg : "not enough memory", BW_POLICY_MEM_CAP >> 20);
			msg = buf;
		}
		bw_policy_error(p, what, msg ? msg : "error without a message");
		if (p->L)
			lua_settop(L, base - 1);
		return -1;
	}
	lua_settop(L, base - 1);		/* (as before the function was pushed) */
	if (p->L)
		lua_gc(L, LUA_GCSTEP, 0);
	return 0;
}

/* load() for text chunks only: bytecode could break out of the sandbox. */
static int sandbox_load(lua_State *L)
{
	int n = lua_gettop(L);

	lua_pushvalue(L, lua_upvalueindex(1));	/* load */
	lua_pushvalue(L, 1);
	if (n >= 2)
		lua_pushvalue(L, 2);
	else
		lua_pushnil(L);
	lua_pushliteral(L, "t");
	if (n >= 4)
		lua_pushvalue(L, 4);
	lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - n;
}

static int sandbox_collectgarbage(lua_State *L)
{
	static const char *const allowed[] = { "collect", "count", "step", "isrunning", NULL };
	const char *opt = luaL_optstring(L, 1, "collect");

	for (int i = 0; allowed[i]; i++) {
		if (strcmp(opt, allowed[i]) == 0) {
			lua_pushvalue(L, lua_upvalueindex(1));
			lua_insert(L, 1);
			lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
			return lua_gettop(L);
		}
	}
	return luaL_error(L, "collectgarbage: option '%s' is not allowed in a policy", opt);
}

/* os.time() and os.date() without a time read the host's wall clock (virtual in the
 * simulator, where dates are UTC so that transcripts do not depend on the machine). */
static int sandbox_os_time(lua_State *L)
{
	struct bw_policy_host *h = bw_policy_of(L)->host;

	if (!h->ops->wall || !lua_isnoneornil(L, 1)) {
		lua_pushvalue(L, lua_upvalueindex(1));
		lua_insert(L, 1);
		lua_call(L, lua_gettop(L) - 1, 1);
		return 1;
	}
	lua_pushinteger(L, (lua_Integer)h->ops->wall(h->ctx));
	return 1;
}

static int sandbox_os_date(lua_State *L)
{
	struct bw_policy_host *h = bw_policy_of(L)->host;
	const char *fmt = luaL_optstring(L, 1, "%c");

	lua_settop(L, 2);
	if (h->ops->wall) {
		if (fmt[0] != '!')
			lua_pushfstring(L, "!%s", fmt);
		else
			lua_pushstring(L, fmt);
		lua_replace(L, 1);
		if (lua_isnil(L, 2)) {
			lua_pushinteger(L, (lua_Integer)h->ops->wall(h->ctx));
			lua_replace(L, 2);
		}
	}
	lua_pushvalue(L, lua_upvalueindex(1));		/* fmt time date */
	lua_insert(L, 1);				/* date fmt time */
	if (lua_isnil(L, 3))
		lua_pop(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static int sandbox_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	if (strcmp(name, "burrow") != 0)
		return luaL_error(L, "require: '%s' is not available in a policy (only 'burrow' is)", name);
	lua_getglobal(L, "burrow");
	return 1;
}

/* print() goes to the log, not to the daemon's stdout. */
static int sandbox_print(lua_State *L)
{
	struct bw_policy *p = bw_policy_of(L);
	luaL_Buffer b;
	int n = lua_gettop(L);

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	bw_policy_hostf(p->host, BW_LOG_INFO, p->name, "%s", lua_tostring(L, -1));
	return 0;
}

/* What a policy may reach for but must not have: every use raises one sentence that says
 * what to use instead, rather than "attempt to index a nil value". The sentence is the
 * closure's upvalue; luaL_error puts the policy's file:line in front. */
static int sandbox_refuse(lua_State *L)
{
	return luaL_error(L, "%s", lua_tostring(L, lua_upvalueindex(1)));
}

static void push_refuse(lua_State *L, const char *sentence)
{
	lua_pushstring(L, sentence);
	lua_pushcclosure(L, sandbox_refuse, 1);
}

/* A global that is a table whose every index, assignment and call raises sentence. */
static void set_refused_table(lua_State *L, const char *global, const char *sentence)
{
	lua_newtable(L);				/* t */
	lua_createtable(L, 0, 4);			/* t mt */
	push_refuse(L, sentence);
	lua_setfield(L, -2, "__index");
	push_refuse(L, sentence);
	lua_setfield(L, -2, "__newindex");
	push_refuse(L, sentence);
	lua_setfield(L, -2, "__call");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");		/* getmetatable(io) is false, setmetatable fails */
	lua_setmetatable(L, -2);			/* t */
	lua_setglobal(L, global);
}

/* os.execute, os.getenv, os.remove...: the field is named in the sentence. */
static int sandbox_os_missing(lua_State *L)
{
	const char *k = luaL_tolstring(L, 2, NULL);

	return luaL_error(L, "os.%s is not available in policies; os has only time, date and clock "
			  "(use burrow.exec to run a program)", k);
}

static void sandbox_refusals(lua_State *L)
{
	set_refused_table(L, "io", "io is not available in policies; use burrow.exec to run a program "
			  "and burrow.log to write to the log");
	set_refused_table(L, "package", "package is not available in policies; require knows only 'burrow'");
	set_refused_table(L, "debug", "debug is not available in policies");
	set_refused_table(L, "coroutine", "coroutine is not available in policies; use burrow.after "
			  "for what has to wait");
	push_refuse(L, "dofile is not available in policies; put the code in the policy itself");
	lua_setglobal(L, "dofile");
	push_refuse(L, "loadfile is not available in policies; put the code in the policy itself");
	lua_setglobal(L, "loadfile");
	lua_getglobal(L, "string");
	push_refuse(L, "string.dump is not available in policies");
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	lua_getglobal(L, "os");				/* os */
	lua_createtable(L, 0, 2);			/* os mt */
	lua_pushcfunction(L, sandbox_os_missing);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);			/* os */
	lua_pop(L, 1);
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
	luaL_requiref(L, name, fn, 1);
	lua_pop(L, 1);
}

lua_State *bw_policy_state_new(struct bw_policy *p)
{
	lua_State *L = lua_newstate(policy_alloc, p);

	if (!L)
		return NULL;
	*(struct bw_policy **)lua_getextraspace(L) = p;
	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
	if (p->host && p->host->ops->wall) {
		/* The simulator: the same "random" jitter on every run, so transcripts compare. */
		lua_getglobal(L, "math");			/* math */
		lua_getfield(L, -1, "randomseed");		/* math randomseed */
		lua_pushinteger(L, 4);				/* math randomseed 4 */
		lua_call(L, 1, 0);				/* math */
		lua_pop(L, 1);					/* (empty) */
	}

	/* os: only the clock and the calendar. */
	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);	/* os */
	lua_createtable(L, 0, 3);			/* os safe */
	lua_getfield(L, -2, "time");
	lua_pushcclosure(L, sandbox_os_time, 1);
	lua_setfield(L, -2, "time");
	lua_getfield(L, -2, "date");
	lua_pushcclosure(L, sandbox_os_date, 1);
	lua_setfield(L, -2, "date");
	lua_getfield(L, -2, "clock");
	lua_setfield(L, -2, "clock");
	lua_setglobal(L, "os");				/* os */
	lua_pop(L, 1);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_pushnil(L);
	lua_setfield(L, -2, LUA_OSLIBNAME);
	lua_pop(L, 1);					/* (empty) */

	lua_getglobal(L, "load");
	lua_pushcclosure(L, sandbox_load, 1);
	lua_setglobal(L, "load");
	lua_getglobal(L, "collectgarbage");
	lua_pushcclosure(L, sandbox_collectgarbage, 1);
	lua_setglobal(L, "collectgarbage");
	lua_pushcfunction(L, sandbox_require);
	lua_setglobal(L, "require");
	lua_pushcfunction(L, sandbox_print);
	lua_setglobal(L, "print");
	/* io, package, debug, coroutine, dofile, loadfile, string.dump (bytecode out is no use
	 * without bytecode in) and the rest of os: there, but every use says why not. */
	sandbox_refusals(L);

	bw_policy_open_burrow(L);
	return L;
}

void bw_policy_push_json(lua_State *L, const json_t *v, int depth)
{
	if (depth > 32 || !lua_checkstack(L, 3)) {
		lua_pushnil(L);
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;

		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach((json_t *)v, k, x) {
			bw_policy_push_json(L, x, depth + 1);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY:
		lua_createtable(L, (int)json_array_size(v), 0);
		for (size_t i = 0; i < json_array_size(v); i++) {
			bw_policy_push_json(L, json_array_get(v, i), depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		break;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		break;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		break;
	default:
		lua_pushnil(L);
		break;
	}
}

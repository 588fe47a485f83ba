/* Event -> policy decision latency and resident memory of a real agent (bw_agent_init in a
 * scratch directory: 50 connections, defaults.lua plus 20 policies, real libev loop).
 * Usage: bench_policy [iterations, default 2000]. Prints figures; never fails on speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "lua/policy_host.h"

#define N_POLICIES 20
#define N_CONNS 50

static volatile int decided;
static double decided_at;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The decision is the last policy's burrow.log line. */
static void sink(void *ctx, enum bw_log_level level, const char *conn, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)conn;
	if (strstr(msg, "decision ")) {
		decided_at = mono();
		decided = 1;
	}
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *src_dir(void)
{
	static char buf[1024];
	const char *env = getenv("BURROW_SRC");
	const char *file = __FILE__;
	const char *end = strstr(file, "bench/policy.c");

	if (env)
		return env;
	if (!end || end == file)
		return ".";
	snprintf(buf, sizeof(buf), "%.*s", (int)(end - file - 1), file);
	return buf;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	char tmp[] = "/tmp/burrow-bench-policy-XXXXXX", path[PATH_MAX + 64], cmd[PATH_MAX + 16];
	struct bw_agent_opts o = { 0 };
	struct bw_agent a;
	double *lat;
	long rss_before, rss_init, rss_after;

	if (iters < 10)
		iters = 10;
	lat = calloc((size_t)iters, sizeof(*lat));
	if (!lat || !mkdtemp(tmp))
		return 1;
	snprintf(o.config_dir, sizeof(o.config_dir), "%s/etc", tmp);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", tmp);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/burrowd.sock", tmp);
	snprintf(o.devices_dir, sizeof(o.devices_dir), "%s/devices", src_dir());
	o.log_level = BW_LOG_WARN;
	snprintf(path, sizeof(path), "%s/etc", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/etc/connections", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/etc/policies", tmp);
	mkdir(path, 0700);
	for (int i = 0; i < N_CONNS; i++) {
		char text[256];

		snprintf(path, sizeof(path), "%s/etc/connections/c%02d.conf", tmp, i);
		snprintf(text, sizeof(text), "[connection]\ngroup = G%d\ngateway = 192.0.2.%d\ntopology = host-to-network\n"
			 "remote_networks = 10.%d.0.0/16\nautostart = never\n", i % 5, i + 1, i);
		put(path, text);
	}
	/* 19 policies that look at every ssid event like untrusted-wifi.lua does, then the one
	 * whose log line is the decision measured. */
	for (int i = 0; i < N_POLICIES; i++) {
		char text[2048];

		snprintf(path, sizeof(path), "%s/etc/policies/%02d-bench.lua", tmp, i);
		snprintf(text, sizeof(text),
			 "local TRUSTED = { HomeNet = true, ['Office WLAN'] = true }\n"
			 "local seen = {}\n"
			 "burrow.on('ssid', function(ev)\n"
			 "  seen[ev.ssid] = (seen[ev.ssid] or 0) + 1\n"
			 "  local c = burrow.connection('c%02d')\n"
			 "  if not TRUSTED[ev.ssid] and c and c.state == 'up' then burrow.stop(c.name) end\n"
			 "%s"
			 "end)\n"
			 "burrow.on('tunnel_up', function(ev) seen[ev.connection] = true end)\n",
			 i, i == N_POLICIES - 1 ? "  burrow.log('info', 'decision ' .. ev.ssid)\n" : "");
		put(path, text);
	}
	bw_log_init("bench", 0, BW_LOG_WARN);
	rss_before = rss_kib();
	if (bw_agent_init(&a, ev_default_loop(0), &o) != 0) {
		fprintf(stderr, "bench_policy: the agent did not start (see above)\n");
		return 1;
	}
	bw_log_set_sink(sink, NULL);
	for (int i = 0; i < 20; i++)
		ev_run(a.loop, EVRUN_NOWAIT);
	rss_init = rss_kib();

	for (int i = 0; i < iters; i++) {
		double t0;

		decided = 0;
		t0 = mono();
		bw_events_emitf(&a.events, "ssid", json_pack("{s:s,s:s,s:s}", "interface", "wlan0", "ssid",
							   i % 2 ? "CafeFree" : "HomeNet", "bssid", "00:11:22:33:44:55"));
		while (!decided)
			ev_run(a.loop, EVRUN_ONCE);
		lat[i] = decided_at - t0;
	}
	rss_after = rss_kib();
	qsort(lat, (size_t)iters, sizeof(*lat), cmp_d);
	printf("policies loaded:          %d + defaults.lua\n", N_POLICIES);
	printf("connections:              %zu\n", a.n_conns);
	printf("event -> decision:        median %.1f us, p99 %.1f us, max %.1f us (%d events, target: median < 1000 us)\n",
	       lat[iters / 2] * 1e6, lat[(size_t)(iters * 0.99)] * 1e6, lat[iters - 1] * 1e6, iters);
	printf("resident memory:          %.2f MiB after the events, %.2f MiB once started, %.2f MiB before bw_agent_init (target < 8 MiB)\n",
	       rss_after / 1024.0, rss_init / 1024.0, rss_before / 1024.0);
	printf("Lua heap of all policies: %.2f MiB\n", bw_policy_host_memory(a.policies) / 1048576.0);
	bw_agent_shutdown(&a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_policy: could not remove %s\n", tmp);
	free(lat);
	return 0;
}

/* burrowd: the Burrow agent. Parses its flags, starts the one libev loop and runs until
 * SIGTERM/SIGINT, after which every connection is brought down and every side effect undone. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: burrowd [--foreground] [--config-dir DIR] [--state-dir DIR] [--socket PATH]\n"
		"               [--devices-dir DIR] [--log-level error|warn|info|debug|trace] [--version]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config-dir", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "devices-dir", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bw_agent_opts o = { .log_level = -1 };
	struct bw_agent agent;
	struct ev_loop *loop;
	bool foreground = false;
	int c, rc;

	bw_strlcpy(o.config_dir, BURROW_CONFIG_DIR, sizeof(o.config_dir));
	bw_strlcpy(o.state_dir, BURROW_STATE_DIR, sizeof(o.state_dir));
	bw_strlcpy(o.socket_path, BURROW_SOCKET, sizeof(o.socket_path));
	bw_strlcpy(o.devices_dir, BURROW_DEVICES_DIR, sizeof(o.devices_dir));
	while ((c = getopt_long(argc, argv, "c:s:S:d:fl:Vh", opts, NULL)) != -1) {
		char *dst = NULL;

		switch (c) {
		case 'c': dst = o.config_dir; break;
		case 's': dst = o.state_dir; break;
		case 'S': dst = o.socket_path; break;
		case 'd': dst = o.devices_dir; break;
		case 'f': foreground = true; break;
		case 'l':
			o.log_level = bw_log_level_parse(optarg);
			if (o.log_level < 0) {
				fprintf(stderr, "burrowd: unknown log level %s; use error, warn, info, debug or trace\n",
					optarg);
				return 2;
			}
			break;
		case 'V': printf("burrowd %s\n", BURROW_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (dst && bw_strlcpy(dst, optarg, PATH_MAX) != 0) {
			fprintf(stderr, "burrowd: path %s is too long\n", optarg);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if (!foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "burrowd: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	bw_log_init("burrowd", !foreground, o.log_level >= 0 ? (enum bw_log_level)o.log_level : BW_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);

	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		bw_err("cannot initialise the event loop");
		return 1;
	}
	rc = bw_agent_init(&agent, loop, &o);
	if (rc != 0) {
		bw_agent_shutdown(&agent);
		return 1;
	}
	ev_run(loop, 0);
	bw_agent_shutdown(&agent);
	ev_loop_destroy(loop);
	return 0;
}

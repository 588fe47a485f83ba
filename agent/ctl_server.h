/* The control socket: a Unix stream socket speaking the protocol of ctl_proto.h.
 * Peers are checked with SO_PEERCRED (root or group burrow); bad requests get an error reply. */
#ifndef BURROW_CTL_SERVER_H
#define BURROW_CTL_SERVER_H

#include "log.h"

struct bw_agent;
struct bw_conn;
struct bw_ctl_server;

int bw_ctl_server_open(struct bw_agent *a, const char *path, struct bw_ctl_server **out);
void bw_ctl_server_close(struct bw_ctl_server *s);

/* Feeds `burrow log --follow` clients. */
void bw_ctl_server_log_line(struct bw_ctl_server *s, const struct bw_conn *c,
			    enum bw_log_level level, const char *msg);

#endif

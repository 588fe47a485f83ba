/* The IKE engine as the connection manager sees it: start, stop, status, the tunnel_up
 * event's fields. The engine owns c->ike while the connection is not down. */
#ifndef BURROW_IKE_CONN_H
#define BURROW_IKE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct bw_conn;
struct bw_agent;

int bw_ike_conn_start(struct bw_conn *c, char *err, size_t errlen);
void bw_ike_conn_stop(struct bw_conn *c, const char *reason);
/* The network changed: a tunnel whose local address is gone goes down with reason network. */
void bw_ike_conn_network_changed(struct bw_conn *c);
/* Adds SAs, addresses, counters to a status object. */
void bw_ike_conn_status(const struct bw_conn *c, json_t *status);
/* Fields of tunnel_up: connection, virtual_ip, dns, networks. */
json_t *bw_ike_conn_up_event(const struct bw_conn *c);
/* Bytes in/out for the speed figures; 0 when down. */
void bw_ike_conn_bytes(const struct bw_conn *c, uint64_t *in, uint64_t *out);

#endif

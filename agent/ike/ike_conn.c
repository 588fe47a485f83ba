/* The connection manager's entry into the IKE engine.
 * Until the IKEv1 engine lands, starting fails with a clear error instead of a fake "up". */
#include "ike/ike_conn.h"

#include <stdio.h>

#include "conn.h"

int bw_ike_conn_start(struct bw_conn *c, char *err, size_t errlen)
{
	snprintf(err, errlen, "cannot start %s: the IKEv1 engine is not implemented in this build yet",
		 c->name);
	return -1;
}

void bw_ike_conn_stop(struct bw_conn *c, const char *reason)
{
	bw_conn_set_state(c, BW_CONN_DOWN, reason);
}

void bw_ike_conn_status(const struct bw_conn *c, json_t *status)
{
	(void)c;
	json_object_set_new(status, "bytes_in", json_integer(0));
	json_object_set_new(status, "bytes_out", json_integer(0));
}

json_t *bw_ike_conn_up_event(const struct bw_conn *c)
{
	return json_pack("{s:s}", "connection", c->name);
}

void bw_ike_conn_bytes(const struct bw_conn *c, uint64_t *in, uint64_t *out)
{
	(void)c;
	*in = *out = 0;
}

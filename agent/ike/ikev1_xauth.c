/* XAUTH (draft-ietf-ipsec-isakmp-xauth) as the client: the gateway asks for a user name and
 * password, we answer from secrets/NAME.secrets, the gateway's STATUS decides. Generic type only. */
#include <stdio.h>
#include <string.h>

#include "ike/ikev1.h"
#include "log.h"

static void str_attr(struct isakmp_cfg *c, uint16_t type, const char *s)
{
	struct isakmp_attr *a = &c->attrs[c->n_attrs++];

	memset(a, 0, sizeof(*a));
	a->type = type;
	a->fmt = ISAKMP_ATTR_TLV;
	a->data = (const uint8_t *)s;
	a->len = (uint16_t)strlen(s);
}

void ike_xauth_request(struct bw_ike_conn *ike, const struct isakmp_cfg *req)
{
	const struct isakmp_attr *type = isakmp_attr_find(req->attrs, req->n_attrs, ISAKMP_CFG_XAUTH_TYPE);
	struct isakmp_cfg reply = { .type = ISAKMP_CFG_REPLY, .id = req->id };
	int rc;

	if (ike->txn.state != CFG_XAUTH_WAIT) {
		ike_log(ike, BW_LOG_DEBUG, "XAUTH request while not waiting for one; ignored");
		return;
	}
	if (!ike->cfg.xauth) {
		ike_failf(ike, "xauth-unexpected", "the gateway asks for XAUTH credentials",
			 "The gateway wants a user name and password (XAUTH). Set xauth = yes and xauth_user in "
			 "the connection, and xauth_password in %s/secrets/%s.secrets.", ike_config_dir(ike), ike->cfg.name);
		return;
	}
	if (type && type->has_value && type->value != 0) {
		char err[160];

		snprintf(err, sizeof(err), "the gateway asks for XAUTH type %llu (%s), which Burrow does not support",
			 (unsigned long long)type->value, type->value == 1 ? "RADIUS-CHAP" :
			 type->value == 2 ? "one-time password" : type->value == 3 ? "S/KEY" : "unknown");
		ike_fail(ike, "xauth-type", err, "Burrow answers generic (user name and password) XAUTH only. "
			 "Ask the gateway's admin to allow generic XAUTH for this group.");
		return;
	}
	if (isakmp_attr_find(req->attrs, req->n_attrs, ISAKMP_CFG_XAUTH_PASSCODE) ||
	    isakmp_attr_find(req->attrs, req->n_attrs, ISAKMP_CFG_XAUTH_NEXT_PIN) ||
	    isakmp_attr_find(req->attrs, req->n_attrs, ISAKMP_CFG_XAUTH_CHALLENGE)) {
		ike_fail(ike, "xauth-type", "the gateway asks for a passcode or challenge answer",
			 "Burrow answers user name and password XAUTH only, not token codes. Ask the gateway's "
			 "admin to allow password XAUTH for this group.");
		return;
	}
	if (type)
		reply.attrs[reply.n_attrs++] = (struct isakmp_attr){ .type = ISAKMP_CFG_XAUTH_TYPE,
								     .fmt = ISAKMP_ATTR_TV, .value = 0 };
	str_attr(&reply, ISAKMP_CFG_XAUTH_USER_NAME, ike->cfg.xauth_user);
	str_attr(&reply, ISAKMP_CFG_XAUTH_USER_PASSWORD, ike->sec.xauth_password);
	ike_log(ike, BW_LOG_INFO, "XAUTH: the gateway asks for credentials; answering as %s", ike->cfg.xauth_user);
	rc = ike_cfg_send(ike, ike->tx.msgid, &reply, false);
	if (rc != 0)
		ike_fail(ike, "internal", "cannot send the XAUTH answer", NULL);
	else
		snprintf(ike->last_step, sizeof(ike->last_step), "waiting for the gateway's XAUTH verdict");
}

void ike_xauth_status(struct bw_ike_conn *ike, const struct isakmp_cfg *set)
{
	const struct isakmp_attr *st = isakmp_attr_find(set->attrs, set->n_attrs, ISAKMP_CFG_XAUTH_STATUS);
	struct isakmp_cfg ack = { .type = ISAKMP_CFG_ACK, .id = set->id };
	bool ok = st && st->has_value && st->value == 1;

	if (ike->txn.state != CFG_XAUTH_WAIT)
		return;
	ack.attrs[ack.n_attrs++] = (struct isakmp_attr){ .type = ISAKMP_CFG_XAUTH_STATUS,
							 .fmt = ISAKMP_ATTR_TV, .value = ok ? 1 : 0 };
	ike_cfg_send(ike, ike->tx.msgid, &ack, false);
	if (!ok) {
		ike_failf(ike, "xauth-failed", "the gateway rejected the XAUTH user name or password",
			 "The gateway rejected the XAUTH credentials. Check xauth_user in the connection and "
			 "xauth_password in %s/secrets/%s.secrets; the account may also be locked on the gateway.", ike_config_dir(ike), ike->cfg.name);
		return;
	}
	ike_log(ike, BW_LOG_INFO, "XAUTH: accepted by the gateway");
	ike->txn.xauth_done = true;
	ike_cfg_next(ike);
}

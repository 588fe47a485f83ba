/* The XFRM netlink messages the kernel backend sends, and the replies and events it reads.
 * Pure construction and parsing: nothing here talks to a kernel, so unit tests can check every byte. */
#ifndef BURROW_XFRM_MSG_H
#define BURROW_XFRM_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sa-backends/sa_backend.h"

struct nl_msg;
struct nlmsghdr;

/* Reqids tie an SA pair to its policies. Burrow's all carry this top byte, so that what
 * Burrow installed is told apart from what strongSwan or libreswan installed (they count
 * up from 1); the rest is a hash of the connection name and a slot. */
#define BW_XFRM_REQID_TAG 0xb7000000u
#define BW_XFRM_REQID_MASK 0xff000000u
uint32_t bw_xfrm_reqid(const char *conn_name, unsigned slot);
bool bw_xfrm_reqid_is_ours(uint32_t reqid);

/* Policies: lower numbers win. More specific selectors must win over less specific ones
 * (a /24 over a 0.0.0.0/0 of the same connection), so the prefixes are subtracted. */
#define BW_XFRM_PRIO_BASE 200000u
uint32_t bw_xfrm_priority(const struct bw_cidr *local_ts, const struct bw_cidr *remote_ts);

#define BW_XFRM_REPLAY_WINDOW 32

/* The kernel's names for the negotiated ESP algorithms. Key lengths in bytes. */
struct bw_xfrm_alg {
	const char *enc_name;		/* NULL with AEAD */
	size_t enc_key_len;
	const char *auth_name;		/* NULL with AEAD */
	size_t auth_key_len;
	unsigned auth_trunc_bits;
	const char *aead_name;		/* NULL without AEAD */
	size_t aead_key_len;		/* key + 4-byte salt (RFC 4106 8.1) */
	unsigned aead_icv_bits;
};

/* -EOPNOTSUPP when the kernel has no name for the proposal. */
int bw_xfrm_alg_map(const struct bw_p2_proposal *p, struct bw_xfrm_alg *out);
size_t bw_xfrm_keymat_len(const struct bw_xfrm_alg *a);

/* The lifetimes put on an SA: the hard one from the IKE side, a soft one at 90% of it
 * (the kernel then reports XFRM_MSG_EXPIRE so that the connection rekeys). 0 = none. */
struct bw_xfrm_life {
	uint32_t soft_s, hard_s;
	uint64_t soft_bytes, hard_bytes;
};
void bw_xfrm_life_from(uint32_t hard_s, uint64_t hard_bytes, struct bw_xfrm_life *out);

/* XFRM_MSG_NEWSA (or UPDSA) for p: addresses by direction (out: local -> remote), the
 * algorithms and keys from p->keymat, replay window on inbound SAs, lifetimes, and the
 * ESP-in-UDP template when p->udp_encap (ports from the sockaddrs; a remote port of 0
 * or 500 means 4500). The message holds keys: free it with bw_xfrm_msg_free. */
int bw_xfrm_msg_sa(int type, const struct bw_sa_params *p, uint32_t reqid,
		   const struct bw_xfrm_life *life, struct nl_msg **out);
/* XFRM_MSG_DELSA / XFRM_MSG_GETSA by (destination, SPI, ESP). */
int bw_xfrm_msg_sa_id(int type, const struct bw_cidr *dst, uint32_t spi, struct nl_msg **out);

struct bw_xfrm_policy {
	int dir;			/* XFRM_POLICY_IN / OUT / FWD */
	struct bw_cidr sel_src, sel_dst;
	uint32_t priority;
	enum bw_ipsec_mode mode;
	struct bw_cidr tmpl_src, tmpl_dst;	/* outer addresses (host prefixes) */
	uint32_t reqid;
};
/* The three policies of one selector pair: out (local -> remote), in and fwd (remote ->
 * local). outer_local/outer_remote are the SA endpoints. */
void bw_xfrm_policies_for(const struct bw_cidr *local_ts, const struct bw_cidr *remote_ts,
			  const struct bw_cidr *outer_local, const struct bw_cidr *outer_remote,
			  enum bw_ipsec_mode mode, uint32_t reqid, struct bw_xfrm_policy out[3]);
/* XFRM_MSG_NEWPOLICY (fails with EEXIST when any policy, ours or not, has the selector)
 * or XFRM_MSG_UPDPOLICY, with one ESP template. */
int bw_xfrm_msg_policy(int type, const struct bw_xfrm_policy *pol, struct nl_msg **out);
/* XFRM_MSG_DELPOLICY / XFRM_MSG_GETPOLICY by selector and direction. */
int bw_xfrm_msg_policy_id(int type, int dir, const struct bw_cidr *sel_src,
			  const struct bw_cidr *sel_dst, struct nl_msg **out);

/* Wipes the payload (it may hold keys), then frees. NULL is fine. */
void bw_xfrm_msg_free(struct nl_msg *msg);

/* ---- what comes back ---- */

/* NLMSG_ERROR: 0 for an ACK, the kernel's -errno for an error; 1 when nlh is not NLMSG_ERROR;
 * -EBADMSG when it is truncated. */
int bw_xfrm_parse_ack(const struct nlmsghdr *nlh);

/* An SA as the kernel reports it (GETSA reply, NEWSA/EXPIRE events). */
struct bw_xfrm_sa_info {
	struct bw_cidr dst, src;
	uint32_t spi;
	uint8_t proto;
	uint32_t reqid;
	uint64_t bytes, packets;
	uint32_t replay_drops, integrity_failed;
};
/* XFRM_MSG_NEWSA (GETSA reply) or XFRM_MSG_EXPIRE (*hard set from the message). */
int bw_xfrm_parse_sa(const struct nlmsghdr *nlh, struct bw_xfrm_sa_info *out, bool *hard);
/* XFRM_MSG_DELSA notification: the usersa_id in front (dst, spi, proto). */
int bw_xfrm_parse_delsa(const struct nlmsghdr *nlh, struct bw_xfrm_sa_info *out);
/* XFRM_MSG_NEWPOLICY (GETPOLICY reply): the reqid of its first template (0 = none). */
int bw_xfrm_parse_policy_reqid(const struct nlmsghdr *nlh, uint32_t *reqid);

/* Why the kernel refused the probe SA (or that it took it), as a clause for the log and for
 * the sentence of `backend = xfrm`; it names CONFIG_INET_ESP when ESP is what is missing. */
void bw_xfrm_probe_reason(int err, char *buf, size_t len);

#endif

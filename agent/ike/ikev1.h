/* The IKEv1 initiator's per-connection state, shared by the exchange files (Main, Aggressive,
 * Quick, Informational) and the socket layer. Only this engine reads or writes it. */
#ifndef BURROW_IKEV1_H
#define BURROW_IKEV1_H

#include <ev.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "config/config.h"
#include "ike/ike_cert.h"
#include "ike/ike_crypto.h"
#include "ike/isakmp.h"
#include "ike/ikev1_offer.h"
#include "sa-backends/sa_backend.h"

struct bw_conn;
struct bw_agent;

#define IKE_NONCE_LEN 32
#define IKE_PEER_NONCE_MAX 256
#define IKE_ID_MAX 300
/* Back-off of retransmissions (seconds after each send): 8 resends, giving up after 15.5 s;
 * enough for an exchange to survive 30% loss in each direction. */
#define IKE_RETRANSMIT_SCHEDULE { 0.5, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 2.5 }
#define IKE_RETRANSMITS 8
#define IKE_KEEPALIVE_S 20.0
#define IKE_STOP_WAIT_S 2.0
#define IKE_DPD_MAX_PROBES 3
#define IKE_OLD_SA_GRACE_S 5.0
#define IKE_SWITCH_POLL_S 0.02
#define IKE_RESOLVE_WAIT_S 15.0
#define IKE_SWITCH_MAX_S 2.0
/* With the commit bit: how long to wait for CONNECTED (or traffic) before using the SA anyway. */
#define IKE_COMMIT_WAIT_S 10.0

enum p1_state {
	P1_IDLE,
	P1_RESOLVING,
	P1_MM_SENT1,	/* Main Mode: SA sent, waiting for the chosen SA */
	P1_MM_SENT3,	/* KE, Ni sent */
	P1_MM_SENT5,	/* encrypted IDii, HASH_I sent */
	P1_AM_SENT1,	/* Aggressive Mode: SA, KE, Ni, IDii sent */
	P1_DONE,
};

enum qm_state { QM_IDLE, QM_SENT1, QM_DONE };

/* Transaction exchanges after phase 1: XAUTH (the gateway asks), then Mode Config. */
enum cfg_state {
	CFG_NONE,
	CFG_XAUTH_WAIT,		/* waiting for the gateway's XAUTH REQUEST or its STATUS */
	CFG_MC_SENT,		/* pull: our REQUEST is out */
	CFG_MC_WAIT_SET,	/* push: waiting for the gateway's SET */
	CFG_DONE,
};

#define IKE_MAX_DNS 4
#define IKE_MAX_SPLIT_DNS 8
#define IKE_CFG_WAIT_S 30.0

/* What the gateway handed out through Mode Config. */
struct ike_modecfg {
	bool have_vip;
	struct bw_cidr vip;
	struct bw_cidr dns[IKE_MAX_DNS];
	size_t n_dns;
	struct bw_cidr nbns[2];
	size_t n_nbns;
	char banner[1024];
	char domain[256];
	char split_dns[IKE_MAX_SPLIT_DNS][256];
	size_t n_split_dns;
	struct bw_cidr split[BW_MAX_NETS];
	size_t n_split;
};

/* The gateway's Mode Config attributes as Burrow uses them (see ikev1_modecfg.c). */
struct isakmp_cfg;
size_t ike_modecfg_read(const struct isakmp_cfg *cfg, struct ike_modecfg *out);

/* One IPsec SA pair for one pair of traffic selectors (IKEv1 negotiates one per Quick Mode). */
struct ike_child {
	struct bw_cidr local_ts, remote_ts;
	enum qm_state state;
	uint8_t spi_in[4], spi_out[4];	/* as on the wire */
	struct bw_p2_proposal alg;
	uint32_t lifetime_s;
	bool installed;
	/* Rekeying (make-before-break): the SPIs being replaced stay until the new pair is in. */
	bool rekeying;
	uint8_t old_spi_in[4], old_spi_out[4];
	bool old_in_valid;		/* late packets on the old inbound SA are still accepted */
	double rekey_at;		/* ev_now() time of the next rekey */
};

/* One exchange in flight after phase 1 (Quick Mode either way, a transaction): its message ID,
 * running IV, nonces, PFS state and, for the side that answers, its answer for the peer's
 * repeats. The retransmission of the message we wait an answer for is the engine's (ike_send). */
struct ike_exchange {
	bool active;
	uint32_t msgid;
	uint8_t iv[BW_IKE_BLOCK_MAX];
	uint8_t ni[IKE_PEER_NONCE_MAX], nr[IKE_PEER_NONCE_MAX];	/* initiator's and responder's */
	size_t ni_len, nr_len;
	struct bw_dh *dh;		/* our PFS key pair while we wait for the peer's KE */
	uint8_t gqm[BW_DH_PUBLIC_MAX];	/* the PFS shared secret, until the SAs are installed */
	size_t gqm_len;
	uint8_t *sent;			/* our answer, resent when the peer repeats its message */
	size_t sent_len;
};

/* The IKE SA: phase 1's state, cookies, chosen algorithms, keys and what it learnt of the
 * gateway (vendor IDs, certificate). */
struct ike_sa {
	enum p1_state p1;
	bool authenticated;		/* the gateway proved the key: it holds an IKE SA to delete */
	uint8_t icookie[8], rcookie[8];
	struct bw_p1_proposal alg;
	uint32_t lifetime_s;
	size_t prf_len;
	uint8_t skeyid[BW_HASH_MAX], skeyid_d[BW_HASH_MAX], skeyid_a[BW_HASH_MAX], skeyid_e[BW_HASH_MAX];
	uint8_t enc_key[BW_IKE_KEY_MAX];
	size_t enc_key_len, block;
	uint8_t iv[BW_IKE_BLOCK_MAX];	/* running phase-1 IV; after phase 1, its last block */
	bool peer_natt, peer_dpd, peer_xauth, peer_unity, peer_frag;
	char peer_vendor[64];
	/* Certificate authentication (method rsa/ecdsa): ours, and what the gateway showed. */
	struct bw_cert_creds *cert;
	bool have_peer_cert;
	struct bw_cert_info peer_cert;
};

/* Main or Aggressive Mode in flight: the key exchange, nonces and the payload bodies that
 * HASH_I/HASH_R cover. */
struct ike_p1_exchange {
	struct bw_dh *dh;
	uint8_t gxi[BW_DH_PUBLIC_MAX], gxr[BW_DH_PUBLIC_MAX];
	size_t gx_len;
	uint8_t ni[IKE_NONCE_LEN], nr[IKE_PEER_NONCE_MAX];
	size_t nr_len;
	uint8_t *sai_b;			/* our phase-1 SA payload body */
	size_t sai_b_len;
	uint8_t idii_b[IKE_ID_MAX];
	size_t idii_b_len;
};

/* The gateway's renewal of one child, agreed in its Quick Mode and installed at its HASH(3). */
struct ike_renewal {
	size_t child;
	struct bw_p2_proposal alg;
	uint8_t spi_in[4], spi_out[4];
	uint32_t lifetime_s;
};

/* The IPsec SA pairs, one per pair of traffic selectors; Quick Mode runs one at a time, for
 * sa[cur]. */
struct ike_children {
	size_t n, cur;
	struct ike_child sa[BW_MAX_NETS];
	struct ike_renewal renewal;
};

/* Retransmission: the last message we sent, resent with back-off until the answer comes; and our
 * last message of an exchange the gateway closes on its side only when it arrives (Aggressive
 * Mode 3, Quick Mode 3), resent when the gateway repeats its message. (ike_socket.c) */
struct ike_resend {
	uint8_t *msg;
	size_t len;
	int tries;
	ev_timer timer;
	uint8_t *final_msg;
	size_t final_len;
	uint8_t final_exchange;
	uint32_t final_msgid;
};

/* Dead peer detection (RFC 3706). */
struct ike_dpd {
	ev_timer timer;
	double last_rx;			/* ev_now() of the last authentic packet from the gateway */
	uint32_t seq;
	int outstanding;		/* probes sent without an answer */
};

/* Phase-2 rekeying and the switch of outbound traffic to a new SA. */
struct ike_rekey {
	ev_timer timer;
	ev_timer old_sa_timer;		/* removes replaced inbound SAs after a grace period */
	/* Make-before-break, outbound half: after our HASH(3) the gateway still has to install
	 * the new inbound SA, so our outbound traffic stays on the old SA until the gateway
	 * is seen sending on the new one (or IKE_SWITCH_MAX_S passed). */
	ev_timer switch_timer;
	int switch_child;		/* index of the child waiting, -1 if none */
	bool switch_commit;		/* the gateway set the commit bit: wait for CONNECTED */
	uint32_t switch_prev_out;	/* the outbound SA still carrying its traffic */
	double switch_started;
};

/* Phase-1 re-authentication, make-before-break: a second engine instance negotiates a new IKE
 * SA and new IPsec SAs on the same datapath, then replaces this one. */
struct ike_reauth {
	ev_timer timer;
	struct bw_ike_conn *of;		/* set in the new instance: the one it replaces */
	struct bw_ike_conn *next;	/* set in the old instance while a replacement runs */
};

/* Where the gateway is and how we reach it. The peer's port is its current one (500, or 4500
 * once floated). */
struct ike_path {
	struct ike_resolve *resolve;	/* the gateway's name being looked up */
	ev_timer resolve_timer;		/* one-shot: gives up on the lookup */
	struct sockaddr_storage peer;
	struct sockaddr_storage local;	/* our address towards the gateway, port = our IKE port */
	bool use_natt;			/* both sides announced RFC 3947 */
	bool nat_local, nat_remote;	/* NAT in front of us / of the gateway */
	bool floated;			/* IKE and ESP on the NAT-T port */
};

/* The transaction exchanges after phase 1: XAUTH, then Mode Config (ikev1_modecfg.c). */
struct ike_txn {
	enum cfg_state state;
	ev_timer timer;
	struct ike_modecfg mc;		/* what the gateway handed out */
	bool xauth_done;
};

/* DNS as applied while up (ike_dns.c). */
struct ike_dns {
	bool applied;
	bool via_resolved;		/* revert with resolvectl */
	struct ike_dns_fwd *fwd;	/* the dnsmasq forwarder for split DNS, or NULL */
	char warning[160];		/* shown by burrow status while up */
};

/* The SA backend's side of this connection. */
struct ike_datapath {
	const struct bw_sa_backend_ops *be;
	struct bw_sa_conn *conn;
	bool shared;			/* the datapath belongs to the instance being replaced */
	struct bw_cidr vip;		/* address put on the interface (local_address or Mode Config) */
	bool have_vip;
	bool forwarding_enabled;	/* we turned on IPv4 forwarding for network-to-network */
};

struct bw_ike_conn {
	struct bw_conn *conn;
	struct bw_agent *agent;
	struct bw_conn_config cfg;	/* copied at start: a reload does not change a running tunnel */
	struct bw_secrets sec;
	struct bw_ike_conn *next;	/* in the engine's list */

	struct ike_path path;

	struct ike_sa sa;
	struct ike_p1_exchange p1x;
	struct ike_children children;
	struct ike_exchange qm;		/* ours, for children.sa[children.cur]; ni is our nonce */

	struct ike_txn txn;
	struct ike_exchange tx;		/* the transaction exchange in progress (msgid, iv) */
	struct ike_dns dns;

	/* Quick Mode as responder: the gateway renews an IPsec SA before we do (children.renewal). */
	struct ike_exchange qr;		/* the gateway's; nr is ours (IKE_NONCE_LEN bytes) */

	struct ike_resend resend;

	ev_timer keepalive;
	ev_timer stop_timer;

	struct ike_dpd dpd;
	struct ike_rekey rekey;
	struct ike_reauth reauth;
	struct ike_datapath dp;
	char last_step[96];		/* what we were waiting for, for timeouts */
};

/* Socket layer (ike_socket.c). The sockets are shared by every connection; be (may be NULL)
 * prepares them for its datapath when it has prepare_ike_socket. */
int ike_sockets_open(struct bw_agent *a, uint16_t ike_port, uint16_t natt_port,
		     const struct bw_sa_backend_ops *be, char *err, size_t errlen);
void ike_sockets_close(void);
uint16_t ike_sockets_port(bool natt);
/* Sends a message as is (adds the non-ESP marker on the NAT-T port). */
int ike_send_raw(struct bw_ike_conn *ike, const uint8_t *msg, size_t len);
/* Sends and keeps the message for retransmission until ike_rexmit_stop(). */
int ike_send(struct bw_ike_conn *ike, uint8_t *msg, size_t len);
void ike_rexmit_stop(struct bw_ike_conn *ike);
/* Keeps a copy of msg as the final message of an exchange (see struct ike_resend). */
void ike_keep_final(struct bw_ike_conn *ike, uint8_t exchange, uint32_t msgid, const uint8_t *msg, size_t len);
void ike_register(struct bw_ike_conn *ike);
void ike_unregister(struct bw_ike_conn *ike);
/* ESP of the userspace datapath on the NAT-T socket, batched (see ike_socket.c): send_esp
 * queues, ike_flush_esp sends what is queued; keepalives flush first. */
int ike_send_esp(struct bw_ike_conn *ike, const uint8_t *pkt, size_t len);
void ike_flush_esp(void);
int ike_send_keepalive(struct bw_ike_conn *ike);
/* Test seams for tests/unit/test_ike_socket_batch.c: fail the next UDP_SEGMENT send with err;
 * whether UDP_SEGMENT is still used; how many UDP_SEGMENT sends went out. */
void ike_esp_test_refuse_gso(int err);
bool ike_esp_gso_on(void);
unsigned long ike_esp_gso_sends(void);
/* Test seam (tests/unit/test_quick_mode.c): sees every IKE message ike_send_raw sends. */
extern void (*ike_test_sent)(const uint8_t *msg, size_t len);

/* Shared phase-1 helpers (ikev1_p1.c). */
void ike_hdr_init(struct bw_ike_conn *ike, struct isakmp_hdr *h, uint8_t exchange, uint32_t msgid,
		  uint8_t flags);
int ike_p1_build_sa(struct bw_ike_conn *ike, struct isakmp_builder *b);
int ike_p1_accept_sa(struct bw_ike_conn *ike, const struct isakmp_payload *pl);
int ike_p1_build_id(struct bw_ike_conn *ike, struct isakmp_builder *b);
int ike_p1_check_peer_id(struct bw_ike_conn *ike, const struct isakmp_payload *pl);
/* Certificates: CERTREQ for our CAs (Main Mode 3); CERT and SIG over HASH_I (Main Mode 5);
 * the gateway's CERT, chain, SIG over HASH_R and identity (Main Mode 6). */
int ike_p1_build_cr(struct bw_ike_conn *ike, struct isakmp_builder *b);
int ike_p1_build_cert_sig(struct bw_ike_conn *ike, struct isakmp_builder *b, const uint8_t *hash);
int ike_p1_check_peer_cert(struct bw_ike_conn *ike, const struct isakmp_payloads *pls, int id_index);
int ike_p1_build_natd(struct bw_ike_conn *ike, struct isakmp_builder *b);
void ike_p1_check_natd(struct bw_ike_conn *ike, const struct isakmp_payloads *pls);
void ike_p1_note_vids(struct bw_ike_conn *ike, const struct isakmp_payloads *pls);
int ike_p1_build_vids(struct bw_ike_conn *ike, struct isakmp_builder *b);
int ike_p1_new_dh(struct bw_ike_conn *ike);
int ike_p1_take_ke_nonce(struct bw_ike_conn *ike, const struct isakmp_payloads *pls);
int ike_p1_derive_keys(struct bw_ike_conn *ike);
int ike_p1_hash(struct bw_ike_conn *ike, bool initiator, const uint8_t *id_b, size_t id_len,
		uint8_t *out);
/* Length of HASH_I/HASH_R: prf_len, or the curve's hash length with ECDSA. */
size_t ike_p1_hash_len(const struct bw_ike_conn *ike);
/* Encrypts the builder's body with iv (updated to the last ciphertext block) and finishes it. */
int ike_encrypt_msg(struct bw_ike_conn *ike, struct isakmp_builder *b, uint8_t *iv);
/* Decrypts msg in place (body after the header) with iv; the plaintext body is msg+28. */
int ike_decrypt_msg(struct bw_ike_conn *ike, uint8_t *msg, size_t len, uint8_t *iv);
void ike_float(struct bw_ike_conn *ike);

/* Opening a protected message after phase 1 (ikev1_open.c). The kind says which HASH it carries
 * and which payloads may follow it. */
enum ike_msg_kind {
	IKE_MSG_QM1,	/* the gateway starts Quick Mode: HASH(1), SA, Ni [, KE] [, IDci, IDcr] */
	IKE_MSG_QM2,	/* the answer to ours: HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N] [, NAT-OA] */
	IKE_MSG_QM3,	/* HASH(3) and nothing else */
	IKE_MSG_QM4,	/* HASH(4) (computed like HASH(1)) and notifications: the commit bit's CONNECTED */
	IKE_MSG_INFO,	/* Informational: HASH(1), notifications and deletes */
	IKE_MSG_TXN,	/* transaction: HASH(1), one attribute payload */
};

enum {
	IKE_OPEN_OK = 0,
	IKE_OPEN_UNREADABLE = -1,	/* does not decrypt, or no HASH first */
	IKE_OPEN_MISPLACED = -2,	/* a payload the exchange does not carry, or one too many */
	IKE_OPEN_BAD_HASH = -3,
};

/* A message opened by ike_msg_open; the views point into the decrypted message. Absent or
 * malformed payloads are NULL / false. ike_msg_close frees sa. */
struct ike_msg {
	const uint8_t *body;		/* the plaintext after the ISAKMP header */
	struct isakmp_payloads pls;	/* pls.p[0] is the HASH */
	uint8_t iv[BW_IKE_BLOCK_MAX];	/* the exchange's IV after this message */
	struct isakmp_sa *sa;		/* heap */
	bool have_nonce, have_ke;
	struct isakmp_blob nonce, ke;
	const struct isakmp_payload *id_i, *id_r;	/* the first two ID payloads, when there are two */
	int attr;			/* index of the attribute payload, -1 if none */
	uint8_t refused;		/* with IKE_OPEN_MISPLACED: the payload type refused (0: too few) */
};

/* Decrypts msg in place (only within it), checks the HASH and the payloads as kind requires
 * and fills m. ex is the exchange the message belongs to (its IV, and its nonces for HASH(2)
 * and HASH(3)), or NULL for the first message of a new exchange, whose IV comes from phase 1's
 * last block. Returns IKE_OPEN_OK or why not; call ike_msg_close either way. */
int ike_msg_open(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len,
		 enum ike_msg_kind kind, const struct ike_exchange *ex, struct ike_msg *m);
void ike_msg_close(struct ike_msg *m);
/* A new exchange of ours: a random message ID other than 0, and the IV derived from it and
 * phase 1's last block. 0, or -1 without randomness. */
int ike_exchange_begin(struct bw_ike_conn *ike, struct ike_exchange *ex);
/* Frees what an exchange holds (PFS key pair, kept answer) and wipes its PFS secret. */
void ike_exchange_end(struct ike_exchange *ex);
void ike_phase1_done(struct bw_ike_conn *ike);

/* Exchanges. */
int ike_main_start(struct bw_ike_conn *ike);
void ike_main_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len);
int ike_aggr_start(struct bw_ike_conn *ike);
void ike_aggr_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len);
int ike_quick_start(struct bw_ike_conn *ike);
void ike_quick_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len);
void ike_info_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len);
/* Transaction exchange (ikev1_modecfg.c) and XAUTH (ikev1_xauth.c). */
void ike_cfg_begin(struct bw_ike_conn *ike);
void ike_cfg_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len);
int ike_cfg_send(struct bw_ike_conn *ike, uint32_t msgid, const struct isakmp_cfg *cfg, bool expect_reply);
void ike_cfg_next(struct bw_ike_conn *ike);
void ike_xauth_request(struct bw_ike_conn *ike, const struct isakmp_cfg *req);
void ike_xauth_status(struct bw_ike_conn *ike, const struct isakmp_cfg *set);
/* DNS from Mode Config or the connection (ike_dns.c); undone by ike_dns_revert. 0 when done,
 * 1 when a forwarder is starting (ike_dns_started follows from the loop), -1 with err. */
int ike_dns_apply(struct bw_ike_conn *ike, char *err, size_t errlen);
void ike_dns_revert(struct bw_ike_conn *ike);
void ike_dns_cleanup_stale(const char *conn_name, const char *state_dir);
bool ike_dns_have_resolved(void);
/* BURROW_DNSMASQ and BURROW_RESOLVED, read at burrowd's start. */
void ike_dns_read_env(void);
/* What DNS a connection will get, in one sentence; false when it is a fallback to warn about. */
bool ike_dns_method(const struct bw_conn_config *cfg, char *out, size_t len);
/* ike_conn.c: the forwarder answered (err NULL) or failed. */
void ike_dns_started(struct bw_ike_conn *ike, const char *err);
int ike_info_send_delete(struct bw_ike_conn *ike, uint8_t proto, const uint8_t *spi, size_t spi_size);
int ike_info_send_notify(struct bw_ike_conn *ike, uint16_t type, const uint8_t *spi, size_t spi_size,
			 const uint8_t *data, size_t len);

/* Liveness and rekeying (ike_conn.c). */
void ike_seen_peer(struct bw_ike_conn *ike);
void ike_dpd_ack(struct bw_ike_conn *ike, uint32_t seq);
void ike_rekey_done(struct bw_ike_conn *ike, struct ike_child *ch);

/* Engine (ike_conn.c). */
void ike_dispatch(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len);
/* Fails the connection with an error code, a sentence and an explanation; tears down. */
void ike_fail(struct bw_ike_conn *ike, const char *code, const char *error, const char *explanation);
/* The same with the explanation formatted like printf, to name the connection and its files. */
void ike_failf(struct bw_ike_conn *ike, const char *code, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The agent's configuration directory, where secrets/NAME.secrets lives. */
const char *ike_config_dir(const struct bw_ike_conn *ike);
/* All children are up: install SAs and routes, report up. */
void ike_children_done(struct bw_ike_conn *ike);
/* Phase 1 and the transaction exchanges are done: negotiate the IPsec SAs. */
void ike_start_children(struct bw_ike_conn *ike);
void ike_peer_deleted(struct bw_ike_conn *ike, const char *what);
struct bw_ike_conn *ike_find_by_cookie(const uint8_t icookie[8]);
struct bw_ike_conn *ike_find_by_spi(uint32_t spi);
void ike_esp_input(struct bw_ike_conn *ike, const uint8_t *pkt, size_t len);
/* n ESP packets for one connection that arrived together, in order. */
void ike_esp_input_burst(struct bw_ike_conn *ike, const struct iovec *pkts, size_t n);

#define ike_log(ike, lvl, ...) bw_log((lvl), (ike)->cfg.name, __VA_ARGS__)

#endif

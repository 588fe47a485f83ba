/* `burrow doctor [NAME]`: checks of the host (kernel ESP, TUN, IKE ports, other IKE daemons,
 * clock) and of one connection's path to its gateway (name, route, a phase-1 probe on 500/4500). */
#ifndef BURROW_DIAG_DOCTOR_H
#define BURROW_DIAG_DOCTOR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <jansson.h>

#include "config/config.h"

struct bw_agent;
struct bw_conn;

#define BW_DOCTOR_PROBE_MS 3000		/* the whole phase-1 probe, 500 and 4500 together */
#define BW_DOCTOR_RESOLVE_MS 2000	/* the gateway's name */

/* One check: {name, status: "ok"|"warn"|"fail", detail, hint}; detail and hint are one
 * sentence each, hint says what to do ("" when there is nothing to do). */
json_t *bw_doctor_check(const char *name, const char *status, const char *detail, const char *hint);

/* Every check, as an array. It may block for up to about BW_DOCTOR_RESOLVE_MS +
 * BW_DOCTOR_PROBE_MS when c is given (the gateway checks), and for a few milliseconds
 * otherwise, so the agent calls it in a forked worker (ctl_server.c), never on its loop.
 * c may be NULL. */
json_t *bw_doctor_run(struct bw_agent *a, const struct bw_conn *c);

/* The control request {"cmd": "doctor", "args": {"name"?}}: the array of checks, or NULL
 * with a one-sentence reason in err when the connection is unknown. */
json_t *bw_doctor_request(struct bw_agent *a, const char *name, char *err, size_t errlen);

/* ---- The pieces, exported for the tests ------------------------------------------------- */

json_t *bw_doctor_check_clock(time_t now);
/* Scans proc_root (normally "/proc") for charon, pluto, racoon, iked and friends. */
json_t *bw_doctor_check_daemons(const char *proc_root);
json_t *bw_doctor_check_tun(void);
json_t *bw_doctor_check_kernel_esp(enum bw_backend want);
json_t *bw_doctor_check_backend(enum bw_backend want, const char **picked);

/* Who holds local UDP port: 0 free, 1 taken (pid and comm filled when the owner was found,
 * pid 0 otherwise), -errno when neither a bind test nor /proc/net/udp could tell. */
int bw_doctor_udp_port_owner(uint16_t port, pid_t *pid, char *comm, size_t commlen);
/* what is "ike_port" or "natt_port": the burrow.conf key the hint names. */
json_t *bw_doctor_check_port(const char *name, const char *what, uint16_t port);
/* The process that counts as burrowd itself in check_port, besides the caller: the agent
 * when the checks run in a worker it forked. 0: only the caller. */
void bw_doctor_set_agent_pid(pid_t pid);

/* Resolves host (IPv4, as the IKE engine does) within timeout_ms. 0, or -1 with err. */
int bw_doctor_resolve(const char *host, int timeout_ms, struct sockaddr_in *out, char *err, size_t errlen);

/* What the gateway answered to one Main Mode message 1. */
struct bw_doctor_probe {
	bool sent;
	int error;			/* errno of the last send/receive failure; ECONNREFUSED = ICMP
					 * port unreachable */
	bool answered;			/* an ISAKMP message carrying our initiator cookie */
	unsigned rtt_ms;
	uint8_t exchange;
	bool encrypted;
	uint16_t notify;		/* the first notify's type, 0 when none */
	bool chose;			/* the answer held an SA with one transform */
	struct bw_p1_proposal chosen;
	bool peer_natt;			/* announced RFC 3947 */
	char vendors[256];		/* the vendor IDs it announced, comma-separated */
	bool released;			/* the half-open phase 1 the answer stands for was given up
					 * (bw_doctor_build_release sent) */
};

/* The message that gives up the phase 1 a message 1 opened on the gateway: an unencrypted
 * Informational (random non-zero message ID) with one notification, NO-PROPOSAL-CHOSEN, for
 * protocol ISAKMP whose 16-byte SPI is the cookie pair (RFC 2408 3.14). strongSwan drops a
 * half-open IKE SA on such an error notification; it would refuse an unencrypted DELETE.
 * 0, or -1 when cap is too small. */
int bw_doctor_build_release(const uint8_t icookie[8], const uint8_t rcookie[8], uint8_t *out, size_t cap,
			    size_t *len);

/* Sends Main Mode message 1 with cfg's proposals and vendor IDs to ike (plain) and, when
 * natt is not NULL, the same offer with its own cookie behind the non-ESP marker to natt;
 * waits up to timeout_ms in all, resending once a second. Each answer other than an
 * Informational is released at once (bw_doctor_build_release, sent twice), so that the
 * probe leaves no half-open phase 1 behind. 0, or -1 with err when nothing could be sent
 * at all. */
int bw_doctor_probe_run(const struct bw_conn_config *cfg, const struct sockaddr_in *ike,
			const struct sockaddr_in *natt, int timeout_ms, struct bw_doctor_probe *ike_res,
			struct bw_doctor_probe *natt_res, char *err, size_t errlen);

/* The checks "ike-500", "phase1" and "nat-t-4500" from the probe's results. gw names the
 * gateway in sentences; local is our source address towards it (may be NULL);
 * udp_encap says the datapath can only carry ESP in UDP, so 4500 is required. */
json_t *bw_doctor_probe_checks(const struct bw_conn_config *cfg, const char *gw,
			       const struct sockaddr_in *local, const struct bw_doctor_probe *ike,
			       const struct bw_doctor_probe *natt, bool udp_encap, int timeout_ms);

#endif

/* The kill switch of a host-to-everywhere connection: nftables rules that let nothing leave
 * but the tunnel and IKE/ESP to the gateway, from start until `burrow stop`, even across failures. */
#ifndef BURROW_KILLSWITCH_H
#define BURROW_KILLSWITCH_H

#include <netinet/in.h>

/* Installs (or replaces) the rules for connection name; 0 or -1 with a reason in err. */
int bw_killswitch_on(const char *name, const char *ifname, const struct in_addr *gateway, char *err, size_t errlen);
/* Removes them; harmless when there are none. */
void bw_killswitch_off(const char *name);
/* The nftables table that holds the rules of name (for tests and the support report). */
void bw_killswitch_table(const char *name, char *out, size_t len);

#endif

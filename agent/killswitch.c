/* Kill switch rules, handed to `nft -f -` (no shell) as one atomic ruleset per connection.
 * The table is named after the connection, so removing it never touches anyone else's rules. */
#include "killswitch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"

void bw_killswitch_table(const char *name, char *out, size_t len)
{
	size_t k = 0;

	/* nft identifiers: letters, digits, underscore. */
	k = (size_t)snprintf(out, len, "burrow_ks_");
	for (const char *p = name; *p && k + 1 < len; p++)
		out[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_';
	out[k < len ? k : len - 1] = '\0';
}

/* nft reads the script from stdin; it answers in milliseconds, 5 s is a hung nft. */
static int nft(const char *script)
{
	char *argv[] = { "nft", "-f", "-", NULL };
	int rc = bw_child_run_sync(argv, script, strlen(script), 5.0);

	return rc > 0 ? -EIO : rc;
}

int bw_killswitch_on(const char *name, const char *ifname, const struct in_addr *gateway, char *err, size_t errlen)
{
	char table[96], gw[INET_ADDRSTRLEN], script[2048];
	int rc;

	bw_killswitch_table(name, table, sizeof(table));
	inet_ntop(AF_INET, gateway, gw, sizeof(gw));
	/* "add table; delete table; table {...}" replaces any earlier version atomically. */
	snprintf(script, sizeof(script),
		 "add table inet %s\n"
		 "delete table inet %s\n"
		 "table inet %s {\n"
		 "  chain output {\n"
		 "    type filter hook output priority -10; policy drop;\n"
		 "    oifname \"lo\" accept\n"
		 "    oifname \"%s\" accept\n"
		 "    ip daddr %s udp dport { 500, 4500 } accept\n"
		 "  }\n"
		 "  chain forward {\n"
		 "    type filter hook forward priority -10; policy drop;\n"
		 "    oifname \"%s\" accept\n"
		 "    iifname \"%s\" ct state established,related accept\n"
		 "  }\n"
		 "}\n", table, table, table, ifname, gw, ifname, ifname);
	rc = nft(script);
	if (rc != 0) {
		snprintf(err, errlen, "cannot install the kill switch (%s); install nftables or set kill_switch = no",
			 rc == -ENOENT ? "nft is not installed" : "nft refused the rules");
		return -1;
	}
	bw_log(BW_LOG_INFO, name, "kill switch on: only the tunnel and IKE to %s may leave (nft table %s)", gw, table);
	return 0;
}

void bw_killswitch_off(const char *name)
{
	char table[96], script[256];

	bw_killswitch_table(name, table, sizeof(table));
	snprintf(script, sizeof(script), "add table inet %s\ndelete table inet %s\n", table, table);
	if (nft(script) == 0)
		bw_log(BW_LOG_DEBUG, name, "kill switch off (nft table %s removed)", table);
}

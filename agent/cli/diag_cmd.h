/* `burrow doctor [NAME]` and `burrow report -o FILE`: the CLI side of the diagnostics. */
#ifndef BURROW_CLI_DIAG_CMD_H
#define BURROW_CLI_DIAG_CMD_H

#include <stdbool.h>

/* argv[0] is "doctor". Prints one line per check; exit status 0, 1 when a check failed,
 * 2 on bad usage. With json, prints the agent's array of checks as is. */
int bw_cli_doctor(int argc, char **argv, const char *socket_path, bool json);

/* argv[0] is "report". The agent writes the file; a relative FILE is made absolute here. */
int bw_cli_report(int argc, char **argv, const char *socket_path);

#endif

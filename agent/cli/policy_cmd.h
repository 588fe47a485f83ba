/* `burrow policy check|test`: runs policies offline against the simulated agent. */
#ifndef BURROW_CLI_POLICY_CMD_H
#define BURROW_CLI_POLICY_CMD_H

/* argv[0] is "policy". Exit status: 0 ok, 1 a policy failed, 2 bad usage or trace. */
int bw_cli_policy(int argc, char **argv);

/* burrow.c takes --json out of argv wherever it stands: it passes it on through this (for
 * `burrow policy test --json`) before calling bw_cli_policy. */
void bw_cli_policy_set_json(int on);

#endif

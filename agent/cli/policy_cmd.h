/* `burrow policy check|test`: runs policies offline against the simulated agent. */
#ifndef BURROW_CLI_POLICY_CMD_H
#define BURROW_CLI_POLICY_CMD_H

/* argv[0] is "policy". Exit status: 0 ok, 1 a policy failed, 2 bad usage or trace. */
int bw_cli_policy(int argc, char **argv);

#endif

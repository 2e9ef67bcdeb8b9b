/* users_cmd.h — `sluice users`: add, delete and list the SASL/SCRAM
 * users of a metadata store. */
#ifndef SLUICE_USERS_CMD_H
#define SLUICE_USERS_CMD_H

/* argv after "users". Returns the process exit status. */
int users_cmd(int argc, char **argv);

#endif

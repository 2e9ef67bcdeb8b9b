/* groups_cmd.h — `sluice groups`: list, describe, delete consumer groups
 * and reset their offsets, by talking to a running broker over the Kafka
 * protocol (as kafka-consumer-groups.sh does). */
#ifndef SLUICE_GROUPS_CMD_H
#define SLUICE_GROUPS_CMD_H

/* argv after "groups". Returns the process exit status. */
int groups_cmd(int argc, char **argv);

#endif

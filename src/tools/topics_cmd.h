/* topics_cmd.h — `sluice topics`: list, describe, create, delete topics,
 * alter their configs and add partitions, by talking to a running broker
 * over the Kafka protocol (as kafka-topics.sh does). */
#ifndef SLUICE_TOPICS_CMD_H
#define SLUICE_TOPICS_CMD_H

/* argv after "topics". Returns the process exit status: 0, 1 (an error
 * from the broker or the connection), 2 (usage). */
int topics_cmd(int argc, char **argv);

#endif

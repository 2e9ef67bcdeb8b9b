/* configs_cmd.h — `sluice configs`: describe and alter the configs of a
 * topic or a broker, by talking to a running broker over the Kafka
 * protocol (as kafka-configs.sh does). */
#ifndef SLUICE_CONFIGS_CMD_H
#define SLUICE_CONFIGS_CMD_H

/* argv after "configs". Returns the process exit status: 0, 1 (an error
 * from the broker or the connection), 2 (usage). */
int configs_cmd(int argc, char **argv);

#endif

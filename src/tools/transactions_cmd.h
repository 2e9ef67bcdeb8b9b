/* transactions_cmd.h — `sluice transactions`: list and describe
 * transactions and a partition's producers by talking to running brokers
 * over the Kafka protocol (as kafka-transactions.sh does). */
#ifndef SLUICE_TRANSACTIONS_CMD_H
#define SLUICE_TRANSACTIONS_CMD_H

/* argv after "transactions". Returns the process exit status. */
int transactions_cmd(int argc, char **argv);

#endif

/* acls_cmd.h — `sluice acls`: add, list and remove ACLs by talking to a
 * running broker over the Kafka protocol (CreateAcls, DescribeAcls,
 * DeleteAcls), with kafka-acls.sh's options and output. */
#ifndef SLUICE_ACLS_CMD_H
#define SLUICE_ACLS_CMD_H

/* argv after "acls". Returns the process exit status: 0, 1 (an error
 * from the broker or the connection), 2 (usage). */
int acls_cmd(int argc, char **argv);

#endif

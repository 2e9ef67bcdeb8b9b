/* inspect_cmd.h — `sluice inspect`: dump an object (a file, or a key of
 * a store) and the batch rows of a partition. */
#ifndef SLUICE_INSPECT_CMD_H
#define SLUICE_INSPECT_CMD_H

/* argv after "inspect". Returns the process exit status. */
int inspect_cmd(int argc, char **argv);

#endif

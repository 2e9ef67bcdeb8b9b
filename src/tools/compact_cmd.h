/* compact_cmd.h — `sluice compact`: one merge pass (issue 15) over a
 * topic's partitions, on the stores directly. */
#ifndef SLUICE_COMPACT_CMD_H
#define SLUICE_COMPACT_CMD_H

/* argv after "compact". Returns the process exit status. */
int compact_cmd(int argc, char **argv);

#endif

/* gc_cmd.h — `sluice gc`: a one-shot garbage collector of the object
 * store (dead objects and orphans older than a grace period). */
#ifndef SLUICE_GC_CMD_H
#define SLUICE_GC_CMD_H

/* argv after "gc". Returns the process exit status. */
int gc_cmd(int argc, char **argv);

#endif

/* acls.h — the agent's copy of the ACLs and its authorizer
 * (auth/authorizer.h): loaded at start, then polled from the metadata
 * store (meta_acl_read, a pool job every SL_ACL_POLL_INTERVAL_MS) and
 * swapped in on the loop, so a change made through any agent counts on
 * every agent within that period, and a check never waits. */
#ifndef SLUICE_AGENT_ACLS_H
#define SLUICE_AGENT_ACLS_H

#include "auth/authorizer.h"

struct agent;

/* Parse --super-users, load the ACLs (when --authorizer acl) and start
 * polling. 0, or a negative code after logging why. */
int acls_start(struct agent *a);
/* Poll now (after this agent changed them), unless a poll is running. */
void acls_poll_now(struct agent *a);
void acls_stop(struct agent *a);
void acls_free(struct agent *a);
/* What checks use: valid on the loop until the next poll lands. */
const struct authorizer *agent_authorizer(const struct agent *a);

#endif

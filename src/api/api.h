/* api.h — the Kafka API layer: the dispatch table (one row per API key:
 * versions, first flexible version, handler) from which ApiVersions is
 * also answered, and the hooks (agent_hooks) through which the agent's
 * events reach it. */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stdint.h>

#include "agent/agent.h"
#include "net/server.h"

struct api_row {
	int16_t key;
	const char *name;
	int16_t min_version;
	int16_t max_version;
	int16_t first_flexible;  /* -1: never */
	size_t request_bytes;    /* the decoded message's struct */
	/* Initialise and decode the body into m (request_bytes, in the
	 * request arena): 0, or non-zero for a malformed body. */
	int (*decode)(struct request *req, void *m);
	/* The API's handler, given the decoded message. */
	void (*handle)(struct agent *a, struct request *req, void *m);
};

extern const struct api_row api_table[];
extern const int api_table_count;
const struct api_row *api_row_find(int16_t key);

/* The server's handler: parse the header, check the version, decode the
 * body, dispatch. */
void api_handle(struct request *req);

/* What the API layer does at the agent's events (agent.h): handle
 * requests, re-check waiting fetches after a commit, answer them at the
 * end of a drain. main.c gives these to agent_start. */
extern const struct agent_hooks api_agent_hooks;

#endif

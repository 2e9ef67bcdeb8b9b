/* handlers.h — one handler per API key (api.c's table) and the helpers
 * they share. Private to src/api. */
#ifndef SLUICE_API_HANDLERS_H
#define SLUICE_API_HANDLERS_H

#include <stdint.h>

#include "net/server.h"

struct agent;

void handle_produce(struct agent *a, struct request *req);
void handle_fetch(struct agent *a, struct request *req);
void handle_list_offsets(struct agent *a, struct request *req);
void handle_metadata(struct agent *a, struct request *req);
void handle_api_versions(struct agent *a, struct request *req);
void handle_create_topics(struct agent *a, struct request *req);
void handle_delete_topics(struct agent *a, struct request *req);
void handle_init_producer_id(struct agent *a, struct request *req);
void handle_describe_configs(struct agent *a, struct request *req);
void handle_create_partitions(struct agent *a, struct request *req);
void handle_delete_records(struct agent *a, struct request *req);
void handle_incremental_alter_configs(struct agent *a, struct request *req);
void handle_describe_cluster(struct agent *a, struct request *req);
/* groups.c */
void handle_find_coordinator(struct agent *a, struct request *req);
void handle_join_group(struct agent *a, struct request *req);
void handle_sync_group(struct agent *a, struct request *req);
void handle_heartbeat(struct agent *a, struct request *req);
void handle_leave_group(struct agent *a, struct request *req);
void handle_offset_commit(struct agent *a, struct request *req);
void handle_offset_fetch(struct agent *a, struct request *req);
void handle_list_groups(struct agent *a, struct request *req);
void handle_describe_groups(struct agent *a, struct request *req);
void handle_delete_groups(struct agent *a, struct request *req);
void handle_offset_delete(struct agent *a, struct request *req);

void api_versions_respond(struct request *req, int16_t version, int16_t error);

/* Allocate n zeroed elements from the request's arena; NULL on limit. */
#define REQ_ARRAY(req, n, ptr) ((ptr) = arena_alloc(&(req)->arena, sizeof *(ptr) * (size_t)((n) > 0 ? (n) : 0)))

/* A malformed body: Kafka closes the connection. */
void api_malformed(struct request *req, const char *api);

/* Copy a C string into the request's arena as a kstr (for responses
 * encoded after the source may have changed). */
kstr api_kstr_dup(struct request *req, const char *s);
/* A NUL-terminated copy in the request's arena; NULL for a null string or
 * when the arena is full. */
char *api_cstr_dup(struct request *req, kstr s);

#endif

/* handlers.h — one handler per API key (api.c's table) and the helpers
 * they share. Private to src/api.
 *
 * api_handle has decoded the body before a handler runs: `m` is the
 * request's message in the request arena, valid until the request is
 * answered (request_respond, request_no_reply or request_fail_close). A
 * body that does not decode never reaches its handler. */
#ifndef SLUICE_API_HANDLERS_H
#define SLUICE_API_HANDLERS_H

#include <stdint.h>

#include "auth/authorizer.h"
#include "kmsg.h"
#include "net/server.h"

struct agent;

void handle_produce(struct agent *a, struct request *req, const struct kmsg_produce_req *m);
void handle_fetch(struct agent *a, struct request *req, const struct kmsg_fetch_req *m);
void handle_list_offsets(struct agent *a, struct request *req, const struct kmsg_list_offsets_req *m);
void handle_metadata(struct agent *a, struct request *req, const struct kmsg_metadata_req *m);
void handle_api_versions(struct agent *a, struct request *req, const struct kmsg_api_versions_req *m);
void handle_create_topics(struct agent *a, struct request *req, const struct kmsg_create_topics_req *m);
void handle_delete_topics(struct agent *a, struct request *req, const struct kmsg_delete_topics_req *m);
void handle_init_producer_id(struct agent *a, struct request *req, const struct kmsg_init_producer_id_req *m);
void handle_describe_configs(struct agent *a, struct request *req, const struct kmsg_describe_configs_req *m);
void handle_create_partitions(struct agent *a, struct request *req, const struct kmsg_create_partitions_req *m);
void handle_delete_records(struct agent *a, struct request *req, const struct kmsg_delete_records_req *m);
void handle_incremental_alter_configs(struct agent *a, struct request *req, const struct kmsg_incremental_alter_configs_req *m);
void handle_alter_configs(struct agent *a, struct request *req, const struct kmsg_alter_configs_req *m);
void handle_describe_cluster(struct agent *a, struct request *req, const struct kmsg_describe_cluster_req *m);
/* describe_producers.c */
void handle_describe_producers(struct agent *a, struct request *req,
			       const struct kmsg_describe_producers_req *m);
/* groups.c */
void handle_find_coordinator(struct agent *a, struct request *req, const struct kmsg_find_coordinator_req *m);
void handle_join_group(struct agent *a, struct request *req, const struct kmsg_join_group_req *m);
void handle_sync_group(struct agent *a, struct request *req, const struct kmsg_sync_group_req *m);
void handle_heartbeat(struct agent *a, struct request *req, const struct kmsg_heartbeat_req *m);
void handle_leave_group(struct agent *a, struct request *req, const struct kmsg_leave_group_req *m);
void handle_offset_commit(struct agent *a, struct request *req, const struct kmsg_offset_commit_req *m);
void handle_offset_fetch(struct agent *a, struct request *req, const struct kmsg_offset_fetch_req *m);
void handle_list_groups(struct agent *a, struct request *req, const struct kmsg_list_groups_req *m);
void handle_describe_groups(struct agent *a, struct request *req, const struct kmsg_describe_groups_req *m);
void handle_delete_groups(struct agent *a, struct request *req, const struct kmsg_delete_groups_req *m);
void handle_offset_delete(struct agent *a, struct request *req, const struct kmsg_offset_delete_req *m);
/* txn.c */
void handle_add_partitions_to_txn(struct agent *a, struct request *req,
				  const struct kmsg_add_partitions_to_txn_req *m);
void handle_add_offsets_to_txn(struct agent *a, struct request *req,
			       const struct kmsg_add_offsets_to_txn_req *m);
void handle_end_txn(struct agent *a, struct request *req, const struct kmsg_end_txn_req *m);
/* txn_admin.c */
void handle_describe_transactions(struct agent *a, struct request *req,
				  const struct kmsg_describe_transactions_req *m);
void handle_list_transactions(struct agent *a, struct request *req,
			      const struct kmsg_list_transactions_req *m);
/* groups.c: TxnOffsetCommit, the group coordinator's side */
void handle_txn_offset_commit(struct agent *a, struct request *req,
			      const struct kmsg_txn_offset_commit_req *m);
/* InitProducerId with a transactional id, its ACL checked: false when no
 * coordinator runs here (the caller answers COORDINATOR_NOT_AVAILABLE). */
bool api_txn_init_producer_id(struct agent *a, struct request *req,
			      const struct kmsg_init_producer_id_req *m);
/* sasl.c */
void handle_sasl_handshake(struct agent *a, struct request *req, const struct kmsg_sasl_handshake_req *m);
void handle_sasl_authenticate(struct agent *a, struct request *req, const struct kmsg_sasl_authenticate_req *m);
/* users.c */
void handle_describe_user_scram_credentials(struct agent *a, struct request *req,
					    const struct kmsg_describe_user_scram_credentials_req *m);
void handle_alter_user_scram_credentials(struct agent *a, struct request *req,
					 const struct kmsg_alter_user_scram_credentials_req *m);
/* acls.c */
void handle_create_acls(struct agent *a, struct request *req, const struct kmsg_create_acls_req *m);
void handle_describe_acls(struct agent *a, struct request *req, const struct kmsg_describe_acls_req *m);
void handle_delete_acls(struct agent *a, struct request *req, const struct kmsg_delete_acls_req *m);
/* May the request's principal, from its host, do op on the resource
 * (auth/authorizer.h, with the agent's ACLs)? True when the authorizer is
 * off. Each handler's check is one call of these. _kstr: a wire name (one
 * holding a NUL is refused). */
bool api_allowed(struct agent *a, struct request *req, int8_t type, const char *name, int8_t op);
bool api_allowed_kstr(struct agent *a, struct request *req, int8_t type, kstr name, int8_t op);
bool api_allowed_cluster(struct agent *a, struct request *req, int8_t op);
#define api_allowed_topic(a, req, name, op) api_allowed_kstr(a, req, ACL_RESOURCE_TOPIC, name, op)
#define api_allowed_group(a, req, name, op) api_allowed_kstr(a, req, ACL_RESOURCE_GROUP, name, op)
/* The authorized_operations field for the resource: authz_operations for
 * the request's principal (0 for a name holding a NUL). */
int32_t api_authorized_operations(struct agent *a, struct request *req, int8_t type, kstr name);

/* Before api_handle parses a header: on a SASL listener whose client has
 * not authenticated, a raw token frame (after SaslHandshake v0) is taken
 * here, and any API the exchange's state does not allow closes the
 * connection. True when req was taken (the caller stops). */
bool api_sasl_gate(struct agent *a, struct request *req);
/* ApiVersions of a client not authenticated yet: false when it is not
 * the first (the connection must close, as Kafka closes it). */
bool api_sasl_api_versions(struct request *req);

void api_versions_respond(struct request *req, int16_t version, int16_t error);

/* fetch.c: a commit made data visible: re-check waiting fetches. */
void fetch_wake(struct agent *a);
/* fetch.c: answer every waiting fetch now (the drain is done). */
void fetch_shutdown(struct agent *a);
/* fetch.c: free the agent's fetch sessions (agent_free). */
void fetch_sessions_drop(struct agent *a);

/* Allocate n zeroed elements from the request's arena; NULL on limit. */
#define REQ_ARRAY(req, n, ptr) ((ptr) = arena_alloc(&(req)->arena, sizeof *(ptr) * (size_t)((n) > 0 ? (n) : 0)))

/* Copy a C string into the request's arena as a kstr (for responses
 * encoded after the source may have changed). */
kstr api_kstr_dup(struct request *req, const char *s);
/* A NUL-terminated copy in the request's arena; NULL for a null string or
 * when the arena is full. */
char *api_cstr_dup(struct request *req, kstr s);

#endif

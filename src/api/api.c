/* api.c — the dispatch table and the request header step.
 *
 * One row per API key: versions, first flexible version and handler.
 * ApiVersions is answered from the same table, so what is advertised is
 * exactly what is dispatched. The version ranges come from the generated
 * codec (kmsg.h), which is generated from src/proto/defs.
 *
 * Requests are decoded here, once: api_handle parses the header, checks
 * the version, decodes the body with the row's generated decoder into the
 * request arena and calls the handler with the typed message; a body that
 * does not decode closes the connection (ApiVersions: INVALID_REQUEST).
 * Also the helpers every handler shares (handlers.h). */
#include "api/api.h"

#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/log.h"
#include "kmsg.h"
#include "metrics/metrics.h"
#include "proto/header.h"
#include "proto/kerr.h"

/* Each API's generated decoder and its typed handler, behind one shape
 * the table can hold: decode_<name> initialises and decodes the body into
 * the message api_handle allocated in the request arena; call_<name> hands
 * it to handle_<name> typed. */
#define API_ADAPTERS(name)                                                        \
	static int decode_##name(struct request *req, void *m)                     \
	{                                                                          \
		kmsg_##name##_req_init(m);                                         \
		return kmsg_##name##_req_decode(&req->body, req->api_version, m,   \
						&req->arena);                      \
	}                                                                          \
	static void call_##name(struct agent *a, struct request *req, void *m)     \
	{                                                                          \
		handle_##name(a, req, m);                                          \
	}
#define API_LIST(X)                                                       \
	X(PRODUCE, produce, Produce)                                      \
	X(FETCH, fetch, Fetch)                                            \
	X(LIST_OFFSETS, list_offsets, ListOffsets)                        \
	X(METADATA, metadata, Metadata)                                   \
	X(API_VERSIONS, api_versions, ApiVersions)                        \
	X(CREATE_TOPICS, create_topics, CreateTopics)                     \
	X(DELETE_TOPICS, delete_topics, DeleteTopics)                     \
	X(INIT_PRODUCER_ID, init_producer_id, InitProducerId)             \
	X(DESCRIBE_CONFIGS, describe_configs, DescribeConfigs)            \
	X(ALTER_CONFIGS, alter_configs, AlterConfigs)                     \
	X(CREATE_PARTITIONS, create_partitions, CreatePartitions)         \
	X(DELETE_RECORDS, delete_records, DeleteRecords)                  \
	X(INCREMENTAL_ALTER_CONFIGS, incremental_alter_configs,           \
	  IncrementalAlterConfigs)                                        \
	X(DESCRIBE_CLUSTER, describe_cluster, DescribeCluster)            \
	X(OFFSET_COMMIT, offset_commit, OffsetCommit)                     \
	X(OFFSET_FETCH, offset_fetch, OffsetFetch)                        \
	X(FIND_COORDINATOR, find_coordinator, FindCoordinator)            \
	X(JOIN_GROUP, join_group, JoinGroup)                              \
	X(HEARTBEAT, heartbeat, Heartbeat)                                \
	X(LEAVE_GROUP, leave_group, LeaveGroup)                           \
	X(SYNC_GROUP, sync_group, SyncGroup)                              \
	X(DESCRIBE_GROUPS, describe_groups, DescribeGroups)               \
	X(LIST_GROUPS, list_groups, ListGroups)                           \
	X(DELETE_GROUPS, delete_groups, DeleteGroups)                     \
	X(OFFSET_DELETE, offset_delete, OffsetDelete)                     \
	X(SASL_HANDSHAKE, sasl_handshake, SaslHandshake)                  \
	X(SASL_AUTHENTICATE, sasl_authenticate, SaslAuthenticate)        \
	X(DESCRIBE_USER_SCRAM_CREDENTIALS, describe_user_scram_credentials, \
	  DescribeUserScramCredentials)                                   \
	X(ALTER_USER_SCRAM_CREDENTIALS, alter_user_scram_credentials,     \
	  AlterUserScramCredentials)                                      \
	X(DESCRIBE_ACLS, describe_acls, DescribeAcls)                     \
	X(CREATE_ACLS, create_acls, CreateAcls)                           \
	X(DELETE_ACLS, delete_acls, DeleteAcls)                           \
	X(DESCRIBE_PRODUCERS, describe_producers, DescribeProducers)         \
	X(ADD_PARTITIONS_TO_TXN, add_partitions_to_txn, AddPartitionsToTxn) \
	X(ADD_OFFSETS_TO_TXN, add_offsets_to_txn, AddOffsetsToTxn)        \
	X(END_TXN, end_txn, EndTxn)                                       \
	X(TXN_OFFSET_COMMIT, txn_offset_commit, TxnOffsetCommit)        \
	X(DESCRIBE_TRANSACTIONS, describe_transactions, DescribeTransactions) \
	X(LIST_TRANSACTIONS, list_transactions, ListTransactions)

#define X(NAME, name, Name) API_ADAPTERS(name)
API_LIST(X)
#undef X

#define X(NAME, name, Name)                                                       \
	{ KMSG_##NAME##_KEY, #Name, KMSG_##NAME##_MIN_VERSION,                     \
	  KMSG_##NAME##_MAX_VERSION, KMSG_##NAME##_FIRST_FLEXIBLE,                 \
	  sizeof(struct kmsg_##name##_req), decode_##name, call_##name },
const struct api_row api_table[] = { API_LIST(X) };
#undef X
const int api_table_count = (int)(sizeof api_table / sizeof api_table[0]);

const struct agent_hooks api_agent_hooks = {
	.handle = api_handle,
	.committed = fetch_wake,
	.drained = fetch_shutdown,
	.freeing = fetch_sessions_drop,
};

const struct api_row *api_row_find(int16_t key)
{
	for (int i = 0; i < api_table_count; i++)
		if (api_table[i].key == key)
			return &api_table[i];
	return NULL;
}

/* A body that does not decode: Kafka closes the connection. */
static void api_malformed(struct request *req, const char *api)
{
	log_warn("%s: malformed %s v%d request; closing", request_peer(req), api,
		 req->api_version);
	request_fail_close(req);
}

kstr api_kstr_dup(struct request *req, const char *s)
{
	size_t n = strlen(s);
	char *p = arena_alloc(&req->arena, n + 1);
	if (!p)
		return KSTR("");
	memcpy(p, s, n);
	return (kstr){ p, (int32_t)n };
}

char *api_cstr_dup(struct request *req, kstr s)
{
	if (s.len < 0)
		return NULL;
	char *p = arena_alloc(&req->arena, (size_t)s.len + 1);
	if (!p)
		return NULL;
	memcpy(p, s.ptr, (size_t)s.len);
	p[s.len] = 0;
	return p;
}

void handle_api_versions(struct agent *a, struct request *req,
			 const struct kmsg_api_versions_req *m)
{
	if (!api_sasl_api_versions(req)) {
		log_warn("%s: a second ApiVersions before SASL authentication; closing",
			 request_peer(req));
		request_fail_close(req);
		return;
	}
	api_versions_respond(req, req->api_version, KERR_NONE);
}

void api_versions_respond(struct request *req, int16_t version, int16_t error)
{
	struct kmsg_api_versions_resp r;
	kmsg_api_versions_resp_init(&r);
	r.error_code = error;
	r.api_keys = arena_alloc(&req->arena, sizeof *r.api_keys * (size_t)api_table_count);
	if (!r.api_keys) {
		request_fail_close(req);
		return;
	}
	/* An unsupported version is answered, as Kafka does, with only the
	 * versions of ApiVersions itself, so the client can retry. The
	 * transaction APIs only where a coordinator runs (agent/txn_coord.c:
	 * not on a shared store yet), so clients know not to try. */
	const struct agent *a = req->ctx;
	r.api_keys_count = 0;
	for (int i = 0; i < api_table_count; i++) {
		if (error == KERR_UNSUPPORTED_VERSION && api_table[i].key != KMSG_API_VERSIONS_KEY)
			continue;
		if (!a->txns && (api_table[i].key == KMSG_ADD_PARTITIONS_TO_TXN_KEY ||
				 api_table[i].key == KMSG_ADD_OFFSETS_TO_TXN_KEY ||
				 api_table[i].key == KMSG_END_TXN_KEY ||
				 api_table[i].key == KMSG_TXN_OFFSET_COMMIT_KEY ||
				 api_table[i].key == KMSG_DESCRIBE_TRANSACTIONS_KEY ||
				 api_table[i].key == KMSG_LIST_TRANSACTIONS_KEY))
			continue;
		struct kmsg_api_versions_resp_api_version *k = &r.api_keys[r.api_keys_count++];
		kmsg_api_versions_resp_api_version_init(k);
		k->api_key = api_table[i].key;
		k->min_version = api_table[i].min_version;
		k->max_version = api_table[i].max_version;
	}
	kmsg_api_versions_resp_encode(&req->resp, version, &r);
	request_respond(req);
}

void api_handle(struct request *req)
{
	struct agent *a = req->ctx;
	if (api_sasl_gate(a, req))
		return;
	if (req->frame_len < 8) {
		log_warn("%s: request of %zu bytes is too short for a header; closing",
			 request_peer(req), req->frame_len);
		request_fail_close(req);
		return;
	}
	req->api_key = (int16_t)be16_load(req->frame);
	req->api_version = (int16_t)be16_load(req->frame + 2);
	req->correlation_id = (int32_t)be32_load(req->frame + 4);
	const struct api_row *row = api_row_find(req->api_key);
	if (!row || req->api_version < row->min_version || req->api_version > row->max_version) {
		request_begin_response(req, 0);
		if (req->api_key == KMSG_API_VERSIONS_KEY) {
			/* Kafka answers an ApiVersions it cannot parse in the v0
			 * shape, so the client can pick a version it shares. */
			api_versions_respond(req, 0, KERR_UNSUPPORTED_VERSION);
			return;
		}
		log_warn("%s: unsupported api key %d version %d", request_peer(req),
			 req->api_key, req->api_version);
		/* No body shape exists for an unknown API; answer with the
		 * error code alone rather than dropping the connection. */
		kbuf_put_i16(&req->resp, KERR_UNSUPPORTED_VERSION);
		metrics_response_error(req->api_key, KERR_UNSUPPORTED_VERSION);
		request_respond(req);
		return;
	}
	struct proto_req_header h;
	if (proto_req_header_decode(&req->body, &h,
				    proto_req_header_version(req->api_key, req->api_version)) != 0) {
		log_warn("%s: malformed request header; closing", request_peer(req));
		request_fail_close(req);
		return;
	}
	req->client_id = h.client_id;
	int resp_header = proto_resp_header_version(req->api_key, req->api_version);
	request_begin_response(req, resp_header);
	log_debug("%s: %s v%d corr %d", request_peer(req), row->name, req->api_version,
		  req->correlation_id);
	void *m = arena_alloc(&req->arena, row->request_bytes);
	if (!m) {
		request_fail_close(req);
		return;
	}
	if (row->decode(req, m) != 0) {
		/* v3+ ApiVersions carries the client's software name and
		 * version; one that does not parse is still answered (Kafka
		 * answers INVALID_REQUEST) so the client learns our versions. */
		if (row->key == KMSG_API_VERSIONS_KEY)
			api_versions_respond(req, req->api_version, KERR_INVALID_REQUEST);
		else
			api_malformed(req, row->name);
		return;
	}
	row->handle(a, req, m);
}

/* config.h — the agent's configuration: command-line flags, their
 * environment twins and defaults, in one table. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/limits.h"

/* Kafka's security protocol names for a listener. */
enum listener_protocol {
	LISTENER_PLAINTEXT,
	LISTENER_SSL,
	LISTENER_SASL_PLAINTEXT,   /* SASL (net/sasl.h) in the clear */
	LISTENER_SASL_SSL,         /* SASL inside TLS */
};

static inline bool listener_is_tls(enum listener_protocol p)
{
	return p == LISTENER_SSL || p == LISTENER_SASL_SSL;
}

static inline bool listener_is_sasl(enum listener_protocol p)
{
	return p == LISTENER_SASL_PLAINTEXT || p == LISTENER_SASL_SSL;
}

/* One --listen entry and its --advertise entry (by name, else by
 * position). */
struct listener_config {
	/* Kafka's listener name, upper case: the scheme of its --listen entry
	 * (PLAINTEXT without one). Metadata answers a connection with every
	 * agent's endpoint of the same name. */
	char name[SL_LISTENER_NAME_BYTES_MAX + 1];
	enum listener_protocol protocol; /* the name's, in
					    --listener-security-protocol-map */
	char host[256];            /* an address or a hostname (resolved at start) */
	int port;
	char advertise_host[256];  /* what Metadata tells clients of this listener */
	int advertise_port;
};

/* Who must present a certificate on a TLS listener. */
enum tls_client_auth { TLS_CLIENT_AUTH_NONE, TLS_CLIENT_AUTH_REQUESTED, TLS_CLIENT_AUTH_REQUIRED };

struct config {
	struct listener_config listeners[SL_LISTENERS_MAX];
	size_t listener_count;
	char tls_cert[1024];       /* PEM: certificate chain; empty: none */
	char tls_key[1024];        /* PEM: its private key */
	char tls_ca[1024];         /* PEM: CAs client certificates must chain to */
	enum tls_client_auth tls_client_auth;
	int64_t tls_handshake_timeout_ms;
	int64_t sasl_login_timeout_ms;
	int64_t group_idle_ms; /* hidden (tests): SL_GROUP_LEASE_IDLE_MS */
	int64_t group_empty_forget_ms; /* hidden (tests): SL_GROUP_EMPTY_FORGET_MS */
	char data_dir[1024];
	char store_url[1100];
	char meta_url[1100];
	int64_t flush_interval_ms;
	int64_t flush_bytes;
	bool seal_when_idle;       /* seal when no object is being written (not s3) */
	int64_t idle_seal_age_us;  /* writer_config's: half the interval */
	int64_t idle_seal_hold_bytes; /* writer_config's: 16 KiB */
	int64_t cache_bytes;
	int64_t buffer_pretouch_bytes; /* frame pool blocks written at start */
	int64_t write_buffer_bytes;
	int64_t queued_request_bytes;
	bool auto_create_topics;
	bool authorizer_acl;            /* --authorizer acl (auth/authorizer.h) */
	bool allow_everyone_if_no_acl;
	char super_users[4096];         /* "User:a,User:b" as given */
	/* --sasl-mechanisms: what SASL listeners offer, in SaslHandshake's
	 * order (enum sasl_mech values, net/sasl.h) */
	uint8_t sasl_mechanisms[3];
	int sasl_mechanism_count;
	int32_t default_partitions;
	int log_level;
	int32_t node_id;
	char zone[SL_ZONE_BYTES_MAX + 1]; /* "" when none (cluster/placement.h) */
	char cluster_id[64];
	int64_t group_initial_rebalance_delay_ms; /* consumer groups */
	int64_t offsets_retention_minutes;
	int64_t retention_check_interval_ms; /* the retention sweep */
	int64_t compaction_check_interval_ms; /* compacted topics' cleaner */
	int64_t compaction_pass_bytes; /* hidden (tests): SLUICE_COMPACTION_PASS_BYTES,
					  a cleaning chunk's input (SL_COMPACT_PASS_BYTES) */
	int64_t compaction_pause_chunks; /* hidden (tests): SLUICE_COMPACTION_PAUSE_CHUNKS,
					    a pass pauses after that many chunks
					    a check, as under backpressure (0: never) */
	int32_t transaction_max_timeout_ms;  /* transaction.max.timeout.ms */
	int64_t gc_interval_ms;              /* dead-object collection (0: off) */
	int64_t gc_grace_ms;
	char metrics_host[256];              /* --metrics-listen; "" when off */
	int metrics_port;
	int64_t merge_interval_ms;           /* the merge job (0: off) */
	int64_t merge_min_age_ms;
	int64_t merge_target_bytes;
	int64_t merge_swap_rows;             /* batch rows per swap transaction */
	int64_t maintenance_io_bytes_per_sec; /* the passes' puts (0: no bound) */
	int64_t file_page_cache_bytes; /* the file store's page-cache window
					  (objstore_file_set_page_cache) */
};

/* The protocol's Kafka name (PLAINTEXT, SSL, ...). */
const char *listener_protocol_name(enum listener_protocol p);

/* Fill defaults, then apply SLUICE_* environment variables, then argv
 * (flags of `sluice serve`). Returns 0, 1 if --help was printed, or -1
 * after printing one line about a bad flag to stderr. */
int config_parse_serve(struct config *c, int argc, char **argv);
void config_print_serve_help(FILE *out);

#endif

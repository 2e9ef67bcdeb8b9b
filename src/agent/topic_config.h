/* topic_config.h — the topic configs Sluice knows, with Kafka's defaults
 * and value checks, for CreateTopics, DescribeConfigs and
 * IncrementalAlterConfigs. */
#ifndef SLUICE_TOPIC_CONFIG_H
#define SLUICE_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DescribeConfigs config_type values. */
enum topic_config_type {
	TOPIC_CONFIG_BOOLEAN = 1,
	TOPIC_CONFIG_STRING = 2,
	TOPIC_CONFIG_INT = 3,
	TOPIC_CONFIG_LONG = 5,
	TOPIC_CONFIG_DOUBLE = 6,
	TOPIC_CONFIG_LIST = 7,
};

struct topic_config_def {
	const char *name;
	const char *default_value;
	enum topic_config_type type;
	int64_t min, max;            /* for INT, LONG and DOUBLE */
	const char *const *choices;  /* for enumerated strings; NULL-terminated */
	const char *doc;
};

extern const struct topic_config_def topic_config_defs[];
extern const int topic_config_def_count;

const struct topic_config_def *topic_config_find(const char *name);
/* True when value is acceptable for the config. */
bool topic_config_value_valid(const struct topic_config_def *d, const char *value);
/* As topic_config_value_valid; when not valid, msg (cap bytes) says why
 * as Kafka's ConfigException does for numbers ("Invalid value -1 for
 * configuration segment.ms: Value must be at least 1"). */
bool topic_config_value_check(const struct topic_config_def *d, const char *value, char *msg,
			      size_t cap);

/* A config's value as a topic would have it: its own setting, or NULL
 * for the default. */
typedef const char *(*topic_config_lookup_fn)(void *arg, const char *name);
/* The checks Kafka makes across configs (LogConfig.validateValues):
 * min.compaction.lag.ms may not exceed max.compaction.lag.ms. Returns
 * true, or false with msg set (INVALID_CONFIG). */
bool topic_config_conflicts_check(topic_config_lookup_fn lookup, void *arg, char *msg,
				  size_t cap);

/* Whether a topic's cleanup.policy (its own or the default) includes
 * "compact". */
bool topic_config_compacts(topic_config_lookup_fn lookup, void *arg);
/* The cleaner's configs of a topic (compact/compact.h) from its own
 * values or Kafka's defaults; the offset map's bound is
 * SL_COMPACT_MAP_BYTES, producers expire after SL_PRODUCER_EXPIRATION_MS. */
struct compact_config;
void topic_config_compact(topic_config_lookup_fn lookup, void *arg, struct compact_config *out);

#endif

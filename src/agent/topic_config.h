/* topic_config.h — the topic configs Sluice knows, with Kafka's defaults
 * and value checks, for CreateTopics, DescribeConfigs and
 * IncrementalAlterConfigs. */
#ifndef SLUICE_TOPIC_CONFIG_H
#define SLUICE_TOPIC_CONFIG_H

#include <stdbool.h>
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
	int64_t min, max;            /* for INT and LONG */
	const char *const *choices;  /* for enumerated strings; NULL-terminated */
	const char *doc;
};

extern const struct topic_config_def topic_config_defs[];
extern const int topic_config_def_count;

const struct topic_config_def *topic_config_find(const char *name);
/* True when value is acceptable for the config. */
bool topic_config_value_valid(const struct topic_config_def *d, const char *value);

#endif

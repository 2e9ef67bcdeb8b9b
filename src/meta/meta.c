/* meta.c — opens a metadata store from its URL ("sqlite:PATH"; the
 * postgres backend is not built yet) and frees the topic structs the
 * backends return. The sqlite backend lives in sqlite.c. */
#include "meta/meta.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"

/* sqlite.c; not in meta.h because callers open stores by URL only. */
int meta_sqlite_open(const char *path, struct meta **out);

int meta_open(const char *url, struct meta **out)
{
	*out = NULL;
	if (!url || !*url) {
		log_error("metadata store: empty URL (expected sqlite:PATH)");
		return SL_EINVAL;
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		const char *path = url + 7;
		/* "sqlite:///abs" and "sqlite://./rel" keep what follows "//". */
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		if (!*path) {
			log_error("metadata store: '%s' names no file (expected sqlite:PATH)", url);
			return SL_EINVAL;
		}
		return meta_sqlite_open(path, out);
	}
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
		log_error("metadata store: '%s': postgres metadata store not built yet "
			  "(use sqlite:PATH)", url);
		return SL_EINVAL;
	}
	log_error("metadata store: unknown URL '%s' (expected sqlite:PATH)", url);
	return SL_EINVAL;
}

int meta_claim_agent(struct meta *m)
{
	return m->m->claim ? m->m->claim(m) : 0;
}

void meta_topic_free(struct meta_topic *t)
{
	if (!t)
		return;
	free(t->configs);
	t->configs = NULL;
	t->config_count = 0;
}

void meta_topics_free(struct meta_topic *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		meta_topic_free(&t[i]);
	free(t);
}

void meta_committed_offsets_free(struct meta_committed_offset *o, size_t n)
{
	for (size_t i = 0; o && i < n; i++)
		free(o[i].metadata);
	free(o);
}

void meta_group_summaries_free(struct meta_group_summary *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++)
		free(g[i].group_id);
	free(g);
}

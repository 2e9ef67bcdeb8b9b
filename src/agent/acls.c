/* acls.c — the agent's copy of the ACLs (acls.h): the authorizer's
 * configuration from the flags, the ACLs from the metadata store, and
 * the poll that keeps them current. The poll reads one row (the ACLs'
 * version) when nothing changed and every ACL when it moved; the new set
 * replaces the old one on the loop, between requests. */
#include "agent/acls.h"

#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "base/limits.h"
#include "base/log.h"

struct acl_cache {
	struct agent *a;
	struct authorizer z;          /* acls and super users point below */
	char *super_buf;              /* --super-users, split in place */
	const char **supers;
	struct acl_binding *acls;
	size_t count;
	int64_t version;              /* of acls; -1 before the first read */
	uv_timer_t timer;
	uv_work_t work;
	bool running, stopping, again;
	/* The poll's result, for its done. */
	int rc;
	int64_t got_version;
	struct acl_binding *got;
	size_t got_count;
};

static void install(struct acl_cache *c, int64_t version, struct acl_binding *acls, size_t n)
{
	acl_bindings_free(c->acls, c->count);
	c->acls = acls;
	c->count = n;
	c->version = version;
	c->z.acls = acls;
	c->z.acl_count = n;
}

static void poll_work(uv_work_t *w)
{
	struct acl_cache *c = w->data;
	c->rc = meta_acl_read(c->a->meta, c->version, &c->got_version, &c->got, &c->got_count);
}

static void poll_start(struct acl_cache *c);

static void poll_done(uv_work_t *w, int status)
{
	struct acl_cache *c = w->data;
	c->running = false;
	if (status == 0 && c->rc == 0 && c->got_version != c->version && !c->stopping) {
		install(c, c->got_version, c->got, c->got_count);
		log_debug("acls: version %lld, %zu ACLs", (long long)c->version, c->count);
	} else {
		acl_bindings_free(c->got, c->got_count);
		if (c->rc && c->rc != SL_EUNSUPPORTED)
			log_warn("acls: reading the ACLs failed (%s); keeping the %zu known",
				 sl_strerror(c->rc), c->count);
	}
	c->got = NULL;
	c->got_count = 0;
	if (c->again && !c->stopping) {
		c->again = false;
		poll_start(c);
	}
}

static void poll_start(struct acl_cache *c)
{
	if (c->stopping)
		return;
	if (c->running) {
		c->again = true; /* the running read may predate the change */
		return;
	}
	c->work.data = c;
	if (uv_queue_work(c->a->loop, &c->work, poll_work, poll_done) == 0)
		c->running = true;
}

static void on_timer(uv_timer_t *t)
{
	poll_start(t->data);
}

void acls_poll_now(struct agent *a)
{
	if (a->acls && a->acls->z.enabled)
		poll_start(a->acls);
}

/* "User:a,User:b": split in place; empty entries skipped. */
static int supers_parse(struct acl_cache *c, const char *s)
{
	c->super_buf = strdup(s);
	size_t n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	c->supers = calloc(n, sizeof *c->supers);
	if (!c->super_buf || !c->supers)
		return SL_ENOMEM;
	size_t count = 0;
	for (char *save = NULL, *tok = strtok_r(c->super_buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (!strchr(tok, ':')) {
			log_error("--super-users: %s is not a principal (User:NAME)", tok);
			return SL_EINVAL;
		}
		c->supers[count++] = tok;
	}
	c->z.super_users = c->supers;
	c->z.super_user_count = count;
	return 0;
}

int acls_start(struct agent *a)
{
	struct acl_cache *c = calloc(1, sizeof *c);
	if (!c)
		return SL_ENOMEM;
	a->acls = c;
	c->a = a;
	c->version = -1;
	c->z.enabled = a->cfg.authorizer_acl;
	c->z.allow_if_no_acl = a->cfg.allow_everyone_if_no_acl;
	int rc = supers_parse(c, a->cfg.super_users);
	if (rc)
		return rc;
	uv_timer_init(a->loop, &c->timer);
	c->timer.data = c;
	if (!c->z.enabled)
		return 0; /* nothing to check: no poll (the ACL APIs read the store) */
	struct acl_binding *acls;
	size_t n;
	int64_t version;
	rc = meta_acl_read(a->meta, -1, &version, &acls, &n);
	if (rc) {
		log_error("acls: cannot read the ACLs: %s", sl_strerror(rc));
		return rc;
	}
	install(c, version, acls, n);
	log_info("authorizer: acl, %zu ACLs, %zu super users%s", n, c->z.super_user_count,
		 c->z.allow_if_no_acl ? ", everyone allowed where no ACL is found" : "");
	uv_timer_start(&c->timer, on_timer, SL_ACL_POLL_INTERVAL_MS, SL_ACL_POLL_INTERVAL_MS);
	return 0;
}

void acls_stop(struct agent *a)
{
	struct acl_cache *c = a->acls;
	if (!c || c->stopping)
		return;
	c->stopping = true;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, NULL);
}

void acls_free(struct agent *a)
{
	struct acl_cache *c = a->acls;
	if (!c)
		return;
	acl_bindings_free(c->acls, c->count);
	free(c->supers);
	free(c->super_buf);
	free(c);
	a->acls = NULL;
}

const struct authorizer *agent_authorizer(const struct agent *a)
{
	static const struct authorizer off = { .enabled = false };
	return a->acls ? &a->acls->z : &off;
}

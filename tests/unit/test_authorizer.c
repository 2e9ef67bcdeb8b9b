/* test_authorizer.c — the authorizer's decisions as pure logic
 * (auth/authorizer.c), against what Kafka 3.9's AclAuthorizer answers:
 * the operations' implications, DENY over ALLOW, LITERAL, PREFIXED and
 * the "*" resource, User:* and host *, super users, the no-ACL default,
 * authorizeByResourceType, authorizedOperations, filters (ANY, MATCH,
 * exact) and validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/authorizer.h"

#define T ACL_RESOURCE_TOPIC
#define G ACL_RESOURCE_GROUP
#define LIT ACL_PATTERN_LITERAL
#define PRE ACL_PATTERN_PREFIXED
#define ALLOW ACL_PERM_ALLOW
#define DENY ACL_PERM_DENY

static struct acl_binding acl(int8_t type, const char *name, int8_t pattern, const char *principal,
			      const char *host, int8_t op, int8_t perm)
{
	return (struct acl_binding){ type, pattern, op, perm, (char *)name, (char *)principal,
				     (char *)host };
}

static struct authorizer authz(const struct acl_binding *acls, size_t n)
{
	return (struct authorizer){ .enabled = true, .acls = acls, .acl_count = n };
}

static bool can(const struct authorizer *z, const char *who, int8_t type, const char *name, int8_t op)
{
	return authz_allowed(z, who, "10.0.0.1", type, name, op);
}

static void implications(void **state)
{
	(void)state;
	struct acl_binding a[] = {
		acl(T, "r", LIT, "User:a", "*", ACL_OP_READ, ALLOW),
		acl(T, "w", LIT, "User:a", "*", ACL_OP_WRITE, ALLOW),
		acl(T, "d", LIT, "User:a", "*", ACL_OP_DELETE, ALLOW),
		acl(T, "al", LIT, "User:a", "*", ACL_OP_ALTER, ALLOW),
		acl(T, "c", LIT, "User:a", "*", ACL_OP_CREATE, ALLOW),
		acl(T, "ac", LIT, "User:a", "*", ACL_OP_ALTER_CONFIGS, ALLOW),
		acl(T, "all", LIT, "User:a", "*", ACL_OP_ALL, ALLOW),
	};
	struct authorizer z = authz(a, sizeof a / sizeof a[0]);
	assert_true(can(&z, "User:a", T, "r", ACL_OP_READ));
	assert_true(can(&z, "User:a", T, "r", ACL_OP_DESCRIBE));
	assert_false(can(&z, "User:a", T, "r", ACL_OP_WRITE));
	assert_true(can(&z, "User:a", T, "w", ACL_OP_DESCRIBE));
	assert_false(can(&z, "User:a", T, "w", ACL_OP_READ));
	assert_true(can(&z, "User:a", T, "d", ACL_OP_DESCRIBE));
	assert_true(can(&z, "User:a", T, "al", ACL_OP_DESCRIBE));
	/* CREATE implies nothing. */
	assert_false(can(&z, "User:a", T, "c", ACL_OP_DESCRIBE));
	assert_true(can(&z, "User:a", T, "ac", ACL_OP_DESCRIBE_CONFIGS));
	assert_false(can(&z, "User:a", T, "ac", ACL_OP_DESCRIBE));
	assert_false(can(&z, "User:a", T, "ac", ACL_OP_ALTER));
	assert_true(can(&z, "User:a", T, "all", ACL_OP_IDEMPOTENT_WRITE));
	assert_true(can(&z, "User:a", T, "all", ACL_OP_DESCRIBE_CONFIGS));
	/* Another principal, another type. */
	assert_false(can(&z, "User:b", T, "r", ACL_OP_READ));
	assert_false(can(&z, "User:a", G, "r", ACL_OP_READ));
}

static void deny_beats_allow(void **state)
{
	(void)state;
	struct acl_binding a[] = {
		acl(T, "t", LIT, "User:*", "*", ACL_OP_ALL, ALLOW),
		acl(T, "t", LIT, "User:bad", "*", ACL_OP_READ, DENY),
		acl(T, "u", PRE, "User:a", "*", ACL_OP_READ, ALLOW),
		acl(T, "*", LIT, "User:a", "*", ACL_OP_WRITE, DENY),
		acl(T, "x", LIT, "User:a", "*", ACL_OP_ALL, DENY),
	};
	struct authorizer z = authz(a, sizeof a / sizeof a[0]);
	assert_true(can(&z, "User:good", T, "t", ACL_OP_READ));
	assert_false(can(&z, "User:bad", T, "t", ACL_OP_READ));
	/* A DENY of READ does not deny what READ would imply. */
	assert_true(can(&z, "User:bad", T, "t", ACL_OP_DESCRIBE));
	assert_true(can(&z, "User:bad", T, "t", ACL_OP_WRITE));
	/* The DENY on "*" covers every topic for User:a. */
	assert_false(can(&z, "User:a", T, "t", ACL_OP_WRITE));
	assert_true(can(&z, "User:a", T, "t", ACL_OP_READ));
	assert_false(can(&z, "User:a", T, "x", ACL_OP_READ));
	assert_false(can(&z, "User:a", T, "x", ACL_OP_DESCRIBE));
}

static void patterns_and_hosts(void **state)
{
	(void)state;
	struct acl_binding a[] = {
		acl(T, "orders-", PRE, "User:a", "*", ACL_OP_READ, ALLOW),
		acl(T, "exact", LIT, "User:a", "10.0.0.1", ACL_OP_READ, ALLOW),
		acl(T, "other-host", LIT, "User:a", "10.0.0.2", ACL_OP_READ, ALLOW),
		acl(G, "*", LIT, "User:*", "*", ACL_OP_READ, ALLOW),
	};
	struct authorizer z = authz(a, sizeof a / sizeof a[0]);
	assert_true(can(&z, "User:a", T, "orders-eu", ACL_OP_READ));
	assert_true(can(&z, "User:a", T, "orders-", ACL_OP_READ));
	assert_false(can(&z, "User:a", T, "orders", ACL_OP_READ));
	assert_true(can(&z, "User:a", T, "exact", ACL_OP_READ));
	/* LITERAL is not a prefix. */
	assert_false(can(&z, "User:a", T, "exactly", ACL_OP_READ));
	assert_false(can(&z, "User:a", T, "other-host", ACL_OP_READ));
	assert_true(authz_allowed(&z, "User:a", "10.0.0.2", T, "other-host", ACL_OP_READ));
	assert_true(can(&z, "User:anyone", G, "g1", ACL_OP_READ));
	assert_true(can(&z, "User:ANONYMOUS", G, "g1", ACL_OP_DESCRIBE));
	/* "*" as a PREFIXED name is not a wildcard... and a literal "*" name
	 * asked about is just a name covered by the wildcard. */
	assert_true(can(&z, "User:x", G, "*", ACL_OP_READ));
}

static void super_users_and_default(void **state)
{
	(void)state;
	struct acl_binding a[] = {
		acl(T, "t", LIT, "User:admin", "*", ACL_OP_ALL, DENY),
		acl(T, "t", LIT, "User:a", "*", ACL_OP_READ, ALLOW),
	};
	const char *supers[] = { "User:admin", "User:ops" };
	struct authorizer z = authz(a, 2);
	z.super_users = supers;
	z.super_user_count = 2;
	/* A super user may do anything, a DENY notwithstanding. */
	assert_true(can(&z, "User:admin", T, "t", ACL_OP_DELETE));
	assert_true(can(&z, "User:ops", ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME, ACL_OP_ALTER));
	assert_false(can(&z, "User:opsx", ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME, ACL_OP_ALTER));
	/* No ACL on a resource: refused unless allow_if_no_acl. */
	assert_false(can(&z, "User:b", T, "free", ACL_OP_READ));
	z.allow_if_no_acl = true;
	assert_true(can(&z, "User:b", T, "free", ACL_OP_READ));
	/* ...but an ACL on it for someone else refuses the rest. */
	assert_false(can(&z, "User:b", T, "t", ACL_OP_READ));
	/* Off: everything is allowed. */
	z.enabled = false;
	z.allow_if_no_acl = false;
	assert_true(can(&z, "User:b", T, "t", ACL_OP_DELETE));
}

static void by_resource_type(void **state)
{
	(void)state;
	struct acl_binding a[] = {
		acl(T, "w1", LIT, "User:a", "*", ACL_OP_WRITE, ALLOW),
		acl(T, "p-", PRE, "User:b", "*", ACL_OP_WRITE, ALLOW),
		acl(T, "p", PRE, "User:b", "*", ACL_OP_WRITE, DENY),
		acl(T, "c1", LIT, "User:c", "*", ACL_OP_WRITE, ALLOW),
		acl(T, "*", LIT, "User:c", "*", ACL_OP_WRITE, DENY),
		acl(T, "r1", LIT, "User:d", "*", ACL_OP_READ, ALLOW),
	};
	struct authorizer z = authz(a, sizeof a / sizeof a[0]);
	const char *h = "10.0.0.1";
	assert_true(authz_allowed_any(&z, "User:a", h, T, ACL_OP_WRITE));
	/* b's only ALLOW lies under a shorter DENY prefix. */
	assert_false(authz_allowed_any(&z, "User:b", h, T, ACL_OP_WRITE));
	assert_false(authz_allowed_any(&z, "User:c", h, T, ACL_OP_WRITE));
	assert_false(authz_allowed_any(&z, "User:d", h, T, ACL_OP_WRITE));
	assert_false(authz_allowed_any(&z, "User:e", h, T, ACL_OP_WRITE));
}

static void filters(void **state)
{
	(void)state;
	struct acl_binding lit = acl(T, "orders", LIT, "User:a", "*", ACL_OP_READ, ALLOW);
	struct acl_binding pre = acl(T, "ord", PRE, "User:a", "*", ACL_OP_READ, ALLOW);
	struct acl_binding star = acl(T, "*", LIT, "User:b", "*", ACL_OP_WRITE, DENY);
	struct acl_filter any = { ACL_RESOURCE_ANY, ACL_PATTERN_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL,
				  NULL, NULL };
	assert_true(acl_filter_matches(&any, &lit));
	assert_true(acl_filter_matches(&any, &pre));
	struct acl_filter f = any;
	f.resource_name = "orders";
	assert_true(acl_filter_matches(&f, &lit));
	assert_false(acl_filter_matches(&f, &pre)); /* ANY: the exact name */
	f.pattern_type = ACL_PATTERN_MATCH;
	assert_true(acl_filter_matches(&f, &lit));
	assert_true(acl_filter_matches(&f, &pre));
	assert_true(acl_filter_matches(&f, &star));
	f.pattern_type = ACL_PATTERN_PREFIXED;
	assert_false(acl_filter_matches(&f, &pre));
	f.resource_name = "ord";
	assert_true(acl_filter_matches(&f, &pre));
	f = any;
	f.principal = "User:b";
	assert_true(acl_filter_matches(&f, &star));
	assert_false(acl_filter_matches(&f, &lit));
	f = any;
	f.permission = ACL_PERM_DENY;
	f.operation = ACL_OP_WRITE;
	assert_true(acl_filter_matches(&f, &star));
	f.operation = ACL_OP_READ;
	assert_false(acl_filter_matches(&f, &star));
	f = any;
	f.resource_type = ACL_RESOURCE_GROUP;
	assert_false(acl_filter_matches(&f, &lit));
	f.host = "10.0.0.1";
	f.resource_type = ACL_RESOURCE_ANY;
	assert_false(acl_filter_matches(&f, &lit));
}

static void validation(void **state)
{
	(void)state;
	struct acl_binding b = acl(T, "t", LIT, "User:a", "*", ACL_OP_READ, ALLOW);
	assert_null(acl_binding_invalid(&b));
	b.pattern_type = ACL_PATTERN_MATCH;
	assert_non_null(acl_binding_invalid(&b));
	b.pattern_type = LIT;
	b.operation = ACL_OP_ANY;
	assert_non_null(acl_binding_invalid(&b));
	b.operation = ACL_OP_READ;
	b.permission = ACL_PERM_ANY;
	assert_non_null(acl_binding_invalid(&b));
	b.permission = ALLOW;
	b.principal = "alice";
	assert_non_null(acl_binding_invalid(&b));
	b.principal = "User:a";
	b.resource_name = "";
	assert_non_null(acl_binding_invalid(&b));
	b.resource_type = ACL_RESOURCE_CLUSTER;
	b.resource_name = "other";
	assert_non_null(acl_binding_invalid(&b));
	b.resource_name = ACL_CLUSTER_NAME;
	assert_null(acl_binding_invalid(&b));
	b.resource_type = ACL_RESOURCE_ANY;
	assert_non_null(acl_binding_invalid(&b));
	struct acl_filter f = { ACL_RESOURCE_ANY, ACL_PATTERN_MATCH, ACL_OP_ANY, ACL_PERM_ANY, NULL,
				NULL, NULL };
	assert_null(acl_filter_invalid(&f));
	f.pattern_type = ACL_PATTERN_UNKNOWN;
	assert_non_null(acl_filter_invalid(&f));
	f.pattern_type = ACL_PATTERN_ANY;
	f.operation = ACL_OP_UNKNOWN;
	assert_non_null(acl_filter_invalid(&f));
}

static void names(void **state)
{
	(void)state;
	assert_int_equal(acl_operation_parse("IdempotentWrite"), ACL_OP_IDEMPOTENT_WRITE);
	assert_int_equal(acl_operation_parse("describe-configs"), ACL_OP_DESCRIBE_CONFIGS);
	assert_int_equal(acl_operation_parse("Read"), ACL_OP_READ);
	assert_int_equal(acl_operation_parse("Reading"), -1);
	assert_int_equal(acl_pattern_parse("prefixed"), ACL_PATTERN_PREFIXED);
	assert_int_equal(acl_resource_parse("transactional-id"), ACL_RESOURCE_TRANSACTIONAL_ID);
	assert_string_equal(acl_operation_name(ACL_OP_ALTER_CONFIGS), "ALTER_CONFIGS");
	assert_string_equal(acl_permission_name(99), "UNKNOWN");
}

#define BIT(op) (1 << (op))

/* Kafka's authorizedOperations: the supported operations of the type the
 * principal may do, implications and DENY included; all of them with the
 * authorizer off; a super user's are all of them too. */
static void authorized_operations(void **state)
{
	(void)state;
	struct acl_binding a[] = {
		acl(T, "t", LIT, "User:a", "*", ACL_OP_READ, ALLOW),
		acl(T, "t", LIT, "User:a", "*", ACL_OP_ALTER_CONFIGS, ALLOW),
		acl(T, "t", LIT, "User:a", "*", ACL_OP_WRITE, ALLOW),
		acl(T, "t", LIT, "User:a", "*", ACL_OP_WRITE, DENY),
		acl(G, "g", LIT, "User:a", "*", ACL_OP_ALL, ALLOW),
		acl(ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME, LIT, "User:a", "*", ACL_OP_IDEMPOTENT_WRITE,
		    ALLOW),
	};
	struct authorizer z = authz(a, sizeof a / sizeof a[0]);
	assert_int_equal(authz_operations(&z, "User:a", "10.0.0.1", T, "t"),
			 BIT(ACL_OP_READ) | BIT(ACL_OP_DESCRIBE) | BIT(ACL_OP_ALTER_CONFIGS) |
			 BIT(ACL_OP_DESCRIBE_CONFIGS));
	assert_int_equal(authz_operations(&z, "User:a", "10.0.0.1", G, "g"),
			 BIT(ACL_OP_READ) | BIT(ACL_OP_DESCRIBE) | BIT(ACL_OP_DELETE));
	assert_int_equal(authz_operations(&z, "User:a", "10.0.0.1", ACL_RESOURCE_CLUSTER,
					  ACL_CLUSTER_NAME), BIT(ACL_OP_IDEMPOTENT_WRITE));
	assert_int_equal(authz_operations(&z, "User:b", "10.0.0.1", T, "t"), 0);
	const char *supers[] = { "User:root" };
	z.super_users = supers;
	z.super_user_count = 1;
	assert_int_equal(authz_operations(&z, "User:root", "10.0.0.1", T, "t"),
			 (int32_t)acl_supported_operations(T));
	z.enabled = false;
	assert_int_equal(authz_operations(&z, "User:b", "10.0.0.1", G, "g"),
			 BIT(ACL_OP_READ) | BIT(ACL_OP_DESCRIBE) | BIT(ACL_OP_DELETE));
	assert_int_equal(acl_supported_operations(ACL_RESOURCE_TRANSACTIONAL_ID),
			 BIT(ACL_OP_DESCRIBE) | BIT(ACL_OP_WRITE));
	assert_int_equal(acl_supported_operations(ACL_RESOURCE_ANY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(implications),
		cmocka_unit_test(deny_beats_allow),
		cmocka_unit_test(patterns_and_hosts),
		cmocka_unit_test(super_users_and_default),
		cmocka_unit_test(by_resource_type),
		cmocka_unit_test(filters),
		cmocka_unit_test(validation),
		cmocka_unit_test(names),
		cmocka_unit_test(authorized_operations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

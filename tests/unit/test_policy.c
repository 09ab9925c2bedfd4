/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of policy: first matching section, globs, deny over allow,
 * the always-allowed and admin methods, default_deny, tenant injection and
 * refusal of another user_id, the per-uid connection cap, the token bucket
 * on a fake clock, a reload that keeps counts and buckets, the bound on
 * tracked uids, and the user-name lookup.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "policy.h"
#include "t.h"

static char reason[256];

/* A policy from configuration text (which must parse). */
static struct policy *
policy_from(const char *text)
{
	struct config c;
	struct policy *p;
	char err[256];

	if (config_parse(text, strlen(text), "test.conf", &c, err,
	        sizeof(err)) < 0) {
		printf("  config: %s\n", err);
		return NULL;
	}
	p = policy_new(&c);
	config_done(&c);
	return p;
}

/* policy_check_call with params given as JSON text (NULL: none). */
static int
check(const struct policy_rule *r, bool admin, const char *method,
    const char *params_json, char **ret_params)
{
	cJSON *params = params_json != NULL ? cJSON_Parse(params_json) : NULL;
	int res;

	reason[0] = '\0';
	res =
	    policy_check_call(r, admin, method, params, reason, sizeof(reason));
	if (ret_params != NULL)
		*ret_params =
		    params != NULL ? cJSON_PrintUnformatted(params) : NULL;
	cJSON_Delete(params);
	return res;
}

static const char rules[] = "[peer alice]\n"
                            "match_user = alice\n"
                            "allow = teammates.* runs.list\n"
                            "\n"
                            "[peer uid1001]\n"
                            "match_uid = 1001\n"
                            "deny = runs.cancel daemon.stats\n"
                            "\n"
                            "[peer staff]\n"
                            "match_gid = 50\n"
                            "allow = *\n"
                            "deny = runs.*\n"
                            "\n"
                            "[peer ops]\n"
                            "match_uid = 2000\n"
                            "admin = true\n";

TEST(first_match_wins)
{
	struct policy *p = policy_from(rules);
	const struct policy_rule *r;

	ASSERT(p != NULL);
	/* alice is uid 1001 in gid 50: the first section in the file wins. */
	r = policy_match(p, 1001, 50, "alice");
	ASSERT_STREQ(policy_rule_name(r), "alice");
	r = policy_match(p, 1001, 50, "bob");
	ASSERT_STREQ(policy_rule_name(r), "uid1001");
	r = policy_match(p, 1002, 50, NULL);
	ASSERT_STREQ(policy_rule_name(r), "staff");
	r = policy_match(p, 1002, 51, NULL);
	ASSERT(r != NULL);
	ASSERT(policy_rule_name(r) == NULL); /* the default rule */
	ASSERT(policy_rule_tenant(r) == NULL);
	ASSERT_EQ(policy_generation(p), 0);
	policy_free(p);
	policy_free(NULL);
}

TEST(globs_and_deny_wins)
{
	struct policy *p = policy_from(rules);
	const struct policy_rule *alice, *u1001, *staff;

	ASSERT(p != NULL);
	alice = policy_match(p, 1, 1, "alice");
	u1001 = policy_match(p, 1001, 1, NULL);
	staff = policy_match(p, 5, 50, NULL);

	ASSERT_OK(check(alice, false, "teammates.list", "{}", NULL));
	ASSERT_OK(check(alice, false, "teammates.triggers_not_real", "{}",
	    NULL)); /* a glob is a glob; dispatch refuses unknown methods */
	ASSERT_OK(check(alice, false, "runs.list", "{}", NULL));
	ASSERT_EQ(check(alice, false, "runs.create", "{}", NULL), -EPERM);
	ASSERT_STREQ(reason, "runs.create is not allowed by [peer alice]");
	ASSERT_EQ(check(alice, false, "runs.list_files", "{}", NULL), -EPERM);

	/* No allow: everything but what deny names. */
	ASSERT_OK(check(u1001, false, "runs.create", "{}", NULL));
	ASSERT_EQ(check(u1001, false, "runs.cancel", "{}", NULL), -EPERM);
	ASSERT_STREQ(reason, "runs.cancel is denied by [peer uid1001]");

	/* allow = * and deny = runs.*: deny wins. */
	ASSERT_OK(check(staff, false, "tasks.list", "{}", NULL));
	ASSERT_EQ(check(staff, false, "runs.list", "{}", NULL), -EPERM);
	ASSERT_STREQ(reason, "runs.list is denied by [peer staff]");
	policy_free(p);
}

TEST(always_allowed)
{
	struct policy *p = policy_from(rules);
	const struct policy_rule *alice, *u1001;

	ASSERT(p != NULL);
	alice = policy_match(p, 1, 1, "alice");
	u1001 = policy_match(p, 1001, 1, NULL);
	/* Not in alice's allow list, yet always there... */
	ASSERT_OK(check(alice, false, "daemon.ping", NULL, NULL));
	ASSERT_OK(check(alice, false, "daemon.hello", NULL, NULL));
	ASSERT_OK(check(alice, false, "daemon.describe", NULL, NULL));
	ASSERT_OK(check(alice, false, "cancel", "{\"id\":1}", NULL));
	ASSERT_EQ(check(alice, false, "daemon.stats", NULL, NULL), -EPERM);
	/* ...unless denied. */
	ASSERT_EQ(check(u1001, false, "daemon.stats", NULL, NULL), -EPERM);
	policy_free(p);

	p = policy_from("[peer x]\nmatch_uid = 1\ndeny = daemon.*\n");
	ASSERT(p != NULL);
	ASSERT_EQ(check(policy_match(p, 1, 1, NULL), false, "daemon.ping", NULL,
	              NULL),
	    -EPERM);
	ASSERT_STREQ(reason, "daemon.ping is denied by [peer x]");
	policy_free(p);
}

TEST(admin_methods)
{
	struct policy *p = policy_from(rules);
	const struct policy_rule *def, *staff, *ops;

	ASSERT(p != NULL);
	ASSERT(policy_method_is_admin("daemon.shutdown"));
	ASSERT(policy_method_is_admin("daemon.reload"));
	ASSERT(policy_method_is_admin("daemon.set_log_level"));
	ASSERT(policy_method_is_admin("cache.clear"));
	ASSERT(policy_method_is_admin("auth.login"));
	ASSERT(policy_method_is_admin("auth.logout"));
	ASSERT(!policy_method_is_admin("daemon.stats"));
	ASSERT(!policy_method_is_admin("teammates.delete"));
	ASSERT(!policy_method_is_admin("authx"));

	def = policy_match(p, 7, 7, NULL);
	staff = policy_match(p, 5, 50, NULL);
	ops = policy_match(p, 2000, 1, NULL);
	ASSERT_EQ(check(def, false, "daemon.shutdown", NULL, NULL), -EPERM);
	ASSERT_STREQ(reason,
	    "daemon.shutdown needs root, the daemon's own "
	    "user or admin = true");
	ASSERT_OK(check(def, true, "daemon.shutdown", NULL, NULL));
	/* allow = * does not make an admin... */
	ASSERT_EQ(check(staff, false, "cache.clear", NULL, NULL), -EPERM);
	/* ...admin = true does. */
	ASSERT_OK(check(ops, false, "cache.clear", NULL, NULL));
	ASSERT_OK(check(ops, false, "daemon.shutdown", NULL, NULL));
	policy_free(p);
}

TEST(default_deny)
{
	struct policy *p = policy_from("default_deny = true\n"
	                               "[peer web]\nmatch_uid = 33\n");
	const struct policy_rule *def, *web;

	ASSERT(p != NULL);
	def = policy_match(p, 1000, 1000, "carol");
	web = policy_match(p, 33, 33, "www-data");
	ASSERT_EQ(check(def, false, "teammates.list", "{}", NULL), -EPERM);
	ASSERT_STREQ(reason,
	    "no [peer] section of the configuration matches "
	    "this peer and default_deny is on");
	ASSERT_OK(check(def, false, "daemon.hello", NULL, NULL));
	ASSERT_OK(check(def, true, "teammates.list", "{}", NULL));
	ASSERT_OK(check(def, true, "daemon.shutdown", NULL, NULL));
	ASSERT_OK(check(web, false, "teammates.list", "{}", NULL));
	policy_free(p);
}

TEST(tenant)
{
	struct policy *p = policy_from("[peer shop]\nmatch_uid = 42\n"
	                               "tenant = cust_7\n");
	const struct policy_rule *r;
	char *out = NULL;

	ASSERT(p != NULL);
	r = policy_match(p, 42, 42, NULL);
	ASSERT_STREQ(policy_rule_tenant(r), "cust_7");

	/* Injected when absent. */
	ASSERT_OK(check(r, false, "teammates.list", "{\"limit\":5}", &out));
	ASSERT_STREQ(out, "{\"limit\":5,\"user_id\":\"cust_7\"}");
	free(out);
	ASSERT_OK(check(r, false, "runs.create", "{\"message\":\"hi\"}", &out));
	ASSERT_STREQ(out, "{\"message\":\"hi\",\"user_id\":\"cust_7\"}");
	free(out);
	/* A path parameter too: users.get can only read its own user. */
	ASSERT_OK(check(r, false, "users.get", "{}", &out));
	ASSERT_STREQ(out, "{\"user_id\":\"cust_7\"}");
	free(out);

	/* The same user_id is fine, another is refused. */
	ASSERT_OK(check(r, false, "teammates.list", "{\"user_id\":\"cust_7\"}",
	    &out));
	ASSERT_STREQ(out, "{\"user_id\":\"cust_7\"}");
	free(out);
	ASSERT_EQ(
	    check(r, false, "teammates.list", "{\"user_id\":\"cust_8\"}", &out),
	    -EPERM);
	ASSERT_STREQ(reason,
	    "this peer may only use user_id \"cust_7\" ([peer shop])");
	ASSERT_STREQ(out, "{\"user_id\":\"cust_8\"}"); /* untouched */
	free(out);
	ASSERT_EQ(
	    check(r, false, "users.delete", "{\"user_id\":\"other\"}", NULL),
	    -EPERM);
	ASSERT_EQ(check(r, false, "teammates.list", "{\"user_id\":null}", NULL),
	    -EPERM);
	ASSERT_EQ(check(r, false, "teammates.list", "{\"user_id\":7}", NULL),
	    -EPERM);

	/* A repeated name: every copy is checked, one copy is left. */
	ASSERT_EQ(check(r, false, "teammates.list",
	              "{\"user_id\":\"cust_7\",\"user_id\":\"cust_8\"}", NULL),
	    -EPERM);
	ASSERT_OK(check(r, false, "teammates.list",
	    "{\"user_id\":\"cust_7\",\"limit\":1,\"user_id\":\"cust_7\"}",
	    &out));
	ASSERT_STREQ(out, "{\"limit\":1,\"user_id\":\"cust_7\"}");
	free(out);

	/* Methods without user_id are left alone. */
	ASSERT_OK(check(r, false, "runs.stream", "{\"run_id\":3}", &out));
	ASSERT_STREQ(out, "{\"run_id\":3}");
	free(out);
	ASSERT_OK(check(r, false, "daemon.ping", NULL, NULL));

	/* Injection needs an object. */
	ASSERT_EQ(check(r, false, "teammates.list", NULL, NULL), -EINVAL);
	ASSERT_EQ(check(r, false, "teammates.list", "[]", NULL), -EINVAL);
	policy_free(p);
}

TEST(connection_cap)
{
	struct policy *p = policy_from("max_connections_per_uid = 3\n"
	                               "[peer small]\nmatch_uid = 10\n"
	                               "max_connections = 2\n");
	const struct policy_rule *small, *def;

	ASSERT(p != NULL);
	small = policy_match(p, 10, 10, NULL);
	def = policy_match(p, 11, 11, NULL);
	ASSERT_OK(policy_conn_open(p, small, 10));
	ASSERT_OK(policy_conn_open(p, small, 10));
	ASSERT_EQ(policy_conn_open(p, small, 10), -EDQUOT);
	ASSERT_EQ(policy_conn_count(p, 10), 2);
	policy_conn_close(p, 10);
	ASSERT_EQ(policy_conn_count(p, 10), 1);
	ASSERT_OK(policy_conn_open(p, small, 10));
	ASSERT_EQ(policy_conn_open(p, small, 10), -EDQUOT);

	/* Others have their own count, capped by max_connections_per_uid. */
	for (int i = 0; i < 3; i++)
		ASSERT_OK(policy_conn_open(p, def, 11));
	ASSERT_EQ(policy_conn_open(p, def, 11), -EDQUOT);
	ASSERT_EQ(policy_conn_count(p, 12), 0);

	/* Closing more than was opened does not go below zero. */
	policy_conn_close(p, 10);
	policy_conn_close(p, 10);
	policy_conn_close(p, 10);
	policy_conn_close(p, 99);
	ASSERT_EQ(policy_conn_count(p, 10), 0);
	policy_free(p);

	/* No cap anywhere: counted, never refused. */
	p = policy_from("");
	ASSERT(p != NULL);
	def = policy_match(p, 1, 1, NULL);
	for (int i = 0; i < 5000; i++)
		ASSERT_OK(policy_conn_open(p, def, 1));
	ASSERT_EQ(policy_conn_count(p, 1), 5000);
	policy_free(p);
}

TEST(token_bucket)
{
	struct policy *p = policy_from("[peer slow]\nmatch_uid = 5\n"
	                               "rate = 2\nburst = 2\n"
	                               "[peer trickle]\nmatch_uid = 6\n"
	                               "rate = 0.5\n");
	const struct policy_rule *slow, *trickle, *def;
	uint64_t wait = 0;

	ASSERT(p != NULL);
	slow = policy_match(p, 5, 5, NULL);
	trickle = policy_match(p, 6, 6, NULL);
	def = policy_match(p, 7, 7, NULL);

	/* A full bucket of two, then one every 500 ms. */
	ASSERT_OK(policy_rate_take(p, slow, 5, 1000, &wait));
	ASSERT_OK(policy_rate_take(p, slow, 5, 1000, &wait));
	ASSERT_EQ(policy_rate_take(p, slow, 5, 1000, &wait), -EAGAIN);
	ASSERT_EQ(wait, 500);
	ASSERT_EQ(policy_rate_take(p, slow, 5, 1499, &wait), -EAGAIN);
	ASSERT_EQ(wait, 1);
	ASSERT_OK(policy_rate_take(p, slow, 5, 1500, &wait));
	ASSERT_EQ(policy_rate_take(p, slow, 5, 1500, NULL), -EAGAIN);
	/* A clock that goes back refills nothing. */
	ASSERT_EQ(policy_rate_take(p, slow, 5, 900, NULL), -EAGAIN);
	/* A long pause fills the bucket to burst, no more. */
	ASSERT_OK(policy_rate_take(p, slow, 5, 1000000, NULL));
	ASSERT_OK(policy_rate_take(p, slow, 5, 1000000, NULL));
	ASSERT_EQ(policy_rate_take(p, slow, 5, 1000000, &wait), -EAGAIN);
	ASSERT_EQ(wait, 500);
	/* Each uid has its own bucket, even under the same rule. */
	ASSERT_OK(policy_rate_take(p, slow, 55, 1000000, NULL));

	/* 0.5/s: burst rounds up to one; the next is due in two seconds. */
	ASSERT_OK(policy_rate_take(p, trickle, 6, 0, NULL));
	ASSERT_EQ(policy_rate_take(p, trickle, 6, 0, &wait), -EAGAIN);
	ASSERT_EQ(wait, 2000);
	ASSERT_EQ(policy_rate_take(p, trickle, 6, 1999, &wait), -EAGAIN);
	ASSERT_EQ(wait, 1);
	ASSERT_OK(policy_rate_take(p, trickle, 6, 2000, NULL));

	/* No rate: no limit. */
	for (int i = 0; i < 10000; i++)
		ASSERT_OK(policy_rate_take(p, def, 7, 0, NULL));
	policy_free(p);
}

TEST(reload_keeps_counts_and_buckets)
{
	struct policy *p = policy_from("[peer a]\nmatch_uid = 1\n"
	                               "max_connections = 2\nrate = 1\n");
	struct config c;
	const struct policy_rule *r;
	char err[256];
	static const char next[] = "[peer b]\nmatch_uid = 9\n"
	                           "[peer a]\nmatch_uid = 1\n"
	                           "max_connections = 3\nrate = 1\n"
	                           "tenant = t\n";

	ASSERT(p != NULL);
	r = policy_match(p, 1, 1, NULL);
	ASSERT_OK(policy_conn_open(p, r, 1));
	ASSERT_OK(policy_conn_open(p, r, 1));
	ASSERT_OK(policy_rate_take(p, r, 1, 0, NULL));
	ASSERT_EQ(policy_rate_take(p, r, 1, 0, NULL), -EAGAIN);

	ASSERT_OK(config_parse(next, strlen(next), "next.conf", &c, err,
	    sizeof(err)));
	ASSERT_OK(policy_reload(p, &c));
	config_done(&c);
	ASSERT_EQ(policy_generation(p), 1);
	r = policy_match(p, 1, 1, NULL);
	ASSERT_STREQ(policy_rule_name(r), "a");
	ASSERT_STREQ(policy_rule_tenant(r), "t");
	/* Two connections still counted; the new cap lets one more in. */
	ASSERT_EQ(policy_conn_count(p, 1), 2);
	ASSERT_OK(policy_conn_open(p, r, 1));
	ASSERT_EQ(policy_conn_open(p, r, 1), -EDQUOT);
	/* The emptied bucket stayed empty. */
	ASSERT_EQ(policy_rate_take(p, r, 1, 500, NULL), -EAGAIN);
	ASSERT_OK(policy_rate_take(p, r, 1, 1000, NULL));
	policy_free(p);
}

TEST(uid_table_bound)
{
	struct policy *p = policy_from("[peer r]\nmatch_gid = 1\nrate = 1\n");
	const struct policy_rule *def, *r;

	ASSERT(p != NULL);
	def = policy_match(p, 0, 0, NULL);
	r = policy_match(p, 0, 1, NULL);
	for (uid_t u = 0; u < POLICY_MAX_UIDS; u++)
		if (policy_conn_open(p, def, u) < 0)
			T_FAIL("open for uid %u", (unsigned)u);
	ASSERT_EQ(policy_conn_open(p, def, POLICY_MAX_UIDS), -ENOSPC);
	ASSERT_EQ(policy_rate_take(p, r, POLICY_MAX_UIDS, 0, NULL), -ENOSPC);
	for (uid_t u = 0; u < POLICY_MAX_UIDS; u++)
		ASSERT_EQ(policy_conn_count(p, u), 1);
	/* Closed connections free their entries when the table needs room. */
	for (uid_t u = 0; u < 1000; u++)
		policy_conn_close(p, u);
	ASSERT_OK(policy_conn_open(p, def, POLICY_MAX_UIDS));
	ASSERT_EQ(policy_conn_count(p, POLICY_MAX_UIDS), 1);
	ASSERT_EQ(policy_conn_count(p, 5000), 1);
	ASSERT_EQ(policy_conn_count(p, 5), 0);
	policy_free(p);

	/* A uid with an emptied bucket is kept through growth: reconnecting
	 * does not refill it. */
	p = policy_from("[peer r]\nmatch_gid = 1\nrate = 1\n");
	ASSERT(p != NULL);
	def = policy_match(p, 0, 0, NULL);
	r = policy_match(p, 100, 1, NULL);
	ASSERT_OK(policy_rate_take(p, r, 100, 0, NULL));
	for (uid_t u = 0; u < 100; u++)
		ASSERT_OK(policy_conn_open(p, def, u));
	ASSERT_EQ(policy_rate_take(p, r, 100, 0, NULL), -EAGAIN);
	policy_free(p);
}

TEST(user_name)
{
	char buf[64];

	ASSERT_OK(policy_user_name(0, buf, sizeof(buf)));
	ASSERT_STREQ(buf, "root");
	ASSERT_EQ(policy_user_name(0, buf, 4), -ENAMETOOLONG);
	ASSERT_EQ(policy_user_name(3999999999u, buf, sizeof(buf)), -ENOENT);
}

int
main(void)
{
	RUN(first_match_wins);
	RUN(globs_and_deny_wins);
	RUN(always_allowed);
	RUN(admin_methods);
	RUN(default_deny);
	RUN(tenant);
	RUN(connection_cap);
	RUN(token_bucket);
	RUN(reload_keeps_counts_and_buckets);
	RUN(uid_table_bound);
	RUN(user_name);
	return t_done();
}

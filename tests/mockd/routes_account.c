/*
 * SPDX-License-Identifier: MIT
 *
 * Account-level resources: memories (with the case-insensitive "query"
 * filter), standing tool permissions, end-user profiles keyed by their
 * string user_id, end-user usage, and account settings (whose
 * require_end_user_id switches strict mode on).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "routes.h"
#include "runs.h"
#include "store.h"
#include "util.h"

/* A generic paged list of coll in the caller's scope. */
static int
scoped_page(struct mreq *req, struct mresp *resp, const cJSON *coll,
    bool scoped, const char *query)
{
	const char *uid = http_query(req, "user_id");
	struct pager pg;
	int r;

	r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (cJSON *o = json_last(coll); o != NULL; o = json_prev(coll, o)) {
		const char *c = json_str(o, "content");

		if (scoped && !json_scope_eq(o, uid))
			continue;
		if (query != NULL &&
		    (c == NULL || strcasestr(c, query) == NULL))
			continue;
		r = pager_add(&pg, o);
		if (r != 0)
			break;
	}
	if (r < 0) {
		pager_done(&pg);
		return r;
	}
	return pager_send(&pg, resp);
}

static int
scoped_lookup(struct mreq *req, struct mresp *resp, const cJSON *coll,
    const char *what, cJSON **ret)
{
	long long id = 0;
	cJSON *o = NULL;
	int r;

	r = routes_param_id(req, resp, 0, &id);
	if (r != 0)
		return r;
	o = json_find_id(coll, id);
	if (o == NULL || !json_scope_eq(o, http_query(req, "user_id")))
		return routes_answered(routes_not_found(req, resp, what));
	*ret = o;
	return 0;
}

static bool
memory_dup(const char *uid, const char *content, const cJSON *self)
{
	cJSON *m = NULL;

	for (m = json_first(store.memories); m != NULL; m = m->next)
		if (m != self && json_scope_eq(m, uid) &&
		    json_str(m, "content") != NULL &&
		    strcmp(json_str(m, "content"), content) == 0)
			return true;
	return false;
}

static int
check_audience(struct mreq *req, struct mresp *resp)
{
	const char *a = json_str(req->json, "audience");

	if (!json_nullish(req->json, "audience") &&
	    (a == NULL ||
	        (strcmp(a, "personal") != 0 && strcmp(a, "company") != 0)))
		return routes_invalid(req, resp,
		    "audience must be personal or company");
	return 0;
}

int
routes_memories_create(struct mreq *req, struct mresp *resp)
{
	const char *content, *uid;
	cJSON *m = NULL;
	int r;

	r = routes_body(req, resp, true);
	if (r == 0)
		r = check_audience(req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	content = json_str(req->json, "content");
	if (content == NULL || *content == '\0')
		return ROUTE_DONE(
		    routes_invalid(req, resp, "content is required"));
	uid = routes_body_user(req);
	r = routes_strict(req, resp, uid);
	if (r != 0)
		return ROUTE_DONE(r);
	if (memory_dup(uid, content, NULL))
		return ROUTE_DONE(routes_conflict(req, resp, "duplicate_memory",
		    "An identical memory already exists in this scope"));
	m = cJSON_CreateObject();
	if (m == NULL)
		return -ENOMEM;
	r = json_set_num(m, "id", (double)++store.seq_memory);
	r |= json_set_str(m, "content", content);
	r |= json_set_str(m, "user_id", uid);
	r |= json_set_str(m, "source", "api");
	r |= json_set_now(m, "created_at");
	r |= json_set_null(m, "agent_instance_id");
	r |= json_set_null(m, "created_by_agent_instance_id");
	r |= json_set_str(m, "audience", json_str(req->json, "audience"));
	r |= json_set_str(m, "scope", uid != NULL ? "personal" : "account");
	if (r < 0 || !cJSON_AddItemToArray(store.memories, m)) {
		cJSON_Delete(m);
		return -ENOMEM;
	}
	return routes_send(resp, 201, m);
}

int
routes_memories_list(struct mreq *req, struct mresp *resp)
{
	return scoped_page(req, resp, store.memories, true,
	    http_query(req, "query"));
}

int
routes_memories_update(struct mreq *req, struct mresp *resp)
{
	const char *content;
	cJSON *m = NULL;
	int r;

	r = scoped_lookup(req, resp, store.memories, "Memory", &m);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = check_audience(req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	content = json_str(req->json, "content");
	if (content == NULL && !json_has(req->json, "audience"))
		return ROUTE_DONE(
		    routes_invalid(req, resp, "Pass content or audience"));
	if (content != NULL && memory_dup(json_str(m, "user_id"), content, m))
		return ROUTE_DONE(routes_conflict(req, resp, "duplicate_memory",
		    "An identical memory already exists in this scope"));
	if (content != NULL)
		r |= json_set_str(m, "content", content);
	if (json_has(req->json, "audience"))
		r |= json_copy_key(m, req->json, "audience");
	return r < 0 ? r : routes_send(resp, 200, m);
}

int
routes_memories_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *m = NULL;
	int r = scoped_lookup(req, resp, store.memories, "Memory", &m);

	if (r != 0)
		return ROUTE_DONE(r);
	cJSON_Delete(cJSON_DetachItemViaPointer(store.memories, m));
	return http_resp_empty(resp, 204);
}

int
routes_policies_create(struct mreq *req, struct mresp *resp)
{
	const char *tool, *uid;
	cJSON *p = NULL;
	int r;

	r = routes_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	tool = json_str(req->json, "tool");
	if (tool == NULL || *tool == '\0')
		return ROUTE_DONE(
		    routes_invalid(req, resp, "tool is required"));
	uid = routes_body_user(req);
	r = routes_strict(req, resp, uid);
	if (r != 0)
		return ROUTE_DONE(r);
	for (p = json_first(store.policies); p != NULL; p = p->next)
		if (json_scope_eq(p, uid) && json_str(p, "tool_name") != NULL &&
		    strcmp(json_str(p, "tool_name"), tool) == 0)
			return routes_send(resp, 200, p);
	p = cJSON_CreateObject();
	if (p == NULL)
		return -ENOMEM;
	r = json_set_num(p, "id", (double)++store.seq_policy);
	r |= json_set_str(p, "tool_name", tool);
	r |= json_set_str(p, "user_id", uid);
	r |= json_set_now(p, "created_at");
	r |= json_set_str(p, "source", "api");
	if (r < 0 || !cJSON_AddItemToArray(store.policies, p)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	return routes_send(resp, 201, p);
}

int
routes_policies_list(struct mreq *req, struct mresp *resp)
{
	return scoped_page(req, resp, store.policies, true, NULL);
}

int
routes_policies_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *p = NULL;
	int r = scoped_lookup(req, resp, store.policies, "Permission", &p);

	if (r != 0)
		return ROUTE_DONE(r);
	cJSON_Delete(cJSON_DetachItemViaPointer(store.policies, p));
	return http_resp_empty(resp, 204);
}

static const char *const user_fields[] = {"name", "email", "company",
    "metadata", "run_limit", "cost_limit_cents", "rate_per_minute", NULL};

static int
check_caps(struct mreq *req, struct mresp *resp)
{
	static const char *const caps[] = {"run_limit", "cost_limit_cents",
	    "rate_per_minute", NULL};
	long long v;

	for (size_t i = 0; caps[i] != NULL; i++)
		if (!json_nullish(req->json, caps[i]) &&
		    (json_int(req->json, caps[i], &v) < 0 || v < 0))
			return routes_invalid(req, resp,
			    "%s must be a non-negative integer or null",
			    caps[i]);
	return 0;
}

int
routes_users_create(struct mreq *req, struct mresp *resp)
{
	const char *uid;
	cJSON *u = NULL;
	int r;

	r = routes_body(req, resp, true);
	if (r == 0)
		r = check_caps(req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	uid = json_str(req->json, "user_id");
	if (uid == NULL || *uid == '\0')
		return ROUTE_DONE(
		    routes_invalid(req, resp, "user_id is required"));
	if (json_find_str(store.users, "user_id", uid) != NULL)
		return ROUTE_DONE(routes_conflict(req, resp, "end_user_exists",
		    "An end-user with this user_id already exists"));
	u = cJSON_CreateObject();
	if (u == NULL)
		return -ENOMEM;
	r = json_set_num(u, "id", (double)++store.seq_user);
	r |= json_set_str(u, "user_id", uid);
	for (size_t i = 0; user_fields[i] != NULL; i++)
		r |= json_has(req->json, user_fields[i])
		    ? json_copy_key(u, req->json, user_fields[i])
		    : json_set_null(u, user_fields[i]);
	r |= json_set_now(u, "created_at");
	r |= json_set_now(u, "updated_at");
	if (r < 0 || !cJSON_AddItemToArray(store.users, u)) {
		cJSON_Delete(u);
		return -ENOMEM;
	}
	return routes_send(resp, 201, u);
}

int
routes_users_list(struct mreq *req, struct mresp *resp)
{
	return scoped_page(req, resp, store.users, false, NULL);
}

static int
user_lookup(struct mreq *req, struct mresp *resp, cJSON **ret)
{
	cJSON *u = json_find_str(store.users, "user_id", req->param[0]);

	if (u == NULL)
		return routes_answered(routes_not_found(req, resp, "End-user"));
	*ret = u;
	return 0;
}

int
routes_users_get(struct mreq *req, struct mresp *resp)
{
	cJSON *u = NULL;
	int r = user_lookup(req, resp, &u);

	return r != 0 ? ROUTE_DONE(r) : routes_send(resp, 200, u);
}

int
routes_users_update(struct mreq *req, struct mresp *resp)
{
	cJSON *u = NULL;
	int r;

	r = user_lookup(req, resp, &u);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = check_caps(req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (size_t i = 0; user_fields[i] != NULL; i++)
		r |= json_copy_key(u, req->json, user_fields[i]);
	r |= json_set_now(u, "updated_at");
	return r < 0 ? r : routes_send(resp, 200, u);
}

int
routes_users_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *u = NULL;
	int r = user_lookup(req, resp, &u);

	if (r != 0)
		return ROUTE_DONE(r);
	cJSON_Delete(cJSON_DetachItemViaPointer(store.users, u));
	return http_resp_empty(resp, 204);
}

static cJSON *
usage_of(const cJSON *u)
{
	const char *uid = json_str(u, "user_id");
	long long runs = 0;
	struct run *run = NULL;
	char cost[32];
	cJSON *o = NULL;
	int r;

	TAILQ_FOREACH(run, &store.runs, entry)
		if (json_scope_eq(run->obj, uid))
			runs++;
	o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	(void)snprintf(cost, sizeof(cost), "%lld.%06lld",
	    runs * 12000 / 1000000, runs * 12000 % 1000000);
	r = json_copy_key(o, u, "id");
	r |= json_set_str(o, "user_id", uid);
	r |= json_set_num(o, "runs_used", (double)runs);
	r |= json_set_str(o, "cost_used", cost);
	r |= json_set_num(o, "input_tokens", (double)runs * 1200);
	r |= json_set_num(o, "output_tokens", (double)runs * 300);
	r |= json_set_num(o, "total_tokens", (double)runs * 1500);
	r |= json_set_null(o, "last_active_at");
	r |= json_copy_key(o, u, "run_limit");
	r |= json_set(o, "runs_limit",
	    cJSON_DetachItemFromObject(o, "run_limit"));
	r |= json_copy_key(o, u, "cost_limit_cents");
	r |= json_copy_key(o, u, "rate_per_minute");
	r |= json_set_str(o, "period_end", "2026-12-31T23:59:59Z");
	if (r < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int
routes_users_usage(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	struct pager pg;
	cJSON *o = NULL;
	int r;

	r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (cJSON *u = json_last(store.users); u != NULL && r == 0;
	     u = json_prev(store.users, u)) {
		if (uid != NULL && strcmp(json_str(u, "user_id"), uid) != 0)
			continue;
		o = usage_of(u);
		r = o != NULL ? pager_add(&pg, o) : -ENOMEM;
		cJSON_Delete(o);
	}
	if (r < 0) {
		pager_done(&pg);
		return r;
	}
	return pager_send(&pg, resp);
}

int
routes_settings_get(struct mreq *req, struct mresp *resp)
{
	(void)req;
	return routes_send(resp, 200, store.settings);
}

int
routes_settings_update(struct mreq *req, struct mresp *resp)
{
	static const char *const caps[] = {"per_end_user_run_limit",
	    "per_end_user_cost_limit_cents", "per_end_user_rate_per_minute",
	    NULL};
	const cJSON *v;
	const char *rm;
	long long n;
	int r;

	r = routes_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	for (size_t i = 0; caps[i] != NULL; i++)
		if (!json_nullish(req->json, caps[i]) &&
		    (json_int(req->json, caps[i], &n) < 0 || n < 0))
			return ROUTE_DONE(routes_invalid(req, resp,
			    "%s must be a non-negative integer or null",
			    caps[i]));
	rm = json_str(req->json, "retention_mode");
	if (json_has(req->json, "retention_mode") &&
	    (rm == NULL ||
	        (strcmp(rm, "standard") != 0 &&
	            strcmp(rm, "metadata_only") != 0)))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "retention_mode must be standard or metadata_only"));
	v = cJSON_GetObjectItemCaseSensitive(req->json, "require_end_user_id");
	if (v != NULL && !cJSON_IsBool(v))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "require_end_user_id must be a boolean"));
	for (size_t i = 0; caps[i] != NULL; i++)
		r |= json_copy_key(store.settings, req->json, caps[i]);
	if (rm != NULL)
		r |= json_copy_key(store.settings, req->json, "retention_mode");
	if (v != NULL)
		r |= json_copy_key(store.settings, req->json,
		    "require_end_user_id");
	return r < 0 ? r : routes_send(resp, 200, store.settings);
}

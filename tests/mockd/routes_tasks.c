/*
 * SPDX-License-Identifier: MIT
 *
 * Tasks (/tasks/): CRUD with archive-on-delete, running a task now (the
 * run machinery is shared with /runs/), and the task's inbound webhook
 * URL. A task lives in its teammate's user_id scope unless given one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "routes.h"
#include "store.h"
#include "util.h"

static const char task_template[] =
    "{\"id\":0,\"teammate_id\":0,\"instructions\":\"\",\"name\":null,"
    "\"tools\":[],\"expected_output\":null,\"goals\":null,"
    "\"user_id\":null,\"status\":\"enabled\",\"created_at\":null,"
    "\"updated_at\":null,\"app_trigger_count\":0,"
    "\"permission_mode\":\"autonomous\",\"source\":\"api\","
    "\"workflow_stage\":null,\"is_bootstrap\":false,"
    "\"email_notifications\":true,\"webhook_url\":null,"
    "\"webhook_enabled\":false,\"source_template_task_slug\":null,"
    "\"is_modified\":false,\"user_recommends_removal\":false,"
    "\"enable_memory\":null,\"enable_history\":null,"
    "\"enable_task_setup_tools\":null,\"enable_feedback\":null,"
    "\"enable_lessons\":true,\"model\":null,\"effort\":null}";

/* Settable fields; the last six accept null (inherit from the teammate). */
static const char *const task_fields[] = {
    "name",
    "instructions",
    "tools",
    "expected_output",
    "goals",
    "email_notifications",
    "permission_mode",
    "enable_lessons",
    "status",
    "enable_memory",
    "enable_history",
    "enable_task_setup_tools",
    "enable_feedback",
    "model",
    "effort",
    NULL,
};

static int
overlay(cJSON *t, const cJSON *body)
{
	int r = 0;

	for (size_t i = 0; task_fields[i] != NULL; i++) {
		const cJSON *v =
		    cJSON_GetObjectItemCaseSensitive(body, task_fields[i]);

		if (v != NULL)
			r |= json_set(t, task_fields[i], cJSON_Duplicate(v, 1));
	}
	return r;
}

int
routes_tasks_lookup(struct mreq *req, struct mresp *resp, bool scoped,
    cJSON **ret)
{
	long long id = 0;
	cJSON *t = NULL;
	int r;

	r = routes_param_id(req, resp, 0, &id);
	if (r != 0)
		return r;
	t = json_find_id(store.tasks, id);
	if (t == NULL ||
	    (scoped && !json_scope_eq(t, http_query(req, "user_id"))))
		return routes_answered(routes_not_found(req, resp, "Task"));
	*ret = t;
	return 0;
}

static int
check_body(struct mreq *req, struct mresp *resp)
{
	const char *st = json_str(req->json, "status");
	const cJSON *tools =
	    cJSON_GetObjectItemCaseSensitive(req->json, "tools");

	if (tools != NULL && !cJSON_IsArray(tools))
		return routes_invalid(req, resp, "tools must be a list");
	if (json_has(req->json, "status") &&
	    (st == NULL ||
	        (strcmp(st, "enabled") != 0 && strcmp(st, "disabled") != 0)))
		return routes_invalid(req, resp,
		    "status must be enabled or disabled");
	if (json_has(req->json, "instructions") &&
	    json_str(req->json, "instructions") == NULL)
		return routes_invalid(req, resp,
		    "instructions must be a string");
	return 0;
}

/*
 * The teammate a new task belongs to and the task's user_id (the body's,
 * else the teammate's scope), with the required fields and strict mode.
 */
static int
create_owner(struct mreq *req, struct mresp *resp, long long *ret_tmid,
    const char **ret_uid)
{
	const char *sid = json_str(req->json, "teammate_id");
	const char *uid = routes_body_user(req);
	const cJSON *agent;
	long long tmid = -1;
	int r;

	r = sid != NULL ? util_parse_ll(sid, &tmid)
	                : json_int(req->json, "teammate_id", &tmid);
	if (r < 0)
		return routes_invalid(req, resp, "teammate_id is required");
	if (json_str(req->json, "instructions") == NULL)
		return routes_invalid(req, resp, "instructions is required");
	agent = json_find_id(store.agents, tmid);
	if (agent == NULL || (uid != NULL && !json_scope_eq(agent, uid)))
		return routes_not_found(req, resp, "Teammate");
	if (uid == NULL)
		uid = json_str(agent, "user_id");
	r = routes_strict(req, resp, uid);
	if (r == 0) {
		*ret_tmid = tmid;
		*ret_uid = uid;
	}
	return r;
}

/* The public form of a new task, with its live trigger URL shown once. */
static cJSON *
created_view(const cJSON *t, const char *url)
{
	cJSON *out = store_public(t);

	if (out != NULL && url[0] != '\0' &&
	    json_set_str(out, "webhook_url", url) < 0) {
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

int
routes_tasks_create(struct mreq *req, struct mresp *resp)
{
	const char *uid = NULL, *sched, *tz;
	long long tmid = -1;
	char url[256] = "";
	cJSON *t;
	int r;

	r = routes_body(req, resp, true);
	if (r == 0)
		r = check_body(req, resp);
	if (r == 0)
		r = create_owner(req, resp, &tmid, &uid);
	if (r != 0)
		return ROUTE_DONE(r);
	t = json_template(task_template);
	if (t == NULL)
		return -ENOMEM;
	r = json_set_num(t, "id", (double)++store.seq_task);
	r |= json_set_num(t, "teammate_id", (double)tmid);
	r |= json_set_str(t, "user_id", uid);
	r |= json_set_now(t, "created_at");
	r |= json_set_now(t, "updated_at");
	r |= overlay(t, req->json);
	if (cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(req->json, "webhook")))
		r |= routes_mint_url(t, "tasks", url, sizeof(url));
	if (r < 0 || !cJSON_AddItemToArray(store.tasks, t)) {
		cJSON_Delete(t);
		return -ENOMEM;
	}
	sched = json_str(req->json, "schedule");
	tz = json_str(req->json, "schedule_timezone");
	if (sched != NULL && *sched != '\0') {
		r = routes_triggers_schedule(t, sched, tz != NULL ? tz : "UTC");
		if (r < 0)
			return r;
	}
	return http_resp_json(resp, 201, created_view(t, url));
}

int
routes_tasks_list(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	const char *arch = http_query(req, "include_archived");
	const char *tm = http_query(req, "teammate_id");
	bool all = arch != NULL && strcmp(arch, "true") == 0;
	long long tmid = -1, v;
	struct pager pg;
	int r;

	if (tm != NULL && util_parse_ll(tm, &tmid) < 0)
		return ROUTE_DONE(routes_invalid(req, resp,
		    "teammate_id must be an integer"));
	r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (cJSON *t = json_last(store.tasks); t != NULL;
	     t = json_prev(store.tasks, t)) {
		const char *st = json_str(t, "status");

		if (!json_scope_eq(t, uid) ||
		    (!all && st != NULL && strcmp(st, "archived") == 0) ||
		    (tm != NULL &&
		        (json_int(t, "teammate_id", &v) < 0 || v != tmid)))
			continue;
		r = pager_add(&pg, t);
		if (r != 0)
			break;
	}
	if (r < 0) {
		pager_done(&pg);
		return r;
	}
	return pager_send(&pg, resp);
}

int
routes_tasks_get(struct mreq *req, struct mresp *resp)
{
	cJSON *t = NULL;
	int r = routes_tasks_lookup(req, resp, true, &t);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_send(resp, 200, t);
}

int
routes_tasks_update(struct mreq *req, struct mresp *resp)
{
	cJSON *t = NULL;
	int r;

	r = routes_tasks_lookup(req, resp, true, &t);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = check_body(req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	r = overlay(t, req->json);
	r |= json_set_bool(t, "is_modified", true);
	r |= json_set_now(t, "updated_at");
	return r < 0 ? r : routes_send(resp, 200, t);
}

int
routes_tasks_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *t = NULL;
	int r = routes_tasks_lookup(req, resp, true, &t);

	if (r != 0)
		return ROUTE_DONE(r);
	r = json_set_str(t, "status", "archived");
	r |= json_set_now(t, "updated_at");
	return r < 0 ? r : http_resp_empty(resp, 204);
}

int
routes_tasks_run(struct mreq *req, struct mresp *resp)
{
	cJSON *t = NULL;
	int r = routes_tasks_lookup(req, resp, false, &t);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_runs_start(req, resp, t);
}

int
routes_tasks_webhook(struct mreq *req, struct mresp *resp)
{
	cJSON *t = NULL;
	int r = routes_tasks_lookup(req, resp, true, &t);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_trigger_url(req, resp, t, "tasks");
}

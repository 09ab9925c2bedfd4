/*
 * SPDX-License-Identifier: MIT
 *
 * Task triggers (§10): schedule (exactly one of cron, interval_seconds or
 * a future run_at), app, and the singletons "webhook" and "email". Ids are
 * strings namespaced by type; a bare integer id is refused with 422. The
 * account-wide /triggers/ list pages with "<task_id>:<trigger_id>" cursors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "routes.h"
#include "store.h"
#include "util.h"

static const char trigger_template[] =
    "{\"id\":\"\",\"type\":\"\",\"enabled\":true,\"task_id\":0,"
    "\"cron\":null,\"interval_seconds\":null,\"run_at\":null,"
    "\"timezone\":\"UTC\",\"next_run\":null,\"url\":null,"
    "\"address\":null,\"app\":null,\"trigger_name\":null,"
    "\"trigger_config\":null,\"allowed_senders\":null}";

static bool
is_type(const char *t)
{
	return t != NULL &&
	    (strcmp(t, "schedule") == 0 || strcmp(t, "webhook") == 0 ||
	        strcmp(t, "email") == 0 || strcmp(t, "app") == 0);
}

static bool
cron_ok(const char *s)
{
	int fields = 0;

	for (const char *p = s; *p != '\0';) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		fields++;
		p += strcspn(p, " \t");
	}
	return fields == 5;
}

/* Validate the schedule fields present in body; set *ret_n to how many. */
static int
check_shape(struct mreq *req, struct mresp *resp, int *ret_n)
{
	const char *cron = json_str(req->json, "cron");
	const char *at = json_str(req->json, "run_at");
	long long iv;
	time_t t;
	int n = 0;

	if (!json_nullish(req->json, "cron")) {
		if (cron == NULL || !cron_ok(cron))
			return routes_invalid(req, resp,
			    "cron must be a 5-field cron expression");
		n++;
	}
	if (!json_nullish(req->json, "interval_seconds")) {
		if (json_int(req->json, "interval_seconds", &iv) < 0 || iv < 1)
			return routes_invalid(req, resp,
			    "interval_seconds must be a positive integer");
		n++;
	}
	if (!json_nullish(req->json, "run_at")) {
		if (at == NULL || util_parse_iso(at, &t) < 0)
			return routes_invalid(req, resp,
			    "run_at must be an ISO 8601 date-time");
		if (t <= time(NULL))
			return routes_invalid(req, resp,
			    "run_at must be in the future");
		n++;
	}
	if (n > 1)
		return routes_invalid(req, resp,
		    "cron, interval_seconds and run_at are mutually exclusive");
	*ret_n = n;
	return 0;
}

/* Copy the schedule shape from body; the one set clears the others. */
static int
apply_shape(cJSON *tr, const cJSON *body)
{
	static const char *const shapes[] = {"cron", "interval_seconds",
	    "run_at"};
	char next[32];
	long long iv;
	time_t t = time(NULL) + 3600;
	int r = 0;

	for (size_t i = 0; i < 3; i++) {
		if (json_nullish(body, shapes[i]))
			continue;
		for (size_t j = 0; j < 3; j++)
			r |= j == i ? json_copy_key(tr, body, shapes[j])
			            : json_set_null(tr, shapes[j]);
	}
	if (json_int(tr, "interval_seconds", &iv) == 0)
		t = time(NULL) + (time_t)iv;
	else if (json_str(tr, "run_at") != NULL)
		(void)util_parse_iso(json_str(tr, "run_at"), &t);
	util_iso(t, next, sizeof(next));
	return r | json_set_str(tr, "next_run", next);
}

static cJSON *
trigger_new(const cJSON *task, const char *type, const char *id)
{
	cJSON *tr = json_template(trigger_template);
	int r;

	if (tr == NULL)
		return NULL;
	r = json_set_str(tr, "id", id);
	r |= json_set_str(tr, "type", type);
	r |= json_set_num(tr, "task_id", (double)json_id(task));
	r |= json_set_num(tr, "_task_id", (double)json_id(task));
	r |= json_set_num(tr, "_seq", (double)++store.seq_trigger);
	r |= json_set_str(tr, "_user_id", json_str(task, "user_id"));
	if (r < 0) {
		cJSON_Delete(tr);
		return NULL;
	}
	return tr;
}

static cJSON *
trigger_find(long long task_id, const char *id)
{
	cJSON *tr = NULL;
	long long t;

	for (tr = json_first(store.triggers); tr != NULL; tr = tr->next)
		if (json_int(tr, "_task_id", &t) == 0 && t == task_id &&
		    strcmp(json_str(tr, "id"), id) == 0)
			return tr;
	return NULL;
}

int
routes_triggers_schedule(cJSON *t, const char *cron, const char *tz)
{
	char id[32];
	cJSON *tr = NULL, *body = NULL;
	int r;

	(void)snprintf(id, sizeof(id), "schedule_%lld", store.seq_trigger + 1);
	tr = trigger_new(t, "schedule", id);
	body = cJSON_CreateObject();
	if (tr == NULL || body == NULL) {
		cJSON_Delete(tr);
		cJSON_Delete(body);
		return -ENOMEM;
	}
	r = json_set_str(body, "cron", cron);
	r |= apply_shape(tr, body);
	r |= json_set_str(tr, "timezone", tz);
	cJSON_Delete(body);
	if (r < 0 || !cJSON_AddItemToArray(store.triggers, tr)) {
		cJSON_Delete(tr);
		return -ENOMEM;
	}
	return 0;
}

static int
fill_by_type(struct mreq *req, struct mresp *resp, cJSON *task, cJSON *tr,
    const char *type)
{
	char buf[256], rnd[25];
	int r = 0;

	if (strcmp(type, "webhook") == 0) {
		r = routes_mint_url(task, "tasks", buf, sizeof(buf));
		r |= json_set_str(tr, "url", buf);
	} else if (strcmp(type, "email") == 0) {
		util_randhex(rnd, 8);
		(void)snprintf(buf, sizeof(buf),
		    "task-%lld-%s@notifications.m8tes.ai", json_id(task), rnd);
		r = json_set_str(tr, "address", buf);
	} else if (strcmp(type, "app") == 0) {
		long long n = 0;

		if (json_str(req->json, "app") == NULL ||
		    json_str(req->json, "trigger_name") == NULL)
			return routes_invalid(req, resp,
			    "app triggers need app and trigger_name");
		r = json_copy_key(tr, req->json, "app");
		r |= json_copy_key(tr, req->json, "trigger_name");
		r |= json_copy_key(tr, req->json, "trigger_config");
		(void)json_int(task, "app_trigger_count", &n);
		r |= json_set_num(task, "app_trigger_count", (double)n + 1);
	} else
		r = apply_shape(tr, req->json);
	return r;
}

/* The type of a create body, with the schedule shape checked. */
static int
create_type(struct mreq *req, struct mresp *resp, const char **ret)
{
	const char *type = json_str(req->json, "type");
	int r, n = 0;

	if (!is_type(type))
		return routes_answered(routes_invalid(req, resp,
		    "type must be one of schedule, webhook, email, app"));
	if (strcmp(type, "schedule") == 0) {
		r = check_shape(req, resp, &n);
		if (r != 0)
			return r;
		if (n == 0)
			return routes_answered(routes_invalid(req, resp,
			    "A schedule needs cron, interval_seconds or "
			    "run_at"));
	}
	*ret = type;
	return 0;
}

/* The id of a new trigger; a singleton replaces the task's old one. */
static void
new_id(const cJSON *task, const char *type, char *id, size_t len)
{
	cJSON *old;

	if (strcmp(type, "webhook") != 0 && strcmp(type, "email") != 0) {
		(void)snprintf(id, len, "%s_%lld", type, store.seq_trigger + 1);
		return;
	}
	(void)snprintf(id, len, "%s", type);
	old = trigger_find(json_id(task), id);
	if (old != NULL)
		cJSON_Delete(cJSON_DetachItemViaPointer(store.triggers, old));
}

int
routes_triggers_create(struct mreq *req, struct mresp *resp)
{
	const char *type = NULL, *tz, *uid = NULL;
	cJSON *task = NULL, *tr;
	char id[32];
	int r;

	r = routes_tasks_lookup(req, resp, true, &task);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		uid = routes_body_user(req);
	if (r == 0 && uid != NULL && !json_scope_eq(task, uid))
		r = routes_not_found(req, resp, "Task");
	if (r == 0)
		r = create_type(req, resp, &type);
	if (r != 0)
		return ROUTE_DONE(r);
	new_id(task, type, id, sizeof(id));
	tr = trigger_new(task, type, id);
	if (tr == NULL)
		return -ENOMEM;
	r = fill_by_type(req, resp, task, tr, type);
	tz = json_str(req->json, "timezone");
	if (r == 0)
		r = json_set_str(tr, "timezone", tz != NULL ? tz : "UTC");
	if (r == 0 && !json_nullish(req->json, "allowed_senders"))
		r = json_copy_key(tr, req->json, "allowed_senders");
	if (r == 0 && !cJSON_AddItemToArray(store.triggers, tr))
		r = -ENOMEM;
	if (r != 0) {
		cJSON_Delete(tr);
		return ROUTE_DONE(r);
	}
	return routes_send(resp, 201, tr);
}

int
routes_triggers_list(struct mreq *req, struct mresp *resp)
{
	cJSON *task, *a, *tr, *env;
	long long t;
	int r = routes_tasks_lookup(req, resp, true, &task);

	if (r != 0)
		return ROUTE_DONE(r);
	a = cJSON_CreateArray();
	if (a == NULL)
		return -ENOMEM;
	for (tr = json_first(store.triggers); tr != NULL; tr = tr->next) {
		if (json_int(tr, "_task_id", &t) < 0 || t != json_id(task))
			continue;
		if (!cJSON_AddItemToArray(a, store_public(tr))) {
			cJSON_Delete(a);
			return -ENOMEM;
		}
	}
	if (!store.triggers_data)
		return http_resp_json(resp, 200, a);
	env = cJSON_CreateObject();
	if (env == NULL) {
		cJSON_Delete(a);
		return -ENOMEM;
	}
	if (json_set(env, "data", a) < 0) {
		cJSON_Delete(env);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, env);
}

static int
trigger_lookup(struct mreq *req, struct mresp *resp, cJSON **ret_task,
    cJSON **ret)
{
	long long n;
	cJSON *tr = NULL;
	int r;

	r = routes_tasks_lookup(req, resp, true, ret_task);
	if (r != 0)
		return r;
	if (util_parse_ll(req->param[1], &n) == 0)
		return routes_answered(routes_invalid(req, resp,
		    "Trigger ids are strings: schedule_5, webhook, email"));
	tr = trigger_find(json_id(*ret_task), req->param[1]);
	if (tr == NULL)
		return routes_answered(routes_not_found(req, resp, "Trigger"));
	*ret = tr;
	return 0;
}

int
routes_triggers_update(struct mreq *req, struct mresp *resp)
{
	const cJSON *en;
	cJSON *task = NULL, *tr = NULL;
	int r, n = 0;

	r = trigger_lookup(req, resp, &task, &tr);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = check_shape(req, resp, &n);
	if (r != 0)
		return ROUTE_DONE(r);
	if (n > 0 && strcmp(json_str(tr, "type"), "schedule") != 0)
		return ROUTE_DONE(routes_invalid(req, resp,
		    "Only schedule triggers have a schedule"));
	en = cJSON_GetObjectItemCaseSensitive(req->json, "enabled");
	if (en != NULL && !cJSON_IsBool(en))
		return ROUTE_DONE(
		    routes_invalid(req, resp, "enabled must be a boolean"));
	if (en != NULL)
		r |= json_copy_key(tr, req->json, "enabled");
	if (n > 0)
		r |= apply_shape(tr, req->json);
	if (json_str(req->json, "timezone") != NULL)
		r |= json_copy_key(tr, req->json, "timezone");
	return r < 0 ? r : routes_send(resp, 200, tr);
}

int
routes_triggers_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *task = NULL, *tr = NULL;
	int r = trigger_lookup(req, resp, &task, &tr);

	if (r != 0)
		return ROUTE_DONE(r);
	if (strcmp(json_str(tr, "type"), "webhook") == 0) {
		r = json_set_bool(task, "webhook_enabled", false);
		r |= json_set_null(task, "webhook_url");
		cJSON_DeleteItemFromObjectCaseSensitive(task, "_webhook_url");
		if (r < 0)
			return r;
	}
	cJSON_Delete(cJSON_DetachItemViaPointer(store.triggers, tr));
	return http_resp_empty(resp, 204);
}

int
routes_triggers_all(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	const char *type = http_query(req, "type");
	const char *tk = http_query(req, "task_id");
	const char *sa = http_query(req, "starting_after");
	const char *lim = http_query(req, "limit");
	long long tkid = -1, limit = ROUTE_DEF_LIMIT, t;
	bool skipping = sa != NULL, more = false;
	char cur[96], last[96] = "";
	cJSON *data, *env, *tr, *c;
	const cJSON *task;
	int r = 0;

	if ((tk != NULL && util_parse_ll(tk, &tkid) < 0) ||
	    (lim != NULL && util_parse_ll(lim, &limit) < 0))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "task_id and limit must be integers"));
	data = cJSON_CreateArray();
	if (data == NULL)
		return -ENOMEM;
	for (tr = json_last(store.triggers); tr != NULL && r == 0;
	     tr = json_prev(store.triggers, tr)) {
		(void)json_int(tr, "_task_id", &t);
		(void)snprintf(cur, sizeof(cur), "%lld:%s", t,
		    json_str(tr, "id"));
		if (skipping) {
			skipping = strcmp(cur, sa) != 0;
			continue;
		}
		task = json_find_id(store.tasks, t);
		if (task == NULL || !json_scope_eq(task, uid) ||
		    (type != NULL && strcmp(json_str(tr, "type"), type) != 0) ||
		    (tk != NULL && t != tkid))
			continue;
		if (cJSON_GetArraySize(data) >= limit) {
			more = true;
			break;
		}
		c = store_public(tr);
		if (c == NULL || !cJSON_AddItemToArray(data, c) ||
		    json_set_str(c, "task_name", json_str(task, "name")) < 0)
			r = -ENOMEM;
		(void)snprintf(last, sizeof(last), "%s", cur);
	}
	env = cJSON_CreateObject();
	if (r < 0 || env == NULL) {
		cJSON_Delete(data);
		cJSON_Delete(env);
		return -ENOMEM;
	}
	r = json_set(env, "data", data);
	r |= json_set_bool(env, "has_more", more);
	r |= more ? json_set_str(env, "next_starting_after", last)
	          : json_set_null(env, "next_starting_after");
	if (r < 0) {
		cJSON_Delete(env);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, env);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * The /api/v2 route table and the checks every route shares. Matching runs
 * on segments of the already percent-decoded path, so an encoded '/' in an
 * id selects a different route, as on the real server. Order of checks for
 * a request: route (404 {"detail"} / 405 / 307 slash redirect), auth (401),
 * query parameters (422 unknown_query_parameter), limit, strict end-user
 * mode, then the handler.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "routes.h"
#include "store.h"
#include "util.h"

struct route {
	const char *method;
	const char *pattern; /* "{}" one segment, "**" greedy */
	const char *query;   /* allowed query parameters */
	unsigned int flags;
	route_cb cb;
};

#define S ROUTE_SCOPED
#define P ROUTE_PAGED
#define PG "limit starting_after"
static const struct route routes[] = {
    {"POST", "agents/", "", 0, routes_agents_create},
    {"GET", "agents/", "user_id include_archived " PG, S | P,
        routes_agents_list},
    {"GET", "agents/{}", "user_id", S, routes_agents_get},
    {"PATCH", "agents/{}", "user_id", S, routes_agents_update},
    {"DELETE", "agents/{}", "user_id", S, routes_agents_delete},
    {"GET", "agents/{}/system-prompt", "user_id", S, routes_agents_prompt},
    {"POST", "agents/{}/disable", "user_id", S, routes_agents_state},
    {"POST", "agents/{}/enable", "user_id", S, routes_agents_state},
    {"POST", "agents/{}/unarchive", "user_id", S, routes_agents_state},
    {"POST", "agents/{}/webhook", "user_id", S, routes_agents_webhook},
    {"PATCH", "agents/{}/webhook", "user_id", S, routes_agents_webhook},
    {"DELETE", "agents/{}/webhook", "user_id", S, routes_agents_webhook},
    {"POST", "agents/{}/email-inbox", "user_id", S, routes_agents_inbox},
    {"DELETE", "agents/{}/email-inbox", "user_id", S, routes_agents_inbox},

    {"POST", "runs/", "", 0, routes_runs_create},
    {"POST", "runs/with-files", "", 0, routes_runs_create_files},
    {"GET", "runs/", "teammate_id task_id user_id status " PG, S | P,
        routes_runs_list},
    {"GET", "runs/check", "user_id", S, routes_runs_check},
    {"GET", "runs/{}", "user_id", S, routes_runs_get},
    {"GET", "runs/{}/stream", "", 0, routes_runs_stream},
    {"GET", "runs/{}/outcome", "", 0, routes_runs_outcome},
    {"GET", "runs/{}/messages", "after_sequence limit", 0,
        routes_runs_messages},
    {"POST", "runs/{}/reply", "", 0, routes_runs_reply},
    {"POST", "runs/{}/reply/with-files", "", 0, routes_runs_reply_files},
    {"POST", "runs/{}/cancel", "user_id", S, routes_runs_cancel},
    {"POST", "runs/{}/retry", "confirm use_credits", 0, routes_runs_retry},
    {"PATCH", "runs/{}/permission-mode", "", 0, routes_runs_mode},
    {"GET", "runs/{}/permissions", "", 0, routes_runs_permissions},
    {"POST", "runs/{}/approve", "", 0, routes_runs_approve},
    {"POST", "runs/{}/answer", "", 0, routes_runs_answer},
    {"GET", "runs/{}/files", "", 0, routes_runs_files},
    {"GET", "runs/{}/files/**/download", "", 0, routes_runs_download},

    {"POST", "tasks/", "", 0, routes_tasks_create},
    {"GET", "tasks/", "teammate_id user_id include_archived " PG, S | P,
        routes_tasks_list},
    {"GET", "tasks/{}", "user_id", S, routes_tasks_get},
    {"PATCH", "tasks/{}", "user_id", S, routes_tasks_update},
    {"DELETE", "tasks/{}", "user_id", S, routes_tasks_delete},
    {"POST", "tasks/{}/runs", "", 0, routes_tasks_run},
    {"POST", "tasks/{}/webhook", "user_id", S, routes_tasks_webhook},
    {"PATCH", "tasks/{}/webhook", "user_id", S, routes_tasks_webhook},
    {"DELETE", "tasks/{}/webhook", "user_id", S, routes_tasks_webhook},
    {"POST", "tasks/{}/triggers/", "user_id", S, routes_triggers_create},
    {"GET", "tasks/{}/triggers/", "user_id", S, routes_triggers_list},
    {"PATCH", "tasks/{}/triggers/{}", "user_id", S, routes_triggers_update},
    {"DELETE", "tasks/{}/triggers/{}", "user_id", S, routes_triggers_delete},
    {"GET", "triggers/", "user_id type task_id " PG, S | P,
        routes_triggers_all},

    {"GET", "apps/", "user_id", S, routes_apps_list},
    {"POST", "apps/{}/connect", "", 0, routes_apps_connect},
    {"POST", "apps/{}/connect/api-key", "", 0, routes_apps_connect},
    {"POST", "apps/{}/connect/complete", "", 0, routes_apps_connect},
    {"POST", "apps/{}/provision", "", 0, routes_apps_connect},
    {"GET", "apps/{}/connections", "user_id", S, routes_apps_connections},
    {"DELETE", "apps/{}/connections", "user_id", S, routes_apps_disconnect},
    {"GET", "apps/{}/tools", "", 0, routes_apps_tools},
    {"GET", "apps/{}/triggers", "", 0, routes_apps_triggers},

    {"POST", "memories/", "", 0, routes_memories_create},
    {"GET", "memories/", "user_id query " PG, S | P, routes_memories_list},
    {"PATCH", "memories/{}", "user_id", S, routes_memories_update},
    {"DELETE", "memories/{}", "user_id", S, routes_memories_delete},

    {"POST", "permissions/", "", 0, routes_policies_create},
    {"GET", "permissions/", "user_id " PG, S | P, routes_policies_list},
    {"DELETE", "permissions/{}", "user_id", S, routes_policies_delete},

    {"POST", "users/", "", 0, routes_users_create},
    {"GET", "users/", PG, P, routes_users_list},
    {"GET", "users/{}", "", 0, routes_users_get},
    {"PATCH", "users/{}", "", 0, routes_users_update},
    {"DELETE", "users/{}", "", 0, routes_users_delete},
    {"GET", "usage/end-users", "user_id " PG, P, routes_users_usage},

    {"GET", "settings/", "", 0, routes_settings_get},
    {"PATCH", "settings/", "", 0, routes_settings_update},

    {"POST", "webhooks/", "", 0, routes_webhooks_create},
    {"GET", "webhooks/", PG, P, routes_webhooks_list},
    {"GET", "webhooks/{}", "", 0, routes_webhooks_get},
    {"PATCH", "webhooks/{}", "", 0, routes_webhooks_update},
    {"DELETE", "webhooks/{}", "", 0, routes_webhooks_delete},
    {"GET", "webhooks/{}/deliveries", PG, P, routes_webhooks_deliveries},
};
#undef S
#undef P
#undef PG

/* seg[from..end) joined with '/', in a new string; NULL on ENOMEM. */
static char *
join(char *const *seg, size_t from, size_t end)
{
	size_t len = 1, o = 0;
	char *g;

	for (size_t x = from; x < end; x++)
		len += strlen(seg[x]) + 1;
	g = malloc(len);
	if (g == NULL)
		return NULL;
	g[0] = '\0';
	for (size_t x = from; x < end; x++) {
		size_t n = strlen(seg[x]);

		if (x > from)
			g[o++] = '/';
		memcpy(g + o, seg[x], n + 1);
		o += n;
	}
	return g;
}

/*
 * Match the segments seg[0..nseg) against pattern, filling params[]
 * (and *greedy, allocated, for a "**" segment, which takes one or more
 * segments). 1 on a match, 0 if not, -ENOMEM.
 */
static int
match(const char *pattern, char *const *seg, size_t nseg, const char **params,
    char **greedy)
{
	char pat[128], *ps[HTTP_MAX_SEGS], *p, *s;
	size_t np = 0, i, j, k = 0;

	(void)snprintf(pat, sizeof(pat), "%s", pattern);
	for (p = pat; np < HTTP_MAX_SEGS; p = s + 1) {
		ps[np++] = p;
		s = strchr(p, '/');
		if (s == NULL)
			break;
		*s = '\0';
	}
	for (i = 0, j = 0; i < np; i++, j++) {
		if (strcmp(ps[i], "**") == 0) {
			size_t rest = np - i - 1;

			if (nseg < j + rest + 1)
				return 0;
			free(*greedy);
			*greedy = join(seg, j, nseg - rest);
			if (*greedy == NULL)
				return -ENOMEM;
			params[k++] = *greedy;
			j = nseg - rest - 1;
		} else if (j < nseg && strcmp(ps[i], "{}") == 0 &&
		    seg[j][0] != '\0')
			params[k++] = seg[j];
		else if (j >= nseg || strcmp(ps[i], seg[j]) != 0)
			return 0;
	}
	return j == nseg;
}

static const struct route *
lookup(struct mreq *req, char *const *seg, size_t nseg, bool *ret_path,
    int *ret_err)
{
	const char *params[4];

	*ret_path = false;
	*ret_err = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int r =
		    match(routes[i].pattern, seg, nseg, params, &req->greedy);

		if (r < 0) {
			*ret_err = r;
			return NULL;
		}
		if (r == 0)
			continue;
		*ret_path = true;
		if (strcmp(routes[i].method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 &&
		        strcmp(routes[i].method, "GET") == 0)) {
			memcpy(req->param, params, sizeof(params));
			return &routes[i];
		}
	}
	return NULL;
}

/* Starlette's redirect_slashes: 307 to the slash-toggled path if it routes. */
static int
redirect(struct mreq *req, struct mresp *resp, bool *ret_done)
{
	static char slash[] = "";
	char *seg[HTTP_MAX_SEGS], *loc;
	size_t n = req->nseg, len;
	bool path;
	int err;

	*ret_done = false;
	memcpy(seg, req->seg, sizeof(seg));
	if (n > 1 && seg[n - 1][0] == '\0')
		n--;
	else if (n < HTTP_MAX_SEGS)
		seg[n++] = slash;
	else
		return 0;
	if (lookup(req, seg, n, &path, &err) == NULL)
		return err;
	len = strlen(req->raw_path) + strlen(req->raw_query) + 3;
	loc = malloc(len);
	if (loc == NULL)
		return -ENOMEM;
	if (n < req->nseg)
		(void)snprintf(loc, len, "%.*s%s%s",
		    (int)strlen(req->raw_path) - 1, req->raw_path,
		    *req->raw_query ? "?" : "", req->raw_query);
	else
		(void)snprintf(loc, len, "%s/%s%s", req->raw_path,
		    *req->raw_query ? "?" : "", req->raw_query);
	err = http_resp_header(resp, "Location", loc);
	free(loc);
	*ret_done = true;
	return err < 0 ? err : http_resp_empty(resp, 307);
}

static bool
word_in(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = list; *p != '\0';) {
		size_t m = strcspn(p, " ");

		if (m == n && strncmp(p, w, n) == 0)
			return true;
		p += m;
		p += strspn(p, " ");
	}
	return false;
}

static int
check_auth(struct mreq *req, struct mresp *resp)
{
	const char *h = http_header(req, "Authorization");

	if (h == NULL || *h == '\0')
		return routes_answered(http_resp_error(resp, req, 401,
		    "authentication_error", "missing_api_key",
		    "Missing API key: send 'Authorization: Bearer <key>'."));
	if (strncasecmp(h, "Bearer ", 7) != 0 ||
	    strcmp(h + 7, store.api_key) != 0)
		return routes_answered(
		    http_resp_error(resp, req, 401, "authentication_error",
		        "invalid_api_key", "Invalid API key."));
	return 0;
}

static int
check_query(struct mreq *req, struct mresp *resp, const struct route *rt)
{
	const char *lim;
	long long v;

	for (size_t i = 0; i < req->nq; i++)
		if (!word_in(rt->query, req->qk[i])) {
			int r = http_resp_error(resp, req, 422,
			    "invalid_request_error", "unknown_query_parameter",
			    "Unknown query parameter '%s'.", req->qk[i]);

			return routes_answered(r);
		}
	lim = http_query(req, "limit");
	if (lim != NULL &&
	    (util_parse_ll(lim, &v) < 0 || v < 1 ||
	        ((rt->flags & ROUTE_PAGED) && v > ROUTE_MAX_LIMIT)))
		return routes_invalid(req, resp,
		    "limit must be an integer between 1 and %d",
		    ROUTE_MAX_LIMIT);
	if ((rt->flags & ROUTE_SCOPED) && http_query(req, "user_id") == NULL)
		return routes_strict(req, resp, NULL);
	return 0;
}

int
routes_dispatch(struct mreq *req, struct mresp *resp)
{
	const struct route *rt;
	bool path, done;
	int r;

	if (req->nseg == 0)
		return http_resp_noroute(resp);
	store_lock();
	rt = lookup(req, req->seg, req->nseg, &path, &r);
	if (rt == NULL) {
		if (r == 0 && path)
			r = http_resp_raw(resp, 405, "application/json",
			    "{\"detail\":\"Method Not Allowed\"}", 31);
		else if (r == 0) {
			r = redirect(req, resp, &done);
			if (r == 0 && !done)
				r = http_resp_noroute(resp);
		}
		goto out;
	}
	r = check_auth(req, resp);
	if (r == 0)
		r = check_query(req, resp, rt);
	if (r == 0)
		r = rt->cb(req, resp);
out:
	store_unlock();
	return ROUTE_DONE(r);
}

int
routes_param_id(struct mreq *req, struct mresp *resp, int i, long long *ret)
{
	long long v;

	if (util_parse_ll(req->param[i], &v) < 0 || v < 0)
		return routes_invalid(req, resp,
		    "Path parameter '%s' must be an integer", req->param[i]);
	*ret = v;
	return 0;
}

int
routes_not_found(struct mreq *req, struct mresp *resp, const char *what)
{
	int r = http_resp_error(resp, req, 404, "not_found", NULL,
	    "%s not found", what);

	return routes_answered(r);
}

int
routes_invalid(struct mreq *req, struct mresp *resp, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = http_resp_error(resp, req, 422, "invalid_request_error",
	    "validation_error", "%s", msg);
	return routes_answered(r);
}

int
routes_conflict(struct mreq *req, struct mresp *resp, const char *code,
    const char *msg)
{
	int r =
	    http_resp_error(resp, req, 409, "conflict_error", code, "%s", msg);

	return routes_answered(r);
}

int
routes_body(struct mreq *req, struct mresp *resp, bool required)
{
	if (req->json_bad)
		return routes_invalid(req, resp,
		    "Request body is not valid JSON");
	if (req->json == NULL && !required) {
		req->json = cJSON_CreateObject();
		return req->json == NULL ? -ENOMEM : 0;
	}
	if (!cJSON_IsObject(req->json))
		return routes_invalid(req, resp,
		    "Request body must be a JSON object");
	return 0;
}

int
routes_strict(struct mreq *req, struct mresp *resp, const char *user_id)
{
	int r;

	if (user_id != NULL || !store_strict())
		return 0;
	r = http_resp_error(resp, req, 422, "invalid_request_error",
	    "end_user_id_required",
	    "user_id is required: this account has "
	    "require_end_user_id=True. Pass user_id, or set "
	    "require_end_user_id=False in settings to use the account scope.");
	return routes_answered(r);
}

const char *
routes_body_user(const struct mreq *req)
{
	return json_str(req->json, "user_id");
}

int
routes_send(struct mresp *resp, unsigned int status, const cJSON *o)
{
	return http_resp_json(resp, status, store_public(o));
}

int
pager_init(struct pager *pg, struct mreq *req, struct mresp *resp)
{
	const char *lim = http_query(req, "limit");
	const char *sa = http_query(req, "starting_after");

	memset(pg, 0, sizeof(*pg));
	pg->limit = ROUTE_DEF_LIMIT;
	pg->cursor = LLONG_MAX;
	if (lim != NULL && util_parse_ll(lim, &pg->limit) < 0)
		return routes_invalid(req, resp, "limit must be an integer");
	if (sa != NULL && util_parse_ll(sa, &pg->cursor) < 0)
		return routes_invalid(req, resp,
		    "starting_after must be an item id");
	pg->data = cJSON_CreateArray();
	return pg->data == NULL ? -ENOMEM : 0;
}

int
pager_add(struct pager *pg, const cJSON *o)
{
	long long id = json_id(o);
	cJSON *c = NULL;

	if (id >= pg->cursor)
		return 0;
	if (pg->full) {
		pg->has_more = true;
		return 1;
	}
	c = store_public(o);
	if (c == NULL || !cJSON_AddItemToArray(pg->data, c)) {
		cJSON_Delete(c);
		return -ENOMEM;
	}
	pg->last = id;
	if (cJSON_GetArraySize(pg->data) >= pg->limit)
		pg->full = true;
	return 0;
}

int
pager_send(struct pager *pg, struct mresp *resp)
{
	cJSON *env = cJSON_CreateObject();
	int r;

	if (env == NULL) {
		pager_done(pg);
		return -ENOMEM;
	}
	r = json_set(env, "data", pg->data);
	pg->data = NULL;
	r |= json_set_bool(env, "has_more", pg->has_more);
	r |= pg->has_more
	    ? json_set_num(env, "next_starting_after", (double)pg->last)
	    : json_set_null(env, "next_starting_after");
	if (r < 0) {
		cJSON_Delete(env);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, env);
}

void
pager_done(struct pager *pg)
{
	cJSON_Delete(pg->data);
	pg->data = NULL;
}

int
routes_mint_url(cJSON *o, const char *kind, char *url, size_t len)
{
	char tok[25], masked[256];

	util_randhex(tok, 24);
	(void)snprintf(url, len,
	    "https://api.m8tes.ai/api/v1/webhooks/%s/%lld/whk_%s", kind,
	    json_id(o), tok);
	(void)snprintf(masked, sizeof(masked),
	    "https://api.m8tes.ai/api/v1/webhooks/%s/%lld/whk_%.2s****", kind,
	    json_id(o), tok);
	return json_set_str(o, "_webhook_url", url) |
	    json_set_str(o, "webhook_url", masked) |
	    json_set_bool(o, "webhook_enabled", true);
}

int
routes_trigger_url(struct mreq *req, struct mresp *resp, cJSON *obj,
    const char *kind)
{
	char url[256];
	cJSON *o = NULL;
	bool on;
	int r;

	if (strcmp(req->method, "DELETE") == 0) {
		r = json_set_bool(obj, "webhook_enabled", false);
		r |= json_set_null(obj, "webhook_url");
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "_webhook_url");
		return r < 0 ? r : http_resp_empty(resp, 204);
	}
	if (strcmp(req->method, "PATCH") == 0) {
		r = routes_body(req, resp, true);
		if (r == 0 && json_str(obj, "_webhook_url") == NULL)
			r = routes_answered(http_resp_error(resp, req, 400,
			    "invalid_request_error", "webhook_not_minted",
			    "No trigger URL yet: POST the webhook first"));
		if (r != 0)
			return ROUTE_DONE(r);
	}
	o = cJSON_CreateObject();
	if (o == NULL)
		return -ENOMEM;
	if (strcmp(req->method, "POST") == 0) {
		r = routes_mint_url(obj, kind, url, sizeof(url));
		r |= json_set_bool(o, "enabled", true);
		r |= json_set_str(o, "url", url);
	} else {
		on = cJSON_IsTrue(
		    cJSON_GetObjectItemCaseSensitive(req->json, "enabled"));
		r = json_set_bool(obj, "webhook_enabled", on);
		r |= json_set_bool(o, "enabled", on);
		r |= json_set_str(o, "url", json_str(obj, "webhook_url"));
	}
	r |= json_set_now(obj, "updated_at");
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Apps (/apps/): a fixed catalog with per-scope connection state, OAuth and
 * API-key connects, completion, provisioning, connections, tools and app
 * triggers. Connections are kept per (app, user_id) in store.connections.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "routes.h"
#include "store.h"

static const char catalog[] =
    "[{\"name\":\"gmail\",\"display_name\":\"Gmail\",\"category\":\"email\","
    "\"auth_type\":\"composio\"},"
    "{\"name\":\"slack\",\"display_name\":\"Slack\","
    "\"category\":\"communication\",\"auth_type\":\"composio\"},"
    "{\"name\":\"github\",\"display_name\":\"GitHub\","
    "\"category\":\"developer\",\"auth_type\":\"composio\"},"
    "{\"name\":\"notion\",\"display_name\":\"Notion\","
    "\"category\":\"productivity\",\"auth_type\":\"composio\"},"
    "{\"name\":\"stripe\",\"display_name\":\"Stripe\","
    "\"category\":\"payments\",\"auth_type\":\"api_key\"},"
    "{\"name\":\"openai\",\"display_name\":\"OpenAI\",\"category\":\"ai\","
    "\"auth_type\":\"api_key_proxy\"},"
    "{\"name\":\"twilio\",\"display_name\":\"Twilio SMS\","
    "\"category\":\"communication\","
    "\"auth_type\":\"platform_provisioned\"}]";

static cJSON *
app_find(const cJSON *cat, const char *name)
{
	return json_find_str(cat, "name", name);
}

static cJSON *
conn_find(const char *app, const char *uid, bool pending)
{
	cJSON *c = NULL;

	for (c = json_first(store.connections); c != NULL; c = c->next) {
		const char *a = json_str(c, "_app");
		const char *u = json_str(c, "_user_id");

		if (a == NULL || strcmp(a, app) != 0 ||
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c,
		        "_pending")) != pending)
			continue;
		if ((u == NULL && uid == NULL) ||
		    (u != NULL && uid != NULL && strcmp(u, uid) == 0))
			return c;
	}
	return NULL;
}

static cJSON *
conn_new(const char *app, const char *uid, bool pending)
{
	char id[32];
	cJSON *c = cJSON_CreateObject();
	int r;

	if (c == NULL)
		return NULL;
	(void)snprintf(id, sizeof(id), "conn_%lld", ++store.seq_conn);
	r = json_set_str(c, "connection_id", id);
	r |= json_set_str(c, "status", "active");
	r |= json_set_str(c, "account_label", uid != NULL ? uid : "account");
	r |= json_set(c, "scopes", json_template("[\"read\",\"write\"]"));
	r |= json_set_now(c, "updated_at");
	r |= json_set_str(c, "_app", app);
	r |= json_set_str(c, "_user_id", uid);
	r |= json_set_bool(c, "_pending", pending);
	if (r < 0 || !cJSON_AddItemToArray(store.connections, c)) {
		cJSON_Delete(c);
		return NULL;
	}
	return c;
}

static cJSON *
envelope(cJSON *data)
{
	cJSON *env = cJSON_CreateObject();

	if (env == NULL || data == NULL) {
		cJSON_Delete(env);
		cJSON_Delete(data);
		return NULL;
	}
	if ((json_set(env, "data", data) |
	        json_set_bool(env, "has_more", false)) < 0) {
		cJSON_Delete(env);
		return NULL;
	}
	return env;
}

int
routes_apps_list(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	cJSON *cat = json_template(catalog), *a;
	int r = 0;

	if (cat == NULL)
		return -ENOMEM;
	for (a = json_first(cat); a != NULL; a = a->next) {
		r |= json_set_bool(a, "connected",
		    conn_find(json_str(a, "name"), uid, false) != NULL);
		r |= json_set_str(a, "logo_url",
		    "https://m8tes.ai/logos/app.png");
	}
	if (r < 0) {
		cJSON_Delete(cat);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, envelope(cat));
}

/* The catalog entry of path parameter 0, or a 404. */
static int
app_lookup(struct mreq *req, struct mresp *resp, cJSON **ret_cat, cJSON **ret)
{
	cJSON *cat = json_template(catalog), *a;

	if (cat == NULL)
		return -ENOMEM;
	a = app_find(cat, req->param[0]);
	if (a == NULL) {
		cJSON_Delete(cat);
		return routes_answered(routes_not_found(req, resp, "App"));
	}
	*ret_cat = cat;
	*ret = a;
	return 0;
}

static int
connect_reply(struct mresp *resp, const char *status, const char *app,
    const char *phone)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL ||
	    (json_set_str(o, "status", status) | json_set_str(o, "app", app) |
	        (phone != NULL ? json_set_str(o, "phone_number", phone) : 0)) <
	        0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

static int
connect_oauth(struct mreq *req, struct mresp *resp, const char *app,
    const char *uid)
{
	const char *redirect = json_str(req->json, "redirect_uri");
	char url[512];
	cJSON *c = NULL, *o = NULL;

	if (redirect == NULL)
		return routes_invalid(req, resp, "redirect_uri is required");
	c = conn_new(app, uid, true);
	if (c == NULL)
		return -ENOMEM;
	(void)snprintf(url, sizeof(url),
	    "https://auth.m8tes.ai/oauth/%s?connection_id=%s", app,
	    json_str(c, "connection_id"));
	o = cJSON_CreateObject();
	if (o == NULL ||
	    (json_set_str(o, "authorization_url", url) |
	        json_copy_key(o, c, "connection_id")) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

static int
connect_complete(struct mreq *req, struct mresp *resp, const char *app,
    const char *uid)
{
	const char *cid = json_str(req->json, "connection_id");
	cJSON *c = conn_find(app, uid, true), *old;

	if (uid == NULL && json_str(req->json, "claim_ticket") == NULL) {
		int r = http_resp_error(resp, req, 400, "invalid_request_error",
		    "claim_ticket_required",
		    "Account-level OAuth completion needs claim_ticket");

		return routes_answered(r);
	}
	if (cid != NULL)
		c = json_find_str(store.connections, "connection_id", cid);
	if (c == NULL)
		return routes_not_found(req, resp, "Connection");
	old = conn_find(app, uid, false);
	if (old != NULL && old != c)
		cJSON_Delete(
		    cJSON_DetachItemViaPointer(store.connections, old));
	if ((json_set_bool(c, "_pending", false) |
	        json_set_now(c, "updated_at")) < 0)
		return -ENOMEM;
	return connect_reply(resp, "connected", app, NULL);
}

int
routes_apps_connect(struct mreq *req, struct mresp *resp)
{
	const char *verb = req->seg[req->nseg - 1], *uid, *auth;
	cJSON *cat = NULL, *a = NULL;
	int r;

	r = routes_body(req, resp, false);
	if (r != 0)
		return ROUTE_DONE(r);
	uid = routes_body_user(req);
	r = routes_strict(req, resp, uid);
	if (r == 0)
		r = app_lookup(req, resp, &cat, &a);
	if (r != 0)
		return ROUTE_DONE(r);
	auth = json_str(a, "auth_type");
	if (strcmp(verb, "connect") == 0)
		r = connect_oauth(req, resp, json_str(a, "name"), uid);
	else if (strcmp(verb, "complete") == 0)
		r = connect_complete(req, resp, json_str(a, "name"), uid);
	else if (strcmp(verb, "api-key") == 0) {
		if (json_str(req->json, "api_key") == NULL)
			r = routes_invalid(req, resp, "api_key is required");
		else if (conn_find(json_str(a, "name"), uid, false) == NULL &&
		    conn_new(json_str(a, "name"), uid, false) == NULL)
			r = -ENOMEM;
		else
			r = connect_reply(resp, "connected",
			    json_str(a, "name"), NULL);
	} else if (strcmp(auth, "platform_provisioned") != 0)
		r = routes_answered(http_resp_error(resp, req, 400,
		    "invalid_request_error", "not_provisionable",
		    "%s is not a platform-provisioned app",
		    json_str(a, "name")));
	else if (conn_find(json_str(a, "name"), uid, false) == NULL &&
	    conn_new(json_str(a, "name"), uid, false) == NULL)
		r = -ENOMEM;
	else
		r = connect_reply(resp, "provisioned", json_str(a, "name"),
		    "+15550100");
	cJSON_Delete(cat);
	return ROUTE_DONE(r);
}

int
routes_apps_connections(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	cJSON *cat, *a, *data, *c = NULL;
	int r = app_lookup(req, resp, &cat, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	data = cJSON_CreateArray();
	if (data != NULL)
		c = conn_find(json_str(a, "name"), uid, false);
	if (c != NULL && !cJSON_AddItemToArray(data, store_public(c))) {
		cJSON_Delete(data);
		data = NULL;
	}
	cJSON_Delete(cat);
	return http_resp_json(resp, 200, envelope(data));
}

int
routes_apps_disconnect(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	cJSON *cat, *a, *c;
	int r = app_lookup(req, resp, &cat, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	while ((c = conn_find(json_str(a, "name"), uid, false)) != NULL)
		cJSON_Delete(cJSON_DetachItemViaPointer(store.connections, c));
	cJSON_Delete(cat);
	return http_resp_empty(resp, 204);
}

int
routes_apps_tools(struct mreq *req, struct mresp *resp)
{
	char buf[1024];
	cJSON *cat, *a, *data;
	const char *n;
	int r = app_lookup(req, resp, &cat, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	n = json_str(a, "name");
	(void)snprintf(buf, sizeof(buf),
	    "[{\"slug\":\"%s_list\",\"name\":\"List items\",\"description\":"
	    "\"Lists recent items\",\"read_only\":true,\"approval_mode\":"
	    "\"never\"},{\"slug\":\"%s_send\",\"name\":\"Send\","
	    "\"description\":"
	    "\"Sends on your behalf\",\"read_only\":false,\"approval_mode\":"
	    "\"always\"},{\"slug\":\"%s_update\",\"name\":\"Update\","
	    "\"description\":\"Changes an item\",\"read_only\":false,"
	    "\"approval_mode\":\"depends_on_input\"}]",
	    n, n, n);
	data = json_template(buf);
	cJSON_Delete(cat);
	return http_resp_json(resp, 200, envelope(data));
}

int
routes_apps_triggers(struct mreq *req, struct mresp *resp)
{
	char buf[512];
	cJSON *cat = NULL, *a = NULL;
	int r = app_lookup(req, resp, &cat, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	(void)snprintf(buf, sizeof(buf),
	    "[{\"slug\":\"%s_new_item\",\"name\":\"New item\",\"description\":"
	    "\"Fires when a new item arrives\",\"config\":{},\"payload\":"
	    "{\"id\":\"string\"}}]",
	    json_str(a, "name"));
	cJSON_Delete(cat);
	return http_resp_json(resp, 200, json_template(buf));
}

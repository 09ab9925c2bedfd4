/*
 * SPDX-License-Identifier: MIT
 *
 * Teammates (/agents/): CRUD with archive-on-delete, enable/disable,
 * system prompt, and the inbound triggers of §9.3 (webhook URL shown once,
 * then masked; an idempotent email inbox address). user_id scoping per §11.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "routes.h"
#include "store.h"
#include "util.h"

static const char agent_template[] =
    "{\"id\":0,\"name\":\"Untitled teammate\",\"instructions\":null,"
    "\"tools\":[],\"role\":null,\"goals\":null,\"user_id\":null,"
    "\"metadata\":null,\"allowed_senders\":null,"
    "\"default_permission_mode\":\"autonomous\",\"status\":\"enabled\","
    "\"created_at\":null,\"updated_at\":null,\"template_slug\":null,"
    "\"visibility\":\"personal\",\"inbound_email_enabled\":false,"
    "\"email_address\":null,\"inbound_imessage_enabled\":false,"
    "\"imessage_chat_guid\":null,\"bridge_id\":null,"
    "\"allowed_imessage_senders\":null,\"inbound_slack_enabled\":false,"
    "\"slack_slug\":null,\"slack_channels\":null,"
    "\"allowed_slack_senders\":null,\"fetchmail_enabled\":false,"
    "\"fetchmail_address\":null,\"webhook_enabled\":false,"
    "\"webhook_url\":null,\"model\":null,\"effort\":null,"
    "\"enable_memory\":true,\"enable_history\":true,"
    "\"enable_task_setup_tools\":true,\"enable_feedback\":true,"
    "\"enable_self_improvement\":false,\"prompt_profile\":\"platform\","
    "\"disabled_builtin_tools\":[],\"display_order\":null,"
    "\"last_active_at\":null,\"active_run_count\":0,"
    "\"active_run_id\":null}";

/* Fields a create or update may set (update adds the last two). */
static const char *const agent_fields[] = {
    "name",
    "tools",
    "instructions",
    "role",
    "goals",
    "enable_memory",
    "enable_history",
    "enable_task_setup_tools",
    "enable_feedback",
    "enable_self_improvement",
    "prompt_profile",
    "disabled_builtin_tools",
    "metadata",
    "allowed_senders",
    "imessage_chat_guid",
    "bridge_id",
    "allowed_imessage_senders",
    "slack_slug",
    "slack_channels",
    "allowed_slack_senders",
    "default_permission_mode",
    "model",
    "effort",
    "inbound_imessage_enabled",
    "inbound_slack_enabled",
    "display_order",
    "visibility",
    NULL,
};

/* Apply body fields to o; JSON null restores the template's default. */
static int
overlay(cJSON *o, const cJSON *body, bool update)
{
	cJSON *defaults = json_template(agent_template);
	int r = 0;

	if (defaults == NULL)
		return -ENOMEM;
	for (size_t i = 0; agent_fields[i] != NULL; i++) {
		const char *k = agent_fields[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, k);

		if (v == NULL)
			continue;
		if (!update &&
		    (strcmp(k, "display_order") == 0 ||
		        strcmp(k, "visibility") == 0))
			continue;
		if (cJSON_IsNull(v))
			r |= json_copy_key(o, defaults, k);
		else
			r |= json_set(o, k, cJSON_Duplicate(v, 1));
	}
	cJSON_Delete(defaults);
	return r;
}

static int
agent_lookup(struct mreq *req, struct mresp *resp, cJSON **ret)
{
	long long id = 0;
	cJSON *a = NULL;
	int r;

	r = routes_param_id(req, resp, 0, &id);
	if (r != 0)
		return r;
	a = json_find_id(store.agents, id);
	if (a == NULL || !json_scope_eq(a, http_query(req, "user_id")))
		return routes_answered(routes_not_found(req, resp, "Teammate"));
	*ret = a;
	return 0;
}

static int
check_types(struct mreq *req, struct mresp *resp)
{
	static const char *const arrays[] = {"tools", "allowed_senders",
	    "disabled_builtin_tools", "slack_channels", NULL};
	const cJSON *v;

	for (size_t i = 0; arrays[i] != NULL; i++) {
		v = cJSON_GetObjectItemCaseSensitive(req->json, arrays[i]);
		if (v != NULL && !cJSON_IsArray(v) && !cJSON_IsNull(v))
			return routes_invalid(req, resp, "%s must be a list",
			    arrays[i]);
	}
	v = cJSON_GetObjectItemCaseSensitive(req->json, "name");
	if (v != NULL && !cJSON_IsString(v))
		return routes_invalid(req, resp, "name must be a string");
	return 0;
}

static int
enable_inbox(cJSON *a)
{
	char addr[96], rnd[9];

	if (json_str(a, "email_address") != NULL)
		return json_set_bool(a, "inbound_email_enabled", true);
	util_randhex(rnd, 8);
	(void)snprintf(addr, sizeof(addr),
	    "mate-%lld-%s@notifications.m8tes.ai", json_id(a), rnd);
	return json_set_str(a, "email_address", addr) |
	    json_set_bool(a, "inbound_email_enabled", true);
}

int
routes_agents_create(struct mreq *req, struct mresp *resp)
{
	static const char *const persona[] = {"name", "instructions", "role",
	    "goals", "tools", NULL};
	const char *uid;
	char url[256];
	cJSON *a = NULL, *out = NULL;
	int r;

	r = routes_body(req, resp, true);
	if (r == 0)
		r = check_types(req, resp);
	uid = routes_body_user(req);
	if (r == 0)
		r = routes_strict(req, resp, uid);
	if (r != 0)
		return ROUTE_DONE(r);
	if (json_str(req->json, "from_template") != NULL)
		for (size_t i = 0; persona[i] != NULL; i++)
			if (json_has(req->json, persona[i])) {
				r = http_resp_error(resp, req, 400,
				    "invalid_request_error",
				    "from_template_conflict",
				    "from_template excludes '%s'", persona[i]);
				return ROUTE_DONE(r);
			}
	a = json_template(agent_template);
	if (a == NULL)
		return -ENOMEM;
	r = json_set_num(a, "id", (double)++store.seq_agent);
	r |= json_set_str(a, "user_id", uid);
	r |= json_set_now(a, "created_at");
	r |= json_set_now(a, "updated_at");
	r |= overlay(a, req->json, false);
	r |= json_copy_key(a, req->json, "from_template");
	if (json_str(req->json, "from_template") != NULL)
		r |= json_set_str(a, "template_slug",
		         json_str(req->json, "from_template")) |
		    json_set_str(a, "name",
		        json_str(req->json, "from_template"));
	cJSON_DeleteItemFromObjectCaseSensitive(a, "from_template");
	if (cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(req->json, "email_inbox")))
		r |= enable_inbox(a);
	url[0] = '\0';
	if (cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(req->json, "webhook")))
		r |= routes_mint_url(a, "mates", url, sizeof(url));
	if (r < 0 || !cJSON_AddItemToArray(store.agents, a)) {
		cJSON_Delete(a);
		return -ENOMEM;
	}
	out = store_public(a);
	/* The live trigger URL is shown once, in this answer. */
	if (out != NULL && url[0] != '\0' &&
	    json_set_str(out, "webhook_url", url) < 0) {
		cJSON_Delete(out);
		out = NULL;
	}
	return http_resp_json(resp, 201, out);
}

int
routes_agents_list(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	const char *arch = http_query(req, "include_archived");
	bool all = arch != NULL && strcmp(arch, "true") == 0;
	struct pager pg;
	int r;

	r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (cJSON *a = json_last(store.agents); a != NULL;
	     a = json_prev(store.agents, a)) {
		const char *st = json_str(a, "status");

		if (!json_scope_eq(a, uid) ||
		    (!all && st != NULL && strcmp(st, "archived") == 0))
			continue;
		r = pager_add(&pg, a);
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
routes_agents_get(struct mreq *req, struct mresp *resp)
{
	cJSON *a = NULL;
	int r = agent_lookup(req, resp, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_send(resp, 200, a);
}

int
routes_agents_update(struct mreq *req, struct mresp *resp)
{
	cJSON *a = NULL;
	int r;

	r = agent_lookup(req, resp, &a);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = check_types(req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	r = overlay(a, req->json, true);
	r |= json_set_now(a, "updated_at");
	if (r < 0)
		return r;
	return routes_send(resp, 200, a);
}

int
routes_agents_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *a = NULL;
	int r = agent_lookup(req, resp, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	r = json_set_str(a, "status", "archived");
	r |= json_set_now(a, "updated_at");
	return r < 0 ? r : http_resp_empty(resp, 204);
}

int
routes_agents_prompt(struct mreq *req, struct mresp *resp)
{
	char prompt[1024];
	cJSON *a = NULL, *o = NULL;
	int r = agent_lookup(req, resp, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	(void)snprintf(prompt, sizeof(prompt),
	    "You are %s, a teammate on m8tes.\n\n%s",
	    json_str(a, "name") ? json_str(a, "name") : "",
	    json_str(a, "instructions") ? json_str(a, "instructions") : "");
	o = cJSON_CreateObject();
	if (o == NULL)
		return -ENOMEM;
	r = json_copy_key(o, a, "prompt_profile");
	r |= json_set_str(o, "profile_description",
	    "The platform prompt with memory, history and task tools.");
	r |= json_set_str(o, "system_prompt", prompt);
	r |= json_set_num(o, "characters", (double)strlen(prompt));
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

int
routes_agents_state(struct mreq *req, struct mresp *resp)
{
	const char *verb = req->seg[2];
	cJSON *a = NULL;
	int r = agent_lookup(req, resp, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	r = json_set_str(a, "status",
	    strcmp(verb, "disable") == 0 ? "disabled" : "enabled");
	r |= json_set_now(a, "updated_at");
	return r < 0 ? r : routes_send(resp, 200, a);
}

int
routes_agents_webhook(struct mreq *req, struct mresp *resp)
{
	cJSON *a = NULL;
	int r = agent_lookup(req, resp, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_trigger_url(req, resp, a, "mates");
}

int
routes_agents_inbox(struct mreq *req, struct mresp *resp)
{
	cJSON *a = NULL, *o = NULL;
	int r = agent_lookup(req, resp, &a);

	if (r != 0)
		return ROUTE_DONE(r);
	if (strcmp(req->method, "DELETE") == 0) {
		r = json_set_bool(a, "inbound_email_enabled", false);
		r |= json_set_null(a, "email_address");
		return r < 0 ? r : http_resp_empty(resp, 204);
	}
	r = enable_inbox(a);
	o = cJSON_CreateObject();
	if (o == NULL)
		return -ENOMEM;
	r |= json_set_bool(o, "enabled", true);
	r |= json_set_str(o, "address", json_str(a, "email_address"));
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

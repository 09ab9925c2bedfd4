/*
 * SPDX-License-Identifier: MIT
 *
 * Human-in-the-loop routes of a run (§7): the permission requests list,
 * approve/deny with the refusal codes gate_not_found, gate_cancelled,
 * gate_resolved_otherwise (404) and run_not_active (409), answers to
 * AskUserQuestion (409 unless awaiting, auto_continued), and switching the
 * permission mode. Gate state changes themselves live in runs.c.
 */
#include <errno.h>
#include <string.h>

#include "json.h"
#include "routes.h"
#include "runs.h"
#include "store.h"

int
routes_runs_mode(struct mreq *req, struct mresp *resp)
{
	const char *mode;
	struct run *run = NULL;
	cJSON *p = NULL, *o = NULL;
	int r;

	r = routes_run_lookup(req, resp, false, &run);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	mode = json_str(req->json, "permission_mode");
	if (mode == NULL ||
	    (strcmp(mode, "autonomous") != 0 && strcmp(mode, "approval") != 0 &&
	        strcmp(mode, "plan") != 0))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "permission_mode must be autonomous, approval or plan"));
	r = json_set_str(run->obj, "permission_mode", mode);
	/* Autonomous auto-approves pending tool uses, not questions. */
	for (p = json_first(run->perms); p != NULL; p = p->next) {
		const char *st = json_str(p, "status");
		const char *tool = json_str(p, "tool_name");

		if (strcmp(mode, "autonomous") == 0 && st != NULL &&
		    strcmp(st, "pending") == 0 && tool != NULL &&
		    strcmp(tool, "AskUserQuestion") != 0) {
			r |= json_set_bool(p, "auto_resolved", true);
			r |= runs_resolve(run, p, "allowed", false);
		}
	}
	o = cJSON_CreateObject();
	if (o == NULL || r < 0 ||
	    json_set_str(o, "permission_mode", mode) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

int
routes_runs_permissions(struct mreq *req, struct mresp *resp)
{
	struct run *run = NULL;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	return http_resp_json(resp, 200, cJSON_Duplicate(run->perms, 1));
}

static int
gate_refusal(struct mreq *req, struct mresp *resp, unsigned int status,
    const char *code, const char *msg)
{
	int r = http_resp_error(resp, req, status,
	    status == 409 ? "conflict_error" : "not_found", code, "%s", msg);

	return routes_answered(r);
}

/* Remember an allowed tool as a standing policy (remember:true). */
static int
remember_policy(const struct run *run, const cJSON *perm)
{
	const char *uid = json_str(run->obj, "user_id");
	const char *tool = json_str(perm, "tool_name");
	cJSON *p = NULL, *it = NULL;
	int r;

	for (it = json_first(store.policies); it != NULL; it = it->next)
		if (json_scope_eq(it, uid) && tool != NULL &&
		    json_str(it, "tool_name") != NULL &&
		    strcmp(json_str(it, "tool_name"), tool) == 0)
			return 0;
	p = cJSON_CreateObject();
	if (p == NULL)
		return -ENOMEM;
	r = json_set_num(p, "id", (double)++store.seq_policy);
	r |= json_set_str(p, "tool_name", tool);
	r |= json_set_str(p, "user_id", uid);
	r |= json_set_now(p, "created_at");
	r |= json_set_str(p, "source", "run_approval");
	if (r < 0 || !cJSON_AddItemToArray(store.policies, p)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	return 0;
}

/* The request_id and the resulting status of an approve body. */
static int
approve_body(struct mreq *req, struct mresp *resp, const char **ret_rid,
    const char **ret_want)
{
	const char *rid = json_str(req->json, "request_id");
	const char *decision = json_str(req->json, "decision");

	if (rid == NULL || decision == NULL ||
	    (strcmp(decision, "allow") != 0 && strcmp(decision, "deny") != 0))
		return routes_answered(routes_invalid(req, resp,
		    "request_id and decision (allow|deny) are required"));
	*ret_rid = rid;
	*ret_want = strcmp(decision, "allow") == 0 ? "allowed" : "denied";
	return 0;
}

/*
 * The refusals of §7 for deciding perm, checked in this order; a repeat of
 * the decision already taken answers 200 with the request. 0 when the
 * decision may be applied, ROUTE_ANSWERED (or an error) otherwise.
 */
static int
approve_refusal(struct mreq *req, struct mresp *resp, const struct run *run,
    const cJSON *perm, const char *want)
{
	const char *st = json_str(perm, "status");

	if (st != NULL && strcmp(st, "cancelled") == 0)
		return gate_refusal(req, resp, 404, "gate_cancelled",
		    "The permission request was cancelled");
	if (st != NULL && strcmp(st, want) == 0)
		return routes_answered(routes_send(resp, 200, perm));
	if (st != NULL && strcmp(st, "pending") != 0)
		return gate_refusal(req, resp, 404, "gate_resolved_otherwise",
		    "The permission request was already resolved differently");
	if (runs_terminal(run))
		return gate_refusal(req, resp, 409, "run_not_active",
		    "Run is not active");
	return 0;
}

int
routes_runs_approve(struct mreq *req, struct mresp *resp)
{
	const char *rid = NULL, *want = NULL;
	struct run *run = NULL;
	cJSON *perm;
	bool remember;
	int r;

	r = routes_run_lookup(req, resp, false, &run);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = approve_body(req, resp, &rid, &want);
	if (r != 0)
		return ROUTE_DONE(r);
	perm = json_find_str(run->perms, "request_id", rid);
	if (perm == NULL)
		return ROUTE_DONE(gate_refusal(req, resp, 404, "gate_not_found",
		    "No such permission request"));
	r = approve_refusal(req, resp, run, perm, want);
	if (r != 0)
		return ROUTE_DONE(r);
	remember = cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(req->json, "remember"));
	if (!json_nullish(req->json, "reason"))
		r = json_copy_key(perm, req->json, "reason");
	r |= runs_resolve(run, perm, want, remember);
	if (remember && strcmp(want, "allowed") == 0)
		r |= remember_policy(run, perm);
	return r < 0 ? r : routes_send(resp, 200, perm);
}

/* The pending question (request_id rid, or any when NULL), or NULL. */
static cJSON *
find_question(const struct run *run, const char *rid)
{
	cJSON *p, *found = NULL;

	for (p = json_first(run->perms); p != NULL; p = p->next) {
		const char *st = json_str(p, "status");
		const char *tool = json_str(p, "tool_name");
		const char *id = json_str(p, "request_id");

		if (st != NULL && strcmp(st, "pending") == 0 && tool != NULL &&
		    strcmp(tool, "AskUserQuestion") == 0 &&
		    (rid == NULL || (id != NULL && strcmp(id, rid) == 0)))
			found = p;
	}
	return found;
}

/* 409 unless the run is waiting for input. */
static int
answer_refusal(struct mreq *req, struct mresp *resp, const struct run *run)
{
	if (runs_terminal(run))
		return gate_refusal(req, resp, 409, "run_not_active",
		    "Run is not active");
	if (strcmp(runs_status(run), "awaiting_approval") != 0)
		return gate_refusal(req, resp, 409, "run_not_awaiting_input",
		    "Run is not waiting for an answer");
	return 0;
}

int
routes_runs_answer(struct mreq *req, struct mresp *resp)
{
	struct run *run = NULL;
	cJSON *perm, *o;
	int r;

	r = routes_run_lookup(req, resp, false, &run);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0 &&
	    !cJSON_IsObject(
	        cJSON_GetObjectItemCaseSensitive(req->json, "answers")))
		r = routes_invalid(req, resp, "answers must be an object");
	if (r == 0)
		r = answer_refusal(req, resp, run);
	if (r != 0)
		return ROUTE_DONE(r);
	perm = find_question(run, json_str(req->json, "request_id"));
	if (perm == NULL)
		return ROUTE_DONE(gate_refusal(req, resp, 404, "gate_not_found",
		    "No pending question"));
	if (run->m.autocontinue) {
		/* The platform answered on its own: the run goes on anyway. */
		r = json_set_bool(perm, "auto_resolved", true);
		r |= runs_resolve(run, perm, "answered", false);
		if (r < 0)
			return r;
		return ROUTE_DONE(gate_refusal(req, resp, 409, "auto_continued",
		    "The platform already answered and continued the run"));
	}
	r = json_copy_key(perm, req->json, "answers");
	r |= runs_resolve(run, perm, "answered", false);
	o = json_template("{\"status\":\"ok\",\"resumed\":true}");
	if (r < 0) {
		cJSON_Delete(o);
		return r;
	}
	return http_resp_json(resp, 200, o);
}

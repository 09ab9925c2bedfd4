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
	struct run *run;
	cJSON *p, *o;
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
		    "permission_mode "
		    "must be autonomous, approval or plan"));
	r = json_set_str(run->obj, "permission_mode", mode);
	/* Autonomous auto-approves pending tool uses, not questions. */
	cJSON_ArrayForEach(p, run->perms)
	{
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
	struct run *run;
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

	return r < 0 ? r : ROUTE_ANSWERED;
}

/* Remember an allowed tool as a standing policy (remember:true). */
static int
remember_policy(const struct run *run, const cJSON *perm)
{
	const char *uid = json_str(run->obj, "user_id");
	const char *tool = json_str(perm, "tool_name");
	cJSON *p, *it;
	int r;

	cJSON_ArrayForEach(it, store.policies) if (json_scope_eq(it, uid) &&
	    tool != NULL && json_str(it, "tool_name") != NULL &&
	    strcmp(json_str(it, "tool_name"), tool) == 0) return 0;
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

int
routes_runs_approve(struct mreq *req, struct mresp *resp)
{
	const char *rid, *decision, *st, *want;
	struct run *run;
	cJSON *perm;
	bool remember;
	int r;

	r = routes_run_lookup(req, resp, false, &run);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	rid = json_str(req->json, "request_id");
	decision = json_str(req->json, "decision");
	if (rid == NULL || decision == NULL ||
	    (strcmp(decision, "allow") != 0 && strcmp(decision, "deny") != 0))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "request_id and "
		    "decision (allow|deny) are required"));
	remember = cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(req->json, "remember"));
	want = strcmp(decision, "allow") == 0 ? "allowed" : "denied";
	perm = json_find_str(run->perms, "request_id", rid);
	if (perm == NULL)
		return ROUTE_DONE(gate_refusal(req, resp, 404, "gate_not_found",
		    "No such permission request"));
	st = json_str(perm, "status");
	if (st != NULL && strcmp(st, "cancelled") == 0)
		return ROUTE_DONE(gate_refusal(req, resp, 404, "gate_cancelled",
		    "The permission request was cancelled"));
	if (st != NULL && strcmp(st, "pending") != 0) {
		if (strcmp(st, want) == 0)
			return routes_send(resp, 200, perm);
		return ROUTE_DONE(
		    gate_refusal(req, resp, 404, "gate_resolved_otherwise",
		        "The permission request was "
		        "already resolved differently"));
	}
	if (runs_terminal(run))
		return ROUTE_DONE(gate_refusal(req, resp, 409, "run_not_active",
		    "Run is not active"));
	if (!json_nullish(req->json, "reason"))
		r = json_copy_key(perm, req->json, "reason");
	r |= runs_resolve(run, perm, want, remember);
	if (remember && strcmp(want, "allowed") == 0)
		r |= remember_policy(run, perm);
	return r < 0 ? r : routes_send(resp, 200, perm);
}

int
routes_runs_answer(struct mreq *req, struct mresp *resp)
{
	const char *rid;
	struct run *run;
	cJSON *perm = NULL, *p, *o;
	int r;

	r = routes_run_lookup(req, resp, false, &run);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	if (!cJSON_IsObject(
	        cJSON_GetObjectItemCaseSensitive(req->json, "answers")))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "answers must be "
		    "an object"));
	if (runs_terminal(run))
		return ROUTE_DONE(gate_refusal(req, resp, 409, "run_not_active",
		    "Run is not active"));
	if (strcmp(runs_status(run), "awaiting_approval") != 0)
		return ROUTE_DONE(
		    gate_refusal(req, resp, 409, "run_not_awaiting_input",
		        "Run is not waiting for an "
		        "answer"));
	rid = json_str(req->json, "request_id");
	cJSON_ArrayForEach(p, run->perms)
	{
		const char *st = json_str(p, "status");
		const char *tool = json_str(p, "tool_name");

		if (st == NULL || strcmp(st, "pending") != 0 || tool == NULL ||
		    strcmp(tool, "AskUserQuestion") != 0)
			continue;
		if (rid == NULL || strcmp(json_str(p, "request_id"), rid) == 0)
			perm = p;
	}
	if (perm == NULL)
		return ROUTE_DONE(gate_refusal(req, resp, 404, "gate_not_found",
		    "No pending question"));
	if (run->m.autocontinue) {
		r = json_set_bool(perm, "auto_resolved", true);
		r |= runs_resolve(run, perm, "answered", false);
		return r < 0
		    ? r
		    : ROUTE_DONE(gate_refusal(req, resp, 409, "auto_continued",
		          "The platform already answered and "
		          "continued the run"));
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

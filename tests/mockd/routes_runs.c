/*
 * SPDX-License-Identifier: MIT
 *
 * Runs (/runs/): create (JSON or SSE, with Idempotency-Key replay), the
 * polled GET that advances a run, list/check, reply, cancel, retry,
 * permission mode, approvals and answers with the refusal codes of §7,
 * messages, outcome, and run files. The state machine is in runs.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "routes.h"
#include "runs.h"
#include "sse.h"
#include "store.h"
#include "util.h"

/* An id in a body: an integer or a numeric string. */
static int
body_id(const cJSON *o, const char *k, long long *ret)
{
	const char *s = json_str(o, k);

	if (s != NULL)
		return util_parse_ll(s, ret);
	return json_int(o, k, ret);
}

int
routes_run_lookup(struct mreq *req, struct mresp *resp, bool scoped,
    struct run **ret)
{
	struct run *run = NULL;
	long long id = 0;
	int r;

	r = routes_param_id(req, resp, 0, &id);
	if (r != 0)
		return r;
	run = runs_find(id);
	if (run == NULL ||
	    (scoped && !json_scope_eq(run->obj, http_query(req, "user_id"))))
		return routes_answered(routes_not_found(req, resp, "Run"));
	*ret = run;
	return 0;
}

/* How respond() answers. */
enum answer {
	ANSWER_JSON,   /* the Run object */
	ANSWER_ORIGIN, /* the stream of the turn this request started */
	ANSWER_JOIN,   /* a stream joining a turn already under way */
};

/*
 * Answer with the run (plus the fields of extra, taken), as JSON, or as the
 * event stream of the current turn replayed from its first event.
 */
static int
respond(struct mresp *resp, struct run *run, enum answer how,
    unsigned int status, cJSON *extra)
{
	struct sse_stream *s;
	char key[64];
	cJSON *o = NULL, *it = NULL;
	int r;

	if (how != ANSWER_JSON) {
		cJSON_Delete(extra);
		s = sse_new(run, run->ev_base, how == ANSWER_ORIGIN);
		if (s == NULL)
			return -ENOMEM;
		resp->sse = s;
		resp->status = 200;
		resp->ctype = "text/event-stream; charset=utf-8";
		r = http_resp_header(resp, "Cache-Control", "no-cache");
		if (r == 0)
			r = http_resp_header(resp, "X-Accel-Buffering", "no");
		return r;
	}
	o = store_public(run->obj);
	while (o != NULL && extra != NULL && extra->child != NULL) {
		it = cJSON_DetachItemViaPointer(extra, extra->child);
		(void)snprintf(key, sizeof(key), "%s", it->string);
		if (json_set(o, key, it) < 0) {
			cJSON_Delete(o);
			o = NULL;
		}
	}
	cJSON_Delete(extra);
	return http_resp_json(resp, status, o);
}

/* A one- or two-field object for respond(); NULL on ENOMEM. */
static cJSON *
extra2(const char *k1, const char *v1, const char *k2, const char *v2)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || json_set_str(o, k1, v1) < 0 ||
	    (k2 != NULL && json_set_str(o, k2, v2) < 0)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int
replay(struct mreq *req, struct mresp *resp, bool *ret_done)
{
	const char *key = http_header(req, "Idempotency-Key");
	struct run *run = NULL;
	long long id = 0;
	int r;

	*ret_done = false;
	if (key == NULL || json_int(store.idem, key, &id) < 0)
		return 0;
	run = runs_find(id);
	if (run == NULL)
		return 0;
	*ret_done = true;
	r = routes_send(resp, 200, run->obj);
	if (r == 0)
		r = http_resp_header(resp, "Idempotent-Replay", "true");
	return r;
}

static int
remember_key(const struct mreq *req, const struct run *run)
{
	const char *key = http_header(req, "Idempotency-Key");

	if (key == NULL)
		return 0;
	return json_set_num(store.idem, key, (double)run->id);
}

/* 402 when the end-user profile's run_limit is used up (0 blocks). */
static int
check_limit(struct mreq *req, struct mresp *resp, const char *uid)
{
	const cJSON *u;
	long long limit, used = 0;
	struct run *run = NULL;
	cJSON *o, *e, *d;
	int r;

	if (uid == NULL)
		return 0;
	u = json_find_str(store.users, "user_id", uid);
	if (u == NULL || json_int(u, "run_limit", &limit) < 0)
		return 0;
	TAILQ_FOREACH(run, &store.runs, entry)
		if (json_scope_eq(run->obj, uid))
			used++;
	if (used < limit)
		return 0;
	r = http_resp_error(resp, req, 402, "billing_error",
	    "RUN_LIMIT_REACHED",
	    "Run limit reached (%lld/%lld) for end-user %s.", used, limit, uid);
	if (r < 0)
		return r;
	/* Add the billing context to the envelope's details. */
	o = cJSON_ParseWithLength(resp->body, resp->len);
	e = cJSON_GetObjectItemCaseSensitive(o, "error");
	d = cJSON_GetObjectItemCaseSensitive(e, "details");
	if (d == NULL ||
	    (json_set_num(d, "runs_used", (double)used) |
	        json_set_num(d, "runs_limit", (double)limit)) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	r = http_resp_json(resp, 402, o);
	return routes_answered(r);
}

/*
 * Resolve the effective user_id: the body's, or the scope of the teammate
 * or task the run is started against. A mismatch is a 404.
 */
static int
resolve_scope(struct mreq *req, struct mresp *resp, const cJSON *owner,
    const char *what, const char **uid)
{
	if (owner == NULL)
		return 0;
	if (*uid == NULL) {
		*uid = json_str(owner, "user_id");
		return 0;
	}
	if (!json_scope_eq(owner, *uid))
		return routes_not_found(req, resp, what);
	return 0;
}

static int
fill_run(struct run *run, const cJSON *body, const cJSON *agent,
    const cJSON *task, const char *uid)
{
	static const char *const copied[] = {"metadata", "permission_mode",
	    "human_in_the_loop", NULL};
	int r = 0;

	if (agent != NULL)
		r |= json_set_num(run->obj, "teammate_id",
		    (double)json_id(agent));
	if (task != NULL) {
		r |= json_set_num(run->obj, "task_id", (double)json_id(task));
		r |=
		    json_set_str(run->obj, "task_name", json_str(task, "name"));
		r |= json_set_str(run->obj, "run_mode", "task");
	} else
		r |= json_set_str(run->obj, "run_mode", "chat");
	r |= json_set_str(run->obj, "user_id", uid);
	for (size_t i = 0; copied[i] != NULL; i++)
		if (!json_nullish(body, copied[i]))
			r |= json_copy_key(run->obj, body, copied[i]);
	if (json_str(body, "name") != NULL)
		r |= json_set_str(run->obj, "description",
		    json_str(body, "name"));
	return r;
}

/*
 * The teammate a run starts against (the task's, or the body's
 * teammate_id) and the run's effective user_id, with the scope, strict
 * mode and end-user limit checks.
 */
static int
start_owner(struct mreq *req, struct mresp *resp, const cJSON *task,
    const cJSON **ret_agent, const char **ret_uid)
{
	const char *uid = routes_body_user(req);
	const cJSON *agent = NULL;
	long long tid = -1;
	int r = 0;

	if (task != NULL) {
		r = resolve_scope(req, resp, task, "Task", &uid);
		if (json_int(task, "teammate_id", &tid) == 0)
			agent = json_find_id(store.agents, tid);
	} else if (!json_nullish(req->json, "teammate_id")) {
		if (body_id(req->json, "teammate_id", &tid) < 0)
			return routes_invalid(req, resp,
			    "teammate_id must be an integer");
		agent = json_find_id(store.agents, tid);
		if (agent == NULL)
			return routes_not_found(req, resp, "Teammate");
		r = resolve_scope(req, resp, agent, "Teammate", &uid);
	}
	if (r == 0)
		r = routes_strict(req, resp, uid);
	if (r == 0)
		r = check_limit(req, resp, uid);
	if (r == 0) {
		*ret_agent = agent;
		*ret_uid = uid;
	}
	return r;
}

/* The per-run inbox of email_inbox:true, shown in the create answer. */
static int
inbox_extra(const struct mreq *req, const struct run *run, cJSON **ret)
{
	char addr[96], rnd[9];

	*ret = NULL;
	if (!cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(req->json, "email_inbox")))
		return 0;
	util_randhex(rnd, 8);
	(void)snprintf(addr, sizeof(addr), "run-%lld-%s@notifications.m8tes.ai",
	    run->id, rnd);
	*ret = extra2("email_address", addr, NULL, NULL);
	return *ret == NULL ? -ENOMEM : 0;
}

int
routes_runs_start(struct mreq *req, struct mresp *resp, cJSON *task)
{
	const cJSON *agent = NULL, *sv;
	const char *message, *uid = NULL;
	cJSON *extra = NULL;
	struct run *run = NULL;
	bool done, stream;
	int r;

	r = routes_body(req, resp, task == NULL);
	if (r != 0)
		return ROUTE_DONE(r);
	r = replay(req, resp, &done);
	if (r < 0 || done)
		return r;
	sv = cJSON_GetObjectItemCaseSensitive(req->json, "stream");
	stream = sv == NULL || cJSON_IsTrue(sv);
	message = task != NULL ? json_str(task, "instructions")
	                       : json_str(req->json, "message");
	if (message == NULL || (task == NULL && *message == '\0'))
		return ROUTE_DONE(
		    routes_invalid(req, resp, "message is required"));
	r = start_owner(req, resp, task, &agent, &uid);
	if (r != 0)
		return ROUTE_DONE(r);
	run = runs_new();
	if (run == NULL)
		return -ENOMEM;
	r = fill_run(run, req->json, agent, task, uid);
	r |= remember_key(req, run);
	if (r == 0)
		r = runs_turn(run, message, stream);
	if (r == 0)
		r = inbox_extra(req, run, &extra);
	if (r < 0)
		return r;
	return respond(resp, run, stream ? ANSWER_ORIGIN : ANSWER_JSON,
	    stream ? 200 : 201, extra);
}

int
routes_runs_create(struct mreq *req, struct mresp *resp)
{
	return routes_runs_start(req, resp, NULL);
}

/*
 * Minimal multipart/form-data reader: the "payload" part becomes the JSON
 * body; every "files" part must have a filename and a content type.
 */
static int
multipart(struct mreq *req, struct mresp *resp)
{
	const char *ct = http_header(req, "Content-Type"), *b;
	char delim[256];
	const uint8_t *p, *end = req->body + req->body_len;
	size_t dl, nfiles = 0;

	b = ct != NULL ? strstr(ct, "boundary=") : NULL;
	if (b == NULL)
		return routes_invalid(req, resp,
		    "Expected multipart/form-data");
	b += 9;
	(void)snprintf(delim, sizeof(delim), "--%.*s",
	    (int)strcspn(b + (*b == '"'), "\";"), b + (*b == '"'));
	dl = strlen(delim);
	p = memmem(req->body, req->body_len, delim, dl);
	while (p != NULL && p + dl + 2 <= end && memcmp(p + dl, "--", 2) != 0) {
		const uint8_t *h = p + dl + 2, *hend, *next, *data;
		char hdr[1024];
		size_t hl;

		hend = memmem(h, (size_t)(end - h), "\r\n\r\n", 4);
		if (hend == NULL)
			break;
		data = hend + 4;
		next = memmem(data, (size_t)(end - data), delim, dl);
		if (next == NULL)
			break;
		hl = (size_t)(hend - h) < sizeof(hdr) - 1 ? (size_t)(hend - h)
		                                          : sizeof(hdr) - 1;
		memcpy(hdr, h, hl);
		hdr[hl] = '\0';
		if (strstr(hdr, "name=\"payload\"") != NULL) {
			cJSON_Delete(req->json);
			req->json = cJSON_ParseWithLength((const char *)data,
			    (size_t)(next - data) - 2);
			req->json_bad = req->json == NULL;
		} else if (strstr(hdr, "name=\"files\"") != NULL) {
			if (strcasestr(hdr, "Content-Type:") == NULL) {
				int r = http_resp_error(resp, req, 400,
				    "invalid_request_error", "invalid_file",
				    "Invalid type: None");

				return routes_answered(r);
			}
			nfiles++;
		}
		p = next;
	}
	if (req->json == NULL && !req->json_bad)
		return routes_invalid(req, resp,
		    "Missing form field 'payload'");
	if (nfiles == 0)
		return routes_invalid(req, resp,
		    "At least one file is required in 'files'");
	return 0;
}

int
routes_runs_create_files(struct mreq *req, struct mresp *resp)
{
	int r = multipart(req, resp);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_runs_start(req, resp, NULL);
}

int
routes_runs_list(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	const char *st = http_query(req, "status");
	const char *tm = http_query(req, "teammate_id");
	const char *tk = http_query(req, "task_id");
	long long tmid = -1, tkid = -1, v;
	struct pager pg;
	struct run *run = NULL;
	int r;

	if ((tm != NULL && util_parse_ll(tm, &tmid) < 0) ||
	    (tk != NULL && util_parse_ll(tk, &tkid) < 0))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "teammate_id and task_id must be integers"));
	r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	TAILQ_FOREACH_REVERSE(run, &store.runs, run_list, entry)
	{
		if (!json_scope_eq(run->obj, uid) ||
		    (st != NULL && strcmp(runs_status(run), st) != 0) ||
		    (tm != NULL &&
		        (json_int(run->obj, "teammate_id", &v) < 0 ||
		            v != tmid)) ||
		    (tk != NULL &&
		        (json_int(run->obj, "task_id", &v) < 0 || v != tkid)))
			continue;
		r = pager_add(&pg, run->obj);
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
routes_runs_check(struct mreq *req, struct mresp *resp)
{
	const char *uid = http_query(req, "user_id");
	long long total = 0, awaiting = 0, latest = -1;
	const char *change = NULL;
	struct run *run = NULL;
	cJSON *o = NULL;
	int r;

	for (run = TAILQ_FIRST(&store.runs); run != NULL;
	     run = TAILQ_NEXT(run, entry)) {
		const char *at = json_str(run->obj, "updated_at");

		if (!json_scope_eq(run->obj, uid))
			continue;
		total++;
		if (strcmp(runs_status(run), "awaiting_approval") == 0)
			awaiting++;
		latest = run->id;
		if (at != NULL && (change == NULL || strcmp(at, change) > 0))
			change = at;
	}
	o = cJSON_CreateObject();
	if (o == NULL)
		return -ENOMEM;
	r = json_set_num(o, "total_count", (double)total);
	r |= latest >= 0 ? json_set_num(o, "latest_run_id", (double)latest)
	                 : json_set_null(o, "latest_run_id");
	r |= json_set_num(o, "awaiting_count", (double)awaiting);
	r |= json_set_str(o, "latest_change_at", change);
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

int
routes_runs_get(struct mreq *req, struct mresp *resp)
{
	struct run *run = NULL;
	int r = routes_run_lookup(req, resp, true, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	runs_advance(run);
	return routes_send(resp, 200, run->obj);
}

int
routes_runs_stream(struct mreq *req, struct mresp *resp)
{
	struct run *run = NULL;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	if (runs_terminal(run))
		return ROUTE_DONE(routes_conflict(req, resp, "run_not_active",
		    "Run is no longer executing; GET /runs/{id} instead"));
	return respond(resp, run, ANSWER_JOIN, 200, NULL);
}

int
routes_runs_outcome(struct mreq *req, struct mresp *resp)
{
	struct run *run = NULL;
	cJSON *o = NULL;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	o = cJSON_CreateObject();
	if (o == NULL)
		return -ENOMEM;
	r = json_set_num(o, "run_id", (double)run->id);
	r |= json_set_str(o, "status", runs_status(run));
	r |= json_set_str(o, "summary", json_str(run->obj, "output"));
	r |= json_set_str(o, "headline",
	    runs_terminal(run) ? "Weekly recap sent" : "Working");
	r |= json_set_bool(o, "needs_reply",
	    strcmp(runs_status(run), "awaiting_approval") == 0);
	r |= json_set_num(o, "needs_reply_count",
	    strcmp(runs_status(run), "awaiting_approval") == 0);
	r |= json_set_str(o, "delivery_channel", "none");
	r |= json_set_null(o, "output_data");
	r |=
	    json_set_num(o, "message_count", cJSON_GetArraySize(run->messages));
	r |= json_set_num(o, "input_tokens", 1200);
	r |= json_set_num(o, "output_tokens", 300);
	r |= json_set_num(o, "total_tokens", 1500);
	r |= json_set_str(o, "cost_usd", "0.012000");
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

int
routes_runs_messages(struct mreq *req, struct mresp *resp)
{
	const char *as = http_query(req, "after_sequence");
	const char *ls = http_query(req, "limit");
	long long after = 0, limit = 500, seq;
	struct run *run = NULL;
	cJSON *a = NULL, *m = NULL;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	if ((as != NULL && util_parse_ll(as, &after) < 0) ||
	    (ls != NULL && util_parse_ll(ls, &limit) < 0))
		return ROUTE_DONE(routes_invalid(req, resp,
		    "after_sequence and limit must be integers"));
	a = cJSON_CreateArray();
	if (a == NULL)
		return -ENOMEM;
	for (m = json_first(run->messages); m != NULL; m = m->next) {
		if (json_int(m, "sequence", &seq) < 0 || seq <= after)
			continue;
		if (cJSON_GetArraySize(a) >= limit)
			break;
		if (!cJSON_AddItemToArray(a, cJSON_Duplicate(m, 1))) {
			cJSON_Delete(a);
			return -ENOMEM;
		}
	}
	return http_resp_json(resp, 200, a);
}

int
routes_runs_reply(struct mreq *req, struct mresp *resp)
{
	cJSON *extra = NULL;
	const char *message;
	struct run *run = NULL;
	const cJSON *sv;
	char qid[32];
	bool done, stream;
	int r;

	r = routes_run_lookup(req, resp, false, &run);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	r = replay(req, resp, &done);
	if (r < 0 || done)
		return r;
	message = json_str(req->json, "message");
	if (message == NULL || *message == '\0')
		return ROUTE_DONE(
		    routes_invalid(req, resp, "message is required"));
	sv = cJSON_GetObjectItemCaseSensitive(req->json, "stream");
	stream = sv == NULL || cJSON_IsTrue(sv);
	r = remember_key(req, run);
	if (r < 0)
		return r;
	if (run->driven && !run->gate_open && runs_live(run)) {
		/*
		 * A streamed turn is under way: the message is queued behind
		 * it. A polled run only moves on GETs, so a reply to it
		 * starts the next turn at once, like a reply to a finished
		 * or waiting run.
		 */
		(void)snprintf(qid, sizeof(qid), "qmsg_%lld", ++store.seq_msg);
		extra = extra2("delivery", "queued", "queued_message_id", qid);
		if (extra == NULL)
			return -ENOMEM;
		return respond(resp, run, stream ? ANSWER_JOIN : ANSWER_JSON,
		    200, extra);
	}
	if (!json_nullish(req->json, "permission_mode"))
		r = json_copy_key(run->obj, req->json, "permission_mode");
	if (r == 0)
		r = runs_turn(run, message, stream);
	if (r < 0)
		return r;
	extra = extra2("delivery", "resumed", NULL, NULL);
	if (extra == NULL)
		return -ENOMEM;
	return respond(resp, run, stream ? ANSWER_ORIGIN : ANSWER_JSON, 200,
	    extra);
}

int
routes_runs_reply_files(struct mreq *req, struct mresp *resp)
{
	int r = multipart(req, resp);

	if (r != 0)
		return ROUTE_DONE(r);
	return routes_runs_reply(req, resp);
}

int
routes_runs_cancel(struct mreq *req, struct mresp *resp)
{
	struct run *run = NULL;
	int r = routes_run_lookup(req, resp, true, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	if (runs_terminal(run))
		return ROUTE_DONE(routes_conflict(req, resp, "run_not_active",
		    "Run already finished"));
	r = runs_cancel(run);
	return r < 0 ? r : routes_send(resp, 200, run->obj);
}

int
routes_runs_retry(struct mreq *req, struct mresp *resp)
{
	const char *confirm = http_query(req, "confirm");
	struct run *run, *nr;
	long long count = 0;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	if (!runs_terminal(run))
		return ROUTE_DONE(routes_conflict(req, resp, "run_not_active",
		    "Only a finished run can be retried"));
	if (confirm == NULL || strcmp(confirm, "true") != 0)
		return ROUTE_DONE(routes_conflict(req, resp,
		    "retry_needs_confirmation",
		    "Retrying repeats the run's actions; pass confirm=true"));
	nr = runs_new();
	if (nr == NULL)
		return -ENOMEM;
	(void)json_int(run->obj, "retry_count", &count);
	r = json_copy_key(nr->obj, run->obj, "teammate_id");
	r |= json_copy_key(nr->obj, run->obj, "task_id");
	r |= json_copy_key(nr->obj, run->obj, "task_name");
	r |= json_copy_key(nr->obj, run->obj, "user_id");
	r |= json_copy_key(nr->obj, run->obj, "metadata");
	r |= json_set_num(nr->obj, "retry_of_run_id", (double)run->id);
	r |= json_set_num(nr->obj, "retry_count", (double)count + 1);
	if (r == 0)
		r = runs_turn(nr, run->message != NULL ? run->message : "",
		    false);
	return r < 0 ? r : routes_send(resp, 200, nr->obj);
}

int
routes_runs_files(struct mreq *req, struct mresp *resp)
{
	const char *ctype;
	struct run *run = NULL;
	cJSON *a = NULL, *f = NULL;
	size_t len;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	a = cJSON_CreateArray();
	if (a == NULL)
		return -ENOMEM;
	for (size_t i = 0; runs_file_names[i] != NULL; i++) {
		if (runs_file(run, runs_file_names[i], &len, &ctype) == NULL)
			continue;
		f = cJSON_CreateObject();
		if (f == NULL || !cJSON_AddItemToArray(a, f) ||
		    (json_set_str(f, "name", runs_file_names[i]) |
		        json_set_num(f, "size", (double)len)) < 0) {
			cJSON_Delete(a);
			return -ENOMEM;
		}
	}
	return http_resp_json(resp, 200, a);
}

int
routes_runs_download(struct mreq *req, struct mresp *resp)
{
	static const char missing[] = "{\"error\":{\"message\":\"File not "
	                              "found\"}}";
	const char *name = req->param[1], *ctype;
	const void *data;
	struct run *run = NULL;
	size_t len;
	int r = routes_run_lookup(req, resp, false, &run);

	if (r != 0)
		return ROUTE_DONE(r);
	if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || *name == '\0') {
		r = http_resp_error(resp, req, 400, "invalid_request_error",
		    "invalid_filename", "Filename must be a plain file name");
		return ROUTE_DONE(r);
	}
	data = runs_file(run, name, &len, &ctype);
	if (data == NULL)
		return http_resp_raw(resp, 404, "application/json", missing,
		    sizeof(missing) - 1);
	r = http_resp_raw(resp, 200, ctype, data, len);
	if (r == 0)
		r = http_resp_header(resp, "Content-Disposition",
		    strcmp(ctype, "text/csv") == 0
		        ? "attachment; filename=\"report.csv\""
		        : "attachment; filename=\"chart.png\"");
	return r;
}

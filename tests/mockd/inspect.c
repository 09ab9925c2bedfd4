/*
 * SPDX-License-Identifier: MIT
 *
 * The /__mock/ API for tests: a bounded ring of recorded API requests,
 * scripted fault rules, run-time configuration, reset and health. No auth;
 * these paths are never recorded and never faulted.
 *
 *   GET    /__mock/requests[?method=M&path=PREFIX&since=SEQ]
 *   DELETE /__mock/requests
 *   GET|POST|DELETE /__mock/faults
 *   GET|POST /__mock/config
 *   POST   /__mock/reset
 *   GET    /__mock/health
 *   POST   /__mock/deliver   (deliver.c)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "deliver.h"
#include "http.h"
#include "inspect.h"
#include "json.h"
#include "store.h"
#include "util.h"

static struct {
	cJSON *rec;
	size_t bytes; /* recorded body size */
} ring[INSPECT_MAX_RECORDS];
static size_t ring_head, ring_len; /* oldest slot, number used */
static size_t ring_bytes;          /* body bytes held by the ring */
static unsigned long long ring_seq;
static cJSON *faults;

int
inspect_init(void)
{
	faults = cJSON_CreateArray();
	return faults == NULL ? -ENOMEM : 0;
}

static void
ring_drop_oldest(void)
{
	cJSON_Delete(ring[ring_head].rec);
	ring_bytes -= ring[ring_head].bytes;
	ring[ring_head].rec = NULL;
	ring[ring_head].bytes = 0;
	ring_head = (ring_head + 1) % INSPECT_MAX_RECORDS;
	ring_len--;
}

static void
ring_clear(void)
{
	while (ring_len > 0)
		ring_drop_oldest();
	ring_head = 0;
}

void
inspect_clear(void)
{
	ring_clear();
	if (faults != NULL)
		while (faults->child != NULL)
			cJSON_DeleteItemFromArray(faults, 0);
}

void
inspect_done(void)
{
	inspect_clear();
	cJSON_Delete(faults);
	faults = NULL;
}

static int
record_body(cJSON *rec, const struct mreq *req)
{
	size_t n =
	    req->body_len < INSPECT_MAX_BODY ? req->body_len : INSPECT_MAX_BODY;
	char *s;
	int r;

	if (n == 0)
		return json_set_str(rec, "body", "") |
		    json_set_str(rec, "body_encoding", "utf-8");
	if (util_utf8_valid(req->body, n)) {
		s = strndup((const char *)req->body, n);
		if (s == NULL)
			return -ENOMEM;
		r = json_set_str(rec, "body", s) |
		    json_set_str(rec, "body_encoding", "utf-8");
	} else {
		s = util_base64(req->body, n);
		if (s == NULL)
			return -ENOMEM;
		r = json_set_str(rec, "body", s) |
		    json_set_str(rec, "body_encoding", "base64");
	}
	free(s);
	if (n < req->body_len)
		r |= json_set_bool(rec, "body_truncated", true);
	return r;
}

int
inspect_record(const struct mreq *req)
{
	cJSON *rec = cJSON_CreateObject();
	struct timespec ts;
	long long ms;
	size_t slot, bytes;
	int r;

	if (rec == NULL)
		return -ENOMEM;
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	r = json_set_str(rec, "method", req->method);
	r |= json_set_str(rec, "path", req->raw_path);
	r |= json_set_str(rec, "query", req->raw_query);
	r |= json_set(rec, "headers", http_headers(req));
	r |= record_body(rec, req);
	r |= json_set_str(rec, "request_id", req->request_id);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	r |= json_set_num(rec, "time_ms", (double)ms);
	if (r < 0) {
		cJSON_Delete(rec);
		return -ENOMEM;
	}
	bytes =
	    req->body_len < INSPECT_MAX_BODY ? req->body_len : INSPECT_MAX_BODY;
	store_lock();
	r = json_set_num(rec, "seq", (double)++ring_seq);
	while (ring_len > 0 &&
	    (ring_len == INSPECT_MAX_RECORDS ||
	        ring_bytes + bytes > INSPECT_MAX_BYTES))
		ring_drop_oldest();
	slot = (ring_head + ring_len) % INSPECT_MAX_RECORDS;
	ring[slot].rec = rec;
	ring[slot].bytes = bytes;
	ring_bytes += bytes;
	ring_len++;
	store_unlock();
	return r;
}

static bool
fault_matches(cJSON *f, const struct mreq *req)
{
	const char *m = json_str(f, "method"), *p = json_str(f, "path");
	long long skip;
	size_t n;

	if (m != NULL && strcmp(m, "*") != 0 && strcasecmp(m, req->method) != 0)
		return false;
	if (p != NULL) {
		n = strlen(p);
		if (n > 0 && p[n - 1] == '*') {
			if (strncmp(req->path, p, n - 1) != 0)
				return false;
		} else if (strcmp(req->path, p) != 0)
			return false;
	}
	/* "skip": let that many matching requests through first. */
	if (json_int(f, "skip", &skip) == 0 && skip > 0) {
		(void)json_set_num(f, "skip", (double)skip - 1);
		return false;
	}
	return true;
}

cJSON *
inspect_fault_take(const struct mreq *req)
{
	cJSON *f, *copy = NULL;
	long long times;

	store_lock();
	for (f = json_first(faults); f != NULL; f = f->next) {
		if (!fault_matches(f, req))
			continue;
		copy = cJSON_Duplicate(f, 1);
		if (json_int(f, "times", &times) < 0)
			times = 1;
		if (times == 1)
			cJSON_Delete(cJSON_DetachItemViaPointer(faults, f));
		else if (times > 1)
			(void)json_set_num(f, "times", (double)times - 1);
		break;
	}
	store_unlock();
	return copy;
}

static const char *
type_for(long long status)
{
	switch (status) {
	case 400:
	case 422:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 402:
		return "billing_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found";
	case 409:
		return "conflict_error";
	case 429:
		return "rate_limit_error";
	default:
		return "api_error";
	}
}

/* The error body for envelope style env (§14.5). */
static cJSON *
fault_envelope(const cJSON *rule, const struct mreq *req, long long status,
    const char *env)
{
	const char *msg = json_str(rule, "message");
	const char *code = json_str(rule, "error_code");
	const char *type = json_str(rule, "type");
	const cJSON *details =
	    cJSON_GetObjectItemCaseSensitive(rule, "details");
	char dflt[64];
	cJSON *o = cJSON_CreateObject(), *e, *d;
	int r;

	if (o == NULL)
		return NULL;
	(void)snprintf(dflt, sizeof(dflt), "Mock fault: HTTP %lld", status);
	if (msg == NULL)
		msg = dflt;
	if (strcmp(env, "string") == 0)
		r = json_set_str(o, "error", msg);
	else if (strcmp(env, "detail") == 0)
		r = json_set_str(o, "detail", msg);
	else {
		e = cJSON_AddObjectToObject(o, "error");
		if (e == NULL) {
			cJSON_Delete(o);
			return NULL;
		}
		r = json_set_str(e, "type",
		    type != NULL ? type : type_for(status));
		r |= json_set_str(e, "message", msg);
		r |= json_set_num(e, "code", (double)status);
		r |= json_set_str(e, "request_id", req->request_id);
		if (code != NULL && strcmp(env, "nested") != 0)
			r |= json_set_str(e, "error_code", code);
		/* "top" has details only when the rule gives some. */
		if (strcmp(env, "top") != 0 || cJSON_IsObject(details)) {
			d = cJSON_IsObject(details)
			    ? cJSON_Duplicate(details, 1)
			    : cJSON_CreateObject();
			if (d != NULL && code != NULL &&
			    strcmp(env, "top") != 0)
				r |= json_set_str(d, "error_code", code);
			r |= json_set(e, "details", d);
		}
		if (status == 401)
			r |= json_set_str(e, "doc_url",
			    "https://m8tes.ai/docs/"
			    "api-introduction#authentication");
	}
	if (r < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int
inspect_fault_answer(const cJSON *rule, const struct mreq *req,
    struct mresp *resp)
{
	static const char html[] =
	    "<!DOCTYPE html><html><head><title>502 "
	    "Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The proxy "
	    "could not reach the upstream.</p></body></html>";
	const char *env = json_str(rule, "envelope");
	const char *body = json_str(rule, "body");
	const char *ctype = json_str(rule, "content_type");
	const char *ra = json_str(rule, "retry_after");
	const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(rule, "headers");
	const cJSON *h;
	long long status = 500, n;
	char buf[32];
	int r;

	(void)json_int(rule, "status", &status);
	/*
	 * The rule is freed before the answer goes out: its content type
	 * goes in as a header (copied), not as the answer's type pointer.
	 */
	if (body != NULL)
		r = http_resp_raw(resp, (unsigned int)status,
		    ctype != NULL ? NULL : "application/json", body,
		    strlen(body));
	else if (env != NULL && strcmp(env, "html") == 0)
		r = http_resp_raw(resp, (unsigned int)status,
		    ctype != NULL ? NULL : "text/html; charset=utf-8", html,
		    sizeof(html) - 1);
	else
		r = http_resp_json(resp, (unsigned int)status,
		    fault_envelope(rule, req, status,
		        env != NULL ? env : "full"));
	if (r == 0 && ctype != NULL && (body != NULL ||
	    (env != NULL && strcmp(env, "html") == 0)))
		r = http_resp_header(resp, "Content-Type", ctype);
	if (r < 0)
		return r;
	if (ra == NULL && json_int(rule, "retry_after", &n) == 0) {
		(void)snprintf(buf, sizeof(buf), "%lld", n);
		ra = buf;
	}
	if (ra != NULL)
		r = http_resp_header(resp, "Retry-After", ra);
	for (h = json_first(hdrs); h != NULL; h = h->next)
		if (r == 0 && cJSON_IsString(h))
			r = http_resp_header(resp, h->string, h->valuestring);
	return r < 0 ? r : 0;
}

static int
list_requests(struct mreq *req, struct mresp *resp)
{
	const char *m = http_query(req, "method");
	const char *p = http_query(req, "path");
	const char *since = http_query(req, "since");
	long long after = 0, seq;
	cJSON *a = cJSON_CreateArray();

	if (a == NULL)
		return -ENOMEM;
	if (since != NULL)
		(void)util_parse_ll(since, &after);
	store_lock();
	for (size_t i = 0; i < ring_len; i++) {
		cJSON *rec = ring[(ring_head + i) % INSPECT_MAX_RECORDS].rec;
		const char *rp = json_str(rec, "path");

		if ((json_int(rec, "seq", &seq) == 0 && seq <= after) ||
		    (m != NULL &&
		        strcasecmp(json_str(rec, "method"), m) != 0) ||
		    (p != NULL && strncmp(rp, p, strlen(p)) != 0))
			continue;
		if (!cJSON_AddItemToArray(a, cJSON_Duplicate(rec, 1))) {
			store_unlock();
			cJSON_Delete(a);
			return -ENOMEM;
		}
	}
	store_unlock();
	return http_resp_json(resp, 200, a);
}

static int
add_faults(struct mreq *req, struct mresp *resp)
{
	cJSON *list, *f, *copy;
	int r = 0;

	if (req->json == NULL ||
	    (!cJSON_IsArray(req->json) && !cJSON_IsObject(req->json)))
		return http_resp_raw(resp, 400, "application/json",
		    "{\"detail\":\"expected a fault object or array\"}", 44);
	list = cJSON_IsArray(req->json) ? req->json : NULL;
	store_lock();
	for (f = list != NULL ? list->child : req->json; f != NULL && r == 0;
	     f = list != NULL ? f->next : NULL) {
		if (!cJSON_IsObject(f))
			continue;
		copy = cJSON_Duplicate(f, 1);
		if (copy == NULL || !cJSON_AddItemToArray(faults, copy)) {
			cJSON_Delete(copy);
			r = -ENOMEM;
		}
	}
	copy = cJSON_Duplicate(faults, 1);
	store_unlock();
	http_drop_idle();
	return r < 0 ? r : http_resp_json(resp, 200, copy);
}

static int
config(struct mreq *req, struct mresp *resp)
{
	const char *tl;
	long long n;
	cJSON *o, *v;
	int r = 0;

	store_lock();
	if (strcmp(req->method, "POST") == 0 && cJSON_IsObject(req->json)) {
		if (json_int(req->json, "run_steps", &n) == 0 && n >= 1 &&
		    n <= 1000)
			store.run_steps = (int)n;
		v = cJSON_GetObjectItemCaseSensitive(req->json, "strict");
		if (cJSON_IsBool(v))
			r |= json_set_bool(store.settings,
			    "require_end_user_id", cJSON_IsTrue(v));
		tl = json_str(req->json, "triggers_list");
		if (tl != NULL)
			store.triggers_data = strcmp(tl, "data") == 0;
	}
	o = cJSON_CreateObject();
	if (o != NULL) {
		r |= json_set_num(o, "run_steps", store.run_steps);
		r |= json_set_bool(o, "strict", store_strict());
		r |= json_set_str(o, "triggers_list",
		    store.triggers_data ? "data" : "array");
	}
	store_unlock();
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, 200, o);
}

static int
ok(struct mresp *resp)
{
	cJSON *o = cJSON_CreateObject();

	store_lock();
	if (o != NULL &&
	    (json_set_bool(o, "ok", true) |
	        json_set_num(o, "runs", store.nruns) |
	        json_set_num(o, "records", (double)ring_len)) < 0) {
		cJSON_Delete(o);
		o = NULL;
	}
	store_unlock();
	return http_resp_json(resp, 200, o);
}

int
inspect_handle(struct mreq *req, struct mresp *resp)
{
	const char *p = req->path + 8, *m = req->method;
	int r;

	if (strcmp(p, "requests") == 0 && strcmp(m, "GET") == 0)
		return list_requests(req, resp);
	if (strcmp(p, "requests") == 0 && strcmp(m, "DELETE") == 0) {
		store_lock();
		ring_clear();
		store_unlock();
		return http_resp_empty(resp, 204);
	}
	if (strcmp(p, "faults") == 0 && strcmp(m, "POST") == 0)
		return add_faults(req, resp);
	if (strcmp(p, "faults") == 0 && strcmp(m, "GET") == 0) {
		cJSON *copy;

		store_lock();
		copy = cJSON_Duplicate(faults, 1);
		store_unlock();
		return http_resp_json(resp, 200, copy);
	}
	if (strcmp(p, "faults") == 0 && strcmp(m, "DELETE") == 0) {
		store_lock();
		while (faults->child != NULL)
			cJSON_DeleteItemFromArray(faults, 0);
		store_unlock();
		return http_resp_empty(resp, 204);
	}
	if (strcmp(p, "config") == 0)
		return config(req, resp);
	if (strcmp(p, "reset") == 0 && strcmp(m, "POST") == 0) {
		store_lock();
		r = store_reset();
		store_unlock();
		return r < 0 ? r : ok(resp);
	}
	if (strcmp(p, "health") == 0)
		return ok(resp);
	if (strcmp(p, "deliver") == 0 && strcmp(m, "POST") == 0)
		return deliver_handle(req, resp);
	return http_resp_noroute(resp);
}

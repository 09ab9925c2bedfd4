/*
 * SPDX-License-Identifier: MIT
 *
 * The upstream methods: one request and its answer, polls and waits on
 * timers, downloads, and streaming calls handed to the stream hub. Part of
 * dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "audit.h"
#include "cache.h"
#include "codec.h"
#include "dispatch_int.h"
#include "inbox.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "request.h"
#include "server.h"
#include "sig.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"
#include "webhook.h"

#define MAX_WAIT_S (24.0 * 3600) /* longest runs.poll timeout accepted */

static void start_upstream(struct call *call, const char *path,
    const char *body, enum method_verb verb, bool idem);

/* ---- upstream methods --------------------------------------------------- */

static bool
run_terminal(const cJSON *run)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(run, "status");

	if (!cJSON_IsString(s))
		return false;
	return strcmp(s->valuestring, "completed") == 0 ||
	    strcmp(s->valuestring, "failed") == 0 ||
	    strcmp(s->valuestring, "cancelled") == 0 ||
	    strcmp(s->valuestring, "closed") == 0;
}

/* The next cursor the SDK would use: next_starting_after, else last id. */
static int
normalise_page(cJSON *page)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(page, "data");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(page, "has_more");
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(page,
	    "next_starting_after");
	const cJSON *last;

	if (!cJSON_IsArray(data) || !cJSON_IsBool(more))
		return -EINVAL;
	if (next != NULL && !cJSON_IsNull(next))
		return 0;
	cJSON_DeleteItemFromObjectCaseSensitive(page, "next_starting_after");
	last = cJSON_GetArrayItem(data, cJSON_GetArraySize(data) - 1);
	last = cJSON_GetObjectItemCaseSensitive(last, "id");
	if (cJSON_IsTrue(more) && last != NULL)
		cJSON_AddItemToObject(page, "next_starting_after",
		    cJSON_Duplicate(last, 0));
	else
		cJSON_AddNullToObject(page, "next_starting_after");
	return 0;
}

static void
poll_again_cb(struct loop *loop, void *arg)
{
	struct call *call = arg;

	(void)loop;
	call->timer = NULL;
	start_upstream(call, call->poll_path, NULL, VERB_GET, false);
}

/* Waits one interval (bounded by the deadline), then polls again. */
static void
poll_later(struct call *call)
{
	uint64_t now = loop_update_time(call->d->loop);
	uint64_t ms = (uint64_t)(call->interval_s * 1000);

	if (now >= call->deadline) {
		call_fail(call, E_TIMEOUT, "the run did not finish within "
					   "the timeout");
		return;
	}
	if (now + ms > call->deadline)
		ms = call->deadline - now;
	if (loop_timer_add(call->d->loop, ms, poll_again_cb, call,
		&call->timer) < 0)
		call_fail(call, E_NOMEM, "out of memory");
}

static double
num_param(const cJSON *params, const char *name, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Sets up the poll phase on run_id; user_id scopes the GET. */
static int
poll_setup(struct call *call, const cJSON *run_id, const cJSON *user_id)
{
	const struct method *get = methods_find("runs.poll");
	cJSON *p = cJSON_CreateObject();
	char err[256], *body = NULL;
	int r;

	if (p == NULL)
		return -ENOMEM;
	cJSON_AddItemToObject(p, "run_id", cJSON_Duplicate(run_id, 0));
	if (cJSON_IsString(user_id))
		cJSON_AddStringToObject(p, "user_id", user_id->valuestring);
	free(call->poll_path);
	call->poll_path = NULL;
	r = request_build(get, p, &call->poll_path, &body, err, sizeof(err));
	free(body);
	cJSON_Delete(p);
	if (r < 0)
		return r;
	call->phase = PHASE_POLL;
	return 0;
}

/*
 * A failed run is a result unless the caller asked for raise_on_error (as
 * in the SDK); a non-null error_code on a completed run counts as failed.
 */
static bool
run_failed(const cJSON *run)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(run, "status");
	const cJSON *ec = cJSON_GetObjectItemCaseSensitive(run, "error_code");

	return (cJSON_IsString(st) && strcmp(st->valuestring, "failed") == 0) ||
	    cJSON_IsString(ec);
}

static void
answer_poll(struct call *call, cJSON *run)
{
	if (!run_terminal(run)) {
		poll_later(call);
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->params,
		"raise_on_error")) &&
	    run_failed(run)) {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(run,
		    "error");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(run,
		    "error_code");
		struct codec_error e = {.code = E_UP_RUN_FAILED,
		    .message = cJSON_IsString(err) ? err->valuestring :
						     "the run failed",
		    .upstream_code = cJSON_IsString(code) ? code->valuestring :
							    NULL,
		    .retry_after = -1,
		    .details = run};

		call_error(call, &e);
		return;
	}
	call_result(call, run);
}

/*
 * The secret of a webhook endpoint is shown once, when it is created or
 * rotated through the daemon: keep it so the receiver can verify.
 */
static void
capture_secret(struct call *call, const cJSON *obj)
{
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(obj, "secret");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	char eid[32] = "";
	int r;

	if (call->d->store == NULL || !cJSON_IsString(sec) ||
	    strlen(sec->valuestring) < 16 || strstr(sec->valuestring, "...") ||
	    strchr(sec->valuestring, '*'))
		return;
	if (cJSON_IsNumber(id))
		(void)snprintf(eid, sizeof(eid), "%lld",
		    (long long)id->valuedouble);
	r = store_secret_add(call->d->store, sec->valuestring,
	    eid[0] ? eid : NULL, (int64_t)time(NULL), 0, NULL);
	if (r < 0 && r != -EEXIST) {
		log_warn("cannot store the secret of webhook endpoint %s: %s",
		    eid, strerror(-r));
		return;
	}
	if (call->d->webhook != NULL)
		(void)webhook_add_secret(call->d->webhook, sec->valuestring,
		    strlen(sec->valuestring), 0);
	log_info("stored the signing secret of webhook endpoint %s", eid);
}

struct cJSON *
calls_parse_body(const struct method *m, const char *body, size_t len,
    const char **ret_reason)
{
	cJSON *json = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;

	if (json == NULL) {
		*ret_reason = "the upstream answered with a body that is not "
			      "JSON";
		return NULL;
	}
	switch (m->kind) {
	case KIND_PAGE:
		if (normalise_page(json) < 0) {
			cJSON_Delete(json);
			*ret_reason = "the upstream page lacks data or has_more";
			return NULL;
		}
		break;
	case KIND_ARR:
		/* Some lists come as a bare array, some as {"data": [...]}. */
		if (cJSON_IsObject(json)) {
			cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(
			    json, "data");

			cJSON_Delete(json);
			if (!cJSON_IsArray(data)) {
				cJSON_Delete(data);
				*ret_reason = "the upstream list is not an array";
				return NULL;
			}
			json = data;
		}
		break;
	default:
		break;
	}
	return json;
}

void
calls_answer_body(struct call *call, const char *body, size_t len)
{
	const struct method *m = call->m;
	const char *reason = NULL;
	cJSON *json;

	if (call->phase == PHASE_FIRST && m->kind == KIND_EMPTY) {
		json = cJSON_CreateObject();
		cJSON_AddBoolToObject(json, "ok", true);
		call_result(call, json);
		cJSON_Delete(json);
		return;
	}
	if (call->phase == PHASE_POLL) {
		json = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
		if (json == NULL) {
			call_fail(call, E_BAD_UPSTREAM,
			    "the upstream run is not JSON");
			return;
		}
		answer_poll(call, json);
		cJSON_Delete(json);
		return;
	}
	json = calls_parse_body(m, body, len, &reason);
	if (json == NULL) {
		call_fail(call, E_BAD_UPSTREAM, "%s", reason);
		return;
	}
	if (m->handler == H_WAIT || m->handler == H_POLL) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "id");
		const cJSON *uid = cJSON_GetObjectItemCaseSensitive(json,
		    "user_id");

		if (m->handler == H_POLL) {
			answer_poll(call, json);
			goto out;
		}
		if (id == NULL || cJSON_IsNull(id)) {
			call_fail(call, E_BAD_UPSTREAM,
			    "the upstream run has no id");
			goto out;
		}
		if (!cJSON_IsString(uid))
			uid = cJSON_GetObjectItemCaseSensitive(call->params,
			    "user_id");
		if (poll_setup(call, id, uid) < 0) {
			call_fail(call, E_NOMEM, "out of memory");
			goto out;
		}
		answer_poll(call, json);
		goto out;
	}
	if (strcmp(m->name, "webhooks.create") == 0 ||
	    strcmp(m->name, "webhooks.update") == 0)
		capture_secret(call, json);
	call_result(call, json);
out:
	cJSON_Delete(json);
}

void
calls_upstream_done_cb(const struct up_response *r, void *arg)
{
	struct call *call = arg;
	struct apierr a;
	bool refused = r->error == 0 && r->status >= 400 && r->status < 500;

	call->up = NULL;
	call->status = r->status;
	if (call->new_key != NULL) {
		local_auth_validated(call, r);
		return;
	}
	/*
	 * A write through the daemon outdates what the cache holds; one that
	 * failed without a refusal (5xx, a cut connection) may have happened.
	 */
	if (call->phase == PHASE_FIRST && call->m->verb != VERB_GET &&
	    call->write_path != NULL && !refused)
		reads_invalidate(call->d, call->write_path, call->params);
	if (r->error != 0 || r->status >= 400 || r->status == 0) {
		bool server_side = r->error != 0 || r->status >= 500;

		/* Polling swallows server and network errors until the end. */
		if (call->phase == PHASE_POLL && server_side) {
			poll_later(call);
			return;
		}
		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&a, r->error ? r->error : -EIO,
			    r->error_text);
		else
			apierr_from_http(&a, r->status, r->body, r->body_len,
			    r->request_id, r->retry_after);
		log_debug("%s: %s (%ld) after %d attempt(s)", call->m->name,
		    a.e.code, r->status, r->attempts);
		call_error(call, &a.e);
		apierr_done(&a);
		return;
	}
	calls_answer_body(call, r->body, r->body_len);
}

static void
start_upstream(struct call *call, const char *path, const char *body,
    enum method_verb verb, bool idem)
{
	struct up_opts o = {
	    .verb = verb,
	    .path = path,
	    .body = body,
	    .idem_key = idem ? call->idem_key : NULL,
	    .done = calls_upstream_done_cb,
	    .arg = call,
	};
	int r;

	r = upstream_start(call->d->up, &o, &call->up);
	if (r == -ENOKEY)
		call_fail(call, E_NO_KEY,
		    "the daemon has no API key (see m8tes auth login)");
	else if (r < 0)
		call_fail(call, E_INTERNAL, "cannot start the request: %s",
		    strerror(-r));
}

/* Inserts "stream": false for the methods that wait on a run. */
static int
force_no_stream(char **body)
{
	cJSON *o = cJSON_Parse(*body);
	char *s;

	if (o == NULL)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(o, "stream");
	cJSON_AddBoolToObject(o, "stream", false);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s == NULL)
		return -ENOMEM;
	free(*body);
	*body = s;
	return 0;
}

static void
stream_end_cb(void *arg, const cJSON *result, const struct codec_error *err,
    long long lagged)
{
	struct call *call = arg;

	call->sub = NULL;
	call->status = err != NULL ? err->status : 200;
	reads_invalidate_resource(call->d, "runs", NULL);
	if (lagged >= 0) {
		cJSON *o = cJSON_CreateObject(), *l;
		char *line = NULL;

		l = cJSON_AddObjectToObject(o, "lagged");
		if (l != NULL &&
		    cJSON_AddNumberToObject(l, "resume_after", (double)lagged) &&
		    (call->id == NULL ||
			cJSON_AddItemReferenceToObject(o, "id", call->id))) {
			line = cJSON_PrintUnformatted(o);
		}
		cJSON_Delete(o);
		if (line != NULL) {
			size_t n = strlen(line);
			char *nl = realloc(line, n + 2);

			if (nl != NULL) {
				nl[n] = '\n';
				nl[n + 1] = '\0';
				call_finish(call, nl, n + 1);
				return;
			}
			free(line);
		}
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (err != NULL)
		call_error(call, err);
	else
		call_result(call, result);
}

/* An integer run id from a run_id param (number or digit string). */
static int
run_id_of(const cJSON *v, int64_t *ret)
{
	char *end;
	long long n;

	if (cJSON_IsNumber(v)) {
		*ret = (int64_t)v->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return -EINVAL;
	errno = 0;
	n = strtoll(v->valuestring, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0)
		return -EINVAL;
	*ret = n;
	return 0;
}

static void
stream_call(struct call *call, const char *path, const char *body)
{
	const struct method *m = call->m;
	const cJSON *rid = request_param(call->params, "run_id");
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(call->params,
	    "after_seq");
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(call->params,
	    "user_id");
	struct stream_start st = {
	    .verb = m->verb,
	    .path = path,
	    .body = body,
	    .idem_key = (m->flags & METHOD_IDEM) ? call->idem_key : NULL,
	    .user_id = cJSON_IsString(uid) ? uid->valuestring : NULL,
	};
	struct stream_target t = {
	    .conn = call->conn,
	    .id = call->id,
	    .text_only = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		call->params, "text_only")),
	    .done = stream_end_cb,
	    .arg = call,
	};
	int r;

	if (rid != NULL) {
		if (run_id_of(rid, &st.run_id) < 0) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"run_id\" must be a run's integer id to stream");
			return;
		}
		st.has_run_id = true;
	}
	if (cJSON_IsNumber(after)) {
		if (after->valuedouble < 0) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"after_seq\" must not be negative");
			return;
		}
		t.after_seq = (uint64_t)after->valuedouble;
	}
	/* Any outcome, even at once, arrives through stream_end_cb. */
	r = streams_subscribe(call->d->streams, &st, &t, &call->sub);
	if (r < 0)
		call_fail(call, E_NOMEM, "out of memory");
}

void
upstream_call(struct call *call)
{
	const struct method *m = call->m;
	const cJSON *stream = cJSON_GetObjectItemCaseSensitive(call->params,
	    "stream");
	char err[256] = "", *path = NULL, *body = NULL;
	int r;

	bool streaming = m->handler == H_STREAM && !cJSON_IsFalse(stream);
	/* apps.connect: an api_key selects the API-key route (as the SDK). */
	if (strcmp(m->name, "apps.connect") == 0) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(call->params,
		    "api_key");
		const cJSON *ru = cJSON_GetObjectItemCaseSensitive(
		    call->params, "redirect_uri");

		if (cJSON_IsString(k)) {
			m = methods_find("apps.connect_api_key");
			cJSON_DeleteItemFromObjectCaseSensitive(call->params,
			    "redirect_uri");
		} else if (!cJSON_IsString(ru)) {
			call_fail(call, E_INVALID_PARAMS,
			    "pass redirect_uri for OAuth apps or api_key for "
			    "API-key apps");
			return;
		}
	}
	r = request_build(m, call->params, &path, &body, err, sizeof(err));
	if (r == -EINVAL) {
		call_fail(call, E_INVALID_PATH, "%s", err);
		return;
	}
	if (r < 0) {
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (m->handler == H_WAIT && body != NULL &&
	    force_no_stream(&body) < 0) {
		free(path);
		free(body);
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (m->handler == H_POLL || m->handler == H_WAIT) {
		double to = num_param(call->params,
		    m->handler == H_POLL ? "timeout" : "poll_timeout",
		    call->d->cfg.poll_timeout_s);

		call->interval_s = num_param(call->params,
		    m->handler == H_POLL ? "interval" : "poll_interval",
		    call->d->cfg.poll_interval_s);
		if (!(call->interval_s >= 0.01 && call->interval_s <= 3600) ||
		    !(to > 0 && to <= MAX_WAIT_S)) {
			free(path);
			free(body);
			call_fail(call, E_INVALID_PARAMS,
			    "interval must be 0.01..3600 s and timeout "
			    "0..86400 s");
			return;
		}
		call->deadline = loop_update_time(call->d->loop) +
		    (uint64_t)(to * 1000);
	}
	if (streaming) {
		stream_call(call, path, body);
	} else if (m->handler == H_DOWNLOAD) {
		reads_download(call, path);
	} else if (m->kind == KIND_PAGE &&
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->params,
		"all"))) {
		reads_all(call);
	} else if (m->handler == H_PLAIN && reads_get(call, path)) {
		/* Answered from the cache, or joined a fetch in flight. */
	} else if (m->handler == H_POLL) {
		call->phase = PHASE_POLL;
		call->poll_path = path;
		path = NULL;
		start_upstream(call, call->poll_path, NULL, VERB_GET, false);
	} else {
		if (m->verb != VERB_GET) {
			call->write_path = path;
			path = NULL;
		}
		start_upstream(call, call->write_path ? call->write_path : path,
		    body, m->verb, (m->flags & METHOD_IDEM) != 0);
	}
	free(path);
	free(body);
}

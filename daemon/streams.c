/*
 * SPDX-License-Identifier: MIT
 *
 * Stream hub. A hub is one run's stream: the upstream transfer feeding it
 * (at most one at a time), its SSE parser and accumulator, its event log and
 * its subscribers. Event lines are built from the logged text with each
 * subscriber's id pasted in, so fan-out costs a copy per subscriber and no
 * JSON work. A finished hub goes on the save list; a timer writes it to
 * state.db after the loop has flushed its final lines, and a hub for a run
 * known only to state.db is loaded from there, finished, so every path
 * that finds a hub in memory works the same on one loaded.
 *
 * This file holds the hubs: their registry, the upstream transfer and
 * its events, re-attaches and the end of a run. The subscribers are in
 * streams_subs.c, the state.db side in streams_store.c; what the three
 * share is in streams_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "codec.h"
#include "log.h"
#include "request.h"
#include "loop.h"
#include "runacc.h"
#include "sse.h"
#include "streams.h"
#include "streams_int.h"
#include "upstream.h"

#define REATTACH_BASE_MS 250

static void hub_finish(struct hub *h);
static void hub_fail(struct hub *h, const struct codec_error *e);
static void stream_ended(struct hub *h, const char *why);

int
streams_new(struct loop *loop, struct upstream *up, struct streams **ret)
{
	struct streams *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->loop = loop;
	s->up = up;
	TAILQ_INIT(&s->live);
	TAILQ_INIT(&s->finished);
	TAILQ_INIT(&s->behind);
	TAILQ_INIT(&s->saves);
	*ret = s;
	return 0;
}

void
streams_set_store(struct streams *s, struct store *st)
{
	s->st = st;
}

void
streams_hub_free(struct hub *h)
{
	struct stream_sub *sub;

	while ((sub = TAILQ_FIRST(&h->subs)) != NULL)
		streams_sub_free(sub);
	if (h->up != NULL)
		upstream_cancel(h->s->up, h->up);
	if (h->timer != NULL)
		loop_timer_del(h->s->loop, h->timer);
	if (h->idle != NULL)
		loop_timer_del(h->s->loop, h->idle);
	sse_done(&h->sse);
	runacc_done(&h->acc);
	for (size_t i = 0; i < h->nlog; i++)
		free(h->log[i].text);
	free(h->log);
	free(h->user_id);
	cJSON_Delete(h->result);
	apierr_done(&h->apierr);
	if (h->save_pending)
		streams_save_done(h);
	if (h->state == HUB_FINISHED) {
		TAILQ_REMOVE(&h->s->finished, h, link);
		h->s->nfinished--;
	} else {
		TAILQ_REMOVE(&h->s->live, h, link);
	}
	h->s->stats.runs--;
	free(h);
}

void
streams_free(struct streams *s)
{
	if (s == NULL)
		return;
	/* One try each: what cannot be written now is lost, and said so. */
	while (!TAILQ_EMPTY(&s->saves))
		(void)streams_save_now(TAILQ_FIRST(&s->saves), true);
	if (s->saver != NULL)
		loop_timer_del(s->loop, s->saver);
	while (!TAILQ_EMPTY(&s->live))
		streams_hub_free(TAILQ_FIRST(&s->live));
	while (!TAILQ_EMPTY(&s->finished))
		streams_hub_free(TAILQ_FIRST(&s->finished));
	free(s->line);
	free(s);
}

struct hub *
streams_hub_find(struct streams *s, int64_t run_id)
{
	struct hub *h;

	TAILQ_FOREACH(h, &s->live, link)
	if (h->has_id && h->run_id == run_id)
		return h;
	TAILQ_FOREACH(h, &s->finished, link)
	if (h->has_id && h->run_id == run_id)
		return h;
	return NULL;
}

struct hub *
streams_hub_new(struct streams *s)
{
	struct hub *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->s = s;
	sse_init(&h->sse, SSE_MAX_FRAME_DEFAULT);
	runacc_init(&h->acc);
	TAILQ_INIT(&h->subs);
	TAILQ_INSERT_TAIL(&s->live, h, link);
	s->stats.runs++;
	return h;
}

/* Back from the finished list for a new turn (a reply). */
void
streams_hub_revive(struct hub *h)
{
	/*
	 * Written now if it can be; else with the new turn, which writes
	 * whatever state.db lacks.
	 */
	if (h->save_pending) {
		int r = streams_hub_save(h);

		if (r < 0)
			log_warn("run %" PRId64 ": its event log goes to "
				 "state.db when its new turn ends (%s)",
			    h->run_id, strerror(-r));
		streams_save_done(h);
	}
	TAILQ_REMOVE(&h->s->finished, h, link);
	h->s->nfinished--;
	TAILQ_INSERT_TAIL(&h->s->live, h, link);
	h->state = HUB_STARTING;
	cJSON_Delete(h->result);
	h->result = NULL;
	h->err = NULL;
	apierr_done(&h->apierr);
	runacc_reset(&h->acc);
	h->terminal = false;
	h->end_status = NULL;
	h->reattaches = 0;
	h->turn = h->nlog;
}

/* ---- events ------------------------------------------------------------ */

/* Makes room for one more event in the log: 0, -EFBIG or -ENOMEM. */
int
streams_log_reserve(struct hub *h)
{
	if (h->nlog >= STREAMS_MAX_EVENTS || h->logbytes >= STREAMS_MAX_LOG)
		return -EFBIG;
	if (h->nlog == h->caplog) {
		size_t cap = h->caplog ? h->caplog * 2 : 64;
		struct logent *l = realloc(h->log, cap * sizeof(*l));

		if (l == NULL)
			return -ENOMEM;
		h->log = l;
		h->caplog = cap;
	}
	return 0;
}

/* Logs text (len bytes, NUL-terminated), taking it. */
void
streams_log_push_take(struct hub *h, char *text, size_t len, bool is_text)
{
	struct logent *e = &h->log[h->nlog++];

	e->text = text;
	e->len = len;
	e->is_text = is_text;
	h->logbytes += len;
}

static int
log_append(struct hub *h, const cJSON *ev, const char *type)
{
	char *text;
	int r;

	r = streams_log_reserve(h);
	if (r < 0)
		return r;
	text = cJSON_PrintUnformatted(ev);
	if (text == NULL)
		return -ENOMEM;
	streams_log_push_take(h, text, strlen(text),
	    strcmp(type, "text-delta") == 0);
	h->s->stats.events++;
	return 0;
}

/* Registers the run id learnt from the stream. */
static void
learn_run_id(struct hub *h)
{
	int64_t id;

	if (h->has_id || runacc_run_id(&h->acc, &id) < 0)
		return;
	/* A second hub for a known run stays anonymous: no two share an id. */
	if (streams_hub_find(h->s, id) != NULL)
		return;
	h->has_id = true;
	h->run_id = id;
}

/*
 * An attach replays the current turn (as the mock does and as the SDK's
 * reset suggests), but the API reference speaks of the run's history: a
 * replay whose first event is the run's first, not the turn's, replays
 * every turn, and all of it is skipped.
 */
static void
replay_check(struct hub *h, const cJSON *ev)
{
	char *text;

	h->skip_check = false;
	if (h->turn == 0 || h->turn >= h->nlog)
		return;
	text = cJSON_PrintUnformatted(ev);
	if (text != NULL && strcmp(text, h->log[h->turn].text) != 0 &&
	    strcmp(text, h->log[0].text) == 0)
		h->skip = h->nlog;
	free(text);
}

static int
event_cb(struct sse_event *ev, void *arg)
{
	struct hub *h = arg;
	int r;

	if (strcmp(ev->type, "keep-alive") == 0)
		return 0;
	if (h->skip_check)
		replay_check(h, ev->json);
	if (h->skip > 0) {
		/* History the re-attached stream replays: already logged. */
		h->skip--;
		return 0;
	}
	h->state = HUB_LIVE;
	/* A stream that delivers again earns its re-attaches back. */
	h->reattaches = 0;
	r = log_append(h, ev->json, ev->type);
	if (r < 0)
		return r;
	(void)runacc_feed(&h->acc, ev->json);
	learn_run_id(h);
	streams_fan_out(h);
	if (sse_type_is_terminal(ev->type)) {
		h->terminal = true;
		h->end_status = sse_type_is_terminal_failure(ev->type) ? "failed" :
		    strcmp(ev->type, "cancelled") == 0		       ? "cancelled" :
									 "completed";
		return -ECANCELED; /* stop parsing; the hub finishes */
	}
	return 0;
}

static void idle_cb(struct loop *loop, void *arg);

static void
idle_stop(struct hub *h)
{
	if (h->idle != NULL) {
		loop_timer_del(h->s->loop, h->idle);
		h->idle = NULL;
	}
}

/*
 * The transfer brought nothing for the read timeout: it is dropped and
 * re-attached like a closed one. curl's own low-speed check averages over
 * seconds, so a silent stream would otherwise hang on for longer.
 */
static void
idle_cb(struct loop *loop, void *arg)
{
	struct hub *h = arg;
	uint64_t limit = (uint64_t)upstream_timeout_s(h->s->up) * 1000;
	uint64_t quiet = loop_now(loop) - h->last_data;

	h->idle = NULL;
	if (quiet < limit) {
		if (loop_timer_add(loop, limit - quiet, idle_cb, h, &h->idle) <
		    0)
			h->idle = NULL;
		return;
	}
	upstream_cancel(h->s->up, h->up);
	h->up = NULL;
	stream_ended(h, "no data within the read timeout");
}

static int
data_cb(const char *p, size_t len, void *arg)
{
	struct hub *h = arg;
	int r;

	h->last_data = loop_now(h->s->loop);
	if (h->idle == NULL &&
	    loop_timer_add(h->s->loop,
		(uint64_t)upstream_timeout_s(h->s->up) * 1000, idle_cb, h,
		&h->idle) < 0)
		h->idle = NULL;
	r = sse_feed(&h->sse, (const uint8_t *)p, len, event_cb, h);
	if (r == -ECANCELED || h->terminal) {
		h->up = NULL; /* aborting: no done callback will come */
		idle_stop(h);
		hub_finish(h);
		return -1;
	}
	if (r < 0) {
		struct codec_error e = {.code = r == -EFBIG ? E_TOO_LARGE :
							      E_NOMEM,
		    .message = r == -EFBIG ? "the run's event log is full" :
					     "out of memory",
		    .retry_after = -1};

		h->up = NULL;
		idle_stop(h);
		hub_fail(h, &e);
		return -1;
	}
	return 0;
}

/* ---- finishing --------------------------------------------------------- */

void
streams_retire(struct hub *h)
{
	TAILQ_REMOVE(&h->s->live, h, link);
	h->state = HUB_FINISHED;
	TAILQ_INSERT_TAIL(&h->s->finished, h, link);
	h->s->nfinished++;
	/*
	 * Keep a bounded number of finished runs for replay; one that still
	 * has subscribers reading its log stays until they are done.
	 */
	while (h->s->nfinished > STREAMS_MAX_FINISHED) {
		struct hub *old;

		TAILQ_FOREACH(old, &h->s->finished, link)
		if (old != h && TAILQ_EMPTY(&old->subs))
			break;
		if (old == NULL)
			break;
		if (old->save_pending)
			(void)streams_save_now(old, true);
		streams_hub_free(old);
	}
}

static bool
status_terminal(const cJSON *st)
{
	return cJSON_IsString(st) &&
	    (strcmp(st->valuestring, "completed") == 0 ||
		strcmp(st->valuestring, "failed") == 0 ||
		strcmp(st->valuestring, "cancelled") == 0 ||
		strcmp(st->valuestring, "closed") == 0);
}

/*
 * The run's final state was fetched (or answered instead of a stream):
 * its status, the run object, and the run id and end the stream may not
 * have shown.
 */
static void
result_add_run(cJSON *res, const struct hub *h, const cJSON *run)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(run, "status");

	if (cJSON_IsString(st))
		cJSON_AddStringToObject(res, "status", st->valuestring);
	if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(res, "run_id")) &&
	    h->has_id)
		cJSON_ReplaceItemInObjectCaseSensitive(res, "run_id",
		    cJSON_CreateNumber((double)h->run_id));
	if (status_terminal(st))
		cJSON_ReplaceItemInObjectCaseSensitive(res, "finished",
		    cJSON_CreateTrue());
	cJSON_AddItemToObject(res, "run", cJSON_Duplicate(run, 1));
}

/* The run ended: build the result, answer every caught-up subscriber. */
static void
hub_finish_with(struct hub *h, const cJSON *run)
{
	cJSON *res = runacc_result(&h->acc);

	if (res == NULL) {
		struct codec_error e = {.code = E_NOMEM,
		    .message = "out of memory", .retry_after = -1};

		hub_fail(h, &e);
		return;
	}
	(void)sse_finish(&h->sse, event_cb, h);
	cJSON_AddNumberToObject(res, "seq", (double)h->nlog);
	if (run != NULL) {
		result_add_run(res, h, run);
	} else if (h->end_status != NULL) {
		cJSON_AddStringToObject(res, "status", h->end_status);
	}
	h->result = res;
	streams_retire(h);
	streams_finish_subs(h);
	streams_save_later(h);
}

static void
hub_finish(struct hub *h)
{
	hub_finish_with(h, NULL);
}

static void
hub_fail(struct hub *h, const struct codec_error *e)
{
	struct stream_sub *sub;

	/* Nothing to keep: answer everyone with the error and go. */
	while ((sub = TAILQ_FIRST(&h->subs)) != NULL)
		streams_sub_finish(sub, NULL, e, -1);
	streams_hub_free(h);
}

static void hub_reattach_cb(struct loop *loop, void *arg);

static void
final_get_cb(const struct up_response *r, void *arg)
{
	struct hub *h = arg;
	cJSON *run;

	h->up = NULL;
	if (r->error != 0 || r->status >= 400 || r->status == 0) {
		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&h->apierr, r->error,
			    r->error_text);
		else
			apierr_from_http(&h->apierr, r->status, r->body,
			    r->body_len, r->request_id, r->retry_after);
		hub_fail(h, &h->apierr.e);
		return;
	}
	run = r->body ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
	hub_finish_with(h, run);
	cJSON_Delete(run);
}

/* The run is over upstream (409 on attach): fetch its final state. */
static void
fetch_final(struct hub *h)
{
	struct up_opts o = {.verb = VERB_GET, .done = final_get_cb, .arg = h};
	char path[256];
	int r;

	if (h->user_id != NULL) {
		char enc[160];

		if (request_form_encode(h->user_id, enc, sizeof(enc)) < 0)
			enc[0] = '\0';
		(void)snprintf(path, sizeof(path), "/runs/%" PRId64 "?user_id=%s",
		    h->run_id, enc);
	} else {
		(void)snprintf(path, sizeof(path), "/runs/%" PRId64, h->run_id);
	}
	o.path = path;
	r = upstream_start(h->s->up, &o, &h->up);
	if (r < 0) {
		struct codec_error e = {.code = r == -ENOKEY ? E_NO_KEY :
							       E_INTERNAL,
		    .message = "cannot fetch the run", .retry_after = -1};

		hub_fail(h, &e);
	}
}

/*
 * A JSON answer to a streaming request: an idempotent replay (the run
 * the key started, upstream-api.md 4.3) or a queued reply (6.7). A run
 * this daemon already follows is joined; a finished one is the result;
 * a live one is attached to.
 */
static void
json_answer(struct hub *h, const char *body, size_t len)
{
	cJSON *run = body != NULL ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(run, "id");
	const cJSON *dl = cJSON_GetObjectItemCaseSensitive(run, "delivery");
	struct hub *other;

	if (!cJSON_IsNumber(id)) {
		struct codec_error e = {.code = E_BAD_UPSTREAM,
		    .message = "the upstream answered a streaming request "
			       "with something not a run",
		    .retry_after = -1};

		cJSON_Delete(run);
		hub_fail(h, &e);
		return;
	}
	other = streams_hub_find(h->s, (int64_t)id->valuedouble);
	if (other == NULL)
		other = streams_hub_load(h->s, (int64_t)id->valuedouble);
	if (other != NULL && other != h) {
		streams_hub_merge(h, other,
		    cJSON_IsString(dl) && strcmp(dl->valuestring, "queued") == 0);
	} else if (status_terminal(cJSON_GetObjectItemCaseSensitive(run,
		       "status"))) {
		h->has_id = true;
		h->run_id = (int64_t)id->valuedouble;
		hub_finish_with(h, run);
	} else {
		/* Join the run: the attach replays its turn from the start. */
		h->has_id = true;
		h->run_id = (int64_t)id->valuedouble;
		h->skip = h->nlog - h->turn;
		h->skip_check = true;
		streams_hub_start_transfer(h, VERB_GET, NULL, NULL, NULL);
	}
	cJSON_Delete(run);
}

/* The stream ended without a terminal event: a drop or a stall. */
static void
stream_ended(struct hub *h, const char *why)
{
	int ret = sse_finish(&h->sse, event_cb, h);

	idle_stop(h);
	if (ret == -ECANCELED || h->terminal) {
		hub_finish(h);
		return;
	}
	if (!h->has_id) {
		struct codec_error e = {.code = E_BAD_UPSTREAM,
		    .message = "the stream ended before naming its run",
		    .retry_after = -1};

		hub_fail(h, &e);
		return;
	}
	if (h->reattaches >= STREAMS_MAX_REATTACH) {
		fetch_final(h);
		return;
	}
	h->state = HUB_WAITING;
	log_info("run %" PRId64 ": stream ended early (%s); re-attaching",
	    h->run_id, why);
	/* At once the first time; then back off. */
	(void)loop_timer_add(h->s->loop,
	    h->reattaches == 0 ?
		0 :
		(uint64_t)REATTACH_BASE_MS << (h->reattaches - 1),
	    hub_reattach_cb, h, &h->timer);
	h->reattaches++;
}

static void
transfer_done_cb(const struct up_response *r, void *arg)
{
	struct hub *h = arg;

	h->up = NULL;
	idle_stop(h);
	if (h->terminal) {
		hub_finish(h);
		return;
	}
	if (r->streamed) {
		stream_ended(h, r->error ? r->error_text : "closed");
		return;
	}
	if (h->up_is_get && r->status == 409) {
		/* No longer executing: its final state is a GET away. */
		fetch_final(h);
		return;
	}
	if (r->error != 0 || r->status >= 400 || r->status == 0) {
		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&h->apierr, r->error,
			    r->error_text);
		else
			apierr_from_http(&h->apierr, r->status, r->body,
			    r->body_len, r->request_id, r->retry_after);
		hub_fail(h, &h->apierr.e);
		return;
	}
	json_answer(h, r->body, r->body_len);
}

static void
hub_reattach_cb(struct loop *loop, void *arg)
{
	struct hub *h = arg;

	(void)loop;
	h->timer = NULL;
	h->s->stats.reattaches++;
	/* The attach replays the turn: skip what is logged of it. */
	h->skip = h->nlog - h->turn;
	h->skip_check = true;
	streams_hub_start_transfer(h, VERB_GET, NULL, NULL, NULL);
}

void
streams_hub_start_transfer(struct hub *h, enum method_verb verb,
    const char *path, const char *body, const char *idem_key)
{
	char attach[64];
	struct up_opts o = {
	    .verb = verb,
	    .path = path,
	    .body = body,
	    .idem_key = idem_key,
	    .done = transfer_done_cb,
	    .data = data_cb,
	    .arg = h,
	};
	int r;

	if (verb == VERB_GET) {
		(void)snprintf(attach, sizeof(attach), "/runs/%" PRId64 "/stream",
		    h->run_id);
		o.path = attach;
	}
	h->up_is_get = verb == VERB_GET;
	h->terminal = false;
	sse_done(&h->sse);
	sse_init(&h->sse, SSE_MAX_FRAME_DEFAULT);
	h->s->stats.upstream_streams++;
	r = upstream_start(h->s->up, &o, &h->up);
	if (r < 0) {
		struct codec_error e = {.code = r == -ENOKEY ? E_NO_KEY :
							       E_INTERNAL,
		    .message = r == -ENOKEY ? "the daemon has no API key" :
					      "cannot start the stream",
		    .retry_after = -1};

		hub_fail(h, &e);
	}
}

void
streams_stats(const struct streams *s, struct streams_stats *ret)
{
	*ret = s->stats;
}

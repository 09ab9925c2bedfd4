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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "codec.h"
#include "log.h"
#include "request.h"
#include "loop.h"
#include "runacc.h"
#include "server.h"
#include "sse.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"

#define REATTACH_BASE_MS 250
#define FAN_OUT_PEEK 64 /* events between looks at a reader behind */

enum hub_state {
	HUB_STARTING, /* request sent, no event yet */
	HUB_LIVE,     /* events flowing */
	HUB_WAITING,  /* between a drop and the re-attach */
	HUB_FINISHED, /* final result known */
};

struct logent {
	char *text; /* the event JSON */
	size_t len;
	bool is_text; /* a text-delta */
};

struct stream_sub {
	struct hub *hub;
	struct conn *conn;
	char *head; /* {"id":ID,"seq": of its event lines */
	size_t hlen;
	bool text_only;
	uint64_t cursor; /* last seq sent */
	uint64_t mark;   /* the log's length when it last took an event */
	bool behind;     /* waiting in the pump list */
	stream_done_cb done;
	void *arg;
	TAILQ_ENTRY(stream_sub) link;
	TAILQ_ENTRY(stream_sub) pump_link;
};

TAILQ_HEAD(sub_list, stream_sub);

struct hub {
	struct streams *s;
	bool has_id;
	int64_t run_id;
	char *user_id;
	enum hub_state state;
	struct up_req *up;
	bool up_is_get; /* the transfer is an attach (history replayed) */
	struct loop_timer *timer;
	struct loop_timer *idle; /* read inactivity of a streaming transfer */
	uint64_t last_data;      /* loop time of its last bytes */
	struct sse_parser sse;
	struct runacc acc;
	bool terminal; /* a terminal event arrived on the transfer */
	const char *end_status; /* "completed", "failed", "cancelled" */
	struct logent *log;
	size_t nlog, caplog, logbytes;
	size_t skip;  /* replayed events still to skip after a re-attach */
	bool skip_check; /* the first replayed event says what is replayed */
	size_t turn;  /* first log index of the current turn */
	int reattaches;
	cJSON *result; /* final result once finished */
	struct codec_error *err; /* or the final error */
	struct apierr apierr;
	struct sub_list subs;
	TAILQ_ENTRY(hub) link; /* live or finished list */
	size_t nsaved;         /* events of the log that state.db holds */
	bool save_pending;     /* finished, on the save list */
	unsigned save_fails;
	TAILQ_ENTRY(hub) save_link;
};

TAILQ_HEAD(hub_list, hub);

struct streams {
	struct loop *loop;
	struct upstream *up;
	struct hub_list live, finished;
	size_t nfinished;
	struct sub_list behind;
	struct store *st;         /* state.db, or NULL */
	struct hub_list saves;    /* finished hubs to write there */
	struct loop_timer *saver; /* writes them */
	struct store_run_event chunk[STREAMS_SAVE_CHUNK]; /* events per write */
	char *line; /* where event lines are put together */
	size_t linecap;
	struct streams_stats stats;
};

static void hub_start_transfer(struct hub *h, enum method_verb verb,
    const char *path, const char *body, const char *idem_key);
static void hub_finish(struct hub *h);
static void hub_fail(struct hub *h, const struct codec_error *e);
static void stream_ended(struct hub *h, const char *why);
static void retire(struct hub *h);
static int hub_save(struct hub *h);
static void save_later(struct hub *h);
static void save_done(struct hub *h);
static bool save_now(struct hub *h, bool last_try);
static struct hub *hub_load(struct streams *s, int64_t run_id);

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

static void
sub_free(struct stream_sub *sub)
{
	struct hub *h = sub->hub;

	if (sub->behind)
		TAILQ_REMOVE(&h->s->behind, sub, pump_link);
	TAILQ_REMOVE(&h->subs, sub, link);
	h->s->stats.subs--;
	free(sub->head);
	free(sub);
}

static void
hub_free(struct hub *h)
{
	struct stream_sub *sub;

	while ((sub = TAILQ_FIRST(&h->subs)) != NULL)
		sub_free(sub);
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
		save_done(h);
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
		(void)save_now(TAILQ_FIRST(&s->saves), true);
	if (s->saver != NULL)
		loop_timer_del(s->loop, s->saver);
	while (!TAILQ_EMPTY(&s->live))
		hub_free(TAILQ_FIRST(&s->live));
	while (!TAILQ_EMPTY(&s->finished))
		hub_free(TAILQ_FIRST(&s->finished));
	free(s->line);
	free(s);
}

static struct hub *
hub_find(struct streams *s, int64_t run_id)
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

static struct hub *
hub_new(struct streams *s)
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
static void
hub_revive(struct hub *h)
{
	/*
	 * Written now if it can be; else with the new turn, which writes
	 * whatever state.db lacks.
	 */
	if (h->save_pending) {
		int r = hub_save(h);

		if (r < 0)
			log_warn("run %" PRId64 ": its event log goes to "
				 "state.db when its new turn ends (%s)",
			    h->run_id, strerror(-r));
		save_done(h);
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

/* ---- sending ----------------------------------------------------------- */

/* Writes v in decimal at p; returns the digits written. */
static size_t
u64_format(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/*
 * Queues event seq (1-based) for sub. Returns false if it must wait. The
 * line is the sub's head, the seq and the logged event text, put together
 * in one buffer the hub keeps: no formatting and no allocation per line.
 */
static bool
sub_send(struct stream_sub *sub, uint64_t seq)
{
	static const char ev[] = ",\"event\":";
	const struct logent *e = &sub->hub->log[seq - 1];
	struct streams *s = sub->hub->s;
	size_t len = sub->hlen + 20 + sizeof(ev) - 1 + e->len + 2;
	char *p;

	if (sub->text_only && !e->is_text) {
		sub->cursor = seq;
		sub->mark = sub->hub->nlog;
		return true;
	}
	if (server_queued(sub->conn) >= STREAMS_SUB_QUEUE) {
		/* A burst from upstream: let a reader that keeps up drain. */
		server_write_now(sub->conn);
		if (server_queued(sub->conn) >= STREAMS_SUB_QUEUE)
			return false;
	}
	if (len > s->linecap) {
		size_t cap = len < 4096 ? 4096 : len * 2;
		char *l = realloc(s->line, cap);

		if (l == NULL)
			return false;
		s->line = l;
		s->linecap = cap;
	}
	p = s->line;
	memcpy(p, sub->head, sub->hlen);
	p += sub->hlen;
	p += u64_format(p, seq);
	memcpy(p, ev, sizeof(ev) - 1);
	p += sizeof(ev) - 1;
	memcpy(p, e->text, e->len);
	p += e->len;
	*p++ = '}';
	*p++ = '\n';
	if (server_send(sub->conn, s->line, (size_t)(p - s->line)) < 0)
		return false;
	sub->cursor = seq;
	sub->mark = sub->hub->nlog;
	s->stats.deliveries++;
	return true;
}

static void
sub_finish(struct stream_sub *sub, const cJSON *result,
    const struct codec_error *err, long long lagged)
{
	stream_done_cb done = sub->done;
	void *arg = sub->arg;

	sub_free(sub);
	done(arg, result, err, lagged);
}

static void
sub_lagged(struct stream_sub *sub)
{
	sub->hub->s->stats.lagged++;
	log_info("subscriber of pid %d lagged at seq %" PRIu64,
	    (int)server_peer(sub->conn)->pid, sub->cursor);
	sub_finish(sub, NULL, NULL, (long long)sub->cursor);
}

static void
sub_mark_behind(struct stream_sub *sub)
{
	if (!sub->behind) {
		sub->behind = true;
		TAILQ_INSERT_TAIL(&sub->hub->s->behind, sub, pump_link);
	}
}

/*
 * Whether sub stopped draining: more than STREAMS_MAX_LAG events arrived
 * since it last took one. A reader working through a long log is behind
 * but not stalled, and a finished run's log does not grow.
 */
static bool
sub_stalled(const struct stream_sub *sub)
{
	return sub->hub->nlog - sub->mark > STREAMS_MAX_LAG;
}

/*
 * Sends sub everything it can take. Returns false when the subscription
 * ended (lagged or final line sent).
 */
static bool
sub_catch_up(struct stream_sub *sub)
{
	struct hub *h = sub->hub;

	if (sub_stalled(sub)) {
		/* Its reader may have drained what was written already. */
		server_write_now(sub->conn);
		if (server_queued(sub->conn) >= STREAMS_SUB_QUEUE / 2) {
			sub_lagged(sub);
			return false;
		}
	}
	while (sub->cursor < h->nlog) {
		if (!sub_send(sub, sub->cursor + 1)) {
			sub_mark_behind(sub);
			return true;
		}
	}
	if (sub->behind) {
		sub->behind = false;
		TAILQ_REMOVE(&h->s->behind, sub, pump_link);
	}
	if (h->state == HUB_FINISHED) {
		sub_finish(sub, h->result, h->err, -1);
		return false;
	}
	return true;
}

void
streams_pump(struct streams *s)
{
	struct stream_sub *sub, *next;

	for (sub = TAILQ_FIRST(&s->behind); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, pump_link);
		if (server_queued(sub->conn) < STREAMS_SUB_QUEUE / 2 ||
		    sub_stalled(sub))
			(void)sub_catch_up(sub);
	}
}

/* ---- events ------------------------------------------------------------ */

/* Makes room for one more event in the log: 0, -EFBIG or -ENOMEM. */
static int
log_reserve(struct hub *h)
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
static void
log_push_take(struct hub *h, char *text, size_t len, bool is_text)
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

	r = log_reserve(h);
	if (r < 0)
		return r;
	text = cJSON_PrintUnformatted(ev);
	if (text == NULL)
		return -ENOMEM;
	log_push_take(h, text, strlen(text), strcmp(type, "text-delta") == 0);
	h->s->stats.events++;
	return 0;
}

static void
fan_out(struct hub *h)
{
	struct stream_sub *sub, *next;

	for (sub = TAILQ_FIRST(&h->subs); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, link);
		if (sub->behind) {
			/*
			 * The loop does not sleep (and pump) during a long
			 * burst from upstream: look in on it now and then.
			 */
			if ((h->nlog & (FAN_OUT_PEEK - 1)) == 0) {
				server_write_now(sub->conn);
				if (server_queued(sub->conn) <
				    STREAMS_SUB_QUEUE / 2)
					(void)sub_catch_up(sub);
			}
			continue;
		}
		if (sub->cursor + 1 == h->nlog) {
			if (!sub_send(sub, h->nlog))
				sub_mark_behind(sub);
		} else if (sub->cursor + 1 < h->nlog) {
			(void)sub_catch_up(sub);
		}
	}
}

/* Registers the run id learnt from the stream. */
static void
learn_run_id(struct hub *h)
{
	int64_t id;

	if (h->has_id || runacc_run_id(&h->acc, &id) < 0)
		return;
	/* A second hub for a known run stays anonymous: no two share an id. */
	if (hub_find(h->s, id) != NULL)
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
	fan_out(h);
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

static void
retire(struct hub *h)
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
			(void)save_now(old, true);
		hub_free(old);
	}
}

static void
finish_subs(struct hub *h)
{
	struct stream_sub *sub, *next;

	for (sub = TAILQ_FIRST(&h->subs); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, link);
		if (!sub->behind)
			(void)sub_catch_up(sub);
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
	retire(h);
	finish_subs(h);
	save_later(h);
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
		sub_finish(sub, NULL, e, -1);
	hub_free(h);
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
 * Moves every subscriber of h to other, the hub that already follows the
 * same run, from the turn's first event (an idempotent replay, which the
 * SDK follows with an attach that replays the turn) or from now (a queued
 * reply), and frees h.
 */
/* Moves sub to the hub other, to be sent its log after cursor. */
static void
sub_move(struct stream_sub *sub, struct hub *other, uint64_t cursor)
{
	if (sub->behind) {
		TAILQ_REMOVE(&sub->hub->s->behind, sub, pump_link);
		sub->behind = false;
	}
	TAILQ_REMOVE(&sub->hub->subs, sub, link);
	sub->hub = other;
	sub->cursor = cursor;
	sub->mark = other->nlog;
	TAILQ_INSERT_TAIL(&other->subs, sub, link);
}

static void
hub_merge(struct hub *h, struct hub *other, bool from_now)
{
	struct stream_sub *sub;
	struct sub_list moved;

	TAILQ_INIT(&moved);
	while ((sub = TAILQ_FIRST(&h->subs)) != NULL) {
		sub_move(sub, other, from_now ? other->nlog : other->turn);
		TAILQ_INSERT_TAIL(&moved, sub, pump_link);
	}
	hub_free(h);
	while ((sub = TAILQ_FIRST(&moved)) != NULL) {
		TAILQ_REMOVE(&moved, sub, pump_link);
		(void)sub_catch_up(sub);
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
	other = hub_find(h->s, (int64_t)id->valuedouble);
	if (other == NULL)
		other = hub_load(h->s, (int64_t)id->valuedouble);
	if (other != NULL && other != h) {
		hub_merge(h, other,
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
		hub_start_transfer(h, VERB_GET, NULL, NULL, NULL);
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
	hub_start_transfer(h, VERB_GET, NULL, NULL, NULL);
}

static void
hub_start_transfer(struct hub *h, enum method_verb verb, const char *path,
    const char *body, const char *idem_key)
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

/* ---- state.db -------------------------------------------------------- */

/*
 * Writes what state.db lacks of h's log, then its result and turn, in one
 * transaction. Events are appended only to the very log state.db has of
 * the run (terminal, ending where h's saved part ends); anything else
 * there (a half-pruned or stale log) is replaced. 0 or -errno.
 */
static int
hub_save(struct hub *h)
{
	struct store *st = h->s->st;
	int64_t now = (int64_t)time(NULL), last = 0;
	size_t from = h->nsaved;
	bool terminal = false;
	char *res;
	int r;

	res = cJSON_PrintUnformatted(h->result);
	if (res == NULL)
		return -ENOMEM;
	r = store_begin_batch(st);
	if (r < 0)
		goto out;
	if (from > 0) {
		r = store_run_status(st, h->run_id, &terminal);
		if (r == 0)
			r = store_run_last_seq(st, h->run_id, &last);
		if (r == -ENOENT)
			r = 0;
		if (!terminal || last != (int64_t)from)
			from = 0;
	}
	if (r == 0 && from == 0)
		r = store_run_delete(st, h->run_id);
	while (r == 0 && from < h->nlog) {
		size_t n = h->nlog - from;

		if (n > STREAMS_SAVE_CHUNK)
			n = STREAMS_SAVE_CHUNK;
		for (size_t i = 0; i < n; i++)
			h->s->chunk[i] = (struct store_run_event){
			    .seq = (int64_t)(from + i) + 1,
			    .event = h->log[from + i].text,
			    .len = h->log[from + i].len};
		r = store_run_append_many(st, h->run_id, h->s->chunk, n, now);
		from += n;
	}
	if (r == 0)
		r = store_run_finish(st, h->run_id, res, strlen(res),
		    (int64_t)h->turn, now);
	if (r == 0)
		r = store_commit_batch(st);
	if (r < 0)
		store_rollback_batch(st);
	else
		h->nsaved = h->nlog;
out:
	free(res);
	return r;
}

static void save_cb(struct loop *loop, void *arg);

static void
save_schedule(struct streams *s, uint64_t ms)
{
	/* Without a timer the list waits for the next run's end or exit. */
	if (s->saver == NULL &&
	    loop_timer_add(s->loop, ms, save_cb, s, &s->saver) < 0)
		s->saver = NULL;
}

/* h finished: on the list, to be written once its final lines are out. */
static void
save_later(struct hub *h)
{
	struct streams *s = h->s;

	if (s->st == NULL || !h->has_id || h->save_pending)
		return;
	h->save_pending = true;
	h->save_fails = 0;
	TAILQ_INSERT_TAIL(&s->saves, h, save_link);
	save_schedule(s, STREAMS_SAVE_DELAY_MS);
}

static void
save_done(struct hub *h)
{
	TAILQ_REMOVE(&h->s->saves, h, save_link);
	h->save_pending = false;
}

/*
 * One write of h. Returns false if it failed and is to be tried again;
 * on the last try (or the STREAMS_SAVE_TRIES-th), h leaves the list
 * unwritten, with a warning.
 */
static bool
save_now(struct hub *h, bool last_try)
{
	uint64_t t0 = loop_update_time(h->s->loop);
	int r = hub_save(h);

	if (r == 0) {
		log_debug("run %" PRId64 ": %zu events in state.db (%" PRIu64
			  " ms)",
		    h->run_id, h->nlog, loop_update_time(h->s->loop) - t0);
		save_done(h);
		return true;
	}
	if (last_try || ++h->save_fails >= STREAMS_SAVE_TRIES) {
		log_warn("run %" PRId64 ": its event log is not in state.db "
			 "(%s); it will not be replayed after a restart",
		    h->run_id, strerror(-r));
		save_done(h);
		return true;
	}
	log_warn("run %" PRId64 ": cannot write its event log to state.db "
		 "yet (%s); trying again",
	    h->run_id, strerror(-r));
	return false;
}

static void
save_cb(struct loop *loop, void *arg)
{
	struct streams *s = arg;
	struct hub *h;
	uint64_t ms;

	(void)loop;
	s->saver = NULL;
	for (int n = 0; (h = TAILQ_FIRST(&s->saves)) != NULL; n++) {
		if (n == STREAMS_SAVE_PER_TURN) {
			save_schedule(s, STREAMS_SAVE_DELAY_MS);
			return;
		}
		if (!save_now(h, false)) {
			ms = (uint64_t)STREAMS_SAVE_RETRY_MS
			    << (h->save_fails - 1);
			if (ms > STREAMS_SAVE_RETRY_MAX_MS)
				ms = STREAMS_SAVE_RETRY_MAX_MS;
			save_schedule(s, ms);
			return;
		}
	}
}

/* What state.db says of a run, for hub_load. */
struct load_ctx {
	bool terminal;
	bool has_result;
	int64_t turn;
	cJSON *result;
};

static int
load_info_cb(const struct store_run *run, void *arg)
{
	struct load_ctx *c = arg;

	c->terminal = run->terminal;
	c->turn = run->turn;
	c->has_result = run->result != NULL;
	if (run->result != NULL)
		c->result = cJSON_ParseWithLength(run->result, run->result_len);
	return 0;
}

static int
load_event_cb(const struct store_run_event *ev, void *arg)
{
	struct hub *h = arg;
	const cJSON *type;
	cJSON *json;
	char *text;
	bool is_text;
	int r;

	/* A whole log numbers its events 1, 2, 3, ... */
	if (ev->seq != (int64_t)h->nlog + 1)
		return -EBADMSG;
	r = log_reserve(h);
	if (r < 0)
		return r;
	json = cJSON_ParseWithLength(ev->event, ev->len);
	if (json == NULL)
		return -EBADMSG;
	type = cJSON_GetObjectItemCaseSensitive(json, "type");
	is_text = cJSON_IsString(type) &&
	    strcmp(type->valuestring, "text-delta") == 0;
	cJSON_Delete(json);
	text = malloc(ev->len + 1);
	if (text == NULL)
		return -ENOMEM;
	memcpy(text, ev->event, ev->len + 1);
	log_push_take(h, text, ev->len, is_text);
	return 0;
}

/*
 * The hub of run_id, finished, from its log in state.db; NULL when there
 * is none there (or no finished one, or it cannot be read: then the
 * upstream is asked, as without state.db).
 */
static struct hub *
hub_load(struct streams *s, int64_t run_id)
{
	struct load_ctx c = {0};
	struct hub *h = NULL;
	int r;

	if (s->st == NULL)
		return NULL;
	r = store_run_get(s->st, run_id, load_info_cb, &c);
	if (r >= 0 && (!c.terminal || !c.has_result))
		r = -ENOENT; /* not a log this hub wrote whole */
	else if (r >= 0 && c.result == NULL)
		r = -EBADMSG;
	if (r >= 0 && (h = hub_new(s)) == NULL)
		r = -ENOMEM;
	if (r >= 0)
		r = store_run_iter(s->st, run_id, 0, 0, load_event_cb, h);
	if (r >= 0 && (c.turn < 0 || (uint64_t)c.turn > h->nlog))
		r = -EBADMSG;
	if (r < 0) {
		if (r != -ENOENT)
			log_warn("run %" PRId64 ": its log in state.db is not "
				 "used (%s)",
			    run_id, strerror(-r));
		cJSON_Delete(c.result);
		if (h != NULL)
			hub_free(h);
		return NULL;
	}
	h->has_id = true;
	h->run_id = run_id;
	h->turn = (size_t)c.turn;
	h->result = c.result;
	h->nsaved = h->nlog;
	retire(h);
	log_debug("run %" PRId64 ": %zu events from state.db", run_id, h->nlog);
	return h;
}

/* ---- subscribing ------------------------------------------------------- */

/* {"id":ID,"seq": (or {"seq": without an id), the start of sub's lines. */
static int
sub_head(struct stream_sub *sub, const cJSON *id)
{
	char *printed = id != NULL ? cJSON_PrintUnformatted(id) : NULL;
	size_t n = printed != NULL ? strlen(printed) : 0;

	if (id != NULL && printed == NULL)
		return -ENOMEM;
	sub->head = malloc(n + 16);
	if (sub->head == NULL) {
		free(printed);
		return -ENOMEM;
	}
	if (printed != NULL)
		sub->hlen = (size_t)snprintf(sub->head, n + 16,
		    "{\"id\":%s,\"seq\":", printed);
	else
		sub->hlen = (size_t)snprintf(sub->head, n + 16, "{\"seq\":");
	free(printed);
	return 0;
}

int
streams_subscribe(struct streams *s, const struct stream_start *st,
    const struct stream_target *t, struct stream_sub **ret)
{
	struct stream_sub *sub;
	struct hub *h = NULL;
	bool start = false;

	sub = calloc(1, sizeof(*sub));
	if (sub == NULL)
		return -ENOMEM;
	if (sub_head(sub, t->id) < 0) {
		free(sub);
		return -ENOMEM;
	}
	sub->conn = t->conn;
	sub->text_only = t->text_only;
	sub->done = t->done;
	sub->arg = t->arg;

	if (st->has_run_id) {
		h = hub_find(s, st->run_id);
		if (h == NULL)
			h = hub_load(s, st->run_id);
	}
	if (st->verb == VERB_GET) {
		/* Attach: the log serves what it has, the rest is live. */
		if (h == NULL) {
			h = hub_new(s);
			start = true;
		}
	} else if (h != NULL && h->state == HUB_FINISHED) {
		hub_revive(h); /* a reply opens a new turn of this run */
		start = true;
	} else {
		/* A new run, or a reply while a turn still streams. */
		h = hub_new(s);
		start = true;
	}
	if (h == NULL) {
		free(sub->head);
		free(sub);
		return -ENOMEM;
	}
	if (start && st->has_run_id && hub_find(s, st->run_id) == NULL) {
		h->has_id = true;
		h->run_id = st->run_id;
	} else if (start && st->has_run_id && !h->has_id) {
		/* Another hub owns the id: this one stays anonymous. */
	}
	if (start && st->user_id != NULL && h->user_id == NULL)
		h->user_id = strdup(st->user_id);
	sub->hub = h;
	/* A POST's subscriber wants this turn only; attach starts anywhere. */
	sub->cursor = st->verb == VERB_GET ? t->after_seq : h->turn;
	if (sub->cursor > h->nlog)
		sub->cursor = h->nlog;
	sub->mark = h->nlog;
	TAILQ_INSERT_TAIL(&h->subs, sub, link);
	s->stats.subs++;
	if (ret != NULL)
		*ret = sub;
	if (start) {
		h->state = HUB_STARTING;
		if (st->verb == VERB_GET && !h->has_id) {
			h->run_id = st->run_id;
			h->has_id = true;
		}
		hub_start_transfer(h, st->verb, st->path, st->body,
		    st->idem_key);
		return 0;
	}
	(void)sub_catch_up(sub);
	return 0;
}

void
streams_unsubscribe(struct stream_sub *sub)
{
	if (sub != NULL)
		sub_free(sub);
}

void
streams_stats(const struct streams *s, struct streams_stats *ret)
{
	*ret = s->stats;
}

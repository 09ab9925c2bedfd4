/*
 * SPDX-License-Identifier: MIT
 *
 * The stream hub's finished runs in state.db: a finished hub goes on the
 * save list and a timer writes its log, result and turn in one
 * transaction once its final lines are out, trying again with backoff
 * when the write fails; a run known only to state.db is loaded back as a
 * finished hub. Part of the streams module (see streams.h); shares the
 * hub with streams.c and streams_subs.c through streams_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "loop.h"
#include "store.h"
#include "streams.h"
#include "streams_int.h"

/* ---- state.db -------------------------------------------------------- */

/*
 * Writes what state.db lacks of h's log, then its result and turn, in one
 * transaction. Events are appended only to the very log state.db has of
 * the run (terminal, ending where h's saved part ends); anything else
 * there (a half-pruned or stale log) is replaced. 0 or -errno.
 */
int
streams_hub_save(struct hub *h)
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
void
streams_save_later(struct hub *h)
{
	struct streams *s = h->s;

	if (s->st == NULL || !h->has_id || h->save_pending)
		return;
	h->save_pending = true;
	h->save_fails = 0;
	TAILQ_INSERT_TAIL(&s->saves, h, save_link);
	save_schedule(s, STREAMS_SAVE_DELAY_MS);
}

void
streams_save_done(struct hub *h)
{
	TAILQ_REMOVE(&h->s->saves, h, save_link);
	h->save_pending = false;
}

/*
 * One write of h. Returns false if it failed and is to be tried again;
 * on the last try (or the STREAMS_SAVE_TRIES-th), h leaves the list
 * unwritten, with a warning.
 */
bool
streams_save_now(struct hub *h, bool last_try)
{
	uint64_t t0 = loop_update_time(h->s->loop);
	int r = streams_hub_save(h);

	if (r == 0) {
		log_debug("run %" PRId64 ": %zu events in state.db (%" PRIu64
			  " ms)",
		    h->run_id, h->nlog, loop_update_time(h->s->loop) - t0);
		streams_save_done(h);
		return true;
	}
	if (last_try || ++h->save_fails >= STREAMS_SAVE_TRIES) {
		log_warn("run %" PRId64 ": its event log is not in state.db "
			 "(%s); it will not be replayed after a restart",
		    h->run_id, strerror(-r));
		streams_save_done(h);
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
		if (!streams_save_now(h, false)) {
			ms = (uint64_t)STREAMS_SAVE_RETRY_MS
			    << (h->save_fails - 1);
			if (ms > STREAMS_SAVE_RETRY_MAX_MS)
				ms = STREAMS_SAVE_RETRY_MAX_MS;
			save_schedule(s, ms);
			return;
		}
	}
}

/* What state.db says of a run, for streams_hub_load. */
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
	r = streams_log_reserve(h);
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
	streams_log_push_take(h, text, ev->len, is_text);
	return 0;
}

/*
 * The hub of run_id, finished, from its log in state.db; NULL when there
 * is none there (or no finished one, or it cannot be read: then the
 * upstream is asked, as without state.db).
 */
struct hub *
streams_hub_load(struct streams *s, int64_t run_id)
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
	if (r >= 0 && (h = streams_hub_new(s)) == NULL)
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
			streams_hub_free(h);
		return NULL;
	}
	h->has_id = true;
	h->run_id = run_id;
	h->turn = (size_t)c.turn;
	h->result = c.result;
	h->nsaved = h->nlog;
	streams_retire(h);
	log_debug("run %" PRId64 ": %zu events from state.db", run_id, h->nlog);
	return h;
}

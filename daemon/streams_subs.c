/*
 * SPDX-License-Identifier: MIT
 *
 * The stream hub's subscribers: subscribing to the hub of a run (found,
 * loaded from state.db, revived for a reply or new), the event lines each
 * is sent from the log with its own id pasted in, fan-out of every new
 * event, catching up those behind (the pump), detaching those that lag,
 * and moving subscribers to the hub that already follows their run. Part
 * of the streams module (see streams.h); shares the hub with streams.c
 * and streams_store.c through streams_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "server.h"
#include "streams.h"
#include "streams_int.h"

#define FAN_OUT_PEEK 64 /* events between looks at a reader behind */

void
streams_sub_free(struct stream_sub *sub)
{
	struct hub *h = sub->hub;

	if (sub->behind)
		TAILQ_REMOVE(&h->s->behind, sub, pump_link);
	TAILQ_REMOVE(&h->subs, sub, link);
	h->s->stats.subs--;
	free(sub->head);
	free(sub);
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

void
streams_sub_finish(struct stream_sub *sub, const cJSON *result,
    const struct codec_error *err, long long lagged)
{
	stream_done_cb done = sub->done;
	void *arg = sub->arg;

	streams_sub_free(sub);
	done(arg, result, err, lagged);
}

static void
sub_lagged(struct stream_sub *sub)
{
	sub->hub->s->stats.lagged++;
	log_info("subscriber of pid %d lagged at seq %" PRIu64,
	    (int)server_peer(sub->conn)->pid, sub->cursor);
	streams_sub_finish(sub, NULL, NULL, (long long)sub->cursor);
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
		streams_sub_finish(sub, h->result, h->err, -1);
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
		h = streams_hub_find(s, st->run_id);
		if (h == NULL)
			h = streams_hub_load(s, st->run_id);
	}
	if (st->verb == VERB_GET) {
		/* Attach: the log serves what it has, the rest is live. */
		if (h == NULL) {
			h = streams_hub_new(s);
			start = true;
		}
	} else if (h != NULL && h->state == HUB_FINISHED) {
		/* A reply opens a new turn of this run. */
		streams_hub_revive(h);
		start = true;
	} else {
		/* A new run, or a reply while a turn still streams. */
		h = streams_hub_new(s);
		start = true;
	}
	if (h == NULL) {
		free(sub->head);
		free(sub);
		return -ENOMEM;
	}
	if (start && st->has_run_id &&
	    streams_hub_find(s, st->run_id) == NULL) {
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
		streams_hub_start_transfer(h, st->verb, st->path, st->body,
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
		streams_sub_free(sub);
}

/* ---- events ------------------------------------------------------------ */

void
streams_fan_out(struct hub *h)
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

/* ---- finishing --------------------------------------------------------- */

void
streams_finish_subs(struct hub *h)
{
	struct stream_sub *sub, *next;

	for (sub = TAILQ_FIRST(&h->subs); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, link);
		if (!sub->behind)
			(void)sub_catch_up(sub);
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

void
streams_hub_merge(struct hub *h, struct hub *other, bool from_now)
{
	struct stream_sub *sub;
	struct sub_list moved;

	TAILQ_INIT(&moved);
	while ((sub = TAILQ_FIRST(&h->subs)) != NULL) {
		sub_move(sub, other, from_now ? other->nlog : other->turn);
		TAILQ_INSERT_TAIL(&moved, sub, pump_link);
	}
	streams_hub_free(h);
	while ((sub = TAILQ_FIRST(&moved)) != NULL) {
		TAILQ_REMOVE(&moved, sub, pump_link);
		(void)sub_catch_up(sub);
	}
}

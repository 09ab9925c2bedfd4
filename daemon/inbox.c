/*
 * SPDX-License-Identifier: MIT
 *
 * Local delivery of webhooks from the durable inbox. A subscriber is either
 * caught up (it gets each new delivery as it is committed) or behind (the
 * pump reads the inbox from its cursor, a page at a time, as fast as its
 * connection drains).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "inbox.h"
#include "log.h"
#include "server.h"
#include "store.h"

struct inbox_sub {
	struct inbox *ib;
	struct conn *conn;
	cJSON *id;
	int64_t cursor; /* last seq considered */
	char *consumer;
	char *events[INBOX_MAX_FILTERS];
	size_t nevents;
	int64_t run_id;
	bool behind;
	inbox_done_cb done;
	void *arg;
	TAILQ_ENTRY(inbox_sub) link;
};

TAILQ_HEAD(inbox_sub_list, inbox_sub);

struct inbox {
	struct loop *loop;
	struct store *st;
	int64_t last_seq;
	struct inbox_sub_list subs;
	void (*commit_cb)(void *arg, const struct store_webhook *wh);
	void *commit_arg;
};

void
inbox_set_commit_cb(struct inbox *ib,
    void (*cb)(void *arg, const struct store_webhook *wh), void *arg)
{
	ib->commit_cb = cb;
	ib->commit_arg = arg;
}

int
inbox_new(struct loop *loop, struct store *st, struct inbox **ret)
{
	struct inbox *ib = calloc(1, sizeof(*ib));
	int r;

	if (ib == NULL)
		return -ENOMEM;
	ib->loop = loop;
	ib->st = st;
	TAILQ_INIT(&ib->subs);
	r = store_inbox_last_seq(st, &ib->last_seq);
	if (r < 0) {
		free(ib);
		return r;
	}
	*ret = ib;
	return 0;
}

static void
sub_free(struct inbox_sub *sub)
{
	TAILQ_REMOVE(&sub->ib->subs, sub, link);
	cJSON_Delete(sub->id);
	free(sub->consumer);
	for (size_t i = 0; i < sub->nevents; i++)
		free(sub->events[i]);
	free(sub);
}

void
inbox_free(struct inbox *ib)
{
	if (ib == NULL)
		return;
	while (!TAILQ_EMPTY(&ib->subs))
		sub_free(TAILQ_FIRST(&ib->subs));
	free(ib);
}

cJSON *
inbox_event_json(const struct store_webhook *wh, bool replayed)
{
	cJSON *o = cJSON_CreateObject(), *payload;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "type", "webhook");
	cJSON_AddNumberToObject(o, "seq", (double)wh->seq);
	cJSON_AddStringToObject(o, "webhook_id", wh->webhook_id);
	if (wh->event_type != NULL)
		cJSON_AddStringToObject(o, "event", wh->event_type);
	else
		cJSON_AddNullToObject(o, "event");
	if (wh->run_id != 0)
		cJSON_AddNumberToObject(o, "run_id", (double)wh->run_id);
	else
		cJSON_AddNullToObject(o, "run_id");
	cJSON_AddNumberToObject(o, "received_at", (double)wh->received_at);
	cJSON_AddBoolToObject(o, "replayed", replayed);
	payload = wh->body_len > 0 ?
	    cJSON_ParseWithLength(wh->body, wh->body_len) :
	    NULL;
	if (payload != NULL) {
		cJSON_AddItemToObject(o, "payload", payload);
	} else {
		/* Not JSON: the raw text, as received. */
		char *t = malloc(wh->body_len + 1);

		if (t != NULL) {
			memcpy(t, wh->body, wh->body_len);
			t[wh->body_len] = '\0';
			cJSON_AddStringToObject(o, "body", t);
			free(t);
		}
		cJSON_AddNullToObject(o, "payload");
	}
	return o;
}

static bool
matches(const struct inbox_sub *sub, const struct store_webhook *wh)
{
	if (sub->run_id != 0 && sub->run_id != wh->run_id)
		return false;
	if (sub->nevents == 0)
		return true;
	for (size_t i = 0; i < sub->nevents; i++)
		if (wh->event_type != NULL &&
		    fnmatch(sub->events[i], wh->event_type, 0) == 0)
			return true;
	return false;
}

/* Queues one delivery for sub; false when it must wait. */
static bool
send_one(struct inbox_sub *sub, const struct store_webhook *wh, bool replayed)
{
	cJSON *ev;
	char *line;
	size_t len = 0;
	int r;

	if (!matches(sub, wh))
		return true;
	if (!replayed && server_queued(sub->conn) >= INBOX_SUB_QUEUE)
		return false;
	ev = inbox_event_json(wh, replayed);
	if (ev == NULL)
		return false;
	line = codec_event(sub->id, (unsigned long long)wh->seq, ev, &len);
	cJSON_Delete(ev);
	if (line == NULL)
		return false;
	r = server_send(sub->conn, line, len);
	free(line);
	return r == 0;
}

static void
sub_end(struct inbox_sub *sub, const struct codec_error *err, long long lagged)
{
	inbox_done_cb done = sub->done;
	void *arg = sub->arg;

	sub_free(sub);
	done(arg, err, lagged);
}

void
inbox_committed(struct inbox *ib, const struct store_webhook *wh)
{
	struct inbox_sub *sub, *next;
	int64_t prev = ib->last_seq;

	if (wh->seq > ib->last_seq)
		ib->last_seq = wh->seq;
	for (sub = TAILQ_FIRST(&ib->subs); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, link);
		if (sub->behind || sub->cursor < prev) {
			sub->behind = true;
			continue;
		}
		if (send_one(sub, wh, false))
			sub->cursor = wh->seq;
		else
			sub->behind = true;
	}
	if (ib->commit_cb != NULL)
		ib->commit_cb(ib->commit_arg, wh);
}

struct pump_ctx {
	struct inbox_sub *sub;
	bool full;
};

static int
pump_row_cb(const struct store_webhook *wh, void *arg)
{
	struct pump_ctx *p = arg;

	if (!send_one(p->sub, wh, false)) {
		p->full = true;
		return 1;
	}
	p->sub->cursor = wh->seq;
	return 0;
}

/*
 * Moves sub's cursor over seqs that retention deleted, so that they do not
 * count as deliveries it is behind: a reader below the oldest webhook kept
 * starts there.
 */
static void
skip_pruned(struct inbox_sub *sub)
{
	int64_t next = 0;

	if (store_inbox_next_seq(sub->ib->st, sub->cursor, &next) < 0)
		return;
	if (next == 0)
		next = sub->ib->last_seq + 1; /* none kept after the cursor */
	if (next - 1 > sub->cursor)
		sub->cursor = next - 1;
}

/* Moves sub forward from the store. */
static void
catch_up(struct inbox_sub *sub)
{
	struct inbox *ib = sub->ib;
	struct pump_ctx p = {.sub = sub};

	while (sub->cursor < ib->last_seq && !p.full) {
		int64_t before = sub->cursor;
		int r;

		if (ib->last_seq - sub->cursor > INBOX_MAX_LAG)
			skip_pruned(sub);
		if (ib->last_seq - sub->cursor > INBOX_MAX_LAG) {
			sub_end(sub, NULL, (long long)sub->cursor);
			return;
		}
		r = store_inbox_iter(ib->st, sub->cursor, INBOX_PAGE,
		    pump_row_cb, &p);
		if (r < 0) {
			struct codec_error e = {.code = E_INTERNAL,
			    .message = "cannot read the webhook inbox",
			    .retry_after = -1};

			sub_end(sub, &e, -1);
			return;
		}
		if (r == 0 || (sub->cursor == before && !p.full))
			sub->cursor = ib->last_seq; /* nothing more stored */
	}
	sub->behind = sub->cursor < ib->last_seq;
}

void
inbox_pump(struct inbox *ib)
{
	struct inbox_sub *sub, *next;

	for (sub = TAILQ_FIRST(&ib->subs); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, link);
		if (sub->behind &&
		    server_queued(sub->conn) < INBOX_SUB_QUEUE / 2)
			catch_up(sub);
	}
}

int
inbox_subscribe(struct inbox *ib, const struct inbox_target *t,
    struct inbox_sub **ret)
{
	struct inbox_sub *sub = calloc(1, sizeof(*sub));
	int64_t start = t->after_seq;
	int r = -ENOMEM;

	if (sub == NULL)
		return -ENOMEM;
	sub->ib = ib;
	sub->conn = t->conn;
	sub->run_id = t->run_id;
	sub->done = t->done;
	sub->arg = t->arg;
	if (t->id != NULL && (sub->id = cJSON_Duplicate(t->id, 0)) == NULL)
		goto fail;
	for (size_t i = 0; i < t->nevents && i < INBOX_MAX_FILTERS; i++) {
		sub->events[i] = strdup(t->events[i]);
		if (sub->events[i] == NULL)
			goto fail;
		sub->nevents++;
	}
	if (t->consumer != NULL) {
		int64_t acked = 0;

		sub->consumer = strdup(t->consumer);
		if (sub->consumer == NULL)
			goto fail;
		r = store_consumer_get(ib->st, t->consumer, &acked);
		if (r < 0 && r != -ENOENT)
			goto fail;
		/* A new consumer starts with what is stored from now on. */
		if (r == -ENOENT) {
			acked = start >= 0 ? start : ib->last_seq;
			r = store_consumer_set(ib->st, t->consumer, acked);
			if (r < 0)
				goto fail;
		}
		if (start < 0 || start > acked)
			start = acked;
	}
	sub->cursor = start < 0 ? ib->last_seq : start;
	sub->behind = sub->cursor < ib->last_seq;
	TAILQ_INSERT_TAIL(&ib->subs, sub, link);
	*ret = sub;
	return 0;
fail:
	cJSON_Delete(sub->id);
	free(sub->consumer);
	for (size_t i = 0; i < sub->nevents; i++)
		free(sub->events[i]);
	free(sub);
	return r;
}

void
inbox_unsubscribe(struct inbox_sub *sub)
{
	if (sub != NULL)
		sub_free(sub);
}

int
inbox_ack(struct inbox *ib, const char *consumer, int64_t seq)
{
	int64_t cur = 0;
	int r = store_consumer_get(ib->st, consumer, &cur);

	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && seq <= cur)
		return 0; /* acks only move forward */
	return store_consumer_set(ib->st, consumer, seq);
}

struct replay_ctx {
	struct inbox *ib;
	int64_t to, since;
	int count;
	int64_t last;
};

static int
replay_row_cb(const struct store_webhook *wh, void *arg)
{
	struct replay_ctx *c = arg;
	struct inbox_sub *sub;

	c->last = wh->seq;
	if (c->to > 0 && wh->seq > c->to)
		return 1;
	if (c->since > 0 && wh->received_at < c->since)
		return 0;
	TAILQ_FOREACH(sub, &c->ib->subs, link)
	(void)send_one(sub, wh, true);
	c->count++;
	return 0;
}

int
inbox_replay(struct inbox *ib, int64_t from_seq, int64_t to_seq, int64_t since)
{
	struct replay_ctx c = {.ib = ib, .to = to_seq, .since = since};
	int64_t after = from_seq > 0 ? from_seq - 1 : 0;

	for (int pages = 0; pages < 40; pages++) {
		int r;

		c.last = after;
		r = store_inbox_iter(ib->st, after, INBOX_PAGE, replay_row_cb,
		    &c);
		if (r < 0)
			return r;
		if (r < INBOX_PAGE || (to_seq > 0 && c.last > to_seq))
			break;
		after = c.last;
	}
	return c.count;
}

int64_t
inbox_last_seq(const struct inbox *ib)
{
	return ib->last_seq;
}

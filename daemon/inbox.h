/*
 * SPDX-License-Identifier: MIT
 *
 * Local delivery of received webhooks. The inbox in state.db is the log:
 * every committed delivery has a seq. Subscribers (webhooks.listen) get the
 * deliveries after their cursor, filtered by event type and run id, then
 * live ones; a named durable consumer starts after the seq it acknowledged
 * last, across restarts. Replays re-deliver stored deliveries marked
 * "replayed". Slow subscribers are paced by their queue and detached with
 * "lagged" past the lag limit, as in the stream hub.
 */
#ifndef M8_INBOX_H
#define M8_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct conn;
struct loop;
struct store;
struct store_webhook;
struct inbox;
struct inbox_sub;
struct codec_error;

#define INBOX_MAX_FILTERS 32
#define INBOX_SUB_QUEUE (256u * 1024)
#define INBOX_MAX_LAG 100000 /* deliveries behind before "lagged" */
#define INBOX_PAGE 256       /* rows read per catch-up step */

/* The end of a subscription (only on errors, lag or cancel by the peer). */
typedef void (*inbox_done_cb)(void *arg, const struct codec_error *err,
    long long lagged);

struct inbox_target {
	struct conn *conn;
	const struct cJSON *id;
	int64_t after_seq;    /* -1: only deliveries from now on */
	const char *consumer; /* durable name, or NULL */
	const char *events[INBOX_MAX_FILTERS]; /* fnmatch globs */
	size_t nevents;
	int64_t run_id; /* 0 = any */
	inbox_done_cb done;
	void *arg;
};

int inbox_new(struct loop *loop, struct store *st, struct inbox **ret);
void inbox_free(struct inbox *ib);

/* A delivery was committed (called in seq order). */
void inbox_committed(struct inbox *ib, const struct store_webhook *wh);

int inbox_subscribe(struct inbox *ib, const struct inbox_target *t,
    struct inbox_sub **ret);
void inbox_unsubscribe(struct inbox_sub *sub);

/* Records that consumer has processed everything up to seq. */
int inbox_ack(struct inbox *ib, const char *consumer, int64_t seq);

/*
 * Re-delivers stored deliveries with from_seq <= seq <= to_seq (to_seq 0 =
 * the last), or received at or after since (Unix seconds) when since > 0,
 * to the current subscribers, marked "replayed". Returns how many.
 */
int inbox_replay(struct inbox *ib, int64_t from_seq, int64_t to_seq,
    int64_t since);

/* Called for every committed delivery, after the subscribers. */
void inbox_set_commit_cb(struct inbox *ib,
    void (*cb)(void *arg, const struct store_webhook *wh), void *arg);

/* The highest seq committed so far. */
int64_t inbox_last_seq(const struct inbox *ib);

/* Paces subscribers that were behind (before each sleep). */
void inbox_pump(struct inbox *ib);

/* Builds the event object of a delivery (owned by the caller). */
struct cJSON *inbox_event_json(const struct store_webhook *wh, bool replayed);

#endif

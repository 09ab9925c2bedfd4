/*
 * SPDX-License-Identifier: MIT
 *
 * The stream hub: one upstream event stream per run, read once and fanned
 * out to every local subscriber. Each run's events are logged in order with
 * a sequence number, so a late joiner or a reconnecting client (after_seq)
 * gets exactly what it missed, then live events; a finished run is served
 * from its log without any upstream call. A dropped or stalled upstream is
 * re-attached with GET /runs/{id}/stream, whose history replay is skipped
 * by position so subscribers see no duplicate and no gap. A subscriber that
 * stops reading never slows the others: its queue is bounded, and past the
 * lag limit it gets a final "lagged" line with resume_after and is detached.
 *
 * With state.db, a finished run's log, result and turn are written there
 * in one transaction once its final lines are out (never per event), and
 * a run not in memory is looked up there before anything goes upstream,
 * so finished runs are replayed across restarts. A write that fails (the
 * database busy with another writer) is tried again later, with a warning
 * each time; the log is never dropped without one.
 */
#ifndef M8_STREAMS_H
#define M8_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "methods.h"

struct cJSON;
struct conn;
struct loop;
struct store;
struct upstream;
struct streams;
struct stream_sub;
struct codec_error;

#define STREAMS_SUB_QUEUE ((size_t)64 * 1024) /* queued before pausing */
#define STREAMS_MAX_LAG 4096            /* events behind before "lagged" */
#define STREAMS_MAX_EVENTS 200000       /* events logged per run */
#define STREAMS_MAX_LOG ((size_t)64 * 1024 * 1024) /* bytes logged per run */
#define STREAMS_MAX_FINISHED 256        /* finished runs kept in memory */
#define STREAMS_MAX_REATTACH 5          /* re-attaches of one transfer */
#define STREAMS_SAVE_DELAY_MS 1         /* from a run's end to its write: */
                                        /* the final lines go out first */
#define STREAMS_SAVE_PER_TURN 16        /* runs written per loop turn */
#define STREAMS_SAVE_CHUNK 256          /* events per statement batch */
#define STREAMS_SAVE_RETRY_MS 100       /* first wait after a failed */
#define STREAMS_SAVE_RETRY_MAX_MS 30000 /* write, doubled up to this */
#define STREAMS_SAVE_TRIES 10           /* failed writes before giving up */

/*
 * The end of a subscription, called once: result (the accumulated run,
 * borrowed) or err, or lagged >= 0 with the sequence number to resume
 * after. The subscription is gone when this is called.
 */
typedef void (*stream_done_cb)(void *arg, const struct cJSON *result,
    const struct codec_error *err, long long lagged);

/* Who receives the events of a subscription. */
struct stream_target {
	struct conn *conn;
	const struct cJSON *id; /* the call's id, or NULL */
	bool text_only;         /* only text-delta events */
	uint64_t after_seq;     /* events up to this one are not sent */
	stream_done_cb done;
	void *arg;
};

/* How to start: a POST that streams (create, reply, task run) or attach. */
struct stream_start {
	enum method_verb verb; /* VERB_POST, or VERB_GET to attach */
	const char *path;
	const char *body;
	const char *idem_key;
	bool has_run_id; /* reply and attach know the run up front */
	int64_t run_id;
	const char *user_id; /* scope for a final GET /runs/{id} */
};

int streams_new(struct loop *loop, struct upstream *up, struct streams **ret);
/* Writes the finished runs still waiting for state.db, then frees. */
void streams_free(struct streams *s);

/*
 * Keeps finished runs' logs in st (borrowed; it must outlive s) and looks
 * runs up there. Without it (NULL, the default), logs live in memory only.
 */
void streams_set_store(struct streams *s, struct store *st);

/*
 * Starts or joins the stream described by st for the subscriber t. Returns
 * 0 and the subscription in *ret, or -ENOMEM; every later outcome comes
 * through t->done.
 */
int streams_subscribe(struct streams *s, const struct stream_start *st,
    const struct stream_target *t, struct stream_sub **ret);

/* Ends a subscription without calling its done callback. */
void streams_unsubscribe(struct stream_sub *sub);

/* Sends what subscribers that were behind can take now (before sleep). */
void streams_pump(struct streams *s);

struct streams_stats {
	unsigned long long upstream_streams; /* transfers started */
	unsigned long long reattaches;
	unsigned long long events;
	unsigned long long deliveries;
	unsigned long long lagged;
	size_t runs, subs;
};
void streams_stats(const struct streams *s, struct streams_stats *ret);

#endif

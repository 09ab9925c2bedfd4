/*
 * SPDX-License-Identifier: MIT
 *
 * What streams.c (the hubs: registry, upstream transfer, event log, end
 * of a run), streams_subs.c (the subscribers: fan-out, catching up, lag)
 * and streams_store.c (finished runs in state.db) share: the hub, the
 * subscriber and the handle, and the helpers each calls in the others.
 * Not for other modules: they use streams.h.
 */
#ifndef M8_STREAMS_INT_H
#define M8_STREAMS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "runacc.h"
#include "sse.h"
#include "store.h"
#include "streams.h"

struct loop_timer;
struct up_req;

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

/* streams.c */
/* A new hub on the live list, or NULL. */
struct hub *streams_hub_new(struct streams *s);
/* Frees h: its subscribers (without callbacks), transfer and timers. */
void streams_hub_free(struct hub *h);
/* The hub, live or finished, that follows run_id, or NULL. */
struct hub *streams_hub_find(struct streams *s, int64_t run_id);
/* Back from the finished list for a new turn (a reply). */
void streams_hub_revive(struct hub *h);
/* Starts h's transfer: the request given, or (VERB_GET) an attach. */
void streams_hub_start_transfer(struct hub *h, enum method_verb verb,
    const char *path, const char *body, const char *idem_key);
/* h is finished: onto the finished list, which is kept bounded. */
void streams_retire(struct hub *h);
/* Makes room for one more event in the log: 0, -EFBIG or -ENOMEM. */
int streams_log_reserve(struct hub *h);
/* Logs text (len bytes, NUL-terminated), taking it. */
void streams_log_push_take(struct hub *h, char *text, size_t len,
    bool is_text);

/* streams_subs.c */
/* Unlinks and frees sub; its done callback is not called. */
void streams_sub_free(struct stream_sub *sub);
/* Frees sub, then calls its done callback with the outcome. */
void streams_sub_finish(struct stream_sub *sub, const cJSON *result,
    const struct codec_error *err, long long lagged);
/*
 * Sends the event just logged to each of h's subscribers that keeps up,
 * and now and then looks in on those behind.
 */
void streams_fan_out(struct hub *h);
/* h finished: its subscribers that are not behind get the rest and end. */
void streams_finish_subs(struct hub *h);
/* Moves h's subscribers to other, the hub of the same run; frees h. */
void streams_hub_merge(struct hub *h, struct hub *other, bool from_now);

/* streams_store.c */
/* Writes what state.db lacks of h's log, result and turn: 0 or -errno. */
int streams_hub_save(struct hub *h);
/* h finished: on the list, to be written once its final lines are out. */
void streams_save_later(struct hub *h);
/* Takes h off the save list. */
void streams_save_done(struct hub *h);
/* One write of h: false if it failed and is to be tried again. */
bool streams_save_now(struct hub *h, bool last_try);
/* The hub of run_id, finished, from its log in state.db, or NULL. */
struct hub *streams_hub_load(struct streams *s, int64_t run_id);

#endif

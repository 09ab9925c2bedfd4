/*
 * SPDX-License-Identifier: MIT
 *
 * What webhook.c (libmicrohttpd on the loop: requests, answers, limits)
 * and webhook_writer.c (the thread that commits deliveries to state.db)
 * share: the receiver, its request states and the writer's entry points.
 * Not for other modules: they use webhook.h.
 */
#ifndef M8_WEBHOOK_INT_H
#define M8_WEBHOOK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "webhook.h"

struct MHD_Connection;
struct MHD_Daemon;
struct loop_io;
struct loop_timer;
struct sig_secret;

#define WEBHOOK_MAX_BATCH 512 /* deliveries per transaction */
#define WEBHOOK_MAX_ID 256    /* bytes of a Webhook-Id */
#define WEBHOOK_MAX_TYPE 256  /* bytes of a Content-Type kept */

/*
 * One request, from its headers to its answer (libmicrohttpd's con_cls).
 * While a delivery is with the writer (waiting), the writer owns the
 * fields below "writer"; the loop touches none of them until the result
 * comes back. Should libmicrohttpd close the connection meanwhile (the
 * sender gave up), the request is orphaned, not freed: conn becomes NULL
 * and done_cb frees it when it comes back, stored and announced all the
 * same.
 */
struct req {
	struct MHD_Connection *conn;
	char *body;
	size_t len, cap;
	size_t dropped; /* bytes of an oversized body thrown away */
	bool too_big;
	bool waiting; /* with the writer, unanswered */
	bool parsed;  /* event_type, run_id and headers are set */
	unsigned status;
	struct req *next; /* writer queues; the spare list */

	/* Writer: in, then out. */
	char id[WEBHOOK_MAX_ID + 1];
	char ts[24];
	char ctype[WEBHOOK_MAX_TYPE + 1];
	int64_t received_at;
	char *event_type; /* from the body; NULL if it has none */
	int64_t run_id;
	char *headers; /* JSON object text */
	int result;    /* 0 stored, STORE_DUPLICATE, or -errno */
	int64_t seq;
};

/* One TCP connection (libmicrohttpd's socket context). */
struct wconn {
	int fd;
	uint64_t deadline; /* loop ms by which its request must be in */
	bool busy;   /* its request is in: verifying, storing, answering */
	bool listed; /* in w->conns */
	TAILQ_ENTRY(wconn) link;
};

TAILQ_HEAD(wconn_list, wconn);

struct webhook {
	struct loop *loop;
	struct inbox *inbox;
	struct webhook_config cfg;
	struct MHD_Daemon *mhd;
	struct loop_io *mhd_io;
	struct loop_timer *timer;
	uint64_t timer_at; /* when timer fires */
	unsigned port;
	struct sig_secret *secrets[WEBHOOK_MAX_SECRETS];
	int64_t not_after[WEBHOOK_MAX_SECRETS];
	size_t nsecrets;
	bool unsealed;        /* secrets readable, until seal_timer */
	uint64_t verified_at; /* loop ms of the last verification */
	struct loop_timer *seal_timer;
	char *tls_cert, *tls_key;
	bool started; /* MHD's messages: warnings while starting, then debug */

	/* Connections by deadline (each one's is its last reset + timeout). */
	struct wconn_list conns;
	struct loop_timer *cut_timer;

	struct req *spare; /* request states for reuse */
	size_t nspare;

	/* Verified this turn, for the writer (one handover per MHD_run). */
	struct req *batch, **batch_tail;
	size_t queued; /* at the writer or back from it, not yet answered */

	/* Writer thread. */
	pthread_t writer;
	bool writer_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct req *todo, **todo_tail; /* loop -> writer */
	struct req *done, **done_tail; /* writer -> loop */
	int efd;
	struct loop_io *efd_io;
	char *db_path;

	struct webhook_stats stats;
};

/* The writer thread: pthread_create's start routine, arg the receiver. */
void *webhook_writer_main(void *arg);

/* Event type and run id from the body, into rq; NULL/0 if unknown. */
void webhook_peek_body(struct req *rq);
/* The headers kept with a delivery, as a JSON object; NULL on ENOMEM. */
char *webhook_headers_json(const struct req *rq);

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * The upstream HTTP client: libcurl's multi interface driven by the daemon's
 * loop (sockets through loop_io, curl's one timer through loop_timer), and
 * the SDK's client rules (upstream-api §4): which requests are retried, how
 * often and after how long, Retry-After on 429, the Idempotency-Key re-sent
 * unchanged on every attempt, the bearer token on every request. The only
 * user of curl.h. Never logs a header or a body.
 */
#ifndef M8_UPSTREAM_H
#define M8_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "methods.h"

struct loop;
struct upstream;
struct up_req;

#define UP_MAX_ATTEMPTS 3
#define UP_MAX_BODY (64u * 1024 * 1024) /* bytes of a buffered answer */

/* What came back. Pointers are valid during the done callback only. */
struct up_response {
	long status;            /* HTTP status; 0 when no answer at all */
	const char *body;       /* buffered body (not for a streamed 2xx) */
	size_t body_len;
	const char *content_type;
	const char *request_id; /* X-Request-Id, if any */
	double retry_after;     /* seconds from Retry-After; < 0 = none */
	bool idempotent_replay; /* Idempotent-Replay header present */
	bool streamed;          /* the body went to the data callback */
	int error;              /* 0, or -errno for a transport failure */
	const char *error_text; /* transport failure in words */
	int attempts;
};

/* Final answer (or failure) of one request; called exactly once. */
typedef void (*up_done_cb)(const struct up_response *resp, void *arg);
/*
 * Streaming body bytes of a 2xx text/event-stream answer (not an
 * Idempotent-Replay). Return 0 to go on, < 0 to abort the transfer.
 */
typedef int (*up_data_cb)(const char *p, size_t len, void *arg);
/* The API key to send, or NULL when there is none. */
typedef const char *(*up_key_cb)(void *arg);

struct up_opts {
	enum method_verb verb;
	const char *path;     /* below the base URL, with the query */
	const char *url;      /* instead of path: an absolute URL of a local
			       * service; sent without the API key and
			       * never retried */
	const char *body;     /* JSON, or NULL */
	const char *idem_key; /* Idempotency-Key, or NULL */
	const char *key;      /* a key to use instead of the daemon's (to
			       * validate a new one), or NULL */
	up_done_cb done;
	up_data_cb data;      /* non-NULL: a streaming request */
	bool raw;             /* with data: every 2xx body goes to data
			       * (a download), not only event streams */
	void *arg;
};

struct upstream_config {
	const char *base_url;       /* e.g. https://api.m8tes.ai/api/v2 */
	unsigned timeout_s;         /* connect and read-inactivity timeout */
	double max_retry_after_s;   /* a longer Retry-After is not waited */
	double backoff_base_s;      /* 0.5: waits 0.5 s, then 1 s */
	up_key_cb key;
	void *key_arg;
};

/* Process-wide libcurl set-up; call once from main. -EIO on failure. */
int upstream_global_init(void);
void upstream_global_done(void);

int upstream_new(struct loop *loop, const struct upstream_config *cfg,
    struct upstream **ret);
void upstream_free(struct upstream *up);

/* Replaces the base URL (on reload). -ENOMEM. */
int upstream_set_base_url(struct upstream *up, const char *url);

/*
 * Replaces the timeout, the longest Retry-After waited and the first
 * retry's wait (on reload), for the attempts that start from now on.
 */
void upstream_set_limits(struct upstream *up, unsigned timeout_s,
    double max_retry_after_s, double backoff_base_s);

/* The connect and read-inactivity timeout, in seconds. */
unsigned upstream_timeout_s(const struct upstream *up);

/*
 * Starts a request. The done callback runs later, from the loop, never from
 * inside this call. Returns 0 and the request in *ret (valid until done
 * runs or upstream_cancel), -ENOMEM, or -ENOKEY without an API key.
 */
int upstream_start(struct upstream *up, const struct up_opts *o,
    struct up_req **ret);

/* Stops a request; its done callback never runs. NULL is a no-op. */
void upstream_cancel(struct upstream *up, struct up_req *req);

/*
 * Whether upstream-api §4.2 allows retrying a request: GET and DELETE
 * always, POST only with an Idempotency-Key on the five run routes, PATCH
 * never. path is below the base URL; a query is ignored.
 */
bool upstream_retry_eligible(enum method_verb verb, const char *path,
    bool has_key);

/* Parses a Retry-After value as seconds; < 0 when not a number. */
double upstream_parse_retry_after(const char *s);

struct upstream_stats {
	unsigned long long requests; /* attempts sent */
	unsigned long long retries;
	unsigned long long failures;
	unsigned active;
};
void upstream_stats(const struct upstream *up, struct upstream_stats *ret);

#endif

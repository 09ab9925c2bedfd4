/*
 * SPDX-License-Identifier: MIT
 *
 * Dispatch: the one place that knows every method. It decodes request lines,
 * checks them against the method table, keeps each connection's calls in
 * flight, answers the daemon's own methods and drives the upstream ones
 * (one request, a poll on timers, a wait, a download) to their single final
 * reply line.
 */
#ifndef M8_DISPATCH_H
#define M8_DISPATCH_H

#include <stdbool.h>
#include <sys/types.h>

struct loop;
struct server;
struct upstream;
struct conn;
struct dispatch;
struct sig_key;
struct streams;
struct store;
struct inbox;
struct webhook;
struct audit;
struct policy;
struct cache;

#define DISPATCH_MAX_CALLS 256 /* calls in flight per connection */

struct dispatch_config {
	double poll_interval_s; /* runs.poll default interval */
	double poll_timeout_s;  /* runs.poll default timeout */
	uid_t admin_uid;        /* besides root, who may call admin methods */
};

int dispatch_new(struct loop *loop, struct upstream *up, struct sig_key *key,
    const struct dispatch_config *cfg, struct dispatch **ret);
void dispatch_free(struct dispatch *d);

/* The server's handlers (server_handlers.line/overlong/closed). */
void dispatch_line(struct conn *c, const char *line, size_t len, void *arg);
void dispatch_overlong(struct conn *c, void *arg);
int dispatch_accepted(struct conn *c, void *arg, const char **ret_reason);
void dispatch_closed(struct conn *c, void *arg);
size_t dispatch_pending(struct conn *c, void *arg);

/* Lets daemon.stats report the server's counters. */
void dispatch_set_server(struct dispatch *d, struct server *s);
/* Where streaming methods go. */
void dispatch_set_streams(struct dispatch *d, struct streams *s);

/* The durable store, the webhook inbox and receiver (any may be NULL). */
void dispatch_set_webhooks(struct dispatch *d, struct store *st,
    struct inbox *ib, struct webhook *w);

/* Where upstream calls are audited (NULL: not at all). */
void dispatch_set_audit(struct dispatch *d, struct audit *a);
/* Where the key came from ("file", "credentials", "env", "login", …). */
void dispatch_set_key_source(struct dispatch *d, const char *source);

/* The response and file cache (NULL: none). */
void dispatch_set_cache(struct dispatch *d, struct cache *c);
/* Who may call what, per peer (NULL: everyone everything but admin). */
void dispatch_set_policy(struct dispatch *d, struct policy *p);
/* What daemon.reload runs: 0, or -errno with a reason in err. */
void dispatch_set_reload(struct dispatch *d,
    int (*fn)(void *arg, char *err, size_t errlen), void *arg);
/* The runs.poll interval used when a call gives none. */
void dispatch_set_poll_interval(struct dispatch *d, double seconds);

/* True once daemon.shutdown was called. */
bool dispatch_shutdown_requested(const struct dispatch *d);

#endif

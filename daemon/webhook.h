/*
 * SPDX-License-Identifier: MIT
 *
 * The webhook receiver: libmicrohttpd in external-epoll mode on the daemon's
 * loop. A delivery is size- and header-checked, verified over its raw bytes
 * (sig_verify, every configured secret), then handed to a writer thread that
 * inserts deliveries in batches and commits them durably; only after that
 * commit does the sender get its 2xx. The loop never waits for an fsync.
 * Committed deliveries go to the inbox module for local delivery. The only
 * user of microhttpd.h.
 */
#ifndef M8_WEBHOOK_H
#define M8_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct webhook;
struct inbox;

#define WEBHOOK_MAX_SECRETS 16
#define WEBHOOK_MAX_HEADER 16384 /* request line + headers, bytes */
#define WEBHOOK_MAX_CONNS 1024   /* connections the daemon opens with */
#define WEBHOOK_TIMEOUT_S 10     /* seconds the daemon opens with */

struct webhook_config {
	const char *listen;   /* "ADDR:PORT"; port 0 picks a free one */
	const char *state_db; /* path of state.db, for the writer thread */
	uint32_t tolerance_s; /* timestamp window; 0 = off */
	size_t max_body;      /* bytes; larger gets 413 */
	unsigned max_conns;   /* concurrent HTTP connections (> 0) */
	unsigned timeout_s;   /* seconds (> 0) a connection may be silent, */
	                      /* and may take to deliver one request */
	const char *tls_cert; /* PEM files for HTTPS, or NULL */
	const char *tls_key;
};

/*
 * Starts listening. Returns 0 and the receiver in *ret, -EADDRINUSE,
 * -EINVAL for a bad address, or -errno.
 */
int webhook_new(struct loop *loop, struct inbox *inbox,
    const struct webhook_config *cfg, struct webhook **ret);
void webhook_free(struct webhook *w);

/* The port actually bound (useful with port 0). */
unsigned webhook_port(const struct webhook *w);

/*
 * Adds a signing secret (copied into guarded memory). not_after (Unix
 * seconds, 0 = never) ends a rotation overlap. -ENOSPC past
 * WEBHOOK_MAX_SECRETS (the oldest expiring one is then replaced), -ENOMEM.
 */
int webhook_add_secret(struct webhook *w, const char *secret, size_t len,
    int64_t not_after);
/*
 * Forgets every secret (wiped): a reload then adds the new set, those
 * captured into state.db included.
 */
void webhook_clear_secrets(struct webhook *w);
size_t webhook_secret_count(const struct webhook *w);

struct webhook_stats {
	unsigned long long received, stored, duplicates, rejected;
	unsigned long long timed_out; /* connections cut for taking too long */
};
void webhook_stats(const struct webhook *w, struct webhook_stats *ret);

#endif

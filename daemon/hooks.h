/*
 * SPDX-License-Identifier: MIT
 *
 * Local hooks for received webhooks: run a command with the delivery on its
 * standard input, or POST it to a local URL. Each hook is a durable inbox
 * consumer ("hook:NAME"): it walks the inbox in seq order, runs at most
 * max_concurrent deliveries at a time, retries a failed one with backoff,
 * and acknowledges a seq only when it and everything before it are done,
 * so a restart resumes without losing or repeating a finished delivery.
 */
#ifndef M8_HOOKS_H
#define M8_HOOKS_H

#include <stddef.h>

struct loop;
struct store;
struct upstream;
struct hooks;

#define HOOKS_MAX 32
#define HOOK_MAX_EVENTS 16

struct hook_def {
	const char *name;
	const char *events[HOOK_MAX_EVENTS]; /* fnmatch globs; none = all */
	size_t nevents;
	const char *exec;        /* sh -c command, or NULL */
	const char *url;         /* http(s) URL to POST to, or NULL */
	unsigned max_concurrent; /* deliveries in flight (default 4) */
	unsigned retries;        /* attempts after the first (default 5) */
	unsigned timeout_s;      /* per attempt (default 30) */
};

/*
 * Copies the definitions, strings included. -EINVAL for a hook with
 * neither or both of exec and url, -ENOMEM.
 */
int hooks_new(struct loop *loop, struct store *st, struct upstream *up,
    const struct hook_def *defs, size_t n, struct hooks **ret);
void hooks_free(struct hooks *h);

/* New deliveries are in the inbox: start what the limits allow. */
void hooks_kick(struct hooks *h);

struct hooks_stats {
	unsigned long long delivered, failed_attempts, given_up;
};
void hooks_stats(const struct hooks *h, struct hooks_stats *ret);

#endif

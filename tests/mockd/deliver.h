/*
 * SPDX-License-Identifier: MIT
 *
 * The outbound webhook delivery driver behind POST /__mock/deliver: signs
 * payloads the way m8tes does (§9.2: Webhook-Id, Webhook-Timestamp and
 * Webhook-Signature "v1=" + lowercase hex HMAC-SHA256 over
 * "<id>.<timestamp>.<body>" keyed with the secret's bytes) and POSTs them,
 * correctly or broken on purpose, to a URL under test. The only user of
 * libcurl and libsodium in the mock.
 */
#ifndef MOCKD_DELIVER_H
#define MOCKD_DELIVER_H

#include <stddef.h>

struct mreq;
struct mresp;

#define DELIVER_MAX_COUNT 10000 /* posts per request */
#define DELIVER_TIMEOUT_MS 5000 /* default per post */
#define DELIVER_STALE_S 3600    /* skew of "stale" and "future" */

/*
 * Initialise libcurl and libsodium and check the signer against the
 * §9.2 test vectors. 0, -ENOMEM or -EPROTO (a vector did not match).
 */
int deliver_init(void);
void deliver_done(void);

/*
 * "v1=" + hex HMAC-SHA256(secret, id "." ts "." body) into sig (at least
 * 68 bytes). 0 or -EIO.
 */
int deliver_sign(const char *secret, const char *id, const char *ts,
    const char *body, size_t body_len, char *sig, size_t len);

/* Serve POST /__mock/deliver; 0 or -ENOMEM. Runs without the lock. */
int deliver_handle(struct mreq *req, struct mresp *resp);

#endif

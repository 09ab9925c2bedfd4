/*
 * SPDX-License-Identifier: MIT
 *
 * The test-facing side of the mock, outside /api/v2 and without auth:
 * the request recorder, scripted faults, /__mock/config, reset and health.
 * The recorder and the fault list live under the global store lock.
 */
#ifndef MOCKD_INSPECT_H
#define MOCKD_INSPECT_H

#include <cjson/cJSON.h>

#define INSPECT_MAX_RECORDS 10000      /* ring size */
#define INSPECT_MAX_BODY (1u << 20)    /* recorded body bytes */
#define INSPECT_MAX_BYTES (256u << 20) /* body bytes the ring holds */

struct mreq;
struct mresp;

int inspect_init(void);
void inspect_done(void);

/* Forget all records and faults (the lock must be held). */
void inspect_clear(void);

/* Record one API request; 0 or -ENOMEM (takes the lock itself). */
int inspect_record(const struct mreq *req);

/*
 * Find the first fault rule matching the request, consume one use of it and
 * return a copy (the caller frees it), or NULL when none matches.
 */
cJSON *inspect_fault_take(const struct mreq *req);

/*
 * Fill resp from a fault rule's answer part (status, headers, body or
 * envelope). Returns 0 or -ENOMEM.
 */
int inspect_fault_answer(const cJSON *rule, const struct mreq *req,
    struct mresp *resp);

/* Serve a /__mock/ request; 0 or -ENOMEM. */
int inspect_handle(struct mreq *req, struct mresp *resp);

#endif

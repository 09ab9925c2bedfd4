/*
 * SPDX-License-Identifier: MIT
 *
 * Who used the shared key: one row per upstream call (uid, pid, process
 * name, method, status, duration) in state.db. Rows are buffered and
 * written in one transaction every AUDIT_FLUSH_MS, so auditing never costs
 * an fsync per call; retention is bounded by count and age.
 */
#ifndef M8_AUDIT_H
#define M8_AUDIT_H

#include <stdint.h>
#include <sys/types.h>

struct loop;
struct store;
struct audit;
struct cJSON;

#define AUDIT_FLUSH_MS 200
#define AUDIT_MAX_PENDING 4096  /* rows buffered; more are counted, dropped */
#define AUDIT_KEEP_ROWS 100000

/* keep_days: rows older than that are dropped (0 = kept for ever). */
int audit_new(struct loop *loop, struct store *st, unsigned keep_days,
    struct audit **ret);
/* Writes what is buffered, then frees. NULL is a no-op. */
void audit_free(struct audit *a);

/* Records one call; comm may be NULL. Cheap: no I/O here. */
void audit_record(struct audit *a, uid_t uid, pid_t pid, const char *comm,
    const char *method, long status, uint64_t duration_ms);

/* {"data":[…]} newest first; uid < 0 = all. NULL on error (-errno set). */
struct cJSON *audit_list(struct audit *a, int64_t uid, const char *method_glob,
    int64_t since_ms, unsigned limit);

#endif

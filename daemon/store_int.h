/*
 * SPDX-License-Identifier: MIT
 *
 * What store.c (the database, its statements and transactions, the API
 * key, store_prune and the audit log), store_inbox.c (the webhook inbox,
 * its consumers and the webhook secrets) and store_runs.c (the run logs
 * and status) share: the handle, the prepared statements, the row
 * callbacks' context and the SQLite helpers. Not for other modules: they
 * use store.h. Helpers follow the module's rules: -errno returns, binders
 * keep the first failure in *rc, statements are reset and unbound before
 * a helper returns.
 */
#ifndef M8_STORE_INT_H
#define M8_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SP_BEGIN,
	ST_SP_RELEASE,
	ST_SP_ROLLBACK,
	ST_INBOX_ADD,
	ST_INBOX_IDS,
	ST_INBOX_MIN,
	ST_INBOX_ITER,
	ST_INBOX_GET,
	ST_INBOX_LAST,
	ST_INBOX_NEXT,
	ST_CONSUMER_GET,
	ST_CONSUMER_SET,
	ST_CONSUMER_DEL,
	ST_SECRET_ADD,
	ST_SECRET_LIST,
	ST_SECRET_NOT_AFTER,
	ST_SECRET_DEL,
	ST_KEY_SET,
	ST_KEY_GET,
	ST_KEY_CLEAR,
	ST_RUN_TOUCH,
	ST_RUN_APPEND,
	ST_RUN_ITER,
	ST_RUN_LAST,
	ST_RUN_TERMINAL,
	ST_RUN_STATUS,
	ST_RUN_FINISH,
	ST_RUN_GET,
	ST_RUN_DEL_EVENTS,
	ST_RUN_DEL,
	ST_PRUNE_INBOX_SEQ,
	ST_PRUNE_INBOX_AGE,
	ST_PRUNE_RUN_COUNT,
	ST_PRUNE_RUN_AGED,
	ST_PRUNE_RUN_OLDEST,
	ST_PRUNE_RUN_DOOMED,
	ST_PRUNE_RUN_DOOM,
	ST_PRUNE_RUN_EVENTS,
	ST_PRUNE_RUN_DEL,
	ST_AUDIT_ADD,
	ST_AUDIT_LIST,
	ST_AUDIT_PRUNE,
	ST__MAX
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST__MAX];
	bool in_batch; /* between BEGIN IMMEDIATE and COMMIT/ROLLBACK */
	struct idset *ids;               /* the inbox's webhook ids, or NULL */
	struct idset_digest *pending;    /* added by the open batch */
	size_t npending, pendcap;
	unsigned since_trim;
	bool defer_ckpt; /* checkpoints by store_checkpoint_due only */
	int wal_pages;   /* in the WAL after the last commit (deferred) */
};

/* What an iterator hands its per-row function. */
struct iter_ctx {
	union {
		store_inbox_cb inbox;
		store_secret_cb secret;
		store_run_cb run;
		store_run_info_cb run_info;
		store_audit_cb audit;
	} cb;
	void *arg;
};

typedef int (*row_fn)(sqlite3_stmt *s, const struct iter_ctx *c);

/* store.c */
/* 0 means "none" in the API and NULL in the database. */
void store_bind_opt_int(sqlite3_stmt *s, int i, int64_t v, int *rc);
/* Steps a statement that returns no rows to completion, then resets it. */
int store_exec(sqlite3_stmt *s, int rc);
/* A one-column query: 1 and the value, 0 if no row, or -errno. */
int store_query_int(sqlite3_stmt *s, int rc, int64_t *ret);
/* As store_query_int for an aggregate: 0 and the value (0 if none). */
int store_query_int0(sqlite3_stmt *s, int rc, int64_t *ret);
/* After an UPDATE or DELETE by key: -ENOENT if it matched nothing. */
int store_changes_or_enoent(struct store *st, int r);
/* Steps s to its end, calling fn per row; resets s. Rows seen or -errno. */
int store_for_each_row(sqlite3_stmt *s, int rc, row_fn fn,
    const struct iter_ctx *c);
/* Opens a savepoint: a nested transaction in a batch, its own outside. */
int store_sp_begin(struct store *st);
/* Releases the savepoint if r >= 0, else rolls it back. r or -errno. */
int store_sp_end(struct store *st, int r);
/* LIMIT argument: 0 = none (-1 to SQLite); capped so counts fit an int. */
int store_limit_arg(size_t limit);

/* store_inbox.c */
/* Drops the ids of rows pruned since from the in-memory set. */
void store_trim_ids(struct store *st);
/* Inbox rows past the count or the age limit, oldest first, in *budget. */
int store_prune_inbox(struct store *st, const struct store_retention *r,
    int64_t now, int64_t *budget);

/* store_runs.c */
/* Runs past the retention limits, one at a time, within *budget. */
int store_prune_runs(struct store *st, const struct store_retention *r,
    int64_t now, int64_t *budget);

#endif

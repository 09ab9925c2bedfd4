/*
 * SPDX-License-Identifier: MIT
 *
 * The webhook inbox of state.db (see store.c for the store as a whole):
 * inserts, with duplicate webhook ids caught in memory (idset.h) and the
 * open batch's new ids kept to be forgotten if it rolls back; reads in seq
 * order and by id; the consumers' cursors; the webhook signing secrets;
 * and the inbox's part of store_prune.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "idset.h"
#include "sqlutil.h"
#include "store.h"
#include "store_int.h"

/* Webhook ids are checked for duplicates in memory, by the inserter. */
#define STORE_TRIM_EVERY 4096 /* inserts between looks for pruned rows */

static int grow_pending(struct store *st);
static int load_ids(struct store *st);
static int inbox_row(sqlite3_stmt *s, const struct iter_ctx *c);
static int secret_row(sqlite3_stmt *s, const struct iter_ctx *c);

static int
grow_pending(struct store *st)
{
	size_t cap = st->pendcap ? st->pendcap * 2 : 64;
	struct idset_digest *p = reallocarray(st->pending, cap, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	st->pending = p;
	st->pendcap = cap;
	return 0;
}

int
store_inbox_load(struct store *st)
{
	return load_ids(st);
}

/* Out of the set: the ids of rows pruned since (from any connection). */
void
store_trim_ids(struct store *st)
{
	int64_t min = 0;

	st->since_trim = 0;
	if (store_query_int(st->stmt[ST_INBOX_MIN], SQLITE_OK, &min) >= 0)
		idset_trim(st->ids, min > 0 ? min : INT64_MAX);
}

/*
 * The inbox's ids, read on the first insert through this connection, and
 * now and then cut back to the rows pruning left (from any connection).
 */
static int
load_ids(struct store *st)
{
	sqlite3_stmt *s = st->stmt[ST_INBOX_IDS];
	int rc, r = 0;

	if (st->ids != NULL) {
		if (++st->since_trim < STORE_TRIM_EVERY || st->in_batch)
			return 0;
		store_trim_ids(st);
		return 0;
	}
	if ((r = idset_new(&st->ids)) < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 1);
		struct idset_digest d;

		if (id == NULL)
			continue;
		idset_digest(id, (size_t)sqlite3_column_bytes(s, 1), &d);
		if ((r = idset_put(st->ids, &d, sqlite3_column_int64(s, 0))) < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sqlutil_errno(rc);
	sqlutil_reset(s);
	if (r < 0) {
		idset_free(st->ids);
		st->ids = NULL;
	}
	return r;
}

int
store_inbox_add(struct store *st, const struct store_webhook *wh,
    int64_t *ret_seq)
{
	sqlite3_stmt *s = st->stmt[ST_INBOX_ADD];
	struct idset_digest d;
	int64_t seq;
	int rc = SQLITE_OK, r;

	assert(wh != NULL && ret_seq != NULL);
	assert(wh->body != NULL || wh->body_len == 0);
	if (wh->webhook_id == NULL || *wh->webhook_id == '\0')
		return -EINVAL;
	if (wh->body_len > INT_MAX)
		return -E2BIG;
	if ((r = load_ids(st)) < 0)
		return r;
	/*
	 * Look before inserting: a duplicate must not take a number (seqs
	 * have gaps only where rows were pruned), and a pending row of the
	 * open batch counts.
	 */
	idset_digest(wh->webhook_id, strlen(wh->webhook_id), &d);
	if ((seq = idset_get(st->ids, &d)) > 0) {
		*ret_seq = seq;
		return STORE_DUPLICATE;
	}
	if (st->in_batch && st->npending == st->pendcap &&
	    (r = grow_pending(st)) < 0)
		return r;
	sqlutil_bind_text(s, 1, wh->webhook_id, &rc);
	sqlutil_bind_int(s, 2, wh->received_at, &rc);
	sqlutil_bind_text(s, 3, wh->event_type, &rc);
	store_bind_opt_int(s, 4, wh->run_id, &rc);
	sqlutil_bind_text(s, 5, wh->headers != NULL ? wh->headers : "{}", &rc);
	/* A NULL blob pointer would bind NULL, not an empty body. */
	if (rc == SQLITE_OK)
		rc = wh->body_len > 0 ? sqlite3_bind_blob(s, 6, wh->body,
		                            (int)wh->body_len, SQLITE_STATIC)
		                      : sqlite3_bind_zeroblob(s, 6, 0);
	r = store_exec(s, rc);
	if (r < 0)
		return r;
	seq = sqlite3_last_insert_rowid(st->db);
	/*
	 * Stored. Should the set not take it, a repeat would be stored
	 * again: a second copy, never a lost one.
	 */
	if (idset_put(st->ids, &d, seq) == 0 && st->in_batch)
		st->pending[st->npending++] = d;
	*ret_seq = seq;
	return 0;
}

static int
inbox_row(sqlite3_stmt *s, const struct iter_ctx *c)
{
	struct store_webhook wh;

	wh.seq = sqlite3_column_int64(s, 0);
	wh.webhook_id = (const char *)sqlite3_column_text(s, 1);
	wh.received_at = sqlite3_column_int64(s, 2);
	wh.event_type = (const char *)sqlite3_column_text(s, 3);
	wh.run_id = sqlite3_column_int64(s, 4);
	wh.headers = (const char *)sqlite3_column_text(s, 5);
	wh.body = sqlite3_column_blob(s, 6);
	wh.body_len = (size_t)sqlite3_column_bytes(s, 6);
	/* NOT NULL columns read as NULL only when SQLite is out of memory. */
	if (wh.webhook_id == NULL || wh.headers == NULL ||
	    (wh.body == NULL && wh.body_len > 0))
		return -ENOMEM;
	if (wh.body == NULL)
		wh.body = "";
	return c->cb.inbox(&wh, c->arg);
}

int
store_inbox_iter(struct store *st, int64_t after_seq, size_t limit,
    store_inbox_cb cb, void *arg)
{
	sqlite3_stmt *s = st->stmt[ST_INBOX_ITER];
	struct iter_ctx c = {.cb.inbox = cb, .arg = arg};
	int rc = SQLITE_OK;

	assert(cb != NULL);
	if (sqlite3_stmt_busy(s))
		return -EBUSY;
	sqlutil_bind_int(s, 1, after_seq, &rc);
	sqlutil_bind_int(s, 2, store_limit_arg(limit), &rc);
	return store_for_each_row(s, rc, inbox_row, &c);
}

int
store_inbox_get(struct store *st, const char *webhook_id, store_inbox_cb cb,
    void *arg)
{
	sqlite3_stmt *s = st->stmt[ST_INBOX_GET];
	struct iter_ctx c = {.cb.inbox = cb, .arg = arg};
	int rc = SQLITE_OK, r;

	assert(webhook_id != NULL && cb != NULL);
	if (sqlite3_stmt_busy(s))
		return -EBUSY;
	sqlutil_bind_text(s, 1, webhook_id, &rc);
	r = store_for_each_row(s, rc, inbox_row, &c);
	return r == 0 ? -ENOENT : r;
}

int
store_inbox_last_seq(struct store *st, int64_t *ret_seq)
{
	/* sqlite_sequence keeps the AUTOINCREMENT high-water mark. */
	return store_query_int0(st->stmt[ST_INBOX_LAST], SQLITE_OK, ret_seq);
}

int
store_inbox_next_seq(struct store *st, int64_t after_seq, int64_t *ret_seq)
{
	sqlite3_stmt *s = st->stmt[ST_INBOX_NEXT];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, after_seq, &rc);
	return store_query_int0(s, rc, ret_seq); /* min() of no rows: NULL, 0 */
}

int
store_consumer_get(struct store *st, const char *name, int64_t *ret_acked)
{
	sqlite3_stmt *s = st->stmt[ST_CONSUMER_GET];
	int64_t acked = 0;
	int rc = SQLITE_OK, r;

	assert(name != NULL && ret_acked != NULL);
	sqlutil_bind_text(s, 1, name, &rc);
	r = store_query_int(s, rc, &acked);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	*ret_acked = acked;
	return 0;
}

int
store_consumer_set(struct store *st, const char *name, int64_t acked_seq)
{
	sqlite3_stmt *s = st->stmt[ST_CONSUMER_SET];
	int rc = SQLITE_OK;

	assert(name != NULL);
	sqlutil_bind_text(s, 1, name, &rc);
	sqlutil_bind_int(s, 2, acked_seq, &rc);
	return store_exec(s, rc);
}

int
store_consumer_del(struct store *st, const char *name)
{
	sqlite3_stmt *s = st->stmt[ST_CONSUMER_DEL];
	int rc = SQLITE_OK;

	assert(name != NULL);
	sqlutil_bind_text(s, 1, name, &rc);
	return store_changes_or_enoent(st, store_exec(s, rc));
}

int
store_secret_add(struct store *st, const char *secret, const char *endpoint_id,
    int64_t created_at, int64_t not_after, int64_t *ret_id)
{
	sqlite3_stmt *s = st->stmt[ST_SECRET_ADD];
	int rc = SQLITE_OK, r;

	assert(secret != NULL);
	if (*secret == '\0')
		return -EINVAL;
	sqlutil_bind_text(s, 1, secret, &rc);
	sqlutil_bind_text(s, 2, endpoint_id, &rc);
	sqlutil_bind_int(s, 3, created_at, &rc);
	store_bind_opt_int(s, 4, not_after, &rc);
	r = store_exec(s, rc);
	if (r == 0 && ret_id != NULL)
		*ret_id = sqlite3_last_insert_rowid(st->db);
	return r;
}

static int
secret_row(sqlite3_stmt *s, const struct iter_ctx *c)
{
	struct store_secret sec;

	sec.id = sqlite3_column_int64(s, 0);
	sec.secret = (const char *)sqlite3_column_text(s, 1);
	sec.endpoint_id = (const char *)sqlite3_column_text(s, 2);
	sec.created_at = sqlite3_column_int64(s, 3);
	sec.not_after = sqlite3_column_int64(s, 4);
	if (sec.secret == NULL)
		return -ENOMEM;
	return c->cb.secret(&sec, c->arg);
}

int
store_secret_list(struct store *st, store_secret_cb cb, void *arg)
{
	sqlite3_stmt *s = st->stmt[ST_SECRET_LIST];
	struct iter_ctx c = {.cb.secret = cb, .arg = arg};

	assert(cb != NULL);
	if (sqlite3_stmt_busy(s))
		return -EBUSY;
	return store_for_each_row(s, SQLITE_OK, secret_row, &c);
}

int
store_secret_set_not_after(struct store *st, int64_t id, int64_t not_after)
{
	sqlite3_stmt *s = st->stmt[ST_SECRET_NOT_AFTER];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, id, &rc);
	store_bind_opt_int(s, 2, not_after, &rc);
	return store_changes_or_enoent(st, store_exec(s, rc));
}

int
store_secret_del(struct store *st, int64_t id)
{
	sqlite3_stmt *s = st->stmt[ST_SECRET_DEL];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, id, &rc);
	return store_changes_or_enoent(st, store_exec(s, rc));
}

/* Inbox rows past the count or the age limit, oldest first. */
int
store_prune_inbox(struct store *st, const struct store_retention *r,
    int64_t now, int64_t *budget)
{
	sqlite3_stmt *s;
	int64_t last = 0;
	int rc = SQLITE_OK, e;

	if (r->inbox_max_count > 0 && *budget > 0) {
		e = store_inbox_last_seq(st, &last);
		if (e < 0)
			return e;
		s = st->stmt[ST_PRUNE_INBOX_SEQ];
		sqlutil_bind_int(s, 1, last - r->inbox_max_count, &rc);
		sqlutil_bind_int(s, 2, *budget, &rc);
		e = store_exec(s, rc);
		if (e < 0)
			return e;
		*budget -= sqlite3_changes(st->db);
	}
	if (r->inbox_max_age > 0 && *budget > 0) {
		s = st->stmt[ST_PRUNE_INBOX_AGE];
		sqlutil_bind_int(s, 1, now - r->inbox_max_age, &rc);
		sqlutil_bind_int(s, 2, *budget, &rc);
		e = store_exec(s, rc);
		if (e < 0)
			return e;
		*budget -= sqlite3_changes(st->db);
	}
	return 0;
}

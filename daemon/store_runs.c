/*
 * SPDX-License-Identifier: MIT
 *
 * The run logs of state.db (see store.c for the store as a whole): events
 * appended under the caller's seq numbers and read back in order, the
 * run_status row (terminal flag, final result and turn), and the runs'
 * part of store_prune: a half-pruned run first, then runs idle past the
 * age limit, then the oldest terminal runs beyond the count limit.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>

#include <sqlite3.h>

#include "sqlutil.h"
#include "store.h"
#include "store_int.h"

static int run_row(sqlite3_stmt *s, const struct iter_ctx *c);
static int run_info_row(sqlite3_stmt *s, const struct iter_ctx *c);
static int
pick_run(sqlite3_stmt *s, int rc, int64_t *ret_run_id, int *ret_state);
static int prune_one_run(struct store *st, int64_t run_id, int64_t *budget);

int
store_run_append(struct store *st, int64_t run_id, int64_t seq,
    const char *event, size_t len, int64_t now)
{
	struct store_run_event ev = {
	    .run_id = run_id, .seq = seq, .event = event, .len = len};

	assert(event != NULL);
	return store_run_append_many(st, run_id, &ev, 1, now);
}

int
store_run_append_many(struct store *st, int64_t run_id,
    const struct store_run_event *evs, size_t n, int64_t now)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_APPEND];
	int rc = SQLITE_OK, r;

	assert(evs != NULL || n == 0);
	for (size_t i = 0; i < n; i++)
		if (evs[i].len > INT_MAX)
			return -E2BIG;
	r = store_sp_begin(st);
	if (r < 0)
		return r;
	/* One statement per event and one savepoint for them all. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		sqlutil_bind_int(s, 1, run_id, &rc);
		sqlutil_bind_int(s, 2, evs[i].seq, &rc);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(s, 3, evs[i].event,
			    (int)evs[i].len, SQLITE_STATIC);
		r = store_exec(s, rc);
	}
	if (r == 0) {
		s = st->stmt[ST_RUN_TOUCH];
		sqlutil_bind_int(s, 1, run_id, &rc);
		sqlutil_bind_int(s, 2, now, &rc);
		r = store_exec(s, rc);
	}
	return store_sp_end(st, r);
}

static int
run_row(sqlite3_stmt *s, const struct iter_ctx *c)
{
	struct store_run_event ev;

	ev.run_id = sqlite3_column_int64(s, 0);
	ev.seq = sqlite3_column_int64(s, 1);
	ev.event = (const char *)sqlite3_column_text(s, 2);
	ev.len = (size_t)sqlite3_column_bytes(s, 2);
	if (ev.event == NULL)
		return -ENOMEM;
	return c->cb.run(&ev, c->arg);
}

int
store_run_iter(struct store *st, int64_t run_id, int64_t after_seq,
    size_t limit, store_run_cb cb, void *arg)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_ITER];
	struct iter_ctx c = {.cb.run = cb, .arg = arg};
	int rc = SQLITE_OK;

	assert(cb != NULL);
	if (sqlite3_stmt_busy(s))
		return -EBUSY;
	sqlutil_bind_int(s, 1, run_id, &rc);
	sqlutil_bind_int(s, 2, after_seq, &rc);
	sqlutil_bind_int(s, 3, store_limit_arg(limit), &rc);
	return store_for_each_row(s, rc, run_row, &c);
}

int
store_run_last_seq(struct store *st, int64_t run_id, int64_t *ret_seq)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_LAST];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, run_id, &rc);
	return store_query_int0(s, rc, ret_seq); /* max() of no rows: NULL, 0 */
}

int
store_run_mark_terminal(struct store *st, int64_t run_id, int64_t now)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_TERMINAL];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, run_id, &rc);
	sqlutil_bind_int(s, 2, now, &rc);
	return store_exec(s, rc);
}

int
store_run_status(struct store *st, int64_t run_id, bool *ret_terminal)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_STATUS];
	int64_t terminal = 0;
	int rc = SQLITE_OK, r;

	assert(ret_terminal != NULL);
	sqlutil_bind_int(s, 1, run_id, &rc);
	r = store_query_int(s, rc, &terminal);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	*ret_terminal = terminal != 0;
	return 0;
}

int
store_run_finish(struct store *st, int64_t run_id, const char *result,
    size_t len, int64_t turn, int64_t now)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_FINISH];
	int rc = SQLITE_OK;

	assert(result != NULL);
	if (len > INT_MAX)
		return -E2BIG;
	sqlutil_bind_int(s, 1, run_id, &rc);
	sqlutil_bind_int(s, 2, now, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 3, result, (int)len, SQLITE_STATIC);
	sqlutil_bind_int(s, 4, turn, &rc);
	return store_exec(s, rc);
}

static int
run_info_row(sqlite3_stmt *s, const struct iter_ctx *c)
{
	struct store_run run;

	run.run_id = sqlite3_column_int64(s, 0);
	run.terminal = sqlite3_column_int(s, 1) != 0;
	run.updated_at = sqlite3_column_int64(s, 2);
	run.turn = sqlite3_column_int64(s, 3);
	run.result = (const char *)sqlite3_column_text(s, 4);
	run.result_len = (size_t)sqlite3_column_bytes(s, 4);
	return c->cb.run_info(&run, c->arg);
}

int
store_run_get(struct store *st, int64_t run_id, store_run_info_cb cb,
    void *arg)
{
	sqlite3_stmt *s = st->stmt[ST_RUN_GET];
	struct iter_ctx c = {.cb.run_info = cb, .arg = arg};
	int rc = SQLITE_OK, r;

	assert(cb != NULL);
	if (sqlite3_stmt_busy(s))
		return -EBUSY;
	sqlutil_bind_int(s, 1, run_id, &rc);
	r = store_for_each_row(s, rc, run_info_row, &c);
	return r == 0 ? -ENOENT : r;
}

int
store_run_delete(struct store *st, int64_t run_id)
{
	sqlite3_stmt *s;
	int rc = SQLITE_OK, r;

	r = store_sp_begin(st);
	if (r < 0)
		return r;
	s = st->stmt[ST_RUN_DEL_EVENTS];
	sqlutil_bind_int(s, 1, run_id, &rc);
	r = store_exec(s, rc);
	if (r == 0) {
		s = st->stmt[ST_RUN_DEL];
		sqlutil_bind_int(s, 1, run_id, &rc);
		r = store_exec(s, rc);
	}
	return store_sp_end(st, r);
}

/*
 * Steps a victim query: 1, its run and its terminal column (0, 1 or
 * RUN_DOOMED), 0 if none, or -errno. Resets it.
 */
static int
pick_run(sqlite3_stmt *s, int rc, int64_t *ret_run_id, int *ret_state)
{
	int r = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_run_id = sqlite3_column_int64(s, 0);
		*ret_state = sqlite3_column_int(s, 1);
		r = 1;
	} else if (rc != SQLITE_DONE)
		r = sqlutil_errno(rc);
	sqlutil_reset(s);
	return r;
}

/*
 * Deletes run_id's events, oldest first, within *budget, then its status
 * row if none are left and budget remains. Returns 1 if the run is gone,
 * 0 if the budget ran out first, or -errno.
 */
static int
prune_one_run(struct store *st, int64_t run_id, int64_t *budget)
{
	sqlite3_stmt *s = st->stmt[ST_PRUNE_RUN_EVENTS];
	int64_t asked = *budget, n;
	int rc = SQLITE_OK, e;

	sqlutil_bind_int(s, 1, run_id, &rc);
	sqlutil_bind_int(s, 2, asked, &rc);
	e = store_exec(s, rc);
	if (e < 0)
		return e;
	n = sqlite3_changes(st->db);
	*budget -= n;
	if (n == asked) {
		/* What is left is no log to serve: hide it until it goes. */
		s = st->stmt[ST_PRUNE_RUN_DOOM];
		sqlutil_bind_int(s, 1, run_id, &rc);
		e = store_exec(s, rc);
		return e < 0 ? e : 0;
	}
	s = st->stmt[ST_PRUNE_RUN_DEL];
	sqlutil_bind_int(s, 1, run_id, &rc);
	e = store_exec(s, rc);
	if (e < 0)
		return e;
	*budget -= 1;
	return 1;
}

/*
 * A run a previous call left half pruned goes first, then runs idle for
 * longer than the age limit, then the oldest terminal runs beyond the
 * count limit. One victim at a time, each found by an index seek, so the
 * work stays proportional to what is deleted.
 */
int
store_prune_runs(struct store *st, const struct store_retention *r, int64_t now,
    int64_t *budget)
{
	int64_t excess = 0, count = 0, run_id = 0;
	int rc = SQLITE_OK, state = 0, e;

	if (r->runs_max_count > 0) {
		e = store_query_int(st->stmt[ST_PRUNE_RUN_COUNT], SQLITE_OK,
		    &count);
		if (e < 0)
			return e;
		excess = count - r->runs_max_count;
	}
	while (*budget > 0) {
		e = pick_run(st->stmt[ST_PRUNE_RUN_DOOMED], SQLITE_OK, &run_id,
		    &state);
		if (e == 0 && r->runs_max_age > 0) {
			sqlite3_stmt *s = st->stmt[ST_PRUNE_RUN_AGED];

			sqlutil_bind_int(s, 1, now - r->runs_max_age, &rc);
			e = pick_run(s, rc, &run_id, &state);
		}
		if (e == 0 && excess > 0)
			e = pick_run(st->stmt[ST_PRUNE_RUN_OLDEST], SQLITE_OK,
			    &run_id, &state);
		if (e <= 0)
			return e;
		/* Gone or doomed, it no longer counts among the kept. */
		if (state == 1)
			excess--;
		e = prune_one_run(st, run_id, budget);
		if (e <= 0)
			return e;
	}
	return 0;
}

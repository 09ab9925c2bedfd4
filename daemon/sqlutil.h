/*
 * SPDX-License-Identifier: MIT
 *
 * The few SQLite helpers the state store (store.c) and the cache
 * (cache.c) share: result codes as -errno, statement reset, binders that
 * keep the first failure, and constant SQL or PRAGMA runs.
 */
#ifndef M8TESD_SQLUTIL_H
#define M8TESD_SQLUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/*
 * A SQLite result code as -errno; OK, ROW and DONE are 0. A unique or
 * primary key conflict is -EEXIST, another constraint -EINVAL (a caller's
 * bad value), corruption -EBADMSG, a read-only file -EROFS, a refusal
 * -EACCES, anything unknown -EIO.
 */
int sqlutil_errno(int rc);
/* Resets s and clears its bindings (the last step's error is handled). */
void sqlutil_reset(sqlite3_stmt *s);
/*
 * Binders keep the first failure in *rc, so that a statement's bindings
 * read as a list and the step that follows takes that rc: on a binding
 * failure it only resets the statement and returns the error. Text is
 * bound SQLITE_STATIC (every statement is reset before its caller
 * returns); NULL text binds SQL NULL.
 */
void sqlutil_bind_text(sqlite3_stmt *s, int i, const char *v, int *rc);
void sqlutil_bind_int(sqlite3_stmt *s, int i, int64_t v, int *rc);
/* Runs constant SQL (pragmas, schema); never used with data. */
int sqlutil_exec(sqlite3 *db, const char *sql);
/*
 * Runs a constant PRAGMA and copies its first result into buf (truncated):
 * 0, -ENODATA if it returned no row, or -errno. A file that is not SQLite
 * at all fails here already, while the statement is prepared.
 */
int sqlutil_pragma(sqlite3 *db, const char *sql, char *buf, size_t size);

#endif

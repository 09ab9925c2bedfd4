/*
 * SPDX-License-Identifier: MIT
 *
 * SQLite helpers shared by store.c and cache.c; see sqlutil.h.
 */
#include <errno.h>
#include <stdio.h>

#include "sqlutil.h"

int
sqlutil_errno(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return -EEXIST;
	default:
		break;
	}
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EINVAL; /* NOT NULL, CHECK: a caller's bad value */
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

void
sqlutil_reset(sqlite3_stmt *s)
{
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
}

void
sqlutil_bind_text(sqlite3_stmt *s, int i, const char *v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = v != NULL ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC)
		                : sqlite3_bind_null(s, i);
}

void
sqlutil_bind_int(sqlite3_stmt *s, int i, int64_t v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(s, i, v);
}

int
sqlutil_exec(sqlite3 *db, const char *sql)
{
	return sqlutil_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int
sqlutil_pragma(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *v;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_text(s, 0);
		(void)snprintf(buf, size, "%s", v ? (const char *)v : "");
	} else
		r = rc == SQLITE_DONE ? -ENODATA : sqlutil_errno(rc);
	(void)sqlite3_finalize(s);
	return r;
}

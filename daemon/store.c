/*
 * SPDX-License-Identifier: MIT
 *
 * state.db on SQLite (with cache.c, the only sqlite3.h user), in three
 * files: this one, the core (the file and its mode, the schema and its
 * migrations, the prepared statements, batches, savepoints and
 * checkpoints, the helpers store_int.h declares, the API key, store_prune
 * and the audit log); store_inbox.c, the webhook inbox, its consumers and
 * the webhook secrets; store_runs.c, the run logs and status. Every query
 * is prepared once at open (SQLITE_PREPARE_PERSISTENT) and bound with
 * SQLITE_STATIC pointers that outlive the step, then reset and unbound at
 * once, so no statement holds a read transaction or a caller's pointer
 * between calls. Writes that take more than one statement run inside a
 * savepoint, which nests in a caller's batch and is its own transaction
 * otherwise. Inbox sequence numbers come from AUTOINCREMENT, so they are
 * never reused after a prune; that also makes "keep the newest N" a cheap
 * range delete below last_seq - N instead of an OFFSET walk over bodies.
 * Deleted secrets and keys do not linger in free pages (secure_delete).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "idset.h"
#include "sig.h"
#include "sqlutil.h"
#include "store.h"
#include "store_int.h"

#define STORE_BUSY_TIMEOUT_MS 50 /* another process holds a lock: give up */
                                 /* quickly, the loop must not stall */
#define STORE_WAL_SIZE_LIMIT "67108864" /* bytes kept after a checkpoint */
#define STORE_CKPT_PAGES 2000 /* deferred: WAL pages before a checkpoint */
/*
 * run_status.terminal of a run whose pruning a budget cut short: its log
 * has lost its first events, so readers no longer see it, and the next
 * prune finishes it first.
 */
#define RUN_DOOMED "2"

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1. Append
 * only; never edit a released step.
 */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE inbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  webhook_id TEXT NOT NULL UNIQUE,"
    "  received_at INTEGER NOT NULL,"
    "  event_type TEXT,"
    "  run_id INTEGER,"
    "  headers TEXT NOT NULL DEFAULT '{}',"
    "  body BLOB NOT NULL"
    ");"
    "CREATE INDEX inbox_received_at ON inbox (received_at);"
    "CREATE TABLE consumers ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  acked_seq INTEGER NOT NULL"
    ");"
    "CREATE TABLE webhook_secrets ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  secret TEXT NOT NULL UNIQUE,"
    "  endpoint_id TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  not_after INTEGER"
    ");"
    "CREATE TABLE api_key ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  key TEXT NOT NULL,"
    "  set_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE run_status ("
    "  run_id INTEGER PRIMARY KEY,"
    "  terminal INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX run_status_age ON run_status (updated_at, run_id);"
    "CREATE INDEX run_status_terminal ON run_status"
    "  (terminal, updated_at, run_id);"
    "CREATE TABLE run_events ("
    "  run_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq)"
    ");",
    /* 1 -> 2 */
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time_ms INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  comm TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX audit_uid ON audit (uid, id);",
    /* 2 -> 3: a finished run's result and where its last turn starts */
    "ALTER TABLE run_status ADD COLUMN result TEXT;"
    "ALTER TABLE run_status ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;",
    /*
     * 3 -> 4: no unique index on webhook_id. On random ids it dirtied a
     * page per insert, half the cost of storing a webhook; duplicates are
     * now found in memory (idset.h). The sequence carries over, so no
     * number is ever handed out twice.
     */
    "CREATE TABLE inbox4 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  webhook_id TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  event_type TEXT,"
    "  run_id INTEGER,"
    "  headers TEXT NOT NULL DEFAULT '{}',"
    "  body BLOB NOT NULL"
    ");"
    "INSERT INTO inbox4 SELECT seq, webhook_id, received_at, event_type,"
    "  run_id, headers, body FROM inbox ORDER BY seq;"
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox4', seq"
    "  FROM sqlite_sequence WHERE name = 'inbox'"
    "  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'inbox4');"
    "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM"
    "  sqlite_sequence WHERE name = 'inbox'), 0)) WHERE name = 'inbox4';"
    "DROP TABLE inbox;"
    "ALTER TABLE inbox4 RENAME TO inbox;"
    "CREATE INDEX inbox_received_at ON inbox (received_at);",
    /*
     * 4 -> 5: no index on received_at. Every commit dirtied its last
     * page besides the table's; pruning by age looks at the oldest rows
     * by seq instead, which received_at follows (up to clock steps).
     */
    "DROP INDEX IF EXISTS inbox_received_at;",
};

#define STORE_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define INBOX_COLUMNS                                                          \
	"seq, webhook_id, received_at, event_type, run_id, headers, body"

static const char *const stmt_sql[ST__MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SP_BEGIN] = "SAVEPOINT store_op",
    [ST_SP_RELEASE] = "RELEASE store_op",
    [ST_SP_ROLLBACK] = "ROLLBACK TO store_op",
    [ST_INBOX_ADD] = "INSERT INTO inbox (webhook_id, received_at, "
                     "event_type, run_id, headers, body) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_INBOX_IDS] = "SELECT seq, webhook_id FROM inbox",
    [ST_INBOX_MIN] = "SELECT min(seq) FROM inbox",
    [ST_INBOX_ITER] = "SELECT " INBOX_COLUMNS " FROM inbox "
                      "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [ST_INBOX_GET] = "SELECT " INBOX_COLUMNS " FROM inbox "
                     "WHERE webhook_id = ?1",
    [ST_INBOX_LAST] = "SELECT seq FROM sqlite_sequence "
                      "WHERE name = 'inbox'",
    [ST_INBOX_NEXT] = "SELECT min(seq) FROM inbox WHERE seq > ?1",
    [ST_CONSUMER_GET] = "SELECT acked_seq FROM consumers WHERE name = ?1",
    [ST_CONSUMER_SET] = "INSERT INTO consumers (name, acked_seq) "
                        "VALUES (?1, ?2) ON CONFLICT (name) "
                        "DO UPDATE SET acked_seq = excluded.acked_seq",
    [ST_CONSUMER_DEL] = "DELETE FROM consumers WHERE name = ?1",
    [ST_SECRET_ADD] = "INSERT INTO webhook_secrets (secret, endpoint_id, "
                      "created_at, not_after) VALUES (?1, ?2, ?3, ?4)",
    [ST_SECRET_LIST] = "SELECT id, secret, endpoint_id, created_at, "
                       "not_after FROM webhook_secrets ORDER BY id",
    [ST_SECRET_NOT_AFTER] = "UPDATE webhook_secrets SET not_after = ?2 "
                            "WHERE id = ?1",
    [ST_SECRET_DEL] = "DELETE FROM webhook_secrets WHERE id = ?1",
    [ST_KEY_SET] = "INSERT INTO api_key (id, key, set_at) "
                   "VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE "
                   "SET key = excluded.key, set_at = excluded.set_at",
    [ST_KEY_GET] = "SELECT key FROM api_key WHERE id = 1",
    [ST_KEY_CLEAR] = "DELETE FROM api_key",
    [ST_RUN_TOUCH] = "INSERT INTO run_status (run_id, terminal, "
                     "updated_at) VALUES (?1, 0, ?2) "
                     "ON CONFLICT (run_id) DO UPDATE SET "
                     "updated_at = max(updated_at, excluded.updated_at)",
    [ST_RUN_APPEND] = "INSERT INTO run_events (run_id, seq, event) "
                      "VALUES (?1, ?2, ?3)",
    [ST_RUN_ITER] = "SELECT run_id, seq, event FROM run_events "
                    "WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [ST_RUN_LAST] = "SELECT max(seq) FROM run_events WHERE run_id = ?1",
    [ST_RUN_TERMINAL] = "INSERT INTO run_status (run_id, terminal, "
                        "updated_at) VALUES (?1, 1, ?2) "
                        "ON CONFLICT (run_id) DO UPDATE SET terminal = 1, "
                        "updated_at = max(updated_at, "
                        "excluded.updated_at) "
                        "WHERE terminal < " RUN_DOOMED,
    [ST_RUN_STATUS] = "SELECT terminal FROM run_status WHERE run_id = ?1 "
                      "AND terminal < " RUN_DOOMED,
    [ST_RUN_FINISH] = "INSERT INTO run_status (run_id, terminal, "
                      "updated_at, result, turn) VALUES (?1, 1, ?2, ?3, ?4) "
                      "ON CONFLICT (run_id) DO UPDATE SET terminal = 1, "
                      "updated_at = max(updated_at, excluded.updated_at), "
                      "result = excluded.result, turn = excluded.turn",
    [ST_RUN_GET] = "SELECT run_id, terminal, updated_at, turn, result "
                   "FROM run_status WHERE run_id = ?1 "
                   "AND terminal < " RUN_DOOMED,
    [ST_RUN_DEL_EVENTS] = "DELETE FROM run_events WHERE run_id = ?1",
    [ST_RUN_DEL] = "DELETE FROM run_status WHERE run_id = ?1",
    [ST_PRUNE_INBOX_SEQ] = "DELETE FROM inbox WHERE seq IN (SELECT seq "
                           "FROM inbox WHERE seq <= ?1 ORDER BY seq "
                           "LIMIT ?2)",
    /*
     * Of the oldest ?2 rows by seq, those received before ?1: no call
     * reads more than ?2 rows, and a younger row among them (the clock
     * went back) is passed over, not a stop.
     */
    [ST_PRUNE_INBOX_AGE] = "DELETE FROM inbox WHERE seq IN (SELECT seq "
                           "FROM (SELECT seq, received_at FROM inbox "
                           "ORDER BY seq LIMIT ?2) WHERE received_at < ?1)",
    [ST_PRUNE_RUN_COUNT] = "SELECT count(*) FROM run_status "
                           "WHERE terminal = 1",
    [ST_PRUNE_RUN_AGED] = "SELECT run_id, terminal FROM run_status "
                          "WHERE updated_at < ?1 "
                          "ORDER BY updated_at, run_id LIMIT 1",
    [ST_PRUNE_RUN_OLDEST] = "SELECT run_id, terminal FROM run_status "
                            "WHERE terminal = 1 "
                            "ORDER BY updated_at, run_id LIMIT 1",
    [ST_PRUNE_RUN_DOOMED] = "SELECT run_id, terminal FROM run_status "
                            "WHERE terminal = " RUN_DOOMED " LIMIT 1",
    [ST_PRUNE_RUN_DOOM] = "UPDATE run_status SET terminal = " RUN_DOOMED
                          " WHERE run_id = ?1",
    [ST_PRUNE_RUN_EVENTS] = "DELETE FROM run_events WHERE run_id = ?1 "
                            "AND seq IN (SELECT seq FROM run_events "
                            "WHERE run_id = ?1 ORDER BY seq LIMIT ?2)",
    [ST_PRUNE_RUN_DEL] = "DELETE FROM run_status WHERE run_id = ?1",
    [ST_AUDIT_ADD] = "INSERT INTO audit (time_ms, uid, pid, comm, method, "
                     "status, duration_ms) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_AUDIT_LIST] = "SELECT time_ms, uid, pid, comm, method, status, "
                      "duration_ms FROM audit "
                      "WHERE (?1 < 0 OR uid = ?1) AND time_ms >= ?2 "
                      "ORDER BY id DESC LIMIT ?3",
    [ST_AUDIT_PRUNE] = "DELETE FROM audit WHERE id <= "
                       "(SELECT max(id) FROM audit) - ?1 OR time_ms < ?2",
};

static int tighten_mode(const char *path, bool must_exist);
static int sync_parent_dir(const char *path);
static int create_file(const char *path);
static int configure(sqlite3 *db);
static int migrate(sqlite3 *db);
static int prepare_all(struct store *st);
static void forget_pending(struct store *st);

/* 0 means "none" in the API and NULL in the database. */
void
store_bind_opt_int(sqlite3_stmt *s, int i, int64_t v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = v != 0 ? sqlite3_bind_int64(s, i, v)
		             : sqlite3_bind_null(s, i);
}

/* Steps a statement that returns no rows to completion, then resets it. */
int
store_exec(sqlite3_stmt *s, int rc)
{
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	sqlutil_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlutil_errno(rc);
}

/*
 * Steps a one-column query: 1 and the value (0 for SQL NULL) in *ret if it
 * returned a row, 0 if none, or -errno. Resets it.
 */
int
store_query_int(sqlite3_stmt *s, int rc, int64_t *ret)
{
	int r;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(s, 0);
		r = 1;
	} else
		r = rc == SQLITE_DONE ? 0 : sqlutil_errno(rc);
	sqlutil_reset(s);
	return r;
}

/*
 * As store_query_int for an aggregate (max, min) or a value that is there or
 * not: 0 with the value, 0 when there is none (no row or NULL), or -errno.
 * *ret is written only on success.
 */
int
store_query_int0(sqlite3_stmt *s, int rc, int64_t *ret)
{
	int64_t v = 0;
	int r = store_query_int(s, rc, &v);

	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

/* After an UPDATE or DELETE by key: -ENOENT if it matched nothing. */
int
store_changes_or_enoent(struct store *st, int r)
{
	if (r < 0)
		return r;
	return sqlite3_changes(st->db) > 0 ? 0 : -ENOENT;
}

/* Steps s to its end, calling fn per row; resets s. Rows seen or -errno. */
int
store_for_each_row(sqlite3_stmt *s, int rc, row_fn fn, const struct iter_ctx *c)
{
	int n = 0, r;

	if (rc != SQLITE_OK) {
		r = sqlutil_errno(rc);
		goto out;
	}
	for (;;) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			r = sqlutil_errno(rc);
			goto out;
		}
		n++;
		r = fn(s, c);
		if (r < 0)
			goto out;
		if (r > 0)
			break;
	}
	r = n;
out:
	sqlutil_reset(s);
	return r;
}

int
store_sp_begin(struct store *st)
{
	return store_exec(st->stmt[ST_SP_BEGIN], SQLITE_OK);
}

/*
 * Ends the savepoint opened by store_sp_begin: released (committed, outside a
 * batch) if r >= 0, else rolled back. Returns r, or the release's error.
 */
int
store_sp_end(struct store *st, int r)
{
	if (r >= 0) {
		int rr = store_exec(st->stmt[ST_SP_RELEASE], SQLITE_OK);

		if (rr == 0)
			return r;
		r = rr;
	}
	/* Both fail harmlessly if SQLite already rolled everything back. */
	(void)store_exec(st->stmt[ST_SP_ROLLBACK], SQLITE_OK);
	(void)store_exec(st->stmt[ST_SP_RELEASE], SQLITE_OK);
	if (!st->in_batch && !sqlite3_get_autocommit(st->db))
		(void)store_exec(st->stmt[ST_ROLLBACK], SQLITE_OK);
	return r;
}

/* LIMIT argument: 0 = none (-1 to SQLite); capped so counts fit an int. */
int
store_limit_arg(size_t limit)
{
	if (limit == 0)
		return -1;
	return limit > INT_MAX ? INT_MAX : (int)limit;
}

/* Forces mode 0600 on path; a missing file is fine unless must_exist. */
static int
tighten_mode(const char *path, bool must_exist)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		return errno == ENOENT && !must_exist ? 0 : -errno;
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	if ((sb.st_mode & 07777) != 0600 && chmod(path, 0600) == -1)
		return -errno;
	return 0;
}

/* Makes a new directory entry durable, as SQLite does for its journals. */
static int
sync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, r = 0;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		r = -errno;
		goto out;
	}
	if (fsync(fd) == -1 && errno != EINVAL)
		r = -errno;
	(void)close(fd);
out:
	free(dir);
	return r;
}

/*
 * Creates path 0600 if absent, or tightens an existing file, and tightens
 * any -wal or -shm left from earlier (SQLite creates new ones with the
 * database's mode).
 */
static int
create_file(const char *path)
{
	static const char *const suffixes[] = {"-wal", "-shm"};
	char aux[PATH_MAX];
	size_t i;
	int fd, r;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd == -1 && errno != EEXIST)
		return -errno;
	if (fd != -1) {
		(void)close(fd);
		r = sync_parent_dir(path);
		if (r < 0)
			return r;
	}
	/* Also puts back what a umask took from 0600. */
	r = tighten_mode(path, true);
	for (i = 0; r == 0 && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (snprintf(aux, sizeof(aux), "%s%s", path, suffixes[i]) >=
		    (int)sizeof(aux))
			return -ENAMETOOLONG;
		r = tighten_mode(aux, false);
	}
	return r;
}

static int
configure(sqlite3 *db)
{
	char res[64];
	int r;

	/*
	 * quick_check is O(size) and catches what a crash or a stray write
	 * does to pages, without integrity_check's index cross-checks.
	 */
	r = sqlutil_pragma(db, "PRAGMA quick_check(1)", res, sizeof(res));
	if (r < 0)
		return r == -ENODATA ? -EBADMSG : r;
	if (strcmp(res, "ok") != 0)
		return -EBADMSG;
	/* The mode stays as it was where WAL is impossible (NFS, no mmap). */
	r = sqlutil_pragma(db, "PRAGMA journal_mode=WAL", res, sizeof(res));
	if (r < 0)
		return r;
	if (strcmp(res, "wal") != 0)
		return -ENOTSUP;
	/* FULL: in WAL mode every commit fsyncs the WAL, so it survives. */
	return sqlutil_exec(db,
	    "PRAGMA synchronous=FULL;"
	    "PRAGMA secure_delete=ON;"
	    "PRAGMA cell_size_check=ON;"
	    "PRAGMA trusted_schema=OFF;"
	    "PRAGMA journal_size_limit=" STORE_WAL_SIZE_LIMIT ";");
}

/* Applies the missing migrations and the new user_version atomically. */
static int
migrate(sqlite3 *db)
{
	char res[32], sql[64];
	long version;
	int r;

	r = sqlutil_exec(db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = sqlutil_pragma(db, "PRAGMA user_version", res, sizeof(res));
	if (r < 0)
		goto out;
	version = strtol(res, NULL, 10);
	if (version < 0 || version > STORE_SCHEMA_VERSION) {
		r = -EPROTONOSUPPORT;
		goto out;
	}
	if (version < STORE_SCHEMA_VERSION) {
		for (; version < STORE_SCHEMA_VERSION && r == 0; version++)
			r = sqlutil_exec(db, migrations[version]);
		(void)snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
		    STORE_SCHEMA_VERSION);
		if (r == 0)
			r = sqlutil_exec(db, sql);
	}
	/* Up to date: an empty commit, which writes nothing. */
	if (r == 0)
		r = sqlutil_exec(db, "COMMIT");
out:
	if (r < 0)
		(void)sqlutil_exec(db, "ROLLBACK");
	return r;
}

static int
prepare_all(struct store *st)
{
	size_t i;
	int rc;

	for (i = 0; i < ST__MAX; i++) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
		if (rc != SQLITE_OK)
			return sqlutil_errno(rc);
	}
	return 0;
}

int
store_open(const char *path, struct store **ret)
{
	struct store *st;
	int rc, r;

	assert(path != NULL && ret != NULL);
	r = create_file(path);
	if (r < 0)
		return r;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	/* The file exists now: no SQLITE_OPEN_CREATE, so no silent new db. */
	rc = sqlite3_open_v2(path, &st->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = st->db != NULL && sqlite3_system_errno(st->db) > 0
		    ? -sqlite3_system_errno(st->db)
		    : sqlutil_errno(rc);
		goto out_close;
	}
	(void)sqlite3_extended_result_codes(st->db, 1);
	(void)sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	r = configure(st->db);
	if (r == 0)
		r = migrate(st->db);
	if (r == 0)
		r = prepare_all(st);
	if (r < 0)
		goto out_close;
	*ret = st;
	return 0;
out_close:
	store_close(st);
	return r;
}

void
store_close(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	store_rollback_batch(st);
	for (i = 0; i < ST__MAX; i++)
		(void)sqlite3_finalize(st->stmt[i]);
	idset_free(st->ids);
	free(st->pending);
	/* Every statement is finalized, so this closes (and checkpoints). */
	(void)sqlite3_close_v2(st->db);
	free(st);
}

int
store_begin_batch(struct store *st)
{
	int r;

	if (st->in_batch)
		return -EBUSY;
	r = store_exec(st->stmt[ST_BEGIN], SQLITE_OK);
	if (r < 0)
		return r;
	st->in_batch = true;
	return 0;
}

int
store_commit_batch(struct store *st)
{
	int r;

	if (!st->in_batch)
		return -EINVAL;
	st->in_batch = false;
	/* An I/O or full-disk error may have rolled it all back already. */
	if (sqlite3_get_autocommit(st->db)) {
		forget_pending(st);
		return -EIO;
	}
	r = store_exec(st->stmt[ST_COMMIT], SQLITE_OK);
	if (r < 0 && !sqlite3_get_autocommit(st->db))
		(void)store_exec(st->stmt[ST_ROLLBACK], SQLITE_OK);
	if (r < 0)
		forget_pending(st);
	st->npending = 0;
	return r;
}

void
store_rollback_batch(struct store *st)
{
	if (!st->in_batch)
		return;
	st->in_batch = false;
	if (!sqlite3_get_autocommit(st->db))
		(void)store_exec(st->stmt[ST_ROLLBACK], SQLITE_OK);
	forget_pending(st);
}

/* SQLite's WAL hook: notes the WAL's size after every commit. */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *st = arg;

	(void)db;
	(void)name;
	st->wal_pages = pages;
	return SQLITE_OK;
}

void
store_set_busy_timeout(struct store *st, unsigned ms)
{
	(void)sqlite3_busy_timeout(st->db, ms > INT_MAX ? INT_MAX : (int)ms);
}

int
store_defer_checkpoints(struct store *st)
{
	int r;

	r = sqlutil_exec(st->db, "PRAGMA wal_autocheckpoint=0");
	if (r < 0)
		return r;
	(void)sqlite3_wal_hook(st->db, wal_hook, st);
	st->defer_ckpt = true;
	return 0;
}

int
store_checkpoint_due(struct store *st)
{
	int rc;

	if (!st->defer_ckpt || st->in_batch ||
	    st->wal_pages < STORE_CKPT_PAGES)
		return 0;
	st->wal_pages = 0;
	/* A reader in the way makes it partial; the next one goes on. */
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    NULL, NULL);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return 0;
	return rc == SQLITE_OK ? 1 : sqlutil_errno(rc);
}

bool
store_in_batch(const struct store *st)
{
	return st->in_batch;
}

/* Rows of an aborted batch are not stored: out of the set with them. */
static void
forget_pending(struct store *st)
{
	for (size_t i = 0; i < st->npending; i++)
		(void)idset_del(st->ids, &st->pending[i]);
	st->npending = 0;
}

int
store_key_set(struct store *st, const struct sig_key *key, int64_t now)
{
	sqlite3_stmt *s = st->stmt[ST_KEY_SET];
	int rc = SQLITE_OK;

	assert(key != NULL);
	if (!sig_key_isset(key))
		return -ENOKEY;
	sqlutil_bind_text(s, 1, sig_key_get(key), &rc);
	sqlutil_bind_int(s, 2, now, &rc);
	return store_exec(s, rc);
}

int
store_key_get(struct store *st, struct sig_key *key)
{
	sqlite3_stmt *s = st->stmt[ST_KEY_GET];
	const unsigned char *k;
	int rc, r;

	assert(key != NULL);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		/* Straight from SQLite's buffer into the guarded holder. */
		k = sqlite3_column_text(s, 0);
		r = k != NULL ? sig_key_set(key, (const char *)k,
		                    (size_t)sqlite3_column_bytes(s, 0))
		              : -ENOMEM;
	} else
		r = rc == SQLITE_DONE ? -ENOENT : sqlutil_errno(rc);
	sqlutil_reset(s);
	return r;
}

int
store_key_clear(struct store *st)
{
	return store_exec(st->stmt[ST_KEY_CLEAR], SQLITE_OK);
}

int
store_prune(struct store *st, const struct store_retention *r, int64_t now,
    size_t max_rows)
{
	int64_t max, budget;
	int e;

	assert(r != NULL);
	max = max_rows > INT_MAX ? INT_MAX : (int64_t)max_rows;
	if (max == 0)
		return 0;
	budget = max;
	e = store_sp_begin(st);
	if (e < 0)
		return e;
	e = store_prune_inbox(st, r, now, &budget);
	if (e == 0)
		e = store_prune_runs(st, r, now, &budget);
	if (e == 0)
		e = (int)(max - budget);
	e = store_sp_end(st, e);
	/* Pruned ids may come back as new (outside a batch: committed). */
	if (e > 0 && st->ids != NULL && !st->in_batch)
		store_trim_ids(st);
	return e;
}

int
store_audit_add(struct store *st, const struct store_audit *a)
{
	sqlite3_stmt *s = st->stmt[ST_AUDIT_ADD];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, a->time_ms, &rc);
	sqlutil_bind_int(s, 2, a->uid, &rc);
	sqlutil_bind_int(s, 3, a->pid, &rc);
	sqlutil_bind_text(s, 4, a->comm != NULL ? a->comm : "", &rc);
	sqlutil_bind_text(s, 5, a->method, &rc);
	sqlutil_bind_int(s, 6, a->status, &rc);
	sqlutil_bind_int(s, 7, a->duration_ms, &rc);
	return store_exec(s, rc);
}

static int
audit_row(sqlite3_stmt *s, const struct iter_ctx *c)
{
	struct store_audit a;

	a.time_ms = sqlite3_column_int64(s, 0);
	a.uid = sqlite3_column_int64(s, 1);
	a.pid = sqlite3_column_int64(s, 2);
	a.comm = (const char *)sqlite3_column_text(s, 3);
	a.method = (const char *)sqlite3_column_text(s, 4);
	a.status = sqlite3_column_int64(s, 5);
	a.duration_ms = sqlite3_column_int64(s, 6);
	if (a.comm == NULL || a.method == NULL)
		return -ENOMEM;
	return c->cb.audit(&a, c->arg);
}

int
store_audit_list(struct store *st, int64_t uid, int64_t since_ms, size_t limit,
    store_audit_cb cb, void *arg)
{
	sqlite3_stmt *s = st->stmt[ST_AUDIT_LIST];
	struct iter_ctx c = {.cb.audit = cb, .arg = arg};
	int rc = SQLITE_OK;

	if (sqlite3_stmt_busy(s))
		return -EBUSY;
	sqlutil_bind_int(s, 1, uid, &rc);
	sqlutil_bind_int(s, 2, since_ms, &rc);
	sqlutil_bind_int(s, 3, store_limit_arg(limit), &rc);
	return store_for_each_row(s, rc, audit_row, &c);
}

int
store_audit_prune(struct store *st, int64_t keep, int64_t before_ms)
{
	sqlite3_stmt *s = st->stmt[ST_AUDIT_PRUNE];
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, keep, &rc);
	sqlutil_bind_int(s, 2, before_ms, &rc);
	return store_exec(s, rc);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * cache.db on SQLite (with cache_entry.c, cache_blob.c and store.c, the
 * only sqlite3.h users): the schema and the statements, checks and
 * rebuilds, transactions, the open and close of the whole cache and its
 * counters. The pages and objects are in cache_entry.c, keys, resource
 * names and TTLs in cache_key.c, the file store in cache_blob.c.
 * Statements are prepared once and bound with
 * SQLITE_STATIC pointers, then reset at once, as in store.c. An entry is
 * one row, appended in rowid order (random row ids cost page splits) and
 * found through an integer index on its key's first 63 bits; the body is
 * the last column, so the same-size LRU update of last_used rewrites only
 * the row's first page, never the body's overflow pages. Byte and row
 * totals are kept in memory (summed at open, adjusted after each commit),
 * so the cap is checked without scanning, and victims come from the
 * last_used index. The database runs in exclusive locking mode: no
 * shared-memory file, and a second daemon on the same directory fails at
 * open instead of fighting over a disposable file. There are no schema
 * migrations: a cache of another version is simply recreated. Rebuild
 * policy: SQLite errors that mean a damaged or vanished file (corrupt, not
 * a database, I/O, cannot open, read-only because moved) close, delete and
 * recreate the database; other errors (no memory, disk full) are returned.
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

#include "cache.h"
#include "cache_int.h"
#include "hotset.h"
#include "sqlutil.h"

#define CACHE_SCHEMA_VERSION 2       /* 2: results normalised, compact */
#define CACHE_CHECK_INTERVAL_MS 1000 /* file and directory checks */
/*
 * A checkpoint costs two fsyncs on the loop: checkpointing every 4,000
 * pages instead of SQLite's 1,000 quarters their number, for a larger WAL.
 */
#define CACHE_WAL_PAGES "4000"
#define CACHE_WAL_SIZE_LIMIT "16777216"

static const char schema_sql[] =
    "CREATE TABLE entries ("
    "  id INTEGER PRIMARY KEY,"
    "  kid INTEGER NOT NULL UNIQUE,"
    "  key TEXT NOT NULL,"
    "  resource TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  stored_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  body BLOB NOT NULL"
    ");"
    "CREATE INDEX entries_resource ON entries (resource, scope);"
    "CREATE INDEX entries_lru ON entries (last_used);"
    "CREATE TABLE blobs ("
    "  sha TEXT PRIMARY KEY NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX blobs_lru ON blobs (last_used);"
    "CREATE TABLE blob_index ("
    "  fingerprint TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  run_id TEXT NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  sha TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  stored_at INTEGER NOT NULL,"
    "  PRIMARY KEY (fingerprint, scope, run_id, filename)"
    ") WITHOUT ROWID;"
    "CREATE INDEX blob_index_sha ON blob_index (sha);"
    "CREATE INDEX blob_index_run ON blob_index (run_id);"
    "CREATE TRIGGER blobs_gone AFTER DELETE ON blobs BEGIN"
    "  DELETE FROM blob_index WHERE sha = old.sha;"
    "END;";

#define CLEAR_WHERE                                                            \
	" WHERE (?1 IS NULL OR resource = ?1) AND (?3 IS NULL OR path >= ?3)"  \
	" AND (?4 IS NULL OR path < ?4)"

static const char *const stmt_sql[ST__MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET] = "SELECT id, key, stored_at, expires_at, last_used, body "
               "FROM entries WHERE kid = ?1",
    [ST_FIND] = "SELECT id, size FROM entries WHERE kid = ?1",
    [ST_PUT] = "INSERT INTO entries (kid, key, resource, scope, path, "
               "stored_at, expires_at, last_used, size, body) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8, ?9) "
               "ON CONFLICT (kid) DO UPDATE SET key = excluded.key, "
               "resource = excluded.resource, scope = excluded.scope, "
               "path = excluded.path, stored_at = excluded.stored_at, "
               "expires_at = excluded.expires_at, "
               "last_used = excluded.last_used, size = excluded.size, "
               "body = excluded.body",
    [ST_TOUCH] = "UPDATE entries SET last_used = max(last_used, ?2) "
                 "WHERE id = ?1",
    [ST_VICTIMS] = "SELECT id, size FROM entries WHERE id != ?1 "
                   "ORDER BY last_used, id LIMIT ?2",
    [ST_DEL] = "DELETE FROM entries WHERE id = ?1",
    [ST_TOTALS] = "SELECT count(*), coalesce(sum(size), 0) FROM entries",
    [ST_RES_SUM] = "SELECT count(*), coalesce(sum(size), 0) FROM entries "
                   "WHERE resource = ?1",
    [ST_RES_DEL] = "DELETE FROM entries WHERE resource = ?1",
    [ST_SCOPE_SUM] = "SELECT count(*), coalesce(sum(size), 0) FROM entries "
                     "WHERE resource = ?1 AND scope IN (?2, '')",
    [ST_SCOPE_DEL] = "DELETE FROM entries "
                     "WHERE resource = ?1 AND scope IN (?2, '')",
    [ST_CLEAR_SUM] =
        "SELECT count(*), coalesce(sum(size), 0) FROM entries" CLEAR_WHERE,
    [ST_CLEAR_DEL] = "DELETE FROM entries" CLEAR_WHERE,
    [ST_BLOB_GET] = "SELECT size FROM blobs WHERE sha = ?1",
    [ST_BLOB_PUT] = "INSERT INTO blobs (sha, size, last_used) "
                    "VALUES (?1, ?2, ?3) ON CONFLICT (sha) DO UPDATE SET "
                    "last_used = max(last_used, excluded.last_used)",
    [ST_BLOB_TOUCH] = "UPDATE blobs SET last_used = max(last_used, ?2) "
                      "WHERE sha = ?1",
    [ST_BLOB_DEL] = "DELETE FROM blobs WHERE sha = ?1",
    [ST_BLOB_VICTIMS] = "SELECT sha, size FROM blobs WHERE sha != ?1 "
                        "ORDER BY last_used, sha LIMIT ?2",
    [ST_BLOB_LIST] = "SELECT sha, size FROM blobs",
    [ST_BLOB_TOTALS] = "SELECT count(*), coalesce(sum(size), 0) FROM blobs",
    [ST_BLOB_CLEAR] = "DELETE FROM blobs",
    [ST_INDEX_PUT] = "INSERT INTO blob_index (fingerprint, scope, run_id, "
                     "filename, sha, content_type, stored_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                     "ON CONFLICT (fingerprint, scope, run_id, filename) "
                     "DO UPDATE SET sha = excluded.sha, "
                     "content_type = excluded.content_type, "
                     "stored_at = excluded.stored_at",
    [ST_INDEX_GET] = "SELECT i.sha, i.content_type, i.stored_at, b.size "
                     "FROM blob_index i JOIN blobs b ON b.sha = i.sha "
                     "WHERE i.fingerprint = ?1 AND i.scope = ?2 "
                     "AND i.run_id = ?3 AND i.filename = ?4",
    [ST_INDEX_FORGET] = "DELETE FROM blob_index WHERE run_id = ?1",
    [ST_INDEX_CLEAR] = "DELETE FROM blob_index",
};

static int pragma(sqlite3 *db, const char *sql, char *buf, size_t size);
static int exec_sql(sqlite3 *db, const char *sql);
static int as_cache(int r);
static int mkdir_p(const char *path);
static int db_configure(sqlite3 *db);
static int db_schema(sqlite3 *db);
static int db_try_open(struct cache *c);
static void db_close(struct cache *c, bool discard);
static void db_wipe(struct cache *c);
static int db_open(struct cache *c);
static bool db_intact(struct cache *c);
static int copy_ttls(struct cache *c, const struct cache_config *cfg);

/* A read-only (moved) or refused file is a cache to rebuild: -EIO. */
static int
as_cache(int r)
{
	return r == -EROFS || r == -EACCES ? -EIO : r;
}

/*
 * Maps a SQLite result code to -errno; OK/ROW/DONE: 0. -EBADMSG and -EIO
 * are the codes that make the cache rebuild itself (cache_needs_rebuild).
 */
int
cache_errno(int rc)
{
	return as_cache(sqlutil_errno(rc));
}

bool
cache_needs_rebuild(int r)
{
	return r == -EBADMSG || r == -EIO;
}

/*
 * A lookup that got no row (rc SQLITE_DONE) or failed: resets s, rebuilds
 * the cache when the failure asks for it, and returns -ENOENT (a rebuilt
 * cache has nothing) or the error.
 */
int
cache_lookup_miss(struct cache *c, sqlite3_stmt *s, int rc)
{
	int r;

	sqlutil_reset(s);
	r = rc == SQLITE_DONE ? -ENOENT : cache_errno(rc);
	if (cache_needs_rebuild(r)) {
		cache_rebuild(c);
		r = -ENOENT;
	}
	return r;
}

/* Steps a statement that returns no rows to completion; resets it. */
int
cache_exec(sqlite3_stmt *s, int rc)
{
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	sqlutil_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : cache_errno(rc);
}

/* Steps a two-integer query: 1 and the values, 0 if no row, or -errno. */
int
cache_query_pair(sqlite3_stmt *s, int rc, int64_t *a, int64_t *b)
{
	int r = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*a = sqlite3_column_int64(s, 0);
		if (b != NULL)
			*b = sqlite3_column_int64(s, 1);
		r = 1;
	} else if (rc != SQLITE_DONE)
		r = cache_errno(rc);
	sqlutil_reset(s);
	return r;
}

/* Runs a constant PRAGMA and copies its first result into buf. */
static int
pragma(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	int r = sqlutil_pragma(db, sql, buf, size);

	return r == -ENODATA ? -EBADMSG : as_cache(r);
}

/* Runs constant SQL (pragmas, schema); never used with data. */
static int
exec_sql(sqlite3 *db, const char *sql)
{
	return as_cache(sqlutil_exec(db, sql));
}

/* Returns a malloc'd "a/b", or NULL on ENOMEM. */
char *
cache_path_join(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) == -1)
		return NULL;
	return p;
}

/* mkdir -p with mode 0700 for what it creates; existing ones are kept. */
static int
mkdir_p(const char *path)
{
	char *p, *s, saved;
	int r = 0;

	p = strdup(path);
	if (p == NULL)
		return -ENOMEM;
	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		saved = *s;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*s = saved;
		if (saved == '\0')
			break;
	}
	free(p);
	return r;
}

/* True if s is min to max lowercase hex digits. */
bool
cache_is_hex(const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		if (n == max)
			return false;
		if (!((s[n] >= '0' && s[n] <= '9') ||
		        (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	}
	return n >= min;
}

/* The stored form of a scope: NULL and "" are "no tenant". */
const char *
cache_scope_str(const char *scope)
{
	return scope != NULL ? scope : "";
}

/* Creates the directories that are missing; records blob_dir's identity. */
int
cache_dirs_make(struct cache *c)
{
	struct stat sb = {0};
	int r;

	r = mkdir_p(c->dir);
	if (r == 0 && mkdir(c->blob_dir, 0700) == -1 && errno != EEXIST)
		r = -errno;
	if (r == 0 && mkdir(c->tmp_dir, 0700) == -1 && errno != EEXIST)
		r = -errno;
	if (r == 0 && stat(c->blob_dir, &sb) == -1)
		r = -errno;
	if (r < 0)
		return r;
	c->blob_dev = sb.st_dev;
	c->blob_ino = sb.st_ino;
	return 0;
}

/*
 * Exclusive locking before the first access keeps the WAL index in heap
 * memory (no -shm file). NORMAL: a crash may lose the last commits, which
 * a cache can afford; the database itself stays consistent.
 */
static int
db_configure(sqlite3 *db)
{
	char res[64];
	int r;

	r = pragma(db, "PRAGMA locking_mode=EXCLUSIVE", res, sizeof(res));
	if (r == 0)
		r = pragma(db, "PRAGMA journal_mode=WAL", res, sizeof(res));
	if (r == 0 && strcmp(res, "wal") != 0)
		r = -ENOTSUP;
	if (r == 0)
		r = pragma(db, "PRAGMA quick_check(1)", res, sizeof(res));
	if (r == 0 && strcmp(res, "ok") != 0)
		r = -EBADMSG;
	if (r == 0)
		r = exec_sql(db,
		    "PRAGMA synchronous=NORMAL;"
		    "PRAGMA cell_size_check=ON;"
		    "PRAGMA trusted_schema=OFF;"
		    "PRAGMA journal_size_limit=" CACHE_WAL_SIZE_LIMIT ";"
		    "PRAGMA wal_autocheckpoint=" CACHE_WAL_PAGES ";");
	return r;
}

/* Creates the schema in a new database; -EPROTONOSUPPORT for another one. */
static int
db_schema(sqlite3 *db)
{
	char res[32], sql[64];
	long version;
	int r;

	r = pragma(db, "PRAGMA user_version", res, sizeof(res));
	if (r < 0)
		return r;
	version = strtol(res, NULL, 10);
	if (version == CACHE_SCHEMA_VERSION)
		return 0;
	if (version != 0)
		return -EPROTONOSUPPORT;
	r = exec_sql(db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = exec_sql(db, schema_sql);
	(void)snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
	    CACHE_SCHEMA_VERSION);
	if (r == 0)
		r = exec_sql(db, sql);
	if (r == 0)
		r = exec_sql(db, "COMMIT");
	if (r < 0)
		(void)exec_sql(db, "ROLLBACK");
	return r;
}

static int
db_try_open(struct cache *c)
{
	struct stat sb = {0};
	int64_t n = 0, bytes = 0;
	size_t i;
	int fd, rc, r;

	/* Created here so that it gets 0600, whatever the umask. */
	fd = open(c->db_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd == -1)
		return -errno;
	(void)close(fd);
	rc = sqlite3_open_v2(c->db_path, &c->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return cache_errno(rc);
	(void)sqlite3_extended_result_codes(c->db, 1);
	r = db_configure(c->db);
	if (r == 0)
		r = db_schema(c->db);
	for (i = 0; r == 0 && i < ST__MAX; i++) {
		rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &c->stmt[i], NULL);
		r = cache_errno(rc);
	}
	if (r == 0 && stat(c->db_path, &sb) == -1)
		r = -errno;
	if (r == 0)
		r = cache_query_pair(c->stmt[ST_TOTALS], SQLITE_OK, &n, &bytes);
	if (r < 0)
		return r;
	c->db_dev = sb.st_dev;
	c->db_ino = sb.st_ino;
	c->entries = (uint64_t)n;
	c->entry_bytes = (uint64_t)bytes;
	return 0;
}

/*
 * Finalizes and closes. discard: the file is about to be deleted, so no
 * checkpoint writes into it on the way out.
 */
static void
db_close(struct cache *c, bool discard)
{
	size_t i;

	for (i = 0; i < ST__MAX; i++) {
		(void)sqlite3_finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	if (c->db != NULL && discard)
		(void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
		    1, NULL);
	(void)sqlite3_close_v2(c->db);
	c->db = NULL;
	c->ntouch = 0;
	hotset_clear(&c->hot);
	c->entries = c->entry_bytes = c->blobs = c->blob_bytes = 0;
}

/* Deletes the database and its journals (the blobs follow at reconcile). */
static void
db_wipe(struct cache *c)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (snprintf(path, sizeof(path), "%s%s", c->db_path,
		        suffixes[i]) < (int)sizeof(path))
			(void)unlink(path);
}

/*
 * Opens the database, recreating it once if it is damaged or of another
 * version, and brings the blob directory in line with it. On failure the
 * cache stays unavailable with the reason in open_err.
 */
static int
db_open(struct cache *c)
{
	int r;

	r = cache_dirs_make(c);
	if (r == 0) {
		r = db_try_open(c);
		if (cache_needs_rebuild(r) || r == -EPROTONOSUPPORT) {
			db_close(c, true);
			db_wipe(c);
			c->rebuilds++;
			r = db_try_open(c);
		}
	}
	if (r == 0)
		r = cache_blob_reconcile(c);
	if (r < 0) {
		db_close(c, true);
		c->open_err = r;
		return r;
	}
	c->open_err = 0;
	c->broken = false;
	return 0;
}

/* Drops everything and starts over with an empty cache. */
void
cache_rebuild(struct cache *c)
{
	db_close(c, true);
	db_wipe(c);
	c->rebuilds++;
	(void)db_open(c);
}

/*
 * The database file is still the one open, and starts like a database (or
 * is still empty: with WAL, pages reach it at the first checkpoint). The
 * header is read through SQLite's own handle: opening and closing another
 * descriptor on the file would drop SQLite's POSIX locks.
 */
static bool
db_intact(struct cache *c)
{
	static const char magic[16] = "SQLite format 3";
	static const unsigned char zero[16];
	unsigned char hdr[16] = {0};
	sqlite3_file *f = NULL;
	struct stat sb;
	int rc;

	if (stat(c->db_path, &sb) == -1 || sb.st_dev != c->db_dev ||
	    sb.st_ino != c->db_ino)
		return false;
	rc = sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
	if (rc != SQLITE_OK || f == NULL || f->pMethods == NULL)
		return true;
	rc = f->pMethods->xRead(f, hdr, sizeof(hdr), 0);
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
		return false;
	return memcmp(hdr, magic, sizeof(hdr)) == 0 ||
	    memcmp(hdr, zero, sizeof(hdr)) == 0;
}

/*
 * Runs at the start of each call: a rebuild asked for by an earlier error,
 * and at most once per CACHE_CHECK_INTERVAL_MS, a reopen attempt while
 * unavailable, or a check of the database file and the blob directory
 * (two stat calls and a 16-byte read).
 */
void
cache_maybe_check(struct cache *c, uint64_t now)
{
	if (c->broken) {
		cache_rebuild(c);
		c->last_check_ms = now;
		return;
	}
	if (now >= c->last_check_ms &&
	    now - c->last_check_ms < CACHE_CHECK_INTERVAL_MS)
		return;
	c->last_check_ms = now;
	if (c->db == NULL) {
		/* Unavailable only after a rebuild: never reopen old data. */
		db_wipe(c);
		(void)db_open(c);
	} else if (!db_intact(c))
		cache_rebuild(c);
	else if (!cache_blob_dir_intact(c))
		cache_blob_reset(c);
	else if (access(c->tmp_dir, F_OK) == -1)
		(void)cache_dirs_make(c);
}

/* Opens a write transaction and writes the pending last-use times in it. */
int
cache_tx_begin(struct cache *c)
{
	sqlite3_stmt *s = c->stmt[ST_TOUCH];
	size_t i;
	int rc = SQLITE_OK, r;

	r = cache_exec(c->stmt[ST_BEGIN], SQLITE_OK);
	for (i = 0; r == 0 && i < c->ntouch; i++) {
		sqlutil_bind_int(s, 1, c->touch[i].id, &rc);
		sqlutil_bind_int(s, 2, c->touch[i].at, &rc);
		r = cache_exec(s, rc);
	}
	c->ntouch = 0; /* on failure they are lost: only LRU order suffers */
	if (r < 0 && sqlite3_get_autocommit(c->db) == 0)
		(void)cache_exec(c->stmt[ST_ROLLBACK], SQLITE_OK);
	return r;
}

/* Commits if r >= 0, else rolls back. Returns r or the commit's error. */
int
cache_tx_end(struct cache *c, int r)
{
	if (r >= 0) {
		int e = cache_exec(c->stmt[ST_COMMIT], SQLITE_OK);

		if (e == 0)
			return r;
		r = e;
	}
	if (sqlite3_get_autocommit(c->db) == 0)
		(void)cache_exec(c->stmt[ST_ROLLBACK], SQLITE_OK);
	return r;
}

static int
copy_ttls(struct cache *c, const struct cache_config *cfg)
{
	size_t i;

	if (cfg->nttls == 0)
		return 0;
	c->ttls = calloc(cfg->nttls, sizeof(*c->ttls));
	if (c->ttls == NULL)
		return -ENOMEM;
	c->nttls = cfg->nttls;
	for (i = 0; i < cfg->nttls; i++) {
		assert(cfg->ttls[i].resource != NULL);
		c->ttls[i].ttl_ms = cfg->ttls[i].ttl_ms;
		c->ttls[i].resource =
		    strdup(cache_resource_name(cfg->ttls[i].resource));
		if (c->ttls[i].resource == NULL)
			return -ENOMEM;
	}
	return 0;
}

int
cache_open(const struct cache_config *cfg, struct cache **ret)
{
	struct cache *c;
	int r = -ENOMEM;

	assert(cfg != NULL && ret != NULL);
	assert(cfg->ttls != NULL || cfg->nttls == 0);
	if (cfg->dir == NULL || cfg->dir[0] == '\0')
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->max_entry_bytes = cfg->max_entry_bytes > 0
	    ? cfg->max_entry_bytes
	    : CACHE_DEFAULT_MAX_ENTRY_BYTES;
	c->max_blob_bytes = cfg->max_blob_bytes > 0
	    ? cfg->max_blob_bytes
	    : CACHE_DEFAULT_MAX_BLOB_BYTES;
	c->default_ttl_ms = cfg->default_ttl_ms > 0 ? cfg->default_ttl_ms
	                                            : CACHE_DEFAULT_TTL_MS;
	c->dir = strdup(cfg->dir);
	if (c->dir == NULL)
		goto out_free;
	c->db_path = cache_path_join(c->dir, "cache.db");
	c->blob_dir = cache_path_join(c->dir, "blobs");
	if (c->db_path == NULL || c->blob_dir == NULL)
		goto out_free;
	c->tmp_dir = cache_path_join(c->blob_dir, "tmp");
	if (c->tmp_dir == NULL)
		goto out_free;
	if (copy_ttls(c, cfg) < 0)
		goto out_free;
	r = db_open(c);
	if (r < 0)
		goto out_free;
	/*
	 * With the database's exclusive lock held, no other daemon works
	 * here: whatever is in tmp/ is an interrupted download.
	 */
	cache_sweep_dir(c, c->tmp_dir, false);
	*ret = c;
	return 0;
out_free:
	cache_close(c);
	return r;
}

void
cache_close(struct cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->db != NULL && c->ntouch > 0)
		(void)cache_tx_end(c, cache_tx_begin(c));
	cache_blob_detach(c);
	db_close(c, false);
	free(c->peek);
	for (i = 0; i < c->nttls; i++)
		free(c->ttls[i].resource);
	free(c->ttls);
	free(c->tmp_dir);
	free(c->blob_dir);
	free(c->db_path);
	free(c->dir);
	free(c);
}

void
cache_count(struct cache *c, enum cache_outcome o)
{
	switch (o) {
	case CACHE_HIT:
		c->hits++;
		break;
	case CACHE_MISS:
		c->misses++;
		break;
	case CACHE_STALE:
		c->stale++;
		break;
	case CACHE_BYPASS:
		c->bypass++;
		break;
	}
}

const char *
cache_outcome_str(enum cache_outcome o)
{
	switch (o) {
	case CACHE_HIT:
		return "hit";
	case CACHE_MISS:
		return "miss";
	case CACHE_STALE:
		return "stale";
	case CACHE_BYPASS:
		return "bypass";
	}
	return "unknown";
}

void
cache_stats(const struct cache *c, struct cache_stats *ret)
{
	uint64_t answered = c->hits + c->misses + c->stale;

	*ret = (struct cache_stats){
	    .entries = c->entries,
	    .entry_bytes = c->entry_bytes,
	    .max_entry_bytes = c->max_entry_bytes,
	    .blobs = c->blobs,
	    .blob_bytes = c->blob_bytes,
	    .max_blob_bytes = c->max_blob_bytes,
	    .hits = c->hits,
	    .misses = c->misses,
	    .stale = c->stale,
	    .bypass = c->bypass,
	    .hit_ratio = answered > 0 ? (double)c->hits / (double)answered : 0,
	    .evictions = c->evictions,
	    .blob_evictions = c->blob_evictions,
	    .rebuilds = c->rebuilds,
	    .available = c->db != NULL,
	};
}

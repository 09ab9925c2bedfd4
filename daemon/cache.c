/*
 * SPDX-License-Identifier: MIT
 *
 * cache.db on SQLite (with cache_blob.c and store.c, the only sqlite3.h
 * users): the schema, the pages and objects, checks and rebuilds, and the
 * open and close of the whole cache; the file store is cache_blob.c.
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
#include "sig.h"
#include "sqlutil.h"

#define CACHE_SCHEMA_VERSION 2            /* 2: results normalised, compact */
#define CACHE_KEY_DOMAIN "m8tesd-cache-1" /* versions the key derivation */
#define CACHE_CHECK_INTERVAL_MS 1000      /* file and directory checks */
#define CACHE_TOUCH_MS 1000  /* LRU resolution: older uses are rewritten */
#define CACHE_EVICT_EXTRA 64 /* rows per put evicted below the cap */
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

/* Built-in TTLs; cache_resource returns these names. */
static const struct cache_ttl builtin_ttls[] = {
    {"agents", 30000},
    {"tasks", 30000},
    {"runs", 5000},
    {"run_files", 300000},
    {"apps", 300000},
    {"settings", 60000},
    {"webhooks", 60000},
    {"users", 60000},
    {"memories", 30000},
    {"permissions", 30000},
};

#define NBUILTIN (sizeof(builtin_ttls) / sizeof(builtin_ttls[0]))

/* Parameters of the entry filters (ST_*_SUM, ST_*_DEL). */
struct filter {
	const char *resource;
	const char *scope;
	const char *lo; /* path >= lo */
	const char *hi; /* path < hi */
};

/* One query parameter, for sorting. */
struct qparam {
	const char *p;
	size_t len, name_len;
	size_t idx; /* position in the request: keeps repeated names stable */
};

static void bind_filter(sqlite3_stmt *s, const struct filter *f, int *rc);
static int pragma(sqlite3 *db, const char *sql, char *buf, size_t size);
static int exec_sql(sqlite3 *db, const char *sql);
static int as_cache(int r);
static int mkdir_p(const char *path);
static int64_t key_id(const char *key);
static int qparam_cmp(const void *a, const void *b);
static size_t split_query(const char *q, struct qparam *v);
static int canon_path(const char *in, char **ret);
static int prefix_end(const char *prefix, char **ret);
static int db_configure(sqlite3 *db);
static int db_schema(sqlite3 *db);
static int db_try_open(struct cache *c);
static void db_close(struct cache *c, bool discard);
static void db_wipe(struct cache *c);
static int db_open(struct cache *c);
static bool db_intact(struct cache *c);
static void touch_add(struct cache *c, int64_t id, uint64_t now);
static int
fetch_victims(struct cache *c, int64_t keep, int64_t *id, int64_t *size);
static int evict_entries(struct cache *c, int64_t keep, uint64_t *bytes,
    uint64_t *count, uint64_t *evicted);
static int put_tx(struct cache *c, const char *key, const char *resource,
    const char *scope, const char *path, const void *body, size_t len,
    uint64_t size, uint64_t now);
static void drop_key(struct cache *c, const char *key);
static int db_get(struct cache *c, const char *key, struct hotset_entry *row);
static void hot_put(struct cache *c, const char *key, int64_t id,
    const void *body, size_t len, uint64_t now, uint64_t ttl);
static int remove_entries(struct cache *c, enum stmt_id sum, enum stmt_id del,
    const struct filter *f);
static int copy_ttls(struct cache *c, const struct cache_config *cfg);
static const char *resource_name(const char *name);

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

/* Binds the filter parameters the statement has (unused ones are gaps). */
static void
bind_filter(sqlite3_stmt *s, const struct filter *f, int *rc)
{
	const char *v[4] = {f->resource, f->scope, f->lo, f->hi};
	int i, n = sqlite3_bind_parameter_count(s);

	for (i = 0; i < n && i < 4; i++)
		sqlutil_bind_text(s, i + 1, v[i], rc);
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

/*
 * The kid of a key: its first 63 bits, an 8-byte index key instead of 64
 * bytes of text. Rows keep the whole key and a lookup that finds another
 * key under its kid misses, so a collision can only make two keys replace
 * each other.
 */
static int64_t
key_id(const char *key)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 16; i++)
		v = v << 4 |
		    (uint64_t)(key[i] <= '9' ? key[i] - '0'
		                             : key[i] - 'a' + 10);
	return (int64_t)(v >> 1);
}

/* The stored form of a scope: NULL and "" are "no tenant". */
const char *
cache_scope_str(const char *scope)
{
	return scope != NULL ? scope : "";
}

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int d = memcmp(x->p, y->p, n);

	if (d != 0)
		return d;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Splits a query at '&' into v, skipping empty parameters; the count. */
static size_t
split_query(const char *q, struct qparam *v)
{
	const char *end, *eq;
	size_t n = 0;

	for (;; q = end + 1) {
		end = strchrnul(q, '&');
		if (end > q) {
			eq = memchr(q, '=', (size_t)(end - q));
			v[n] = (struct qparam){.p = q,
			    .len = (size_t)(end - q),
			    .name_len = (size_t)((eq != NULL ? eq : end) - q),
			    .idx = n};
			n++;
		}
		if (*end == '\0')
			return n;
	}
}

/*
 * Writes the canonical form of a path with query to *ret (malloc'd): the
 * path as is, then the non-empty parameters sorted by name, stably.
 */
static int
canon_path(const char *in, char **ret)
{
	struct qparam *v = NULL;
	const char *q, *p;
	size_t len, n, max = 1, i, o;
	char *out;

	if (in == NULL || in[0] != '/')
		return -EINVAL;
	len = strlen(in);
	if (len > CACHE_MAX_PATH)
		return -ENAMETOOLONG;
	out = malloc(len + 1);
	if (out == NULL)
		return -ENOMEM;
	q = strchr(in, '?');
	o = q != NULL ? (size_t)(q - in) : len;
	memcpy(out, in, o);
	if (q != NULL) {
		for (p = q + 1; *p != '\0'; p++)
			max += *p == '&';
		v = calloc(max, sizeof(*v));
		if (v == NULL) {
			free(out);
			return -ENOMEM;
		}
		n = split_query(q + 1, v);
		qsort(v, n, sizeof(*v), qparam_cmp);
		for (i = 0; i < n; i++) {
			out[o++] = i == 0 ? '?' : '&';
			memcpy(out + o, v[i].p, v[i].len);
			o += v[i].len;
		}
		free(v);
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

/*
 * The least string above every string that starts with prefix, for a
 * range scan: prefix with its last byte below 0xff incremented (trailing
 * 0xff bytes dropped). *ret = NULL when there is none.
 */
static int
prefix_end(const char *prefix, char **ret)
{
	size_t n = strlen(prefix);
	char *e;

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0) {
		*ret = NULL;
		return 0;
	}
	e = strndup(prefix, n);
	if (e == NULL)
		return -ENOMEM;
	e[n - 1] = (char)((unsigned char)e[n - 1] + 1);
	*ret = e;
	return 0;
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

/* Queues a last-use write; a full queue is written in one transaction. */
static void
touch_add(struct cache *c, int64_t id, uint64_t now)
{
	size_t i;
	int r;

	for (i = 0; i < c->ntouch; i++)
		if (c->touch[i].id == id) {
			c->touch[i].at = (int64_t)now;
			return;
		}
	c->touch[c->ntouch++] =
	    (struct cache_touch){.id = id, .at = (int64_t)now};
	if (c->ntouch < CACHE_TOUCH_BATCH)
		return;
	r = cache_tx_begin(c);
	r = cache_tx_end(c, r);
	if (cache_needs_rebuild(r))
		c->broken = true; /* the lookup succeeded; rebuild next call */
}

/*
 * Reads up to CACHE_EVICT_BATCH least recently used entries other than
 * keep into id and size. Returns how many, or -errno.
 */
static int
fetch_victims(struct cache *c, int64_t keep, int64_t *id, int64_t *size)
{
	sqlite3_stmt *s = c->stmt[ST_VICTIMS];
	int n = 0, rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, keep, &rc);
	sqlutil_bind_int(s, 2, CACHE_EVICT_BATCH, &rc);
	while (rc == SQLITE_OK && n < CACHE_EVICT_BATCH) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		id[n] = sqlite3_column_int64(s, 0);
		size[n] = sqlite3_column_int64(s, 1);
		n++;
		rc = SQLITE_OK;
	}
	sqlutil_reset(s);
	return rc == SQLITE_OK || rc == SQLITE_DONE ? n : cache_errno(rc);
}

/*
 * Inside a transaction: deletes least recently used entries other than
 * keep while *bytes is over the cap, then at most CACHE_EVICT_EXTRA more
 * while it is over the low-water mark (7/8 of the cap), so that a run of
 * puts evicts in batches rather than on every call. Adjusts the totals.
 */
static int
evict_entries(struct cache *c, int64_t keep, uint64_t *bytes, uint64_t *count,
    uint64_t *evicted)
{
	uint64_t cap = c->max_entry_bytes, low = cap - cap / 8;
	int64_t id[CACHE_EVICT_BATCH] = {0}, size[CACHE_EVICT_BATCH] = {0};
	unsigned extra = CACHE_EVICT_EXTRA;
	int i, n, rc, r;

	while (*bytes > low && (*bytes > cap || extra > 0)) {
		n = fetch_victims(c, keep, id, size);
		if (n <= 0)
			return n;
		for (i = 0; i < n; i++) {
			if (*bytes <= low || (*bytes <= cap && extra == 0))
				break;
			if (*bytes <= cap)
				extra--;
			rc = SQLITE_OK;
			sqlutil_bind_int(c->stmt[ST_DEL], 1, id[i], &rc);
			r = cache_exec(c->stmt[ST_DEL], rc);
			if (r < 0)
				return r;
			hotset_drop_id(&c->hot, id[i]);
			*bytes -= (uint64_t)size[i] < *bytes ? (uint64_t)size[i]
			                                     : *bytes;
			(*count)--;
			(*evicted)++;
		}
	}
	return 0;
}

static int
put_tx(struct cache *c, const char *key, const char *resource,
    const char *scope, const char *path, const void *body, size_t len,
    uint64_t size, uint64_t now)
{
	static const char empty[1];
	sqlite3_stmt *s = c->stmt[ST_PUT];
	uint64_t ttl = cache_ttl_ms(c, resource), bytes = 0, count = 0;
	uint64_t evicted = 0;
	int64_t kid = key_id(key), id = 0, old_size = 0;
	bool found;
	int rc = SQLITE_OK, r;

	r = cache_tx_begin(c);
	if (r < 0)
		return r;
	sqlutil_bind_int(c->stmt[ST_FIND], 1, kid, &rc);
	r = cache_query_pair(c->stmt[ST_FIND], rc, &id, &old_size);
	if (r < 0)
		goto out;
	found = r > 0;
	count = c->entries + !found;
	rc = SQLITE_OK;
	sqlutil_bind_int(s, 1, kid, &rc);
	sqlutil_bind_text(s, 2, key, &rc);
	sqlutil_bind_text(s, 3, resource, &rc);
	sqlutil_bind_text(s, 4, cache_scope_str(scope), &rc);
	sqlutil_bind_text(s, 5, path, &rc);
	sqlutil_bind_int(s, 6, (int64_t)now, &rc);
	sqlutil_bind_int(s, 7, (int64_t)(now + ttl), &rc);
	sqlutil_bind_int(s, 8, (int64_t)size, &rc);
	/* A NULL blob pointer would bind NULL, not an empty body. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(s, 9, len > 0 ? body : empty, (int)len,
		    SQLITE_STATIC);
	r = cache_exec(s, rc);
	if (r < 0)
		goto out;
	if (!found)
		id = sqlite3_last_insert_rowid(c->db);
	bytes = c->entry_bytes - (uint64_t)old_size + size;
	if (bytes > c->max_entry_bytes)
		r = evict_entries(c, id, &bytes, &count, &evicted);
out:
	r = cache_tx_end(c, r);
	if (r < 0) {
		/* Rolled back: rows the hot set dropped may be back, fine. */
		hotset_drop_key(&c->hot, kid, key);
		return r;
	}
	c->entry_bytes = bytes;
	c->entries = count;
	c->evictions += evicted;
	hot_put(c, key, id, body, len, now, ttl);
	return 0;
}

/* Keeps a copy of a row just written; without memory it is not kept. */
static void
hot_put(struct cache *c, const char *key, int64_t id, const void *body,
    size_t len, uint64_t now, uint64_t ttl)
{
	struct hotset_entry e = {.id = id,
	    .stored_at = (int64_t)now,
	    .expires_at = (int64_t)(now + ttl),
	    .used = (int64_t)now,
	    .len = len};

	hotset_drop_key(&c->hot, key_id(key), key);
	if (len > HOTSET_MAX_ENTRY)
		return;
	e.body = malloc(len + 1);
	if (e.body == NULL)
		return;
	if (len > 0)
		memcpy(e.body, body, len);
	e.body[len] = '\0';
	(void)snprintf(e.key, sizeof(e.key), "%s", key);
	if (hotset_take(&c->hot, key_id(key), &e, NULL) < 0)
		free(e.body);
}

/*
 * After a failed put: the upstream has answered anew, so an older entry
 * for key must not be served any more, fresh or stale.
 */
static void
drop_key(struct cache *c, const char *key)
{
	int64_t id = 0, size = 0;
	int rc = SQLITE_OK, r;

	hotset_drop_key(&c->hot, key_id(key), key);
	sqlutil_bind_int(c->stmt[ST_FIND], 1, key_id(key), &rc);
	r = cache_query_pair(c->stmt[ST_FIND], rc, &id, &size);
	if (r > 0) {
		rc = SQLITE_OK;
		sqlutil_bind_int(c->stmt[ST_DEL], 1, id, &rc);
		r = cache_exec(c->stmt[ST_DEL], rc);
		if (r == 0) {
			c->entries--;
			c->entry_bytes -= (uint64_t)size;
		}
	}
	if (r < 0)
		cache_rebuild(c);
}

/* Deletes the entries a filter selects in one transaction; the count. */
static int
remove_entries(struct cache *c, enum stmt_id sum, enum stmt_id del,
    const struct filter *f)
{
	int64_t n = 0, bytes = 0;
	int rc = SQLITE_OK, r;

	/*
	 * Nothing to remove (the common case when run.* webhooks pour in):
	 * no write transaction, and the hot set stays.
	 */
	if (c->entries == 0)
		return 0;
	bind_filter(c->stmt[sum], f, &rc);
	r = cache_query_pair(c->stmt[sum], rc, &n, &bytes);
	if (r < 0 || n == 0)
		return r < 0 ? r : 0;
	rc = SQLITE_OK;
	/* The set does not know resources or paths: it goes whole. */
	hotset_clear(&c->hot);
	r = cache_tx_begin(c);
	if (r < 0)
		return r;
	bind_filter(c->stmt[sum], f, &rc);
	r = cache_query_pair(c->stmt[sum], rc, &n, &bytes);
	if (r >= 0) {
		rc = SQLITE_OK;
		bind_filter(c->stmt[del], f, &rc);
		r = cache_exec(c->stmt[del], rc);
	}
	r = cache_tx_end(c, r);
	if (r < 0)
		return r;
	c->entries -= (uint64_t)n;
	c->entry_bytes -= (uint64_t)bytes;
	return n > INT_MAX ? INT_MAX : (int)n;
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
		    strdup(resource_name(cfg->ttls[i].resource));
		if (c->ttls[i].resource == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* Resource names as users know them: teammates live under /agents/. */
static const char *
resource_name(const char *name)
{
	return strcmp(name, "teammates") == 0 ? "agents" : name;
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

int
cache_key(const char *fingerprint, const char *scope, const char *verb,
    const char *path_and_query, char out[CACHE_KEY_SIZE])
{
	const char *parts[5];
	size_t lens[5], n = 0, i, o = 0;
	char *canon, *buf;
	int r;

	if (!cache_is_hex(fingerprint, 1, 64) || verb == NULL ||
	    verb[0] == '\0')
		return -EINVAL;
	r = canon_path(path_and_query, &canon);
	if (r < 0)
		return r;
	parts[0] = CACHE_KEY_DOMAIN;
	parts[1] = fingerprint;
	parts[2] = cache_scope_str(scope);
	parts[3] = verb;
	parts[4] = canon;
	/* NUL separators: no part can contain one, so no two inputs collide. */
	for (i = 0; i < 5; i++) {
		lens[i] = strlen(parts[i]);
		n += lens[i] + 1;
	}
	buf = malloc(n);
	if (buf == NULL) {
		free(canon);
		return -ENOMEM;
	}
	for (i = 0; i < 5; i++) {
		memcpy(buf + o, parts[i], lens[i] + 1);
		o += lens[i] + 1;
	}
	sig_sha256_hex(buf, n, out);
	free(buf);
	free(canon);
	return 0;
}

const char *
cache_resource(const char *path)
{
	const char *seg, *end;
	size_t n, i;

	if (path == NULL)
		return NULL;
	seg = path[0] == '/' ? path + 1 : path;
	n = strcspn(seg, "/?");
	if (n == 4 && strncmp(seg, "runs", 4) == 0 && seg[4] == '/') {
		/* /runs/{id}/files... */
		end = seg + 5 + strcspn(seg + 5, "/?");
		if (end > seg + 5 && strncmp(end, "/files", 6) == 0 &&
		    (end[6] == '\0' || end[6] == '/' || end[6] == '?'))
			return "run_files";
	}
	for (i = 0; i < NBUILTIN; i++)
		if (strlen(builtin_ttls[i].resource) == n &&
		    strncmp(builtin_ttls[i].resource, seg, n) == 0)
			return builtin_ttls[i].resource;
	return NULL;
}

uint32_t
cache_ttl_ms(const struct cache *c, const char *resource)
{
	size_t i;

	if (resource == NULL)
		return c->default_ttl_ms;
	for (i = 0; i < c->nttls; i++)
		if (strcmp(c->ttls[i].resource, resource) == 0)
			return c->ttls[i].ttl_ms;
	for (i = 0; i < NBUILTIN; i++)
		if (strcmp(builtin_ttls[i].resource, resource) == 0)
			return builtin_ttls[i].ttl_ms;
	return c->default_ttl_ms;
}

/*
 * Reads key's row into row (the body malloc'd, with a NUL after it).
 * Returns 0, -ENOENT (also for another key with the same kid), -ENOMEM
 * or -errno; a damaged database is rebuilt and reads as -ENOENT.
 */
static int
db_get(struct cache *c, const char *key, struct hotset_entry *row)
{
	sqlite3_stmt *s = c->stmt[ST_GET];
	const unsigned char *k;
	const void *p;
	size_t len;
	int rc = SQLITE_OK, r;

	sqlutil_bind_int(s, 1, key_id(key), &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	/* Another key with the same kid (a 63-bit collision) is a miss. */
	if (rc == SQLITE_ROW) {
		k = sqlite3_column_text(s, 1);
		if (k == NULL || strcmp((const char *)k, key) != 0)
			rc = SQLITE_DONE;
	}
	if (rc != SQLITE_ROW) {
		sqlutil_reset(s);
		r = rc == SQLITE_DONE ? -ENOENT : cache_errno(rc);
		if (cache_needs_rebuild(r)) {
			cache_rebuild(c);
			r = -ENOENT;
		}
		return r;
	}
	*row = (struct hotset_entry){.id = sqlite3_column_int64(s, 0),
	    .stored_at = sqlite3_column_int64(s, 2),
	    .expires_at = sqlite3_column_int64(s, 3),
	    .used = sqlite3_column_int64(s, 4)};
	p = sqlite3_column_blob(s, 5);
	len = (size_t)sqlite3_column_bytes(s, 5);
	row->body = p != NULL || len == 0 ? malloc(len + 1) : NULL;
	if (row->body != NULL) {
		if (len > 0)
			memcpy(row->body, p, len);
		row->body[len] = '\0';
		row->len = len;
		(void)snprintf(row->key, sizeof(row->key), "%s", key);
	}
	sqlutil_reset(s);
	return row->body != NULL ? 0 : -ENOMEM;
}

int
cache_peek(struct cache *c, const char *key, uint64_t now_ms,
    struct cache_view *ret)
{
	struct hotset_entry row, *h;
	int64_t kid;
	int r;

	assert(c != NULL && ret != NULL);
	free(c->peek);
	c->peek = NULL;
	if (!cache_is_hex(key, 64, 64))
		return -EINVAL;
	cache_maybe_check(c, now_ms);
	if (c->db == NULL)
		return -ENOENT;
	kid = key_id(key);
	h = hotset_find(&c->hot, kid, key);
	if (h == NULL) {
		r = db_get(c, key, &row);
		if (r < 0)
			return r;
		if (hotset_take(&c->hot, kid, &row, &h) < 0) {
			/* Too large to keep: held until the next call. */
			c->peek = row.body;
			h = &row;
		}
	}
	if ((int64_t)now_ms >= h->used + CACHE_TOUCH_MS) {
		h->used = (int64_t)now_ms;
		touch_add(c, h->id, now_ms);
	}
	ret->body = h->body;
	ret->len = h->len;
	ret->fresh =
	    h->stored_at <= (int64_t)now_ms && (int64_t)now_ms < h->expires_at;
	ret->age_ms = (int64_t)now_ms > h->stored_at
	    ? now_ms - (uint64_t)h->stored_at
	    : 0;
	return 0;
}

int
cache_get(struct cache *c, const char *key, uint64_t now_ms,
    struct cache_entry *ret)
{
	struct cache_view v;
	void *body;
	int r;

	r = cache_peek(c, key, now_ms, &v);
	if (r < 0)
		return r;
	body = malloc(v.len + 1);
	if (body == NULL)
		return -ENOMEM;
	memcpy(body, v.body, v.len + 1);
	ret->body = body;
	ret->len = v.len;
	ret->fresh = v.fresh;
	ret->age_ms = v.age_ms;
	return 0;
}

void
cache_entry_done(struct cache_entry *e)
{
	if (e == NULL)
		return;
	free(e->body);
	*e = (struct cache_entry){0};
}

int
cache_put(struct cache *c, const char *key, const char *resource,
    const char *scope, const char *path, const void *body, size_t len,
    uint64_t now_ms)
{
	uint64_t size;
	char *canon;
	int r;

	assert(c != NULL && (body != NULL || len == 0));
	if (!cache_is_hex(key, 64, 64) || resource == NULL ||
	    resource[0] == '\0')
		return -EINVAL;
	r = canon_path(path, &canon);
	if (r < 0)
		return r;
	size = (uint64_t)len + strlen(key) + strlen(resource) +
	    strlen(cache_scope_str(scope)) + strlen(canon) +
	    CACHE_ENTRY_OVERHEAD;
	cache_maybe_check(c, now_ms);
	if (c->db == NULL) {
		r = c->open_err < 0 ? c->open_err : -EIO;
		goto out;
	}
	if (len > INT_MAX || size > c->max_entry_bytes / 8)
		r = -EFBIG;
	else
		r = put_tx(c, key, resource, scope, canon, body, len, size,
		    now_ms);
	if (cache_needs_rebuild(r)) {
		cache_rebuild(c);
		r = c->db != NULL ? put_tx(c, key, resource, scope, canon, body,
		                        len, size, now_ms)
		                  : c->open_err;
	}
	if (r < 0 && c->db != NULL)
		drop_key(c, key);
out:
	free(canon);
	return r;
}

int
cache_invalidate(struct cache *c, const char *resource, const char *scope)
{
	struct filter f = {.resource = resource, .scope = scope};
	int r;

	assert(c != NULL);
	if (resource == NULL)
		return -EINVAL;
	if (c->db == NULL)
		return 0;
	if (scope == NULL || scope[0] == '\0')
		r = remove_entries(c, ST_RES_SUM, ST_RES_DEL, &f);
	else
		r = remove_entries(c, ST_SCOPE_SUM, ST_SCOPE_DEL, &f);
	if (r < 0) {
		cache_rebuild(c); /* an outdated entry must not stay fresh */
		r = 0;
	}
	return r;
}

int
cache_clear(struct cache *c, const char *resource_or_null,
    const char *path_prefix_or_null)
{
	struct filter f = {.resource = resource_or_null != NULL
	        ? resource_name(resource_or_null)
	        : NULL,
	    .lo = path_prefix_or_null};
	char *hi = NULL;
	int r, n;

	assert(c != NULL);
	if (c->db == NULL)
		return 0;
	if (path_prefix_or_null != NULL) {
		r = prefix_end(path_prefix_or_null, &hi);
		if (r < 0)
			return r;
		f.hi = hi;
	}
	r = remove_entries(c, ST_CLEAR_SUM, ST_CLEAR_DEL, &f);
	free(hi);
	if (r < 0 || resource_or_null != NULL || path_prefix_or_null != NULL)
		goto out;
	n = cache_blob_clear(c);
	r = n < 0 ? n : n > INT_MAX - r ? INT_MAX : r + n;
out:
	if (cache_needs_rebuild(r)) {
		cache_rebuild(c);
		r = 0;
	}
	return r;
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

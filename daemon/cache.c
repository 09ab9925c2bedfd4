/*
 * SPDX-License-Identifier: MIT
 *
 * cache.db on SQLite (with store.c, the only sqlite3.h user) and the blob
 * directory beside it. Statements are prepared once and bound with
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
#include <dirent.h>
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
#include "hotset.h"
#include "sig.h"

#define CACHE_SCHEMA_VERSION 2 /* 2: results normalised, compact */
#define CACHE_KEY_DOMAIN "m8tesd-cache-1" /* versions the key derivation */
#define CACHE_CHECK_INTERVAL_MS 1000      /* file and directory checks */
#define CACHE_TOUCH_MS 1000  /* LRU resolution: older uses are rewritten */
#define CACHE_TOUCH_BATCH 64 /* pending last-use writes before a flush */
#define CACHE_EVICT_BATCH 64 /* victims fetched per query */
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

/*
 * Statements that filter entries bind ?1 resource, ?2 scope, ?3 and ?4 the
 * path range (see bind_filter); the others bind their own lists.
 */
enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_GET,
	ST_FIND,
	ST_PUT,
	ST_TOUCH,
	ST_VICTIMS,
	ST_DEL,
	ST_TOTALS,
	ST_RES_SUM,
	ST_RES_DEL,
	ST_SCOPE_SUM,
	ST_SCOPE_DEL,
	ST_CLEAR_SUM,
	ST_CLEAR_DEL,
	ST_BLOB_GET,
	ST_BLOB_PUT,
	ST_BLOB_TOUCH,
	ST_BLOB_DEL,
	ST_BLOB_VICTIMS,
	ST_BLOB_LIST,
	ST_BLOB_TOTALS,
	ST_BLOB_CLEAR,
	ST_INDEX_PUT,
	ST_INDEX_GET,
	ST_INDEX_FORGET,
	ST_INDEX_CLEAR,
	ST__MAX
};

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

/* A copied TTL override. */
struct ttl {
	char *resource;
	uint32_t ttl_ms;
};

struct touch {
	int64_t id; /* entries.id */
	int64_t at; /* ms */
};

struct cache {
	char *dir;      /* the cache directory */
	char *db_path;  /* dir/cache.db */
	char *blob_dir; /* dir/blobs */
	char *tmp_dir;  /* dir/blobs/tmp */
	uint64_t max_entry_bytes;
	uint64_t max_blob_bytes;
	uint32_t default_ttl_ms;
	struct ttl *ttls; /* copies of the overrides */
	size_t nttls;

	sqlite3 *db; /* NULL while unavailable */
	sqlite3_stmt *stmt[ST__MAX];
	int open_err; /* why db is NULL */
	bool broken;  /* an error asked for a rebuild */
	dev_t db_dev; /* identity of the file db has open */
	ino_t db_ino;
	dev_t blob_dev; /* identity of blob_dir */
	ino_t blob_ino;
	uint64_t last_check_ms; /* of maybe_check's last run */

	struct touch touch[CACHE_TOUCH_BATCH]; /* pending last-use writes */
	size_t ntouch;
	struct hotset hot; /* copies of recently used rows */
	char *peek;        /* cache_peek's body when too large for hot */

	uint64_t entries, entry_bytes; /* as committed */
	uint64_t blobs, blob_bytes;
	uint64_t hits, misses, stale, bypass;
	uint64_t evictions, blob_evictions, rebuilds;

	struct cache_blob_writer *writers; /* open writers */
};

struct cache_blob_writer {
	struct cache *c; /* NULL once the cache closed */
	struct cache_blob_writer *next, *prev;
	int fd;
	char *tmp_path;
	struct sig_sha256 *hash;
	uint64_t size; /* bytes written */
	int err;       /* first error, sticky */
};

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

/* Blob names collected for unlinking after a commit. */
struct shalist {
	char (*v)[CACHE_SHA_SIZE];
	size_t n, cap;
};

static int cache_errno(int rc);
static bool needs_rebuild(int r);
static void stmt_reset(sqlite3_stmt *s);
static void bind_text(sqlite3_stmt *s, int i, const char *v, int *rc);
static void bind_int(sqlite3_stmt *s, int i, int64_t v, int *rc);
static void bind_filter(sqlite3_stmt *s, const struct filter *f, int *rc);
static int exec_stmt(sqlite3_stmt *s, int rc);
static int query_pair(sqlite3_stmt *s, int rc, int64_t *a, int64_t *b);
static int exec_sql(sqlite3 *db, const char *sql);
static int pragma(sqlite3 *db, const char *sql, char *buf, size_t size);
static char *path_join(const char *a, const char *b);
static int mkdir_p(const char *path);
static bool is_hex(const char *s, size_t min, size_t max);
static int64_t key_id(const char *key);
static const char *scope_str(const char *scope);
static int qparam_cmp(const void *a, const void *b);
static size_t split_query(const char *q, struct qparam *v);
static int canon_path(const char *in, char **ret);
static int prefix_end(const char *prefix, char **ret);
static int dirs_make(struct cache *c);
static int db_configure(sqlite3 *db);
static int db_schema(sqlite3 *db);
static int db_try_open(struct cache *c);
static void db_close(struct cache *c, bool discard);
static void db_wipe(struct cache *c);
static int db_open(struct cache *c);
static void rebuild(struct cache *c);
static bool db_intact(struct cache *c);
static bool blob_dir_intact(const struct cache *c);
static void blob_reset(struct cache *c);
static void maybe_check(struct cache *c, uint64_t now);
static int tx_begin(struct cache *c);
static int tx_end(struct cache *c, int r);
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
static int shalist_add(struct shalist *l, const char *sha);
static void unlink_blobs(const struct cache *c, const struct shalist *l);
static bool blob_known(struct cache *c, const char *sha, int64_t *ret_size);
static void sweep_dir(struct cache *c, const char *dir, bool unknown_only);
static int blob_reconcile(struct cache *c);
static void blob_drop(struct cache *c, const char *sha, int64_t size);
static bool blob_key_ok(const struct cache_blob_key *k);
static int pick_blobs(struct cache *c, const char *keep, uint64_t *bytes,
    uint64_t *count, struct shalist *victims);
static int evict_blobs(struct cache *c, const char *keep, uint64_t *bytes,
    uint64_t *count, struct shalist *victims);
static int blob_store(struct cache *c, const char *sha, uint64_t size,
    const struct cache_blob_key *k, const char *ctype, uint64_t now,
    bool *ret_known);
static int writer_finish(struct cache_blob_writer *w, int64_t expected,
    char sha[CACHE_SHA_SIZE]);
static void writer_free(struct cache_blob_writer *w, bool renamed);
static void writer_unlink(struct cache_blob_writer *w);
static int copy_ttls(struct cache *c, const struct cache_config *cfg);
static const char *resource_name(const char *name);

/*
 * Maps a SQLite result code to -errno; OK/ROW/DONE: 0. -EBADMSG and -EIO
 * are the codes that make the cache rebuild itself (needs_rebuild).
 */
static int
cache_errno(int rc)
{
	if (rc == SQLITE_CONSTRAINT_UNIQUE ||
	    rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return -EEXIST;
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
		return -EINVAL;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default: /* IOERR, CANTOPEN, READONLY (DBMOVED), schema trouble */
		return -EIO;
	}
}

static bool
needs_rebuild(int r)
{
	return r == -EBADMSG || r == -EIO;
}

static void
stmt_reset(sqlite3_stmt *s)
{
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
}

/* Binders keep the first failure in *rc, as in store.c; NULL binds NULL. */
static void
bind_text(sqlite3_stmt *s, int i, const char *v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = v != NULL ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC)
		                : sqlite3_bind_null(s, i);
}

static void
bind_int(sqlite3_stmt *s, int i, int64_t v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(s, i, v);
}

/* Binds the filter parameters the statement has (unused ones are gaps). */
static void
bind_filter(sqlite3_stmt *s, const struct filter *f, int *rc)
{
	const char *v[4] = {f->resource, f->scope, f->lo, f->hi};
	int i, n = sqlite3_bind_parameter_count(s);

	for (i = 0; i < n && i < 4; i++)
		bind_text(s, i + 1, v[i], rc);
}

/* Steps a statement that returns no rows to completion; resets it. */
static int
exec_stmt(sqlite3_stmt *s, int rc)
{
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : cache_errno(rc);
}

/* Steps a two-integer query: 1 and the values, 0 if no row, or -errno. */
static int
query_pair(sqlite3_stmt *s, int rc, int64_t *a, int64_t *b)
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
	stmt_reset(s);
	return r;
}

/* Runs constant SQL (pragmas, schema); never used with data. */
static int
exec_sql(sqlite3 *db, const char *sql)
{
	return cache_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* Runs a constant PRAGMA and copies its first result into buf. */
static int
pragma(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *v;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_text(s, 0);
		(void)snprintf(buf, size, "%s",
		    v != NULL ? (const char *)v : "");
	} else
		r = rc == SQLITE_DONE ? -EBADMSG : cache_errno(rc);
	(void)sqlite3_finalize(s);
	return r;
}

/* Returns a malloc'd "a/b", or NULL on ENOMEM. */
static char *
path_join(const char *a, const char *b)
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
static bool
is_hex(const char *s, size_t min, size_t max)
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
static const char *
scope_str(const char *scope)
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
static int
dirs_make(struct cache *c)
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
		r = query_pair(c->stmt[ST_TOTALS], SQLITE_OK, &n, &bytes);
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

	r = dirs_make(c);
	if (r == 0) {
		r = db_try_open(c);
		if (needs_rebuild(r) || r == -EPROTONOSUPPORT) {
			db_close(c, true);
			db_wipe(c);
			c->rebuilds++;
			r = db_try_open(c);
		}
	}
	if (r == 0)
		r = blob_reconcile(c);
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
static void
rebuild(struct cache *c)
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

static bool
blob_dir_intact(const struct cache *c)
{
	struct stat sb;

	return stat(c->blob_dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    sb.st_dev == c->blob_dev && sb.st_ino == c->blob_ino;
}

/* The blob directory vanished: recreate it and forget every blob. */
static void
blob_reset(struct cache *c)
{
	int r;

	c->rebuilds++;
	r = dirs_make(c);
	if (r < 0 || c->db == NULL)
		return;
	r = tx_begin(c);
	if (r == 0)
		r = exec_stmt(c->stmt[ST_INDEX_CLEAR], SQLITE_OK);
	if (r == 0)
		r = exec_stmt(c->stmt[ST_BLOB_CLEAR], SQLITE_OK);
	r = tx_end(c, r);
	if (r == 0) {
		c->blobs = c->blob_bytes = 0;
		sweep_dir(c, c->blob_dir, true);
	} else
		c->broken = true;
}

/*
 * Runs at the start of each call: a rebuild asked for by an earlier error,
 * and at most once per CACHE_CHECK_INTERVAL_MS, a reopen attempt while
 * unavailable, or a check of the database file and the blob directory
 * (two stat calls and a 16-byte read).
 */
static void
maybe_check(struct cache *c, uint64_t now)
{
	if (c->broken) {
		rebuild(c);
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
		rebuild(c);
	else if (!blob_dir_intact(c))
		blob_reset(c);
	else if (access(c->tmp_dir, F_OK) == -1)
		(void)dirs_make(c);
}

/* Opens a write transaction and writes the pending last-use times in it. */
static int
tx_begin(struct cache *c)
{
	sqlite3_stmt *s = c->stmt[ST_TOUCH];
	size_t i;
	int rc = SQLITE_OK, r;

	r = exec_stmt(c->stmt[ST_BEGIN], SQLITE_OK);
	for (i = 0; r == 0 && i < c->ntouch; i++) {
		bind_int(s, 1, c->touch[i].id, &rc);
		bind_int(s, 2, c->touch[i].at, &rc);
		r = exec_stmt(s, rc);
	}
	c->ntouch = 0; /* on failure they are lost: only LRU order suffers */
	if (r < 0 && sqlite3_get_autocommit(c->db) == 0)
		(void)exec_stmt(c->stmt[ST_ROLLBACK], SQLITE_OK);
	return r;
}

/* Commits if r >= 0, else rolls back. Returns r or the commit's error. */
static int
tx_end(struct cache *c, int r)
{
	if (r >= 0) {
		int e = exec_stmt(c->stmt[ST_COMMIT], SQLITE_OK);

		if (e == 0)
			return r;
		r = e;
	}
	if (sqlite3_get_autocommit(c->db) == 0)
		(void)exec_stmt(c->stmt[ST_ROLLBACK], SQLITE_OK);
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
	c->touch[c->ntouch++] = (struct touch){.id = id, .at = (int64_t)now};
	if (c->ntouch < CACHE_TOUCH_BATCH)
		return;
	r = tx_begin(c);
	r = tx_end(c, r);
	if (needs_rebuild(r))
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

	bind_int(s, 1, keep, &rc);
	bind_int(s, 2, CACHE_EVICT_BATCH, &rc);
	while (rc == SQLITE_OK && n < CACHE_EVICT_BATCH) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		id[n] = sqlite3_column_int64(s, 0);
		size[n] = sqlite3_column_int64(s, 1);
		n++;
		rc = SQLITE_OK;
	}
	stmt_reset(s);
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
			bind_int(c->stmt[ST_DEL], 1, id[i], &rc);
			r = exec_stmt(c->stmt[ST_DEL], rc);
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

	r = tx_begin(c);
	if (r < 0)
		return r;
	bind_int(c->stmt[ST_FIND], 1, kid, &rc);
	r = query_pair(c->stmt[ST_FIND], rc, &id, &old_size);
	if (r < 0)
		goto out;
	found = r > 0;
	count = c->entries + !found;
	rc = SQLITE_OK;
	bind_int(s, 1, kid, &rc);
	bind_text(s, 2, key, &rc);
	bind_text(s, 3, resource, &rc);
	bind_text(s, 4, scope_str(scope), &rc);
	bind_text(s, 5, path, &rc);
	bind_int(s, 6, (int64_t)now, &rc);
	bind_int(s, 7, (int64_t)(now + ttl), &rc);
	bind_int(s, 8, (int64_t)size, &rc);
	/* A NULL blob pointer would bind NULL, not an empty body. */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(s, 9, len > 0 ? body : empty, (int)len,
		    SQLITE_STATIC);
	r = exec_stmt(s, rc);
	if (r < 0)
		goto out;
	if (!found)
		id = sqlite3_last_insert_rowid(c->db);
	bytes = c->entry_bytes - (uint64_t)old_size + size;
	if (bytes > c->max_entry_bytes)
		r = evict_entries(c, id, &bytes, &count, &evicted);
out:
	r = tx_end(c, r);
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
	struct hotset_entry e = {.id = id, .stored_at = (int64_t)now,
	    .expires_at = (int64_t)(now + ttl), .used = (int64_t)now,
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
	bind_int(c->stmt[ST_FIND], 1, key_id(key), &rc);
	r = query_pair(c->stmt[ST_FIND], rc, &id, &size);
	if (r > 0) {
		rc = SQLITE_OK;
		bind_int(c->stmt[ST_DEL], 1, id, &rc);
		r = exec_stmt(c->stmt[ST_DEL], rc);
		if (r == 0) {
			c->entries--;
			c->entry_bytes -= (uint64_t)size;
		}
	}
	if (r < 0)
		rebuild(c);
}

/* Deletes the entries a filter selects in one transaction; the count. */
static int
remove_entries(struct cache *c, enum stmt_id sum, enum stmt_id del,
    const struct filter *f)
{
	int64_t n = 0, bytes = 0;
	int rc = SQLITE_OK, r;

	/* The set does not know resources or paths: it goes whole. */
	hotset_clear(&c->hot);
	r = tx_begin(c);
	if (r < 0)
		return r;
	bind_filter(c->stmt[sum], f, &rc);
	r = query_pair(c->stmt[sum], rc, &n, &bytes);
	if (r >= 0) {
		rc = SQLITE_OK;
		bind_filter(c->stmt[del], f, &rc);
		r = exec_stmt(c->stmt[del], rc);
	}
	r = tx_end(c, r);
	if (r < 0)
		return r;
	c->entries -= (uint64_t)n;
	c->entry_bytes -= (uint64_t)bytes;
	return n > INT_MAX ? INT_MAX : (int)n;
}

static int
shalist_add(struct shalist *l, const char *sha)
{
	if (l->n == l->cap) {
		size_t cap = l->cap > 0 ? l->cap * 2 : 16;
		void *v = reallocarray(l->v, cap, sizeof(*l->v));

		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	(void)snprintf(l->v[l->n++], CACHE_SHA_SIZE, "%s", sha);
	return 0;
}

static void
unlink_blobs(const struct cache *c, const struct shalist *l)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < l->n; i++)
		if (is_hex(l->v[i], 64, 64) &&
		    snprintf(path, sizeof(path), "%s/%s", c->blob_dir,
		        l->v[i]) < (int)sizeof(path))
			(void)unlink(path);
}

/* True if the index has blob sha; its size in *ret_size (may be NULL). */
static bool
blob_known(struct cache *c, const char *sha, int64_t *ret_size)
{
	int64_t size = 0;
	int rc = SQLITE_OK;

	bind_text(c->stmt[ST_BLOB_GET], 1, sha, &rc);
	if (query_pair(c->stmt[ST_BLOB_GET], rc, &size, NULL) <= 0)
		return false;
	if (ret_size != NULL)
		*ret_size = size;
	return true;
}

/*
 * Unlinks the files in dir (all of them, or those not named after a known
 * blob); directories are left alone (unlink fails on them).
 */
static void
sweep_dir(struct cache *c, const char *dir, bool unknown_only)
{
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return;
	for (;;) {
		de = readdir(d);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unknown_only && is_hex(de->d_name, 64, 64) &&
		    blob_known(c, de->d_name, NULL))
			continue;
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	(void)closedir(d);
}

/*
 * Makes the blob table and the directory agree (after a crash, a rebuild
 * or hands in the directory): rows whose file is missing or of the wrong
 * size go, files no row names go. Then sums the totals.
 */
static int
blob_reconcile(struct cache *c)
{
	struct shalist gone = {0};
	sqlite3_stmt *s = c->stmt[ST_BLOB_LIST];
	char path[PATH_MAX];
	struct stat sb;
	int64_t n = 0, bytes = 0;
	size_t i;
	int rc, r = 0;

	for (;;) {
		const char *sha;

		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		sha = (const char *)sqlite3_column_text(s, 0);
		if (sha == NULL)
			continue; /* NOT NULL: cannot happen */
		if (is_hex(sha, 64, 64) &&
		    snprintf(path, sizeof(path), "%s/%s", c->blob_dir, sha) <
		        (int)sizeof(path) &&
		    stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size == sqlite3_column_int64(s, 1))
			continue;
		r = shalist_add(&gone, sha);
		if (r < 0)
			break;
	}
	stmt_reset(s);
	if (r == 0 && rc != SQLITE_DONE)
		r = cache_errno(rc);
	unlink_blobs(c, &gone);
	for (i = 0; r == 0 && i < gone.n; i++) {
		rc = SQLITE_OK;
		bind_text(c->stmt[ST_BLOB_DEL], 1, gone.v[i], &rc);
		r = exec_stmt(c->stmt[ST_BLOB_DEL], rc);
	}
	free(gone.v);
	if (r < 0)
		return r;
	sweep_dir(c, c->blob_dir, true);
	r = query_pair(c->stmt[ST_BLOB_TOTALS], SQLITE_OK, &n, &bytes);
	if (r < 0)
		return r;
	c->blobs = (uint64_t)n;
	c->blob_bytes = (uint64_t)bytes;
	return 0;
}

/* Forgets a blob whose file is gone or wrong (its index rows follow). */
static void
blob_drop(struct cache *c, const char *sha, int64_t size)
{
	int rc = SQLITE_OK, r;

	bind_text(c->stmt[ST_BLOB_DEL], 1, sha, &rc);
	r = exec_stmt(c->stmt[ST_BLOB_DEL], rc);
	if (r == 0 && sqlite3_changes(c->db) > 0) {
		c->blobs--;
		c->blob_bytes -= (uint64_t)size < c->blob_bytes ? (uint64_t)size
		                                                : c->blob_bytes;
	} else if (needs_rebuild(r))
		c->broken = true;
}

static bool
blob_key_ok(const struct cache_blob_key *k)
{
	return k != NULL && is_hex(k->fingerprint, 1, 64) &&
	    k->run_id != NULL && k->run_id[0] != '\0' && k->filename != NULL &&
	    k->filename[0] != '\0';
}

/*
 * Adds least recently used blobs other than keep to victims, one batch at
 * most, until *bytes would be within the cap. Returns how many, or -errno.
 */
static int
pick_blobs(struct cache *c, const char *keep, uint64_t *bytes, uint64_t *count,
    struct shalist *victims)
{
	sqlite3_stmt *s = c->stmt[ST_BLOB_VICTIMS];
	const char *sha;
	uint64_t size;
	size_t first = victims->n;
	int rc = SQLITE_OK, r = 0;

	bind_text(s, 1, keep, &rc);
	bind_int(s, 2, CACHE_EVICT_BATCH, &rc);
	while (rc == SQLITE_OK && r == 0 && *bytes > c->max_blob_bytes) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		rc = SQLITE_OK;
		sha = (const char *)sqlite3_column_text(s, 0);
		size = (uint64_t)sqlite3_column_int64(s, 1);
		if (sha == NULL)
			continue; /* NOT NULL: cannot happen */
		r = shalist_add(victims, sha);
		if (r == 0) {
			*bytes -= size < *bytes ? size : *bytes;
			(*count)--;
		}
	}
	stmt_reset(s);
	if (r == 0 && rc != SQLITE_OK && rc != SQLITE_DONE)
		r = cache_errno(rc);
	return r < 0 ? r : (int)(victims->n - first);
}

/*
 * Inside a transaction: deletes least recently used blobs other than keep
 * until *bytes is within the cap, collecting their names in victims so
 * that the files are unlinked only after the commit.
 */
static int
evict_blobs(struct cache *c, const char *keep, uint64_t *bytes, uint64_t *count,
    struct shalist *victims)
{
	size_t first, i;
	int rc, r = 0;

	while (r == 0 && *bytes > c->max_blob_bytes) {
		first = victims->n;
		r = pick_blobs(c, keep, bytes, count, victims);
		if (r <= 0)
			break;
		for (i = first; r >= 0 && i < victims->n; i++) {
			rc = SQLITE_OK;
			bind_text(c->stmt[ST_BLOB_DEL], 1, victims->v[i], &rc);
			r = exec_stmt(c->stmt[ST_BLOB_DEL], rc);
		}
	}
	return r < 0 ? r : 0;
}

/*
 * Records a renamed blob and key's index row, evicts, commits, then
 * unlinks the victims. *ret_known: the blob was in the table already.
 */
static int
blob_store(struct cache *c, const char *sha, uint64_t size,
    const struct cache_blob_key *k, const char *ctype, uint64_t now,
    bool *ret_known)
{
	struct shalist victims = {0};
	sqlite3_stmt *s;
	uint64_t bytes = 0, count = 0;
	bool known;
	int rc = SQLITE_OK, r;

	*ret_known = false;
	r = tx_begin(c);
	if (r < 0)
		return r;
	known = blob_known(c, sha, NULL);
	*ret_known = known;
	s = c->stmt[ST_BLOB_PUT];
	bind_text(s, 1, sha, &rc);
	bind_int(s, 2, (int64_t)size, &rc);
	bind_int(s, 3, (int64_t)now, &rc);
	r = exec_stmt(s, rc);
	if (r < 0)
		goto out;
	s = c->stmt[ST_INDEX_PUT];
	rc = SQLITE_OK;
	bind_text(s, 1, k->fingerprint, &rc);
	bind_text(s, 2, scope_str(k->scope), &rc);
	bind_text(s, 3, k->run_id, &rc);
	bind_text(s, 4, k->filename, &rc);
	bind_text(s, 5, sha, &rc);
	bind_text(s, 6,
	    ctype != NULL && strlen(ctype) < CACHE_CTYPE_SIZE ? ctype : "",
	    &rc);
	bind_int(s, 7, (int64_t)now, &rc);
	r = exec_stmt(s, rc);
	if (r < 0)
		goto out;
	bytes = c->blob_bytes + (known ? 0 : size);
	count = c->blobs + !known;
	r = evict_blobs(c, sha, &bytes, &count, &victims);
out:
	r = tx_end(c, r);
	if (r == 0) {
		c->blob_bytes = bytes;
		c->blobs = count;
		c->blob_evictions += victims.n;
		unlink_blobs(c, &victims);
	}
	free(victims.v);
	return r;
}

/*
 * Ends the writing: checks the size against what was written and what
 * was expected, puts the data on disk before it gets a name (so no partial
 * file can survive a crash under that name) and writes the hash to sha.
 */
static int
writer_finish(struct cache_blob_writer *w, int64_t expected,
    char sha[CACHE_SHA_SIZE])
{
	struct stat sb;

	if (w->err < 0)
		return w->err;
	if (w->c == NULL)
		return -ESHUTDOWN;
	if (expected >= 0 && (uint64_t)expected != w->size)
		return -EBADMSG;
	if (fstat(w->fd, &sb) == -1)
		return -errno;
	if ((uint64_t)sb.st_size != w->size)
		return -EIO;
	if (fdatasync(w->fd) == -1)
		return -errno;
	sig_sha256_final(w->hash, sha);
	return 0;
}

/* Closes, removes the temporary file unless renamed, and frees. */
static void
writer_free(struct cache_blob_writer *w, bool renamed)
{
	if (w->fd != -1) {
		(void)close(w->fd);
		if (!renamed)
			(void)unlink(w->tmp_path);
	}
	writer_unlink(w);
	sig_sha256_free(w->hash);
	free(w->tmp_path);
	free(w);
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

static void
writer_unlink(struct cache_blob_writer *w)
{
	if (w->c == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		w->c->writers = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
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
	c->db_path = path_join(c->dir, "cache.db");
	c->blob_dir = path_join(c->dir, "blobs");
	if (c->db_path == NULL || c->blob_dir == NULL)
		goto out_free;
	c->tmp_dir = path_join(c->blob_dir, "tmp");
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
	sweep_dir(c, c->tmp_dir, false);
	*ret = c;
	return 0;
out_free:
	cache_close(c);
	return r;
}

void
cache_close(struct cache *c)
{
	struct cache_blob_writer *w;
	size_t i;

	if (c == NULL)
		return;
	if (c->db != NULL && c->ntouch > 0)
		(void)tx_end(c, tx_begin(c));
	while (c->writers != NULL) {
		w = c->writers;
		writer_unlink(w);
		(void)close(w->fd);
		w->fd = -1;
		(void)unlink(w->tmp_path);
		w->c = NULL;
	}
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

	if (!is_hex(fingerprint, 1, 64) || verb == NULL || verb[0] == '\0')
		return -EINVAL;
	r = canon_path(path_and_query, &canon);
	if (r < 0)
		return r;
	parts[0] = CACHE_KEY_DOMAIN;
	parts[1] = fingerprint;
	parts[2] = scope_str(scope);
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

	bind_int(s, 1, key_id(key), &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	/* Another key with the same kid (a 63-bit collision) is a miss. */
	if (rc == SQLITE_ROW) {
		k = sqlite3_column_text(s, 1);
		if (k == NULL || strcmp((const char *)k, key) != 0)
			rc = SQLITE_DONE;
	}
	if (rc != SQLITE_ROW) {
		stmt_reset(s);
		r = rc == SQLITE_DONE ? -ENOENT : cache_errno(rc);
		if (needs_rebuild(r)) {
			rebuild(c);
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
	stmt_reset(s);
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
	if (!is_hex(key, 64, 64))
		return -EINVAL;
	maybe_check(c, now_ms);
	if (c->db == NULL)
		return -ENOENT;
	kid = key_id(key);
	h = hotset_find(&c->hot, kid, key);
	if (h == NULL) {
		r = db_get(c, key, &row);
		if (r < 0)
			return r;
		if (hotset_take(&c->hot, kid, &row, &h) < 0) {
			c->peek = row.body; /* too large to keep: until the next */
			h = &row;
		}
	}
	if ((int64_t)now_ms >= h->used + CACHE_TOUCH_MS) {
		h->used = (int64_t)now_ms;
		touch_add(c, h->id, now_ms);
	}
	ret->body = h->body;
	ret->len = h->len;
	ret->fresh = h->stored_at <= (int64_t)now_ms &&
	    (int64_t)now_ms < h->expires_at;
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
	if (!is_hex(key, 64, 64) || resource == NULL || resource[0] == '\0')
		return -EINVAL;
	r = canon_path(path, &canon);
	if (r < 0)
		return r;
	size = (uint64_t)len + strlen(key) + strlen(resource) +
	    strlen(scope_str(scope)) + strlen(canon) + CACHE_ENTRY_OVERHEAD;
	maybe_check(c, now_ms);
	if (c->db == NULL) {
		r = c->open_err < 0 ? c->open_err : -EIO;
		goto out;
	}
	if (len > INT_MAX || size > c->max_entry_bytes / 8)
		r = -EFBIG;
	else
		r = put_tx(c, key, resource, scope, canon, body, len, size,
		    now_ms);
	if (needs_rebuild(r)) {
		rebuild(c);
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
		rebuild(c); /* an outdated entry must not stay fresh */
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
	n = r +
	    (c->blobs > (uint64_t)(INT_MAX - r) ? INT_MAX - r : (int)c->blobs);
	r = tx_begin(c);
	if (r == 0)
		r = exec_stmt(c->stmt[ST_INDEX_CLEAR], SQLITE_OK);
	if (r == 0)
		r = exec_stmt(c->stmt[ST_BLOB_CLEAR], SQLITE_OK);
	r = tx_end(c, r);
	if (r == 0) {
		sweep_dir(c, c->blob_dir, false);
		c->blobs = c->blob_bytes = 0;
		r = n;
	}
out:
	if (needs_rebuild(r)) {
		rebuild(c);
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

int
cache_blob_begin(struct cache *c, uint64_t now_ms,
    struct cache_blob_writer **ret)
{
	struct cache_blob_writer *w;
	char uuid[SIG_UUID_SIZE], name[SIG_UUID_SIZE + 5];
	int r = -ENOMEM;

	assert(c != NULL && ret != NULL);
	maybe_check(c, now_ms);
	if (c->db == NULL)
		return c->open_err < 0 ? c->open_err : -EIO;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->fd = -1;
	w->hash = sig_sha256_new();
	sig_random_uuid(uuid);
	(void)snprintf(name, sizeof(name), "%s.part", uuid);
	w->tmp_path = path_join(c->tmp_dir, name);
	if (w->hash == NULL || w->tmp_path == NULL)
		goto out_free;
	w->fd = open(w->tmp_path,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (w->fd == -1 && errno == ENOENT) {
		if (blob_dir_intact(c))
			(void)dirs_make(c); /* only tmp/ went */
		else
			blob_reset(c);
		w->fd = open(w->tmp_path,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (w->fd == -1) {
		r = -errno;
		goto out_free;
	}
	w->c = c;
	w->next = c->writers;
	if (w->next != NULL)
		w->next->prev = w;
	c->writers = w;
	*ret = w;
	return 0;
out_free:
	sig_sha256_free(w->hash);
	free(w->tmp_path);
	free(w);
	return r;
}

int
cache_blob_write(struct cache_blob_writer *w, const void *p, size_t len)
{
	const char *b = p;
	size_t off = 0;
	ssize_t n;

	assert(w != NULL && (p != NULL || len == 0));
	if (w->err == 0 && w->c == NULL)
		w->err = -ESHUTDOWN;
	if (w->err == 0 && len > w->c->max_blob_bytes - w->size)
		w->err = -EFBIG;
	while (w->err == 0 && off < len) {
		n = write(w->fd, b + off, len - off);
		if (n == -1 && errno != EINTR)
			w->err = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (w->err < 0)
		return w->err;
	sig_sha256_update(w->hash, p, len);
	w->size += len;
	return 0;
}

int
cache_blob_commit(struct cache_blob_writer *w, const struct cache_blob_key *key,
    const char *content_type, int64_t expected_size, uint64_t now_ms,
    char ret_sha[CACHE_SHA_SIZE])
{
	struct cache *c = w->c;
	char sha[CACHE_SHA_SIZE], *path = NULL;
	bool renamed = false, known = false;
	int r;

	r = blob_key_ok(key) ? writer_finish(w, expected_size, sha) : -EINVAL;
	if (r == 0 && c->db == NULL)
		r = c->open_err < 0 ? c->open_err : -EIO;
	if (r == 0) {
		path = path_join(c->blob_dir, sha);
		if (path == NULL)
			r = -ENOMEM;
	}
	if (r != 0)
		goto out;
	/* Same name, same content: replacing a file a reader holds is fine. */
	if (rename(w->tmp_path, path) == -1) {
		r = -errno;
		if (r == -ENOENT && !blob_dir_intact(c))
			blob_reset(c);
		goto out;
	}
	renamed = true;
	r = blob_store(c, sha, w->size, key, content_type, now_ms, &known);
	if (r < 0) {
		if (!known)
			(void)unlink(path);
		if (needs_rebuild(r))
			c->broken = true;
		goto out;
	}
	if (ret_sha != NULL)
		memcpy(ret_sha, sha, CACHE_SHA_SIZE);
out:
	writer_free(w, renamed);
	free(path);
	return r;
}

void
cache_blob_abort(struct cache_blob_writer *w)
{
	if (w != NULL)
		writer_free(w, false);
}

int
cache_blob_lookup(struct cache *c, const struct cache_blob_key *key,
    uint64_t now_ms, struct cache_blob *ret)
{
	sqlite3_stmt *s;
	const char *sha, *ctype;
	int64_t stored;
	uint32_t ttl;
	int rc = SQLITE_OK, r;

	assert(c != NULL && ret != NULL);
	if (!blob_key_ok(key))
		return -EINVAL;
	maybe_check(c, now_ms);
	if (c->db == NULL)
		return -ENOENT;
	s = c->stmt[ST_INDEX_GET];
	bind_text(s, 1, key->fingerprint, &rc);
	bind_text(s, 2, scope_str(key->scope), &rc);
	bind_text(s, 3, key->run_id, &rc);
	bind_text(s, 4, key->filename, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		stmt_reset(s);
		r = rc == SQLITE_DONE ? -ENOENT : cache_errno(rc);
		if (needs_rebuild(r)) {
			rebuild(c);
			r = -ENOENT;
		}
		return r;
	}
	sha = (const char *)sqlite3_column_text(s, 0);
	ctype = (const char *)sqlite3_column_text(s, 1);
	stored = sqlite3_column_int64(s, 2);
	r = is_hex(sha, 64, 64) ? 0 : -ENOENT;
	if (r == 0) {
		memcpy(ret->sha, sha, CACHE_SHA_SIZE);
		(void)snprintf(ret->content_type, sizeof(ret->content_type),
		    "%s", ctype != NULL ? ctype : "");
		ret->size = (uint64_t)sqlite3_column_int64(s, 3);
		ttl = cache_ttl_ms(c, "run_files");
		ret->fresh = stored <= (int64_t)now_ms &&
		    (int64_t)now_ms - stored < (int64_t)ttl;
		ret->age_ms =
		    (int64_t)now_ms > stored ? now_ms - (uint64_t)stored : 0;
	}
	stmt_reset(s);
	return r;
}

int
cache_blob_open(struct cache *c, const char *sha, uint64_t now_ms, int *ret_fd)
{
	char path[PATH_MAX];
	struct stat sb;
	int64_t size;
	int fd, rc = SQLITE_OK, r;

	assert(c != NULL && ret_fd != NULL);
	if (!is_hex(sha, 64, 64))
		return -EINVAL;
	maybe_check(c, now_ms);
	if (c->db == NULL || !blob_known(c, sha, &size))
		return -ENOENT;
	if (snprintf(path, sizeof(path), "%s/%s", c->blob_dir, sha) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd == -1) {
		r = -errno;
		if (r == -ENOENT)
			blob_drop(c, sha, size);
		return r;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size != size) {
		(void)close(fd);
		(void)unlink(path);
		blob_drop(c, sha, size);
		return -ENOENT;
	}
	bind_text(c->stmt[ST_BLOB_TOUCH], 1, sha, &rc);
	bind_int(c->stmt[ST_BLOB_TOUCH], 2, (int64_t)now_ms, &rc);
	r = exec_stmt(c->stmt[ST_BLOB_TOUCH], rc);
	if (needs_rebuild(r))
		c->broken = true; /* the fd is good; rebuild on the next call */
	*ret_fd = fd;
	return 0;
}

int
cache_blob_forget(struct cache *c, const char *run_id)
{
	int rc = SQLITE_OK, r;

	assert(c != NULL);
	if (c->db == NULL)
		return 0;
	if (run_id != NULL) {
		bind_text(c->stmt[ST_INDEX_FORGET], 1, run_id, &rc);
		r = exec_stmt(c->stmt[ST_INDEX_FORGET], rc);
	} else
		r = exec_stmt(c->stmt[ST_INDEX_CLEAR], SQLITE_OK);
	if (r < 0) {
		rebuild(c); /* an outdated mapping must not stay */
		return 0;
	}
	return sqlite3_changes(c->db);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * What cache.c (the database, checks and rebuilds), cache_entry.c (the
 * pages and objects), cache_key.c (keys, resource names and TTLs) and
 * cache_blob.c (the content-addressed file store) share: the handle, the
 * prepared statements and the SQLite helpers. Not for other modules: they
 * use cache.h. Helpers follow the module's rules: -errno returns, binders
 * keep the first failure in *rc, SQLite codes mapped by cache_errno
 * (-EBADMSG and -EIO ask for a rebuild).
 */
#ifndef M8_CACHE_INT_H
#define M8_CACHE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "cache.h"
#include "hotset.h"
#include "sqlutil.h"

#define CACHE_TOUCH_BATCH 64 /* pending last-use writes before a flush */
#define CACHE_EVICT_BATCH 64 /* victims fetched per query */

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

/* A copied TTL override. */
struct cache_ttl_copy {
	char *resource;
	uint32_t ttl_ms;
};

/* A last use waiting to be written. */
struct cache_touch {
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
	struct cache_ttl_copy *ttls; /* copies of the overrides */
	size_t nttls;

	sqlite3 *db; /* NULL while unavailable */
	sqlite3_stmt *stmt[ST__MAX];
	int open_err; /* why db is NULL */
	bool broken;  /* an error asked for a rebuild */
	dev_t db_dev; /* identity of the file db has open */
	ino_t db_ino;
	dev_t blob_dev; /* identity of blob_dir */
	ino_t blob_ino;
	uint64_t last_check_ms; /* of cache_maybe_check's last run */

	struct cache_touch
	    touch[CACHE_TOUCH_BATCH]; /* pending last-use writes */
	size_t ntouch;
	struct hotset hot; /* copies of recently used rows */
	char *peek;        /* cache_peek's body when too large for hot */

	uint64_t entries, entry_bytes; /* as committed */
	uint64_t blobs, blob_bytes;
	uint64_t hits, misses, stale, bypass;
	uint64_t evictions, blob_evictions, rebuilds;

	struct cache_blob_writer *writers; /* open writers */
};

/* cache.c */
int cache_errno(int rc);
bool cache_needs_rebuild(int r);
/* A lookup without its row: resets s, rebuilds if needed; -ENOENT/-errno. */
int cache_lookup_miss(struct cache *c, sqlite3_stmt *s, int rc);
/* Steps a statement that returns no rows to completion; resets it. */
int cache_exec(sqlite3_stmt *s, int rc);
/* Steps a two-integer query: 1 and the values, 0 if no row, or -errno. */
int cache_query_pair(sqlite3_stmt *s, int rc, int64_t *a, int64_t *b);
/* A malloc'd "a/b", or NULL. */
char *cache_path_join(const char *a, const char *b);
/* True if s is min to max lowercase hex digits. */
bool cache_is_hex(const char *s, size_t min, size_t max);
/* The stored form of a scope: NULL and "" are "no tenant". */
const char *cache_scope_str(const char *scope);
/* Creates the directories that are missing; records blob_dir's identity. */
int cache_dirs_make(struct cache *c);
/* A pending rebuild, or the once-a-second file and directory checks. */
void cache_maybe_check(struct cache *c, uint64_t now);
/* Drops everything and starts over with an empty cache. */
void cache_rebuild(struct cache *c);
/* Opens a write transaction (writing the pending last-use times in it). */
int cache_tx_begin(struct cache *c);
/* Commits if r >= 0, else rolls back. Returns r or the commit's error. */
int cache_tx_end(struct cache *c, int r);

/* cache_key.c */
/* Writes the canonical path and query (parameters sorted) to *ret. */
int cache_canon_path(const char *in, char **ret);
/* Resource names as users know them: teammates live under /agents/. */
const char *cache_resource_name(const char *name);

/* cache_blob.c */
/* blob_dir is the directory it was (not deleted or replaced). */
bool cache_blob_dir_intact(const struct cache *c);
/* The blob directory vanished: recreate it and forget every blob. */
void cache_blob_reset(struct cache *c);
/* Makes the blob table and the directory agree; sums the totals. */
int cache_blob_reconcile(struct cache *c);
/* Unlinks the files in dir (all, or those no blob row names). */
void cache_sweep_dir(struct cache *c, const char *dir, bool unknown_only);
/* At close: the open writers lose their files and their cache. */
void cache_blob_detach(struct cache *c);
/* Forgets and removes every file. Returns how many there were, or -errno. */
int cache_blob_clear(struct cache *c);

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * The response cache: successful GET list pages and objects, and
 * downloaded run files, in the cache directory. Entries live in cache.db
 * (SQLite, WAL, synchronous=NORMAL, exclusive locking: one daemon per
 * directory) under a key derived from the API key's fingerprint (never the
 * key), the tenant scope (user_id), the verb and the canonical path and
 * query. Each entry has a TTL from its resource; an expired entry is kept
 * and reported stale, so a stale-ok read can still be answered while the
 * upstream is unreachable, until LRU eviction under a byte cap removes it.
 * Files are stored content-addressed (blobs/<sha256>), written through a
 * temporary file that is fsynced, checked and renamed, so a partial
 * download is never served; an index maps (fingerprint, scope, run_id,
 * filename) to a blob, and blobs are evicted LRU under their own cap.
 *
 * The cache is disposable: a database that is corrupt, not a database, of
 * another schema version, deleted or replaced, or a blob directory that
 * vanished, is detected (at open, on any such SQLite error, and by a cheap
 * check at most once a second) and recreated empty; requests then miss,
 * they never fail, and stats count the rebuild. When a write-through
 * invalidation cannot be carried out, the whole cache is dropped, so an
 * entry is never served fresh after the write that outdated it.
 *
 * What this module does not do: decide what to cache (the caller stores
 * 2xx GET answers only), talk to the upstream, parse JSON, or log (debug at
 * most; it logs nothing). Every call is synchronous and short: statements
 * are prepared once, lookups and deletes go through indexes, last-use
 * updates are batched, and eviction work per put is bounded except for what
 * the cap itself requires. Administrative calls (cache_clear, and
 * cache_open's consistency pass) scan. One thread (the loop's) only.
 *
 * Times (now_ms) are Unix time in milliseconds (CLOCK_REALTIME), not the
 * loop's monotonic clock, because entries outlive the process. An entry
 * stored "in the future" (the clock went back) is stale.
 *
 * int functions return >= 0 or -errno; NULL and "" scopes are the same
 * scope (no tenant).
 */
#ifndef M8_CACHE_H
#define M8_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_SIZE 65    /* 64 lowercase hex digits + NUL */
#define CACHE_SHA_SIZE 65    /* SHA-256 of a blob, hex + NUL */
#define CACHE_CTYPE_SIZE 128 /* longest content type kept, + NUL */
#define CACHE_MAX_PATH 8192  /* bytes of path and query */

#define CACHE_DEFAULT_MAX_ENTRY_BYTES (64ULL << 20)
#define CACHE_DEFAULT_MAX_BLOB_BYTES (1ULL << 30)
#define CACHE_DEFAULT_TTL_MS 30000u /* resources with no TTL of their own */
#define CACHE_ENTRY_OVERHEAD 64     /* bytes charged per entry besides its */
                                    /* body, key, resource, scope and path */

struct cache;
struct cache_blob_writer;

/*
 * A TTL for one resource name (see cache_resource; "teammates" is taken
 * for "agents", as for cache_clear).
 */
struct cache_ttl {
	const char *resource;
	uint32_t ttl_ms; /* 0: stored, but stale at once (stale-ok only) */
};

/*
 * Configuration, copied by cache_open. Zero fields take the defaults. The
 * built-in TTLs: agents 30 s, tasks 30 s, runs 5 s, run_files 300 s (file
 * lists and downloads), apps 300 s, settings 60 s, webhooks 60 s, users
 * 60 s, memories 30 s, permissions 30 s; entries in ttls override them and
 * may name other resources.
 */
struct cache_config {
	const char *dir;              /* created 0700 if absent; required */
	uint64_t max_entry_bytes;     /* pages + objects; 0 = 64 MiB */
	uint64_t max_blob_bytes;      /* files; 0 = 1 GiB */
	uint32_t default_ttl_ms;      /* unknown resources; 0 = 30 s */
	const struct cache_ttl *ttls; /* per-resource overrides, may be NULL */
	size_t nttls;
};

/* What a request was answered with; see cache_count. */
enum cache_outcome {
	CACHE_HIT,    /* fresh entry served, no upstream request */
	CACHE_MISS,   /* fetched upstream (no entry, or a stale one) */
	CACHE_STALE,  /* stale entry served (stale-ok, upstream unreachable) */
	CACHE_BYPASS, /* the caller asked not to use the cache */
};

/* A cached page or object, as returned by cache_get. */
struct cache_entry {
	void *body;      /* malloc'd copy + a NUL after len; caller frees */
	size_t len;      /* bytes of body, without the NUL */
	bool fresh;      /* within its TTL */
	uint64_t age_ms; /* since it was stored */
};

/* Identity of a downloaded file. scope may be NULL; the rest may not. */
struct cache_blob_key {
	const char *fingerprint; /* of the API key, as for cache_key */
	const char *scope;       /* user_id, or NULL */
	const char *run_id;
	const char *filename;
};

/* A stored file, as returned by cache_blob_lookup. */
struct cache_blob {
	char sha[CACHE_SHA_SIZE];            /* name for cache_blob_open */
	uint64_t size;                       /* bytes */
	char content_type[CACHE_CTYPE_SIZE]; /* "" if unknown */
	bool fresh;                          /* within the run_files TTL */
	uint64_t age_ms;                     /* since it was stored */
};

/* Counters for daemon.stats. Hit counters start at 0 with each open. */
struct cache_stats {
	uint64_t entries;     /* pages and objects */
	uint64_t entry_bytes; /* charged bytes, always <= max_entry_bytes */
	uint64_t max_entry_bytes;
	uint64_t blobs;      /* files */
	uint64_t blob_bytes; /* their sizes, always <= max_blob_bytes */
	uint64_t max_blob_bytes;
	uint64_t hits, misses, stale, bypass; /* from cache_count */
	double hit_ratio;        /* hits / (hits + misses + stale), or 0 */
	uint64_t evictions;      /* entries removed by the byte cap */
	uint64_t blob_evictions; /* files removed by the byte cap */
	uint64_t rebuilds;       /* database or blob directory recreated */
	bool available;          /* false while the database cannot be */
	                         /* recreated (retried once a second) */
};

/*
 * Opens the cache in cfg->dir: creates the directory (0700, parents too),
 * blobs/ and blobs/tmp/, removes leftover temporary files and blob files the
 * index does not know (and index rows whose file is gone), and opens
 * cache.db, recreating it if it is corrupt or of another schema version
 * (counted as a rebuild). Returns 0 and the handle in *ret; -EINVAL for a
 * missing dir; -EBUSY if another process holds the database; -ENOMEM;
 * -errno from creating the directories or the database.
 */
int cache_open(const struct cache_config *cfg, struct cache **ret);

/*
 * Writes pending last-use times and closes. Blob writers still open are
 * detached (their temporary files removed): their cache_blob_commit
 * returns -ESHUTDOWN, and each must still be committed or aborted to be
 * freed. NULL is a no-op.
 */
void cache_close(struct cache *c);

/*
 * Writes the cache key of a request to out: the SHA-256 (hex) of the
 * fingerprint, the scope (NULL = ""), the verb as sent (e.g. "GET") and
 * path_and_query made canonical: query parameters sorted by name (the
 * order of repeated names is kept, as it may matter) and empty ones
 * dropped, so "?a=1&b=2" and "?b=2&a=1" are one key. fingerprint must be
 * 1 to 64 hex digits (sig_key_fingerprint), which keeps an API key from
 * being passed by mistake. Returns 0; -EINVAL for a bad fingerprint, a
 * NULL or empty verb or a path not starting with '/'; -ENAMETOOLONG past
 * CACHE_MAX_PATH; -ENOMEM.
 */
int cache_key(const char *fingerprint, const char *scope, const char *verb,
    const char *path_and_query, char out[CACHE_KEY_SIZE]);

/*
 * The resource name a path below the base URL belongs to, for TTLs and
 * invalidation: its first segment ("/agents/12" -> "agents"), except
 * "run_files" for /runs/{id}/files and below. Returns a static string, or
 * NULL for a path outside the known resources (the caller may pass any
 * name of its own to cache_put; it gets the default TTL).
 */
const char *cache_resource(const char *path);

/* The TTL entries of resource get (overrides, built-ins, then default). */
uint32_t cache_ttl_ms(const struct cache *c, const char *resource);

/*
 * Looks up key (from cache_key). Returns 0 and the entry in *ret, fresh or
 * stale (the caller owns ret->body); -ENOENT on a miss, which is also the
 * answer while the cache is being or cannot be rebuilt; -EINVAL for a
 * malformed key; -ENOMEM. Any error is a miss to the caller. Records the
 * use for LRU (at a one-second granularity, written in batches).
 */
int cache_get(struct cache *c, const char *key, uint64_t now_ms,
    struct cache_entry *ret);

/* A cached page or object, as cache_peek shows it. */
struct cache_view {
	const char *body; /* the cache's, a NUL after len: do not free */
	size_t len;
	bool fresh;
	uint64_t age_ms;
};

/*
 * As cache_get, without a copy: ret->body belongs to the cache and stays
 * valid until the next call on c, whatever it is. The hit path: recently
 * used entries are answered from memory (the hot set, a bounded copy of
 * rows), others read once from cache.db. Returns as cache_get.
 */
int cache_peek(struct cache *c, const char *key, uint64_t now_ms,
    struct cache_view *ret);

/* Frees e->body and clears e; NULL is a no-op. */
void cache_entry_done(struct cache_entry *e);

/*
 * Stores body (len bytes, copied) under key, replacing any entry, fresh for
 * the TTL of resource from now_ms. scope (NULL = none) and path (its
 * canonical form is stored) serve invalidation and cache_clear; they must
 * be what key was made from. Then evicts least recently used entries until
 * the total is within the cap (and, a bounded number per put, down to 7/8
 * of it, so the next puts need no eviction). Returns 0; -EFBIG if the entry
 * alone would take more than an eighth of the cap (not cached); -EINVAL;
 * -ENOMEM; -ENOSPC; -EIO if the cache is unavailable. After a failed put
 * no entry for key is left, not even an older one: the upstream's newer
 * answer outdated it.
 */
int cache_put(struct cache *c, const char *key, const char *resource,
    const char *scope, const char *path, const void *body, size_t len,
    uint64_t now_ms);

/*
 * Write-through invalidation after a successful create, update or delete:
 * removes every entry of resource, under every fingerprint, in scope and in
 * the unscoped views (which list all tenants' objects); with scope NULL or
 * "" (an account-level write), in every scope. Returns the number removed.
 * If the removal fails the whole cache is dropped instead (never a stale
 * fresh entry), so this returns >= 0 unless resource is NULL (-EINVAL).
 */
int cache_invalidate(struct cache *c, const char *resource, const char *scope);

/*
 * cache.clear: with resource and path_prefix NULL, removes everything,
 * files included; otherwise the entries of resource (if not NULL; the
 * names of cache_resource, and "teammates" for "agents") whose
 * canonical path starts with path_prefix (if not NULL; bytewise, so
 * "/runs/4" also matches "/runs/42": end a prefix with '/' or '?').
 * Returns the number of entries (and files) removed, or -errno. Scans:
 * an administrative call, not for the request path.
 */
int cache_clear(struct cache *c, const char *resource_or_null,
    const char *path_prefix_or_null);

/* Counts one answered request; see enum cache_outcome. */
void cache_count(struct cache *c, enum cache_outcome o);

/* "hit", "miss", "stale" or "bypass", as replies show it. */
const char *cache_outcome_str(enum cache_outcome o);

/* Fills *ret; O(1). */
void cache_stats(const struct cache *c, struct cache_stats *ret);

/*
 * Starts storing a file: a new temporary file in blobs/tmp/ (recreating
 * the blob directory if it vanished). Returns 0 and a writer in *ret, which
 * the caller ends with exactly one cache_blob_commit or cache_blob_abort;
 * -EIO if the cache is unavailable; -ENOMEM; -errno from open(2).
 */
int cache_blob_begin(struct cache *c, uint64_t now_ms,
    struct cache_blob_writer **ret);

/*
 * Appends len bytes to the file and to its running SHA-256; nothing is
 * kept in memory, so any size streams through in pieces. Returns 0;
 * -EFBIG once the file would exceed max_blob_bytes; -ENOSPC, -EIO. The
 * first error sticks: later writes and the commit return it.
 */
int cache_blob_write(struct cache_blob_writer *w, const void *p, size_t len);

/*
 * Finishes the file and frees w in every case: checks its size against
 * expected_size (-1 = unknown, e.g. no Content-Length) and what was
 * written, fsyncs it, renames it to blobs/<sha256> (a file with the same
 * content is shared), maps key to it with content_type (NULL, or longer
 * than CACHE_CTYPE_SIZE - 1: stored as unknown) and evicts least recently
 * used files until the total is within max_blob_bytes. Returns 0 and the
 * hash in ret_sha (may be NULL); -EBADMSG on a size mismatch; -EINVAL for
 * a bad key; -ESHUTDOWN if the cache was closed; a write's error; -errno.
 * On failure nothing is left behind.
 */
int cache_blob_commit(struct cache_blob_writer *w,
    const struct cache_blob_key *key, const char *content_type,
    int64_t expected_size, uint64_t now_ms, char ret_sha[CACHE_SHA_SIZE]);

/* Removes the temporary file and frees w; NULL is a no-op. */
void cache_blob_abort(struct cache_blob_writer *w);

/*
 * Finds the file stored for key. Returns 0 and its description in *ret
 * (fresh: stored less than the run_files TTL ago; a caller may still serve
 * a stale one, files rarely change); -ENOENT; -EINVAL for a bad key.
 */
int cache_blob_lookup(struct cache *c, const struct cache_blob_key *key,
    uint64_t now_ms, struct cache_blob *ret);

/*
 * Opens blobs/<sha> read-only (O_CLOEXEC; the caller owns the fd and may
 * pass it on with SCM_RIGHTS; a later eviction does not affect an open fd)
 * and records the use for LRU. Returns 0 and the fd in *ret_fd; -ENOENT if
 * the file is unknown, gone or of the wrong size (its index rows are then
 * dropped too); -EINVAL for a malformed sha; -errno from open(2).
 */
int
cache_blob_open(struct cache *c, const char *sha, uint64_t now_ms, int *ret_fd);

/*
 * Forgets which files run_id has (all runs if NULL), e.g. after a reply
 * that may produce new versions; the contents stay until evicted. Returns
 * the number of index rows removed; like cache_invalidate, drops the whole
 * cache if that fails.
 */
int cache_blob_forget(struct cache *c, const char *run_id);

#endif

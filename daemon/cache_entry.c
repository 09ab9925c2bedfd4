/*
 * SPDX-License-Identifier: MIT
 *
 * The cache's pages and objects: lookups (through the hot set, then
 * cache.db), last-use writes batched for LRU, stores with eviction of the
 * least recently used entries under max_entry_bytes, and removal by
 * resource, scope or path prefix (write-through invalidation and
 * cache.clear). Part of the cache module (see cache.h); shares the handle
 * and the SQLite helpers with cache.c through cache_int.h.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cache.h"
#include "cache_int.h"
#include "hotset.h"
#include "sqlutil.h"

#define CACHE_TOUCH_MS 1000  /* LRU resolution: older uses are rewritten */
#define CACHE_EVICT_EXTRA 64 /* rows per put evicted below the cap */

/* Parameters of the entry filters (ST_*_SUM, ST_*_DEL). */
struct filter {
	const char *resource;
	const char *scope;
	const char *lo; /* path >= lo */
	const char *hi; /* path < hi */
};

static void bind_filter(sqlite3_stmt *s, const struct filter *f, int *rc);
static int64_t key_id(const char *key);
static int prefix_end(const char *prefix, char **ret);
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

/* Binds the filter parameters the statement has (unused ones are gaps). */
static void
bind_filter(sqlite3_stmt *s, const struct filter *f, int *rc)
{
	const char *v[4] = {f->resource, f->scope, f->lo, f->hi};
	int i, n = sqlite3_bind_parameter_count(s);

	for (i = 0; i < n && i < 4; i++)
		sqlutil_bind_text(s, i + 1, v[i], rc);
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
	int rc = SQLITE_OK;

	sqlutil_bind_int(s, 1, key_id(key), &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	/* Another key with the same kid (a 63-bit collision) is a miss. */
	if (rc == SQLITE_ROW) {
		k = sqlite3_column_text(s, 1);
		if (k == NULL || strcmp((const char *)k, key) != 0)
			rc = SQLITE_DONE;
	}
	if (rc != SQLITE_ROW)
		return cache_lookup_miss(c, s, rc);
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
	r = cache_canon_path(path, &canon);
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
	        ? cache_resource_name(resource_or_null)
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

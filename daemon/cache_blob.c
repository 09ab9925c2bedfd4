/*
 * SPDX-License-Identifier: MIT
 *
 * The cache's file store: downloaded files in blobs/<sha256>, written
 * through a temporary file in blobs/tmp that is hashed as it streams,
 * checked, fsynced and renamed, so that no partial file ever has a blob's
 * name; the blobs table (size, last use) and the blob_index table (which
 * key's run file is which blob) in cache.db; eviction by least recent use
 * under max_blob_bytes, files unlinked only after the commit; and keeping
 * the table and the directory in agreement after crashes, rebuilds and
 * hands in the directory. Part of the cache module (see cache.h); shares
 * the handle and the SQLite helpers with cache.c through cache_int.h.
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
#include "cache_int.h"
#include "sig.h"

struct cache_blob_writer {
	struct cache *c; /* NULL once the cache closed */
	struct cache_blob_writer *next, *prev;
	int fd;
	char *tmp_path;
	struct sig_sha256 *hash;
	uint64_t size; /* bytes written */
	int err;       /* first error, sticky */
};

/* Blob names collected for unlinking after a commit. */
struct shalist {
	char (*v)[CACHE_SHA_SIZE];
	size_t n, cap;
};

static int shalist_add(struct shalist *l, const char *sha);
static void unlink_blobs(const struct cache *c, const struct shalist *l);
static bool blob_known(struct cache *c, const char *sha, int64_t *ret_size);
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

bool
cache_blob_dir_intact(const struct cache *c)
{
	struct stat sb;

	return stat(c->blob_dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    sb.st_dev == c->blob_dev && sb.st_ino == c->blob_ino;
}

/*
 * Forgets every blob (rows and counters), then sweeps the directory as
 * cache_sweep_dir does; 0, or -errno with nothing changed.
 */
static int
forget_blobs(struct cache *c, bool unknown_only)
{
	int r = cache_tx_begin(c);

	if (r == 0)
		r = cache_exec(c->stmt[ST_INDEX_CLEAR], SQLITE_OK);
	if (r == 0)
		r = cache_exec(c->stmt[ST_BLOB_CLEAR], SQLITE_OK);
	r = cache_tx_end(c, r);
	if (r < 0)
		return r;
	c->blobs = c->blob_bytes = 0;
	cache_sweep_dir(c, c->blob_dir, unknown_only);
	return 0;
}

/* The blob directory vanished: recreate it and forget every blob. */
void
cache_blob_reset(struct cache *c)
{
	c->rebuilds++;
	if (cache_dirs_make(c) < 0 || c->db == NULL)
		return;
	if (forget_blobs(c, true) < 0)
		c->broken = true;
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
		if (cache_is_hex(l->v[i], 64, 64) &&
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

	sqlutil_bind_text(c->stmt[ST_BLOB_GET], 1, sha, &rc);
	if (cache_query_pair(c->stmt[ST_BLOB_GET], rc, &size, NULL) <= 0)
		return false;
	if (ret_size != NULL)
		*ret_size = size;
	return true;
}

/*
 * Unlinks the files in dir (all of them, or those not named after a known
 * blob); directories are left alone (unlink fails on them).
 */
void
cache_sweep_dir(struct cache *c, const char *dir, bool unknown_only)
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
		if (unknown_only && cache_is_hex(de->d_name, 64, 64) &&
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
int
cache_blob_reconcile(struct cache *c)
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
		if (cache_is_hex(sha, 64, 64) &&
		    snprintf(path, sizeof(path), "%s/%s", c->blob_dir, sha) <
		        (int)sizeof(path) &&
		    stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size == sqlite3_column_int64(s, 1))
			continue;
		r = shalist_add(&gone, sha);
		if (r < 0)
			break;
	}
	sqlutil_reset(s);
	if (r == 0 && rc != SQLITE_DONE)
		r = cache_errno(rc);
	unlink_blobs(c, &gone);
	for (i = 0; r == 0 && i < gone.n; i++) {
		rc = SQLITE_OK;
		sqlutil_bind_text(c->stmt[ST_BLOB_DEL], 1, gone.v[i], &rc);
		r = cache_exec(c->stmt[ST_BLOB_DEL], rc);
	}
	free(gone.v);
	if (r < 0)
		return r;
	cache_sweep_dir(c, c->blob_dir, true);
	r = cache_query_pair(c->stmt[ST_BLOB_TOTALS], SQLITE_OK, &n, &bytes);
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

	sqlutil_bind_text(c->stmt[ST_BLOB_DEL], 1, sha, &rc);
	r = cache_exec(c->stmt[ST_BLOB_DEL], rc);
	if (r == 0 && sqlite3_changes(c->db) > 0) {
		c->blobs--;
		c->blob_bytes -= (uint64_t)size < c->blob_bytes ? (uint64_t)size
		                                                : c->blob_bytes;
	} else if (cache_needs_rebuild(r))
		c->broken = true;
}

static bool
blob_key_ok(const struct cache_blob_key *k)
{
	return k != NULL && cache_is_hex(k->fingerprint, 1, 64) &&
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

	sqlutil_bind_text(s, 1, keep, &rc);
	sqlutil_bind_int(s, 2, CACHE_EVICT_BATCH, &rc);
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
	sqlutil_reset(s);
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
			sqlutil_bind_text(c->stmt[ST_BLOB_DEL], 1, victims->v[i],
			    &rc);
			r = cache_exec(c->stmt[ST_BLOB_DEL], rc);
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
	r = cache_tx_begin(c);
	if (r < 0)
		return r;
	known = blob_known(c, sha, NULL);
	*ret_known = known;
	s = c->stmt[ST_BLOB_PUT];
	sqlutil_bind_text(s, 1, sha, &rc);
	sqlutil_bind_int(s, 2, (int64_t)size, &rc);
	sqlutil_bind_int(s, 3, (int64_t)now, &rc);
	r = cache_exec(s, rc);
	if (r < 0)
		goto out;
	s = c->stmt[ST_INDEX_PUT];
	rc = SQLITE_OK;
	sqlutil_bind_text(s, 1, k->fingerprint, &rc);
	sqlutil_bind_text(s, 2, cache_scope_str(k->scope), &rc);
	sqlutil_bind_text(s, 3, k->run_id, &rc);
	sqlutil_bind_text(s, 4, k->filename, &rc);
	sqlutil_bind_text(s, 5, sha, &rc);
	sqlutil_bind_text(s, 6,
	    ctype != NULL && strlen(ctype) < CACHE_CTYPE_SIZE ? ctype : "",
	    &rc);
	sqlutil_bind_int(s, 7, (int64_t)now, &rc);
	r = cache_exec(s, rc);
	if (r < 0)
		goto out;
	bytes = c->blob_bytes + (known ? 0 : size);
	count = c->blobs + !known;
	r = evict_blobs(c, sha, &bytes, &count, &victims);
out:
	r = cache_tx_end(c, r);
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
cache_blob_begin(struct cache *c, uint64_t now_ms,
    struct cache_blob_writer **ret)
{
	struct cache_blob_writer *w;
	char uuid[SIG_UUID_SIZE], name[SIG_UUID_SIZE + 5];
	int r = -ENOMEM;

	assert(c != NULL && ret != NULL);
	cache_maybe_check(c, now_ms);
	if (c->db == NULL)
		return c->open_err < 0 ? c->open_err : -EIO;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->fd = -1;
	w->hash = sig_sha256_new();
	sig_random_uuid(uuid);
	(void)snprintf(name, sizeof(name), "%s.part", uuid);
	w->tmp_path = cache_path_join(c->tmp_dir, name);
	if (w->hash == NULL || w->tmp_path == NULL)
		goto out_free;
	w->fd = open(w->tmp_path,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (w->fd == -1 && errno == ENOENT) {
		if (cache_blob_dir_intact(c))
			(void)cache_dirs_make(c); /* only tmp/ went */
		else
			cache_blob_reset(c);
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
		path = cache_path_join(c->blob_dir, sha);
		if (path == NULL)
			r = -ENOMEM;
	}
	if (r != 0)
		goto out;
	/* Same name, same content: replacing a file a reader holds is fine. */
	if (rename(w->tmp_path, path) == -1) {
		r = -errno;
		if (r == -ENOENT && !cache_blob_dir_intact(c))
			cache_blob_reset(c);
		goto out;
	}
	renamed = true;
	r = blob_store(c, sha, w->size, key, content_type, now_ms, &known);
	if (r < 0) {
		if (!known)
			(void)unlink(path);
		if (cache_needs_rebuild(r))
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
	cache_maybe_check(c, now_ms);
	if (c->db == NULL)
		return -ENOENT;
	s = c->stmt[ST_INDEX_GET];
	sqlutil_bind_text(s, 1, key->fingerprint, &rc);
	sqlutil_bind_text(s, 2, cache_scope_str(key->scope), &rc);
	sqlutil_bind_text(s, 3, key->run_id, &rc);
	sqlutil_bind_text(s, 4, key->filename, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return cache_lookup_miss(c, s, rc);
	sha = (const char *)sqlite3_column_text(s, 0);
	ctype = (const char *)sqlite3_column_text(s, 1);
	stored = sqlite3_column_int64(s, 2);
	r = cache_is_hex(sha, 64, 64) ? 0 : -ENOENT;
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
	sqlutil_reset(s);
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
	if (!cache_is_hex(sha, 64, 64))
		return -EINVAL;
	cache_maybe_check(c, now_ms);
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
	sqlutil_bind_text(c->stmt[ST_BLOB_TOUCH], 1, sha, &rc);
	sqlutil_bind_int(c->stmt[ST_BLOB_TOUCH], 2, (int64_t)now_ms, &rc);
	r = cache_exec(c->stmt[ST_BLOB_TOUCH], rc);
	if (cache_needs_rebuild(r))
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
		sqlutil_bind_text(c->stmt[ST_INDEX_FORGET], 1, run_id, &rc);
		r = cache_exec(c->stmt[ST_INDEX_FORGET], rc);
	} else
		r = cache_exec(c->stmt[ST_INDEX_CLEAR], SQLITE_OK);
	if (r < 0) {
		cache_rebuild(c); /* an outdated mapping must not stay */
		return 0;
	}
	return sqlite3_changes(c->db);
}

void
cache_blob_detach(struct cache *c)
{
	struct cache_blob_writer *w;

	while (c->writers != NULL) {
		w = c->writers;
		writer_unlink(w);
		(void)close(w->fd);
		w->fd = -1;
		(void)unlink(w->tmp_path);
		w->c = NULL;
	}
}

int
cache_blob_clear(struct cache *c)
{
	int n = c->blobs > (uint64_t)INT_MAX ? INT_MAX : (int)c->blobs;
	int r = forget_blobs(c, false);

	return r < 0 ? r : n;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests for cache.c: keys and canonical queries, hits, TTL expiry,
 * isolation between keys and tenants, invalidation and clearing, the byte
 * cap with LRU under a flood of puts, rebuilds after corruption or deleted
 * files, and the blob store (streaming writes, commit, lookup, open, abort,
 * leftovers, LRU eviction, a 50 MB file in 64 KiB pieces), the hot set
 * behind cache_peek and cache_ttl values. Each case runs
 * in its own directory under a mkdtemp root, on a fake clock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "hotset.h"
#include "sig.h"
#include "t.h"

#define FP "0123456789ab"
#define FP2 "ba9876543210"
#define T0 1700000000000ULL /* a Unix time in ms */

static char root[64];
static char dir[128];
static int ndirs;

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_rf(const char *path)
{
	(void)nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh cache directory for each case (not created: cache_open does). */
static const char *
new_dir(void)
{
	(void)snprintf(dir, sizeof(dir), "%s/c%d/sub", root, ndirs++);
	return dir;
}

static struct cache *
open_with(uint64_t max_entry, uint64_t max_blob)
{
	struct cache_config cfg = {.dir = dir,
	    .max_entry_bytes = max_entry,
	    .max_blob_bytes = max_blob};
	struct cache *c = NULL;

	if (cache_open(&cfg, &c) < 0)
		return NULL;
	return c;
}

static void
path_in(char *out, size_t size, const char *name)
{
	(void)snprintf(out, size, "%s/%s", dir, name);
}

static int
count_files(const char *sub)
{
	char path[256];
	struct stat sb;
	int n = 0;
	DIR *d;
	struct dirent *de;

	path_in(path, sizeof(path), sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	for (de = readdir(d); de != NULL; de = readdir(d)) {
		char p[512];

		(void)snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
			n++;
	}
	(void)closedir(d);
	return n;
}

static void
garbage(const char *name)
{
	char path[256], buf[8192];
	FILE *f;

	path_in(path, sizeof(path), name);
	memset(buf, 0x5a, sizeof(buf));
	f = fopen(path, "r+");
	if (f == NULL)
		f = fopen(path, "w");
	if (f == NULL)
		return;
	(void)fwrite(buf, 1, sizeof(buf), f);
	(void)fclose(f);
}

/* Writes PRAGMA user_version into the header of a closed database. */
static int
set_user_version(uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24),
	    (unsigned char)(v >> 16), (unsigned char)(v >> 8),
	    (unsigned char)v};
	char path[256];
	ssize_t n;
	int fd;

	path_in(path, sizeof(path), "cache.db");
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	n = pwrite(fd, b, sizeof(b), 60);
	(void)close(fd);
	return n == (ssize_t)sizeof(b) ? 0 : -EIO;
}

static int
put_str(struct cache *c, const char *fp, const char *scope, const char *path,
    const char *body, uint64_t now)
{
	char key[CACHE_KEY_SIZE];
	const char *res = cache_resource(path);
	int r;

	r = cache_key(fp, scope, "GET", path, key);
	if (r < 0)
		return r;
	return cache_put(c, key, res != NULL ? res : "other", scope, path, body,
	    strlen(body), now);
}

/* 1 fresh, 0 stale (body checked when want != NULL), -ENOENT, -errno. */
static int
get_str(struct cache *c, const char *fp, const char *scope, const char *path,
    const char *want, uint64_t now)
{
	struct cache_entry e = {0};
	char key[CACHE_KEY_SIZE];
	int r;

	r = cache_key(fp, scope, "GET", path, key);
	if (r == 0)
		r = cache_get(c, key, now, &e);
	if (r < 0)
		return r;
	if (want != NULL &&
	    (e.body == NULL || e.len != strlen(want) ||
	        strcmp(e.body, want) != 0))
		r = -EBADMSG;
	else
		r = e.fresh;
	cache_entry_done(&e);
	return r;
}

TEST(sha256_stream)
{
	struct sig_sha256 *h = sig_sha256_new();
	char a[SIG_SHA256_HEX_SIZE], b[SIG_SHA256_HEX_SIZE];
	const char *msg = "The quick brown fox jumps over the lazy dog";

	ASSERT(h != NULL);
	sig_sha256_update(h, msg, 10);
	sig_sha256_update(h, NULL, 0);
	sig_sha256_update(h, msg + 10, strlen(msg) - 10);
	sig_sha256_final(h, a);
	ASSERT_STREQ(a,
	    "d7a8fbb307d7809469ca9abcb0082e4f"
	    "8d5651e46d3cdb762d02d0bf37c9e592");
	sig_sha256_final(h, b); /* reset: now the empty message */
	sig_sha256_free(h);
	sig_sha256_hex("", 0, a);
	ASSERT_STREQ(b, a);
	sig_sha256_free(NULL);
}

TEST(key_canonical)
{
	char a[CACHE_KEY_SIZE], b[CACHE_KEY_SIZE];

	ASSERT_OK(cache_key(FP, NULL, "GET", "/agents/?a=1&b=2", a));
	ASSERT_OK(cache_key(FP, NULL, "GET", "/agents/?b=2&a=1", b));
	ASSERT_STREQ(a, b);
	ASSERT_EQ(strlen(a), 64);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/agents/?b=2&&a=1&", b));
	ASSERT_STREQ(a, b);
	ASSERT_OK(cache_key(FP, "", "GET", "/agents/?a=1&b=2", b));
	ASSERT_STREQ(a, b); /* NULL and "" are one scope */
	/* Repeated names keep their order; a prefix name sorts first. */
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x?a=1&a=2", a));
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x?a=2&a=1", b));
	ASSERT(strcmp(a, b) != 0);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x?ab=1&a=2", a));
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x?a=2&ab=1", b));
	ASSERT_STREQ(a, b);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x?", a));
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x", b));
	ASSERT_STREQ(a, b);
	/* Every component matters. */
	ASSERT_OK(cache_key(FP, NULL, "GET", "/x", a));
	ASSERT_OK(cache_key(FP2, NULL, "GET", "/x", b));
	ASSERT(strcmp(a, b) != 0);
	ASSERT_OK(cache_key(FP, "u1", "GET", "/x", b));
	ASSERT(strcmp(a, b) != 0);
	ASSERT_OK(cache_key(FP, NULL, "HEAD", "/x", b));
	ASSERT(strcmp(a, b) != 0);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/y", b));
	ASSERT(strcmp(a, b) != 0);
	/* No ambiguity between the parts. */
	ASSERT_OK(cache_key("ab", "c", "GET", "/x", a));
	ASSERT_OK(cache_key("a", "bc", "GET", "/x", b));
	ASSERT(strcmp(a, b) != 0);
	/* Refusals: an API key is not a fingerprint. */
	ASSERT_EQ(cache_key("sk-live-123", NULL, "GET", "/x", a), -EINVAL);
	ASSERT_EQ(cache_key("", NULL, "GET", "/x", a), -EINVAL);
	ASSERT_EQ(cache_key(NULL, NULL, "GET", "/x", a), -EINVAL);
	ASSERT_EQ(cache_key(FP, NULL, "", "/x", a), -EINVAL);
	ASSERT_EQ(cache_key(FP, NULL, "GET", "x", a), -EINVAL);
	ASSERT_EQ(cache_key(FP, NULL, "GET", NULL, a), -EINVAL);
}

TEST(key_too_long)
{
	static char p[CACHE_MAX_PATH + 2];
	char key[CACHE_KEY_SIZE];

	memset(p, 'a', CACHE_MAX_PATH + 1);
	p[0] = '/';
	p[CACHE_MAX_PATH + 1] = '\0';
	ASSERT_EQ(cache_key(FP, NULL, "GET", p, key), -ENAMETOOLONG);
	p[CACHE_MAX_PATH] = '\0';
	ASSERT_OK(cache_key(FP, NULL, "GET", p, key));
}

TEST(resource_names)
{
	ASSERT_STREQ(cache_resource("/agents/"), "agents");
	ASSERT_STREQ(cache_resource("/agents/12?user_id=u"), "agents");
	ASSERT_STREQ(cache_resource("/agents?limit=2"), "agents");
	ASSERT_STREQ(cache_resource("/runs/"), "runs");
	ASSERT_STREQ(cache_resource("/runs/42"), "runs");
	ASSERT_STREQ(cache_resource("/runs/42/files"), "run_files");
	ASSERT_STREQ(cache_resource("/runs/42/files/a.csv/download"),
	    "run_files");
	ASSERT_STREQ(cache_resource("/runs/42/filesx"), "runs");
	ASSERT_STREQ(cache_resource("/tasks/3/triggers/"), "tasks");
	ASSERT_STREQ(cache_resource("/settings/"), "settings");
	ASSERT(cache_resource("/unknown/") == NULL);
	ASSERT(cache_resource("/agentsx/") == NULL);
	ASSERT(cache_resource(NULL) == NULL);
}

TEST(open_layout)
{
	char path[256];
	struct cache_stats st;
	struct stat sb;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(stat(dir, &sb));
	ASSERT_EQ(sb.st_mode & 0777, 0700);
	path_in(path, sizeof(path), "blobs/tmp");
	ASSERT_OK(stat(path, &sb));
	ASSERT(S_ISDIR(sb.st_mode));
	path_in(path, sizeof(path), "cache.db");
	ASSERT_OK(stat(path, &sb));
	ASSERT_EQ(sb.st_mode & 0777, 0600);
	cache_stats(c, &st);
	ASSERT_EQ(st.max_entry_bytes, CACHE_DEFAULT_MAX_ENTRY_BYTES);
	ASSERT_EQ(st.max_blob_bytes, CACHE_DEFAULT_MAX_BLOB_BYTES);
	ASSERT_EQ(st.rebuilds, 0);
	ASSERT(st.available);
	ASSERT_EQ(cache_ttl_ms(c, "runs"), 5000);
	ASSERT_EQ(cache_ttl_ms(c, "run_files"), 300000);
	ASSERT_EQ(cache_ttl_ms(c, "nope"), CACHE_DEFAULT_TTL_MS);
	cache_close(c);
	cache_close(NULL);
	{
		struct cache_config cfg = {0};

		ASSERT_EQ(cache_open(&cfg, &c), -EINVAL);
	}
}

TEST(put_get_hit)
{
	struct cache_stats st;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", NULL, T0), -ENOENT);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "{\"data\":[]}", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "{\"data\":[]}", T0 + 1), 1);
	/* Replacing keeps one entry. */
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "{\"data\":[1]}", T0 + 2));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "{\"data\":[1]}", T0 + 3),
	    1);
	/* Empty bodies are bodies. */
	ASSERT_OK(put_str(c, FP, NULL, "/settings/", "", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/settings/", "", T0), 1);
	cache_stats(c, &st);
	ASSERT_EQ(st.entries, 2);
	ASSERT(st.entry_bytes > 0);
	/* Survives a restart. */
	cache_close(c);
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "{\"data\":[1]}", T0 + 3),
	    1);
	cache_stats(c, &st);
	ASSERT_EQ(st.entries, 2);
	ASSERT_EQ(st.rebuilds, 0);
	/* Refusals. */
	ASSERT_EQ(cache_put(c, "nothex", "agents", NULL, "/x", "a", 1, T0),
	    -EINVAL);
	{
		struct cache_entry e;

		ASSERT_EQ(cache_get(c, "zz", T0, &e), -EINVAL);
	}
	cache_close(c);
}

TEST(ttl_stale)
{
	struct cache_ttl ttls[] = {{"agents", 1000}, {"custom", 0}};
	struct cache_config cfg = {.ttls = ttls, .nttls = 2};
	struct cache_entry e;
	char key[CACHE_KEY_SIZE];
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/tasks/", "t", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/tasks/", "t", T0 + 29999), 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/tasks/", "t", T0 + 30000), 0);
	ASSERT_EQ(get_str(c, FP, NULL, "/tasks/", "t", T0 + 86400000), 0);
	ASSERT_OK(put_str(c, FP, NULL, "/runs/1", "r", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/runs/1", "r", T0 + 4999), 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/runs/1", "r", T0 + 5000), 0);
	/* Age, and a clock that went back: stale, age 0. */
	ASSERT_OK(cache_key(FP, NULL, "GET", "/tasks/", key));
	ASSERT_OK(cache_get(c, key, T0 + 45000, &e));
	ASSERT_EQ(e.age_ms, 45000);
	ASSERT(!e.fresh);
	cache_entry_done(&e);
	ASSERT_OK(put_str(c, FP, NULL, "/tasks/", "t", T0 + 60000));
	ASSERT_OK(cache_get(c, key, T0, &e));
	ASSERT(!e.fresh);
	ASSERT_EQ(e.age_ms, 0);
	cache_entry_done(&e);
	cache_close(c);

	/* Overrides. */
	new_dir();
	cfg.dir = dir;
	ASSERT_OK(cache_open(&cfg, &c));
	ASSERT_EQ(cache_ttl_ms(c, "agents"), 1000);
	ASSERT_EQ(cache_ttl_ms(c, "tasks"), 30000);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "a", T0 + 999), 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "a", T0 + 1000), 0);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/c", key));
	ASSERT_OK(cache_put(c, key, "custom", NULL, "/c", "x", 1, T0));
	ASSERT_OK(cache_get(c, key, T0, &e));
	ASSERT(!e.fresh); /* TTL 0: kept for stale-ok only */
	cache_entry_done(&e);
	cache_close(c);
}

TEST(canonical_query_hits)
{
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/?limit=2&user_id=u", "p", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/?user_id=u&limit=2", "p", T0),
	    1);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/?limit=3&user_id=u", NULL, T0),
	    -ENOENT);
	cache_close(c);
}

/* Keys that share their first 63 bits replace each other, never mix. */
TEST(kid_collision)
{
	char k1[CACHE_KEY_SIZE], k2[CACHE_KEY_SIZE];
	struct cache_entry e;
	struct cache_stats st;
	struct cache *c;

	/* The second differs from the first only in the dropped bit. */
	(void)snprintf(k1, sizeof(k1), "%s%048d", "0123456789abcdef", 1);
	(void)snprintf(k2, sizeof(k2), "%s%048d", "0123456789abcdee", 2);
	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(cache_put(c, k1, "agents", NULL, "/agents/1", "one", 3, T0));
	ASSERT_OK(cache_get(c, k1, T0, &e));
	ASSERT_MEMEQ(e.body, e.len, "one", 3);
	cache_entry_done(&e);
	ASSERT_EQ(cache_get(c, k2, T0, &e), -ENOENT);
	ASSERT_OK(cache_put(c, k2, "agents", NULL, "/agents/2", "two", 3, T0));
	ASSERT_EQ(cache_get(c, k1, T0, &e), -ENOENT);
	ASSERT_OK(cache_get(c, k2, T0, &e));
	ASSERT_MEMEQ(e.body, e.len, "two", 3);
	cache_entry_done(&e);
	cache_stats(c, &st);
	ASSERT_EQ(st.entries, 1);
	cache_close(c);
}

TEST(isolation)
{
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, "u1", "/agents/", "fp1-u1", T0));
	ASSERT_OK(put_str(c, FP, "u2", "/agents/", "fp1-u2", T0));
	ASSERT_OK(put_str(c, FP2, "u1", "/agents/", "fp2-u1", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "fp1", T0));
	ASSERT_EQ(get_str(c, FP, "u1", "/agents/", "fp1-u1", T0), 1);
	ASSERT_EQ(get_str(c, FP, "u2", "/agents/", "fp1-u2", T0), 1);
	ASSERT_EQ(get_str(c, FP2, "u1", "/agents/", "fp2-u1", T0), 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "fp1", T0), 1);
	ASSERT_EQ(get_str(c, FP2, "u2", "/agents/", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP2, NULL, "/agents/", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP, "u3", "/agents/", NULL, T0), -ENOENT);
	cache_close(c);
}

TEST(invalidate)
{
	struct cache_stats st;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, "u1", "/agents/", "a", T0));
	ASSERT_OK(put_str(c, FP, "u1", "/agents/7", "a7", T0));
	ASSERT_OK(put_str(c, FP2, "u1", "/agents/", "a", T0));
	ASSERT_OK(put_str(c, FP, "u2", "/agents/", "a", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	ASSERT_OK(put_str(c, FP, "u1", "/tasks/", "t", T0));
	/* A write in scope u1: u1's and the unscoped views, all keys. */
	ASSERT_EQ(cache_invalidate(c, "agents", "u1"), 4);
	ASSERT_EQ(get_str(c, FP, "u1", "/agents/", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP, "u1", "/agents/7", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP2, "u1", "/agents/", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP, "u2", "/agents/", "a", T0), 1);
	ASSERT_EQ(get_str(c, FP, "u1", "/tasks/", "t", T0), 1);
	/* An account-level write: every scope. */
	ASSERT_OK(put_str(c, FP, "u1", "/agents/", "a", T0));
	ASSERT_EQ(cache_invalidate(c, "agents", NULL), 2);
	ASSERT_EQ(get_str(c, FP, "u2", "/agents/", NULL, T0), -ENOENT);
	ASSERT_EQ(cache_invalidate(c, "agents", ""), 0);
	ASSERT_EQ(cache_invalidate(c, NULL, NULL), -EINVAL);
	cache_stats(c, &st);
	ASSERT_EQ(st.entries, 1);
	cache_close(c);
}

TEST(clear)
{
	struct cache_stats st;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/runs/42", "r", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/runs/42/files", "f", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/runs/420", "r", T0));
	ASSERT_OK(put_str(c, FP, "u", "/runs/42/files", "f", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/runs/?limit=5", "l", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	ASSERT_OK(put_str(c, FP, NULL, "/tasks/", "t", T0));
	ASSERT_EQ(cache_clear(c, NULL, "/runs/42/"), 2);
	ASSERT_EQ(get_str(c, FP, NULL, "/runs/42/files", NULL, T0), -ENOENT);
	ASSERT_EQ(get_str(c, FP, NULL, "/runs/42", "r", T0), 1);
	ASSERT_EQ(cache_clear(c, NULL, "/runs/42"), 2); /* bytewise */
	ASSERT_EQ(get_str(c, FP, NULL, "/runs/?limit=5", "l", T0), 1);
	ASSERT_EQ(cache_clear(c, "agents", "/runs/"), 0);
	ASSERT_EQ(cache_clear(c, "runs", "/runs/"), 1);
	ASSERT_EQ(cache_clear(c, "agents", NULL), 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/tasks/", "t", T0), 1);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	ASSERT_EQ(cache_clear(c, NULL, NULL), 2);
	cache_stats(c, &st);
	ASSERT_EQ(st.entries, 0);
	ASSERT_EQ(st.entry_bytes, 0);
	cache_close(c);
}

/*
 * 10,000 distinct puts of 200-700 bytes into a 256 KiB cap: the charged
 * total never passes the cap, and an entry read every second survives
 * while others, older, go.
 */
TEST(byte_cap_lru)
{
	const uint64_t cap = (uint64_t)256 * 1024;
	char path[64], body[800];
	struct cache_stats st;
	struct cache *c;
	uint64_t now = T0;
	int i, hot_ok = 1;

	new_dir();
	c = open_with(cap, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/hot", "hot", now));
	for (i = 0; i < 10000; i++) {
		size_t n = 200 + (size_t)(i * 7919) % 500;

		now += 10;
		memset(body, 'a' + i % 26, n);
		body[n] = '\0';
		(void)snprintf(path, sizeof(path), "/agents/?starting_after=%d",
		    i);
		ASSERT_OK(put_str(c, FP, NULL, path, body, now));
		cache_stats(c, &st);
		if (st.entry_bytes > cap)
			T_FAIL("put %d: %llu bytes > cap", i,
			    (unsigned long long)st.entry_bytes);
		if (i % 50 == 0 &&
		    get_str(c, FP, NULL, "/agents/hot", "hot", now) < 0)
			hot_ok = 0;
	}
	ASSERT(hot_ok);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/?starting_after=0", NULL, now),
	    -ENOENT);
	ASSERT_EQ(
	    get_str(c, FP, NULL, "/agents/?starting_after=9999", NULL, now), 1);
	cache_stats(c, &st);
	ASSERT(st.evictions > 9000);
	ASSERT(st.entries > 300);
	ASSERT(st.entry_bytes <= cap);
	ASSERT(st.entry_bytes > cap / 2);
	/* The totals kept in memory match the database. */
	{
		uint64_t entries = st.entries, bytes = st.entry_bytes;

		cache_close(c);
		c = open_with(cap, 0);
		ASSERT(c != NULL);
		cache_stats(c, &st);
		ASSERT_EQ(st.entries, entries);
		ASSERT_EQ(st.entry_bytes, bytes);
	}
	/* Too big for the cap: refused, and the older answer goes. */
	{
		char key[CACHE_KEY_SIZE];
		char *big = calloc(1, cap / 8);
		uint64_t before = st.entries;

		ASSERT(big != NULL);
		ASSERT_OK(put_str(c, FP, NULL, "/agents/big", "small", now));
		ASSERT_OK(cache_key(FP, NULL, "GET", "/agents/big", key));
		ASSERT_EQ(cache_put(c, key, "agents", NULL, "/agents/big", big,
		              cap / 8, now),
		    -EFBIG);
		free(big);
		ASSERT_EQ(get_str(c, FP, NULL, "/agents/big", NULL, now),
		    -ENOENT);
		cache_stats(c, &st);
		ASSERT_EQ(st.entries, before);
	}
	cache_close(c);
}

/* One daemon per directory: a second open fails and disturbs nothing. */
TEST(second_open_busy)
{
	struct cache_blob_key k = {FP, NULL, "1", "f"};
	struct cache_blob_writer *w;
	struct cache_stats st;
	struct cache *c, *c2;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	ASSERT_OK(cache_blob_write(w, "abc", 3));
	{
		struct cache_config cfg = {.dir = dir};

		ASSERT_EQ(cache_open(&cfg, &c2), -EBUSY);
	}
	ASSERT_EQ(count_files("blobs/tmp"), 1);
	ASSERT_OK(cache_blob_commit(w, &k, NULL, 3, T0, NULL));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "a", T0), 1);
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 0);
	cache_close(c);
}

TEST(corrupt_while_closed)
{
	struct cache_stats st;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	cache_close(c);
	garbage("cache.db");
	c = open_with(0, 0);
	ASSERT(c != NULL);
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 1);
	ASSERT_EQ(st.entries, 0);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", NULL, T0), -ENOENT);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "b", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "b", T0), 1);
	cache_close(c);
	/* A database of another schema version is replaced too. */
	ASSERT_OK(set_user_version(99));
	c = open_with(0, 0);
	ASSERT(c != NULL);
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", NULL, T0), -ENOENT);
	cache_close(c);
}

TEST(corrupt_while_open)
{
	struct cache_stats st;
	struct cache *c;
	uint64_t now = T0;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", now));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "a", now), 1);
	garbage("cache.db");
	now += 2000;
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", NULL, now), -ENOENT);
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 1);
	ASSERT(st.available);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "b", now));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "b", now), 1);
	cache_close(c);
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "b", now), 1);
	cache_close(c);
}

TEST(deleted_while_open)
{
	struct cache_stats st;
	struct cache *c;
	uint64_t now = T0;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", now));
	rm_rf(dir);
	now += 2000;
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", NULL, now), -ENOENT);
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 1);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "b", now));
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	cache_close(c);
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "b", now), 1);
	cache_close(c);
}

static int
write_blob(struct cache *c, const struct cache_blob_key *k, const char *data,
    size_t len, uint64_t now, char sha[CACHE_SHA_SIZE])
{
	struct cache_blob_writer *w;
	size_t off;
	int r;

	r = cache_blob_begin(c, now, &w);
	if (r < 0)
		return r;
	for (off = 0; off < len; off += 7) {
		r = cache_blob_write(w, data + off,
		    len - off < 7 ? len - off : 7);
		if (r < 0) {
			cache_blob_abort(w);
			return r;
		}
	}
	return cache_blob_commit(w, k, "text/csv", (int64_t)len, now, sha);
}

static int
read_fd(int fd, char *buf, size_t size)
{
	ssize_t n = 1;
	size_t off = 0;

	while (off < size && n > 0) {
		n = read(fd, buf + off, size - off);
		if (n > 0)
			off += (size_t)n;
	}
	return (int)off;
}

TEST(blob_roundtrip)
{
	struct cache_blob_key k = {FP, "u1", "42", "report.csv"};
	struct cache_blob_key k2 = {FP, "u1", "43", "copy.csv"};
	const char *data = "a,b\n1,2\n3,4\n";
	char sha[CACHE_SHA_SIZE], sha2[CACHE_SHA_SIZE], want[65], buf[64];
	struct cache_blob b;
	struct cache_stats st;
	struct cache *c;
	int fd;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	ASSERT_OK(write_blob(c, &k, data, strlen(data), T0, sha));
	sig_sha256_hex(data, strlen(data), want);
	ASSERT_STREQ(sha, want);
	ASSERT_OK(cache_blob_lookup(c, &k, T0 + 1, &b));
	ASSERT_STREQ(b.sha, want);
	ASSERT_EQ(b.size, strlen(data));
	ASSERT_STREQ(b.content_type, "text/csv");
	ASSERT(b.fresh);
	ASSERT_EQ(b.age_ms, 1);
	ASSERT_OK(cache_blob_lookup(c, &k, T0 + 300000, &b));
	ASSERT(!b.fresh);
	ASSERT_OK(cache_blob_open(c, b.sha, T0, &fd));
	ASSERT_EQ(read_fd(fd, buf, sizeof(buf)), strlen(data));
	ASSERT_MEMEQ(buf, strlen(data), data, strlen(data));
	ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	(void)close(fd);
	/* Other scopes and keys do not see it. */
	k.scope = NULL;
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	k.scope = "u1";
	k.fingerprint = FP2;
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	k.fingerprint = FP;
	/* The same content under another name shares the file. */
	ASSERT_OK(write_blob(c, &k2, data, strlen(data), T0, sha2));
	ASSERT_STREQ(sha2, sha);
	cache_stats(c, &st);
	ASSERT_EQ(st.blobs, 1);
	ASSERT_EQ(st.blob_bytes, strlen(data));
	ASSERT_EQ(count_files("blobs"), 1);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	/* Survives a restart; forgetting a run keeps the other's row. */
	cache_close(c);
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(cache_blob_lookup(c, &k, T0, &b));
	ASSERT_EQ(cache_blob_forget(c, "42"), 1);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	ASSERT_OK(cache_blob_lookup(c, &k2, T0, &b));
	/* Refusals. */
	ASSERT_EQ(cache_blob_open(c, "../../etc/passwd", T0, &fd), -EINVAL);
	ASSERT_EQ(cache_blob_open(c, want + 1, T0, &fd), -EINVAL);
	k.run_id = "";
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -EINVAL);
	ASSERT_EQ(write_blob(c, &k, data, 3, T0, sha), -EINVAL);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	/* Clear all takes the files too. */
	ASSERT_EQ(cache_clear(c, NULL, NULL), 1);
	ASSERT_EQ(count_files("blobs"), 0);
	ASSERT_EQ(cache_blob_lookup(c, &k2, T0, &b), -ENOENT);
	cache_close(c);
}

TEST(blob_size_checks)
{
	struct cache_blob_key k = {FP, NULL, "1", "f"};
	struct cache_blob_writer *w;
	struct cache_blob b;
	struct cache *c;

	new_dir();
	c = open_with(0, 1000);
	ASSERT(c != NULL);
	/* A short download (Content-Length said more) is never stored. */
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	ASSERT_OK(cache_blob_write(w, "abc", 3));
	ASSERT_EQ(cache_blob_commit(w, &k, NULL, 4, T0, NULL), -EBADMSG);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	ASSERT_EQ(count_files("blobs"), 0);
	/* Past the cap: the error sticks to the commit. */
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	{
		char big[1001] = {0};

		ASSERT_EQ(cache_blob_write(w, big, sizeof(big)), -EFBIG);
		ASSERT_EQ(cache_blob_write(w, "x", 1), -EFBIG);
	}
	ASSERT_EQ(cache_blob_commit(w, &k, NULL, -1, T0, NULL), -EFBIG);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	/* Unknown size and no content type: fine. */
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	ASSERT_OK(cache_blob_write(w, "abc", 3));
	ASSERT_OK(cache_blob_commit(w, &k, NULL, -1, T0, NULL));
	ASSERT_OK(cache_blob_lookup(c, &k, T0, &b));
	ASSERT_STREQ(b.content_type, "");
	cache_close(c);
}

TEST(blob_abort)
{
	struct cache_blob_key k = {FP, NULL, "1", "f"};
	struct cache_blob_writer *w;
	struct cache_blob b;
	struct cache_stats st;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	ASSERT_OK(cache_blob_write(w, "partial", 7));
	ASSERT_EQ(count_files("blobs/tmp"), 1);
	cache_blob_abort(w);
	cache_blob_abort(NULL);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	ASSERT_EQ(count_files("blobs"), 0);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	cache_stats(c, &st);
	ASSERT_EQ(st.blobs, 0);
	/* A writer left open across close: detached, its file removed. */
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	ASSERT_OK(cache_blob_write(w, "partial", 7));
	cache_close(c);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	ASSERT_EQ(cache_blob_write(w, "more", 4), -ESHUTDOWN);
	ASSERT_EQ(cache_blob_commit(w, &k, NULL, -1, T0, NULL), -ESHUTDOWN);
}

TEST(blob_leftovers)
{
	struct cache_blob_key k = {FP, NULL, "1", "f"};
	char path[256], sha[CACHE_SHA_SIZE];
	struct cache_blob b;
	struct cache_stats st;
	struct cache *c;
	FILE *f;
	int fd;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(write_blob(c, &k, "kept", 4, T0, sha));
	cache_close(c);
	/* A crash mid-download, a stray file, and a truncated blob. */
	path_in(path, sizeof(path), "blobs/tmp/0000.part");
	f = fopen(path, "w");
	ASSERT(f != NULL);
	(void)fputs("half a fi", f);
	(void)fclose(f);
	(void)snprintf(path, sizeof(path), "%s/blobs/%064d", dir, 7);
	f = fopen(path, "w");
	ASSERT(f != NULL);
	(void)fclose(f);
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(count_files("blobs/tmp"), 0);
	ASSERT_EQ(count_files("blobs"), 1);
	ASSERT_OK(cache_blob_lookup(c, &k, T0, &b));
	cache_close(c);
	(void)snprintf(path, sizeof(path), "%s/blobs/%s", dir, sha);
	ASSERT_OK(truncate(path, 2));
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	ASSERT_EQ(count_files("blobs"), 0);
	cache_stats(c, &st);
	ASSERT_EQ(st.blobs, 0);
	ASSERT_EQ(st.blob_bytes, 0);
	/* A blob file deleted at run time: open says so and forgets it. */
	ASSERT_OK(write_blob(c, &k, "again", 5, T0, sha));
	(void)snprintf(path, sizeof(path), "%s/blobs/%s", dir, sha);
	ASSERT_OK(unlink(path));
	ASSERT_EQ(cache_blob_open(c, sha, T0, &fd), -ENOENT);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	cache_stats(c, &st);
	ASSERT_EQ(st.blobs, 0);
	/* A blob file of the wrong size at run time: the same. */
	ASSERT_OK(write_blob(c, &k, "again", 5, T0, sha));
	ASSERT_OK(truncate(path, 1));
	ASSERT_EQ(cache_blob_open(c, sha, T0, &fd), -ENOENT);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	cache_close(c);
}

TEST(blob_dir_removed)
{
	struct cache_blob_key k = {FP, NULL, "1", "f"};
	char path[256], sha[CACHE_SHA_SIZE];
	struct cache_blob b;
	struct cache_stats st;
	struct cache *c;
	int fd;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(write_blob(c, &k, "one", 3, T0, sha));
	path_in(path, sizeof(path), "blobs");
	rm_rf(path);
	/* No clock advance: the write itself notices and recreates it. */
	ASSERT_OK(write_blob(c, &k, "two", 3, T0, sha));
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 1);
	ASSERT_EQ(st.blobs, 1);
	ASSERT_EQ(st.blob_bytes, 3);
	ASSERT_OK(cache_blob_lookup(c, &k, T0, &b));
	ASSERT_OK(cache_blob_open(c, b.sha, T0, &fd));
	(void)close(fd);
	/* Removed again: the periodic check notices it first. */
	rm_rf(path);
	ASSERT_EQ(cache_blob_lookup(c, &k, T0 + 5000, &b), -ENOENT);
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 2);
	ASSERT_EQ(st.blobs, 0);
	ASSERT_OK(write_blob(c, &k, "three", 5, T0 + 5000, sha));
	/* Only tmp/ removed: blobs stay. */
	path_in(path, sizeof(path), "blobs/tmp");
	rm_rf(path);
	ASSERT_OK(write_blob(c, &k, "four", 4, T0 + 5000, sha));
	cache_stats(c, &st);
	ASSERT_EQ(st.rebuilds, 2);
	ASSERT_EQ(st.blobs, 2);
	cache_close(c);
}

TEST(blob_lru)
{
	char data[3000], sha[4][CACHE_SHA_SIZE];
	struct cache_blob_key k = {FP, NULL, "1", NULL};
	const char *names[] = {"a", "b", "c", "d"};
	struct cache_blob b;
	struct cache_stats st;
	struct cache *c;
	int i, fd;

	new_dir();
	c = open_with(0, 10000);
	ASSERT(c != NULL);
	for (i = 0; i < 3; i++) {
		memset(data, 'a' + i, sizeof(data));
		k.filename = names[i];
		ASSERT_OK(write_blob(c, &k, data, sizeof(data),
		    T0 + (uint64_t)i * 1000, sha[i]));
	}
	/* a is used again, so b is now the least recently used. */
	ASSERT_OK(cache_blob_open(c, sha[0], T0 + 5000, &fd));
	memset(data, 'd', sizeof(data));
	k.filename = names[3];
	ASSERT_OK(write_blob(c, &k, data, sizeof(data), T0 + 6000, sha[3]));
	cache_stats(c, &st);
	ASSERT_EQ(st.blobs, 3);
	ASSERT(st.blob_bytes <= 10000);
	ASSERT_EQ(st.blob_evictions, 1);
	ASSERT_EQ(count_files("blobs"), 3);
	k.filename = "b";
	ASSERT_EQ(cache_blob_lookup(c, &k, T0, &b), -ENOENT);
	k.filename = "a";
	ASSERT_OK(cache_blob_lookup(c, &k, T0, &b));
	/* The fd opened before the eviction of others still reads. */
	{
		char buf[3000];

		ASSERT_EQ(read_fd(fd, buf, sizeof(buf)), 3000);
		ASSERT_EQ(buf[2999], 'a');
	}
	(void)close(fd);
	cache_close(c);
}

/*
 * 50 MB in 64 KiB pieces: the writer gets one piece at a time (this test
 * never holds more than one), the hash is computed on the way, and the
 * file reads back with the same hash.
 */
TEST(blob_large_streamed)
{
	enum { PIECE = 64 * 1024, TOTAL = 50 * 1000 * 1000 };
	struct cache_blob_key k = {FP, NULL, "9", "big.bin"};
	struct cache_blob_writer *w;
	struct sig_sha256 *h = sig_sha256_new(), *h2 = sig_sha256_new();
	char sha[CACHE_SHA_SIZE], want[65], got[65];
	static unsigned char piece[PIECE];
	struct cache_blob b;
	struct cache *c;
	size_t off, n, i;
	ssize_t rn;
	int fd;

	ASSERT(h != NULL && h2 != NULL);
	new_dir();
	c = open_with(0, 64ULL << 20);
	ASSERT(c != NULL);
	ASSERT_OK(cache_blob_begin(c, T0, &w));
	for (off = 0; off < TOTAL; off += n) {
		n = TOTAL - off < PIECE ? TOTAL - off : PIECE;
		for (i = 0; i < n; i++)
			piece[i] =
			    (unsigned char)((off + i) * 2654435761u >> 24);
		sig_sha256_update(h, piece, n);
		ASSERT_OK(cache_blob_write(w, piece, n));
	}
	ASSERT_OK(cache_blob_commit(w, &k, "application/octet-stream", TOTAL,
	    T0, sha));
	sig_sha256_final(h, want);
	ASSERT_STREQ(sha, want);
	ASSERT_OK(cache_blob_lookup(c, &k, T0, &b));
	ASSERT_EQ(b.size, TOTAL);
	ASSERT_OK(cache_blob_open(c, b.sha, T0, &fd));
	for (off = 0;; off += (size_t)rn) {
		rn = read(fd, piece, PIECE);
		if (rn <= 0)
			break;
		sig_sha256_update(h2, piece, (size_t)rn);
	}
	(void)close(fd);
	sig_sha256_final(h2, got);
	ASSERT_EQ(off, TOTAL);
	ASSERT_STREQ(got, want);
	sig_sha256_free(h);
	sig_sha256_free(h2);
	cache_close(c);
}

TEST(stats_counts)
{
	struct cache_stats st;
	struct cache *c;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	cache_stats(c, &st);
	ASSERT(st.hit_ratio == 0);
	cache_count(c, CACHE_HIT);
	cache_count(c, CACHE_HIT);
	cache_count(c, CACHE_HIT);
	cache_count(c, CACHE_MISS);
	cache_count(c, CACHE_BYPASS);
	cache_count(c, CACHE_STALE);
	cache_count(c, CACHE_STALE);
	cache_count(c, CACHE_STALE);
	cache_stats(c, &st);
	ASSERT_EQ(st.hits, 3);
	ASSERT_EQ(st.misses, 1);
	ASSERT_EQ(st.stale, 3);
	ASSERT_EQ(st.bypass, 1);
	ASSERT(st.hit_ratio > 0.428 && st.hit_ratio < 0.429);
	ASSERT_STREQ(cache_outcome_str(CACHE_HIT), "hit");
	ASSERT_STREQ(cache_outcome_str(CACHE_MISS), "miss");
	ASSERT_STREQ(cache_outcome_str(CACHE_STALE), "stale");
	ASSERT_STREQ(cache_outcome_str(CACHE_BYPASS), "bypass");
	cache_close(c);
}

/* A repeated hit comes from memory, and memory never outlives the rows. */
TEST(peek_from_memory)
{
	char key[CACHE_KEY_SIZE], path[256], *big;
	struct cache_view v;
	struct cache *c;
	const char *p1;
	size_t i;

	new_dir();
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/agents/", key));
	ASSERT_EQ(cache_peek(c, key, T0, &v), -ENOENT);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "[1]", T0));
	ASSERT_OK(cache_peek(c, key, T0 + 1, &v));
	p1 = v.body;
	ASSERT(v.fresh && v.len == 3 && strcmp(v.body, "[1]") == 0);
	ASSERT_OK(cache_peek(c, key, T0 + 2, &v));
	ASSERT(v.body == p1); /* the same copy: no read, no copy */
	/* Replaced, invalidated, cleared: never the old body. */
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "[2]", T0 + 3));
	ASSERT_OK(cache_peek(c, key, T0 + 4, &v));
	ASSERT_STREQ(v.body, "[2]");
	ASSERT_EQ(cache_invalidate(c, "agents", NULL), 1);
	ASSERT_EQ(cache_peek(c, key, T0 + 5, &v), -ENOENT);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "[3]", T0 + 6));
	ASSERT_OK(cache_peek(c, key, T0 + 7, &v));
	ASSERT_EQ(cache_clear(c, NULL, "/agents/"), 1);
	ASSERT_EQ(cache_peek(c, key, T0 + 8, &v), -ENOENT);
	/* A reopened cache reads the row, then keeps it. */
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "[4]", T0 + 9));
	cache_close(c);
	c = open_with(0, 0);
	ASSERT(c != NULL);
	ASSERT_OK(cache_peek(c, key, T0 + 10, &v));
	ASSERT_STREQ(v.body, "[4]");
	/* The database deleted: rebuilt at the next check, memory too. */
	path_in(path, sizeof(path), "cache.db");
	ASSERT_OK(unlink(path));
	ASSERT_EQ(cache_peek(c, key, T0 + 5000, &v), -ENOENT);
	/* Too large to keep in memory: read each time, still whole. */
	big = malloc(HOTSET_MAX_ENTRY + 2);
	ASSERT(big != NULL);
	for (i = 0; i <= HOTSET_MAX_ENTRY; i++)
		big[i] = (char)('a' + i % 26);
	big[HOTSET_MAX_ENTRY + 1] = '\0';
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", big, T0 + 5001));
	ASSERT_OK(cache_peek(c, key, T0 + 5002, &v));
	ASSERT_EQ(v.len, HOTSET_MAX_ENTRY + 1);
	ASSERT(memcmp(v.body, big, v.len) == 0 && v.body[v.len] == '\0');
	ASSERT_OK(cache_peek(c, key, T0 + 5003, &v));
	ASSERT(memcmp(v.body, big, v.len) == 0);
	free(big);
	cache_close(c);
}

/* Entries the byte cap evicts are gone from memory too. */
TEST(peek_after_eviction)
{
	char key[CACHE_KEY_SIZE], path[64], body[2000];
	struct cache_view v;
	struct cache *c;
	int i;

	new_dir();
	c = open_with(65536, 0);
	ASSERT(c != NULL);
	ASSERT_OK(cache_key(FP, NULL, "GET", "/agents/first", key));
	ASSERT_OK(put_str(c, FP, NULL, "/agents/first", "first", T0));
	ASSERT_OK(cache_peek(c, key, T0, &v));
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	for (i = 0; i < 100; i++) {
		(void)snprintf(path, sizeof(path), "/agents/%d", i);
		ASSERT_OK(put_str(c, FP, NULL, path, body, T0 + 10 + (uint64_t)i));
	}
	ASSERT_EQ(cache_peek(c, key, T0 + 200, &v), -ENOENT);
	cache_close(c);
}

/* cache_ttl values, and TTLs by the names users know. */
TEST(ttl_config)
{
	struct config_ttl t[CONFIG_MAX_TTLS], many[CONFIG_MAX_TTLS + 1];
	struct cache_ttl ct[2];
	struct cache_config cfg = {.ttls = ct, .nttls = 2};
	struct cache *c = NULL;
	char spec[1024];
	size_t o = 0;
	int i;

	ASSERT_EQ(config_parse_ttls("agents=60 runs=2.5", t, CONFIG_MAX_TTLS),
	    2);
	ASSERT_STREQ(t[0].resource, "agents");
	ASSERT_EQ(t[0].ttl_ms, 60000);
	ASSERT_EQ(t[1].ttl_ms, 2500);
	ASSERT_EQ(config_parse_ttls(" teammates=1,runs=0 ,\tteammates=3 ", t,
	              CONFIG_MAX_TTLS),
	    2);
	ASSERT_STREQ(t[0].resource, "teammates");
	ASSERT_EQ(t[0].ttl_ms, 3000);
	ASSERT_EQ(t[1].ttl_ms, 0);
	ASSERT_EQ(config_parse_ttls("run_files=604800", t, CONFIG_MAX_TTLS), 1);
	ASSERT_EQ(t[0].ttl_ms, 604800000u);
	{
		static const char *const bad[] = {"", " , ", "agents",
		    "agents=", "=5", "Agents=5", "agents=-1", "agents=1e3",
		    "agents=0x10", "agents=604801", "a b=1", "agents=5x",
		    "a123456789012345678901234567890123=1", NULL};

		for (i = 0; bad[i] != NULL; i++)
			if (config_parse_ttls(bad[i], t, CONFIG_MAX_TTLS) !=
			    -EINVAL)
				T_FAIL("\"%s\" accepted", bad[i]);
	}
	for (i = 0; i <= CONFIG_MAX_TTLS; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%d=1 ", i);
	ASSERT_EQ(config_parse_ttls(spec, many, CONFIG_MAX_TTLS), -E2BIG);
	/* The cache takes "teammates" for the agents resource. */
	ct[0] = (struct cache_ttl){"teammates", 1000};
	ct[1] = (struct cache_ttl){"webhooks", 0};
	new_dir();
	cfg.dir = dir;
	ASSERT_OK(cache_open(&cfg, &c));
	ASSERT_EQ(cache_ttl_ms(c, "agents"), 1000);
	ASSERT_EQ(cache_ttl_ms(c, "webhooks"), 0);
	ASSERT_EQ(cache_ttl_ms(c, "runs"), 5000);
	ASSERT_OK(put_str(c, FP, NULL, "/agents/", "a", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "a", T0 + 999), 1);
	ASSERT_EQ(get_str(c, FP, NULL, "/agents/", "a", T0 + 1000), 0);
	ASSERT_OK(put_str(c, FP, NULL, "/webhooks/", "w", T0));
	ASSERT_EQ(get_str(c, FP, NULL, "/webhooks/", "w", T0), 0);
	ASSERT_EQ(cache_clear(c, "teammates", NULL), 1);
	cache_close(c);
}

int
main(void)
{
	(void)snprintf(root, sizeof(root), "/tmp/test_cache.XXXXXX");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(sha256_stream);
	RUN(key_canonical);
	RUN(key_too_long);
	RUN(resource_names);
	RUN(open_layout);
	RUN(put_get_hit);
	RUN(ttl_stale);
	RUN(canonical_query_hits);
	RUN(kid_collision);
	RUN(isolation);
	RUN(invalidate);
	RUN(clear);
	RUN(byte_cap_lru);
	RUN(second_open_busy);
	RUN(corrupt_while_closed);
	RUN(corrupt_while_open);
	RUN(deleted_while_open);
	RUN(blob_roundtrip);
	RUN(blob_size_checks);
	RUN(blob_abort);
	RUN(blob_leftovers);
	RUN(blob_dir_removed);
	RUN(blob_lru);
	RUN(blob_large_streamed);
	RUN(stats_counts);
	RUN(peek_from_memory);
	RUN(peek_after_eviction);
	RUN(ttl_config);
	rm_rf(root);
	return t_done();
}

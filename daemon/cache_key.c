/*
 * SPDX-License-Identifier: MIT
 *
 * What the cache's entries are named by: the cache key (a SHA-256 over the
 * fingerprint, the scope, the verb and the canonical path and query), the
 * canonical form of a path with its query parameters sorted, the resource
 * a path belongs to and the TTLs of resources. Part of the cache module
 * (see cache.h); the entries themselves are in cache_entry.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cache_int.h"
#include "sig.h"

#define CACHE_KEY_DOMAIN "m8tesd-cache-1" /* versions the key derivation */

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

/* One query parameter, for sorting. */
struct qparam {
	const char *p;
	size_t len, name_len;
	size_t idx; /* position in the request: keeps repeated names stable */
};

static int qparam_cmp(const void *a, const void *b);
static size_t split_query(const char *q, struct qparam *v);

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
int
cache_canon_path(const char *in, char **ret)
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
	r = cache_canon_path(path_and_query, &canon);
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

/* Resource names as users know them: teammates live under /agents/. */
const char *
cache_resource_name(const char *name)
{
	return strcmp(name, "teammates") == 0 ? "agents" : name;
}

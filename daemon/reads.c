/*
 * SPDX-License-Identifier: MIT
 *
 * The read path of dispatch: cached GETs, coalescing, auto-paging and file
 * downloads. A cacheable GET is answered from the cache when fresh;
 * otherwise it joins the fetch in flight for the same key (same key
 * fingerprint, tenant and canonical path), so a thousand identical calls
 * make one upstream request, and the answer is stored before it is handed
 * to every waiter. all: true walks a list's pages through the same path,
 * streaming the items as events. Downloads stream into the content-
 * addressed blob store and are served from it: as a file descriptor, as
 * base64 chunks, or whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "cache.h"
#include "codec.h"
#include "dispatch_int.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "request.h"
#include "server.h"
#include "sig.h"
#include "upstream.h"

#define READS_MAX_PAGES 10000          /* pages one all: true walks */
#define READS_PAGE_QUEUE (1024 * 1024) /* bytes queued before pausing */
#define READS_CHUNK (48 * 1024)        /* bytes of one download chunk */
#define READS_MAX_INLINE (16u * 1024 * 1024) /* base64 in the result */
#define READS_RETRY_MS 5

struct fetch {
	struct dispatch *d;
	char key[CACHE_KEY_SIZE];
	char *path;
	const char *resource;
	char *scope;
	bool cacheable;
	bool outdated; /* a write since it started: not stored, not joined */
	const struct method *m; /* of the first caller: the answer's kind */
	struct up_req *up;
	struct call_list waiters;
	TAILQ_ENTRY(fetch) link;
};

struct pager {
	cJSON *params; /* the call's params without "all" */
	char **seen;   /* cursors already followed */
	size_t nseen;
	uint64_t seq;
	size_t items, pages;
	struct loop_timer *timer;
};

struct download {
	struct cache_blob_writer *w;
	char run_id[32];
	char *filename;
	char ctype[CACHE_CTYPE_SIZE];
	char sha[SIG_SHA256_HEX_SIZE];
	int fd;
	uint64_t size, off;
	uint64_t seq;
	bool hit;
	struct loop_timer *timer;
};

static void fetch_get(struct call *call, const char *path, bool cacheable);
static void page_timer_cb(struct loop *loop, void *arg);
static void pager_page(struct call *call, const char *body, size_t len);
static void next_page(struct call *call);

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *
mode_of(const struct call *call)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(call->params,
	    "cache");

	return cJSON_IsString(v) ? v->valuestring : "default";
}

static const char *
scope_of(const struct call *call)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(call->params,
	    "user_id");

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/*
 * A stored result goes out as one protocol line: a newline in it (the
 * database edited by hand) makes the entry a miss, fetched and replaced.
 */
static bool
one_line(const char *text, size_t len)
{
	return memchr(text, '\n', len) == NULL;
}

/*
 * Hands a result's text (compact JSON, normalised for the method's kind:
 * what the cache holds) to whoever the call is: a page walker, or a plain
 * GET answered with the text as it is, neither parsed nor printed again.
 */
static void
deliver(struct call *call, const char *text, size_t len, const char *served)
{
	char *line;
	size_t n = 0;

	call->served = served;
	if (call->pager != NULL) {
		pager_page(call, text, len);
		return;
	}
	line = codec_result_text(call->id, call->jsonrpc, text, len, served,
	    &n);
	if (line == NULL) {
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	call_finish(call, line, n);
}

/*
 * An upstream answer as the result's text: parsed, normalised for m's
 * kind and printed compact. NULL with the reason when it is unusable.
 */
static char *
result_text(const struct method *m, const char *body, size_t len,
    const char **ret_reason)
{
	cJSON *json = calls_parse_body(m, body, len, ret_reason);
	char *text;

	if (json == NULL)
		return NULL;
	text = cJSON_PrintUnformatted(json);
	cJSON_Delete(json);
	if (text == NULL)
		*ret_reason = "out of memory";
	return text;
}

/* ---- fetches ----------------------------------------------------------- */

static void
fetch_free(struct fetch *f)
{
	struct call *call;

	while ((call = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, call, fetch_link);
		call->fetch = NULL;
	}
	if (f->up != NULL)
		upstream_cancel(f->d->up, f->up);
	TAILQ_REMOVE(&f->d->fetches, f, link);
	free(f->path);
	free(f->scope);
	free(f);
}

/*
 * How a fetched answer was served to call: "bypass" (counted when the
 * call came), "miss" (counted now), or nothing for uncached methods.
 */
static const char *
label_miss(const struct fetch *f, const struct call *call)
{
	struct cache *c = f->d->cache;

	if (!f->cacheable || c == NULL)
		return NULL;
	if (strcmp(mode_of(call), "bypass") == 0)
		return "bypass";
	cache_count(c, CACHE_MISS);
	return "miss";
}

static void
fetch_done_cb(const struct up_response *r, void *arg)
{
	struct fetch *f = arg;
	struct dispatch *d = f->d;
	struct cache_entry stale = {0};
	bool ok = r->error == 0 && r->status >= 200 && r->status < 300;
	bool have_stale = false;
	const char *reason = NULL;
	char *text = NULL;
	struct apierr a;
	struct call *call;

	f->up = NULL;
	if (ok)
		text = result_text(f->m, r->body, r->body_len, &reason);
	if (text != NULL && f->cacheable && !f->outdated && d->cache != NULL)
		(void)cache_put(d->cache, f->key, f->resource, f->scope,
		    f->path, text, strlen(text), wall_ms());
	if (!ok) {
		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&a, r->error ? r->error : -EIO,
			    r->error_text);
		else
			apierr_from_http(&a, r->status, r->body, r->body_len,
			    r->request_id, r->retry_after);
		/* An unreachable upstream may be covered by a stale answer. */
		have_stale = f->cacheable && d->cache != NULL &&
		    (r->error != 0 || r->status == 0 || r->status >= 500) &&
		    cache_get(d->cache, f->key, wall_ms(), &stale) == 0 &&
		    one_line(stale.body, stale.len);
	}
	/* Each waiter is answered, then freed by its answer: unlink first. */
	while ((call = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, call, fetch_link);
		call->fetch = NULL;
		call->status = r->status;
		if (ok && text == NULL) {
			call_fail(call,
			    strcmp(reason, "out of memory") == 0 ? E_NOMEM
			                                         : E_BAD_UPSTREAM,
			    "%s", reason);
		} else if (ok) {
			deliver(call, text, strlen(text), label_miss(f, call));
		} else if (have_stale &&
		    strcmp(mode_of(call), "stale-ok") == 0) {
			cache_count(d->cache, CACHE_STALE);
			deliver(call, stale.body, stale.len, "stale");
		} else {
			call_error(call, &a.e);
		}
	}
	if (!ok)
		apierr_done(&a);
	cache_entry_done(&stale);
	free(text);
	fetch_free(f);
}

/* Joins the GET in flight for the same key, or starts it. */
static void
fetch_join(struct call *call, const char *key, const char *path,
    bool cacheable)
{
	struct dispatch *d = call->d;
	struct fetch *f;
	const char *scope = scope_of(call);
	int r;

	TAILQ_FOREACH(f, &d->fetches, link)
	if (!f->outdated && strcmp(f->key, key) == 0)
		break;
	if (f == NULL) {
		struct up_opts o = {.verb = VERB_GET, .path = path,
		    .done = fetch_done_cb};

		f = calloc(1, sizeof(*f));
		if (f == NULL || (f->path = strdup(path)) == NULL ||
		    (scope != NULL && (f->scope = strdup(scope)) == NULL)) {
			if (f != NULL)
				free(f->path);
			free(f);
			call_fail(call, E_NOMEM, "out of memory");
			return;
		}
		f->d = d;
		f->m = call->m;
		(void)snprintf(f->key, sizeof(f->key), "%s", key);
		f->cacheable = cacheable;
		f->resource = cache_resource(path);
		if (f->resource == NULL)
			f->resource = "other";
		TAILQ_INIT(&f->waiters);
		TAILQ_INSERT_TAIL(&d->fetches, f, link);
		o.arg = f;
		r = upstream_start(d->up, &o, &f->up);
		if (r < 0) {
			TAILQ_REMOVE(&d->fetches, f, link);
			free(f->path);
			free(f->scope);
			free(f);
			if (r == -ENOKEY)
				call_fail(call, E_NO_KEY,
				    "the daemon has no API key (see m8tes "
				    "auth login)");
			else
				call_fail(call, E_INTERNAL,
				    "cannot start the request");
			return;
		}
	}
	call->fetch = f;
	TAILQ_INSERT_TAIL(&f->waiters, call, fetch_link);
}

/* A GET through the cache (when cacheable) and the coalescer. */
static void
fetch_get(struct call *call, const char *path, bool cacheable)
{
	struct dispatch *d = call->d;
	char fp[SIG_FINGERPRINT_SIZE], key[CACHE_KEY_SIZE];
	const char *mode = mode_of(call);
	struct cache_view v;

	if (sig_key_fingerprint(d->key, fp) < 0) {
		call_fail(call, E_NO_KEY,
		    "the daemon has no API key (see m8tes auth login)");
		return;
	}
	if (cache_key(fp, scope_of(call), "GET", path, key) < 0) {
		call_fail(call, E_INVALID_PARAMS, "request path too long");
		return;
	}
	if (!cacheable || d->cache == NULL) {
		fetch_join(call, key, path, false);
		return;
	}
	/* Bypass reads nothing from the cache; the answer still refreshes it. */
	if (strcmp(mode, "bypass") == 0) {
		cache_count(d->cache, CACHE_BYPASS);
		fetch_join(call, key, path, true);
		return;
	}
	/* The entry is the cache's until its next call: deliver copies it. */
	if (cache_peek(d->cache, key, wall_ms(), &v) == 0 &&
	    one_line(v.body, v.len) && (v.fresh || strcmp(mode, "only") == 0)) {
		call->status = 200;
		deliver(call, v.body, v.len, v.fresh ? "hit" : "stale");
		cache_count(d->cache, v.fresh ? CACHE_HIT : CACHE_STALE);
		return;
	}
	if (strcmp(mode, "only") == 0) {
		call_fail(call, E_CACHE_MISS, "not in the cache");
		return;
	}
	fetch_join(call, key, path, true);
}

bool
reads_get(struct call *call, const char *path)
{
	if (call->d->cache == NULL || !(call->m->flags & METHOD_CACHE) ||
	    call->m->verb != VERB_GET)
		return false;
	fetch_get(call, path, true);
	return true;
}

/* ---- all: true ---------------------------------------------------------- */

static void
pager_free(struct pager *p, struct loop *loop)
{
	if (p->timer != NULL)
		loop_timer_del(loop, p->timer);
	for (size_t i = 0; i < p->nseen; i++)
		free(p->seen[i]);
	free(p->seen);
	cJSON_Delete(p->params);
	free(p);
}

static void
pager_done(struct call *call)
{
	cJSON *res = cJSON_CreateObject();

	cJSON_AddNumberToObject(res, "items", (double)call->pager->items);
	cJSON_AddNumberToObject(res, "pages", (double)call->pager->pages);
	call->served = NULL;
	call_result(call, res);
	cJSON_Delete(res);
}

/* The cursor after page: next_starting_after, else the last item's id. */
static char *
cursor_of(const cJSON *page)
{
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(page,
	    "next_starting_after");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(page, "data");
	char buf[64];

	if (next == NULL || cJSON_IsNull(next))
		next = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetArrayItem(data, cJSON_GetArraySize(data) - 1),
		    "id");
	if (cJSON_IsString(next))
		return strdup(next->valuestring);
	if (cJSON_IsNumber(next)) {
		(void)snprintf(buf, sizeof(buf), "%.0f", next->valuedouble);
		return strdup(buf);
	}
	return NULL;
}

static void
pager_page(struct call *call, const char *body, size_t len)
{
	struct pager *p = call->pager;
	const char *reason = NULL;
	cJSON *page = calls_parse_body(call->m, body, len, &reason), *item;
	char *cursor;

	if (page == NULL) {
		call_fail(call, E_BAD_UPSTREAM, "%s", reason);
		return;
	}
	p->pages++;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(page, "data"))
	{
		size_t n = 0;
		char *line = codec_event(call->id, ++p->seq, item, &n);

		if (line == NULL || server_send(call->conn, line, n) < 0) {
			free(line);
			cJSON_Delete(page);
			call_fail(call, E_NOMEM, "cannot queue the items");
			return;
		}
		free(line);
		p->items++;
	}
	cursor = cursor_of(page);
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "has_more")) ||
	    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(page, "data")) ==
		0 ||
	    cursor == NULL) {
		free(cursor);
		cJSON_Delete(page);
		pager_done(call);
		return;
	}
	cJSON_Delete(page);
	/* A cursor seen before would loop for ever: stop there. */
	for (size_t i = 0; i < p->nseen; i++) {
		if (strcmp(p->seen[i], cursor) == 0) {
			free(cursor);
			pager_done(call);
			return;
		}
	}
	if (p->nseen == READS_MAX_PAGES) {
		free(cursor);
		pager_done(call);
		return;
	}
	if (p->nseen % 64 == 0) {
		char **s = realloc(p->seen, (p->nseen + 64) * sizeof(*s));

		if (s == NULL) {
			free(cursor);
			call_fail(call, E_NOMEM, "out of memory");
			return;
		}
		p->seen = s;
	}
	p->seen[p->nseen++] = cursor;
	cJSON_DeleteItemFromObjectCaseSensitive(p->params, "starting_after");
	cJSON_AddStringToObject(p->params, "starting_after", cursor);
	/*
	 * The next page from the loop, not from here: a walk of cached pages
	 * would otherwise recurse once per page, and other clients wait.
	 */
	if (loop_timer_add(call->d->loop, 0, page_timer_cb, call, &p->timer) <
	    0)
		call_fail(call, E_NOMEM, "out of memory");
}

static void
page_timer_cb(struct loop *loop, void *arg)
{
	struct call *call = arg;

	(void)loop;
	call->pager->timer = NULL;
	next_page(call);
}

static void
next_page(struct call *call)
{
	char err[256], *path = NULL, *body = NULL;

	/* The reader sets the pace: wait while its queue is long. */
	if (server_queued(call->conn) > READS_PAGE_QUEUE) {
		if (loop_timer_add(call->d->loop, READS_RETRY_MS, page_timer_cb,
			call, &call->pager->timer) < 0)
			call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (request_build(call->m, call->pager->params, &path, &body, err,
		sizeof(err)) < 0) {
		call_fail(call, E_INVALID_PATH, "%s", err);
		return;
	}
	free(body);
	fetch_get(call, path, (call->m->flags & METHOD_CACHE) != 0);
	free(path);
}

void
reads_all(struct call *call)
{
	struct pager *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->params = cJSON_Duplicate(call->params, 1)) ==
			     NULL) {
		free(p);
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(p->params, "all");
	call->pager = p;
	next_page(call);
}

/* ---- downloads ---------------------------------------------------------- */

static void
download_free(struct download *dl, struct loop *loop)
{
	if (dl->timer != NULL)
		loop_timer_del(loop, dl->timer);
	if (dl->w != NULL)
		cache_blob_abort(dl->w);
	if (dl->fd >= 0)
		(void)close(dl->fd);
	free(dl->filename);
	free(dl);
}

static cJSON *
file_result(const struct download *dl)
{
	cJSON *res = cJSON_CreateObject();

	cJSON_AddStringToObject(res, "filename", dl->filename);
	cJSON_AddNumberToObject(res, "size", (double)dl->size);
	cJSON_AddStringToObject(res, "content_type",
	    dl->ctype[0] ? dl->ctype : "application/octet-stream");
	cJSON_AddStringToObject(res, "sha256", dl->sha);
	return res;
}

static void
chunk_timer_cb(struct loop *loop, void *arg);

/* Sends the file as base64 event lines, paced by the reader. */
static void
send_chunks(struct call *call)
{
	struct download *dl = call->dl;
	unsigned char buf[READS_CHUNK];

	while (dl->off < dl->size) {
		ssize_t n;
		cJSON *ev;
		char *b64, *line;
		size_t len = 0;

		if (server_queued(call->conn) > READS_PAGE_QUEUE) {
			if (loop_timer_add(call->d->loop, READS_RETRY_MS,
				chunk_timer_cb, call, &dl->timer) < 0)
				call_fail(call, E_NOMEM, "out of memory");
			return;
		}
		n = pread(dl->fd, buf, sizeof(buf), (off_t)dl->off);
		if (n <= 0) {
			call_fail(call, E_INTERNAL, "cannot read the file");
			return;
		}
		b64 = sig_base64(buf, (size_t)n);
		ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "type", "chunk");
		cJSON_AddNumberToObject(ev, "offset", (double)dl->off);
		cJSON_AddStringToObject(ev, "data_base64", b64 ? b64 : "");
		line = codec_event(call->id, ++dl->seq, ev, &len);
		free(b64);
		cJSON_Delete(ev);
		if (line == NULL || server_send(call->conn, line, len) < 0) {
			free(line);
			call_fail(call, E_NOMEM, "cannot queue the file");
			return;
		}
		free(line);
		dl->off += (uint64_t)n;
	}
	{
		cJSON *res = file_result(dl);

		cJSON_AddNumberToObject(res, "chunks", (double)dl->seq);
		call_result(call, res);
		cJSON_Delete(res);
	}
}

static void
chunk_timer_cb(struct loop *loop, void *arg)
{
	struct call *call = arg;

	(void)loop;
	call->dl->timer = NULL;
	send_chunks(call);
}

/* The file is at dl->fd: answer in the way the call asked for. */
static void
serve_file(struct call *call)
{
	struct download *dl = call->dl;
	cJSON *res;

	call->served = dl->hit      ? "hit"
	    : call->d->cache == NULL ? NULL
	    : strcmp(mode_of(call), "bypass") == 0 ? "bypass"
	                                           : "miss";
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->params,
		"fd"))) {
		size_t len = 0;
		char *line;
		int fd = dl->fd;

		res = file_result(dl);
		cJSON_AddBoolToObject(res, "fd", true);
		line = codec_result(call->id, call->jsonrpc, res, &len);
		cJSON_Delete(res);
		dl->fd = -1;
		call_finish_fd(call, line, len, fd);
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->params,
		"chunks"))) {
		send_chunks(call);
		return;
	}
	if (dl->size > READS_MAX_INLINE) {
		call_fail(call, E_TOO_LARGE,
		    "%" PRIu64 " bytes is too large to inline; ask for "
		    "\"fd\": true or \"chunks\": true",
		    dl->size);
		return;
	}
	{
		char *data = malloc(dl->size + 1), *b64;
		size_t got = 0;

		while (data != NULL && got < dl->size) {
			ssize_t n = pread(dl->fd, data + got, dl->size - got,
			    (off_t)got);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (data == NULL || got != dl->size) {
			free(data);
			call_fail(call, E_INTERNAL, "cannot read the file");
			return;
		}
		b64 = sig_base64(data, got);
		free(data);
		res = file_result(dl);
		cJSON_AddStringToObject(res, "data_base64", b64 ? b64 : "");
		free(b64);
		call_result(call, res);
		cJSON_Delete(res);
	}
}

static bool
serve_cached(struct call *call, const struct cache_blob_key *key)
{
	struct download *dl = call->dl;
	struct cache_blob b;

	if (cache_blob_lookup(call->d->cache, key, wall_ms(), &b) < 0 ||
	    cache_blob_open(call->d->cache, b.sha, wall_ms(), &dl->fd) < 0)
		return false;
	dl->size = b.size;
	(void)snprintf(dl->ctype, sizeof(dl->ctype), "%s", b.content_type);
	(void)snprintf(dl->sha, sizeof(dl->sha), "%s", b.sha);
	return true;
}

static int
download_data_cb(const char *p, size_t len, void *arg)
{
	struct call *call = arg;
	int r = cache_blob_write(call->dl->w, p, len);

	if (r == 0)
		return 0;
	/* Aborting: no done callback will come, so the call ends here. */
	call->up = NULL;
	if (r == -EFBIG)
		call_fail(call, E_TOO_LARGE,
		    "the file is larger than the file cache "
		    "(cache_max_file_bytes)");
	else
		call_fail(call, E_INTERNAL, "cannot store the file: %s",
		    strerror(-r));
	return -1;
}

static void
download_done_cb(const struct up_response *r, void *arg)
{
	struct call *call = arg;
	struct download *dl = call->dl;
	char fp[SIG_FINGERPRINT_SIZE];
	struct cache_blob_key key = {.fingerprint = fp, .run_id = dl->run_id,
	    .filename = dl->filename};
	int rc;

	call->up = NULL;
	call->status = r->status;
	if (r->error != 0 || r->status < 200 || r->status >= 300) {
		struct apierr a;

		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&a, r->error ? r->error : -EIO,
			    r->error_text);
		else
			apierr_from_http(&a, r->status, r->body, r->body_len,
			    r->request_id, r->retry_after);
		call_error(call, &a.e);
		apierr_done(&a);
		return;
	}
	(void)sig_key_fingerprint(call->d->key, fp);
	rc = cache_blob_commit(dl->w, &key, r->content_type, -1, wall_ms(),
	    NULL);
	dl->w = NULL;
	if (rc < 0 || !serve_cached(call, &key)) {
		call_fail(call, E_INTERNAL, "cannot store the file: %s",
		    strerror(rc < 0 ? -rc : ENOENT));
		return;
	}
	if (strcmp(mode_of(call), "bypass") != 0)
		cache_count(call->d->cache, CACHE_MISS);
	serve_file(call);
}

/* Without a cache: the whole file, then a memfd to serve it from. */
static void
download_buffered_cb(const struct up_response *r, void *arg)
{
	struct call *call = arg;
	struct download *dl = call->dl;

	call->up = NULL;
	call->status = r->status;
	if (r->error != 0 || r->status < 200 || r->status >= 300) {
		struct apierr a;

		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&a, r->error ? r->error : -EIO,
			    r->error_text);
		else
			apierr_from_http(&a, r->status, r->body, r->body_len,
			    r->request_id, r->retry_after);
		call_error(call, &a.e);
		apierr_done(&a);
		return;
	}
	dl->fd = memfd_create("m8tes-download", MFD_CLOEXEC);
	if (dl->fd < 0 || (r->body_len > 0 &&
			      write(dl->fd, r->body, r->body_len) !=
				  (ssize_t)r->body_len)) {
		call_fail(call, E_INTERNAL, "cannot hold the file");
		return;
	}
	dl->size = r->body_len;
	(void)snprintf(dl->ctype, sizeof(dl->ctype), "%s", r->content_type);
	sig_sha256_hex(r->body ? r->body : "", r->body_len, dl->sha);
	serve_file(call);
}

void
reads_download(struct call *call, const char *path)
{
	struct dispatch *d = call->d;
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call->params,
	    "filename");
	const cJSON *rid = cJSON_GetObjectItemCaseSensitive(call->params,
	    "run_id");
	char fp[SIG_FINGERPRINT_SIZE];
	struct cache_blob_key key = {.fingerprint = fp};
	struct up_opts o = {.verb = VERB_GET, .path = path, .arg = call};
	struct download *dl;
	int r;

	dl = calloc(1, sizeof(*dl));
	if (dl == NULL || (dl->filename = strdup(fn->valuestring)) == NULL) {
		free(dl);
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	dl->fd = -1;
	call->dl = dl;
	if (cJSON_IsNumber(rid))
		(void)snprintf(dl->run_id, sizeof(dl->run_id), "%.0f",
		    rid->valuedouble);
	else
		(void)snprintf(dl->run_id, sizeof(dl->run_id), "%s",
		    rid->valuestring);
	if (sig_key_fingerprint(d->key, fp) < 0) {
		call_fail(call, E_NO_KEY,
		    "the daemon has no API key (see m8tes auth login)");
		return;
	}
	key.run_id = dl->run_id;
	key.filename = dl->filename;
	if (d->cache != NULL && strcmp(mode_of(call), "bypass") != 0 &&
	    serve_cached(call, &key)) {
		/* A second download of a file makes no upstream request. */
		dl->hit = true;
		cache_count(d->cache, CACHE_HIT);
		call->status = 200;
		serve_file(call);
		return;
	}
	if (strcmp(mode_of(call), "only") == 0) {
		call_fail(call, E_CACHE_MISS, "not in the cache");
		return;
	}
	if (d->cache != NULL && strcmp(mode_of(call), "bypass") == 0)
		cache_count(d->cache, CACHE_BYPASS);
	if (d->cache != NULL &&
	    cache_blob_begin(d->cache, wall_ms(), &dl->w) == 0) {
		o.data = download_data_cb;
		o.raw = true;
		o.done = download_done_cb;
	} else {
		o.done = download_buffered_cb;
	}
	r = upstream_start(d->up, &o, &call->up);
	if (r < 0)
		call_fail(call, r == -ENOKEY ? E_NO_KEY : E_INTERNAL,
		    "cannot start the download");
}

/* ---- invalidation and clean-up ------------------------------------------ */

void
reads_invalidate_resource(struct dispatch *d, const char *resource,
    const char *scope)
{
	struct fetch *f;

	if (d->cache == NULL)
		return;
	(void)cache_invalidate(d->cache, resource, scope);
	/*
	 * A GET in flight may have been answered before the write: its
	 * answer must not be stored, nor handed to calls that come later.
	 */
	TAILQ_FOREACH(f, &d->fetches, link)
	if (strcmp(f->resource, resource) == 0 &&
	    (scope == NULL || scope[0] == '\0' || f->scope == NULL ||
		strcmp(f->scope, scope) == 0))
		f->outdated = true;
}

void
reads_invalidate(struct dispatch *d, const char *path, const cJSON *params)
{
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(params, "user_id");
	const char *scope = cJSON_IsString(uid) ? uid->valuestring : NULL;
	const char *resource;

	if (d->cache == NULL)
		return;
	resource = cache_resource(path);
	if (resource == NULL)
		return;
	reads_invalidate_resource(d, resource, scope);
	/* Runs change under tasks and teammates too (their run lists). */
	if (strcmp(resource, "tasks") == 0 || strcmp(resource, "agents") == 0)
		reads_invalidate_resource(d, "runs", scope);
	/* A reply may produce new versions of a run's files. */
	if (strncmp(path, "/runs/", 6) == 0 && strstr(path, "/reply") != NULL) {
		char id[32];

		(void)snprintf(id, sizeof(id), "%.*s",
		    (int)strcspn(path + 6, "/"), path + 6);
		(void)cache_blob_forget(d->cache, id);
	}
}

void
reads_call_done(struct call *call)
{
	struct fetch *f = call->fetch;

	if (f != NULL) {
		TAILQ_REMOVE(&f->waiters, call, fetch_link);
		call->fetch = NULL;
		/* The last waiter gone (cancelled, disconnected): drop it. */
		if (TAILQ_EMPTY(&f->waiters))
			fetch_free(f);
	}
	if (call->pager != NULL) {
		pager_free(call->pager, call->d->loop);
		call->pager = NULL;
	}
	if (call->dl != NULL) {
		download_free(call->dl, call->d->loop);
		call->dl = NULL;
	}
}

void
reads_free(struct dispatch *d)
{
	while (!TAILQ_EMPTY(&d->fetches))
		fetch_free(TAILQ_FIRST(&d->fetches));
}

/*
 * SPDX-License-Identifier: MIT
 *
 * libcurl multi on the daemon's loop, with the SDK's retry rules. The shape
 * follows curl's ephiperfifo example: curl tells us which sockets to watch
 * and when to call it back; we tell curl which sockets became ready.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "loop.h"
#include "upstream.h"

#define UP_MAX_HEADER 1024 /* bytes of a response header value kept */
#define UP_MAX_HOST_CONNECTIONS 256

struct up_req {
	struct upstream *up;
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	char *body_out; /* request body */
	enum method_verb verb;
	bool eligible; /* may be retried */
	int attempts;
	struct loop_timer *retry_timer;

	/* Answer of the current attempt. */
	long status;
	char *body;
	size_t body_len, body_cap;
	bool too_large;
	bool streaming; /* 2xx event stream going to data_cb */
	bool aborted;   /* data_cb asked to stop */
	bool replay;
	char content_type[128];
	char request_id[128];
	char retry_after[64];
	char errbuf[CURL_ERROR_SIZE];

	up_done_cb done;
	up_data_cb data;
	bool raw;
	void *arg;
	struct up_req *next, *prev;
};

struct upstream {
	struct loop *loop;
	CURLM *multi;
	struct loop_timer *timer;
	char *base_url;
	unsigned timeout_s;
	double max_retry_after_s;
	double backoff_base_s;
	up_key_cb key;
	void *key_arg;
	struct up_req *reqs; /* every request in flight or waiting */
	struct upstream_stats stats;
};

static void check_info(struct upstream *up);
static int attempt_start(struct up_req *req);

static void
wipe_headers(struct curl_slist *l)
{
	/* The Authorization header holds the key: wipe before freeing. */
	for (struct curl_slist *h = l; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(l);
}

static void
req_unlink(struct upstream *up, struct up_req *req)
{
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		up->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->next = req->prev = NULL;
}

static void
req_free(struct up_req *req)
{
	struct upstream *up = req->up;

	if (req->retry_timer != NULL)
		loop_timer_del(up->loop, req->retry_timer);
	if (req->easy != NULL) {
		(void)curl_multi_remove_handle(up->multi, req->easy);
		curl_easy_cleanup(req->easy);
	}
	wipe_headers(req->headers);
	free(req->url);
	free(req->body_out);
	free(req->body);
	req_unlink(up, req);
	up->stats.active--;
	free(req);
}

/* curl -> loop: watch or forget a socket. */
static void
sock_event_cb(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct upstream *up = arg;
	int flags = 0, running;

	(void)loop;
	if (events & LOOP_READ)
		flags |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & LOOP_ERROR)
		flags |= CURL_CSELECT_ERR;
	(void)curl_multi_socket_action(up->multi, fd, flags, &running);
	check_info(up);
}

static int
sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct upstream *up = userp;
	struct loop_io *io = socketp;
	unsigned ev = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (io != NULL) {
			loop_io_del(up->loop, io);
			(void)curl_multi_assign(up->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= LOOP_READ;
	if (what & CURL_POLL_OUT)
		ev |= LOOP_WRITE;
	if (io == NULL) {
		if (loop_io_add(up->loop, s, ev, sock_event_cb, up, &io) < 0)
			return -1;
		(void)curl_multi_assign(up->multi, s, io);
		return 0;
	}
	return loop_io_mod(up->loop, io, ev) < 0 ? -1 : 0;
}

static void
timeout_fire_cb(struct loop *loop, void *arg)
{
	struct upstream *up = arg;
	int running;

	(void)loop;
	up->timer = NULL; /* the loop frees it after this callback */
	(void)curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	check_info(up);
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct upstream *up = userp;

	(void)multi;
	if (up->timer != NULL) {
		loop_timer_del(up->loop, up->timer);
		up->timer = NULL;
	}
	if (timeout_ms < 0)
		return 0;
	return loop_timer_add(up->loop, (uint64_t)timeout_ms, timeout_fire_cb,
	    up, &up->timer) < 0 ? -1 : 0;
}

static bool
header_is(const char *line, size_t len, const char *name, const char **val,
    size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)line[len - 1]))
		len--;
	*val = line;
	*vlen = len;
	return true;
}

static void
keep(char *dst, size_t cap, const char *v, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static size_t
header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct up_req *req = arg;
	size_t len = size * n;
	const char *v;
	size_t vlen;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or 100): start over. */
		req->content_type[0] = req->request_id[0] = '\0';
		req->retry_after[0] = '\0';
		req->replay = false;
		return len;
	}
	if (header_is(p, len, "Content-Type", &v, &vlen))
		keep(req->content_type, sizeof(req->content_type), v, vlen);
	else if (header_is(p, len, "X-Request-Id", &v, &vlen))
		keep(req->request_id, sizeof(req->request_id), v, vlen);
	else if (header_is(p, len, "Retry-After", &v, &vlen))
		keep(req->retry_after, sizeof(req->retry_after), v, vlen);
	else if (header_is(p, len, "Idempotent-Replay", &v, &vlen))
		req->replay = vlen > 0;
	return len;
}

static bool
is_event_stream(const char *ct)
{
	return strncasecmp(ct, "text/event-stream", 17) == 0;
}

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct up_req *req = arg;
	size_t len = size * n;

	if (req->status == 0)
		(void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE,
		    &req->status);
	if (req->data != NULL && req->status >= 200 && req->status < 300 &&
	    !req->replay && (req->raw || is_event_stream(req->content_type))) {
		req->streaming = true;
		if (req->data(p, len, req->arg) < 0) {
			req->aborted = true;
			return 0;
		}
		return len;
	}
	if (req->body_len + len > UP_MAX_BODY) {
		req->too_large = true;
		return 0;
	}
	if (req->body_len + len + 1 > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : 4096;
		char *b;

		while (cap < req->body_len + len + 1)
			cap *= 2;
		b = realloc(req->body, cap);
		if (b == NULL)
			return 0;
		req->body = b;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, p, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
	return len;
}

double
upstream_parse_retry_after(const char *s)
{
	char *end;
	double d;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || *end != '\0' || end == s || !isfinite(d) || d < 0)
		return -1;
	return d;
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Whether p..p+n is "/runs/<digits>/<rest>" with rest given. */
static bool
match_run_sub(const char *p, size_t n, const char *prefix, const char *rest)
{
	size_t pl = strlen(prefix), rl = strlen(rest);
	const char *d;
	size_t dl;

	if (n < pl || strncmp(p, prefix, pl) != 0)
		return false;
	d = p + pl;
	dl = 0;
	while (dl < n - pl && isdigit((unsigned char)d[dl]))
		dl++;
	if (!all_digits(d, dl))
		return false;
	p = d + dl;
	n -= pl + dl;
	if (n == rl + 1 && p[rl] == '/')
		n--;
	return n == rl && strncmp(p, rest, rl) == 0;
}

bool
upstream_retry_eligible(enum method_verb verb, const char *path, bool has_key)
{
	size_t n;

	if (verb == VERB_GET || verb == VERB_DELETE)
		return true;
	if (verb != VERB_POST || !has_key)
		return false;
	n = strcspn(path, "?");
	return (n == 5 && strncmp(path, "/runs", 5) == 0) ||
	    (n == 6 && strncmp(path, "/runs/", 6) == 0) ||
	    (n >= 16 && strncmp(path, "/runs/with-files", 16) == 0 &&
		(n == 16 || (n == 17 && path[16] == '/'))) ||
	    match_run_sub(path, n, "/runs/", "/reply") ||
	    match_run_sub(path, n, "/runs/", "/reply/with-files") ||
	    match_run_sub(path, n, "/tasks/", "/runs");
}

static int
add_header(struct curl_slist **l, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 3;
	struct curl_slist *n;
	char *h;

	h = malloc(len);
	if (h == NULL)
		return -ENOMEM;
	(void)snprintf(h, len, "%s: %s", name, value);
	n = curl_slist_append(*l, h);
	explicit_bzero(h, len);
	free(h);
	if (n == NULL)
		return -ENOMEM;
	*l = n;
	return 0;
}

static int
attempt_start(struct up_req *req)
{
	struct upstream *up = req->up;
	CURL *e;

	req->status = 0;
	req->body_len = 0;
	req->too_large = req->streaming = req->aborted = req->replay = false;
	req->content_type[0] = req->request_id[0] = req->retry_after[0] = '\0';
	req->errbuf[0] = '\0';
	req->attempts++;
	up->stats.requests++;
	if (req->easy != NULL) {
		(void)curl_multi_remove_handle(up->multi, req->easy);
		curl_easy_reset(req->easy);
	} else {
		req->easy = curl_easy_init();
		if (req->easy == NULL)
			return -ENOMEM;
	}
	e = req->easy;
	(void)curl_easy_setopt(e, CURLOPT_URL, req->url);
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	(void)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	(void)curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	(void)curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	(void)curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)up->timeout_s);
	/* Read inactivity: under one byte a second for timeout_s seconds. */
	(void)curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	(void)curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)up->timeout_s);
	/*
	 * libcurl quietly re-sends a request once when a reused connection
	 * turns out dead; a request that may be sent only once must not
	 * ride on a reused connection.
	 */
	if (req->verb != VERB_GET && !req->eligible)
		(void)curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	switch (req->verb) {
	case VERB_POST:
		(void)curl_easy_setopt(e, CURLOPT_POST, 1L);
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS,
		    req->body_out != NULL ? req->body_out : "");
		break;
	case VERB_PATCH:
	case VERB_DELETE:
		(void)curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
		    method_verb_name(req->verb));
		if (req->body_out != NULL)
			(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS,
			    req->body_out);
		break;
	case VERB_GET:
	case VERB_NONE:
	default:
		break;
	}
	if (curl_multi_add_handle(up->multi, e) != CURLM_OK)
		return -ENOMEM;
	return 0;
}

int
upstream_start(struct upstream *up, const struct up_opts *o,
    struct up_req **ret)
{
	const char *key = o->url != NULL ? NULL :
	    o->key != NULL		  ? o->key :
					    up->key(up->key_arg);
	struct up_req *req;
	size_t ulen;
	int r = -ENOMEM;

	if (o->url == NULL && (key == NULL || *key == '\0'))
		return -ENOKEY;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->up = up;
	req->verb = o->verb;
	req->done = o->done;
	req->data = o->data;
	req->raw = o->raw;
	req->arg = o->arg;
	req->eligible = o->url == NULL &&
	    upstream_retry_eligible(o->verb, o->path, o->idem_key != NULL);
	if (o->url != NULL) {
		req->url = strdup(o->url);
	} else {
		ulen = strlen(up->base_url) + strlen(o->path) + 1;
		req->url = malloc(ulen);
		if (req->url != NULL)
			(void)snprintf(req->url, ulen, "%s%s", up->base_url,
			    o->path);
	}
	if (req->url == NULL)
		goto fail;
	if (o->body != NULL && (req->body_out = strdup(o->body)) == NULL)
		goto fail;
	if (key != NULL) {
		size_t alen = strlen(key) + 8;
		char *auth = malloc(alen);

		if (auth == NULL)
			goto fail;
		(void)snprintf(auth, alen, "Bearer %s", key);
		r = add_header(&req->headers, "Authorization", auth);
		explicit_bzero(auth, alen);
		free(auth);
		if (r < 0)
			goto fail;
	}
	/* The SDK sends Content-Type on every request; no Expect: 100. */
	if ((r = add_header(&req->headers, "Content-Type",
		 "application/json")) < 0 ||
	    (r = add_header(&req->headers, "Expect", "")) < 0 ||
	    (o->idem_key != NULL &&
		(r = add_header(&req->headers, "Idempotency-Key",
		     o->idem_key)) < 0))
		goto fail;
	req->next = up->reqs;
	if (up->reqs != NULL)
		up->reqs->prev = req;
	up->reqs = req;
	up->stats.active++;
	r = attempt_start(req);
	if (r < 0) {
		req_free(req);
		return r;
	}
	if (ret != NULL)
		*ret = req;
	return 0;
fail:
	wipe_headers(req->headers);
	free(req->url);
	free(req->body_out);
	free(req);
	return r;
}

void
upstream_set_limits(struct upstream *up, unsigned timeout_s,
    double max_retry_after_s, double backoff_base_s)
{
	up->timeout_s = timeout_s ? timeout_s : 300;
	up->max_retry_after_s = max_retry_after_s;
	up->backoff_base_s = backoff_base_s;
}

unsigned
upstream_timeout_s(const struct upstream *up)
{
	return up->timeout_s;
}

void
upstream_cancel(struct upstream *up, struct up_req *req)
{
	(void)up;
	if (req != NULL)
		req_free(req);
}

static void
retry_fire_cb(struct loop *loop, void *arg)
{
	struct up_req *req = arg;
	int r;

	(void)loop;
	req->retry_timer = NULL;
	r = attempt_start(req);
	if (r < 0) {
		struct up_response resp = {.error = r,
		    .error_text = "could not start a retry",
		    .retry_after = -1,
		    .attempts = req->attempts};

		req->done(&resp, req->arg);
		req_free(req);
	}
}

static int
transport_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -ECONNRESET;
	}
}

/* Decides what one finished attempt means: retry later, or report. */
static void
attempt_done(struct up_req *req, CURLcode code)
{
	struct upstream *up = req->up;
	struct up_response resp = {.retry_after = -1};
	bool retryable;
	double wait_s = -1;

	if (code == CURLE_OK || req->status > 0)
		(void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE,
		    &req->status);
	resp.status = code == CURLE_OK ? req->status : 0;
	if (code != CURLE_OK && req->streaming)
		resp.status = req->status; /* the stream broke mid-way */
	resp.retry_after = upstream_parse_retry_after(req->retry_after);

	retryable = !req->streaming && !req->aborted && !req->too_large &&
	    (code != CURLE_OK ? true :
				(resp.status == 429 || resp.status == 500 ||
				    resp.status == 502 || resp.status == 503 ||
				    resp.status == 504));
	if (retryable && req->eligible && req->attempts < UP_MAX_ATTEMPTS) {
		bool told = code == CURLE_OK && resp.status == 429 &&
		    resp.retry_after >= 0;

		wait_s = up->backoff_base_s * (double)(1u << (req->attempts - 1));
		if (told)
			wait_s = resp.retry_after;
		/* max_retry_after bounds the upstream's wait, not ours. */
		if (!told || wait_s <= up->max_retry_after_s) {
			up->stats.retries++;
			log_debug("upstream %s: attempt %d failed (%ld), "
				  "retrying in %.2fs",
			    method_verb_name(req->verb), req->attempts,
			    resp.status, wait_s);
			(void)curl_multi_remove_handle(up->multi, req->easy);
			if (loop_timer_add(up->loop, (uint64_t)(wait_s * 1000),
				retry_fire_cb, req, &req->retry_timer) == 0)
				return;
		}
	}
	if (code != CURLE_OK) {
		resp.error = req->too_large ? -EFBIG : transport_errno(code);
		resp.error_text = req->errbuf[0] ? req->errbuf :
						   curl_easy_strerror(code);
		up->stats.failures++;
	}
	resp.body = req->streaming ? NULL : req->body;
	resp.body_len = req->streaming ? 0 : req->body_len;
	resp.content_type = req->content_type;
	resp.request_id = req->request_id[0] ? req->request_id : NULL;
	resp.idempotent_replay = req->replay;
	resp.streamed = req->streaming;
	resp.attempts = req->attempts;
	if (!req->aborted)
		req->done(&resp, req->arg);
	req_free(req);
}

static void
check_info(struct upstream *up)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    &priv);
		if (priv != NULL)
			attempt_done((struct up_req *)(void *)priv,
			    msg->data.result);
	}
}

int
upstream_set_base_url(struct upstream *up, const char *url)
{
	char *u = strdup(url);
	size_t n;

	if (u == NULL)
		return -ENOMEM;
	n = strlen(u);
	while (n > 0 && u[n - 1] == '/')
		u[--n] = '\0';
	free(up->base_url);
	up->base_url = u;
	return 0;
}

int
upstream_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void
upstream_global_done(void)
{
	curl_global_cleanup();
}

int
upstream_new(struct loop *loop, const struct upstream_config *cfg,
    struct upstream **ret)
{
	struct upstream *up;
	int r;

	up = calloc(1, sizeof(*up));
	if (up == NULL)
		return -ENOMEM;
	up->loop = loop;
	up->timeout_s = cfg->timeout_s ? cfg->timeout_s : 300;
	up->max_retry_after_s = cfg->max_retry_after_s;
	up->backoff_base_s = cfg->backoff_base_s;
	up->key = cfg->key;
	up->key_arg = cfg->key_arg;
	r = upstream_set_base_url(up, cfg->base_url);
	if (r < 0)
		goto fail;
	up->multi = curl_multi_init();
	if (up->multi == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	(void)curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	(void)curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
	(void)curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	(void)curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
	(void)curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)UP_MAX_HOST_CONNECTIONS);
	*ret = up;
	return 0;
fail:
	free(up->base_url);
	free(up);
	return r;
}

void
upstream_free(struct upstream *up)
{
	if (up == NULL)
		return;
	while (up->reqs != NULL)
		req_free(up->reqs);
	if (up->timer != NULL)
		loop_timer_del(up->loop, up->timer);
	(void)curl_multi_cleanup(up->multi);
	free(up->base_url);
	free(up);
}

void
upstream_stats(const struct upstream *up, struct upstream_stats *ret)
{
	*ret = up->stats;
}

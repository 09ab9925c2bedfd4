/*
 * SPDX-License-Identifier: MIT
 *
 * Webhook receiver. libmicrohttpd runs in external-epoll mode: its epoll fd
 * sits in the daemon's loop and MHD_run is called when it is readable or
 * its timeout passes. A verified delivery goes to the writer thread, its
 * connection held without an answer; the writer commits whatever has
 * queued up in one transaction (group commit) and posts the results back
 * through an eventfd; the loop then answers each connection and hands new
 * deliveries to the inbox.
 *
 * A held connection is not suspended: suspending and resuming cost two
 * epoll_ctl calls per delivery, a tenth of the loop's time under load.
 * libmicrohttpd instead asks again, on each of its turns, for the answer
 * of a request that has none; access_cb says "not yet" until the writer
 * has spoken. It also reports such a connection as work pending (timeout
 * 0), so while deliveries are with the writer the loop looks again every
 * WEBHOOK_HELD_MS rather than spinning: the writer's answer, an eventfd,
 * is what ends the wait.
 *
 * Limits: the body (webhook_max_body; a larger one gets 413, also when it
 * comes chunked without a length), the request line and headers together
 * (WEBHOOK_MAX_HEADER; 431 or 414 from libmicrohttpd), the connections
 * (max_conns; more wait in the listen backlog) and time: a connection
 * silent for timeout_s is closed, and so is one that has not delivered a
 * whole request timeout_s after it opened or after its previous answer,
 * however steadily it trickles bytes (slowloris).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "inbox.h"
#include "log.h"
#include "loop.h"
#include "sig.h"
#include "store.h"
#include "webhook.h"
#include "webhook_int.h"

#define WEBHOOK_MAX_QUEUE 8192 /* deliveries waiting for the writer */
/* Bytes of an oversized chunked body read (and dropped) to answer 413. */
#define WEBHOOK_MAX_DRAIN ((size_t)1024 * 1024)
#define WEBHOOK_POOL 256                  /* spare request states kept */
#define WEBHOOK_POOL_BODY ((size_t)65536) /* largest body buffer kept */
#define WEBHOOK_SEAL_MS 100 /* secrets sealed again this long after use */
#define WEBHOOK_MAX_PEM ((size_t)1024 * 1024) /* bytes of a PEM file */
#define WEBHOOK_HELD_MS 10 /* libmicrohttpd's turns while deliveries wait */
/* Bodies up to this size are parsed on the loop, larger ones by the writer. */
#define WEBHOOK_PARSE_ON_LOOP ((size_t)16384)

static void run_mhd(struct webhook *w);
static void arm_cut_timer(struct webhook *w);

/* ---- request states ----------------------------------------------------- */

static struct req *
req_get(struct webhook *w)
{
	struct req *rq = w->spare;

	if (rq == NULL)
		return calloc(1, sizeof(*rq));
	w->spare = rq->next;
	w->nspare--;
	rq->next = NULL;
	return rq;
}

/* Clears what one request left; keeps a small body buffer for the next. */
static void
req_put(struct webhook *w, struct req *rq)
{
	char *body = rq->body;
	size_t cap = rq->cap;

	free(rq->event_type);
	free(rq->headers);
	if (w->nspare >= WEBHOOK_POOL || cap > WEBHOOK_POOL_BODY) {
		free(body);
		free(rq);
		return;
	}
	memset(rq, 0, sizeof(*rq));
	rq->body = body;
	rq->cap = cap;
	rq->next = w->spare;
	w->spare = rq;
	w->nspare++;
}

static void
spare_free(struct webhook *w)
{
	struct req *rq;

	while ((rq = w->spare) != NULL) {
		w->spare = rq->next;
		free(rq->body);
		free(rq);
	}
	w->nspare = 0;
}

/* ---- answers ------------------------------------------------------------ */

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status, const char *json)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(json),
	    (void *)(uintptr_t)json, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(resp, "Content-Type", "application/json");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(resp, "Allow", "POST");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
answer_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	char buf[256];

	(void)snprintf(buf, sizeof(buf), "{\"error\":\"%s\"}", msg);
	return answer(conn, status, buf);
}

/* Finishes a request the writer has answered. */
static enum MHD_Result
answer_stored(struct MHD_Connection *conn, struct req *rq)
{
	char buf[128];

	if (rq->status != MHD_HTTP_OK)
		return answer_error(conn, rq->status,
		    "could not store the delivery");
	(void)snprintf(buf, sizeof(buf),
	    "{\"received\":true,\"seq\":%lld,\"duplicate\":%s}",
	    (long long)rq->seq,
	    rq->result == STORE_DUPLICATE ? "true" : "false");
	return answer(conn, MHD_HTTP_OK, buf);
}

/* A result from the writer: count it, hand a new delivery to the inbox. */
static void
stored(struct webhook *w, struct req *rq)
{
	struct store_webhook wh = {
	    .seq = rq->seq,
	    .webhook_id = rq->id,
	    .received_at = rq->received_at,
	    .event_type = rq->event_type,
	    .run_id = rq->run_id,
	    .headers = rq->headers,
	    .body = rq->body,
	    .body_len = rq->len,
	};

	rq->waiting = false;
	if (rq->result < 0) {
		rq->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return;
	}
	rq->status = MHD_HTTP_OK;
	if (rq->result == STORE_DUPLICATE) {
		w->stats.duplicates++;
		return;
	}
	w->stats.stored++;
	inbox_committed(w->inbox, &wh);
}

static void
done_cb(struct loop *loop, int fd, unsigned ev, void *arg)
{
	struct webhook *w = arg;
	struct req *list, *rq;
	size_t failed = 0;
	uint64_t n;

	(void)loop;
	(void)ev;
	(void)!read(fd, &n, sizeof(n));
	(void)pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	(void)pthread_mutex_unlock(&w->lock);
	while ((rq = list) != NULL) {
		list = rq->next;
		rq->next = NULL;
		w->queued--;
		stored(w, rq);
		/* One line for what failed together. */
		if (rq->result < 0 && failed++ == 0)
			log_warn("webhook %s not stored: %s", rq->id,
			    strerror(-rq->result));
		if (rq->conn == NULL)
			req_put(w, rq); /* its sender is gone */
	}
	if (failed > 1)
		log_warn("... and %zu more webhooks not stored", failed - 1);
	/*
	 * The first turn gives each held connection its answer, the second
	 * sends them: libmicrohttpd writes a response on the turn after the
	 * one it was queued in.
	 */
	(void)MHD_run(w->mhd);
	run_mhd(w);
}

/* ---- HTTP --------------------------------------------------------------- */

static const char *
header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static struct wconn *
conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* The request is in (or answered early): no more cut for taking long. */
static void
mark_busy(struct MHD_Connection *conn)
{
	struct wconn *wc = conn_of(conn);

	if (wc != NULL)
		wc->busy = true;
}

static void
seal(struct webhook *w)
{
	if (!w->unsealed)
		return;
	for (size_t i = 0; i < w->nsecrets; i++)
		sig_secret_seal(w->secrets[i]);
	w->unsealed = false;
}

static void
seal_cb(struct loop *loop, void *arg)
{
	struct webhook *w = arg;
	uint64_t idle = loop_now(loop) - w->verified_at;

	w->seal_timer = NULL;
	if (!w->unsealed)
		return;
	if (idle < WEBHOOK_SEAL_MS &&
	    loop_timer_add(loop, WEBHOOK_SEAL_MS - idle, seal_cb, w,
	        &w->seal_timer) == 0)
		return;
	seal(w);
}

/*
 * Makes the secrets readable for the deliveries to come. Sealing them
 * again after each one would cost two mprotect calls (TLB shootdowns)
 * per secret per delivery; they are sealed once none came for
 * WEBHOOK_SEAL_MS instead.
 */
static void
unseal(struct webhook *w)
{
	w->verified_at = loop_now(w->loop);
	if (w->unsealed)
		return;
	for (size_t i = 0; i < w->nsecrets; i++)
		sig_secret_unseal(w->secrets[i]);
	w->unsealed = true;
	if (w->seal_timer == NULL &&
	    loop_timer_add(w->loop, WEBHOOK_SEAL_MS, seal_cb, w,
	        &w->seal_timer) < 0)
		seal(w); /* no timer: keep them sealed, verify the slow way */
}

/* Hands a verified delivery to the writer; its connection waits. */
static enum MHD_Result
queue_delivery(struct webhook *w, struct MHD_Connection *conn, struct req *rq)
{
	const char *ct = header(conn, "Content-Type");
	size_t nct;

	if (w->queued >= WEBHOOK_MAX_QUEUE)
		return answer_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "busy");
	nct = ct != NULL ? strlen(ct) : 0;
	if (nct > WEBHOOK_MAX_TYPE)
		nct = 0; /* not kept */
	memcpy(rq->ctype, ct != NULL ? ct : "", nct);
	rq->ctype[nct] = '\0';
	rq->received_at = (int64_t)time(NULL);
	/*
	 * The loop has time to spare while the writer waits on the disk, and
	 * the writer is what every delivery queues for: small bodies are
	 * parsed here. A large one is left to the writer, so that it does not
	 * hold up the loop's other clients.
	 */
	if (rq->len <= WEBHOOK_PARSE_ON_LOOP) {
		webhook_peek_body(rq);
		rq->headers = webhook_headers_json(rq);
		rq->parsed = true;
	}
	rq->conn = conn;
	rq->waiting = true;
	*w->batch_tail = rq;
	w->batch_tail = &rq->next;
	w->queued++;
	return MHD_YES;
}

static enum MHD_Result
finish_upload(struct webhook *w, struct MHD_Connection *conn, struct req *rq)
{
	const char *id = header(conn, "Webhook-Id");
	const char *ts = header(conn, "Webhook-Timestamp");
	const char *sg = header(conn, "Webhook-Signature");
	enum sig_result v;
	size_t nid, nts;

	mark_busy(conn);
	if (rq->too_big)
		return answer_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
		    "body too large");
	w->stats.received++;
	unseal(w);
	v = sig_verify(id, ts, sg, rq->body, rq->len, w->secrets, w->nsecrets,
	    w->cfg.tolerance_s, (int64_t)time(NULL));
	if (v != SIG_OK) {
		w->stats.rejected++;
		log_debug("webhook rejected: %s", sig_result_str(v));
		return answer_error(conn,
		    v == SIG_MISSING_HEADER || v == SIG_MALFORMED
		        ? MHD_HTTP_BAD_REQUEST
		        : MHD_HTTP_UNAUTHORIZED,
		    sig_result_str(v));
	}
	/* sig_verify took ts as at most 18 digits. */
	nid = strlen(id);
	nts = strlen(ts);
	if (nid > WEBHOOK_MAX_ID || nts >= sizeof(rq->ts)) {
		w->stats.rejected++;
		return answer_error(conn, MHD_HTTP_BAD_REQUEST,
		    "webhook id too long");
	}
	memcpy(rq->id, id, nid + 1);
	memcpy(rq->ts, ts, nts + 1);
	return queue_delivery(w, conn, rq);
}

/* Appends a piece of the body; false to close the connection. */
static bool
take_upload(struct webhook *w, struct req *rq, const char *data, size_t n)
{
	if (!rq->too_big && rq->len + n > w->cfg.max_body) {
		/*
		 * libmicrohttpd takes no answer in the middle of a body: read
		 * on, drop it, answer 413 at its end (up to a point).
		 */
		rq->too_big = true;
		rq->dropped = rq->len;
		rq->len = 0;
	}
	if (rq->too_big) {
		rq->dropped += n;
		return rq->dropped - w->cfg.max_body <= WEBHOOK_MAX_DRAIN;
	}
	if (rq->len + n > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 4096;
		char *b;

		while (cap < rq->len + n)
			cap *= 2;
		b = realloc(rq->body, cap);
		if (b == NULL)
			return false;
		rq->body = b;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	return true;
}

/* The first call, once the headers are in. */
static enum MHD_Result
start_request(struct webhook *w, struct MHD_Connection *conn,
    const char *method, void **con_cls)
{
	const char *cl;
	struct req *rq;

	if (strcmp(method, "POST") != 0) {
		mark_busy(conn);
		return answer_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "only POST");
	}
	cl = header(conn, "Content-Length");
	if (cl != NULL && strtoull(cl, NULL, 10) > w->cfg.max_body) {
		mark_busy(conn);
		return answer_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
		    "body too large");
	}
	rq = req_get(w);
	if (rq == NULL)
		return MHD_NO;
	*con_cls = rq;
	return MHD_YES;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct webhook *w = cls;
	struct req *rq = *con_cls;

	(void)url;
	(void)version;
	if (rq == NULL)
		return start_request(w, conn, method, con_cls);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		return take_upload(w, rq, upload_data, n) ? MHD_YES : MHD_NO;
	}
	if (rq->waiting)
		return MHD_YES;
	if (rq->status != 0)
		return answer_stored(conn, rq);
	return finish_upload(w, conn, rq);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct webhook *w = cls;
	struct req *rq = *con_cls;
	struct wconn *wc = conn_of(conn);

	(void)toe;
	if (wc != NULL && wc->listed) {
		/* The next request has a full timeout from now. */
		wc->busy = false;
		wc->deadline = loop_now(w->loop) + w->cfg.timeout_s * 1000ull;
		TAILQ_REMOVE(&w->conns, wc, link);
		TAILQ_INSERT_TAIL(&w->conns, wc, link);
	}
	if (rq == NULL)
		return;
	*con_cls = NULL;
	if (rq->waiting) {
		/* Orphaned: done_cb frees it. */
		rq->conn = NULL;
		log_debug("webhook %s: connection closed before its answer",
		    rq->id);
	} else
		req_put(w, rq);
}

/* ---- connections and their deadlines ------------------------------------ */

static void
cut_cb(struct loop *loop, void *arg)
{
	struct webhook *w = arg;
	uint64_t now = loop_now(loop);
	struct wconn *wc, *next;

	w->cut_timer = NULL;
	for (wc = TAILQ_FIRST(&w->conns); wc != NULL && wc->deadline <= now;
	     wc = next) {
		next = TAILQ_NEXT(wc, link);
		if (wc->busy)
			continue;
		/*
		 * libmicrohttpd owns the fd and has no call to drop a
		 * connection: shutting the socket down makes its next read
		 * see the end, and it closes the connection itself.
		 */
		(void)shutdown(wc->fd, SHUT_RDWR);
		TAILQ_REMOVE(&w->conns, wc, link);
		wc->listed = false;
		w->stats.timed_out++;
		log_debug("webhook connection cut: no whole request in %u s",
		    w->cfg.timeout_s);
	}
	arm_cut_timer(w);
}

/* Fires at the first deadline to come (busy ones past it are skipped). */
static void
arm_cut_timer(struct webhook *w)
{
	uint64_t now = loop_now(w->loop);
	struct wconn *wc;

	if (w->cut_timer != NULL)
		return;
	TAILQ_FOREACH(wc, &w->conns, link) {
		if (wc->deadline > now)
			break;
	}
	if (wc == NULL && !TAILQ_EMPTY(&w->conns))
		wc = TAILQ_FIRST(&w->conns); /* all busy: look again later */
	if (wc == NULL)
		return;
	(void)loop_timer_add(w->loop,
	    wc->deadline > now ? wc->deadline - now : 1000, cut_cb, w,
	    &w->cut_timer);
}

static void
notify_conn_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct webhook *w = cls;
	struct wconn *wc = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (wc != NULL && wc->listed)
			TAILQ_REMOVE(&w->conns, wc, link);
		free(wc);
		*socket_context = NULL;
		return;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	wc = calloc(1, sizeof(*wc));
	if (wc == NULL) {
		/* Untracked means unlimited in time: refuse it instead. */
		if (ci != NULL)
			(void)shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	wc->fd = ci != NULL ? ci->connect_fd : -1;
	wc->deadline = loop_now(w->loop) + w->cfg.timeout_s * 1000ull;
	wc->listed = true;
	TAILQ_INSERT_TAIL(&w->conns, wc, link);
	*socket_context = wc;
	arm_cut_timer(w);
}

/* ---- libmicrohttpd on the loop ------------------------------------------ */

/* Gives the writer what this turn verified: one lock, one wake-up. */
static void
hand_over(struct webhook *w)
{
	if (w->batch == NULL)
		return;
	(void)pthread_mutex_lock(&w->lock);
	*w->todo_tail = w->batch;
	w->todo_tail = w->batch_tail;
	(void)pthread_cond_signal(&w->cond);
	(void)pthread_mutex_unlock(&w->lock);
	w->batch = NULL;
	w->batch_tail = &w->batch;
}

static void
mhd_timer_cb(struct loop *loop, void *arg)
{
	struct webhook *w = arg;

	(void)loop;
	w->timer = NULL;
	run_mhd(w);
}

static void
run_mhd(struct webhook *w)
{
	MHD_UNSIGNED_LONG_LONG to;
	uint64_t at;

	(void)MHD_run(w->mhd);
	hand_over(w);
	if (MHD_get_timeout(w->mhd, &to) != MHD_YES) {
		if (w->timer != NULL)
			loop_timer_del(w->loop, w->timer);
		w->timer = NULL;
		return;
	}
	if (to == 0 && w->queued > 0)
		to = WEBHOOK_HELD_MS; /* held connections: see the top */
	/* An earlier timer only costs one more MHD_run: keep it. */
	at = loop_now(w->loop) + to;
	if (w->timer != NULL && w->timer_at <= at)
		return;
	if (w->timer != NULL)
		loop_timer_del(w->loop, w->timer);
	w->timer = NULL;
	if (loop_timer_add(w->loop, to, mhd_timer_cb, w, &w->timer) == 0)
		w->timer_at = at;
}

static void
mhd_io_cb(struct loop *loop, int fd, unsigned ev, void *arg)
{
	(void)loop;
	(void)fd;
	(void)ev;
	run_mhd(arg);
}

/* libmicrohttpd's own messages: why it could not start, then debug. */
static void
mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	struct webhook *w = cls;
	char buf[512];
	size_t n;

	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (w->started)
		log_debug("webhook receiver: %s", buf);
	else
		log_warn("webhook receiver: %s", buf);
}

static int
parse_listen(const char *s, struct sockaddr_in *sa)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	char *end;
	unsigned long port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		sa->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

/* Reads a PEM file (at most 1 MiB) into a new string: 0 or -errno. */
static int
read_pem(const char *path, char **ret)
{
	FILE *f = fopen(path, "rbe");
	struct stat sb;
	size_t n = 0;
	char *buf = NULL;
	int r = -EIO;

	if (f == NULL)
		return -errno;
	if (fstat(fileno(f), &sb) == -1)
		goto out;
	r = -EFBIG;
	if (sb.st_size <= 0 || (size_t)sb.st_size > WEBHOOK_MAX_PEM)
		goto out;
	n = (size_t)sb.st_size;
	r = -ENOMEM;
	buf = malloc(n + 1);
	if (buf == NULL)
		goto out;
	r = -EIO;
	if (fread(buf, 1, n, f) != n)
		goto out;
	buf[n] = '\0';
	*ret = buf;
	buf = NULL;
	r = 0;
out:
	(void)fclose(f);
	if (buf != NULL) {
		explicit_bzero(buf, n);
		free(buf);
	}
	return r;
}

static int
load_tls(struct webhook *w, const struct webhook_config *cfg)
{
	int r;

	r = read_pem(cfg->tls_cert, &w->tls_cert);
	if (r < 0)
		return log_warnc(r, "webhook_tls_cert %s", cfg->tls_cert);
	r = read_pem(cfg->tls_key, &w->tls_key);
	if (r < 0)
		return log_warnc(r, "webhook_tls_key %s", cfg->tls_key);
	return 0;
}

static int
start_mhd(struct webhook *w, const struct sockaddr_in *sa)
{
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem ops[] = {
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log_cb, w},
	    {MHD_OPTION_SOCK_ADDR, 0, (void *)(uintptr_t)sa},
	    {MHD_OPTION_CONNECTION_LIMIT, w->cfg.max_conns, NULL},
	    {MHD_OPTION_CONNECTION_TIMEOUT, w->cfg.timeout_s, NULL},
	    {MHD_OPTION_CONNECTION_MEMORY_LIMIT, WEBHOOK_MAX_HEADER, NULL},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, w},
	    {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_conn_cb, w},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, w->tls_cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, w->tls_key},
	    {MHD_OPTION_END, 0, NULL},
	};

	if (w->tls_cert != NULL)
		flags |= MHD_USE_TLS;
	else
		ops[7].option = MHD_OPTION_END;
	w->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, w,
	    MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
	if (w->mhd == NULL)
		return w->tls_cert != NULL ? -EINVAL : -EADDRINUSE;
	w->started = true;
	return 0;
}

static int
hook_up(struct webhook *w)
{
	const union MHD_DaemonInfo *info;
	int r;

	info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
	w->port = info != NULL ? info->port : 0;
	info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL)
		return -ENOTSUP;
	r = loop_io_add(w->loop, info->epoll_fd, LOOP_READ, mhd_io_cb, w,
	    &w->mhd_io);
	if (r < 0)
		return r;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd == -1)
		return -errno;
	r = loop_io_add(w->loop, w->efd, LOOP_READ, done_cb, w, &w->efd_io);
	if (r < 0)
		return r;
	r = -pthread_create(&w->writer, NULL, webhook_writer_main, w);
	if (r < 0)
		return r;
	w->writer_started = true;
	return 0;
}

int
webhook_new(struct loop *loop, struct inbox *inbox,
    const struct webhook_config *cfg, struct webhook **ret)
{
	struct sockaddr_in sa;
	struct webhook *w;
	int r;

	if (parse_listen(cfg->listen, &sa) < 0 || cfg->timeout_s == 0 ||
	    cfg->max_conns == 0 ||
	    (cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->loop = loop;
	w->inbox = inbox;
	w->cfg = *cfg;
	w->efd = -1;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	w->batch_tail = &w->batch;
	TAILQ_INIT(&w->conns);
	(void)pthread_mutex_init(&w->lock, NULL);
	(void)pthread_cond_init(&w->cond, NULL);
	w->db_path = strdup(cfg->state_db);
	if (w->db_path == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	if (cfg->tls_cert != NULL && (r = load_tls(w, cfg)) < 0)
		goto fail;
	if ((r = start_mhd(w, &sa)) < 0 || (r = hook_up(w)) < 0)
		goto fail;
	run_mhd(w);
	*ret = w;
	return 0;
fail:
	webhook_free(w);
	return r;
}

void
webhook_free(struct webhook *w)
{
	struct req *rq;

	if (w == NULL)
		return;
	if (w->writer_started) {
		hand_over(w);
		(void)pthread_mutex_lock(&w->lock);
		w->stop = true;
		(void)pthread_cond_signal(&w->cond);
		(void)pthread_mutex_unlock(&w->lock);
		(void)pthread_join(w->writer, NULL);
	}
	/*
	 * Committed but unanswered: libmicrohttpd closes their connections
	 * when it stops, and completed_cb gives back the states of those it
	 * still has; orphans go back here.
	 */
	while ((rq = w->done) != NULL) {
		w->done = rq->next;
		rq->next = NULL;
		rq->waiting = false;
		if (rq->conn == NULL)
			req_put(w, rq);
	}
	if (w->timer != NULL)
		loop_timer_del(w->loop, w->timer);
	if (w->cut_timer != NULL)
		loop_timer_del(w->loop, w->cut_timer);
	if (w->seal_timer != NULL)
		loop_timer_del(w->loop, w->seal_timer);
	loop_io_del(w->loop, w->mhd_io);
	loop_io_del(w->loop, w->efd_io);
	if (w->mhd != NULL)
		MHD_stop_daemon(w->mhd);
	spare_free(w);
	if (w->efd != -1)
		(void)close(w->efd);
	webhook_clear_secrets(w);
	free(w->tls_cert);
	if (w->tls_key != NULL) {
		explicit_bzero(w->tls_key, strlen(w->tls_key));
		free(w->tls_key);
	}
	free(w->db_path);
	(void)pthread_mutex_destroy(&w->lock);
	(void)pthread_cond_destroy(&w->cond);
	free(w);
}

unsigned
webhook_port(const struct webhook *w)
{
	return w->port;
}

int
webhook_add_secret(struct webhook *w, const char *secret, size_t len,
    int64_t not_after)
{
	struct sig_secret *s;
	size_t slot = w->nsecrets;
	bool full = slot == WEBHOOK_MAX_SECRETS;

	if (full) {
		/* Replace the one that expires first (or the oldest). */
		slot = 0;
		for (size_t i = 1; i < w->nsecrets; i++)
			if (w->not_after[i] != 0 &&
			    (w->not_after[slot] == 0 ||
			        w->not_after[i] < w->not_after[slot]))
				slot = i;
	}
	s = sig_secret_new(secret, len);
	if (s == NULL)
		return -ENOMEM;
	sig_secret_set_not_after(s, not_after);
	if (full)
		sig_secret_free(w->secrets[slot]);
	else
		w->nsecrets++;
	w->secrets[slot] = s;
	w->not_after[slot] = not_after;
	return full ? -ENOSPC : 0;
}

void
webhook_clear_secrets(struct webhook *w)
{
	for (size_t i = 0; i < w->nsecrets; i++) {
		sig_secret_free(w->secrets[i]);
		w->secrets[i] = NULL;
		w->not_after[i] = 0;
	}
	w->nsecrets = 0;
	w->unsealed = false;
}

size_t
webhook_secret_count(const struct webhook *w)
{
	return w->nsecrets;
}

void
webhook_stats(const struct webhook *w, struct webhook_stats *ret)
{
	*ret = w->stats;
}

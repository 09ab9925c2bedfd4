/*
 * SPDX-License-Identifier: MIT
 *
 * libmicrohttpd glue: one thread per connection, requests parsed into
 * struct mreq (raw URI kept for the recorder, path percent-decoded before it
 * is split into segments, as the real server does), scripted faults applied,
 * then the route table or the /__mock/ API fills a struct mresp that is
 * turned into an MHD response here. Handlers never touch MHD.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http.h"
#include "inspect.h"
#include "json.h"
#include "routes.h"
#include "sse.h"
#include "store.h"
#include "util.h"

#define HTTP_CONN_LIMIT 4096
#define HTTP_BACKLOG 1024
#define HTTP_IDLE_TIMEOUT 600 /* seconds */
#define HTTP_STACK_SIZE (1u << 20)
#define HTTP_SSE_BLOCK (64u << 10)

static char empty_body[1];

/* Open connections, so idle keep-alive ones can be shut down. */
struct conn {
	LIST_ENTRY(conn) entry;
	int fd;
	bool busy; /* a request is in progress */
};
static LIST_HEAD(conn_list, conn) conns = LIST_HEAD_INITIALIZER(conns);
static pthread_mutex_t conns_mtx = PTHREAD_MUTEX_INITIALIZER;

static void *uri_cb(void *, const char *, struct MHD_Connection *);
static void completed_cb(void *, struct MHD_Connection *, void **,
    enum MHD_RequestTerminationCode);
static enum MHD_Result access_cb(void *, struct MHD_Connection *, const char *,
    const char *, const char *, const char *, size_t *, void **);

static void
req_free(struct mreq *req)
{
	if (req == NULL)
		return;
	free(req->method);
	free(req->raw_uri);
	free(req->raw_path);
	free(req->path);
	free(req->segbuf);
	for (size_t i = 0; i < req->nq; i++) {
		free(req->qk[i]);
		free(req->qv[i]);
	}
	free(req->body);
	cJSON_Delete(req->json);
	free(req->greedy);
	free(req);
}

static void
resp_done(struct mresp *resp)
{
	free(resp->body);
	for (size_t i = 0; i < resp->nhdr; i++) {
		free(resp->hdr[i].name);
		free(resp->hdr[i].value);
	}
	sse_free(resp->sse);
}

/*
 * libmicrohttpd's error log. Connections the mock cuts on purpose ([drop:N],
 * "reset" faults, peers gone) are expected and only shown with --verbose.
 */
static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!store.verbose &&
	    (strstr(msg, "application error generating response") != NULL ||
	        strstr(msg, "Application reported internal error") != NULL))
		return;
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	(void)fprintf(stderr, "m8tes-mockd: %s\n", msg);
}

static void
conn_cb(void *cls, struct MHD_Connection *mc, void **sock_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct conn *c = *sock_ctx;

	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(mc,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		c = calloc(1, sizeof(*c));
		if (c == NULL || ci == NULL) {
			free(c);
			return;
		}
		c->fd = ci->connect_fd;
		(void)pthread_mutex_lock(&conns_mtx);
		LIST_INSERT_HEAD(&conns, c, entry);
		(void)pthread_mutex_unlock(&conns_mtx);
		*sock_ctx = c;
		return;
	}
	if (c == NULL)
		return;
	/* Called before MHD closes the fd, so no stale fd is shut down. */
	(void)pthread_mutex_lock(&conns_mtx);
	LIST_REMOVE(c, entry);
	(void)pthread_mutex_unlock(&conns_mtx);
	free(c);
	*sock_ctx = NULL;
}

static void
conn_busy(struct MHD_Connection *mc, bool busy)
{
	const union MHD_ConnectionInfo *ci;
	struct conn *c;

	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	c = ci != NULL ? ci->socket_context : NULL;
	if (c == NULL)
		return;
	(void)pthread_mutex_lock(&conns_mtx);
	c->busy = busy;
	(void)pthread_mutex_unlock(&conns_mtx);
}

void
http_drop_idle(void)
{
	struct conn *c;

	(void)pthread_mutex_lock(&conns_mtx);
	LIST_FOREACH(c, &conns, entry)
		if (!c->busy)
			(void)shutdown(c->fd, SHUT_RDWR);
	(void)pthread_mutex_unlock(&conns_mtx);
}

static void *
uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct mreq *req;

	(void)cls;
	conn_busy(conn, true);
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return NULL;
	req->conn = conn;
	req->raw_uri = strdup(uri);
	if (req->raw_uri == NULL) {
		free(req);
		return NULL;
	}
	store_request_id(req->request_id, sizeof(req->request_id));
	return req;
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	conn_busy(conn, false);
	req_free(*req_cls);
	*req_cls = NULL;
}

static int
parse_query(struct mreq *req)
{
	const char *p = req->raw_query;

	while (*p != '\0' && req->nq < HTTP_MAX_QUERY) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);
		size_t kn = eq != NULL ? (size_t)(eq - p) : n;
		int r;

		if (n > 0) {
			r = util_decode(p, kn, true, &req->qk[req->nq], NULL);
			if (r < 0)
				return r;
			r = eq != NULL
			    ? util_decode(eq + 1, n - kn - 1, true,
			          &req->qv[req->nq], NULL)
			    : util_decode("", 0, true, &req->qv[req->nq], NULL);
			if (r < 0) {
				free(req->qk[req->nq]);
				return r;
			}
			req->nq++;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

/*
 * Split the decoded path below /api/v2/ into segments. "/api/v2/agents/"
 * gives {"agents", ""}: the empty last segment is the trailing slash.
 */
static int
parse_path(struct mreq *req)
{
	const char *q = strchr(req->raw_uri, '?');
	size_t n =
	    q != NULL ? (size_t)(q - req->raw_uri) : strlen(req->raw_uri);
	char *p;
	int r;

	req->raw_path = strndup(req->raw_uri, n);
	if (req->raw_path == NULL)
		return -ENOMEM;
	req->raw_query = q != NULL ? q + 1 : "";
	r = util_decode(req->raw_path, n, false, &req->path, NULL);
	if (r < 0)
		return r;
	r = parse_query(req);
	if (r < 0)
		return r;
	if (strncmp(req->path, "/api/v2/", 8) != 0)
		return 0;
	req->segbuf = strdup(req->path + 8);
	if (req->segbuf == NULL)
		return -ENOMEM;
	p = req->segbuf;
	for (;;) {
		char *s = strchr(p, '/');

		if (req->nseg == HTTP_MAX_SEGS) {
			req->nseg = 0; /* too deep: matches nothing */
			break;
		}
		req->seg[req->nseg++] = p;
		if (s == NULL)
			break;
		*s = '\0';
		p = s + 1;
	}
	return 0;
}

static int
parse_body(struct mreq *req)
{
	const char *ct = http_header(req, "Content-Type");

	if (req->body_len == 0)
		return 0;
	if (ct != NULL && strncasecmp(ct, "multipart/", 10) == 0)
		return 0;
	req->json =
	    cJSON_ParseWithLength((const char *)req->body, req->body_len);
	if (req->json == NULL)
		req->json_bad = true;
	return 0;
}

static ssize_t
sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n;

	(void)pos;
	n = sse_read(cls, buf, max);
	if (n == SSE_READ_EOF)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void
sse_release(void *cls)
{
	sse_free(cls);
}

static ssize_t
cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static struct MHD_Response *
sse_response(struct mreq *req, struct mresp *resp)
{
	const union MHD_ConnectionInfo *ci;
	struct MHD_Response *r;

	ci = MHD_get_connection_info(req->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		sse_set_fd(resp->sse, ci->connect_fd);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_SSE_BLOCK,
	    sse_reader, resp->sse, sse_release);
	if (r != NULL)
		resp->sse = NULL; /* owned by the response now */
	return r;
}

static enum MHD_Result
queue(struct mreq *req, struct mresp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (resp->cut)
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024,
		    cut_reader, NULL, NULL);
	else if (resp->sse != NULL)
		r = sse_response(req, resp);
	else if (resp->len == 0) {
		r = MHD_create_response_from_buffer(0, empty_body,
		    MHD_RESPMEM_PERSISTENT);
	} else {
		r = MHD_create_response_from_buffer(resp->len, resp->body,
		    MHD_RESPMEM_MUST_FREE);
		if (r != NULL)
			resp->body = NULL;
	}
	if (r == NULL)
		return MHD_NO;
	ret = MHD_add_response_header(r, "X-Request-Id", req->request_id);
	if (ret == MHD_YES && resp->ctype != NULL && resp->status != 204)
		ret = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		    resp->ctype);
	for (size_t i = 0; ret == MHD_YES && i < resp->nhdr; i++)
		ret = MHD_add_response_header(r, resp->hdr[i].name,
		    resp->hdr[i].value);
	if (ret == MHD_YES)
		ret = MHD_queue_response(req->conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static int
serve(struct mreq *req, struct mresp *resp, bool *ret_drop)
{
	cJSON *fault;
	int r;

	*ret_drop = false;
	if (strncmp(req->path, "/__mock/", 8) == 0)
		return inspect_handle(req, resp);
	r = inspect_record(req);
	if (r < 0)
		return r;
	fault = inspect_fault_take(req);
	if (fault != NULL) {
		long long ms = 0, status = 0;
		bool cut;

		if (json_int(fault, "delay_ms", &ms) == 0 && ms > 0)
			store_sleep(
			    (unsigned int)(ms > 3600000 ? 3600000 : ms));
		if (cJSON_IsTrue(
		        cJSON_GetObjectItemCaseSensitive(fault, "reset"))) {
			cJSON_Delete(fault);
			*ret_drop = true;
			return 0;
		}
		/* "reset":"headers": the head goes out, then the cut. */
		cut = json_str(fault, "reset") != NULL &&
		    strcmp(json_str(fault, "reset"), "headers") == 0;
		if (cut && json_int(fault, "status", &status) < 0)
			(void)json_set_num(fault, "status", 200);
		if (json_int(fault, "status", &status) == 0 && status > 0) {
			r = inspect_fault_answer(fault, req, resp);
			resp->cut = cut;
			cJSON_Delete(fault);
			return r;
		}
		cJSON_Delete(fault);
	}
	if (req->body_too_large)
		return http_resp_error(resp, req, 413, "invalid_request_error",
		    "payload_too_large", "Request body too large");
	return routes_dispatch(req, resp);
}

static enum MHD_Result
handle(struct mreq *req)
{
	struct mresp resp = {.status = 0};
	enum MHD_Result ret;
	bool drop = false;
	int r;

	r = parse_path(req);
	if (r == 0)
		r = parse_body(req);
	if (r == 0)
		r = serve(req, &resp, &drop);
	if (store.verbose)
		(void)fprintf(stderr, "m8tes-mockd: %s %s -> %u%s\n",
		    req->method, req->raw_uri, resp.status,
		    drop ? " (dropped)" : "");
	if (drop) {
		resp_done(&resp);
		return MHD_NO;
	}
	if (r < 0 || resp.status == 0) {
		resp_done(&resp);
		memset(&resp, 0, sizeof(resp));
		if (http_resp_error(&resp, req, 500, "api_error", NULL,
		        "Internal mock error (%d)", r) < 0) {
			resp_done(&resp);
			return MHD_NO;
		}
	}
	ret = queue(req, &resp);
	resp_done(&resp);
	return ret;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	struct mreq *req = *req_cls;

	(void)cls;
	(void)url;
	(void)version;
	if (req == NULL)
		return MHD_NO;
	if (!req->started) {
		req->started = true;
		req->conn = conn;
		req->method = strdup(method);
		return req->method != NULL ? MHD_YES : MHD_NO;
	}
	if (*upload_size > 0) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (req->body_too_large || req->body_len + n > HTTP_MAX_BODY) {
			req->body_too_large = true;
			return MHD_YES;
		}
		if (req->body_len + n + 1 > req->body_cap) {
			size_t cap = req->body_cap ? req->body_cap : 4096;
			uint8_t *nb;

			while (cap < req->body_len + n + 1)
				cap *= 2;
			nb = realloc(req->body, cap);
			if (nb == NULL)
				return MHD_NO;
			req->body = nb;
			req->body_cap = cap;
		}
		memcpy(req->body + req->body_len, upload, n);
		req->body_len += n;
		req->body[req->body_len] = '\0';
		return MHD_YES;
	}
	return handle(req);
}

struct MHD_Daemon *
http_start(const char *host, uint16_t port, uint16_t *ret_port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	unsigned int flags;
	char portstr[8];

	(void)snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
		errno = EADDRNOTAVAIL;
		return NULL;
	}
	flags = MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
	    MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger must come first to catch every message. */
	d = MHD_start_daemon(flags, port, NULL, NULL, access_cb, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
	    ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)HTTP_CONN_LIMIT, MHD_OPTION_LISTEN_BACKLOG_SIZE,
	    (unsigned int)HTTP_BACKLOG, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)HTTP_IDLE_TIMEOUT, MHD_OPTION_THREAD_STACK_SIZE,
	    (size_t)HTTP_STACK_SIZE, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_cb, NULL, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (d == NULL) {
		errno = EADDRINUSE;
		return NULL;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*ret_port = info != NULL ? info->port : port;
	return d;
}

void
http_stop(struct MHD_Daemon *d)
{
	if (d != NULL)
		MHD_stop_daemon(d);
}

const char *
http_header(const struct mreq *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result
header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	cJSON *o = cls;
	const char *old;
	char name[256], *joined;
	size_t i;
	int r;

	(void)kind;
	for (i = 0; key[i] != '\0' && i + 1 < sizeof(name); i++)
		name[i] = (char)tolower((unsigned char)key[i]);
	name[i] = '\0';
	if (value == NULL)
		value = "";
	old = json_str(o, name);
	if (old == NULL)
		return json_set_str(o, name, value) < 0 ? MHD_NO : MHD_YES;
	/* Repeated headers are joined as one field value, per RFC 9110. */
	if (asprintf(&joined, "%s, %s", old, value) < 0)
		return MHD_NO;
	r = json_set_str(o, name, joined);
	free(joined);
	return r < 0 ? MHD_NO : MHD_YES;
}

cJSON *
http_headers(const struct mreq *req)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	if (MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_cb,
	        o) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

const char *
http_query(const struct mreq *req, const char *k)
{
	for (size_t i = 0; i < req->nq; i++)
		if (strcmp(req->qk[i], k) == 0)
			return req->qv[i];
	return NULL;
}

int
http_resp_raw(struct mresp *resp, unsigned int status, const char *ctype,
    const void *p, size_t len)
{
	char *b = NULL;

	if (len > 0) {
		b = malloc(len);
		if (b == NULL)
			return -ENOMEM;
		memcpy(b, p, len);
	}
	free(resp->body);
	resp->body = b;
	resp->len = len;
	resp->status = status;
	resp->ctype = ctype;
	return 0;
}

int
http_resp_json(struct mresp *resp, unsigned int status, cJSON *take)
{
	char *s;

	if (take == NULL)
		return -ENOMEM;
	s = cJSON_PrintUnformatted(take);
	cJSON_Delete(take);
	if (s == NULL)
		return -ENOMEM;
	free(resp->body);
	resp->body = s;
	resp->len = strlen(s);
	resp->status = status;
	resp->ctype = "application/json";
	return 0;
}

int
http_resp_empty(struct mresp *resp, unsigned int status)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	resp->status = status;
	resp->ctype = NULL;
	return 0;
}

int
http_resp_header(struct mresp *resp, const char *name, const char *value)
{
	char *n, *v;

	if (resp->nhdr == HTTP_MAX_HDRS)
		return -ENOBUFS;
	n = strdup(name);
	v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	resp->hdr[resp->nhdr].name = n;
	resp->hdr[resp->nhdr].value = v;
	resp->nhdr++;
	return 0;
}

int
http_resp_error(struct mresp *resp, const struct mreq *req, unsigned int status,
    const char *type, const char *error_code, const char *fmt, ...)
{
	cJSON *o, *e, *d;
	char msg[512];
	va_list ap;
	int r = 0;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = cJSON_CreateObject();
	e = cJSON_AddObjectToObject(o, "error");
	if (e == NULL) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	r |= json_set_str(e, "type", type);
	r |= json_set_str(e, "message", msg);
	r |= json_set_num(e, "code", status);
	r |= json_set_str(e, "request_id", req->request_id);
	if (error_code != NULL) {
		r |= json_set_str(e, "error_code", error_code);
		d = cJSON_AddObjectToObject(e, "details");
		r |= d != NULL ? json_set_str(d, "error_code", error_code)
		               : -ENOMEM;
	}
	if (status == 401)
		r |= json_set_str(e, "doc_url",
		    "https://m8tes.ai/docs/api-introduction#authentication");
	if (r < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return http_resp_json(resp, status, o);
}

int
http_resp_noroute(struct mresp *resp)
{
	static const char body[] = "{\"detail\":\"Not Found\"}";

	return http_resp_raw(resp, 404, "application/json", body,
	    sizeof(body) - 1);
}

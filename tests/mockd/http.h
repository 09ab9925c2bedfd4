/*
 * SPDX-License-Identifier: MIT
 *
 * The HTTP side of m8tes-mockd: one parsed request (struct mreq), one answer
 * (struct mresp) and the helpers that fill answers. http.c is the only user
 * of libmicrohttpd apart from the SSE writer; route modules see only these
 * two structs.
 */
#ifndef MOCKD_HTTP_H
#define MOCKD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define HTTP_MAX_BODY (32u << 20) /* request bodies past this get 413 */
#define HTTP_MAX_SEGS 16          /* deeper paths are not routed */
#define HTTP_MAX_QUERY 32         /* query parameters kept per request */
#define HTTP_MAX_HDRS 12          /* extra answer headers */

struct MHD_Connection;
struct MHD_Daemon;
struct sse_stream;

struct mreq {
	struct MHD_Connection *conn;
	char *method;
	char *raw_uri;            /* as received, path?query */
	char *raw_path;           /* raw_uri up to '?' (copy) */
	const char *raw_query;    /* after '?', "" if none */
	char *path;               /* percent-decoded raw_path */
	char *segbuf;             /* decoded path, split in place */
	char *seg[HTTP_MAX_SEGS]; /* below /api/v2/ */
	size_t nseg;
	char *qk[HTTP_MAX_QUERY]; /* decoded query */
	char *qv[HTTP_MAX_QUERY];
	size_t nq;
	uint8_t *body;
	size_t body_len;
	size_t body_cap;
	bool body_too_large;
	bool started;         /* headers seen */
	cJSON *json;          /* parsed body, or NULL */
	bool json_bad;        /* body present but not JSON */
	const char *param[4]; /* path parameters, decoded */
	char *greedy;         /* a joined greedy parameter */
	char request_id[40];
};

struct mhdr {
	char *name;
	char *value;
};

struct mresp {
	unsigned int status;
	char *body; /* malloc'ed, owned */
	size_t len;
	const char *ctype;
	struct mhdr hdr[HTTP_MAX_HDRS];
	size_t nhdr;
	bool drop;              /* close without answering */
	bool cut;               /* send the head, then cut the connection */
	struct sse_stream *sse; /* answer is an event stream */
};

/* Start the server; returns the daemon or NULL (errno set). */
struct MHD_Daemon *
http_start(const char *host, uint16_t port, uint16_t *ret_port);
void http_stop(struct MHD_Daemon *d);

/* The value of request header name (case-insensitive), or NULL. */
const char *http_header(const struct mreq *req, const char *name);

/*
 * Shut down every keep-alive connection that is between requests, so the
 * next request of each client arrives on a fresh connection. Arming a
 * fault does this: libcurl silently re-sends a request (even a POST) once
 * when a connection it reused dies without an answer, which would make
 * "reset" faults count twice.
 */
void http_drop_idle(void);

/* Every request header as a JSON object, names lowercased; NULL on ENOMEM. */
cJSON *http_headers(const struct mreq *req);

/* The decoded value of query parameter k, or NULL. */
const char *http_query(const struct mreq *req, const char *k);

/* Answer helpers: all return 0 or -ENOMEM. */
int http_resp_json(struct mresp *resp, unsigned int status, cJSON *take);
int http_resp_raw(struct mresp *resp, unsigned int status, const char *ctype,
    const void *p, size_t len);
int http_resp_empty(struct mresp *resp, unsigned int status);
int http_resp_header(struct mresp *resp, const char *name, const char *value);

/*
 * The v2 error envelope {"error":{type,message,code,request_id,...}}; when
 * error_code is set it appears both at error.error_code and in
 * error.details.error_code, as newer servers send it.
 */
int http_resp_error(struct mresp *resp, const struct mreq *req,
    unsigned int status, const char *type, const char *error_code,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* 404 {"detail":"Not Found"}: no route matched. */
int http_resp_noroute(struct mresp *resp);

#endif

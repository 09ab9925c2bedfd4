/*
 * SPDX-License-Identifier: MIT
 *
 * The smallest HTTP/1.1 client that `m8tes webhooks listen --forward-to`
 * needs: one POST to http://host[:port]/path over a plain TCP socket, with
 * a deadline, reading no more than the status line (and any interim 1xx
 * answers). No TLS, no redirects, no keep-alive: the target is a local
 * development server. The client does not link libcurl; only the daemon
 * does.
 */
#ifndef M8_CLI_HTTP_H
#define M8_CLI_HTTP_H

#include <stddef.h>

#define CLI_HTTP_HOST_MAX 256
#define CLI_HTTP_PATH_MAX 2048
#define CLI_HTTP_HEAD_MAX 8192 /* bytes of a response head we read */

struct cli_url {
	char host[CLI_HTTP_HOST_MAX]; /* name or address, IPv6 unbracketed */
	char port[6];                 /* "80" when the URL gives none */
	char path[CLI_HTTP_PATH_MAX]; /* from the first '/', query kept */
	int ipv6;                     /* host was [bracketed] */
};

/* One extra request header; values with CR or LF are refused. */
struct cli_http_header {
	const char *name;
	const char *value;
};

/*
 * Parses "http://host[:port][/path]" (host may be [IPv6]). Refuses https
 * (no TLS here), user info, empty hosts, ports outside 1..65535, and any
 * space or control character. Returns 0, or -EINVAL with err set.
 */
int cli_http_url_parse(const char *url, struct cli_url *ret, char *err,
    size_t errlen);

/*
 * Builds the request: "POST path HTTP/1.1", Host, User-Agent, Content-Type,
 * Content-Length, Connection: close, the extra headers, a blank line and
 * len bytes of body. Returns 0 and a new buffer in *ret (*ret_len bytes, NUL
 * after them), -EINVAL for a header name or value with CR, LF or (in
 * names) ':' or space, or -ENOMEM.
 */
int cli_http_request(const struct cli_url *u, const char *content_type,
    const struct cli_http_header *hdrs, size_t nhdrs, const char *body,
    size_t len, char **ret, size_t *ret_len);

/*
 * Reads the final status of a response head in buf[0..len): skips interim
 * 1xx answers (up to their blank line), then "HTTP/1.x NNN ...". Returns 1
 * and the status in *ret_status once a final status line is complete, 0
 * when more bytes are needed, -EBADMSG when this is no HTTP/1 response.
 */
int cli_http_status_parse(const char *buf, size_t len, int *ret_status);

/*
 * Connects to u (every address of the name in turn), sends req and reads
 * the response's status, all within timeout_ms. Returns 0 and the status,
 * -ETIMEDOUT, -EBADMSG for a reply that is not HTTP, a getaddrinfo failure
 * as -EHOSTUNREACH, or -errno of socket, connect, send or recv.
 */
int cli_http_post(const struct cli_url *u, const char *req, size_t len,
    int timeout_ms, int *ret_status);

#endif

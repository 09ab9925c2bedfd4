/*
 * SPDX-License-Identifier: MIT
 *
 * A one-shot HTTP/1.1 POST over TCP for forwarding webhooks to a local
 * server: URL parsing, the request text, the status line and a socket
 * with one deadline. The parts that take no socket are pure, for the unit
 * tests.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli_http.h"

static bool header_ok(const char *s, bool name);
static long long now_ms(void);
static int left_ms(long long deadline);
static int wait_for(int fd, short events, long long deadline);
static int connect_one(const struct addrinfo *ai, long long deadline);
static int connect_any(const struct cli_url *u, long long deadline);
static int send_req(int fd, const char *req, size_t len, long long deadline);
static int read_status(int fd, long long deadline, int *ret_status);
static const char *head_end(const char *p, size_t len);

int
cli_http_url_parse(const char *url, struct cli_url *ret, char *err,
    size_t errlen)
{
	const char *p, *auth_end, *host, *host_end, *port = NULL;
	size_t hlen, plen;
	long pn = 80;

	memset(ret, 0, sizeof(*ret));
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7F) {
			(void)snprintf(err, errlen,
			    "URL with a space or control character");
			return -EINVAL;
		}
	}
	if (strncasecmp(url, "https://", 8) == 0) {
		(void)snprintf(err, errlen,
		    "https is not supported (no TLS here): forward to a "
		    "local http:// URL");
		return -EINVAL;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		(void)snprintf(err, errlen,
		    "URL must start with http://, not \"%.64s\"", url);
		return -EINVAL;
	}
	host = url + 7;
	auth_end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(auth_end - host)) != NULL) {
		(void)snprintf(err, errlen, "URL with user info");
		return -EINVAL;
	}
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (host_end == NULL) {
			(void)snprintf(err, errlen, "URL: unclosed [");
			return -EINVAL;
		}
		host++;
		ret->ipv6 = 1;
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':') {
				(void)snprintf(err, errlen,
				    "URL: junk after ]");
				return -EINVAL;
			}
			port = host_end + 2;
		}
	} else {
		host_end = memchr(host, ':', (size_t)(auth_end - host));
		if (host_end != NULL)
			port = host_end + 1;
		else
			host_end = auth_end;
	}
	hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof(ret->host)) {
		(void)snprintf(err, errlen, "URL: %s host",
		    hlen == 0 ? "empty" : "too long a");
		return -EINVAL;
	}
	memcpy(ret->host, host, hlen);
	if (port != NULL) {
		char *end;

		errno = 0;
		pn = isdigit((unsigned char)*port) ? strtol(port, &end, 10)
		                                   : -1;
		if (pn < 1 || pn > 65535 || errno != 0 || end != auth_end) {
			(void)snprintf(err, errlen, "URL: bad port");
			return -EINVAL;
		}
	}
	(void)snprintf(ret->port, sizeof(ret->port), "%ld", pn);
	plen = strcspn(auth_end, "#");
	if (plen + 2 > sizeof(ret->path)) {
		(void)snprintf(err, errlen, "URL: path too long");
		return -EINVAL;
	}
	(void)snprintf(ret->path, sizeof(ret->path), "%s%.*s",
	    *auth_end == '/' ? "" : "/", (int)plen, auth_end);
	return 0;
}

/* A header name (token characters) or value (no CR, LF, NUL). */
static bool
header_ok(const char *s, bool name)
{
	if (name && *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\r' || c == '\n' ||
		    (name && (c <= 0x20 || c == ':' || c == 0x7F)))
			return false;
	}
	return true;
}

int
cli_http_request(const struct cli_url *u, const char *content_type,
    const struct cli_http_header *hdrs, size_t nhdrs, const char *body,
    size_t len, char **ret, size_t *ret_len)
{
	size_t cap = 512 + strlen(u->path) + strlen(u->host) + len, n;
	char *buf;
	int w;

	if (!header_ok(content_type, false))
		return -EINVAL;
	for (size_t i = 0; i < nhdrs; i++) {
		if (!header_ok(hdrs[i].name, true) ||
		    !header_ok(hdrs[i].value, false))
			return -EINVAL;
		cap += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
	}
	buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	w = snprintf(buf, cap,
	    "POST %s HTTP/1.1\r\n"
	    "Host: %s%s%s%s%s\r\n"
	    "User-Agent: m8tes/%s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n",
	    u->path, u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "",
	    strcmp(u->port, "80") != 0 ? ":" : "",
	    strcmp(u->port, "80") != 0 ? u->port : "", M8TESD_VERSION,
	    content_type, len);
	n = (size_t)w;
	for (size_t i = 0; i < nhdrs; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s: %s\r\n",
		    hdrs[i].name, hdrs[i].value);
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	if (len > 0)
		memcpy(buf + n, body, len);
	n += len;
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	return 0;
}

/* The first byte after the blank line ending a head, or NULL. */
static const char *
head_end(const char *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return p + i + 2;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return p + i + 3;
	}
	return NULL;
}

int
cli_http_status_parse(const char *buf, size_t len, int *ret_status)
{
	static const char proto[] = "HTTP/1.";
	const char *p = buf, *nl, *next;
	size_t left = len;
	int status;

	for (;;) {
		size_t cmp = left < sizeof(proto) - 1 ? left : sizeof(proto) - 1;

		if (memcmp(p, proto, cmp) != 0)
			return -EBADMSG;
		nl = memchr(p, '\n', left);
		if (nl == NULL)
			return left > CLI_HTTP_HEAD_MAX ? -EBADMSG : 0;
		if (nl - p < 12 || !isdigit((unsigned char)p[7]) ||
		    p[8] != ' ' || !isdigit((unsigned char)p[9]) ||
		    !isdigit((unsigned char)p[10]) ||
		    !isdigit((unsigned char)p[11]) ||
		    !(p[12] == ' ' || p[12] == '\r' || p[12] == '\n'))
			return -EBADMSG;
		status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		if (status < 100)
			return -EBADMSG;
		if (status >= 200) {
			*ret_status = status;
			return 1;
		}
		/* An interim answer: the final one follows its head. */
		next = head_end(p, left);
		if (next == NULL)
			return 0;
		left -= (size_t)(next - p);
		p = next;
		if (left == 0)
			return 0;
	}
}

static long long
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
left_ms(long long deadline)
{
	long long n = deadline - now_ms();

	return n <= 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
}

/* Waits for events on fd. Returns 0, -ETIMEDOUT or -errno. */
static int
wait_for(int fd, short events, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	do {
		n = poll(&pfd, 1, left_ms(deadline));
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* A connected non-blocking socket to ai, or -errno. */
static int
connect_one(const struct addrinfo *ai, long long deadline)
{
	socklen_t sl = sizeof(int);
	int fd, r, soerr = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	        SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd == -1)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	r = wait_for(fd, POLLOUT, deadline);
	if (r < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1) {
		r = -errno;
		goto fail;
	}
	if (soerr == 0)
		return fd;
	r = -soerr;
fail:
	(void)close(fd);
	return r;
}

static int
connect_any(const struct cli_url *u, long long deadline)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	int r;

	if (getaddrinfo(u->host, u->port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	r = -EHOSTUNREACH;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		r = connect_one(ai, deadline);
		if (r >= 0 || r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return r;
}

static int
send_req(int fd, const char *req, size_t len, long long deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, req + done, len - done, MSG_NOSIGNAL);
		int r;

		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = wait_for(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
read_status(int fd, long long deadline, int *ret_status)
{
	char buf[CLI_HTTP_HEAD_MAX + 1];
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		int r;

		if (n > 0) {
			len += (size_t)n;
			r = cli_http_status_parse(buf, len, ret_status);
			if (r != 0)
				return r > 0 ? 0 : r;
			if (len == sizeof(buf) - 1)
				return -EBADMSG;
			continue;
		}
		if (n == 0)
			return -EBADMSG;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = wait_for(fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

int
cli_http_post(const struct cli_url *u, const char *req, size_t len,
    int timeout_ms, int *ret_status)
{
	long long deadline = now_ms() + timeout_ms;
	int fd, r;

	fd = connect_any(u, deadline);
	if (fd < 0)
		return fd;
	r = send_req(fd, req, len, deadline);
	if (r == 0)
		r = read_status(fd, deadline, ret_status);
	(void)close(fd);
	return r;
}

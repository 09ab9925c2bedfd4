/*
 * SPDX-License-Identifier: MIT
 *
 * The client side of the local protocol: one AF_UNIX stream socket, a read
 * buffer bounded by PROTO_MAX_LINE, a list of the calls in flight and the
 * routing of reply lines to them by id. Descriptors passed with SCM_RIGHTS
 * are collected by the same reader, so no byte and no descriptor is lost
 * whichever function reads. Nothing here prints, logs or exits.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "libm8tes.h"

#define MAX_LINE ((size_t)PROTO_MAX_LINE)
#define BUF_INITIAL ((size_t)16 * 1024)
#define BUF_MAX (MAX_LINE + 1) /* the longest line and its newline */
#define SEND_TIMEOUT_MS 30000

struct m8c_call {
	struct m8c_conn *conn; /* NULL once the call left the list */
	LIST_ENTRY(m8c_call) entry;
	long long id;
	m8c_event_cb cb;
	void *arg;
	bool done;  /* final line seen, or failed */
	bool taken; /* reply moved out by m8c_wait */
	int err;    /* < 0: ended without a reply */
	struct m8c_reply reply;
};

struct m8c_conn {
	int fd;
	char *buf;       /* never NULL */
	size_t cap;      /* bytes allocated, at most BUF_MAX */
	size_t off;      /* first byte not consumed */
	size_t len;      /* end of the bytes read */
	size_t scan;     /* bytes after off known to hold no newline */
	size_t pending;  /* bytes of the line last returned, to drop */
	bool discarding; /* inside an over-long line: drop up to '\n' */
	bool eof;
	int wfail;             /* < 0 after a partial write: stream is broken */
	long long overlong_id; /* id sniffed from the last over-long line */
	int fds[M8C_MAX_FDS];
	size_t nfds;
	long long next_id;
	int send_timeout_ms;
	bool raw_results; /* plain results kept as text, not parsed */
	LIST_HEAD(, m8c_call) calls;
	size_t ncalls;
};

static long long deadline_after(int timeout_ms);
static int remaining_ms(long long deadline);
static int wait_fd(int fd, short events, long long deadline);
static void consume(struct m8c_conn *c);
static void keep_fds(struct m8c_conn *c, struct msghdr *mh);
static int read_some(struct m8c_conn *c, long long deadline);
static long long sniff_id(const char *p, size_t len);
static int skip_overlong(struct m8c_conn *c, long long deadline);
static int
take_line(struct m8c_conn *c, char *nl, const char **ret_line, size_t *ret_len);
static int next_line(struct m8c_conn *c, long long deadline,
    const char **ret_line, size_t *ret_len);
static struct m8c_call *find_call(struct m8c_conn *c, long long id);
static struct m8c_call *sole_call(struct m8c_conn *c);
static void unlink_call(struct m8c_call *call);
static void fail_call(struct m8c_call *call, int err);
static void fail_all(struct m8c_conn *c, int err);
static bool as_count(const cJSON *v, unsigned long long *ret);
static int parse_final(const cJSON *root, struct m8c_reply *r);
static const char *skip_ws(const char *p, const char *end);
static const char *skip_string(const char *p, const char *end);
static const char *skip_value(const char *p, const char *end);
static bool raw_member(const char *k, size_t klen, const char *v,
    const char *ve, unsigned long long *id, const char **res, size_t *rlen);
static bool raw_result(const char *line, size_t len, unsigned long long *id,
    const char **ret_p, size_t *ret_n);
static int take_raw(struct m8c_conn *c, const char *line, size_t len);
static int route_line(struct m8c_conn *c, const char *line, size_t len);
static int step(struct m8c_conn *c, long long deadline);
static int send_all(struct m8c_conn *c, const char *p, size_t len);

/* Monotonic milliseconds at which a wait of timeout_ms ends; -1: never. */
static long long
deadline_after(int timeout_ms)
{
	struct timespec ts;

	if (timeout_ms < 0)
		return -1;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

static int
remaining_ms(long long deadline)
{
	struct timespec ts;
	long long now;

	if (deadline < 0)
		return -1;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* Waits for events on fd until deadline. Returns 0, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	do {
		n = poll(&pfd, 1, remaining_ms(deadline));
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return 0;
}

int
m8c_socket_path(char *buf, size_t len)
{
	const char *env, *xdg;
	int n;

	env = secure_getenv(M8C_SOCKET_ENV);
	xdg = secure_getenv("XDG_RUNTIME_DIR");
	if (env != NULL && env[0] != '\0')
		n = snprintf(buf, len, "%s", env);
	else if (xdg != NULL && xdg[0] != '\0')
		n = snprintf(buf, len, "%s/%s", xdg, M8C_SOCKET_USER);
	else
		n = snprintf(buf, len, "%s", M8C_SOCKET_SYSTEM);
	if (n < 0 || (size_t)n >= len ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		return -ENAMETOOLONG;
	return n;
}

int
m8c_connect(const char *path, struct m8c_conn **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char def[sizeof(sa.sun_path)];
	int fd, r;

	if (path == NULL) {
		r = m8c_socket_path(def, sizeof(def));
		if (r < 0)
			return r;
		path = def;
	}
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/*
	 * A blocking connect: on a Unix socket it completes at once, or
	 * fails, unless the listener's backlog is full.
	 */
	do {
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (r == -1 && errno == EINTR);
	if (r == -1) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	return m8c_open_fd(fd, ret);
}

int
m8c_open_fd(int fd, struct m8c_conn **ret)
{
	struct m8c_conn *c;
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		int r = -errno;

		(void)close(fd);
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (c != NULL)
		c->buf = malloc(BUF_INITIAL);
	if (c == NULL || c->buf == NULL) {
		free(c);
		(void)close(fd);
		return -ENOMEM;
	}
	c->cap = BUF_INITIAL;
	c->fd = fd;
	c->next_id = 1;
	c->overlong_id = -1;
	c->send_timeout_ms = SEND_TIMEOUT_MS;
	LIST_INIT(&c->calls);
	*ret = c;
	return 0;
}

void
m8c_close(struct m8c_conn *c)
{
	if (c == NULL)
		return;
	fail_all(c, -ECONNABORTED);
	for (size_t i = 0; i < c->nfds; i++)
		(void)close(c->fds[i]);
	if (c->fd >= 0)
		(void)close(c->fd);
	free(c->buf);
	free(c);
}

int
m8c_fd(const struct m8c_conn *c)
{
	return c->fd;
}

void
m8c_set_send_timeout(struct m8c_conn *c, int timeout_ms)
{
	c->send_timeout_ms = timeout_ms;
}

/* Drops the line last returned; its pointer is invalid from here on. */
static void
consume(struct m8c_conn *c)
{
	c->off += c->pending;
	c->pending = 0;
	if (c->off == c->len)
		c->off = c->len = c->scan = 0;
}

/* Keeps the descriptors of an SCM_RIGHTS message; closes what won't fit. */
static void
keep_fds(struct m8c_conn *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			    sizeof(fd));
			if (c->nfds < M8C_MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				(void)close(fd);
		}
	}
}

/*
 * Appends what the socket has to the buffer, waiting until deadline.
 * Returns the byte count, -ETIMEDOUT, -ECONNRESET at end of stream,
 * -ENOBUFS when the buffer is full, or -errno.
 */
static int
read_some(struct m8c_conn *c, long long deadline)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * M8C_MAX_FDS)];
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;
	int r;

	consume(c);
	if (c->eof)
		return -ECONNRESET;
	if (c->off > 0 && (c->len == c->cap || c->off >= c->cap / 2)) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == c->cap) {
		size_t ncap = c->cap < BUF_INITIAL ? BUF_INITIAL : c->cap * 2;
		char *nbuf;

		if (c->cap >= BUF_MAX)
			return -ENOBUFS;
		if (ncap > BUF_MAX)
			ncap = BUF_MAX;
		nbuf = realloc(c->buf, ncap);
		if (nbuf == NULL)
			return -ENOMEM;
		c->buf = nbuf;
		c->cap = ncap;
	}
	for (;;) {
		iov = (struct iovec){c->buf + c->len, c->cap - c->len};
		mh = (struct msghdr){.msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = ctl.buf,
		    .msg_controllen = sizeof(ctl.buf)};
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = wait_fd(c->fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
	keep_fds(c, &mh);
	if (n == 0) {
		c->eof = true;
		return -ECONNRESET;
	}
	c->len += (size_t)n;
	return (int)n;
}

/*
 * The id at the start of a line the daemon wrote ({"id":N,... or
 * {"jsonrpc":"2.0","id":N,...), so that an over-long reply can still fail
 * its own call. Returns -1 when there is none.
 */
static long long
sniff_id(const char *p, size_t len)
{
	static const char rpc[] = "{\"jsonrpc\":\"2.0\",";
	static const char key[] = "\"id\":";
	long long id = 0;
	size_t i = 1;

	if (len > sizeof(rpc) - 1 && memcmp(p, rpc, sizeof(rpc) - 1) == 0)
		i = sizeof(rpc) - 1;
	else if (len == 0 || p[0] != '{')
		return -1;
	if (len - i < sizeof(key) - 1 ||
	    memcmp(p + i, key, sizeof(key) - 1) != 0)
		return -1;
	i += sizeof(key) - 1;
	if (i >= len || p[i] < '0' || p[i] > '9')
		return -1;
	for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
		if (id > (LLONG_MAX - 9) / 10)
			return -1;
		id = id * 10 + (p[i] - '0');
	}
	return id;
}

/*
 * Inside an over-long line, drops bytes up to and including its newline.
 * Returns 0 once past it, or read_some's error.
 */
static int
skip_overlong(struct m8c_conn *c, long long deadline)
{
	while (c->discarding) {
		char *nl = c->len > c->off
		    ? memchr(c->buf + c->off, '\n', c->len - c->off)
		    : NULL;
		int r;

		if (nl != NULL) {
			c->off = (size_t)(nl - c->buf) + 1;
			c->discarding = false;
			return 0;
		}
		c->off = c->len = c->scan = 0;
		r = read_some(c, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Ends the line at nl: marks it consumed at the next read, strips the
 * newline and a '\r' before it. Returns 1 for an empty line, else 0 and
 * the line.
 */
static int
take_line(struct m8c_conn *c, char *nl, const char **ret_line, size_t *ret_len)
{
	char *start = c->buf + c->off;
	size_t n = (size_t)(nl - start);

	/* The buffer holds at most BUF_MAX bytes: a line fits or overflowed. */
	assert(n <= MAX_LINE);
	c->pending = n + 1;
	c->scan = 0;
	*nl = '\0';
	if (n > 0 && start[n - 1] == '\r')
		start[--n] = '\0';
	if (n == 0)
		return 1;
	*ret_line = start;
	*ret_len = n;
	return 0;
}

/* The next non-empty line; see m8c_read_line. */
static int
next_line(struct m8c_conn *c, long long deadline, const char **ret_line,
    size_t *ret_len)
{
	for (;;) {
		size_t avail;
		char *nl;
		int r;

		consume(c);
		r = skip_overlong(c, deadline);
		if (r < 0)
			return r;
		avail = c->len - c->off;
		nl = avail > c->scan
		    ? memchr(c->buf + c->off + c->scan, '\n', avail - c->scan)
		    : NULL;
		if (nl != NULL) {
			if (take_line(c, nl, ret_line, ret_len) == 0)
				return 0;
			continue;
		}
		c->scan = avail;
		if (avail > MAX_LINE) {
			c->overlong_id = sniff_id(c->buf + c->off, avail);
			c->discarding = true;
			c->off = c->len = c->scan = 0;
			return -EMSGSIZE;
		}
		r = read_some(c, deadline);
		if (r < 0)
			return r;
	}
}

int
m8c_read_line(struct m8c_conn *c, int timeout_ms, const char **ret_line,
    size_t *ret_len)
{
	return next_line(c, deadline_after(timeout_ms), ret_line, ret_len);
}

int
m8c_recv_fd(struct m8c_conn *c, int timeout_ms, int *ret_fd)
{
	long long deadline = deadline_after(timeout_ms);

	while (c->nfds == 0) {
		int r = read_some(c, deadline);

		if (r < 0)
			return r;
	}
	*ret_fd = c->fds[0];
	c->nfds--;
	memmove(&c->fds[0], &c->fds[1], c->nfds * sizeof(c->fds[0]));
	return 0;
}

static struct m8c_call *
find_call(struct m8c_conn *c, long long id)
{
	struct m8c_call *call;

	LIST_FOREACH(call, &c->calls, entry)
		if (call->id == id)
			return call;
	return NULL;
}

/*
 * The only call in flight, or NULL. A line that cannot name its call (an
 * error about a line the daemon could not read, a reply we cannot parse)
 * can only belong to it.
 */
static struct m8c_call *
sole_call(struct m8c_conn *c)
{
	return c->ncalls == 1 ? LIST_FIRST(&c->calls) : NULL;
}

static void
unlink_call(struct m8c_call *call)
{
	if (call->conn == NULL)
		return;
	LIST_REMOVE(call, entry);
	call->conn->ncalls--;
	call->conn = NULL;
}

static void
fail_call(struct m8c_call *call, int err)
{
	call->err = err;
	call->done = true;
	unlink_call(call);
}

static void
fail_all(struct m8c_conn *c, int err)
{
	while (!LIST_EMPTY(&c->calls))
		fail_call(LIST_FIRST(&c->calls), err);
}

/*
 * A non-negative integer that fits (ids, seq): a peer's 1e300 must not
 * reach a cast.
 */
static bool
as_count(const cJSON *v, unsigned long long *ret)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(long long)d)
		return false;
	*ret = (unsigned long long)d;
	return true;
}

/*
 * Fills r from a final line; root stays the caller's. Returns 0, -EBADMSG
 * for an error without a code, -ENOENT when the line is no final one.
 */
static int
parse_final(const cJSON *root, struct m8c_reply *r)
{
	const cJSON *v, *e;

	memset(r, 0, sizeof(*r));
	v = cJSON_GetObjectItemCaseSensitive(root, "result");
	if (v != NULL) {
		r->kind = M8C_RESULT;
		r->result = v;
		return 0;
	}
	e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (e != NULL) {
		v = cJSON_GetObjectItemCaseSensitive(e, "code");
		if (!cJSON_IsString(v))
			return -EBADMSG;
		r->kind = M8C_ERROR;
		r->error.code = v->valuestring;
		v = cJSON_GetObjectItemCaseSensitive(e, "message");
		r->error.message =
		    cJSON_IsString(v) ? v->valuestring : r->error.code;
		v = cJSON_GetObjectItemCaseSensitive(e, "status");
		if (cJSON_IsNumber(v) && v->valuedouble > 0 &&
		    v->valuedouble < 1000)
			r->error.status = (int)v->valuedouble;
		v = cJSON_GetObjectItemCaseSensitive(e, "retry_after");
		r->error.retry_after = cJSON_IsNumber(v) && v->valuedouble >= 0
		    ? v->valuedouble
		    : -1;
		v = cJSON_GetObjectItemCaseSensitive(e, "retryable");
		r->error.retryable = cJSON_IsTrue(v);
		v = cJSON_GetObjectItemCaseSensitive(e, "request_id");
		r->error.request_id = cJSON_IsString(v) ? v->valuestring : NULL;
		r->error.details =
		    cJSON_GetObjectItemCaseSensitive(e, "details");
		return 0;
	}
	e = cJSON_GetObjectItemCaseSensitive(root, "lagged");
	if (e != NULL) {
		v = cJSON_GetObjectItemCaseSensitive(e, "resume_after");
		r->kind = M8C_LAGGED;
		(void)as_count(v, &r->resume_after);
		return 0;
	}
	return -ENOENT;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/*
 * Past the string opening at p; NULL if it does not end. A quote ends it
 * unless an odd number of backslashes comes before it.
 */
static const char *
skip_string(const char *p, const char *end)
{
	const char *q, *b;

	for (p++; p < end; p = q + 1) {
		q = memchr(p, '"', (size_t)(end - p));
		if (q == NULL)
			return NULL;
		for (b = q; b > p && b[-1] == '\\'; b--)
			;
		if ((q - b) % 2 == 0)
			return q + 1;
	}
	return NULL;
}

/*
 * Past the value starting at p: strings and nesting are followed, other
 * values run to the next ',', '}', ']' or blank. NULL if it does not end.
 * Not a validator: what it finds is printed, never interpreted.
 */
static const char *
skip_value(const char *p, const char *end)
{
	size_t depth = 0;

	if (p < end && *p == '"')
		return skip_string(p, end);
	if (p < end && *p != '{' && *p != '[') {
		while (p < end && strchr(",}] \t\r\n", *p) == NULL)
			p++;
		return p;
	}
	for (; p < end; p++) {
		/* Lines end in a NUL (next_line); one inside is no JSON. */
		p += strcspn(p, "\"{}[]");
		if (p >= end || *p == '\0')
			break;
		if (*p == '"') {
			p = skip_string(p, end);
			if (p == NULL)
				return NULL;
			p--;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (--depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

/* One top-level member of a plain result line; false for any other. */
static bool
raw_member(const char *k, size_t klen, const char *v, const char *ve,
    unsigned long long *id, const char **res, size_t *rlen)
{
	unsigned long long n = 0;
	const char *d;

#define KEY_IS(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
	if (KEY_IS("\"result\"")) {
		*res = v;
		*rlen = (size_t)(ve - v);
		return true;
	}
	if (KEY_IS("\"id\"")) {
		if (ve - v > 15)
			return false;
		for (d = v; d < ve; d++) {
			if (*d < '0' || *d > '9')
				return false;
			n = n * 10 + (unsigned long long)(*d - '0');
		}
		*id = n;
		return d > v;
	}
	return KEY_IS("\"cache\"") || KEY_IS("\"jsonrpc\"");
#undef KEY_IS
}

/*
 * Whether line is {"id": N, "result": ...} with at most "jsonrpc" and
 * "cache" besides: the id and the result's text.
 */
static bool
raw_result(const char *line, size_t len, unsigned long long *id,
    const char **ret_p, size_t *ret_n)
{
	const char *end = line + len, *p, *k, *v, *ve;
	const char *res = NULL;
	size_t rlen = 0;

	*id = ULLONG_MAX;
	p = skip_ws(line, end);
	if (p == end || *p != '{')
		return false;
	for (p++;;) {
		k = skip_ws(p, end);
		if (k == end || *k != '"' || (p = skip_string(k, end)) == NULL)
			return false;
		v = skip_ws(p, end);
		if (v == end || *v != ':')
			return false;
		v = skip_ws(v + 1, end);
		ve = skip_value(v, end);
		if (ve == NULL || ve == v ||
		    !raw_member(k, (size_t)(p - k), v, ve, id, &res, &rlen))
			return false;
		p = skip_ws(ve, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p == end || *p != '}')
			return false;
		break;
	}
	if (skip_ws(p + 1, end) != end || res == NULL || *id == ULLONG_MAX)
		return false;
	*ret_p = res;
	*ret_n = rlen;
	return true;
}

/* A plain result line taken raw: 1, or 0 when it is no such line. */
static int
take_raw(struct m8c_conn *c, const char *line, size_t len)
{
	struct m8c_call *call;
	unsigned long long id;
	const char *p;
	size_t n;

	if (!c->raw_results || !raw_result(line, len, &id, &p, &n))
		return 0;
	call = find_call(c, (long long)id);
	if (call == NULL)
		return 0;
	memset(&call->reply, 0, sizeof(call->reply));
	call->reply.result_text = malloc(n + 1);
	if (call->reply.result_text == NULL) {
		fail_call(call, -ENOMEM);
		return 1;
	}
	memcpy(call->reply.result_text, p, n);
	call->reply.result_text[n] = '\0';
	call->reply.result_len = n;
	call->reply.kind = M8C_RESULT;
	call->done = true;
	unlink_call(call);
	return 1;
}

void
m8c_set_raw_results(struct m8c_conn *c, bool on)
{
	c->raw_results = on;
}

/*
 * Hands one line to its call. Returns 0, or a callback's negative value.
 * Lines for no call of ours and lines of unknown shape are dropped, so a
 * newer daemon may add fields and line types.
 */
static int
route_line(struct m8c_conn *c, const char *line, size_t len)
{
	struct m8c_call *call = NULL;
	struct m8c_reply reply;
	const cJSON *idv, *ev;
	unsigned long long id;
	cJSON *root;
	int r = 0;

	if (take_raw(c, line, len))
		return 0;
	root = cJSON_ParseWithLength(line, len);
	if (!cJSON_IsObject(root)) {
		call = sole_call(c);
		if (call != NULL)
			fail_call(call, -EBADMSG);
		goto out;
	}
	idv = cJSON_GetObjectItemCaseSensitive(root, "id");
	ev = cJSON_GetObjectItemCaseSensitive(root, "event");
	if (as_count(idv, &id))
		call = find_call(c, (long long)id);
	else if ((idv == NULL || cJSON_IsNull(idv)) && ev == NULL)
		call = sole_call(c);
	if (call == NULL)
		goto out;
	if (ev != NULL) {
		struct m8c_event e = {
		    .id = call->id,
		    .event = ev,
		    .root = root,
		    .line = line,
		    .len = len,
		};

		(void)as_count(cJSON_GetObjectItemCaseSensitive(root, "seq"),
		    &e.seq);
		if (call->cb != NULL)
			r = call->cb(&e, call->arg);
		goto out;
	}
	r = parse_final(root, &reply);
	if (r < 0) {
		/* No known payload: a line type from the future. */
		if (r == -EBADMSG)
			fail_call(call, r);
		r = 0;
		goto out;
	}
	call->reply = reply;
	call->reply.root = root;
	call->done = true;
	unlink_call(call);
	return 0;
out:
	cJSON_Delete(root);
	return r;
}

/*
 * Reads one line and routes it. Returns 0, -ETIMEDOUT, a callback's value,
 * or a connection error, which has then ended every call in flight.
 */
static int
step(struct m8c_conn *c, long long deadline)
{
	const char *line;
	size_t len;
	int r;

	r = next_line(c, deadline, &line, &len);
	if (r == -EMSGSIZE) {
		struct m8c_call *call = c->overlong_id >= 0
		    ? find_call(c, c->overlong_id)
		    : sole_call(c);

		if (call != NULL)
			fail_call(call, -EMSGSIZE);
		return 0;
	}
	if (r == -ETIMEDOUT)
		return r;
	if (r < 0) {
		fail_all(c, r);
		return r;
	}
	return route_line(c, line, len);
}

/* Unread bytes from the daemon, buffered or in the socket. */
static bool
parting_words(struct m8c_conn *c)
{
	char b;

	return c->len > c->off + c->pending ||
	    recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static int
send_all(struct m8c_conn *c, const char *p, size_t len)
{
	long long deadline = deadline_after(c->send_timeout_ms);
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(c->fd, p + done, len - done,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			r = wait_fd(c->fd, POLLOUT, deadline);
		else
			r = -errno;
		if (r < 0) {
			/* Half a line on the wire: nothing may follow it. */
			if (done > 0)
				c->wfail = r;
			return r;
		}
	}
	return 0;
}

int
m8c_start(struct m8c_conn *c, const char *method, const cJSON *params,
    m8c_event_cb cb, void *arg, struct m8c_call **ret_call)
{
	struct m8c_call *call;
	cJSON *req, *ref;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (c->wfail < 0)
		return c->wfail;
	if (params != NULL && !cJSON_IsObject(params))
		return -EINVAL;
	req = cJSON_CreateObject();
	if (req == NULL)
		return -ENOMEM;
	r = -ENOMEM;
	if (cJSON_AddNumberToObject(req, "id", (double)c->next_id) == NULL ||
	    cJSON_AddStringToObject(req, "method", method) == NULL)
		goto out;
	if (params != NULL) {
		/* A reference: the caller's tree is printed, not copied. */
		ref = cJSON_CreateObjectReference(params->child);
		if (ref == NULL)
			goto out;
		if (!cJSON_AddItemToObject(req, "params", ref)) {
			cJSON_Delete(ref);
			goto out;
		}
	}
	text = cJSON_PrintUnformatted(req);
	if (text == NULL)
		goto out;
	len = strlen(text);
	if (len > MAX_LINE) {
		r = -EMSGSIZE;
		goto out;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL)
		goto out;
	/* cJSON left room for its NUL: the newline takes its place. */
	text[len] = '\n';
	r = send_all(c, text, len + 1);
	/*
	 * A daemon that refuses the connection (m8tesd.busy) says why and
	 * closes it, maybe before the request went out. When its words are
	 * there to read, the call is kept so that waiting for it reads them
	 * (a line without id). Nothing more is sent on this connection.
	 */
	if (r == -EPIPE && c->wfail == 0 && parting_words(c)) {
		c->wfail = r;
		r = 0;
	}
	if (r < 0) {
		free(call);
		goto out;
	}
	call->conn = c;
	call->id = c->next_id++;
	call->cb = cb;
	call->arg = arg;
	LIST_INSERT_HEAD(&c->calls, call, entry);
	c->ncalls++;
	*ret_call = call;
	r = 0;
out:
	/* Requests may carry secrets (auth.login): no copy stays behind. */
	if (text != NULL)
		explicit_bzero(text, len + 1);
	free(text);
	cJSON_Delete(req);
	return r;
}

long long
m8c_call_id(const struct m8c_call *call)
{
	return call->id;
}

bool
m8c_call_done(const struct m8c_call *call)
{
	return call->done;
}

int
m8c_wait(struct m8c_conn *c, struct m8c_call *call, int timeout_ms,
    struct m8c_reply *ret_reply)
{
	long long deadline = deadline_after(timeout_ms);

	while (!call->done) {
		int r = step(c, deadline);

		if (r < 0 && !call->done)
			return r;
	}
	if (call->err < 0)
		return call->err;
	if (call->taken)
		return -EALREADY;
	*ret_reply = call->reply;
	memset(&call->reply, 0, sizeof(call->reply));
	call->taken = true;
	return (int)ret_reply->kind;
}

void
m8c_call_free(struct m8c_call *call)
{
	if (call == NULL)
		return;
	unlink_call(call);
	m8c_reply_done(&call->reply);
	free(call);
}

int
m8c_call(struct m8c_conn *c, const char *method, const cJSON *params,
    int timeout_ms, m8c_event_cb cb, void *arg, struct m8c_reply *ret_reply)
{
	struct m8c_call *call;
	int r;

	r = m8c_start(c, method, params, cb, arg, &call);
	if (r < 0)
		return r;
	r = m8c_wait(c, call, timeout_ms, ret_reply);
	m8c_call_free(call);
	return r;
}

int
m8c_cancel(struct m8c_conn *c, struct m8c_call *call, int timeout_ms)
{
	struct m8c_reply reply;
	cJSON *params;
	int r;

	params = cJSON_CreateObject();
	if (params == NULL ||
	    cJSON_AddNumberToObject(params, "id", (double)call->id) == NULL) {
		cJSON_Delete(params);
		return -ENOMEM;
	}
	r = m8c_call(c, "cancel", params, timeout_ms, NULL, NULL, &reply);
	cJSON_Delete(params);
	if (r < 0)
		return r;
	r = reply.kind == M8C_RESULT ? 0 : -ESRCH;
	m8c_reply_done(&reply);
	return r;
}

int
m8c_poll(struct m8c_conn *c, int timeout_ms)
{
	long long deadline = deadline_after(timeout_ms);
	int n = 0;

	for (;;) {
		/* After the first line, only what is already there. */
		int r = step(c, n == 0 ? deadline : deadline_after(0));

		if (r == -ETIMEDOUT)
			return n;
		if (r < 0)
			return r;
		if (n < INT_MAX)
			n++;
	}
}

void
m8c_reply_done(struct m8c_reply *r)
{
	if (r == NULL)
		return;
	cJSON_Delete(r->root);
	free(r->result_text);
	memset(r, 0, sizeof(*r));
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Load generator for webhook receivers: C keep-alive connections on one
 * epoll thread, each sending one signed delivery at a time
 * (upstream-api.md §9.2: Webhook-Id, Webhook-Timestamp,
 * Webhook-Signature: v1=<hex HMAC-SHA256(secret, id.ts.body)>) with a
 * distinct Webhook-Id per request, for SECS seconds after WARMUP seconds;
 * then it waits for the requests in flight and prints one line:
 *
 *   ok_per_s=N ok=N non2xx=N errors=N p50_us=N p90_us=N p99_us=N
 *   p999_us=N max_us=N conns=C secs=S body=B total_ok=N
 *
 * ok counts 2xx answers to requests sent and answered inside the measured
 * window, total_ok all of them (warm-up and drain too); latencies are from
 * the request's first write to the last byte of its answer.
 *
 * usage: bench-webhook-load HOST PORT SECRET CONNS SECS [WARMUP [BODY]]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define MAX_CONNS 1024
#define REQ_MAX 16384
#define RESP_MAX 8192

struct conn {
	int fd;
	unsigned idx;
	char req[REQ_MAX];
	size_t req_len, req_off;
	char resp[RESP_MAX];
	size_t resp_len;
	uint64_t t_start;
	uint64_t n;
	bool busy;
};

static const char *secret;
static const char *body;
static size_t body_len;
static char run_tag[32];
static struct sockaddr_in addr;
static int ep;

static uint32_t *lat;
static size_t nlat, caplat;
static unsigned long long ok_count, non2xx, errors, total_ok;
static uint64_t win_start, win_end;
static bool stopping;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
build_request(struct conn *c)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char id[96], ts[24], hex[2 * sizeof(mac) + 1];
	crypto_auth_hmacsha256_state st;
	int n;

	(void)snprintf(id, sizeof(id), "msg_%s_%u_%llu", run_tag, c->idx,
	    (unsigned long long)c->n++);
	(void)snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret,
	    strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)id,
	    strlen(id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts,
	    strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body,
	    body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	n = snprintf(c->req, sizeof(c->req),
	    "POST / HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\n"
	    "User-Agent: m8tes-webhooks/1.0 (bench)\r\n"
	    "Content-Type: application/json\r\n"
	    "Webhook-Id: %s\r\n"
	    "Webhook-Timestamp: %s\r\n"
	    "Webhook-Signature: v1=%s\r\n"
	    "Content-Length: %zu\r\n"
	    "\r\n",
	    id, ts, hex, body_len);
	if (n < 0 || (size_t)n + body_len > sizeof(c->req)) {
		(void)fprintf(stderr, "request too large\n");
		exit(2);
	}
	memcpy(c->req + n, body, body_len);
	c->req_len = (size_t)n + body_len;
	c->req_off = 0;
	c->resp_len = 0;
}

static void conn_open(struct conn *c);

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		(void)close(c->fd);
	}
	c->fd = -1;
	c->busy = false;
}

static void
send_more(struct conn *c)
{
	while (c->req_off < c->req_len) {
		ssize_t w = write(c->fd, c->req + c->req_off,
		    c->req_len - c->req_off);

		if (w < 0) {
			if (errno == EAGAIN)
				return;
			errors++;
			conn_close(c);
			if (!stopping)
				conn_open(c);
			return;
		}
		c->req_off += (size_t)w;
	}
}

static void
start_request(struct conn *c)
{
	build_request(c);
	c->busy = true;
	c->t_start = now_ns();
	send_more(c);
}

static void
conn_open(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		exit(1);
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 &&
	    errno != EINPROGRESS) {
		errors++;
		(void)close(c->fd);
		c->fd = -1;
		return;
	}
	ev.data.ptr = c;
	(void)epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	start_request(c);
}

static void
record(uint64_t t_start, uint64_t t_end, int status)
{
	if (status >= 200 && status <= 299)
		total_ok++;
	if (t_start < win_start || t_end > win_end)
		return;
	if (status < 200 || status > 299) {
		non2xx++;
		return;
	}
	ok_count++;
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 1 << 20;
		lat = realloc(lat, caplat * sizeof(*lat));
		if (lat == NULL)
			exit(1);
	}
	lat[nlat++] = (uint32_t)((t_end - t_start) / 1000);
}

/* A complete answer in c->resp? Returns its length, 0 if not yet, -1. */
static long
parse_answer(struct conn *c, int *status, bool *close_after)
{
	char *end, *p;
	size_t head;
	long clen = 0;

	c->resp[c->resp_len] = '\0';
	end = strstr(c->resp, "\r\n\r\n");
	if (end == NULL)
		return c->resp_len >= RESP_MAX - 1 ? -1 : 0;
	head = (size_t)(end - c->resp) + 4;
	if (strncmp(c->resp, "HTTP/1.", 7) != 0)
		return -1;
	*status = atoi(c->resp + 9);
	*close_after = false;
	for (p = strstr(c->resp, "\r\n"); p != NULL && p < end;
	    p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			clen = strtol(p + 17, NULL, 10);
		else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
			*close_after = true;
	}
	if (c->resp_len < head + (size_t)clen)
		return 0;
	return (long)(head + (size_t)clen);
}

static void
on_readable(struct conn *c)
{
	for (;;) {
		ssize_t r = read(c->fd, c->resp + c->resp_len,
		    RESP_MAX - 1 - c->resp_len);
		int status = 0;
		bool close_after = false;
		long n;

		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			if (c->busy)
				errors++;
			conn_close(c);
			if (!stopping)
				conn_open(c);
			return;
		}
		c->resp_len += (size_t)r;
		n = parse_answer(c, &status, &close_after);
		if (n < 0) {
			errors++;
			conn_close(c);
			if (!stopping)
				conn_open(c);
			return;
		}
		if (n == 0)
			continue;
		record(c->t_start, now_ns(), status);
		c->busy = false;
		if (close_after) {
			conn_close(c);
			if (!stopping)
				conn_open(c);
			return;
		}
		if (!stopping)
			start_request(c);
		return;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t
pct(double p)
{
	size_t i;

	if (nlat == 0)
		return 0;
	i = (size_t)(p * (double)(nlat - 1) + 0.5);
	return lat[i];
}

int
main(int argc, char **argv)
{
	static char defbody[1024];
	struct conn *conns;
	unsigned nconns;
	double secs, warmup = 1;
	struct epoll_event evs[256];
	uint64_t t0, drain_end;

	if (argc < 6) {
		(void)fprintf(stderr, "usage: %s HOST PORT SECRET CONNS SECS "
				      "[WARMUP [BODY]]\n",
		    argv[0]);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		(void)fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	secret = argv[3];
	nconns = (unsigned)atoi(argv[4]);
	secs = atof(argv[5]);
	if (argc > 6)
		warmup = atof(argv[6]);
	if (argc > 7) {
		body = argv[7];
	} else {
		(void)snprintf(defbody, sizeof(defbody),
		    "{\"event\":\"run.completed\",\"run_id\":4242,\"data\":{"
		    "\"status\":\"completed\",\"teammate_id\":17,\"output\":"
		    "\"The quarterly report is ready; 3 files attached.\","
		    "\"usage\":{\"input_tokens\":1234,\"output_tokens\":567},"
		    "\"created_at\":\"2026-01-01T00:00:00Z\"}}");
		body = defbody;
	}
	body_len = strlen(body);
	if (nconns < 1 || nconns > MAX_CONNS || secs <= 0) {
		(void)fprintf(stderr, "bad CONNS or SECS\n");
		return 2;
	}
	(void)snprintf(run_tag, sizeof(run_tag), "%lx%x", (long)time(NULL),
	    (unsigned)getpid());
	ep = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc(nconns, sizeof(*conns));
	if (ep < 0 || conns == NULL)
		return 1;
	t0 = now_ns();
	win_start = t0 + (uint64_t)(warmup * 1e9);
	win_end = win_start + (uint64_t)(secs * 1e9);
	for (unsigned i = 0; i < nconns; i++) {
		conns[i].idx = i;
		conns[i].fd = -1;
		conn_open(&conns[i]);
	}
	drain_end = win_end + 5000000000ull;
	for (;;) {
		uint64_t now = now_ns();
		bool busy = false;
		int n;

		if (now >= win_end && !stopping)
			stopping = true;
		if (stopping) {
			for (unsigned i = 0; i < nconns; i++)
				busy |= conns[i].busy;
			if (!busy || now >= drain_end)
				break;
		}
		n = epoll_wait(ep, evs, 256, 10);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd < 0)
				continue;
			if (evs[i].events & (EPOLLERR | EPOLLHUP) &&
			    !(evs[i].events & EPOLLIN)) {
				if (c->busy)
					errors++;
				conn_close(c);
				if (!stopping)
					conn_open(c);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				send_more(c);
			if (c->fd >= 0 && (evs[i].events & EPOLLIN))
				on_readable(c);
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	(void)printf("ok_per_s=%.0f ok=%llu non2xx=%llu errors=%llu "
		     "p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u "
		     "conns=%u secs=%g body=%zu total_ok=%llu\n",
	    (double)ok_count / secs, ok_count, non2xx, errors, pct(0.50),
	    pct(0.90), pct(0.99), pct(0.999), nlat ? lat[nlat - 1] : 0,
	    nconns, secs, body_len, total_ok);
	for (unsigned i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	free(conns);
	free(lat);
	return 0;
}

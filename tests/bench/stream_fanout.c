/*
 * SPDX-License-Identifier: MIT
 *
 * The bare fan-out baseline of bench_streams.sh: one process that reads a
 * run's event stream from the mock (GET /runs/{id}/stream, HTTP/1.0, so
 * the body is the raw stream) and writes each event to SUBS Unix socket
 * subscribers as the line m8tesd would send, {"id":N,"seq":S,"event":...},
 * coalesced per read and written without blocking (epoll for the rest);
 * at the run's done event every subscriber gets a final result line and
 * the process exits once all is written. No JSON parsing, no log, no
 * accumulation, no per-subscriber limits: the floor m8tesd is measured
 * against.
 *
 * usage: bench-stream-fanout SOCKET SUBS PORT RUN_ID API_KEY
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct out {
	int fd;
	char *buf;
	size_t off, len, cap;
	int armed; /* waiting for EPOLLOUT */
	char head[32]; /* {"id":N,"seq": */
	size_t hlen;
};

static struct out *subs;
static int nsubs, ep;

static void
put(struct out *o, const char *p, size_t n)
{
	if (o->off > 0 && o->off == o->len)
		o->off = o->len = 0;
	if (o->len + n > o->cap) {
		char *bigger = realloc(o->buf, (o->len + n) * 2);

		if (bigger == NULL) {
			perror("realloc");
			exit(1);
		}
		o->buf = bigger;
		o->cap = (o->len + n) * 2;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* Writes what o's reader takes now; waits for EPOLLOUT for the rest. */
static void
write_some(struct out *o, int i)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};

	while (o->off < o->len) {
		ssize_t w = write(o->fd, o->buf + o->off, o->len - o->off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				perror("write");
				exit(1);
			}
			break;
		}
		o->off += (size_t)w;
	}
	if (o->off < o->len && !o->armed) {
		epoll_ctl(ep, EPOLL_CTL_ADD, o->fd, &ev);
		o->armed = 1;
	} else if (o->off == o->len && o->armed) {
		epoll_ctl(ep, EPOLL_CTL_DEL, o->fd, NULL);
		o->armed = 0;
	}
}

static void
flush_all(void)
{
	for (int i = 0; i < nsubs; i++)
		write_some(&subs[i], i);
}

static int
pending(void)
{
	for (int i = 0; i < nsubs; i++)
		if (subs[i].off < subs[i].len)
			return 1;
	return 0;
}

/* One frame's data: an event line for every subscriber. Returns 1 at done. */
static int
event(const char *data, size_t n, unsigned long long seq)
{
	static const char done_ev[] = "{\"type\":\"done\"}";
	char mid[48];
	int m;

	if (n == 6 && memcmp(data, "[DONE]", 6) == 0) {
		data = done_ev;
		n = sizeof(done_ev) - 1;
	}
	/* The seq part is the same for everyone: formatted once. */
	m = snprintf(mid, sizeof(mid), "%llu,\"event\":", seq);
	for (int i = 0; i < nsubs; i++) {
		put(&subs[i], subs[i].head, subs[i].hlen);
		put(&subs[i], mid, (size_t)m);
		put(&subs[i], data, n);
		put(&subs[i], "}\n", 2);
	}
	return memmem(data, n, "\"type\":\"done\"", 13) != NULL;
}

static int
listen_on(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	(void)unlink(path);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, 4096) == -1) {
		perror("listen");
		exit(1);
	}
	return fd;
}

static int
dial_mock(int port, long long run, const char *key)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	char req[512];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("connect");
		exit(1);
	}
	n = snprintf(req, sizeof(req),
	    "GET /api/v2/runs/%lld/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	    "Authorization: Bearer %s\r\n\r\n",
	    run, key);
	if (write(fd, req, (size_t)n) != n) {
		perror("write");
		exit(1);
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static char in[1 << 16];
	char *acc = NULL;
	size_t alen = 0, acap = 0, pos;
	unsigned long long seq = 0;
	int lfd, mfd, body = 0, done = 0;
	struct rlimit rl;

	if (argc != 6) {
		fprintf(stderr, "usage: bench-stream-fanout SOCKET SUBS PORT "
				"RUN_ID API_KEY\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	nsubs = atoi(argv[2]);
	subs = calloc((size_t)nsubs, sizeof(*subs));
	lfd = listen_on(argv[1]);
	for (int i = 0; i < nsubs; i++) {
		subs[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		subs[i].hlen = (size_t)snprintf(subs[i].head,
		    sizeof(subs[i].head), "{\"id\":%d,\"seq\":", i + 1);
		if (subs[i].fd == -1) {
			perror("accept");
			return 1;
		}
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < nsubs; i++)
		fcntl(subs[i].fd, F_SETFL, O_NONBLOCK);
	mfd = dial_mock(atoi(argv[3]), atoll(argv[4]), argv[5]);
	{
		struct epoll_event ev = {.events = EPOLLIN,
		    .data.u32 = UINT32_MAX};

		epoll_ctl(ep, EPOLL_CTL_ADD, mfd, &ev);
	}
	while (!done) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1), readable = 0;
		ssize_t got;

		for (int j = 0; j < k; j++) {
			if (evs[j].data.u32 == UINT32_MAX)
				readable = 1;
			else
				write_some(&subs[evs[j].data.u32],
				    (int)evs[j].data.u32);
		}
		if (!readable)
			continue;
		got = read(mfd, in, sizeof(in));
		if (got <= 0)
			break;
		if (alen + (size_t)got > acap) {
			char *bigger;

			acap = (alen + (size_t)got) * 2;
			bigger = realloc(acc, acap);
			if (bigger == NULL) {
				perror("realloc");
				return 1;
			}
			acc = bigger;
		}
		memcpy(acc + alen, in, (size_t)got);
		alen += (size_t)got;
		pos = 0;
		if (!body) {
			char *e = memmem(acc, alen, "\r\n\r\n", 4);

			if (e == NULL)
				continue;
			pos = (size_t)(e - acc) + 4;
			body = 1;
		}
		/* Frames end with a blank line; data lines start "data: ". */
		for (;;) {
			char *end = memmem(acc + pos, alen - pos, "\n\n", 2);
			char *p = acc + pos;

			if (end == NULL)
				break;
			pos = (size_t)(end - acc) + 2;
			if (end - p > 6 && memcmp(p, "data: ", 6) == 0 &&
			    event(p + 6, (size_t)(end - p - 6), ++seq)) {
				done = 1;
				break;
			}
		}
		memmove(acc, acc + pos, alen - pos);
		alen -= pos;
		flush_all();
	}
	for (int i = 0; i < nsubs; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line),
		    "{\"id\":%d,\"result\":{}}\n", i + 1);

		put(&subs[i], line, (size_t)n);
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, mfd, NULL);
	flush_all();
	while (pending()) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);

		for (int j = 0; j < k; j++)
			write_some(&subs[evs[j].data.u32],
			    (int)evs[j].data.u32);
	}
	return 0;
}

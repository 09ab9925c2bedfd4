/*
 * SPDX-License-Identifier: MIT
 *
 * Subscribers of one run's stream, for bench_streams.sh: SUBS connections
 * on a Unix socket, read by one epoll loop. Against m8tesd each sends
 * runs.stream for the run; against the bare fan-out baseline
 * (bench-stream-fanout) nothing is sent. Once every subscriber has seen
 * the run's awaiting_approval event (the run waits at a gate until the
 * bench approves it), READY_FILE is created. Every text-delta event
 * carries the mock's emit time ("t_us", CLOCK_MONOTONIC, [stamp] marker):
 * the loader records emit-to-read latency and counts deliveries from the
 * first text delta to the last subscriber's final line. STALL more
 * connections send runs.stream and are never read. Prints one line:
 * "subs= events= deliveries= secs= events_per_s= deliveries_per_s=
 *  p50_us= p99_us= max_us= lagged= incomplete=".
 *
 * usage: bench-stream-load SOCKET SUBS RUN_ID READY_FILE [baseline] [STALL]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CARRY 4096 /* first size of a subscriber's partial-line buffer */
#define HIST_US 1000000      /* latency histogram: 1 us buckets up to 1 s */
#define TIMEOUT_S 120

struct sub {
	int fd;
	char *carry; /* a partial line */
	size_t clen, ccap;
	int ready;   /* saw awaiting_approval */
	int done;    /* final line read */
	unsigned long long deltas;
};

static unsigned long long hist[HIST_US + 1];

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < 200; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			perror("socket");
			exit(1);
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(10000); /* the listener's backlog is full: again */
	}
	perror("connect");
	exit(1);
}

/* Appends n bytes to s's partial line (a result line may be long). */
static void
carry(struct sub *s, const char *p, size_t n)
{
	if (s->clen + n > s->ccap) {
		char *bigger = realloc(s->carry, (s->clen + n) * 2);

		if (bigger == NULL) {
			perror("realloc");
			exit(1);
		}
		s->carry = bigger;
		s->ccap = (s->clen + n) * 2;
	}
	memcpy(s->carry + s->clen, p, n);
	s->clen += n;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror("write");
			exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

/*
 * One complete line of s; counts and times it. Lines are scanned only
 * where the protocol puts things ({"id":N,"seq":S,"event":{"t_us":T,
 * "type":...) so the loader costs little per line.
 */
static void
on_line(struct sub *s, const char *p, size_t n, uint64_t t, int *ret_final,
    int *ret_lagged, int *ret_delta)
{
	const char *e = memmem(p, n < 48 ? n : 48, ",\"event\":", 9);
	char *q;
	uint64_t emit;

	*ret_final = *ret_lagged = *ret_delta = 0;
	if (e == NULL) {
		*ret_final = 1;
		*ret_lagged = memmem(p, n, "\"lagged\"", 8) != NULL;
		return;
	}
	if (!s->ready && memmem(p, n, "\"awaiting_approval\"", 19) != NULL)
		s->ready = 1;
	e += 9;
	if ((size_t)(p + n - e) < 9 || memcmp(e, "{\"t_us\":", 8) != 0)
		return;
	emit = strtoull(e + 8, &q, 10);
	if ((size_t)(p + n - q) < 20 ||
	    memcmp(q, ",\"type\":\"text-delta\"", 20) != 0)
		return;
	*ret_delta = 1;
	s->deltas++;
	emit = t > emit ? t - emit : 0;
	hist[emit > HIST_US ? HIST_US : emit]++;
}

static uint64_t
percentile(unsigned long long total, double q)
{
	unsigned long long want = (unsigned long long)(total * q), seen = 0;

	for (uint64_t i = 0; i <= HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i;
	}
	return HIST_US;
}

static uint64_t
max_bucket(void)
{
	for (uint64_t i = HIST_US + 1; i > 0; i--)
		if (hist[i - 1] > 0)
			return i - 1;
	return 0;
}

int
main(int argc, char **argv)
{
	int nsubs, stall = 0, baseline = 0, ep, nready = 0, ndone = 0;
	int lagged = 0, wrote_ready = 0;
	unsigned long long deliveries = 0, samples = 0, maxd = 0;
	uint64_t t_first = 0, t_last = 0, deadline;
	const char *path, *ready;
	long long run;
	struct sub *subs;
	static char buf[1 << 16];

	if (argc < 5) {
		fprintf(stderr, "usage: bench-stream-load SOCKET SUBS RUN_ID "
				"READY_FILE [baseline] [STALL]\n");
		return 2;
	}
	path = argv[1];
	nsubs = atoi(argv[2]);
	run = atoll(argv[3]);
	ready = argv[4];
	baseline = argc > 5 && strcmp(argv[5], "baseline") == 0;
	if (argc > 6)
		stall = atoi(argv[6]);
	raise_nofile();
	subs = calloc((size_t)nsubs, sizeof(*subs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < nsubs; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		char req[160];
		int n;

		subs[i].fd = dial(path);
		subs[i].carry = malloc(CARRY);
		subs[i].ccap = CARRY;
		if (!baseline) {
			n = snprintf(req, sizeof(req),
			    "{\"id\":%d,\"method\":\"runs.stream\",\"params\":"
			    "{\"run_id\":%lld}}\n",
			    i + 1, run);
			send_all(subs[i].fd, req, (size_t)n);
		}
		fcntl(subs[i].fd, F_SETFL, O_NONBLOCK);
		epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
	}
	for (int i = 0; i < stall; i++) {
		char req[160];
		int fd = dial(path);
		int n = snprintf(req, sizeof(req),
		    "{\"id\":\"stalled\",\"method\":\"runs.stream\",\"params\":"
		    "{\"run_id\":%lld}}\n",
		    run);

		send_all(fd, req, (size_t)n); /* and never read: fd kept */
	}
	deadline = now_us() + (uint64_t)TIMEOUT_S * 1000000;
	while (ndone < nsubs && now_us() < deadline) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 1000);

		for (int j = 0; j < k; j++) {
			struct sub *s = &subs[evs[j].data.u32];
			ssize_t got = read(s->fd, buf, sizeof(buf));
			uint64_t t = now_us();
			size_t off = 0;

			if (got <= 0) {
				if (got < 0 && errno == EAGAIN)
					continue;
				epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				if (!s->done) {
					s->done = 1;
					ndone++;
				}
				continue;
			}
			while (off < (size_t)got) {
				char *nl = memchr(buf + off, '\n',
				    (size_t)got - off);
				size_t n = nl ? (size_t)(nl - (buf + off)) :
						(size_t)got - off;
				int fin, lag, delta;

				if (nl == NULL) {
					carry(s, buf + off, n);
					break;
				}
				if (s->clen > 0) {
					carry(s, buf + off, n);
					on_line(s, s->carry, s->clen, t, &fin,
					    &lag, &delta);
					s->clen = 0;
				} else {
					on_line(s, buf + off, n, t, &fin, &lag,
					    &delta);
				}
				off += n + 1;
				if (delta) {
					deliveries++;
					samples++;
					if (t_first == 0)
						t_first = t;
				}
				if (fin && !s->done) {
					s->done = 1;
					ndone++;
					lagged += lag;
					t_last = t;
				}
			}
			if (s->ready == 1) {
				s->ready = 2;
				nready++;
			}
		}
		if (!wrote_ready && nready == nsubs) {
			FILE *f = fopen(ready, "w");

			if (f != NULL)
				fclose(f);
			wrote_ready = 1;
		}
	}
	for (int i = 0; i < nsubs; i++)
		if (subs[i].deltas > maxd)
			maxd = subs[i].deltas;
	{
		double secs = t_last > t_first ? (t_last - t_first) / 1e6 : 0;
		unsigned long long total = 0;

		for (uint64_t i = 0; i <= HIST_US; i++)
			total += hist[i];
		printf("subs=%d events=%llu deliveries=%llu secs=%.3f "
		       "events_per_s=%.0f deliveries_per_s=%.0f p50_us=%llu "
		       "p99_us=%llu max_us=%llu lagged=%d incomplete=%d\n",
		    nsubs, maxd, deliveries, secs,
		    secs > 0 ? maxd / secs : 0, secs > 0 ? deliveries / secs : 0,
		    (unsigned long long)percentile(total, 0.50),
		    (unsigned long long)percentile(total, 0.99),
		    (unsigned long long)max_bucket(),
		    lagged, nsubs - ndone);
	}
	(void)samples;
	return ndone == nsubs ? 0 : 1;
}

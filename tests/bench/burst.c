/*
 * SPDX-License-Identifier: MIT
 *
 * N concurrent identical calls: opens N connections to a Unix socket,
 * then sends one request line on each (all before reading anything), and
 * reads one reply line from each. Prints "calls=N results=N errors=N
 * miss=N hit=N stale=N bypass=N ms=N" (how the replies say they were
 * served, and the wall time from the first send to the last reply).
 *
 * usage: bench-burst SOCKET N LINE
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 10000
#define TAIL 64 /* bytes of a reply kept: its "cache" field is at the end */

struct conn {
	int fd;
	char tail[TAIL + 1];
	size_t ntail;
	int done;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* Keeps the last TAIL bytes seen before the newline; 1 once it came. */
static int
feed(struct conn *c, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	size_t len = nl != NULL ? (size_t)(nl - p) : n;

	if (len >= TAIL) {
		memcpy(c->tail, p + len - TAIL, TAIL);
		c->ntail = TAIL;
	} else {
		size_t keep = c->ntail + len > TAIL ? TAIL - len : c->ntail;

		memmove(c->tail, c->tail + c->ntail - keep, keep);
		memcpy(c->tail + keep, p, len);
		c->ntail = keep + len;
	}
	c->tail[c->ntail] = '\0';
	return nl != NULL;
}

int
main(int argc, char **argv)
{
	static struct conn conns[MAX_CONNS];
	static struct pollfd pfd[MAX_CONNS];
	unsigned results = 0, errors = 0, miss = 0, hit = 0, stale = 0;
	unsigned bypass = 0;
	char line[65536], buf[65536];
	size_t len;
	double t0;
	int n, left;

	if (argc != 4 || (n = atoi(argv[2])) < 1 || n > MAX_CONNS ||
	    strlen(argv[3]) + 2 > sizeof(line)) {
		fprintf(stderr, "usage: bench-burst SOCKET N LINE\n");
		return 2;
	}
	len = (size_t)snprintf(line, sizeof(line), "%s\n", argv[3]);
	for (int i = 0; i < n; i++)
		conns[i].fd = dial(argv[1]);
	t0 = now_ms();
	for (int i = 0; i < n; i++)
		if (write(conns[i].fd, line, len) != (ssize_t)len) {
			perror("write");
			return 1;
		}
	for (left = n; left > 0;) {
		int k = 0;

		for (int i = 0; i < n; i++)
			if (!conns[i].done)
				pfd[k++] = (struct pollfd){.fd = conns[i].fd,
				    .events = POLLIN};
		if (poll(pfd, (nfds_t)k, 30000) <= 0) {
			fprintf(stderr, "bench-burst: no reply for 30 s\n");
			return 1;
		}
		for (int j = 0, i = 0; j < k; j++) {
			ssize_t r;

			if (pfd[j].revents == 0)
				continue;
			while (conns[i].fd != pfd[j].fd)
				i++;
			r = read(pfd[j].fd, buf, sizeof(buf));
			if (r <= 0) {
				fprintf(stderr,
				    "bench-burst: connection "
				    "closed early\n");
				return 1;
			}
			if (!feed(&conns[i], buf, (size_t)r))
				continue;
			conns[i].done = 1;
			left--;
			close(conns[i].fd);
		}
	}
	for (int i = 0; i < n; i++) {
		const char *t = conns[i].tail;

		if (strstr(t, "\"error\":") != NULL ||
		    strstr(t, "\"retryable\":") != NULL)
			errors++;
		else
			results++;
		miss += strstr(t, "\"cache\":\"miss\"") != NULL;
		hit += strstr(t, "\"cache\":\"hit\"") != NULL;
		stale += strstr(t, "\"cache\":\"stale\"") != NULL;
		bypass += strstr(t, "\"cache\":\"bypass\"") != NULL;
	}
	printf("calls=%d results=%u errors=%u miss=%u hit=%u stale=%u "
	       "bypass=%u ms=%.0f\n",
	    n, results, errors, miss, hit, stale, bypass, now_ms() - t0);
	return 0;
}

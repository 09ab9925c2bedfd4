/*
 * SPDX-License-Identifier: MIT
 *
 * Round trips per second over a Unix socket: N connections (one thread
 * each) send one request line, wait for one reply line, and repeat for the
 * given time. Prints "rtt_per_s=<n> p50_us=<n> p99_us=<n>".
 *
 * usage: bench-ping SOCKET CLIENTS SECONDS [LINE]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

static const char *path, *line = "{\"id\":1,\"method\":\"daemon.ping\"}\n";
static double seconds;
static unsigned *samples; /* microseconds */
static size_t nsamples;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker(void *arg)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(line), local = 0;
	unsigned *mine = malloc(sizeof(unsigned) * 200000);
	char buf[65536];
	double end;
	int fd;

	(void)arg;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("connect");
		exit(1);
	}
	end = now() + seconds;
	while (now() < end) {
		double t0 = now();
		ssize_t got = 0;

		if (write(fd, line, len) != (ssize_t)len)
			break;
		for (;;) {
			ssize_t r = read(fd, buf + got, sizeof(buf) - (size_t)got);

			if (r <= 0)
				goto out;
			got += r;
			if (buf[got - 1] == '\n')
				break;
		}
		if (local < 200000)
			mine[local++] = (unsigned)((now() - t0) * 1e6);
	}
out:
	close(fd);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < local && nsamples < MAX_SAMPLES; i++)
		samples[nsamples++] = mine[i];
	pthread_mutex_unlock(&lock);
	free(mine);
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	pthread_t th[1024];
	int n;

	if (argc < 4) {
		fprintf(stderr, "usage: bench-ping SOCKET CLIENTS SECONDS "
				"[LINE]\n");
		return 2;
	}
	path = argv[1];
	n = atoi(argv[2]);
	seconds = atof(argv[3]);
	if (argc > 4) {
		char *l = malloc(strlen(argv[4]) + 2);

		snprintf(l, strlen(argv[4]) + 2, "%s\n", argv[4]);
		line = l;
	}
	if (n < 1 || n > 1024)
		return 2;
	samples = malloc(sizeof(unsigned) * MAX_SAMPLES);
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	qsort(samples, nsamples, sizeof(unsigned), cmp);
	printf("rtt_per_s=%.0f p50_us=%u p99_us=%u\n",
	    (double)nsamples / seconds,
	    nsamples ? samples[nsamples / 2] : 0,
	    nsamples ? samples[nsamples * 99 / 100] : 0);
	return 0;
}

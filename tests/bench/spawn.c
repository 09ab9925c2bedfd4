/*
 * SPDX-License-Identifier: MIT
 *
 * Whole-process timing of two commands, taking turns: runs A, then B,
 * RUNS times each (after a few warm-up turns), each from posix_spawn to
 * its exit, with stdin, stdout and stderr on /dev/null, and prints the
 * medians: "a_ms=<median> b_ms=<median> ratio=<b/a> runs=N". Taking turns
 * means that a change in the machine's load falls on both commands alike.
 * A command that fails (exit status not 0) fails the benchmark.
 *
 * usage: bench-spawn RUNS CMD_A [ARGS...] -- CMD_B [ARGS...]
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 10
#define MAX_RUNS 100000

extern char **environ;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv once; its wall time in ms, or < 0 when it failed. */
static double
run(char **argv, posix_spawn_file_actions_t *fa)
{
	double t0 = now_ms();
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, argv[0], fa, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -1;
	return now_ms() - t0;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;
	char **a, **b = NULL;
	double *ta, *tb;
	int runs, i;

	runs = argc > 1 ? atoi(argv[1]) : 0;
	for (i = 2; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			argv[i] = NULL;
			b = &argv[i + 1];
			break;
		}
	a = &argv[2];
	if (runs < 1 || runs > MAX_RUNS || b == NULL || a[0] == NULL ||
	    b[0] == NULL) {
		fprintf(stderr,
		    "usage: bench-spawn RUNS CMD_A [ARGS...] -- "
		    "CMD_B [ARGS...]\n");
		return 2;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	ta = calloc((size_t)runs, sizeof(*ta));
	tb = calloc((size_t)runs, sizeof(*tb));
	if (ta == NULL || tb == NULL)
		return 1;
	for (i = -WARMUP; i < runs; i++) {
		double x = run(a, &fa), y = run(b, &fa);

		if (x < 0 || y < 0) {
			fprintf(stderr, "bench-spawn: %s failed\n",
			    x < 0 ? a[0] : b[0]);
			return 1;
		}
		if (i >= 0) {
			ta[i] = x;
			tb[i] = y;
		}
	}
	{
		double ma = median(ta, runs), mb = median(tb, runs);

		printf("a_ms=%.3f b_ms=%.3f ratio=%.2f runs=%d\n", ma, mb,
		    mb / ma, runs);
	}
	return 0;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * The event loop: timer order, cancellation, fd events, deletion from
 * inside callbacks, signals and hooks.
 */
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "t.h"

static char order[16];
static char tags[] = "abcxv";
static size_t norder;
static struct loop_timer *victim;

static void
mark_cb(struct loop *loop, void *arg)
{
	(void)loop;
	order[norder++] = *(const char *)arg;
}

static void
stop_cb(struct loop *loop, void *arg)
{
	(void)arg;
	loop_stop(loop);
}

static void
kill_victim_cb(struct loop *loop, void *arg)
{
	(void)arg;
	loop_timer_del(loop, victim);
	victim = NULL;
}

TEST(timers)
{
	struct loop *loop;
	struct loop_timer *t;

	ASSERT_OK(loop_new(&loop));
	norder = 0;
	ASSERT_OK(loop_timer_add(loop, 30, mark_cb, &tags[2], NULL));
	ASSERT_OK(loop_timer_add(loop, 10, mark_cb, &tags[0], NULL));
	ASSERT_OK(loop_timer_add(loop, 10, mark_cb, &tags[1], NULL));
	ASSERT_OK(loop_timer_add(loop, 20, mark_cb, &tags[3], &t));
	loop_timer_del(loop, t);
	ASSERT_OK(loop_timer_add(loop, 5, kill_victim_cb, NULL, NULL));
	ASSERT_OK(loop_timer_add(loop, 25, mark_cb, &tags[4], &victim));
	ASSERT_OK(loop_timer_add(loop, 40, stop_cb, NULL, NULL));
	ASSERT_OK(loop_run(loop));
	order[norder] = '\0';
	ASSERT_STREQ(order, "abc");
	loop_free(loop);
}

static struct loop_io *io_a;
static int reads;

static void
read_cb(struct loop *loop, int fd, unsigned ev, void *arg)
{
	char buf[16];

	(void)arg;
	if (ev & LOOP_READ) {
		(void)!read(fd, buf, sizeof(buf));
		reads++;
		/* Deleting our own handle inside its callback is allowed. */
		loop_io_del(loop, io_a);
		loop_stop(loop);
	}
}

static int hooks;

static void
hook_cb(struct loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	hooks++;
}

TEST(io_and_hooks)
{
	struct loop *loop;
	int sv[2];

	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_OK(loop_io_add(loop, sv[0], LOOP_READ, read_cb, NULL, &io_a));
	ASSERT_OK(loop_hook_add(loop, hook_cb, NULL));
	ASSERT_EQ(write(sv[1], "x", 1), 1);
	ASSERT_OK(loop_run(loop));
	ASSERT_EQ(reads, 1);
	ASSERT(hooks >= 1);
	loop_free(loop);
	(void)close(sv[0]);
	(void)close(sv[1]);
}

static int got_signal;

static void
sig_cb(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	got_signal = signo;
	loop_stop(loop);
}

TEST(signals)
{
	struct loop *loop;

	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(loop_signal_add(loop, SIGUSR1, sig_cb, NULL));
	ASSERT_OK(raise(SIGUSR1));
	ASSERT_OK(loop_run(loop));
	ASSERT_EQ(got_signal, SIGUSR1);
	loop_free(loop);
}

int
main(void)
{
	RUN(timers);
	RUN(io_and_hooks);
	RUN(signals);
	return t_done();
}

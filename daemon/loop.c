/*
 * SPDX-License-Identifier: MIT
 *
 * The event loop: epoll for fds, a binary min-heap of one-shot timers whose
 * earliest deadline becomes the epoll timeout, one signalfd for every signal
 * routed here, and before-sleep hooks. Handles deleted during an iteration
 * are freed only after the iteration, so a callback may delete any handle,
 * its own included.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define LOOP_MAX_EVENTS 256
#define LOOP_MAX_HOOKS 16
#define LOOP_MAX_SIGNALS 16

struct loop_io {
	int fd;
	unsigned events;
	bool dead;
	loop_io_cb cb;
	void *arg;
	struct loop_io *next_dead;
};

struct loop_timer {
	uint64_t deadline;
	uint64_t order; /* ties fire in the order added */
	size_t heap_index;
	loop_timer_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now;
	uint64_t timer_order;
	struct loop_timer **heap;
	size_t nheap, heap_cap;
	struct loop_io *dead; /* freed after the current iteration */
	struct {
		loop_hook_cb cb;
		void *arg;
	} hooks[LOOP_MAX_HOOKS];
	size_t nhooks;
	int sigfd;
	struct loop_io *sigio;
	sigset_t sigmask;
	struct {
		int signo;
		loop_signal_cb cb;
		void *arg;
	} sigs[LOOP_MAX_SIGNALS];
	size_t nsigs;
};

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
loop_new(struct loop **ret)
{
	struct loop *loop;

	loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return -ENOMEM;
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd == -1) {
		int r = -errno;

		free(loop);
		return r;
	}
	loop->now = monotonic_ms();
	*ret = loop;
	return 0;
}

static void
free_dead(struct loop *loop)
{
	while (loop->dead != NULL) {
		struct loop_io *io = loop->dead;

		loop->dead = io->next_dead;
		free(io);
	}
}

void
loop_free(struct loop *loop)
{
	if (loop == NULL)
		return;
	if (loop->sigio != NULL)
		loop_io_del(loop, loop->sigio);
	free_dead(loop);
	for (size_t i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	if (loop->sigfd != -1)
		(void)close(loop->sigfd);
	(void)close(loop->epfd);
	free(loop);
}

uint64_t
loop_now(const struct loop *loop)
{
	return loop->now;
}

uint64_t
loop_update_time(struct loop *loop)
{
	loop->now = monotonic_ms();
	return loop->now;
}

static uint32_t
to_epoll(unsigned events)
{
	uint32_t e = 0;

	if (events & LOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

int
loop_io_add(struct loop *loop, int fd, unsigned events, loop_io_cb cb,
    void *arg, struct loop_io **ret)
{
	struct epoll_event ev = {0};
	struct loop_io *io;

	io = calloc(1, sizeof(*io));
	if (io == NULL)
		return -ENOMEM;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	ev.events = to_epoll(events);
	ev.data.ptr = io;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		int r = -errno;

		free(io);
		return r;
	}
	if (ret != NULL)
		*ret = io;
	return 0;
}

int
loop_io_mod(struct loop *loop, struct loop_io *io, unsigned events)
{
	struct epoll_event ev = {0};

	if (io->events == events)
		return 0;
	ev.events = to_epoll(events);
	ev.data.ptr = io;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
		return -errno;
	io->events = events;
	return 0;
}

void
loop_io_del(struct loop *loop, struct loop_io *io)
{
	if (io == NULL || io->dead)
		return;
	/* The fd may already be closed; epoll forgets it then by itself. */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->dead = true;
	io->next_dead = loop->dead;
	loop->dead = io;
}

/* Timer heap ordered by (deadline, order). */
static bool
timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->order < b->order;
}

static void
heap_swap(struct loop *loop, size_t i, size_t j)
{
	struct loop_timer *t = loop->heap[i];

	loop->heap[i] = loop->heap[j];
	loop->heap[j] = t;
	loop->heap[i]->heap_index = i;
	loop->heap[j]->heap_index = j;
}

static void
heap_up(struct loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(loop->heap[i], loop->heap[parent]))
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void
heap_down(struct loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < loop->nheap && timer_before(loop->heap[l], loop->heap[m]))
			m = l;
		if (r < loop->nheap && timer_before(loop->heap[r], loop->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(loop, i, m);
		i = m;
	}
}

static void
heap_remove(struct loop *loop, size_t i)
{
	assert(i < loop->nheap);
	loop->nheap--;
	if (i != loop->nheap) {
		loop->heap[i] = loop->heap[loop->nheap];
		loop->heap[i]->heap_index = i;
		heap_down(loop, i);
		heap_up(loop, i);
	}
}

int
loop_timer_add(struct loop *loop, uint64_t ms, loop_timer_cb cb, void *arg,
    struct loop_timer **ret)
{
	struct loop_timer *t;

	if (loop->nheap == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct loop_timer **h;

		h = realloc(loop->heap, cap * sizeof(*h));
		if (h == NULL)
			return -ENOMEM;
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->deadline = loop_update_time(loop) + ms;
	t->order = loop->timer_order++;
	t->cb = cb;
	t->arg = arg;
	t->heap_index = loop->nheap;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, t->heap_index);
	if (ret != NULL)
		*ret = t;
	return 0;
}

void
loop_timer_del(struct loop *loop, struct loop_timer *t)
{
	if (t == NULL)
		return;
	heap_remove(loop, t->heap_index);
	free(t);
}

static void
run_timers(struct loop *loop)
{
	uint64_t now = loop_update_time(loop);
	uint64_t last = loop->timer_order;

	/* Timers added by these callbacks wait for the next iteration. */
	while (loop->nheap > 0 && loop->heap[0]->deadline <= now &&
	    loop->heap[0]->order < last) {
		struct loop_timer *t = loop->heap[0];

		heap_remove(loop, 0);
		t->cb(loop, t->arg);
		free(t);
	}
}

static int
next_timeout(const struct loop *loop)
{
	uint64_t now = monotonic_ms();
	uint64_t d;

	if (loop->nheap == 0)
		return -1;
	if (loop->heap[0]->deadline <= now)
		return 0;
	d = loop->heap[0]->deadline - now;
	return d > 60000 ? 60000 : (int)d;
}

static void
signal_cb(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < loop->nsigs; i++)
			if (loop->sigs[i].signo == (int)si.ssi_signo)
				loop->sigs[i].cb(loop, (int)si.ssi_signo,
				    loop->sigs[i].arg);
	}
}

int
loop_signal_add(struct loop *loop, int signo, loop_signal_cb cb, void *arg)
{
	int fd, r;

	if (loop->nsigs == LOOP_MAX_SIGNALS)
		return -ENOSPC;
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) == -1)
		return -errno;
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (loop->sigfd == -1) {
		loop->sigfd = fd;
		r = loop_io_add(loop, fd, LOOP_READ, signal_cb, NULL,
		    &loop->sigio);
		if (r < 0)
			return r;
	}
	loop->sigs[loop->nsigs].signo = signo;
	loop->sigs[loop->nsigs].cb = cb;
	loop->sigs[loop->nsigs].arg = arg;
	loop->nsigs++;
	return 0;
}

int
loop_hook_add(struct loop *loop, loop_hook_cb cb, void *arg)
{
	if (loop->nhooks == LOOP_MAX_HOOKS)
		return -ENOSPC;
	loop->hooks[loop->nhooks].cb = cb;
	loop->hooks[loop->nhooks].arg = arg;
	loop->nhooks++;
	return 0;
}

void
loop_stop(struct loop *loop)
{
	loop->stop = true;
}

int
loop_run(struct loop *loop)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	loop->stop = false;
	while (!loop->stop) {
		int n;

		for (size_t i = 0; i < loop->nhooks; i++)
			loop->hooks[i].cb(loop, loop->hooks[i].arg);
		free_dead(loop);
		if (loop->stop)
			break;
		n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS,
		    next_timeout(loop));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		loop_update_time(loop);
		for (int i = 0; i < n; i++) {
			struct loop_io *io = evs[i].data.ptr;
			unsigned e = 0;

			if (io->dead)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
				e |= LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				e |= LOOP_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				e |= LOOP_ERROR | (io->events & LOOP_READ);
			io->cb(loop, io->fd, e, io->arg);
		}
		run_timers(loop);
		free_dead(loop);
	}
	return 0;
}

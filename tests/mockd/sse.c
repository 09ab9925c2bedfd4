/*
 * SPDX-License-Identifier: MIT
 *
 * Event-stream writer. Each call of sse_read() hands out one frame (or one
 * piece of it in [split] mode), so every frame goes out as its own HTTP
 * chunk. Events come from the run's log under the store lock; formatting
 * happens into a private buffer so the lock is never held while writing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runs.h"
#include "sse.h"
#include "store.h"
#include "util.h"

#define SSE_WAIT_SLICE_MS 500 /* how often a waiting stream checks */

struct sse_stream {
	struct run *run;
	unsigned int turn; /* the turn this stream follows */
	size_t next;       /* next event index */
	bool origin;       /* [drop:N] applies */
	unsigned int sent; /* frames handed out */
	int fd;            /* peer socket, -1 unknown */
	char *buf;         /* the frame being handed out */
	size_t len, off, cap;
	bool eof_after;   /* end once buf drains */
	bool cut_after;   /* cut the connection once buf drains */
	bool split;       /* [split] of the frame in buf */
	uint32_t rng;     /* [split] piece sizes */
	uint64_t last_ms; /* last frame or keep-alive */
};

struct sse_stream *
sse_new(struct run *run, size_t from, bool origin)
{
	struct sse_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->run = run;
	s->turn = run->turn;
	s->next = from;
	s->origin = origin;
	s->fd = -1;
	s->rng = (uint32_t)run->id * 2654435761u + 1;
	s->last_ms = util_now_ms();
	runs_ref(run);
	return s;
}

void
sse_set_fd(struct sse_stream *s, int fd)
{
	s->fd = fd;
}

void
sse_free(struct sse_stream *s)
{
	if (s == NULL)
		return;
	store_lock();
	runs_unref(s->run);
	store_unlock();
	free(s->buf);
	free(s);
}

static int
put(struct sse_stream *s, const char *p, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		char *nb;

		while (cap < s->len + n)
			cap *= 2;
		nb = realloc(s->buf, cap);
		if (nb == NULL)
			return -ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static int
put_str(struct sse_stream *s, const char *p)
{
	return put(s, p, strlen(p));
}

/* Format event i of the run into buf, with the run's line endings. */
static int
format(struct sse_stream *s, const struct run_event *ev, size_t i)
{
	const struct run_marks *m = &s->run->m;
	const char *eol = m->crlf ? "\r\n" : m->cr ? "\r" : "\n";
	char idline[48];
	int r = 0;

	s->len = s->off = 0;
	switch (ev->kind) {
	case RUN_EV_PARTIAL:
		return put_str(s, ev->text);
	case RUN_EV_COMMENT:
		return put_str(s, ev->text) | put_str(s, eol) | put_str(s, eol);
	case RUN_EV_DATA:
		break;
	}
	if (m->fields) {
		(void)snprintf(idline, sizeof(idline), "id: %zu", i);
		r |= put_str(s, "event: message") | put_str(s, eol) |
		    put_str(s, idline) | put_str(s, eol);
	}
	for (const char *p = ev->text;;) {
		size_t n = strcspn(p, "\n");

		r |= put_str(s, "data: ");
		if (m->stamp && p == ev->text && *p == '{' && p[1] != '}') {
			/* [stamp]: when the frame leaves, for latency benches. */
			char t[48];

			(void)snprintf(t, sizeof(t), "{\"t_us\":%llu,",
			    (unsigned long long)util_now_us());
			r |= put_str(s, t);
			p++;
			n--;
		}
		r |= put(s, p, n) | put_str(s, eol);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return r | put_str(s, eol);
}

static bool
peer_gone(const struct sse_stream *s)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLRDHUP};

	if (s->fd < 0)
		return false;
	return poll(&pfd, 1, 0) > 0 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/*
 * Wait (lock held) for the next event of this stream's turn and format it.
 * Returns 1 with a frame in buf, 0 at the end of the turn, or an error.
 */
static int
next_frame(struct sse_stream *s)
{
	struct run *run = s->run;
	const struct run_event *ev;
	size_t limit;

	for (;;) {
		if (store.stopping || run->dead)
			return -ECANCELED;
		/* A newer turn began: only this turn's events are ours. */
		limit = run->turn == s->turn ? run->nev : run->ev_base;
		if (s->next < limit)
			break;
		if (run->turn != s->turn || !runs_live(run))
			return 0;
		if (run->m.stall_ms == 0 &&
		    util_now_ms() - s->last_ms >= SSE_KEEPALIVE_MS) {
			s->len = s->off = 0;
			s->last_ms = util_now_ms();
			return put_str(s, ": keep-alive\n\n") < 0 ? -ENOMEM : 1;
		}
		if (peer_gone(s))
			return -EPIPE;
		(void)store_wait(util_now_ms() + SSE_WAIT_SLICE_MS);
	}
	ev = &run->ev[s->next];
	s->split = run->m.split;
	if (format(s, ev, s->next) < 0)
		return -ENOMEM;
	s->next++;
	s->sent++;
	s->last_ms = util_now_ms();
	if (ev->kind == RUN_EV_PARTIAL)
		s->eof_after = true;
	if (s->origin && run->m.drop > 0 && s->sent >= run->m.drop &&
	    !run->origin_cut) {
		run->origin_cut = true;
		s->cut_after = true;
	}
	return 1;
}

/*
 * The size of the next [split] piece: 1..9 bytes, but always cut right
 * after a UTF-8 lead byte and between '\r' and '\n', so those cases are
 * exercised on every frame.
 */
static size_t
split_size(struct sse_stream *s)
{
	size_t n, left = s->len - s->off;

	s->rng = s->rng * 1103515245u + 12345u;
	n = 1 + (s->rng >> 16) % 9;
	if (n > left)
		n = left;
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s->buf[s->off + k];

		if (c >= 0xc0 ||
		    (c == '\r' && s->off + k + 1 < s->len &&
		        s->buf[s->off + k + 1] == '\n'))
			return k + 1;
	}
	return n;
}

ssize_t
sse_read(struct sse_stream *s, char *buf, size_t max)
{
	size_t n;
	int r;

	if (s->off == s->len) {
		if (s->cut_after)
			return SSE_READ_ERROR;
		if (s->eof_after)
			return SSE_READ_EOF;
		store_lock();
		r = next_frame(s);
		store_unlock();
		if (r == 0)
			return SSE_READ_EOF;
		if (r < 0)
			return SSE_READ_ERROR;
	} else if (s->split) {
		struct timespec ts = {0, SSE_SPLIT_DELAY_MS * 1000000L};

		(void)nanosleep(&ts, NULL);
	}
	n = s->split ? split_size(s) : s->len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, s->buf + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

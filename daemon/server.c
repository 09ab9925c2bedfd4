/*
 * SPDX-License-Identifier: MIT
 *
 * Unix-socket server: accept with caps, SO_PEERCRED, line splitting with a
 * hard limit (an over-long line is skipped up to its newline, never
 * buffered), bounded output queues flushed before each loop sleep, and
 * deferred frees so no connection disappears under a callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "server.h"

#define SERVER_READ_CHUNK 65536
#define SERVER_INITIAL_INPUT 4096
#define SERVER_KEEP_INPUT 65536 /* bytes of input buffer kept when idle */
#define SERVER_ACCEPT_PAUSE_MS 200

struct conn {
	struct server *srv;
	int fd;
	struct loop_io *io;
	struct ucred peer;
	void *data;
	char *in;
	size_t inlen, incap;
	bool skipping; /* inside an over-long line */
	char *out;
	size_t outlen, outoff, outcap;
	bool closing, want_write, paused;
	struct {
		uint64_t at; /* stream offset of the byte that carries it */
		int fd;
	} fds[SERVER_MAX_FDS];
	size_t nfds;
	uint64_t sent; /* bytes written since the connection began */
	bool eof;  /* the peer shut down its writing side */
	bool kill; /* overflowed: closed at the next flush */
	TAILQ_ENTRY(conn) link;       /* live or dead list */
	TAILQ_ENTRY(conn) flush_link; /* has output queued */
	bool in_flush;
};

TAILQ_HEAD(conn_list, conn);

struct server {
	struct loop *loop;
	int fd;
	struct loop_io *io;
	struct loop_timer *pause_timer;
	struct server_config cfg;
	struct server_handlers h;
	struct conn_list conns, dead, flushq;
	struct server_stats stats;
};

static void conn_event_cb(struct loop *loop, int fd, unsigned ev, void *arg);
static void conn_read(struct conn *c);
static void accept_cb(struct loop *loop, int fd, unsigned ev, void *arg);

int
server_listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/*
	 * A socket file left by a previous run is replaced; one that still
	 * answers belongs to a running daemon and is left alone. Nothing
	 * but a socket is ever removed.
	 */
	{
		struct stat st;

		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
			    0);

			if (probe != -1 && connect(probe,
			    (struct sockaddr *)&sa, sizeof(sa)) == 0) {
				(void)close(probe);
				(void)close(fd);
				return -EADDRINUSE;
			}
			if (probe != -1)
				(void)close(probe);
			(void)unlink(path);
		}
	}
	old = umask(~mode & 0777);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	(void)umask(old);
	if (r == -1 || chmod(path, mode) == -1 || listen(fd, 1024) == -1) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	return fd;
}

int
server_new(struct loop *loop, int listen_fd, const struct server_config *cfg,
    const struct server_handlers *h, struct server **ret)
{
	struct server *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->loop = loop;
	s->fd = listen_fd;
	s->cfg = *cfg;
	s->h = *h;
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->dead);
	TAILQ_INIT(&s->flushq);
	r = loop_io_add(loop, listen_fd, LOOP_READ, accept_cb, s, &s->io);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

static void
conn_free(struct conn *c)
{
	for (size_t i = 0; i < c->nfds; i++)
		(void)close(c->fds[i].fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void
reap(struct server *s)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&s->dead)) != NULL) {
		TAILQ_REMOVE(&s->dead, c, link);
		conn_free(c);
	}
}

void
server_close(struct conn *c)
{
	struct server *s = c->srv;

	if (c->closing)
		return;
	c->closing = true;
	if (s->h.closed != NULL)
		s->h.closed(c, s->h.arg);
	loop_io_del(s->loop, c->io);
	(void)close(c->fd);
	c->fd = -1;
	if (c->in_flush) {
		TAILQ_REMOVE(&s->flushq, c, flush_link);
		c->in_flush = false;
	}
	TAILQ_REMOVE(&s->conns, c, link);
	TAILQ_INSERT_TAIL(&s->dead, c, link);
	s->stats.conns--;
}

void
server_free(struct server *s)
{
	struct conn *c;

	if (s == NULL)
		return;
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		server_close(c);
	reap(s);
	if (s->pause_timer != NULL)
		loop_timer_del(s->loop, s->pause_timer);
	loop_io_del(s->loop, s->io);
	(void)close(s->fd);
	free(s);
}

bool
server_closing(const struct conn *c)
{
	return c->closing;
}

const struct ucred *
server_peer(const struct conn *c)
{
	return &c->peer;
}

void
server_set_data(struct conn *c, void *data)
{
	c->data = data;
}

void *
server_data(const struct conn *c)
{
	return c->data;
}

size_t
server_queued(const struct conn *c)
{
	return c->outlen - c->outoff;
}

static void
update_events(struct conn *c)
{
	unsigned ev = 0;

	if (c->closing)
		return;
	/* Stop reading while a big answer waits: input pressure is bounded. */
	c->paused = c->eof || server_queued(c) > c->srv->cfg.max_out / 2;
	if (!c->paused)
		ev |= LOOP_READ;
	if (c->want_write)
		ev |= LOOP_WRITE;
	(void)loop_io_mod(c->srv->loop, c->io, ev);
}

int
server_send(struct conn *c, const char *p, size_t len)
{
	struct server *s = c->srv;
	size_t need;

	if (c->closing || c->kill)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (server_queued(c) + len > s->cfg.max_out) {
		/*
		 * Closed at the next flush, never here: the caller may be
		 * walking a list that the closed handler would change.
		 */
		log_info("dropping connection of pid %d: %zu bytes unread",
		    (int)c->peer.pid, server_queued(c));
		s->stats.dropped++;
		c->kill = true;
		if (!c->in_flush) {
			TAILQ_INSERT_TAIL(&s->flushq, c, flush_link);
			c->in_flush = true;
		}
		return -ENOBUFS;
	}
	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	need = c->outlen + len;
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *o;

		/* Compact before growing. */
		if (c->outoff > 0) {
			memmove(c->out, c->out + c->outoff,
			    c->outlen - c->outoff);
			c->outlen -= c->outoff;
			c->outoff = 0;
			need = c->outlen + len;
		}
		while (cap < need)
			cap *= 2;
		if (cap != c->outcap) {
			o = realloc(c->out, cap);
			if (o == NULL) {
				c->kill = true;
				if (!c->in_flush) {
					TAILQ_INSERT_TAIL(&s->flushq, c,
					    flush_link);
					c->in_flush = true;
				}
				return -ENOMEM;
			}
			c->out = o;
			c->outcap = cap;
		}
	}
	memcpy(c->out + c->outlen, p, len);
	c->outlen += len;
	if (!c->in_flush) {
		TAILQ_INSERT_TAIL(&s->flushq, c, flush_link);
		c->in_flush = true;
	}
	return 0;
}

/*
 * A peer that half-closed (socat, `echo … | nc -U`) still gets every answer:
 * the connection closes once nothing is pending and all is written.
 */
static bool
finished(struct conn *c)
{
	struct server *s = c->srv;

	return c->eof && server_queued(c) == 0 &&
	    (s->h.pending == NULL || s->h.pending(c, s->h.arg) == 0);
}

int
server_send_fd(struct conn *c, const char *p, size_t len, int fd)
{
	uint64_t at = c->sent + server_queued(c);
	int r;

	if (c->nfds == SERVER_MAX_FDS) {
		(void)close(fd);
		return -EMFILE;
	}
	r = server_send(c, p, len);
	if (r < 0) {
		(void)close(fd);
		return r;
	}
	c->fds[c->nfds].at = at;
	c->fds[c->nfds].fd = fd;
	c->nfds++;
	return 0;
}

/* Writes queued bytes; the first byte of a line with an fd carries it. */
static ssize_t
write_some(struct conn *c)
{
	size_t len = c->outlen - c->outoff;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;

	if (c->nfds == 0)
		return write(c->fd, c->out + c->outoff, len);
	if (c->fds[0].at > c->sent) {
		/* Up to the byte that carries the next descriptor. */
		if (len > c->fds[0].at - c->sent)
			len = (size_t)(c->fds[0].at - c->sent);
		return write(c->fd, c->out + c->outoff, len);
	}
	iov.iov_base = c->out + c->outoff;
	iov.iov_len = len;
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &c->fds[0].fd, sizeof(int));
	n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	if (n > 0) {
		(void)close(c->fds[0].fd);
		c->nfds--;
		memmove(&c->fds[0], &c->fds[1], c->nfds * sizeof(c->fds[0]));
	}
	return n;
}

/* Writes what it can; arms LOOP_WRITE for the rest. */
static void
conn_write(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = write_some(c);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				c->want_write = true;
				update_events(c);
				return;
			}
			server_close(c);
			return;
		}
		c->outoff += (size_t)n;
		c->sent += (uint64_t)n;
	}
	c->outoff = c->outlen = 0;
	/* Give back a big buffer once it has drained. */
	if (c->outcap > 65536) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	if (c->want_write || c->paused) {
		c->want_write = false;
		update_events(c);
	}
	if (finished(c))
		server_close(c);
}

void
server_write_now(struct conn *c)
{
	while (!c->closing && !c->kill && c->outoff < c->outlen) {
		ssize_t n = write_some(c);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* A broken peer is closed at the flush, not here. */
			if (errno != EAGAIN) {
				c->kill = true;
				if (!c->in_flush) {
					TAILQ_INSERT_TAIL(&c->srv->flushq, c,
					    flush_link);
					c->in_flush = true;
				}
			}
			return;
		}
		c->outoff += (size_t)n;
		c->sent += (uint64_t)n;
	}
}

void
server_flush(struct server *s)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&s->flushq)) != NULL) {
		TAILQ_REMOVE(&s->flushq, c, flush_link);
		c->in_flush = false;
		if (c->kill)
			server_close(c);
		else
			conn_write(c);
	}
	reap(s);
}

static void
process_input(struct conn *c)
{
	struct server *s = c->srv;
	size_t start = 0;

	for (size_t i = 0; i < c->inlen && !c->closing; i++) {
		size_t len;

		if (c->in[i] != '\n')
			continue;
		if (c->skipping) {
			c->skipping = false;
			start = i + 1;
			continue;
		}
		len = i - start;
		if (len > 0 && c->in[start + len - 1] == '\r')
			len--;
		if (len > 0)
			s->h.line(c, c->in + start, len, s->h.arg);
		start = i + 1;
	}
	if (c->closing)
		return;
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->skipping) {
		c->inlen = 0;
	} else if (c->inlen > s->cfg.max_line) {
		/* No newline within the limit: answer once, skip the rest. */
		c->inlen = 0;
		c->skipping = true;
		if (s->h.overlong != NULL)
			s->h.overlong(c, s->h.arg);
	}
}

/* Makes room to read into; the buffer grows up to max_line + a chunk. */
static int
grow_input(struct conn *c)
{
	size_t max = c->srv->cfg.max_line + SERVER_READ_CHUNK;
	size_t cap;
	char *b;

	if (c->in != NULL && c->inlen < c->incap)
		return 0;
	cap = c->incap ? c->incap * 2 : SERVER_INITIAL_INPUT;
	if (cap > max)
		cap = max;
	if (cap <= c->inlen)
		return -ENOBUFS;
	b = realloc(c->in, cap);
	if (b == NULL)
		return -ENOMEM;
	c->in = b;
	c->incap = cap;
	return 0;
}

static void
conn_read(struct conn *c)
{
	struct server *s = c->srv;

	while (!c->closing && !c->paused) {
		size_t room;
		ssize_t n;

		if (grow_input(c) < 0) {
			server_close(c);
			return;
		}
		room = c->incap - c->inlen;
		n = read(c->fd, c->in + c->inlen, room);
		if (n == 0) {
			c->eof = true;
			if (c->inlen > 0 && !c->skipping &&
			    grow_input(c) == 0) {
				/* A last line without its newline. */
				c->in[c->inlen++] = '\n';
				process_input(c);
			}
			if (c->closing)
				return;
			if (finished(c)) {
				server_close(c);
				return;
			}
			c->paused = true; /* nothing more to read */
			(void)loop_io_mod(s->loop, c->io,
			    c->want_write ? LOOP_WRITE : 0);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				server_close(c);
			break;
		}
		c->inlen += (size_t)n;
		process_input(c);
		if (!c->closing)
			update_events(c);
		/* A short read drained the socket: no need to ask again. */
		if ((size_t)n < room)
			break;
	}
	/* An idle connection keeps at most a small input buffer. */
	if (!c->closing && c->inlen == 0 && c->incap > SERVER_KEEP_INPUT) {
		free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
}

static void
conn_event_cb(struct loop *loop, int fd, unsigned ev, void *arg)
{
	struct conn *c = arg;

	(void)loop;
	(void)fd;
	if (ev & LOOP_WRITE)
		conn_write(c);
	if (!c->closing && (ev & LOOP_ERROR)) {
		/*
		 * EPOLLHUP or EPOLLERR: the peer is gone both ways (a half
		 * close is only EPOLLRDHUP), so nobody can read an answer.
		 * Its calls go with it; level-triggered, waiting would spin.
		 */
		server_close(c);
		return;
	}
	if (!c->closing && (ev & LOOP_READ))
		conn_read(c);
}

static void
resume_accept_cb(struct loop *loop, void *arg)
{
	struct server *s = arg;

	s->pause_timer = NULL;
	(void)loop_io_mod(loop, s->io, LOOP_READ);
}

static void
accept_cb(struct loop *loop, int fd, unsigned ev, void *arg)
{
	struct server *s = arg;

	(void)ev;
	for (;;) {
		socklen_t len = sizeof(struct ucred);
		struct conn *c;
		int cfd, r;

		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of fds: stop accepting for a moment. */
				log_warn("accept: %s; pausing", strerror(errno));
				(void)loop_io_mod(loop, s->io, 0);
				if (s->pause_timer == NULL)
					(void)loop_timer_add(loop,
					    SERVER_ACCEPT_PAUSE_MS,
					    resume_accept_cb, s,
					    &s->pause_timer);
			}
			return;
		}
		if (s->stats.conns >= s->cfg.max_conns) {
			static const char busy[] =
			    "{\"error\":{\"code\":\"m8tesd.busy\",\"message\":"
			    "\"too many connections\",\"retryable\":true}}\n";

			s->stats.refused++;
			(void)!write(cfd, busy, sizeof(busy) - 1);
			(void)close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			(void)close(cfd);
			continue;
		}
		c->srv = s;
		c->fd = cfd;
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) ==
		    -1) {
			(void)close(cfd);
			free(c);
			continue;
		}
		if (s->h.accepted != NULL) {
			const char *reason = NULL;

			if (s->h.accepted(c, s->h.arg, &reason) < 0) {
				if (reason != NULL)
					(void)!write(cfd, reason,
					    strlen(reason));
				(void)close(cfd);
				free(c);
				s->stats.refused++;
				continue;
			}
		}
		r = loop_io_add(loop, cfd, LOOP_READ, conn_event_cb, c, &c->io);
		if (r < 0) {
			if (s->h.closed != NULL)
				s->h.closed(c, s->h.arg);
			(void)close(cfd);
			free(c);
			continue;
		}
		TAILQ_INSERT_TAIL(&s->conns, c, link);
		s->stats.conns++;
		s->stats.accepted++;
		/*
		 * A client sends its request right after connecting: read it
		 * now rather than a turn of the loop later (EAGAIN if not).
		 */
		conn_read(c);
	}
}

void
server_stats(const struct server *s, struct server_stats *ret)
{
	*ret = s->stats;
}

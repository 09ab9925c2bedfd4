/*
 * SPDX-License-Identifier: MIT
 *
 * The baseline of the protocol benchmarks: a bare epoll server on a Unix
 * socket that answers every newline-terminated line with a fixed reply of
 * the same size as m8tesd's daemon.ping answer, or with the contents of
 * REPLY_FILE (a line, e.g. the reply m8tesd gives to a cached call). What
 * the machine can do with no JSON, no dispatch and no bookkeeping.
 *
 * usage: bench-echo-server SOCKET [REPLY_FILE]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char ping_reply[] = "{\"id\":1,\"result\":{\"pong\":true}}\n";
static const char *reply = ping_reply;
static size_t reply_len = sizeof(ping_reply) - 1;

/* Reads the reply from path, ending it with a newline. */
static int
load_reply(const char *path)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	(void)fclose(f);
	if (n == 0 || buf[n - 1] != '\n')
		buf[n++] = '\n';
	reply = buf;
	reply_len = n;
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev, evs[256];
	int lfd, ep;

	if (argc < 2 || argc > 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: bench-echo-server SOCKET [REPLY_FILE]\n");
		return 2;
	}
	if (argc == 3 && load_reply(argv[2]) < 0) {
		perror(argv[2]);
		return 1;
	}
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	(void)unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(lfd, 1024) == -1) {
		perror("listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	(void)epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			char buf[65536];
			ssize_t r;

			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (c >= 0) {
					ev.events = EPOLLIN;
					ev.data.fd = c;
					(void)epoll_ctl(ep, EPOLL_CTL_ADD, c,
					    &ev);
				}
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r == 0 || errno != EAGAIN)
					(void)close(fd);
				continue;
			}
			for (ssize_t k = 0; k < r; k++)
				if (buf[k] == '\n')
					(void)!write(fd, reply, reply_len);
		}
	}
}

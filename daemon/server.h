/*
 * SPDX-License-Identifier: MIT
 *
 * The control socket: accepts local connections, reads each peer's
 * credentials, splits input into lines under the protocol's line limit and
 * queues output with a cap. It knows nothing of JSON or methods: complete
 * lines go to the handler, which answers with server_send.
 */
#ifndef M8_SERVER_H
#define M8_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct loop;
struct server;
struct conn;

struct server_handlers {
	/*
	 * A new connection (its credentials are known). Returning < 0
	 * refuses it: reason (a protocol error line, may be NULL) is sent
	 * and the connection closed; closed is not called then.
	 */
	int (*accepted)(struct conn *c, void *arg, const char **ret_reason);
	/* One complete line, newline (and a '\r' before it) removed. */
	void (*line)(struct conn *c, const char *line, size_t len, void *arg);
	/* A line went over the limit; it is being skipped. */
	void (*overlong)(struct conn *c, void *arg);
	/* Calls still to be answered on c (it is kept open for them). */
	size_t (*pending)(struct conn *c, void *arg);
	/* The connection is going away: drop every reference to it. */
	void (*closed)(struct conn *c, void *arg);
	void *arg;
};

#define SERVER_MAX_FDS 8 /* descriptors queued per connection */

struct server_config {
	size_t max_conns;   /* connections in all */
	size_t max_line;    /* bytes of one input line */
	size_t max_out;     /* bytes queued for one connection */
};

/*
 * Creates and binds a Unix socket at path (removing a stale socket file
 * first), mode applied with umask around bind plus chmod. Returns the
 * listening fd (O_NONBLOCK|O_CLOEXEC) or -errno.
 */
int server_listen_unix(const char *path, mode_t mode);

/* Serves connections on listen_fd, which the server then owns. */
int server_new(struct loop *loop, int listen_fd, const struct server_config *cfg,
    const struct server_handlers *h, struct server **ret);
void server_free(struct server *s);

/*
 * Queues len bytes for c (copied). Returns 0, -EPIPE when c is closing, or
 * -ENOBUFS when the queue would pass max_out: c is then closed (a reader
 * that stopped reading is dropped, never waited for).
 */
int server_send(struct conn *c, const char *p, size_t len);

/*
 * Queues a line that carries fd (SCM_RIGHTS) with its first byte. The
 * server owns fd from here on, and closes it once sent or on failure.
 * Returns as server_send, or -EMFILE past SERVER_MAX_FDS pending fds.
 */
int server_send_fd(struct conn *c, const char *p, size_t len, int fd);

/* Bytes queued for c and not yet written. */
size_t server_queued(const struct conn *c);

/* Closes c after the current callback; its closed handler runs first. */
void server_close(struct conn *c);
bool server_closing(const struct conn *c);

const struct ucred *server_peer(const struct conn *c);
void server_set_data(struct conn *c, void *data);
void *server_data(const struct conn *c);

/*
 * Writes what c's peer takes now, for a producer that queues faster than
 * the loop sleeps. Never closes c: an error marks it for the next flush
 * (c stays on the flush queue while anything is pending).
 */
void server_write_now(struct conn *c);

/* Writes out what is queued, now (also done before each loop sleep). */
void server_flush(struct server *s);

struct server_stats {
	size_t conns;
	unsigned long long accepted;
	unsigned long long refused; /* over max_conns */
	unsigned long long dropped; /* output cap exceeded */
};
void server_stats(const struct server *s, struct server_stats *ret);

#endif

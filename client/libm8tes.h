/*
 * SPDX-License-Identifier: MIT
 *
 * libm8tes: a small client library for the m8tesd local protocol
 * (proto/PROTOCOL.md). It owns one connection's socket, its bounded line
 * buffer, the ids it assigns and the table of its calls in flight; it routes
 * every reply line to its call by id, event lines to the call's callback and
 * final lines (result, error, lagged) into the call. It does not know the
 * method table beyond what the caller passes, prints nothing and never
 * exits: every function returns >= 0 or -errno.
 *
 * One connection is not thread-safe; use one per thread. Waiting is done
 * with poll() on the connection's non-blocking socket, so every wait has a
 * timeout (-1 = none).
 */
#ifndef M8_LIBM8TES_H
#define M8_LIBM8TES_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;
struct m8c_conn;
struct m8c_call;

#define M8C_SOCKET_ENV "M8TES_SOCKET"
#define M8C_SOCKET_USER "m8tes/m8tesd.sock" /* below $XDG_RUNTIME_DIR */
#define M8C_SOCKET_SYSTEM "/run/m8tes/m8tesd.sock"
#define M8C_MAX_FDS 16 /* received descriptors kept until taken */

/* What a final line carried; also the value m8c_wait and m8c_call return. */
enum m8c_reply_kind {
	M8C_RESULT = 0,
	M8C_ERROR = 1,
	M8C_LAGGED = 2,
};

/*
 * An error reply. Strings are borrowed from the reply's root and live as
 * long as the reply; code and message are never NULL.
 */
struct m8c_error {
	const char *code; /* "m8tes.not_found", ... */
	const char *message;
	int status;         /* upstream HTTP status, 0 = none */
	double retry_after; /* seconds, < 0 = none */
	bool retryable;
	const char *request_id;      /* upstream request id or NULL */
	const struct cJSON *details; /* or NULL */
};

/*
 * The final line of a call. Release with m8c_reply_done. A result taken
 * raw (m8c_set_raw_results) has no root and no result, only its text.
 */
struct m8c_reply {
	enum m8c_reply_kind kind;
	struct cJSON *root;              /* the whole line, owned */
	const struct cJSON *result;      /* M8C_RESULT: borrowed from root */
	char *result_text;               /* M8C_RESULT taken raw: owned, */
	size_t result_len;               /* a NUL after result_len bytes */
	struct m8c_error error;          /* M8C_ERROR */
	unsigned long long resume_after; /* M8C_LAGGED: call again after_seq */
};

/* One event line ({"id","seq","event"}) handed to a call's callback. */
struct m8c_event {
	long long id;              /* the call's id */
	unsigned long long seq;    /* 0 when the line had none */
	const struct cJSON *event; /* borrowed, valid during the callback */
	const struct cJSON *root;  /* the whole line */
	const char *line;          /* its text, without the newline */
	size_t len;
};

/*
 * Called for each event line of a call, from inside whichever m8c_wait or
 * m8c_poll reads it. Return 0 to go on; a negative value stops that wait,
 * which returns it (the call stays in flight).
 */
typedef int (*m8c_event_cb)(const struct m8c_event *ev, void *arg);

/*
 * Writes the default socket path into buf: $M8TES_SOCKET when set and not
 * empty, else $XDG_RUNTIME_DIR/m8tes/m8tesd.sock, else
 * /run/m8tes/m8tesd.sock. Returns its length, or -ENAMETOOLONG when it does
 * not fit in len bytes or in a sockaddr_un.
 */
int m8c_socket_path(char *buf, size_t len);

/*
 * Connects to the daemon at path (NULL: m8c_socket_path). Returns 0 and a
 * new connection in *ret, or -errno from socket/connect (-ENOENT and
 * -ECONNREFUSED when no daemon listens), -ENAMETOOLONG, -ENOMEM.
 */
int m8c_connect(const char *path, struct m8c_conn **ret);

/*
 * Wraps an already connected AF_UNIX stream socket (inherited, or one end of
 * a socketpair). Takes ownership of fd, also on failure; makes it
 * non-blocking and close-on-exec.
 */
int m8c_open_fd(int fd, struct m8c_conn **ret);

/*
 * Closes the socket and any received descriptors not taken, and frees the
 * buffer. Calls still in flight end with -ECONNABORTED; their handles stay
 * valid until m8c_call_free. Accepts NULL.
 */
void m8c_close(struct m8c_conn *c);

/* The socket, for the caller's own poll loop (see m8c_poll). */
int m8c_fd(const struct m8c_conn *c);

/* Bounds how long a request may wait for socket space; -1 = forever. */
void m8c_set_send_timeout(struct m8c_conn *c, int timeout_ms);

/*
 * Sends {"id":N,"method":method,"params":params} with the next id of this
 * connection and registers the call. params is borrowed and may be NULL;
 * cb (may be NULL) receives the call's event lines. Returns 0 and the call
 * in *ret_call (free it with m8c_call_free), -EMSGSIZE when the request is
 * over PROTO_MAX_LINE, -ETIMEDOUT, -EPIPE/-ECONNRESET, -ENOMEM.
 */
int
m8c_start(struct m8c_conn *c, const char *method, const struct cJSON *params,
    m8c_event_cb cb, void *arg, struct m8c_call **ret_call);

/* The id m8c_start assigned. */
long long m8c_call_id(const struct m8c_call *call);

/* True once the call's final line (or a failure) has been seen. */
bool m8c_call_done(const struct m8c_call *call);

/*
 * Reads until call has its final line, routing every other line read
 * meanwhile to its own call (callbacks run, finals are stored). Returns the
 * reply's kind and moves the reply into *ret_reply; or -ETIMEDOUT (the call
 * stays in flight and may be waited for again); a callback's negative
 * value; -EMSGSIZE when the call's reply was over PROTO_MAX_LINE; -EBADMSG
 * when it was not a protocol line; -ECONNRESET when the daemon closed the
 * connection; -EALREADY when the reply was already taken.
 */
int m8c_wait(struct m8c_conn *c, struct m8c_call *call, int timeout_ms,
    struct m8c_reply *ret_reply);

/*
 * With on, a final line that is a plain result ({"id", "result"} and
 * at most "jsonrpc" and "cache" besides) is not parsed: the reply holds the
 * result's JSON text as the daemon sent it (result_text), and result and
 * root are NULL. For callers that only print the result; every other line
 * is parsed as before. Off by default.
 */
void m8c_set_raw_results(struct m8c_conn *c, bool on);

/*
 * Frees a call. A call still in flight is forgotten: its later lines are
 * dropped (send "cancel" first to stop it in the daemon). Accepts NULL.
 */
void m8c_call_free(struct m8c_call *call);

/*
 * One blocking call: m8c_start, m8c_wait, m8c_call_free. timeout_ms bounds
 * the whole call. Returns as m8c_wait; on -ETIMEDOUT the call is forgotten.
 */
int m8c_call(struct m8c_conn *c, const char *method, const struct cJSON *params,
    int timeout_ms, m8c_event_cb cb, void *arg, struct m8c_reply *ret_reply);

/*
 * Asks the daemon to end call (the "cancel" method) and waits up to
 * timeout_ms for that answer; call itself then ends with m8tesd.cancelled,
 * to be collected with m8c_wait. Returns 0, or as m8c_wait (M8C_ERROR is
 * returned as -ESRCH: the call was no longer in flight).
 */
int m8c_cancel(struct m8c_conn *c, struct m8c_call *call, int timeout_ms);

/*
 * Processes what arrives within timeout_ms without blocking on any one call:
 * events go to their callbacks, finals into their calls. For callers with
 * their own poll loop on m8c_fd. Returns the number of lines handled, or
 * -errno as m8c_wait (-ETIMEDOUT is not returned: 0 lines is).
 */
int m8c_poll(struct m8c_conn *c, int timeout_ms);

/*
 * Low level: the next line, not routed to any call, for callers that match
 * replies themselves (do not mix with m8c_wait on one connection). *ret_line
 * points into the connection's buffer (newline and a '\r' before it removed,
 * NUL-terminated) and is valid until the next read. Empty lines are
 * skipped. Returns 0, -ETIMEDOUT, -ECONNRESET at end of stream, or -EMSGSIZE
 * once for a line over PROTO_MAX_LINE, whose bytes are then discarded up to
 * its newline without being buffered.
 */
int m8c_read_line(struct m8c_conn *c, int timeout_ms, const char **ret_line,
    size_t *ret_len);

/*
 * Receives the next file descriptor the daemon passed with SCM_RIGHTS
 * (close-on-exec), waiting up to timeout_ms. Descriptors that arrive while
 * lines are read are kept (up to M8C_MAX_FDS, extra ones are closed) and
 * returned here in order; bytes read while waiting are kept for the line
 * reader. Returns 0 and the descriptor (the caller owns it) in *ret_fd, or
 * -ETIMEDOUT, -ECONNRESET, -ENOBUFS when the line buffer is full.
 */
int m8c_recv_fd(struct m8c_conn *c, int timeout_ms, int *ret_fd);

/* Releases a reply's line. Accepts a zeroed or already released reply. */
void m8c_reply_done(struct m8c_reply *r);

#endif

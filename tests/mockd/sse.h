/*
 * SPDX-License-Identifier: MIT
 *
 * One SSE answer attached to a run: it replays the run's events from a
 * starting index, then follows the run live until its turn ends. The wire
 * shape follows the run's markers: line endings ([crlf], [cr]), frames cut
 * at awkward byte offsets ([split]), extra SSE fields ([fields]), the
 * [drop:N] cut of the stream that started the turn, and ": keep-alive"
 * comments every SSE_KEEPALIVE_MS of silence. http.c feeds sse_read() to
 * libmicrohttpd as a content reader (one chunk and flush per call).
 */
#ifndef MOCKD_SSE_H
#define MOCKD_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SSE_KEEPALIVE_MS 15000
#define SSE_SPLIT_DELAY_MS 2 /* pause between [split] pieces */
#define SSE_READ_EOF (-1)    /* end the stream cleanly */
#define SSE_READ_ERROR (-2)  /* cut the connection */

struct run;
struct sse_stream;

/*
 * A stream of run from event index from; origin marks the stream that
 * started the turn (the one [drop:N] cuts). Takes a run reference. Needs
 * the store lock. NULL on ENOMEM.
 */
struct sse_stream *sse_new(struct run *run, size_t from, bool origin);

/* The peer's socket, polled for hang-ups while the stream waits. */
void sse_set_fd(struct sse_stream *s, int fd);

/*
 * Fill buf with at most max bytes of the stream, blocking until there is
 * something to send. Returns the byte count, SSE_READ_EOF or
 * SSE_READ_ERROR. Takes the store lock itself.
 */
ssize_t sse_read(struct sse_stream *s, char *buf, size_t max);

/* Release the stream and its run reference (takes the lock itself). */
void sse_free(struct sse_stream *s);

#endif

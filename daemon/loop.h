/*
 * SPDX-License-Identifier: MIT
 *
 * The daemon's one event loop: epoll for fds, a timer heap driven by the
 * epoll timeout, signalfd for signals and a before-sleep hook list (output
 * flushing and deferred frees run there). Shaped like Redis's ae and libuv's
 * uv__io_t. Single-threaded; nothing here blocks but epoll_wait.
 */
#ifndef M8_LOOP_H
#define M8_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct loop_timer;

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u /* EPOLLERR or EPOLLHUP: always reported */

typedef void (*loop_io_cb)(struct loop *loop, int fd, unsigned events,
    void *arg);
typedef void (*loop_timer_cb)(struct loop *loop, void *arg);
typedef void (*loop_signal_cb)(struct loop *loop, int signo, void *arg);
typedef void (*loop_hook_cb)(struct loop *loop, void *arg);

/* Returns 0 and a new loop in *ret, or -errno. */
int loop_new(struct loop **ret);
void loop_free(struct loop *loop);

/* Runs until loop_stop; returns 0 or -errno from epoll_wait. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* Milliseconds of CLOCK_MONOTONIC, cached per iteration. */
uint64_t loop_now(const struct loop *loop);
/* Refreshes and returns the cached time. */
uint64_t loop_update_time(struct loop *loop);

/*
 * Watches fd for events (LOOP_READ|LOOP_WRITE). The io handle is owned by the
 * loop and freed by loop_io_del, which may be called from any callback,
 * including the io's own.
 */
int loop_io_add(struct loop *loop, int fd, unsigned events, loop_io_cb cb,
    void *arg, struct loop_io **ret);
int loop_io_mod(struct loop *loop, struct loop_io *io, unsigned events);
void loop_io_del(struct loop *loop, struct loop_io *io);

/*
 * One-shot timer firing after ms milliseconds. loop_timer_del cancels it
 * (safe on a timer that already fired only until its callback returns: the
 * handle is freed right after the callback, so never delete it then).
 */
int loop_timer_add(struct loop *loop, uint64_t ms, loop_timer_cb cb,
    void *arg, struct loop_timer **ret);
void loop_timer_del(struct loop *loop, struct loop_timer *t);

/* Routes signo through a signalfd to cb. */
int loop_signal_add(struct loop *loop, int signo, loop_signal_cb cb,
    void *arg);

/* Runs cb before each epoll_wait, in the order added. */
int loop_hook_add(struct loop *loop, loop_hook_cb cb, void *arg);

#endif

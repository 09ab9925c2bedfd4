/*
 * SPDX-License-Identifier: MIT
 *
 * Webhook hooks. A command gets the raw delivery body on stdin (a memfd, so
 * no pipe has to be fed from the loop) and M8TES_* variables in a minimal
 * environment; its exit is watched through a pidfd on the loop. A URL gets
 * the body as a POST through the upstream client's plain mode (never the
 * API key). Exit status 0 or a 2xx answer is success.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hooks.h"
#include "log.h"
#include "loop.h"
#include "store.h"
#include "upstream.h"

#define HOOK_BACKOFF_MS 1000
#define HOOK_MAX_BACKOFF_MS 60000

struct hook;

struct job {
	struct hook *hook;
	int64_t seq;
	char *body;
	size_t len;
	char *event, *webhook_id;
	int64_t run_id;
	unsigned attempt;
	bool done;
	pid_t pid;
	int pidfd;
	struct loop_io *io;
	struct up_req *req;
	struct loop_timer *timer; /* retry wait or attempt deadline */
	TAILQ_ENTRY(job) link;
};

TAILQ_HEAD(job_list, job);

struct hook {
	struct hooks *hs;
	struct hook_def def;
	char consumer[80];
	int64_t fetched; /* last seq looked at */
	struct job_list jobs; /* in seq order */
	unsigned inflight;
};

struct hooks {
	struct loop *loop;
	struct loop_timer *kick; /* a deferred hooks_kick */
	struct store *st;
	struct upstream *up;
	struct hook hooks[HOOKS_MAX];
	size_t n;
	struct hooks_stats stats;
};

static void attempt(struct job *j);
static void kick_later(struct hooks *hs);

static void
job_stop(struct job *j)
{
	struct loop *loop = j->hook->hs->loop;

	if (j->timer != NULL) {
		loop_timer_del(loop, j->timer);
		j->timer = NULL;
	}
	if (j->io != NULL) {
		loop_io_del(loop, j->io);
		j->io = NULL;
	}
	if (j->pidfd >= 0) {
		(void)close(j->pidfd);
		j->pidfd = -1;
	}
	if (j->pid > 0) {
		(void)kill(j->pid, SIGKILL);
		(void)waitpid(j->pid, NULL, 0);
		j->pid = 0;
	}
	if (j->req != NULL) {
		upstream_cancel(j->hook->hs->up, j->req);
		j->req = NULL;
	}
}

static void
job_free(struct job *j)
{
	job_stop(j);
	TAILQ_REMOVE(&j->hook->jobs, j, link);
	free(j->body);
	free(j->event);
	free(j->webhook_id);
	free(j);
}

/* Acknowledges the longest finished prefix of the hook's jobs. */
static void
advance(struct hook *k)
{
	struct job *j;
	int64_t ack = -1;

	while ((j = TAILQ_FIRST(&k->jobs)) != NULL && j->done) {
		ack = j->seq;
		job_free(j);
	}
	if (TAILQ_EMPTY(&k->jobs))
		ack = k->fetched;
	if (ack >= 0 && store_consumer_set(k->hs->st, k->consumer, ack) < 0)
		log_warn("hook %s: cannot record progress", k->def.name);
}

static void
retry_cb(struct loop *loop, void *arg)
{
	(void)loop;
	attempt(arg);
}

static void
finish(struct job *j, bool ok)
{
	struct hook *k = j->hook;

	job_stop(j);
	if (ok) {
		k->hs->stats.delivered++;
	} else {
		k->hs->stats.failed_attempts++;
		if (j->attempt <= k->def.retries) {
			uint64_t ms = (uint64_t)HOOK_BACKOFF_MS
			    << (j->attempt > 6 ? 6 : j->attempt - 1);

			if (ms > HOOK_MAX_BACKOFF_MS)
				ms = HOOK_MAX_BACKOFF_MS;
			log_info("hook %s: delivery %" PRId64 " failed (attempt "
				 "%u); retrying in %" PRIu64 " ms",
			    k->def.name, j->seq, j->attempt, ms);
			if (loop_timer_add(k->hs->loop, ms, retry_cb, j,
				&j->timer) == 0)
				return;
		}
		k->hs->stats.given_up++;
		log_warn("hook %s: gave up on delivery %" PRId64 " after %u "
			 "attempts",
		    k->def.name, j->seq, j->attempt);
	}
	j->done = true;
	k->inflight--;
	advance(k);
	kick_later(k->hs);
}

static void
child_cb(struct loop *loop, int fd, unsigned ev, void *arg)
{
	struct job *j = arg;
	int status = 0;

	(void)loop;
	(void)fd;
	(void)ev;
	if (waitpid(j->pid, &status, WNOHANG) != j->pid)
		return;
	j->pid = 0;
	finish(j, WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
deadline_cb(struct loop *loop, void *arg)
{
	struct job *j = arg;

	(void)loop;
	j->timer = NULL;
	log_warn("hook %s: delivery %" PRId64 " timed out", j->hook->def.name,
	    j->seq);
	finish(j, false);
}

static void
post_done_cb(const struct up_response *r, void *arg)
{
	struct job *j = arg;

	j->req = NULL;
	finish(j, r->error == 0 && r->status >= 200 && r->status < 300);
}

static int
spawn(struct job *j)
{
	char env[5][160];
	char *envp[6], *argv[4];
	sigset_t all;
	int mfd, r;
	pid_t pid;

	mfd = memfd_create("m8tes-hook", MFD_CLOEXEC);
	if (mfd == -1)
		return -errno;
	if (write(mfd, j->body, j->len) != (ssize_t)j->len ||
	    lseek(mfd, 0, SEEK_SET) != 0) {
		r = -errno;
		(void)close(mfd);
		return r;
	}
	/* Everything the child needs is built before fork. */
	(void)snprintf(env[0], sizeof(env[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	(void)snprintf(env[1], sizeof(env[1]), "M8TES_SEQ=%" PRId64, j->seq);
	(void)snprintf(env[2], sizeof(env[2]), "M8TES_EVENT=%s",
	    j->event ? j->event : "");
	(void)snprintf(env[3], sizeof(env[3]), "M8TES_WEBHOOK_ID=%s",
	    j->webhook_id);
	(void)snprintf(env[4], sizeof(env[4]), "M8TES_RUN_ID=%" PRId64,
	    j->run_id);
	for (int i = 0; i < 5; i++)
		envp[i] = env[i];
	envp[5] = NULL;
	argv[0] = (char *)(uintptr_t)"sh";
	argv[1] = (char *)(uintptr_t)"-c";
	argv[2] = (char *)(uintptr_t)j->hook->def.exec;
	argv[3] = NULL;
	sigfillset(&all);
	pid = fork();
	if (pid == -1) {
		r = -errno;
		(void)close(mfd);
		return r;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(mfd, 0) == -1)
			_exit(127);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	(void)close(mfd);
	j->pid = pid;
	j->pidfd = pidfd_open(pid, 0);
	if (j->pidfd == -1)
		return -errno;
	return loop_io_add(j->hook->hs->loop, j->pidfd, LOOP_READ, child_cb, j,
	    &j->io);
}

static void
attempt(struct job *j)
{
	struct hook *k = j->hook;
	int r;

	j->timer = NULL;
	j->attempt++;
	if (k->def.exec != NULL) {
		r = spawn(j);
	} else {
		struct up_opts o = {.verb = VERB_POST, .url = k->def.url,
		    .body = j->body, .done = post_done_cb, .arg = j};

		r = upstream_start(k->hs->up, &o, &j->req);
	}
	if (r < 0) {
		log_warn("hook %s: cannot start: %s", k->def.name,
		    strerror(-r));
		finish(j, false);
		return;
	}
	(void)loop_timer_add(k->hs->loop, (uint64_t)k->def.timeout_s * 1000,
	    deadline_cb, j, &j->timer);
}

static bool
wanted(const struct hook *k, const struct store_webhook *wh)
{
	if (k->def.nevents == 0)
		return true;
	for (size_t i = 0; i < k->def.nevents; i++)
		if (wh->event_type != NULL &&
		    fnmatch(k->def.events[i], wh->event_type, 0) == 0)
			return true;
	return false;
}

static int
row_cb(const struct store_webhook *wh, void *arg)
{
	struct hook *k = arg;
	struct job *j;

	k->fetched = wh->seq;
	if (!wanted(k, wh))
		return 0;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->hook = k;
	j->seq = wh->seq;
	j->pidfd = -1;
	j->run_id = wh->run_id;
	j->body = malloc(wh->body_len + 1);
	j->webhook_id = strdup(wh->webhook_id);
	j->event = wh->event_type ? strdup(wh->event_type) : NULL;
	if (j->body == NULL || j->webhook_id == NULL) {
		free(j->body);
		free(j->webhook_id);
		free(j->event);
		free(j);
		return -ENOMEM;
	}
	memcpy(j->body, wh->body, wh->body_len);
	j->body[wh->body_len] = '\0';
	j->len = wh->body_len;
	TAILQ_INSERT_TAIL(&k->jobs, j, link);
	k->inflight++;
	return k->inflight >= k->def.max_concurrent ? 1 : 0;
}

static void
kick_cb(struct loop *loop, void *arg)
{
	struct hooks *hs = arg;

	(void)loop;
	hs->kick = NULL;
	hooks_kick(hs);
}

/* From inside a job's completion: kick once the stack has unwound. */
static void
kick_later(struct hooks *hs)
{
	if (hs->kick == NULL)
		(void)loop_timer_add(hs->loop, 0, kick_cb, hs, &hs->kick);
}

void
hooks_kick(struct hooks *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		struct hook *k = &hs->hooks[i];
		struct job *j, *next;
		int64_t before;
		int r;

		if (k->inflight >= k->def.max_concurrent)
			continue;
		before = k->fetched;
		r = store_inbox_iter(hs->st, k->fetched,
		    k->def.max_concurrent - k->inflight, row_cb, k);
		if (r < 0) {
			log_warn("hook %s: cannot read the inbox", k->def.name);
			continue;
		}
		/* Start the new jobs (collected first: the iterator reads). */
		for (j = TAILQ_FIRST(&k->jobs); j != NULL; j = next) {
			next = TAILQ_NEXT(j, link);
			if (j->attempt == 0 && j->timer == NULL)
				attempt(j);
		}
		if (k->fetched != before && TAILQ_EMPTY(&k->jobs))
			advance(k);
	}
}

int
hooks_new(struct loop *loop, struct store *st, struct upstream *up,
    const struct hook_def *defs, size_t n, struct hooks **ret)
{
	struct hooks *hs;

	if (n > HOOKS_MAX)
		return -E2BIG;
	hs = calloc(1, sizeof(*hs));
	if (hs == NULL)
		return -ENOMEM;
	hs->loop = loop;
	hs->st = st;
	hs->up = up;
	for (size_t i = 0; i < n; i++) {
		struct hook *k = &hs->hooks[i];
		int64_t acked = 0;
		int r;

		if ((defs[i].exec == NULL) == (defs[i].url == NULL)) {
			hooks_free(hs);
			return -EINVAL;
		}
		k->hs = hs;
		k->def = defs[i];
		/* Own copies: a reload frees the configuration's strings. */
		k->def.name = strdup(defs[i].name);
		k->def.exec = defs[i].exec ? strdup(defs[i].exec) : NULL;
		k->def.url = defs[i].url ? strdup(defs[i].url) : NULL;
		for (size_t e = 0; e < defs[i].nevents; e++)
			k->def.events[e] = strdup(defs[i].events[e]);
		hs->n++;
		if (k->def.name == NULL ||
		    (defs[i].exec != NULL && k->def.exec == NULL) ||
		    (defs[i].url != NULL && k->def.url == NULL)) {
			hooks_free(hs);
			return -ENOMEM;
		}
		for (size_t e = 0; e < defs[i].nevents; e++) {
			if (k->def.events[e] == NULL) {
				hooks_free(hs);
				return -ENOMEM;
			}
		}
		if (k->def.max_concurrent == 0)
			k->def.max_concurrent = 4;
		if (k->def.timeout_s == 0)
			k->def.timeout_s = 30;
		TAILQ_INIT(&k->jobs);
		(void)snprintf(k->consumer, sizeof(k->consumer), "hook:%s",
		    defs[i].name);
		r = store_consumer_get(st, k->consumer, &acked);
		if (r == -ENOENT) {
			/* A new hook starts with what arrives from now on. */
			(void)store_inbox_last_seq(st, &acked);
			(void)store_consumer_set(st, k->consumer, acked);
		}
		k->fetched = acked;
	}
	*ret = hs;
	return 0;
}

void
hooks_free(struct hooks *hs)
{
	if (hs == NULL)
		return;
	if (hs->kick != NULL)
		loop_timer_del(hs->loop, hs->kick);
	for (size_t i = 0; i < hs->n; i++) {
		struct hook *k = &hs->hooks[i];

		while (!TAILQ_EMPTY(&k->jobs))
			job_free(TAILQ_FIRST(&k->jobs));
		free((char *)(uintptr_t)k->def.name);
		free((char *)(uintptr_t)k->def.exec);
		free((char *)(uintptr_t)k->def.url);
		for (size_t e = 0; e < k->def.nevents; e++)
			free((char *)(uintptr_t)k->def.events[e]);
	}
	free(hs);
}

void
hooks_stats(const struct hooks *hs, struct hooks_stats *ret)
{
	*ret = hs->stats;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Buffered audit log over state.db.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "audit.h"
#include "log.h"
#include "loop.h"
#include "store.h"

struct row {
	int64_t time_ms;
	uid_t uid;
	pid_t pid;
	char comm[16];
	char method[64];
	long status;
	uint64_t duration_ms;
};

struct audit {
	struct loop *loop;
	struct store *st;
	struct loop_timer *timer;
	struct row *rows;
	size_t n;
	unsigned flushes;
	unsigned keep_days;
	unsigned long long dropped;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
flush(struct audit *a)
{
	int r;

	if (a->n == 0)
		return;
	r = store_begin_batch(a->st);
	for (size_t i = 0; r == 0 && i < a->n; i++) {
		struct store_audit row = {
		    .time_ms = a->rows[i].time_ms,
		    .uid = a->rows[i].uid,
		    .pid = a->rows[i].pid,
		    .comm = a->rows[i].comm,
		    .method = a->rows[i].method,
		    .status = a->rows[i].status,
		    .duration_ms = (int64_t)a->rows[i].duration_ms,
		};

		r = store_audit_add(a->st, &row);
	}
	/* Now and then, keep the table within its bounds. */
	if (r == 0 && ++a->flushes % 64 == 1)
		r = store_audit_prune(a->st, AUDIT_KEEP_ROWS,
		    a->keep_days == 0 ?
			0 :
			now_ms() - (int64_t)a->keep_days * 86400000);
	if (r == 0)
		r = store_commit_batch(a->st);
	if (r < 0) {
		store_rollback_batch(a->st);
		log_warn("audit: %zu rows not written: %s", a->n, strerror(-r));
	}
	a->n = 0;
}

static void
flush_cb(struct loop *loop, void *arg)
{
	struct audit *a = arg;

	(void)loop;
	a->timer = NULL;
	flush(a);
}

int
audit_new(struct loop *loop, struct store *st, unsigned keep_days,
    struct audit **ret)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -ENOMEM;
	a->rows = calloc(AUDIT_MAX_PENDING, sizeof(*a->rows));
	if (a->rows == NULL) {
		free(a);
		return -ENOMEM;
	}
	a->loop = loop;
	a->st = st;
	a->keep_days = keep_days;
	*ret = a;
	return 0;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	flush(a);
	if (a->timer != NULL)
		loop_timer_del(a->loop, a->timer);
	free(a->rows);
	free(a);
}

void
audit_record(struct audit *a, uid_t uid, pid_t pid, const char *comm,
    const char *method, long status, uint64_t duration_ms)
{
	struct row *r;

	if (a->n == AUDIT_MAX_PENDING) {
		a->dropped++;
		return;
	}
	r = &a->rows[a->n++];
	r->time_ms = now_ms();
	r->uid = uid;
	r->pid = pid;
	(void)snprintf(r->comm, sizeof(r->comm), "%s", comm ? comm : "");
	(void)snprintf(r->method, sizeof(r->method), "%s", method);
	r->status = status;
	r->duration_ms = duration_ms;
	if (a->timer == NULL)
		(void)loop_timer_add(a->loop, AUDIT_FLUSH_MS, flush_cb, a,
		    &a->timer);
}

struct list_ctx {
	cJSON *data;
	const char *glob;
	unsigned left;
};

static int
list_cb(const struct store_audit *row, void *arg)
{
	struct list_ctx *c = arg;
	cJSON *o;

	if (c->glob != NULL && fnmatch(c->glob, row->method, 0) != 0)
		return 0;
	o = cJSON_CreateObject();
	if (o == NULL)
		return -ENOMEM;
	cJSON_AddNumberToObject(o, "time_ms", (double)row->time_ms);
	cJSON_AddNumberToObject(o, "uid", (double)row->uid);
	cJSON_AddNumberToObject(o, "pid", (double)row->pid);
	cJSON_AddStringToObject(o, "comm", row->comm);
	cJSON_AddStringToObject(o, "method", row->method);
	cJSON_AddNumberToObject(o, "status", (double)row->status);
	cJSON_AddNumberToObject(o, "duration_ms", (double)row->duration_ms);
	cJSON_AddItemToArray(c->data, o);
	return --c->left == 0 ? 1 : 0;
}

cJSON *
audit_list(struct audit *a, int64_t uid, const char *method_glob,
    int64_t since_ms, unsigned limit)
{
	struct list_ctx c = {.glob = method_glob, .left = limit ? limit : 100};
	cJSON *res = cJSON_CreateObject();
	int r;

	flush(a); /* what was just called is visible at once */
	c.data = cJSON_AddArrayToObject(res, "data");
	if (c.data == NULL) {
		cJSON_Delete(res);
		errno = ENOMEM;
		return NULL;
	}
	/* With a glob, rows are filtered here: read a bounded window. */
	r = store_audit_list(a->st, uid, since_ms,
	    method_glob != NULL ? 10000 : c.left, list_cb, &c);
	if (r < 0) {
		cJSON_Delete(res);
		errno = -r;
		return NULL;
	}
	return res;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * The webhook writer: a thread with its own connection to state.db that
 * takes whatever deliveries have queued up, parses those the loop left
 * (large bodies), inserts them in one transaction (group commit: one
 * fsync for the lot), posts the results back to the loop through an
 * eventfd and checkpoints the WAL once they are answered. Part of the
 * webhook receiver (see webhook.c); shares its state through
 * webhook_int.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "store.h"
#include "webhook_int.h"

/*
 * How long a commit waits for a lock another connection holds (the loop's
 * short writes, a checkpoint, another process) before its deliveries get
 * 503: a moment of contention on a loaded machine is not a failure.
 */
#define WEBHOOK_WRITER_BUSY_MS 1000

/* Event type and run id from the body, for filters; NULL/0 if unknown. */
void
webhook_peek_body(struct req *rq)
{
	cJSON *o = cJSON_ParseWithLength(rq->body ? rq->body : "", rq->len);
	const cJSON *t, *r, *data;

	rq->event_type = NULL;
	rq->run_id = 0;
	if (!cJSON_IsObject(o))
		goto out;
	t = cJSON_GetObjectItemCaseSensitive(o, "event");
	if (!cJSON_IsString(t))
		t = cJSON_GetObjectItemCaseSensitive(o, "type");
	if (cJSON_IsString(t))
		rq->event_type = strdup(t->valuestring);
	r = cJSON_GetObjectItemCaseSensitive(o, "run_id");
	data = cJSON_GetObjectItemCaseSensitive(o, "data");
	if (!cJSON_IsNumber(r) && cJSON_IsObject(data))
		r = cJSON_GetObjectItemCaseSensitive(data, "run_id");
	if (cJSON_IsNumber(r))
		rq->run_id = (int64_t)r->valuedouble;
out:
	cJSON_Delete(o);
}

/* Printable ASCII but '"' and '\\': JSON string text as it stands. */
static bool
json_plain(const char *s, size_t *ret_len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return false;
	*ret_len = (size_t)(p - (const unsigned char *)s);
	return true;
}

static char *
append(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* The headers kept with a delivery, as a JSON object; NULL on ENOMEM. */
static char *
headers_json_escaped(const struct req *rq)
{
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;

	if (o == NULL)
		return NULL;
	if (cJSON_AddStringToObject(o, "webhook-id", rq->id) == NULL ||
	    cJSON_AddStringToObject(o, "webhook-timestamp", rq->ts) == NULL ||
	    (rq->ctype[0] != '\0' &&
	        cJSON_AddStringToObject(o, "content-type", rq->ctype) == NULL))
		goto out;
	s = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return s;
}

/*
 * headers_json_escaped, faster: ids, timestamps and content types are
 * plain ASCII in practice and are copied in as they are; anything else
 * goes through cJSON, which escapes.
 */
char *
webhook_headers_json(const struct req *rq)
{
	static const char k_id[] = "{\"webhook-id\":\"",
	                  k_ts[] = "\",\"webhook-timestamp\":\"",
	                  k_ct[] = "\",\"content-type\":\"", k_end[] = "\"}";
	size_t nid, nts, nct;
	char *s, *p;

	if (!json_plain(rq->id, &nid) || !json_plain(rq->ts, &nts) ||
	    !json_plain(rq->ctype, &nct))
		return headers_json_escaped(rq);
	s = malloc(sizeof(k_id) + nid + sizeof(k_ts) + nts + sizeof(k_ct) +
	    nct + sizeof(k_end));
	if (s == NULL)
		return NULL;
	p = append(s, k_id, sizeof(k_id) - 1);
	p = append(p, rq->id, nid);
	p = append(p, k_ts, sizeof(k_ts) - 1);
	p = append(p, rq->ts, nts);
	if (nct > 0) {
		p = append(p, k_ct, sizeof(k_ct) - 1);
		p = append(p, rq->ctype, nct);
	}
	(void)append(p, k_end, sizeof(k_end)); /* with its NUL */
	return s;
}

/* Inserts one delivery into the open batch: >= 0, or -errno. */
static int
write_one(struct store *st, struct req *rq)
{
	struct store_webhook wh = {
	    .webhook_id = rq->id,
	    .received_at = rq->received_at,
	    .run_id = 0,
	};
	int64_t seq = 0;
	int r;

	/* Once, also when a failed batch is tried again row by row. */
	if (!rq->parsed) {
		webhook_peek_body(rq);
		rq->headers = webhook_headers_json(rq);
		rq->parsed = true;
	}
	if (rq->headers == NULL)
		return -ENOMEM;
	wh.event_type = rq->event_type;
	wh.run_id = rq->run_id;
	wh.headers = rq->headers;
	wh.body = rq->body;
	wh.body_len = rq->len;
	r = store_inbox_add(st, &wh, &seq);
	if (r >= 0)
		rq->seq = seq;
	return r;
}

/* Writes deliveries in one transaction; 0, or -errno with none stored. */
static int
write_some(struct store *st, struct req *first, struct req *end)
{
	int r = store_begin_batch(st);

	for (struct req *rq = first; r == 0 && rq != end; rq = rq->next) {
		int a = write_one(st, rq);

		if (a < 0)
			r = a;
		else
			rq->result = a;
	}
	if (r == 0)
		r = store_commit_batch(st);
	if (r < 0) {
		store_rollback_batch(st);
		for (struct req *rq = first; rq != end; rq = rq->next)
			rq->result = r;
	}
	return r;
}

/*
 * One transaction for the batch. Should it fail, each delivery gets a
 * transaction of its own, so that one that cannot be stored (too big for
 * SQLite, say) does not take the others down with it. Not when the
 * database was locked: every delivery would wait out the lock again.
 */
static void
write_batch(struct store *st, struct req *batch)
{
	int r = write_some(st, batch, NULL);

	if (r == 0 || r == -EBUSY || batch->next == NULL)
		return;
	for (struct req *rq = batch; rq != NULL; rq = rq->next)
		(void)write_some(st, rq, rq->next);
}

/* Takes up to a batch from the queue; NULL when stopping with none left. */
static struct req *
take_batch(struct webhook *w, struct req **ret_last)
{
	struct req *batch, *last;
	size_t n;

	(void)pthread_mutex_lock(&w->lock);
	while (w->todo == NULL && !w->stop)
		(void)pthread_cond_wait(&w->cond, &w->lock);
	batch = w->todo;
	last = batch;
	for (n = batch != NULL;
	     n > 0 && n < WEBHOOK_MAX_BATCH && last->next != NULL; n++)
		last = last->next;
	if (batch != NULL) {
		/* Later ones wait for the next commit. */
		w->todo = last->next;
		if (w->todo == NULL)
			w->todo_tail = &w->todo;
		last->next = NULL;
	}
	(void)pthread_mutex_unlock(&w->lock);
	*ret_last = last;
	return batch;
}

void *
webhook_writer_main(void *arg)
{
	struct webhook *w = arg;
	struct store *st = NULL;
	struct req *batch, *last;
	int r;

	r = store_open(w->db_path, &st);
	if (r == 0) {
		(void)store_defer_checkpoints(st);
		store_set_busy_timeout(st, WEBHOOK_WRITER_BUSY_MS);
		/* Failing here, the first delivery tries again and says why. */
		(void)store_inbox_load(st);
	}
	while ((batch = take_batch(w, &last)) != NULL) {
		uint64_t one = 1;

		if (st == NULL) {
			for (struct req *rq = batch; rq != NULL; rq = rq->next)
				rq->result = r < 0 ? r : -EIO;
		} else {
			write_batch(st, batch);
		}
		(void)pthread_mutex_lock(&w->lock);
		*w->done_tail = batch;
		w->done_tail = &last->next;
		(void)pthread_mutex_unlock(&w->lock);
		(void)!write(w->efd, &one, sizeof(one));
		/* Answered: checkpointing now delays no 2xx already due. */
		if (st != NULL)
			(void)store_checkpoint_due(st);
	}
	store_close(st);
	return NULL;
}

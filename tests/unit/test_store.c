/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests for store, each in a fresh mkdtemp directory: inbox add and
 * dedup, group commit across a reopen, iteration cursors, consumers,
 * secrets, the stored key, run logs and their results, retention (a run
 * whose pruning a budget cut short is hidden), file modes, corruption,
 * schema-version refusal and migration at open, and a forked writer that
 * _exit()s without closing, after which every committed webhook must still
 * be there.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sig.h"
#include "store.h"
#include "t.h"

static char tmpdir[64];

/* Fresh database path for one test. */
static const char *
db_path(const char *name)
{
	static char path[128];

	(void)snprintf(path, sizeof(path), "%s/%s.db", tmpdir, name);
	return path;
}

static int
rm_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(p);
}

static struct store_webhook
webhook(const char *id, int64_t received_at, const char *body)
{
	struct store_webhook wh = {
	    .webhook_id = id,
	    .received_at = received_at,
	    .event_type = "run.completed",
	    .run_id = 42,
	    .headers = "{\"webhook-timestamp\":\"1700000000\"}",
	    .body = body,
	    .body_len = body != NULL ? strlen(body) : 0,
	};
	return wh;
}

/* Collects iterated inbox rows (seqs, and a copy of the last one). */
struct collect {
	int64_t seqs[1024];
	size_t n;
	int stop_after; /* 0 = never */
	int ret;        /* returned when stopping */
	struct store *nested;
	int nested_r;
	char last_id[64];
	char last_body[256];
	size_t last_len;
	bool last_body_nonnull;
	char last_headers[128];
	bool last_event_null;
	int64_t last_run_id;
};

static int
collect_cb(const struct store_webhook *wh, void *arg)
{
	struct collect *c = arg;

	if (c->n < sizeof(c->seqs) / sizeof(c->seqs[0]))
		c->seqs[c->n] = wh->seq;
	c->n++;
	(void)snprintf(c->last_id, sizeof(c->last_id), "%s", wh->webhook_id);
	c->last_len = wh->body_len;
	c->last_body_nonnull = wh->body != NULL;
	if (wh->body != NULL && wh->body_len < sizeof(c->last_body))
		memcpy(c->last_body, wh->body, wh->body_len);
	(void)snprintf(c->last_headers, sizeof(c->last_headers), "%s",
	    wh->headers);
	c->last_event_null = wh->event_type == NULL;
	c->last_run_id = wh->run_id;
	if (c->nested != NULL)
		c->nested_r = store_inbox_iter(c->nested, 0, 0, collect_cb, c);
	if (c->stop_after > 0 && (int)c->n >= c->stop_after)
		return c->ret;
	return 0;
}

static int
count_inbox(struct store *st, int64_t after)
{
	struct collect c = {0};
	int r;

	r = store_inbox_iter(st, after, 0, collect_cb, &c);
	return r < 0 ? r : (int)c.n;
}

static mode_t
file_mode(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		return (mode_t)-1;
	return sb.st_mode & 07777;
}

TEST(open_creates_0600)
{
	const char *path = db_path("mode");
	char wal[160];
	struct store *st;
	struct store_webhook wh = webhook("w1", 1, "{}");
	int64_t seq;
	mode_t old = umask(022);

	ASSERT_EQ(store_open(path, &st), 0);
	(void)umask(old);
	ASSERT_EQ(file_mode(path), 0600);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	(void)snprintf(wal, sizeof(wal), "%s-wal", path);
	ASSERT_EQ(file_mode(wal), 0600);
	store_close(st);

	/* An existing, too-open file is tightened. */
	ASSERT_EQ(chmod(path, 0644), 0);
	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(file_mode(path), 0600);
	ASSERT_EQ(count_inbox(st, 0), 1);
	store_close(st);

	/* A directory is not a database. */
	ASSERT_EQ(store_open(tmpdir, &st), -EINVAL);
	store_close(NULL);
}

TEST(inbox_add_dedup)
{
	static const char bin[] = {'a', 0, 'b', (char)0xff};
	struct store *st;
	struct store_webhook wh = webhook("msg_1", 100, "{\"run_id\":42}");
	struct collect c = {0};
	int64_t seq, last;

	ASSERT_EQ(store_open(db_path("dedup"), &st), 0);
	ASSERT_EQ(store_inbox_last_seq(st, &last), 0);
	ASSERT_EQ(last, 0);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	ASSERT_EQ(seq, 1);
	wh = webhook("msg_2", 101, NULL); /* empty body */
	wh.event_type = NULL;
	wh.run_id = 0;
	wh.headers = NULL;
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	ASSERT_EQ(seq, 2);

	/* Same Webhook-Id, other content: the existing seq, nothing new. */
	wh = webhook("msg_1", 999, "{\"other\":true}");
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), STORE_DUPLICATE);
	ASSERT_EQ(seq, 1);
	ASSERT_EQ(count_inbox(st, 0), 2);
	ASSERT_EQ(store_inbox_last_seq(st, &last), 0);
	ASSERT_EQ(last, 2);

	/* The first copy is the one kept. */
	ASSERT_EQ(store_inbox_get(st, "msg_1", collect_cb, &c), 1);
	ASSERT_STREQ(c.last_id, "msg_1");
	ASSERT_MEMEQ(c.last_body, c.last_len, "{\"run_id\":42}", 13);
	ASSERT_EQ(c.last_run_id, 42);
	ASSERT(!c.last_event_null);

	/* Empty body, defaults for NULL headers / event type / run id. */
	ASSERT_EQ(store_inbox_get(st, "msg_2", collect_cb, &c), 1);
	ASSERT_EQ(c.last_len, 0);
	ASSERT(c.last_body_nonnull);
	ASSERT_STREQ(c.last_headers, "{}");
	ASSERT(c.last_event_null);
	ASSERT_EQ(c.last_run_id, 0);
	ASSERT_EQ(store_inbox_get(st, "msg_404", collect_cb, &c), -ENOENT);

	/* Raw bytes survive, NULs included. */
	wh = webhook("msg_bin", 102, NULL);
	wh.body = bin;
	wh.body_len = sizeof(bin);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	ASSERT_EQ(seq, 3); /* the duplicate did not use up a number */
	ASSERT_EQ(store_inbox_get(st, "msg_bin", collect_cb, &c), 1);
	ASSERT_MEMEQ(c.last_body, c.last_len, bin, sizeof(bin));

	wh.webhook_id = "";
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), -EINVAL);
	wh.webhook_id = NULL;
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), -EINVAL);
	store_close(st);
}

TEST(batch_commit_reopen)
{
	const char *path = db_path("batch");
	struct store *st;
	struct collect c = {0};
	char id[32];
	int64_t seq, last;
	int i;

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT(!store_in_batch(st));
	ASSERT_EQ(store_commit_batch(st), -EINVAL);
	ASSERT_EQ(store_begin_batch(st), 0);
	ASSERT(store_in_batch(st));
	ASSERT_EQ(store_begin_batch(st), -EBUSY);
	for (i = 1; i <= 100; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "msg_%d", i);
		wh = webhook(id, 1000 + i, "{\"event\":\"run.completed\"}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
		ASSERT_EQ(seq, i);
	}
	{
		/* A duplicate inside the same batch finds the pending row. */
		struct store_webhook wh = webhook("msg_7", 5, "x");

		ASSERT_EQ(store_inbox_add(st, &wh, &seq), STORE_DUPLICATE);
		ASSERT_EQ(seq, 7);
	}
	ASSERT_EQ(store_commit_batch(st), 0);
	ASSERT(!store_in_batch(st));
	store_close(st);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_inbox_iter(st, 0, 0, collect_cb, &c), 100);
	for (i = 0; i < 100; i++)
		ASSERT_EQ(c.seqs[i], i + 1);

	/* A rolled-back batch leaves nothing, not even a used seq. */
	ASSERT_EQ(store_begin_batch(st), 0);
	for (i = 0; i < 5; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "gone_%d", i);
		wh = webhook(id, 1, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	store_rollback_batch(st);
	ASSERT_EQ(count_inbox(st, 0), 100);
	ASSERT_EQ(store_inbox_last_seq(st, &last), 0);
	ASSERT_EQ(last, 100);

	/* Closing with a batch open discards it too. */
	ASSERT_EQ(store_begin_batch(st), 0);
	{
		struct store_webhook wh = webhook("never", 1, "{}");

		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	store_close(st);
	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(count_inbox(st, 0), 100);
	store_close(st);
}

TEST(inbox_iter_after)
{
	struct store *st;
	struct collect c = {0};
	char id[32];
	int64_t seq;
	int i;

	ASSERT_EQ(store_open(db_path("iter"), &st), 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	for (i = 1; i <= 10; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "m%d", i);
		wh = webhook(id, i, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	ASSERT_EQ(store_commit_batch(st), 0);

	ASSERT_EQ(store_inbox_iter(st, 3, 4, collect_cb, &c), 4);
	ASSERT_EQ(c.n, 4);
	ASSERT_EQ(c.seqs[0], 4);
	ASSERT_EQ(c.seqs[3], 7);
	ASSERT_EQ(count_inbox(st, 10), 0);
	ASSERT_EQ(count_inbox(st, 9), 1);

	/* The callback stops early, or fails. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	c.ret = 1;
	ASSERT_EQ(store_inbox_iter(st, 0, 0, collect_cb, &c), 2);
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	c.ret = -EPIPE;
	ASSERT_EQ(store_inbox_iter(st, 0, 0, collect_cb, &c), -EPIPE);

	/* Restarting the running iterator from its callback is refused. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	c.ret = 1;
	c.nested = st;
	ASSERT_EQ(store_inbox_iter(st, 0, 0, collect_cb, &c), 1);
	ASSERT_EQ(c.nested_r, -EBUSY);
	/* ... and the statement is usable again afterwards. */
	ASSERT_EQ(count_inbox(st, 0), 10);
	store_close(st);
}

TEST(consumers_resume)
{
	const char *path = db_path("consumers");
	struct store *st;
	int64_t acked = -1, seq;
	char id[32];
	int i;

	ASSERT_EQ(store_open(path, &st), 0);
	for (i = 1; i <= 5; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "c%d", i);
		wh = webhook(id, i, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	ASSERT_EQ(store_consumer_get(st, "cli", &acked), -ENOENT);
	ASSERT_EQ(acked, -1);
	ASSERT_EQ(store_consumer_set(st, "cli", 3), 0);
	ASSERT_EQ(store_consumer_set(st, "hook", 5), 0);
	store_close(st);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_consumer_get(st, "cli", &acked), 0);
	ASSERT_EQ(acked, 3);
	ASSERT_EQ(count_inbox(st, acked), 2);
	ASSERT_EQ(store_consumer_get(st, "hook", &acked), 0);
	ASSERT_EQ(acked, 5);
	ASSERT_EQ(count_inbox(st, acked), 0);
	/* Exact set: a rewind is allowed. */
	ASSERT_EQ(store_consumer_set(st, "cli", 1), 0);
	ASSERT_EQ(store_consumer_get(st, "cli", &acked), 0);
	ASSERT_EQ(acked, 1);
	ASSERT_EQ(store_consumer_del(st, "cli"), 0);
	ASSERT_EQ(store_consumer_del(st, "cli"), -ENOENT);
	ASSERT_EQ(store_consumer_get(st, "cli", &acked), -ENOENT);
	store_close(st);
}

struct secrets_seen {
	int n;
	int64_t ids[4];
	char secrets[4][64];
	char endpoints[4][16];
	int64_t created[4], not_after[4];
};

static int
secret_cb(const struct store_secret *s, void *arg)
{
	struct secrets_seen *seen = arg;

	if (seen->n < 4) {
		seen->ids[seen->n] = s->id;
		(void)snprintf(seen->secrets[seen->n], 64, "%s", s->secret);
		(void)snprintf(seen->endpoints[seen->n], 16, "%s",
		    s->endpoint_id != NULL ? s->endpoint_id : "(null)");
		seen->created[seen->n] = s->created_at;
		seen->not_after[seen->n] = s->not_after;
	}
	seen->n++;
	return 0;
}

TEST(secrets)
{
	const char *path = db_path("secrets");
	struct store *st;
	struct secrets_seen seen = {0};
	int64_t id1, id2;

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_secret_list(st, secret_cb, &seen), 0);
	ASSERT_EQ(store_secret_add(st, "whsec_old", "1", 100, 0, &id1), 0);
	ASSERT_EQ(store_secret_add(st, "whsec_new", NULL, 200, 5000, &id2), 0);
	ASSERT(id2 > id1);
	ASSERT_EQ(store_secret_add(st, "whsec_old", "2", 300, 0, NULL),
	    -EEXIST);
	ASSERT_EQ(store_secret_add(st, "", NULL, 300, 0, NULL), -EINVAL);
	/* Rotation: the old one expires at the end of the overlap. */
	ASSERT_EQ(store_secret_set_not_after(st, id1, 4000), 0);
	ASSERT_EQ(store_secret_set_not_after(st, id2 + 100, 1), -ENOENT);
	store_close(st);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_secret_list(st, secret_cb, &seen), 2);
	ASSERT_EQ(seen.ids[0], id1);
	ASSERT_STREQ(seen.secrets[0], "whsec_old");
	ASSERT_STREQ(seen.endpoints[0], "1");
	ASSERT_EQ(seen.created[0], 100);
	ASSERT_EQ(seen.not_after[0], 4000);
	ASSERT_STREQ(seen.secrets[1], "whsec_new");
	ASSERT_STREQ(seen.endpoints[1], "(null)");
	ASSERT_EQ(seen.not_after[1], 5000);

	ASSERT_EQ(store_secret_set_not_after(st, id2, 0), 0);
	ASSERT_EQ(store_secret_del(st, id1), 0);
	ASSERT_EQ(store_secret_del(st, id1), -ENOENT);
	memset(&seen, 0, sizeof(seen));
	ASSERT_EQ(store_secret_list(st, secret_cb, &seen), 1);
	ASSERT_STREQ(seen.secrets[0], "whsec_new");
	ASSERT_EQ(seen.not_after[0], 0);
	store_close(st);
}

TEST(api_key)
{
	const char *path = db_path("key");
	struct store *st;
	struct sig_key *k = sig_key_new(), *k2 = sig_key_new();
	char fp[SIG_FINGERPRINT_SIZE], fp2[SIG_FINGERPRINT_SIZE];

	ASSERT(k != NULL && k2 != NULL);
	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_key_get(st, k2), -ENOENT);
	ASSERT_EQ(store_key_set(st, k, 1), -ENOKEY);
	ASSERT_EQ(sig_key_set(k, "sk_test_abc", 11), 0);
	ASSERT_EQ(store_key_set(st, k, 1), 0);
	ASSERT_EQ(sig_key_set(k, "sk_test_def", 11), 0);
	ASSERT_EQ(store_key_set(st, k, 2), 0); /* replaces */
	store_close(st);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(sig_key_set(k2, "placeholder", 11), 0);
	ASSERT_EQ(store_key_get(st, k2), 0);
	ASSERT_STREQ(sig_key_get(k2), "sk_test_def");
	ASSERT_EQ(sig_key_fingerprint(k, fp), 0);
	ASSERT_EQ(sig_key_fingerprint(k2, fp2), 0);
	ASSERT_STREQ(fp, fp2);
	ASSERT_EQ(store_key_clear(st), 0);
	ASSERT_EQ(store_key_clear(st), 0);
	ASSERT_EQ(store_key_get(st, k2), -ENOENT);
	/* A failed load leaves the holder as it was. */
	ASSERT_STREQ(sig_key_get(k2), "sk_test_def");
	store_close(st);
	sig_key_free(k);
	sig_key_free(k2);
}

struct run_seen {
	int n;
	int64_t seqs[16];
	char last[64];
	size_t last_len;
};

static int
run_cb(const struct store_run_event *ev, void *arg)
{
	struct run_seen *seen = arg;

	if (seen->n < 16)
		seen->seqs[seen->n] = ev->seq;
	seen->n++;
	(void)snprintf(seen->last, sizeof(seen->last), "%s", ev->event);
	seen->last_len = ev->len;
	return 0;
}

TEST(run_log)
{
	const char *path = db_path("runs");
	struct store *st;
	struct run_seen seen = {0};
	char ev[64];
	int64_t last;
	bool terminal = true;
	int i;

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_run_status(st, 7, &terminal), -ENOENT);
	ASSERT_EQ(store_run_last_seq(st, 7, &last), 0);
	ASSERT_EQ(last, 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	for (i = 1; i <= 5; i++) {
		int n = snprintf(ev, sizeof(ev),
		    "{\"type\":\"text-delta\",\"delta\":\"%d\"}", i);

		ASSERT_EQ(store_run_append(st, 7, i, ev, (size_t)n, 100 + i),
		    0);
		if (i <= 3)
			ASSERT_EQ(store_run_append(st, 8, i, "{}", 2, 100), 0);
	}
	/* A duplicate fails alone; the batch goes on. */
	ASSERT_EQ(store_run_append(st, 7, 3, "{}", 2, 200), -EEXIST);
	ASSERT_EQ(store_run_append(st, 7, 6, "{\"type\":\"done\"}", 15, 200),
	    0);
	ASSERT_EQ(store_commit_batch(st), 0);
	store_close(st);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_run_iter(st, 7, 2, 0, run_cb, &seen), 4);
	ASSERT_EQ(seen.seqs[0], 3);
	ASSERT_EQ(seen.seqs[1], 4);
	ASSERT_EQ(seen.seqs[2], 5);
	ASSERT_EQ(seen.seqs[3], 6);
	ASSERT_STREQ(seen.last, "{\"type\":\"done\"}");
	ASSERT_EQ(seen.last_len, 15);
	memset(&seen, 0, sizeof(seen));
	ASSERT_EQ(store_run_iter(st, 7, 0, 2, run_cb, &seen), 2);
	ASSERT_EQ(seen.seqs[1], 2);
	ASSERT_STREQ(seen.last, "{\"type\":\"text-delta\",\"delta\":\"2\"}");
	memset(&seen, 0, sizeof(seen));
	ASSERT_EQ(store_run_iter(st, 8, 0, 0, run_cb, &seen), 3);
	ASSERT_EQ(store_run_iter(st, 9, 0, 0, run_cb, &seen), 0);
	ASSERT_EQ(store_run_last_seq(st, 7, &last), 0);
	ASSERT_EQ(last, 6);
	ASSERT_EQ(store_run_last_seq(st, 8, &last), 0);
	ASSERT_EQ(last, 3);

	ASSERT_EQ(store_run_status(st, 7, &terminal), 0);
	ASSERT(!terminal);
	ASSERT_EQ(store_run_mark_terminal(st, 7, 300), 0);
	ASSERT_EQ(store_run_mark_terminal(st, 7, 301), 0);
	ASSERT_EQ(store_run_status(st, 7, &terminal), 0);
	ASSERT(terminal);
	/* A run can be marked before any event is logged. */
	ASSERT_EQ(store_run_mark_terminal(st, 99, 300), 0);
	ASSERT_EQ(store_run_status(st, 99, &terminal), 0);
	ASSERT(terminal);
	store_close(st);
}

/* What store_run_get gave. */
struct run_info {
	int calls;
	int64_t run_id, turn, updated_at;
	bool terminal;
	bool has_result;
	char result[64];
	size_t result_len;
};

static int
run_info_cb(const struct store_run *run, void *arg)
{
	struct run_info *ri = arg;

	ri->calls++;
	ri->run_id = run->run_id;
	ri->terminal = run->terminal;
	ri->turn = run->turn;
	ri->updated_at = run->updated_at;
	ri->has_result = run->result != NULL;
	(void)snprintf(ri->result, sizeof(ri->result), "%s",
	    run->result != NULL ? run->result : "");
	ri->result_len = run->result_len;
	return 0;
}

TEST(run_finish)
{
	const char *path = db_path("run_finish");
	static const char res1[] = "{\"run_id\":7,\"seq\":3}";
	static const char res2[] = "{\"run_id\":7,\"seq\":5}";
	struct run_info ri = {0};
	struct run_seen seen = {0};
	struct store *st;
	bool terminal;
	int64_t last;
	int i;

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_run_get(st, 7, run_info_cb, &ri), -ENOENT);
	ASSERT_EQ(ri.calls, 0);
	/* A whole log and its result in one batch, as the stream hub does. */
	ASSERT_EQ(store_begin_batch(st), 0);
	for (i = 1; i <= 3; i++)
		ASSERT_EQ(store_run_append(st, 7, i, "{}", 2, 100), 0);
	ASSERT_EQ(store_run_finish(st, 7, res1, strlen(res1), 0, 110), 0);
	ASSERT_EQ(store_commit_batch(st), 0);
	store_close(st);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_run_get(st, 7, run_info_cb, &ri), 1);
	ASSERT_EQ(ri.calls, 1);
	ASSERT_EQ(ri.run_id, 7);
	ASSERT(ri.terminal);
	ASSERT_EQ(ri.turn, 0);
	ASSERT_EQ(ri.updated_at, 110);
	ASSERT(ri.has_result);
	ASSERT_STREQ(ri.result, res1);
	ASSERT_EQ(ri.result_len, strlen(res1));

	/* A second turn: appended, and the result and turn replaced. */
	ASSERT_EQ(store_run_append(st, 7, 4, "{}", 2, 200), 0);
	ASSERT_EQ(store_run_append(st, 7, 5, "{}", 2, 200), 0);
	ASSERT_EQ(store_run_finish(st, 7, res2, strlen(res2), 3, 210), 0);
	memset(&ri, 0, sizeof(ri));
	ASSERT_EQ(store_run_get(st, 7, run_info_cb, &ri), 1);
	ASSERT_STREQ(ri.result, res2);
	ASSERT_EQ(ri.turn, 3);
	ASSERT_EQ(ri.updated_at, 210);
	/* Marking it terminal again keeps the result. */
	ASSERT_EQ(store_run_mark_terminal(st, 7, 220), 0);
	memset(&ri, 0, sizeof(ri));
	ASSERT_EQ(store_run_get(st, 7, run_info_cb, &ri), 1);
	ASSERT_STREQ(ri.result, res2);
	ASSERT_EQ(ri.updated_at, 220);

	/* A run with events but no result yet; one only marked terminal. */
	ASSERT_EQ(store_run_append(st, 8, 1, "{}", 2, 300), 0);
	memset(&ri, 0, sizeof(ri));
	ASSERT_EQ(store_run_get(st, 8, run_info_cb, &ri), 1);
	ASSERT(!ri.terminal);
	ASSERT(!ri.has_result);
	ASSERT_EQ(store_run_mark_terminal(st, 9, 300), 0);
	memset(&ri, 0, sizeof(ri));
	ASSERT_EQ(store_run_get(st, 9, run_info_cb, &ri), 1);
	ASSERT(ri.terminal);
	ASSERT(!ri.has_result);

	/* Deleting takes the events and the status row; others stay. */
	ASSERT_EQ(store_run_delete(st, 7), 0);
	ASSERT_EQ(store_run_get(st, 7, run_info_cb, &ri), -ENOENT);
	ASSERT_EQ(store_run_status(st, 7, &terminal), -ENOENT);
	ASSERT_EQ(store_run_iter(st, 7, 0, 0, run_cb, &seen), 0);
	ASSERT_EQ(store_run_last_seq(st, 7, &last), 0);
	ASSERT_EQ(last, 0);
	ASSERT_EQ(store_run_delete(st, 7), 0);
	ASSERT_EQ(store_run_iter(st, 8, 0, 0, run_cb, &seen), 1);
	/* Inside a batch, a delete rolls back with it. */
	ASSERT_EQ(store_begin_batch(st), 0);
	ASSERT_EQ(store_run_delete(st, 8), 0);
	store_rollback_batch(st);
	ASSERT_EQ(store_run_iter(st, 8, 0, 0, run_cb, &seen), 1);
	store_close(st);
}

TEST(run_append_many)
{
	const char *path = db_path("append_many");
	struct store_run_event evs[4] = {
	    {.seq = 1, .event = "{\"a\":1}", .len = 7},
	    {.seq = 2, .event = "{\"b\":2}", .len = 7},
	    {.seq = 3, .event = "{}", .len = 2},
	    {.seq = 2, .event = "{}", .len = 2}, /* a duplicate */
	};
	struct run_seen seen = {0};
	struct run_info ri = {0};
	struct store *st;
	int64_t last;

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_run_append_many(st, 4, evs, 0, 100), 0);
	ASSERT_EQ(store_run_get(st, 4, run_info_cb, &ri), 1);
	ASSERT(!ri.terminal);
	ASSERT_EQ(store_run_append_many(st, 4, evs, 3, 150), 0);
	ASSERT_EQ(store_run_iter(st, 4, 0, 0, run_cb, &seen), 3);
	ASSERT_EQ(seen.seqs[0], 1);
	ASSERT_EQ(seen.seqs[2], 3);
	ASSERT_STREQ(seen.last, "{}");
	memset(&ri, 0, sizeof(ri));
	ASSERT_EQ(store_run_get(st, 4, run_info_cb, &ri), 1);
	ASSERT_EQ(ri.updated_at, 150);
	/* All or none: a duplicate seq undoes the whole call. */
	evs[0].seq = 4;
	ASSERT_EQ(store_run_append_many(st, 4, evs, 4, 200), -EEXIST);
	ASSERT_EQ(store_run_last_seq(st, 4, &last), 0);
	ASSERT_EQ(last, 3);
	/* Inside a batch, it joins the batch. */
	ASSERT_EQ(store_begin_batch(st), 0);
	ASSERT_EQ(store_run_append_many(st, 5, evs, 3, 300), 0);
	store_rollback_batch(st);
	memset(&seen, 0, sizeof(seen));
	ASSERT_EQ(store_run_iter(st, 5, 0, 0, run_cb, &seen), 0);
	store_close(st);
}

TEST(prune_inbox)
{
	struct store *st;
	struct store_retention keep4 = {.inbox_max_count = 4};
	struct store_retention young = {.inbox_max_age = 50};
	struct collect c = {0};
	char id[32];
	int64_t seq;
	int i, total;

	ASSERT_EQ(store_open(db_path("prune_inbox"), &st), 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	for (i = 1; i <= 10; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "p%d", i);
		wh = webhook(id, 1000 + 10 * i, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	ASSERT_EQ(store_commit_batch(st), 0);

	/* By count: bounded per call, then done. */
	ASSERT_EQ(store_prune(st, &keep4, 2000, 4), 4);
	ASSERT_EQ(store_prune(st, &keep4, 2000, 4), 2);
	ASSERT_EQ(store_prune(st, &keep4, 2000, 4), 0);
	ASSERT_EQ(store_inbox_iter(st, 0, 0, collect_cb, &c), 4);
	ASSERT_EQ(c.seqs[0], 7);
	ASSERT_EQ(c.seqs[3], 10);

	/* By age: received_at 1070..1100, now 1145, max age 50 -> < 1095. */
	ASSERT_EQ(store_prune(st, &young, 1145, 100), 3);
	ASSERT_EQ(count_inbox(st, 0), 1);
	ASSERT_EQ(store_prune(st, &young, 1145, 0), 0);

	/* Everything gone: sequence numbers still never go back. */
	total = store_prune(st, &young, 5000, 100);
	ASSERT_EQ(total, 1);
	ASSERT_EQ(count_inbox(st, 0), 0);
	{
		struct store_webhook wh = webhook("after", 6000, "{}");

		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
		ASSERT_EQ(seq, 11);
		/* A pruned id may come back as new. */
		wh = webhook("p1", 6000, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
		ASSERT_EQ(seq, 12);
	}
	store_close(st);
}

/*
 * Pruning by age looks at the oldest rows by seq, as many as the budget,
 * and deletes those past the age among them: a young row (the clock went
 * back after it) is passed over, and rows beyond the budget wait.
 */
TEST(prune_inbox_age_by_seq)
{
	static const int64_t at[] = {100, 300, 110, 120};
	struct store *st;
	struct store_retention age = {.inbox_max_age = 100};
	struct collect c = {0};
	char id[32];
	int64_t seq;
	size_t i;

	ASSERT_EQ(store_open(db_path("prune_age_seq"), &st), 0);
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "a%zu", i);
		wh = webhook(id, at[i], "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	/* Cut-off 150, two rows a call: seqs 1, 2 (only 1), then 2, 3 ... */
	ASSERT_EQ(store_prune(st, &age, 250, 2), 1);
	ASSERT_EQ(store_inbox_next_seq(st, 0, &seq), 0);
	ASSERT_EQ(seq, 2);
	ASSERT_EQ(store_prune(st, &age, 250, 2), 1);
	ASSERT_EQ(store_prune(st, &age, 250, 2), 1);
	ASSERT_EQ(store_prune(st, &age, 250, 2), 0);
	ASSERT_EQ(store_inbox_iter(st, 0, 0, collect_cb, &c), 1);
	ASSERT_EQ(c.seqs[0], 2);
	/* Once it is past the age too, it goes. */
	ASSERT_EQ(store_prune(st, &age, 1000, 2), 1);
	ASSERT_EQ(count_inbox(st, 0), 0);
	store_close(st);
}

/* Duplicates are found in memory: rolled-back rows are not, reopened are. */
TEST(inbox_dedup_rollback_reopen)
{
	const char *path = db_path("dedup_rb");
	struct store_webhook wh = webhook("rb1", 1, "{}");
	struct store *st;
	int64_t seq = 0;

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), STORE_DUPLICATE);
	store_rollback_batch(st);
	ASSERT_EQ(count_inbox(st, 0), 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	ASSERT_EQ(store_commit_batch(st), 0);
	store_close(st);
	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), STORE_DUPLICATE);
	ASSERT_EQ(count_inbox(st, 0), 1);
	/* Pruned through another connection: new again after a trim. */
	{
		struct store *other;
		struct store_retention all = {.inbox_max_age = 1};

		ASSERT_EQ(store_open(path, &other), 0);
		ASSERT_EQ(store_prune(other, &all, 1000, 100), 1);
		store_close(other);
	}
	for (int i = 0; i < 5000; i++) {
		char id[16];
		struct store_webhook w;

		(void)snprintf(id, sizeof(id), "f%d", i);
		w = webhook(id, 2000, "{}");
		ASSERT_EQ(store_inbox_add(st, &w, &seq), 0);
	}
	ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	store_close(st);
}

TEST(prune_runs)
{
	struct store *st;
	/* now 1000: runs idle since before 75 go, then keep 2 terminal. */
	struct store_retention r = {.runs_max_count = 2, .runs_max_age = 925};
	struct run_seen seen = {0};
	bool terminal;
	int64_t run;
	int n, total = 0, calls = 0;

	ASSERT_EQ(store_open(db_path("prune_runs"), &st), 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	for (run = 1; run <= 5; run++) {
		for (n = 1; n <= 3; n++)
			ASSERT_EQ(
			    store_run_append(st, run, n, "{}", 2, run * 100),
			    0);
		ASSERT_EQ(store_run_mark_terminal(st, run, run * 100), 0);
	}
	/* An abandoned, never-terminal run. */
	for (n = 1; n <= 3; n++)
		ASSERT_EQ(store_run_append(st, 6, n, "{}", 2, 50), 0);
	/* A live run, recently updated. */
	ASSERT_EQ(store_run_append(st, 7, 1, "{}", 2, 990), 0);
	ASSERT_EQ(store_commit_batch(st), 0);

	/* 6 by age (4 rows), then 1, 2, 3 by count (4 rows each). */
	for (;;) {
		int d = store_prune(st, &r, 1000, 5);

		ASSERT_OK(d);
		calls++;
		total += d;
		if (d < 5 || calls > 10)
			break;
	}
	ASSERT_EQ(total, 16);
	ASSERT_EQ(store_prune(st, &r, 1000, 5), 0);
	for (run = 1; run <= 7; run++) {
		int want = run == 4 || run == 5 || run == 7 ? 0 : -ENOENT;

		ASSERT_EQ(store_run_status(st, run, &terminal), want);
	}
	ASSERT_EQ(store_run_iter(st, 1, 0, 0, run_cb, &seen), 0);
	ASSERT_EQ(store_run_iter(st, 6, 0, 0, run_cb, &seen), 0);
	ASSERT_EQ(store_run_iter(st, 4, 0, 0, run_cb, &seen), 3);
	ASSERT_EQ(store_run_iter(st, 7, 0, 0, run_cb, &seen), 1);
	store_close(st);
}

/*
 * A run larger than a prune's budget: the first call deletes its oldest
 * events and hides the rest, which no reader may take for a whole log;
 * the next calls finish it before anything else, and it does not count
 * among the kept runs meanwhile.
 */
TEST(prune_runs_doomed)
{
	struct store *st;
	struct store_retention keep1 = {.runs_max_count = 1};
	struct run_info ri = {0};
	struct run_seen seen = {0};
	bool terminal;
	int64_t n;

	ASSERT_EQ(store_open(db_path("prune_doomed"), &st), 0);
	ASSERT_EQ(store_begin_batch(st), 0);
	for (n = 1; n <= 10; n++)
		ASSERT_EQ(store_run_append(st, 1, n, "{}", 2, 100), 0);
	ASSERT_EQ(store_run_finish(st, 1, "{}", 2, 0, 100), 0);
	for (n = 1; n <= 2; n++) {
		ASSERT_EQ(store_run_append(st, 2, n, "{}", 2, 200), 0);
		ASSERT_EQ(store_run_append(st, 3, n, "{}", 2, 300), 0);
	}
	ASSERT_EQ(store_run_finish(st, 2, "{}", 2, 0, 200), 0);
	ASSERT_EQ(store_run_finish(st, 3, "{}", 2, 0, 300), 0);
	ASSERT_EQ(store_commit_batch(st), 0);

	ASSERT_EQ(store_prune(st, &keep1, 400, 4), 4);
	ASSERT_EQ(store_run_status(st, 1, &terminal), -ENOENT);
	ASSERT_EQ(store_run_get(st, 1, run_info_cb, &ri), -ENOENT);
	ASSERT_EQ(store_run_iter(st, 1, 0, 0, run_cb, &seen), 6);
	ASSERT_EQ(seen.seqs[0], 5);
	/* Marking it terminal does not bring the stump back. */
	ASSERT_EQ(store_run_mark_terminal(st, 1, 500), 0);
	ASSERT_EQ(store_run_status(st, 1, &terminal), -ENOENT);
	/*
	 * The other 6 events and the status row of run 1 first, then run 2
	 * (3 rows), which the third call cuts short in turn.
	 */
	ASSERT_EQ(store_prune(st, &keep1, 400, 4), 4);
	ASSERT_EQ(store_prune(st, &keep1, 400, 4), 4);
	ASSERT_EQ(store_run_status(st, 2, &terminal), -ENOENT);
	ASSERT_EQ(store_prune(st, &keep1, 400, 4), 2);
	ASSERT_EQ(store_prune(st, &keep1, 400, 4), 0);
	memset(&seen, 0, sizeof(seen));
	ASSERT_EQ(store_run_iter(st, 1, 0, 0, run_cb, &seen), 0);
	ASSERT_EQ(store_run_status(st, 2, &terminal), -ENOENT);
	ASSERT_EQ(store_run_status(st, 3, &terminal), 0);
	ASSERT(terminal);
	ASSERT_EQ(store_run_iter(st, 3, 0, 0, run_cb, &seen), 2);
	store_close(st);
}

/* After pruning, a reader behind finds where the kept rows start. */
TEST(inbox_next_seq)
{
	struct store *st;
	struct store_retention keep3 = {.inbox_max_count = 3};
	int64_t seq, next = -1;
	char id[32];
	int i;

	ASSERT_EQ(store_open(db_path("next_seq"), &st), 0);
	ASSERT_EQ(store_inbox_next_seq(st, 0, &next), 0);
	ASSERT_EQ(next, 0);
	for (i = 1; i <= 8; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "n%d", i);
		wh = webhook(id, 1000, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	ASSERT_EQ(store_inbox_next_seq(st, 0, &next), 0);
	ASSERT_EQ(next, 1);
	ASSERT_EQ(store_prune(st, &keep3, 2000, 100), 5);
	ASSERT_EQ(store_inbox_next_seq(st, 0, &next), 0);
	ASSERT_EQ(next, 6);
	ASSERT_EQ(store_inbox_next_seq(st, 6, &next), 0);
	ASSERT_EQ(next, 7);
	ASSERT_EQ(store_inbox_next_seq(st, 8, &next), 0);
	ASSERT_EQ(next, 0);
	store_close(st);
}

static int
write_file(const char *path, off_t off, const void *p, size_t len, bool trunc)
{
	int fd = open(path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0600);
	ssize_t n;

	if (fd == -1)
		return -errno;
	n = pwrite(fd, p, len, off);
	(void)close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

TEST(corrupt_garbage)
{
	const char *path = db_path("garbage");
	unsigned char junk[8192];
	struct store *st = NULL;
	struct stat sb;
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	ASSERT_EQ(write_file(path, 0, junk, sizeof(junk), true), 0);
	ASSERT_EQ(store_open(path, &st), -EBADMSG);
	ASSERT(st == NULL);
	/* Durable state is never thrown away on the caller's behalf. */
	ASSERT_EQ(stat(path, &sb), 0);
	ASSERT_EQ(sb.st_size, sizeof(junk));
}

TEST(corrupt_page)
{
	const char *path = db_path("torn");
	unsigned char junk[4096];
	char id[32], body[1024];
	struct store *st;
	int64_t seq;
	int i;

	ASSERT_EQ(store_open(path, &st), 0);
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	ASSERT_EQ(store_begin_batch(st), 0);
	for (i = 0; i < 50; i++) {
		struct store_webhook wh;

		(void)snprintf(id, sizeof(id), "t%d", i);
		wh = webhook(id, i, body);
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
	}
	ASSERT_EQ(store_commit_batch(st), 0);
	store_close(st); /* checkpoints the WAL into the file */

	memset(junk, 0x5a, sizeof(junk));
	ASSERT_EQ(write_file(path, (off_t)4 * 4096, junk, sizeof(junk), false),
	    0);
	ASSERT_EQ(store_open(path, &st), -EBADMSG);
}

TEST(schema_version)
{
	const char *path = db_path("schema");
	static const unsigned char v999[4] = {0, 0, 0x03, 0xe7};
	struct store *st;

	/* Reopening an up-to-date database migrates nothing. */
	ASSERT_EQ(store_open(path, &st), 0);
	store_close(st);
	ASSERT_EQ(store_open(path, &st), 0);
	store_close(st);
	/* user_version is the big-endian word at offset 60 of the header. */
	ASSERT_EQ(write_file(path, 60, v999, sizeof(v999), false), 0);
	ASSERT_EQ(store_open(path, &st), -EPROTONOSUPPORT);
}

/* Runs SQL on path with SQLite itself, as an older release would. */
static int
raw_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	(void)sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/*
 * A database of schema version 2 (before run results) opens, is migrated
 * and keeps its rows: a run logged then has no result and turn 0.
 */
TEST(schema_migrate_2)
{
	const char *path = db_path("schema2");
	struct run_info ri = {0};
	struct run_seen seen = {0};
	struct store *st;

	ASSERT_EQ(raw_sql(path,
	    "CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	    " webhook_id TEXT NOT NULL UNIQUE, received_at INTEGER NOT NULL,"
	    " event_type TEXT, run_id INTEGER,"
	    " headers TEXT NOT NULL DEFAULT '{}', body BLOB NOT NULL);"
	    "CREATE INDEX inbox_received_at ON inbox (received_at);"
	    "CREATE TABLE consumers (name TEXT PRIMARY KEY NOT NULL,"
	    " acked_seq INTEGER NOT NULL);"
	    "CREATE TABLE webhook_secrets (id INTEGER PRIMARY KEY"
	    " AUTOINCREMENT, secret TEXT NOT NULL UNIQUE, endpoint_id TEXT,"
	    " created_at INTEGER NOT NULL, not_after INTEGER);"
	    "CREATE TABLE api_key (id INTEGER PRIMARY KEY CHECK (id = 1),"
	    " key TEXT NOT NULL, set_at INTEGER NOT NULL);"
	    "CREATE TABLE run_status (run_id INTEGER PRIMARY KEY,"
	    " terminal INTEGER NOT NULL DEFAULT 0,"
	    " updated_at INTEGER NOT NULL);"
	    "CREATE INDEX run_status_age ON run_status (updated_at, run_id);"
	    "CREATE INDEX run_status_terminal ON run_status"
	    " (terminal, updated_at, run_id);"
	    "CREATE TABLE run_events (run_id INTEGER NOT NULL,"
	    " seq INTEGER NOT NULL, event TEXT NOT NULL,"
	    " PRIMARY KEY (run_id, seq));"
	    "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	    " time_ms INTEGER NOT NULL, uid INTEGER NOT NULL,"
	    " pid INTEGER NOT NULL, comm TEXT NOT NULL, method TEXT NOT NULL,"
	    " status INTEGER NOT NULL, duration_ms INTEGER NOT NULL);"
	    "CREATE INDEX audit_uid ON audit (uid, id);"
	    "INSERT INTO run_status VALUES (5, 1, 100);"
	    "INSERT INTO run_events VALUES (5, 1, '{}'), (5, 2, '{}');"
	    "INSERT INTO inbox (seq, webhook_id, received_at, body)"
	    " VALUES (1, 'old1', 1, x''), (3, 'old3', 1, x'');"
	    "UPDATE sqlite_sequence SET seq = 7 WHERE name = 'inbox';"
	    "PRAGMA user_version = 2;"), 0);
	ASSERT_EQ(store_open(path, &st), 0);
	/* Schema 5 dropped the index on received_at. */
	ASSERT_EQ(raw_sql(path, "DROP INDEX inbox_received_at"), -EIO);
	/* Schema 4 copied the inbox: its rows, ids and sequence. */
	{
		struct store_webhook wh = webhook("old3", 2, "{}");
		int64_t seq = 0;

		ASSERT_EQ(count_inbox(st, 0), 2);
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), STORE_DUPLICATE);
		ASSERT_EQ(seq, 3);
		wh = webhook("new", 2, "{}");
		ASSERT_EQ(store_inbox_add(st, &wh, &seq), 0);
		ASSERT_EQ(seq, 8);
	}
	ASSERT_EQ(store_run_get(st, 5, run_info_cb, &ri), 1);
	ASSERT(ri.terminal);
	ASSERT(!ri.has_result);
	ASSERT_EQ(ri.turn, 0);
	ASSERT_EQ(store_run_iter(st, 5, 0, 0, run_cb, &seen), 2);
	ASSERT_EQ(store_run_finish(st, 5, "{}", 2, 1, 200), 0);
	store_close(st);
	ASSERT_EQ(store_open(path, &st), 0);
	memset(&ri, 0, sizeof(ri));
	ASSERT_EQ(store_run_get(st, 5, run_info_cb, &ri), 1);
	ASSERT_STREQ(ri.result, "{}");
	ASSERT_EQ(ri.turn, 1);
	store_close(st);
}

/*
 * The child commits N webhooks in batches, starts one more batch that it
 * never commits, and _exit()s with everything open: no close, no
 * checkpoint. What was committed must be there; the rest must not.
 */
TEST(crash_durability)
{
	enum { N = 500, BATCH = 50 };
	const char *path = db_path("crash");
	struct store *st;
	int status, i;
	int64_t last;
	pid_t pid;

	pid = fork();
	ASSERT(pid != -1);
	if (pid == 0) {
		char id[32];
		int64_t seq;

		if (store_open(path, &st) != 0)
			_exit(2);
		for (i = 0; i < N; i++) {
			struct store_webhook wh;

			if (i % BATCH == 0 && store_begin_batch(st) != 0)
				_exit(3);
			(void)snprintf(id, sizeof(id), "crash_%d", i);
			wh = webhook(id, i, "{\"event\":\"run.completed\"}");
			if (store_inbox_add(st, &wh, &seq) != 0)
				_exit(4);
			if (i % BATCH == BATCH - 1 &&
			    store_commit_batch(st) != 0)
				_exit(5);
		}
		if (store_begin_batch(st) != 0)
			_exit(6);
		for (i = 0; i < 10; i++) {
			struct store_webhook wh;

			(void)snprintf(id, sizeof(id), "unacked_%d", i);
			wh = webhook(id, i, "{}");
			if (store_inbox_add(st, &wh, &seq) != 0)
				_exit(7);
		}
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);

	ASSERT_EQ(store_open(path, &st), 0);
	ASSERT_EQ(count_inbox(st, 0), N);
	ASSERT_EQ(store_inbox_last_seq(st, &last), 0);
	ASSERT_EQ(last, N);
	{
		struct collect c = {0};

		ASSERT_EQ(store_inbox_get(st, "crash_499", collect_cb, &c), 1);
		ASSERT_EQ(store_inbox_get(st, "unacked_0", collect_cb, &c),
		    -ENOENT);
	}
	store_close(st);
}

int
main(void)
{
	int r;

	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/m8test_store.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (sig_init() != 0) {
		printf("sig_init failed\n");
		return 1;
	}
	RUN(open_creates_0600);
	RUN(inbox_add_dedup);
	RUN(batch_commit_reopen);
	RUN(inbox_iter_after);
	RUN(consumers_resume);
	RUN(secrets);
	RUN(api_key);
	RUN(run_log);
	RUN(run_finish);
	RUN(run_append_many);
	RUN(prune_inbox);
	RUN(prune_inbox_age_by_seq);
	RUN(inbox_dedup_rollback_reopen);
	RUN(prune_runs);
	RUN(prune_runs_doomed);
	RUN(inbox_next_seq);
	RUN(corrupt_garbage);
	RUN(corrupt_page);
	RUN(schema_version);
	RUN(schema_migrate_2);
	RUN(crash_durability);
	r = t_done();
	(void)nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * The durable state database, state.db: the webhook inbox and the cursors
 * of its consumers, webhook signing secrets, the API key stored by
 * "m8tes auth login", the audit log, and per-run event logs with a terminal
 * flag and the run's final result. SQLite in WAL mode with
 * synchronous=FULL, so a returned commit is on disk; the file and its
 * -wal/-shm companions are 0600; the schema is versioned in
 * PRAGMA user_version and migrated forward at open; a database that fails
 * PRAGMA quick_check is reported, never deleted. Only prepared statements
 * touch data. A handle belongs to one thread; several handles (the loop
 * thread's, the webhook writer's) share the file, one writer at a time.
 *
 * Calls are synchronous. Outside a batch each write is its own durable
 * transaction (one fsync); between store_begin_batch and store_commit_batch
 * every write joins one transaction, so a caller can insert many webhooks
 * and acknowledge them all after a single commit (group commit).
 *
 * Every int function returns >= 0 on success or -errno: -EBUSY (database
 * locked by another handle for longer than a short wait), -EBADMSG
 * (corrupt, or not a database), -EEXIST (uniqueness violated), -EINVAL
 * (bad argument or other constraint), -ENOMEM, -ENOSPC, -EROFS, -ENOENT
 * where documented, -EIO otherwise.
 * This module does not log, parse JSON or know about HTTP.
 */
#ifndef M8_STORE_H
#define M8_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sig_key;
struct store;

/* store_inbox_add's return for a Webhook-Id already in the inbox. */
#define STORE_DUPLICATE 1

/* One inbox row, as given to store_inbox_add and as iterated. */
struct store_webhook {
	int64_t seq;            /* set by the store; ignored when adding */
	const char *webhook_id; /* Webhook-Id; required, unique */
	int64_t received_at;    /* Unix seconds */
	const char *event_type; /* e.g. "run.completed"; may be NULL */
	int64_t run_id;         /* 0 = none */
	const char *headers;    /* JSON object text; NULL when adding = "{}" */
	const void *body;       /* raw bytes as received; see below */
	size_t body_len;
};
/*
 * body may be NULL when adding an empty body; iterated rows always have a
 * non-NULL body, "" when body_len is 0.
 */

/* One webhook signing secret. */
struct store_secret {
	int64_t id;              /* assigned by the store */
	const char *secret;      /* the secret string, as the HMAC key */
	const char *endpoint_id; /* upstream webhook endpoint; may be NULL */
	int64_t created_at;      /* Unix seconds */
	int64_t not_after;       /* Unix seconds; 0 = no expiry */
};

/* One event of a run's log. */
struct store_run_event {
	int64_t run_id;
	int64_t seq;
	const char *event; /* JSON text, NUL-terminated */
	size_t len;        /* strlen(event) */
};

/* A run's status row, as store_run_get gives it. */
struct store_run {
	int64_t run_id;
	bool terminal;
	int64_t updated_at; /* Unix seconds */
	int64_t turn;       /* events before its last turn */
	const char *result; /* JSON text stored by store_run_finish, or NULL */
	size_t result_len;
};

/* Retention for store_prune; 0 in any field means no limit of that kind. */
struct store_retention {
	int64_t inbox_max_count; /* keep only the newest N inbox sequence */
	                         /* numbers (so at most N webhooks) */
	int64_t inbox_max_age;   /* seconds since received_at */
	int64_t runs_max_count;  /* keep the logs of the N most recently */
	                         /* updated terminal runs */
	int64_t runs_max_age;    /* seconds since a run's last event or */
	                         /* status change, terminal or not */
};

/*
 * Iteration callbacks. The pointers in the row are valid only during the
 * call. Return 0 to continue, > 0 to stop (the iterator then returns the
 * count so far, this row included) or -errno to stop and make the iterator
 * return that error. A callback may read through other store functions but
 * must not write (collect, then write after the iterator returns) and must
 * not restart the iterator it is called from (-EBUSY).
 */
typedef int (*store_inbox_cb)(const struct store_webhook *wh, void *arg);
typedef int (*store_secret_cb)(const struct store_secret *s, void *arg);
typedef int (*store_run_cb)(const struct store_run_event *ev, void *arg);
typedef int (*store_run_info_cb)(const struct store_run *run, void *arg);

/* One audited upstream call. */
struct store_audit {
	int64_t time_ms; /* Unix milliseconds */
	int64_t uid, pid;
	const char *comm;   /* the peer's process name */
	const char *method; /* protocol method */
	int64_t status;     /* HTTP status, 0 for a transport failure */
	int64_t duration_ms;
};
typedef int (*store_audit_cb)(const struct store_audit *a, void *arg);

/*
 * Opens (creating it 0600 if absent, and tightening a wider mode to 0600)
 * the database at path, checks it with PRAGMA quick_check, switches it to
 * WAL with synchronous=FULL and secure_delete, and migrates the schema.
 * Returns 0 and a new handle in *ret; -EBADMSG if the file is corrupt or not
 * a SQLite database (the file is left alone: deciding what to do with
 * durable state is the caller's job); -EPROTONOSUPPORT if its schema is newer
 * than this build; -ENOTSUP if WAL cannot be enabled; -errno from open(2).
 */
int store_open(const char *path, struct store **ret);

/*
 * Closes the handle; an open batch is rolled back (its rows were never
 * acknowledged as durable). NULL is a no-op.
 */
void store_close(struct store *st);

/*
 * For a connection that writes a lot (the webhook writer): its commits no
 * longer checkpoint the WAL, which they would do before returning; the
 * caller runs store_checkpoint_due when nothing waits on it, after it has
 * answered a batch. Durability is unchanged (every commit still fsyncs
 * the WAL). Returns 0 or -errno.
 */
int store_defer_checkpoints(struct store *st);

/*
 * How long this connection waits for another's write lock before a
 * statement fails with -EBUSY (opened with a short wait, for the loop).
 * The webhook writer, a thread of its own, can wait longer: its senders
 * are waiting anyway, and a 503 should mean more than a busy moment.
 */
void store_set_busy_timeout(struct store *st, unsigned ms);

/*
 * With deferred checkpoints, checkpoints the WAL (PASSIVE: never waits for
 * readers) if it has grown past a threshold since the last one. Returns 1
 * if it checkpointed, 0 if not due (or not deferred, or a batch is open,
 * or another connection was in the way), or -errno.
 */
int store_checkpoint_due(struct store *st);

/*
 * Starts a batch: every write until store_commit_batch shares one write
 * transaction. Returns 0, -EBUSY if a batch is already open or the database
 * is locked, or -errno.
 */
int store_begin_batch(struct store *st);

/*
 * Commits the batch durably (WAL fsync). Returns 0 once everything written
 * in the batch is on disk; only then may the caller acknowledge it. On
 * failure the whole batch is rolled back and lost, and an error is
 * returned: -EINVAL if no batch was open, -EIO if SQLite had already
 * rolled it back after an earlier error, or the commit's -errno.
 */
int store_commit_batch(struct store *st);

/* Discards the open batch, if any. */
void store_rollback_batch(struct store *st);

/* True between store_begin_batch and its commit or rollback. */
bool store_in_batch(const struct store *st);

/*
 * Adds a verified webhook to the inbox. Returns 0 and its new sequence
 * number in *ret_seq, or STORE_DUPLICATE and the existing row's seq if a
 * webhook with that webhook_id is already stored (nothing is written: the
 * HTTP layer answers 2xx and does not dispatch again); -EINVAL if
 * webhook_id is NULL or empty; -errno. Sequence numbers increase strictly
 * and are never reused, even after pruning. The body and strings are
 * copied.
 */
int store_inbox_add(struct store *st, const struct store_webhook *wh,
    int64_t *ret_seq);
/*
 * Reads the inbox's webhook ids into memory, which store_inbox_add does on
 * its first call otherwise: an inserter calls it at start so that its first
 * delivery does not wait for it. 0 or -errno.
 */
int store_inbox_load(struct store *st);

/*
 * Calls cb for each inbox row with seq > after_seq, in seq order, at most
 * limit rows (0 = no limit). Returns the number of rows passed to cb or
 * -errno (see the callback contract above).
 */
int store_inbox_iter(struct store *st, int64_t after_seq, size_t limit,
    store_inbox_cb cb, void *arg);

/*
 * Calls cb once with the inbox row of webhook_id. Returns 1, -ENOENT if
 * there is none, or -errno.
 */
int store_inbox_get(struct store *st, const char *webhook_id, store_inbox_cb cb,
    void *arg);

/*
 * Writes the highest sequence number ever assigned (0 if none) to *ret_seq,
 * pruned rows included: a consumer starting "from now" uses it as its
 * after_seq. Returns 0 or -errno.
 */
int store_inbox_last_seq(struct store *st, int64_t *ret_seq);

/*
 * Writes the smallest stored seq above after_seq to *ret_seq, 0 if there
 * is none: where a reader behind a pruned stretch goes on. 0 or -errno.
 */
int store_inbox_next_seq(struct store *st, int64_t after_seq, int64_t *ret_seq);

/*
 * Reads the acknowledged sequence number of consumer name into *ret_acked.
 * Returns 0, -ENOENT for an unknown consumer, or -errno.
 */
int store_consumer_get(struct store *st, const char *name, int64_t *ret_acked);

/*
 * Creates consumer name or sets its acknowledged seq to acked_seq exactly
 * (a rewind is allowed). Returns 0 or -errno.
 */
int store_consumer_set(struct store *st, const char *name, int64_t acked_seq);

/* Forgets consumer name. Returns 0, -ENOENT, or -errno. */
int store_consumer_del(struct store *st, const char *name);

/*
 * Stores a webhook signing secret (a NUL-terminated string, used as the
 * HMAC key as-is). endpoint_id may be NULL; not_after 0 = no expiry.
 * Returns 0 and the new id in *ret_id (may be NULL), -EEXIST if the same
 * secret is already stored, -EINVAL for an empty secret, or -errno.
 */
int
store_secret_add(struct store *st, const char *secret, const char *endpoint_id,
    int64_t created_at, int64_t not_after, int64_t *ret_id);

/*
 * Calls cb for every stored secret, oldest first, expired ones included
 * (filtering by not_after is sig_verify's job). Returns the count or -errno.
 */
int store_secret_list(struct store *st, store_secret_cb cb, void *arg);

/*
 * Sets the expiry of secret id (0 = none), e.g. the end of a rotation
 * overlap. Returns 0, -ENOENT, or -errno.
 */
int store_secret_set_not_after(struct store *st, int64_t id, int64_t not_after);

/* Deletes secret id (securely: freed pages are zeroed). 0, -ENOENT, -errno. */
int store_secret_del(struct store *st, int64_t id);

/*
 * Persists the key held by key (which must be set) with its time of
 * storage, replacing any stored key. Returns 0, -ENOKEY if key is empty,
 * or -errno.
 */
int store_key_set(struct store *st, const struct sig_key *key, int64_t now);

/*
 * Loads the stored key into key (sig_key_set: the old content is wiped).
 * Returns 0, -ENOENT if none is stored, -EINVAL if the stored value is not
 * a valid key, or -errno.
 */
int store_key_get(struct store *st, struct sig_key *key);

/* Deletes the stored key (securely). Returns 0 (also if none) or -errno. */
int store_key_clear(struct store *st);

/*
 * Appends event (JSON text, len bytes, no NUL inside) to run_id's log as
 * number seq, chosen by the caller (the stream hub owns the counter; after
 * a restart it resumes from store_run_last_seq), and stamps the run's
 * updated_at with now. Returns 0, -EEXIST if seq is already logged for the
 * run, or -errno. Each call outside a batch is one fsync; the stream hub
 * should batch.
 */
int store_run_append(struct store *st, int64_t run_id, int64_t seq,
    const char *event, size_t len, int64_t now);

/*
 * Appends n events to run_id's log as store_run_append does (evs[i].seq,
 * .event and .len; .run_id is ignored), all or none, at the cost of one
 * statement per event. Returns 0, -EEXIST if a seq is already logged, or
 * -errno.
 */
int store_run_append_many(struct store *st, int64_t run_id,
    const struct store_run_event *evs, size_t n, int64_t now);

/*
 * Calls cb for each event of run_id with seq > after_seq in seq order, at
 * most limit events (0 = no limit). Returns the count or -errno.
 */
int store_run_iter(struct store *st, int64_t run_id, int64_t after_seq,
    size_t limit, store_run_cb cb, void *arg);

/* Writes run_id's highest logged seq (0 if none) to *ret_seq. 0 or -errno. */
int store_run_last_seq(struct store *st, int64_t run_id, int64_t *ret_seq);

/*
 * Marks run_id terminal (completed, failed, cancelled, closed): its log is
 * complete and late subscribers are served from it. Idempotent; a run
 * being pruned stays so. 0 or -errno.
 */
int store_run_mark_terminal(struct store *st, int64_t run_id, int64_t now);

/*
 * Writes whether run_id is terminal to *ret_terminal. Returns 0, -ENOENT if
 * the store has never seen the run (or is pruning it), or -errno.
 */
int store_run_status(struct store *st, int64_t run_id, bool *ret_terminal);

/*
 * Marks run_id terminal as store_run_mark_terminal does and keeps its
 * final result (JSON text, len bytes, no NUL inside) and turn, the number
 * of events before its last turn, replacing any stored before. 0 or -errno.
 */
int store_run_finish(struct store *st, int64_t run_id, const char *result,
    size_t len, int64_t turn, int64_t now);

/*
 * Calls cb once with run_id's status row. Returns 1, -ENOENT if the store
 * has none (a run whose pruning is under way has none), or -errno.
 */
int store_run_get(struct store *st, int64_t run_id, store_run_info_cb cb,
    void *arg);

/*
 * Deletes run_id's whole log and status row, in one transaction (or in
 * the caller's batch). Returns 0, also if there was nothing, or -errno.
 */
int store_run_delete(struct store *st, int64_t run_id);

/*
 * Deletes what retention r no longer keeps, at most max_rows rows (inbox
 * rows, run events and run status rows together) in one transaction, so a
 * call's cost is bounded: call it from a timer, again soon if it returned
 * max_rows. A run whose log the budget cut short is hidden from readers
 * (store_run_status, store_run_get) and finished first by the next call.
 * Consumers' cursors are not consulted: a consumer that falls behind
 * retention resumes after a gap (the next seq it sees is larger than
 * acked + 1). Returns the number of rows deleted or -errno.
 */
int store_prune(struct store *st, const struct store_retention *r, int64_t now,
    size_t max_rows);

/*
 * Audit log of upstream calls. store_audit_add records one row (batch
 * several with store_begin_batch). store_audit_list calls cb for the newest
 * rows first, of uid (< 0 = every uid) at or after since_ms, at most limit
 * (0 = no limit); returns the count or -errno. store_audit_prune keeps the
 * newest keep rows and drops those older than before_ms.
 */
int store_audit_add(struct store *st, const struct store_audit *a);
int store_audit_list(struct store *st, int64_t uid, int64_t since_ms,
    size_t limit, store_audit_cb cb, void *arg);
int store_audit_prune(struct store *st, int64_t keep, int64_t before_ms);

#endif

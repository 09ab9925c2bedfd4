/*
 * SPDX-License-Identifier: MIT
 *
 * What dispatch.c, local.c and calls.c share: the call and per-connection
 * state, and the few functions that end a call. Not for other modules.
 */
#ifndef M8_DISPATCH_INT_H
#define M8_DISPATCH_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "dispatch.h"
#include "sig.h"

struct cJSON;
struct codec_error;
struct method;
struct up_response;


enum call_phase {
	PHASE_FIRST, /* the method's own request */
	PHASE_POLL,  /* GET /runs/{id} until terminal */
};

struct call {
	struct dispatch *d;
	struct conn *conn;
	struct cstate *cs;
	cJSON *id; /* owned copy, or NULL */
	bool jsonrpc;
	const struct method *m;
	cJSON *params; /* owned */
	char idem_key[SIG_UUID_SIZE + 256];
	enum call_phase phase;
	struct up_req *up;
	struct stream_sub *sub;
	struct inbox_sub *isub;
	struct loop_timer *timer;
	char *poll_path;
	char *write_path; /* a write's path, for cache invalidation */
	uint64_t started;  /* loop ms, for the audit log */
	long status;       /* last upstream HTTP status, for the audit log */
	char *new_key;     /* auth.login: the key being validated */
	uint64_t deadline; /* loop ms */
	double interval_s;
	const char *served;   /* "hit", "miss", "stale", "bypass", or NULL */
	struct fetch *fetch;  /* the shared GET this call waits for */
	TAILQ_ENTRY(call) fetch_link;
	struct pager *pager;  /* all: true */
	struct download *dl;  /* runs.download_file */
	TAILQ_ENTRY(call) link;
};

TAILQ_HEAD(call_list, call);
TAILQ_HEAD(fetch_list, fetch);

struct cstate {
	struct call_list calls;
	size_t ncalls;
	char comm[16]; /* the peer's process name, read once */
	bool have_comm;
	const struct policy_rule *rule; /* the peer's [peer] rule */
	unsigned long rule_gen;         /* policy generation of rule */
	char user[64];                  /* the peer's user name, or "" */
	bool counted;                   /* policy_conn_open succeeded */
};

#define DISPATCH_NAMES 32            /* uid -> user name cache entries */
#define DISPATCH_NAME_TTL_MS 60000u

struct dispatch {
	struct loop *loop;
	struct upstream *up;
	struct server *srv;
	struct streams *streams;
	struct inbox *inbox;
	struct store *store;
	struct webhook *webhook;
	struct audit *audit;
	struct cache *cache;
	struct fetch_list fetches; /* GETs in flight, shared by key */
	struct policy *policy;
	/* User names of recent peers: NSS (maybe LDAP) once a minute a uid. */
	struct {
		uid_t uid;
		char name[64]; /* "" if the uid has none */
		uint64_t expires_ms;
	} names[DISPATCH_NAMES];
	unsigned names_next;
	int (*reload)(void *arg, char *err, size_t errlen);
	void *reload_arg;
	const char *key_source;
	struct sig_key *key;
	struct dispatch_config cfg;
	bool shutdown;
	unsigned long long calls_total, calls_failed;
};

/* Ends a call with its final line (taken) and frees it. */
void call_finish(struct call *call, char *line, size_t len);
/* As call_finish, the line carrying fd (SCM_RIGHTS; fd is taken). */
void call_finish_fd(struct call *call, char *line, size_t len, int fd);
/* Final success line; result is borrowed. Frees the call. */
void call_result(struct call *call, const struct cJSON *result);
/* Final error line. Frees the call. */
void call_error(struct call *call, const struct codec_error *e);
void call_fail(struct call *call, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees a call without answering it (its peer is gone or cancelled it). */
void call_free(struct call *call);
/* The call with this id in flight on cs, or NULL. */
struct call *call_find(struct cstate *cs, const struct cJSON *id);

/* local.c: the daemon's own methods. */
void local_call(struct call *call);
void local_auth_validated(struct call *call, const struct up_response *r);

/* calls.c: the upstream methods. */
void upstream_call(struct call *call);
void calls_upstream_done_cb(const struct up_response *r, void *arg);
/* Answers call with a successful upstream body (normalised by kind). */
void calls_answer_body(struct call *call, const char *body, size_t len);
/* Parses and normalises a body of kind m->kind; NULL with a reason. */
struct cJSON *calls_parse_body(const struct method *m, const char *body,
    size_t len, const char **ret_reason);

/* reads.c: the cached read path, auto-paging and downloads. */
/* Takes a cacheable GET (returns true) or leaves it to the caller. */
bool reads_get(struct call *call, const char *path);
void reads_all(struct call *call);
void reads_download(struct call *call, const char *path);
/* After a successful write through the daemon: drop what it outdated. */
void reads_invalidate(struct dispatch *d, const char *path,
    const struct cJSON *params);
/*
 * Drops the cached entries of resource in scope (NULL: every scope) and
 * keeps GETs of it in flight from storing or sharing their answers.
 */
void reads_invalidate_resource(struct dispatch *d, const char *resource,
    const char *scope);
/* A call going away: leave its fetch, pager or download. */
void reads_call_done(struct call *call);
void reads_free(struct dispatch *d);

#endif

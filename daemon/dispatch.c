/*
 * SPDX-License-Identifier: MIT
 *
 * Request lines -> calls -> one final reply each. A call lives in its
 * connection's list from its request line to its final line; closing the
 * connection or cancelling the call stops its upstream request and timers,
 * so nothing ever answers into a freed connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "audit.h"
#include "codec.h"
#include "dispatch.h"
#include "inbox.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "request.h"
#include "server.h"
#include "sig.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"
#include "webhook.h"

#define MAX_WAIT_S (24.0 * 3600) /* longest runs.poll timeout accepted */

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
	uint64_t started;  /* loop ms, for the audit log */
	long status;       /* last upstream HTTP status, for the audit log */
	char *new_key;     /* auth.login: the key being validated */
	uint64_t deadline; /* loop ms */
	double interval_s;
	TAILQ_ENTRY(call) link;
};

TAILQ_HEAD(call_list, call);

struct cstate {
	struct call_list calls;
	size_t ncalls;
	char comm[16]; /* the peer's process name, read once */
	bool have_comm;
};

struct dispatch {
	struct loop *loop;
	struct upstream *up;
	struct server *srv;
	struct streams *streams;
	struct inbox *inbox;
	struct store *store;
	struct webhook *webhook;
	struct audit *audit;
	const char *key_source;
	struct sig_key *key;
	struct dispatch_config cfg;
	bool shutdown;
	unsigned long long calls_total, calls_failed;
};

static void start_upstream(struct call *call, const char *path,
    const char *body, enum method_verb verb, bool idem);
static void upstream_done_cb(const struct up_response *r, void *arg);
static void auth_validated(struct call *call, const struct up_response *r);

int
dispatch_new(struct loop *loop, struct upstream *up, struct sig_key *key,
    const struct dispatch_config *cfg, struct dispatch **ret)
{
	struct dispatch *d;

	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->loop = loop;
	d->up = up;
	d->key = key;
	d->cfg = *cfg;
	*ret = d;
	return 0;
}

void
dispatch_free(struct dispatch *d)
{
	free(d);
}

void
dispatch_set_server(struct dispatch *d, struct server *s)
{
	d->srv = s;
}

void
dispatch_set_streams(struct dispatch *d, struct streams *s)
{
	d->streams = s;
}

void
dispatch_set_audit(struct dispatch *d, struct audit *a)
{
	d->audit = a;
}

void
dispatch_set_key_source(struct dispatch *d, const char *source)
{
	d->key_source = source;
}

void
dispatch_set_webhooks(struct dispatch *d, struct store *st, struct inbox *ib,
    struct webhook *w)
{
	d->store = st;
	d->inbox = ib;
	d->webhook = w;
}

bool
dispatch_shutdown_requested(const struct dispatch *d)
{
	return d->shutdown;
}

static struct cstate *
cstate_of(struct conn *c)
{
	struct cstate *cs = server_data(c);

	if (cs == NULL) {
		cs = calloc(1, sizeof(*cs));
		if (cs == NULL)
			return NULL;
		TAILQ_INIT(&cs->calls);
		server_set_data(c, cs);
	}
	return cs;
}

static void
send_owned(struct conn *c, char *line, size_t len)
{
	if (line == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"" E_NOMEM
					  "\",\"message\":\"out of memory\","
					  "\"retryable\":true}}\n";

		(void)server_send(c, oom, sizeof(oom) - 1);
		return;
	}
	(void)server_send(c, line, len);
	free(line);
}

/* An error for a line that never became a call. */
static void
reply_error(struct conn *c, const cJSON *id, bool jsonrpc, const char *code,
    const char *msg)
{
	struct codec_error e = {.code = code, .message = msg,
	    .retry_after = -1};
	size_t len = 0;
	char *line = codec_error_line(id, jsonrpc, &e, &len);

	send_owned(c, line, len);
}

static void
call_free(struct call *call)
{
	if (call->up != NULL)
		upstream_cancel(call->d->up, call->up);
	if (call->sub != NULL)
		streams_unsubscribe(call->sub);
	if (call->isub != NULL)
		inbox_unsubscribe(call->isub);
	if (call->timer != NULL)
		loop_timer_del(call->d->loop, call->timer);
	if (call->cs != NULL) {
		TAILQ_REMOVE(&call->cs->calls, call, link);
		call->cs->ncalls--;
	}
	cJSON_Delete(call->id);
	cJSON_Delete(call->params);
	free(call->poll_path);
	if (call->new_key != NULL) {
		explicit_bzero(call->new_key, strlen(call->new_key));
		free(call->new_key);
	}
	free(call);
}

/*
 * Unlinks the call before its final line goes out: a send that overflows
 * the output cap closes the connection, which frees every linked call.
 */
static const char *
peer_comm(struct conn *c, struct cstate *cs)
{
	if (!cs->have_comm) {
		char path[64];
		ssize_t n = -1;
		int fd;

		(void)snprintf(path, sizeof(path), "/proc/%d/comm",
		    (int)server_peer(c)->pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd != -1) {
			n = read(fd, cs->comm, sizeof(cs->comm) - 1);
			(void)close(fd);
		}
		cs->comm[n > 0 ? n : 0] = '\0';
		if (n > 0 && cs->comm[n - 1] == '\n')
			cs->comm[n - 1] = '\0';
		cs->have_comm = true;
	}
	return cs->comm;
}

static void
call_finish(struct call *call, char *line, size_t len)
{
	if (call->d->audit != NULL && call->m->verb != VERB_NONE) {
		const struct ucred *p = server_peer(call->conn);

		audit_record(call->d->audit, p->uid, p->pid,
		    peer_comm(call->conn, call->cs), call->m->name,
		    call->status,
		    loop_update_time(call->d->loop) - call->started);
	}
	TAILQ_REMOVE(&call->cs->calls, call, link);
	call->cs->ncalls--;
	call->cs = NULL;
	send_owned(call->conn, line, len);
	call_free(call);
}

/* Final success line; result is borrowed. Frees the call. */
static void
call_result(struct call *call, const cJSON *result)
{
	size_t len = 0;
	char *line = codec_result(call->id, call->jsonrpc, result, &len);

	call_finish(call, line, len);
}

/* Final error line. Frees the call. */
static void
call_error(struct call *call, const struct codec_error *e)
{
	size_t len = 0;
	char *line = codec_error_line(call->id, call->jsonrpc, e, &len);

	call->d->calls_failed++;
	call_finish(call, line, len);
}

static void __attribute__((format(printf, 3, 4)))
call_fail(struct call *call, const char *code, const char *fmt, ...)
{
	struct codec_error e = {.code = code, .retry_after = -1};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e.message = msg;
	call_error(call, &e);
}

static bool
same_id(const cJSON *a, const cJSON *b)
{
	if (a == NULL || b == NULL)
		return false;
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble;
	if (cJSON_IsString(a) && cJSON_IsString(b))
		return strcmp(a->valuestring, b->valuestring) == 0;
	return false;
}

static struct call *
find_call(struct cstate *cs, const cJSON *id)
{
	struct call *call;

	TAILQ_FOREACH(call, &cs->calls, link)
	if (same_id(call->id, id))
		return call;
	return NULL;
}

/* ---- daemon's own methods ---------------------------------------------- */

static cJSON *
describe_method(const struct method *m)
{
	cJSON *o = cJSON_CreateObject(), *params, *http;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "name", m->name);
	cJSON_AddStringToObject(o, "summary", m->summary);
	if (m->verb != VERB_NONE) {
		http = cJSON_AddObjectToObject(o, "http");
		cJSON_AddStringToObject(http, "verb", method_verb_name(m->verb));
		cJSON_AddStringToObject(http, "path", m->path);
	}
	cJSON_AddStringToObject(o, "kind", method_kind_name(m->kind));
	cJSON_AddBoolToObject(o, "streams", m->handler == H_STREAM);
	cJSON_AddBoolToObject(o, "admin", (m->flags & METHOD_ADMIN) != 0);
	params = cJSON_AddArrayToObject(o, "params");
	for (size_t i = 0; params != NULL && i < m->nparams; i++) {
		const struct method_param *p = &m->params[i];
		cJSON *po = cJSON_CreateObject();

		if (po == NULL)
			break;
		cJSON_AddStringToObject(po, "name", p->name);
		cJSON_AddStringToObject(po, "type",
		    method_type_name(p->type) + (p->type == TYPE_ANY ? 0 : 0));
		cJSON_AddStringToObject(po, "in", method_loc_name(p->loc));
		cJSON_AddBoolToObject(po, "required",
		    (p->flags & PARAM_REQUIRED) != 0);
		cJSON_AddBoolToObject(po, "nullable",
		    (p->flags & PARAM_NULLABLE) != 0);
		if (p->def != NULL)
			cJSON_AddItemToObject(po, "default",
			    cJSON_Parse(p->def));
		cJSON_AddItemToArray(params, po);
	}
	return o;
}

static void
local_describe(struct call *call)
{
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(call->params,
	    "method");
	cJSON *res = cJSON_CreateObject(), *arr;

	arr = cJSON_AddArrayToObject(res, "methods");
	if (arr == NULL) {
		cJSON_Delete(res);
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < methods_count(); i++) {
		const struct method *m = methods_at(i);

		if (cJSON_IsString(want) &&
		    strcmp(want->valuestring, m->name) != 0)
			continue;
		cJSON_AddItemToArray(arr, describe_method(m));
	}
	if (cJSON_IsString(want) && cJSON_GetArraySize(arr) == 0) {
		cJSON_Delete(res);
		call_fail(call, E_METHOD_NOT_FOUND, "no method \"%.64s\"",
		    want->valuestring);
		return;
	}
	call_result(call, res);
	cJSON_Delete(res);
}

static void
local_hello(struct call *call)
{
	const struct ucred *peer = server_peer(call->conn);
	cJSON *res = cJSON_CreateObject(), *caps, *lim, *p;
	char fp[SIG_FINGERPRINT_SIZE];

	cJSON_AddNumberToObject(res, "protocol", PROTO_VERSION);
	cJSON_AddStringToObject(res, "daemon", "m8tesd");
	cJSON_AddStringToObject(res, "version", M8TESD_VERSION);
	caps = cJSON_AddArrayToObject(res, "capabilities");
	cJSON_AddItemToArray(caps, cJSON_CreateString("concurrent-calls"));
	cJSON_AddItemToArray(caps, cJSON_CreateString("cancel"));
	cJSON_AddItemToArray(caps, cJSON_CreateString("jsonrpc"));
	cJSON_AddItemToArray(caps, cJSON_CreateString("wait"));
	lim = cJSON_AddObjectToObject(res, "limits");
	cJSON_AddNumberToObject(lim, "max_line", PROTO_MAX_LINE);
	cJSON_AddNumberToObject(lim, "max_depth", PROTO_MAX_DEPTH);
	cJSON_AddNumberToObject(lim, "max_calls", DISPATCH_MAX_CALLS);
	p = cJSON_AddObjectToObject(res, "peer");
	cJSON_AddNumberToObject(p, "uid", peer->uid);
	cJSON_AddNumberToObject(p, "gid", peer->gid);
	cJSON_AddNumberToObject(p, "pid", peer->pid);
	cJSON_AddBoolToObject(p, "admin",
	    peer->uid == 0 || peer->uid == call->d->cfg.admin_uid);
	if (sig_key_fingerprint(call->d->key, fp) == 0)
		cJSON_AddStringToObject(res, "key_fingerprint", fp);
	else
		cJSON_AddNullToObject(res, "key_fingerprint");
	call_result(call, res);
	cJSON_Delete(res);
}

static void
local_stats(struct call *call)
{
	struct upstream_stats us;
	struct server_stats ss = {0};
	cJSON *res = cJSON_CreateObject(), *o;

	upstream_stats(call->d->up, &us);
	if (call->d->srv != NULL)
		server_stats(call->d->srv, &ss);
	o = cJSON_AddObjectToObject(res, "connections");
	cJSON_AddNumberToObject(o, "open", (double)ss.conns);
	cJSON_AddNumberToObject(o, "accepted", (double)ss.accepted);
	cJSON_AddNumberToObject(o, "refused", (double)ss.refused);
	cJSON_AddNumberToObject(o, "dropped", (double)ss.dropped);
	o = cJSON_AddObjectToObject(res, "calls");
	cJSON_AddNumberToObject(o, "total", (double)call->d->calls_total);
	cJSON_AddNumberToObject(o, "failed", (double)call->d->calls_failed);
	o = cJSON_AddObjectToObject(res, "upstream");
	cJSON_AddNumberToObject(o, "requests", (double)us.requests);
	cJSON_AddNumberToObject(o, "retries", (double)us.retries);
	cJSON_AddNumberToObject(o, "failures", (double)us.failures);
	cJSON_AddNumberToObject(o, "active", us.active);
	call_result(call, res);
	cJSON_Delete(res);
}

static void
stop_cb(struct loop *loop, void *arg)
{
	(void)arg;
	loop_stop(loop);
}

static void
inbox_end_cb(void *arg, const struct codec_error *err, long long lagged)
{
	struct call *call = arg;

	call->isub = NULL;
	if (err != NULL) {
		call_error(call, err);
	} else {
		cJSON *o = cJSON_CreateObject(), *l;

		l = cJSON_AddObjectToObject(o, "lagged");
		cJSON_AddNumberToObject(l, "resume_after", (double)lagged);
		call_result(call, o);
		cJSON_Delete(o);
	}
}

static void
local_listen(struct call *call)
{
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(call->params,
	    "events");
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(call->params,
	    "after_seq");
	const cJSON *run = cJSON_GetObjectItemCaseSensitive(call->params,
	    "run_id");
	const cJSON *cons = cJSON_GetObjectItemCaseSensitive(call->params,
	    "consumer");
	struct inbox_target t = {
	    .conn = call->conn,
	    .id = call->id,
	    .after_seq = cJSON_IsNumber(after) ? (int64_t)after->valuedouble :
						 -1,
	    .consumer = cJSON_IsString(cons) ? cons->valuestring : NULL,
	    .run_id = cJSON_IsNumber(run) ? (int64_t)run->valuedouble : 0,
	    .done = inbox_end_cb,
	    .arg = call,
	};
	const cJSON *e;
	int r;

	cJSON_ArrayForEach(e, ev)
	{
		if (!cJSON_IsString(e) || t.nevents == INBOX_MAX_FILTERS) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"events\" must be at most %d strings",
			    INBOX_MAX_FILTERS);
			return;
		}
		t.events[t.nevents++] = e->valuestring;
	}
	if (cJSON_IsString(cons) &&
	    (cons->valuestring[0] == '\0' || strlen(cons->valuestring) > 128)) {
		call_fail(call, E_INVALID_PARAMS,
		    "\"consumer\" must be 1 to 128 characters");
		return;
	}
	r = inbox_subscribe(call->d->inbox, &t, &call->isub);
	if (r < 0)
		call_fail(call, E_INTERNAL, "cannot subscribe: %s",
		    strerror(-r));
	/* The call stays in flight: events until cancel or close. */
}

static void
local_webhooks(struct call *call)
{
	const char *name = call->m->name;
	cJSON *res;

	if (call->d->inbox == NULL) {
		call_fail(call, E_UNAVAILABLE,
		    "no webhook inbox: start m8tesd with --state-dir (and "
		    "--webhook-listen to receive)");
		return;
	}
	if (strcmp(name, "webhooks.listen") == 0) {
		local_listen(call);
		return;
	}
	res = cJSON_CreateObject();
	if (strcmp(name, "webhooks.ack") == 0) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(call->params,
		    "consumer");
		const cJSON *q = cJSON_GetObjectItemCaseSensitive(call->params,
		    "seq");
		int r = inbox_ack(call->d->inbox, c->valuestring,
		    (int64_t)q->valuedouble);

		if (r < 0) {
			cJSON_Delete(res);
			call_fail(call, E_INTERNAL, "cannot record the ack: %s",
			    strerror(-r));
			return;
		}
		cJSON_AddNumberToObject(res, "acked", q->valuedouble);
	} else {
		const cJSON *seq = cJSON_GetObjectItemCaseSensitive(
		    call->params, "seq");
		const cJSON *from = cJSON_GetObjectItemCaseSensitive(
		    call->params, "from_seq");
		const cJSON *to = cJSON_GetObjectItemCaseSensitive(call->params,
		    "to_seq");
		const cJSON *since = cJSON_GetObjectItemCaseSensitive(
		    call->params, "since");
		int64_t f = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble :
		    cJSON_IsNumber(from)	    ? (int64_t)from->valuedouble :
						      0;
		int64_t t = cJSON_IsNumber(seq) ? f :
		    cJSON_IsNumber(to)		? (int64_t)to->valuedouble :
						  0;
		int n;

		if (f == 0 && !cJSON_IsNumber(since)) {
			cJSON_Delete(res);
			call_fail(call, E_INVALID_PARAMS,
			    "give seq, from_seq or since");
			return;
		}
		n = inbox_replay(call->d->inbox, f, t,
		    cJSON_IsNumber(since) ? (int64_t)since->valuedouble : 0);
		if (n < 0) {
			cJSON_Delete(res);
			call_fail(call, E_INTERNAL, "cannot read the inbox");
			return;
		}
		cJSON_AddNumberToObject(res, "replayed", n);
	}
	call_result(call, res);
	cJSON_Delete(res);
}

/* auth.login's validation answer: switch keys only on success. */
static void
auth_validated(struct call *call, const struct up_response *r)
{
	struct dispatch *d = call->d;
	char fp[SIG_FINGERPRINT_SIZE];
	struct apierr a;
	cJSON *res;
	int k;

	if (r->error != 0 || r->status == 0 || r->status >= 400) {
		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&a, r->error ? r->error : -EIO,
			    r->error_text);
		else
			apierr_from_http(&a, r->status, r->body, r->body_len,
			    r->request_id, r->retry_after);
		call_error(call, &a.e);
		apierr_done(&a);
		return;
	}
	k = sig_key_set(d->key, call->new_key, strlen(call->new_key));
	if (k < 0) {
		call_fail(call, E_INVALID_PARAMS, "the key is not usable");
		return;
	}
	if (d->store != NULL && (k = store_key_set(d->store, d->key,
				     (int64_t)time(NULL))) < 0)
		log_warn("auth.login: key in use but not stored: %s",
		    strerror(-k));
	d->key_source = "login";
	(void)sig_key_fingerprint(d->key, fp);
	log_info("auth.login by uid %d: now using key %s",
	    (int)server_peer(call->conn)->uid, fp);
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "fingerprint", fp);
	cJSON_AddBoolToObject(res, "stored", d->store != NULL && k == 0);
	call_result(call, res);
	cJSON_Delete(res);
}

static void
local_auth(struct call *call)
{
	struct dispatch *d = call->d;
	const char *name = call->m->name;
	char fp[SIG_FINGERPRINT_SIZE];
	cJSON *res;

	if (strcmp(name, "auth.login") == 0) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(call->params,
		    "api_key");
		struct up_opts o = {.verb = VERB_GET, .path = "/settings/",
		    .done = upstream_done_cb, .arg = call};
		size_t len = strlen(k->valuestring);
		int r;

		/* The same rules as for any key: no blanks, no controls. */
		if (len == 0 || len > 4096 ||
		    strpbrk(k->valuestring, " \t\r\n") != NULL) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"api_key\" is empty or has blanks in it");
			return;
		}
		call->new_key = strdup(k->valuestring);
		if (call->new_key == NULL) {
			call_fail(call, E_NOMEM, "out of memory");
			return;
		}
		/* Wipe the copy in the params: only new_key holds it now. */
		explicit_bzero(k->valuestring, len);
		o.key = call->new_key;
		r = upstream_start(d->up, &o, &call->up);
		if (r < 0)
			call_fail(call, E_INTERNAL, "cannot validate the key");
		return;
	}
	res = cJSON_CreateObject();
	if (strcmp(name, "auth.logout") == 0) {
		sig_key_clear(d->key);
		if (d->store != NULL)
			(void)store_key_clear(d->store);
		d->key_source = "none";
		log_info("auth.logout by uid %d",
		    (int)server_peer(call->conn)->uid);
		cJSON_AddBoolToObject(res, "logged_out", true);
	} else {
		bool set = sig_key_fingerprint(d->key, fp) == 0;

		cJSON_AddBoolToObject(res, "key_set", set);
		if (set)
			cJSON_AddStringToObject(res, "fingerprint", fp);
		else
			cJSON_AddNullToObject(res, "fingerprint");
		cJSON_AddStringToObject(res, "source",
		    set && d->key_source ? d->key_source : "none");
	}
	call_result(call, res);
	cJSON_Delete(res);
}

static void
local_audit(struct call *call)
{
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(call->params,
	    "uid");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(call->params,
	    "method");
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(call->params,
	    "since");
	const cJSON *limit = cJSON_GetObjectItemCaseSensitive(call->params,
	    "limit");
	cJSON *res;

	if (call->d->audit == NULL) {
		call_fail(call, E_UNAVAILABLE,
		    "no audit log: m8tesd runs without a state directory");
		return;
	}
	if (cJSON_IsNumber(limit) &&
	    (limit->valuedouble < 1 || limit->valuedouble > 10000)) {
		call_fail(call, E_INVALID_PARAMS, "\"limit\" must be 1..10000");
		return;
	}
	res = audit_list(call->d->audit,
	    cJSON_IsNumber(uid) ? (int64_t)uid->valuedouble : -1,
	    cJSON_IsString(m) ? m->valuestring : NULL,
	    cJSON_IsNumber(since) ? (int64_t)since->valuedouble * 1000 : 0,
	    cJSON_IsNumber(limit) ? (unsigned)limit->valuedouble : 100);
	if (res == NULL) {
		call_fail(call, E_INTERNAL, "cannot read the audit log");
		return;
	}
	call_result(call, res);
	cJSON_Delete(res);
}

static void
local_call(struct call *call)
{
	const char *name = call->m->name;
	cJSON *res;

	if (strcmp(name, "daemon.ping") == 0) {
		res = cJSON_CreateObject();
		cJSON_AddBoolToObject(res, "pong", true);
		call_result(call, res);
		cJSON_Delete(res);
	} else if (strcmp(name, "daemon.hello") == 0) {
		local_hello(call);
	} else if (strcmp(name, "daemon.describe") == 0) {
		local_describe(call);
	} else if (strcmp(name, "daemon.stats") == 0) {
		local_stats(call);
	} else if (strncmp(name, "webhooks.", 9) == 0) {
		local_webhooks(call);
	} else if (strncmp(name, "auth.", 5) == 0) {
		local_auth(call);
	} else if (strcmp(name, "audit.list") == 0) {
		local_audit(call);
	} else if (strcmp(name, "daemon.shutdown") == 0) {
		log_info("shutdown requested by pid %d",
		    (int)server_peer(call->conn)->pid);
		call->d->shutdown = true;
		(void)loop_timer_add(call->d->loop, 0, stop_cb, NULL, NULL);
		res = cJSON_CreateObject();
		cJSON_AddBoolToObject(res, "stopping", true);
		call_result(call, res);
		cJSON_Delete(res);
	} else if (strcmp(name, "cancel") == 0) {
		const cJSON *target = cJSON_GetObjectItemCaseSensitive(
		    call->params, "id");
		struct call *other = find_call(call->cs, target);

		if (other == NULL || other == call) {
			call_fail(call, E_NOT_FOUND_CALL,
			    "no call with that id in flight");
			return;
		}
		call_fail(other, E_CANCELLED, "cancelled");
		res = cJSON_CreateObject();
		cJSON_AddBoolToObject(res, "cancelled", true);
		call_result(call, res);
		cJSON_Delete(res);
	} else {
		call_fail(call, E_INTERNAL, "no local handler for %s", name);
	}
}

/* ---- upstream methods --------------------------------------------------- */

static bool
run_terminal(const cJSON *run)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(run, "status");

	if (!cJSON_IsString(s))
		return false;
	return strcmp(s->valuestring, "completed") == 0 ||
	    strcmp(s->valuestring, "failed") == 0 ||
	    strcmp(s->valuestring, "cancelled") == 0 ||
	    strcmp(s->valuestring, "closed") == 0;
}

/* The next cursor the SDK would use: next_starting_after, else last id. */
static int
normalise_page(cJSON *page)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(page, "data");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(page, "has_more");
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(page,
	    "next_starting_after");
	const cJSON *last;

	if (!cJSON_IsArray(data) || !cJSON_IsBool(more))
		return -EINVAL;
	if (next != NULL && !cJSON_IsNull(next))
		return 0;
	cJSON_DeleteItemFromObjectCaseSensitive(page, "next_starting_after");
	last = cJSON_GetArrayItem(data, cJSON_GetArraySize(data) - 1);
	last = cJSON_GetObjectItemCaseSensitive(last, "id");
	if (cJSON_IsTrue(more) && last != NULL)
		cJSON_AddItemToObject(page, "next_starting_after",
		    cJSON_Duplicate(last, 0));
	else
		cJSON_AddNullToObject(page, "next_starting_after");
	return 0;
}

static void
answer_download(struct call *call, const struct up_response *r)
{
	const cJSON *fn = request_param(call->params, "filename");
	char sha[SIG_SHA256_HEX_SIZE];
	cJSON *res = cJSON_CreateObject();
	char *b64;

	b64 = sig_base64(r->body, r->body_len);
	if (res == NULL || b64 == NULL) {
		free(b64);
		cJSON_Delete(res);
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	sig_sha256_hex(r->body, r->body_len, sha);
	cJSON_AddStringToObject(res, "filename", fn->valuestring);
	cJSON_AddNumberToObject(res, "size", (double)r->body_len);
	cJSON_AddStringToObject(res, "content_type",
	    r->content_type[0] ? r->content_type : "application/octet-stream");
	cJSON_AddStringToObject(res, "sha256", sha);
	cJSON_AddStringToObject(res, "data_base64", b64);
	free(b64);
	call_result(call, res);
	cJSON_Delete(res);
}

static void
poll_again_cb(struct loop *loop, void *arg)
{
	struct call *call = arg;

	(void)loop;
	call->timer = NULL;
	start_upstream(call, call->poll_path, NULL, VERB_GET, false);
}

/* Waits one interval (bounded by the deadline), then polls again. */
static void
poll_later(struct call *call)
{
	uint64_t now = loop_update_time(call->d->loop);
	uint64_t ms = (uint64_t)(call->interval_s * 1000);

	if (now >= call->deadline) {
		call_fail(call, E_TIMEOUT, "the run did not finish within "
					   "the timeout");
		return;
	}
	if (now + ms > call->deadline)
		ms = call->deadline - now;
	if (loop_timer_add(call->d->loop, ms, poll_again_cb, call,
		&call->timer) < 0)
		call_fail(call, E_NOMEM, "out of memory");
}

static double
num_param(const cJSON *params, const char *name, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Sets up the poll phase on run_id; user_id scopes the GET. */
static int
poll_setup(struct call *call, const cJSON *run_id, const cJSON *user_id)
{
	const struct method *get = methods_find("runs.poll");
	cJSON *p = cJSON_CreateObject();
	char err[256], *body = NULL;
	int r;

	if (p == NULL)
		return -ENOMEM;
	cJSON_AddItemToObject(p, "run_id", cJSON_Duplicate(run_id, 0));
	if (cJSON_IsString(user_id))
		cJSON_AddStringToObject(p, "user_id", user_id->valuestring);
	free(call->poll_path);
	call->poll_path = NULL;
	r = request_build(get, p, &call->poll_path, &body, err, sizeof(err));
	free(body);
	cJSON_Delete(p);
	if (r < 0)
		return r;
	call->phase = PHASE_POLL;
	return 0;
}

static void
answer_poll(struct call *call, cJSON *run)
{
	if (!run_terminal(run)) {
		poll_later(call);
		return;
	}
	call_result(call, run);
}

/*
 * The secret of a webhook endpoint is shown once, when it is created or
 * rotated through the daemon: keep it so the receiver can verify.
 */
static void
capture_secret(struct call *call, const cJSON *obj)
{
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(obj, "secret");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	char eid[32] = "";
	int r;

	if (call->d->store == NULL || !cJSON_IsString(sec) ||
	    strlen(sec->valuestring) < 16 || strstr(sec->valuestring, "...") ||
	    strchr(sec->valuestring, '*'))
		return;
	if (cJSON_IsNumber(id))
		(void)snprintf(eid, sizeof(eid), "%lld",
		    (long long)id->valuedouble);
	r = store_secret_add(call->d->store, sec->valuestring,
	    eid[0] ? eid : NULL, (int64_t)time(NULL), 0, NULL);
	if (r < 0 && r != -EEXIST) {
		log_warn("cannot store the secret of webhook endpoint %s: %s",
		    eid, strerror(-r));
		return;
	}
	if (call->d->webhook != NULL)
		(void)webhook_add_secret(call->d->webhook, sec->valuestring,
		    strlen(sec->valuestring), 0);
	log_info("stored the signing secret of webhook endpoint %s", eid);
}

static void
answer_success(struct call *call, const struct up_response *r)
{
	const struct method *m = call->m;
	cJSON *json;

	if (call->phase == PHASE_FIRST && m->kind == KIND_RAW) {
		answer_download(call, r);
		return;
	}
	if (call->phase == PHASE_FIRST && m->kind == KIND_EMPTY) {
		json = cJSON_CreateObject();
		cJSON_AddBoolToObject(json, "ok", true);
		call_result(call, json);
		cJSON_Delete(json);
		return;
	}
	json = r->body != NULL ? cJSON_ParseWithLength(r->body, r->body_len) :
				 NULL;
	if (json == NULL) {
		call_fail(call, E_BAD_UPSTREAM,
		    "the upstream answered %ld with a body that is not JSON",
		    r->status);
		return;
	}
	if (call->phase == PHASE_POLL) {
		answer_poll(call, json);
		cJSON_Delete(json);
		return;
	}
	switch (m->kind) {
	case KIND_PAGE:
		if (normalise_page(json) < 0) {
			call_fail(call, E_BAD_UPSTREAM,
			    "the upstream page lacks data or has_more");
			goto out;
		}
		break;
	case KIND_ARR:
		/* Some lists come as a bare array, some as {"data": [...]}. */
		if (cJSON_IsObject(json)) {
			cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(
			    json, "data");

			if (!cJSON_IsArray(data)) {
				cJSON_Delete(data);
				call_fail(call, E_BAD_UPSTREAM,
				    "the upstream list is not an array");
				goto out;
			}
			cJSON_Delete(json);
			json = data;
		}
		break;
	default:
		break;
	}
	if (m->handler == H_WAIT || m->handler == H_POLL) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "id");
		const cJSON *uid = cJSON_GetObjectItemCaseSensitive(json,
		    "user_id");

		if (m->handler == H_POLL) {
			answer_poll(call, json);
			goto out;
		}
		if (id == NULL || cJSON_IsNull(id)) {
			call_fail(call, E_BAD_UPSTREAM,
			    "the upstream run has no id");
			goto out;
		}
		if (!cJSON_IsString(uid))
			uid = cJSON_GetObjectItemCaseSensitive(call->params,
			    "user_id");
		if (poll_setup(call, id, uid) < 0) {
			call_fail(call, E_NOMEM, "out of memory");
			goto out;
		}
		answer_poll(call, json);
		goto out;
	}
	if (strcmp(m->name, "webhooks.create") == 0 ||
	    strcmp(m->name, "webhooks.update") == 0)
		capture_secret(call, json);
	call_result(call, json);
out:
	cJSON_Delete(json);
}

static void
upstream_done_cb(const struct up_response *r, void *arg)
{
	struct call *call = arg;
	struct apierr a;

	call->up = NULL;
	call->status = r->status;
	if (call->new_key != NULL) {
		auth_validated(call, r);
		return;
	}
	if (r->error != 0 || r->status >= 400 || r->status == 0) {
		bool server_side = r->error != 0 || r->status >= 500;

		/* Polling swallows server and network errors until the end. */
		if (call->phase == PHASE_POLL && server_side) {
			poll_later(call);
			return;
		}
		if (r->error != 0 || r->status == 0)
			apierr_from_transport(&a, r->error ? r->error : -EIO,
			    r->error_text);
		else
			apierr_from_http(&a, r->status, r->body, r->body_len,
			    r->request_id, r->retry_after);
		log_debug("%s: %s (%ld) after %d attempt(s)", call->m->name,
		    a.e.code, r->status, r->attempts);
		call_error(call, &a.e);
		apierr_done(&a);
		return;
	}
	answer_success(call, r);
}

static void
start_upstream(struct call *call, const char *path, const char *body,
    enum method_verb verb, bool idem)
{
	struct up_opts o = {
	    .verb = verb,
	    .path = path,
	    .body = body,
	    .idem_key = idem ? call->idem_key : NULL,
	    .done = upstream_done_cb,
	    .arg = call,
	};
	int r;

	r = upstream_start(call->d->up, &o, &call->up);
	if (r == -ENOKEY)
		call_fail(call, E_NO_KEY,
		    "the daemon has no API key (see m8tes auth login)");
	else if (r < 0)
		call_fail(call, E_INTERNAL, "cannot start the request: %s",
		    strerror(-r));
}

/* Inserts "stream": false for the methods that wait on a run. */
static int
force_no_stream(char **body)
{
	cJSON *o = cJSON_Parse(*body);
	char *s;

	if (o == NULL)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(o, "stream");
	cJSON_AddBoolToObject(o, "stream", false);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s == NULL)
		return -ENOMEM;
	free(*body);
	*body = s;
	return 0;
}

static void
stream_end_cb(void *arg, const cJSON *result, const struct codec_error *err,
    long long lagged)
{
	struct call *call = arg;

	call->sub = NULL;
	call->status = err != NULL ? err->status : 200;
	if (lagged >= 0) {
		cJSON *o = cJSON_CreateObject(), *l;
		char *line = NULL;

		l = cJSON_AddObjectToObject(o, "lagged");
		if (l != NULL &&
		    cJSON_AddNumberToObject(l, "resume_after", (double)lagged) &&
		    (call->id == NULL ||
			cJSON_AddItemReferenceToObject(o, "id", call->id))) {
			line = cJSON_PrintUnformatted(o);
		}
		cJSON_Delete(o);
		if (line != NULL) {
			size_t n = strlen(line);
			char *nl = realloc(line, n + 2);

			if (nl != NULL) {
				nl[n] = '\n';
				nl[n + 1] = '\0';
				call_finish(call, nl, n + 1);
				return;
			}
			free(line);
		}
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (err != NULL)
		call_error(call, err);
	else
		call_result(call, result);
}

/* An integer run id from a run_id param (number or digit string). */
static int
run_id_of(const cJSON *v, int64_t *ret)
{
	char *end;
	long long n;

	if (cJSON_IsNumber(v)) {
		*ret = (int64_t)v->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return -EINVAL;
	errno = 0;
	n = strtoll(v->valuestring, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0)
		return -EINVAL;
	*ret = n;
	return 0;
}

static void
stream_call(struct call *call, const char *path, const char *body)
{
	const struct method *m = call->m;
	const cJSON *rid = request_param(call->params, "run_id");
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(call->params,
	    "after_seq");
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(call->params,
	    "user_id");
	struct stream_start st = {
	    .verb = m->verb,
	    .path = path,
	    .body = body,
	    .idem_key = (m->flags & METHOD_IDEM) ? call->idem_key : NULL,
	    .user_id = cJSON_IsString(uid) ? uid->valuestring : NULL,
	};
	struct stream_target t = {
	    .conn = call->conn,
	    .id = call->id,
	    .text_only = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		call->params, "text_only")),
	    .done = stream_end_cb,
	    .arg = call,
	};
	int r;

	if (rid != NULL) {
		if (run_id_of(rid, &st.run_id) < 0) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"run_id\" must be a run's integer id to stream");
			return;
		}
		st.has_run_id = true;
	}
	if (cJSON_IsNumber(after)) {
		if (after->valuedouble < 0) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"after_seq\" must not be negative");
			return;
		}
		t.after_seq = (uint64_t)after->valuedouble;
	}
	/* Any outcome, even at once, arrives through stream_end_cb. */
	r = streams_subscribe(call->d->streams, &st, &t, &call->sub);
	if (r < 0)
		call_fail(call, E_NOMEM, "out of memory");
}

static void
upstream_call(struct call *call)
{
	const struct method *m = call->m;
	const cJSON *stream = cJSON_GetObjectItemCaseSensitive(call->params,
	    "stream");
	char err[256] = "", *path = NULL, *body = NULL;
	int r;

	bool streaming = m->handler == H_STREAM && !cJSON_IsFalse(stream);
	/* apps.connect: an api_key selects the API-key route (as the SDK). */
	if (strcmp(m->name, "apps.connect") == 0) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(call->params,
		    "api_key");
		const cJSON *ru = cJSON_GetObjectItemCaseSensitive(
		    call->params, "redirect_uri");

		if (cJSON_IsString(k)) {
			m = methods_find("apps.connect_api_key");
			cJSON_DeleteItemFromObjectCaseSensitive(call->params,
			    "redirect_uri");
		} else if (!cJSON_IsString(ru)) {
			call_fail(call, E_INVALID_PARAMS,
			    "pass redirect_uri for OAuth apps or api_key for "
			    "API-key apps");
			return;
		}
	}
	r = request_build(m, call->params, &path, &body, err, sizeof(err));
	if (r == -EINVAL) {
		call_fail(call, E_INVALID_PATH, "%s", err);
		return;
	}
	if (r < 0) {
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (m->handler == H_WAIT && body != NULL &&
	    force_no_stream(&body) < 0) {
		free(path);
		free(body);
		call_fail(call, E_NOMEM, "out of memory");
		return;
	}
	if (m->handler == H_POLL || m->handler == H_WAIT) {
		double to = num_param(call->params,
		    m->handler == H_POLL ? "timeout" : "poll_timeout",
		    call->d->cfg.poll_timeout_s);

		call->interval_s = num_param(call->params,
		    m->handler == H_POLL ? "interval" : "poll_interval",
		    call->d->cfg.poll_interval_s);
		if (!(call->interval_s >= 0.01 && call->interval_s <= 3600) ||
		    !(to > 0 && to <= MAX_WAIT_S)) {
			free(path);
			free(body);
			call_fail(call, E_INVALID_PARAMS,
			    "interval must be 0.01..3600 s and timeout "
			    "0..86400 s");
			return;
		}
		call->deadline = loop_update_time(call->d->loop) +
		    (uint64_t)(to * 1000);
	}
	if (streaming) {
		stream_call(call, path, body);
	} else if (m->handler == H_POLL) {
		call->phase = PHASE_POLL;
		call->poll_path = path;
		path = NULL;
		start_upstream(call, call->poll_path, NULL, VERB_GET, false);
	} else {
		start_upstream(call, path, body, m->verb,
		    (m->flags & METHOD_IDEM) != 0);
	}
	free(path);
	free(body);
}

/* ---- request lines ------------------------------------------------------ */

static bool
is_admin(const struct dispatch *d, const struct ucred *peer)
{
	return peer->uid == 0 || peer->uid == d->cfg.admin_uid;
}

void
dispatch_line(struct conn *c, const char *line, size_t len, void *arg)
{
	struct dispatch *d = arg;
	struct codec_request req;
	const struct method *m;
	const char *code = NULL;
	struct cstate *cs;
	struct call *call;
	char err[256];
	const cJSON *k;

	if (codec_request_parse(line, len, &req, &code, err, sizeof(err)) <
	    0) {
		reply_error(c, req.id, req.jsonrpc, code, err);
		goto out;
	}
	m = methods_find(req.method);
	if (m == NULL) {
		(void)snprintf(err, sizeof(err), "no method \"%.64s\"",
		    req.method);
		reply_error(c, req.id, req.jsonrpc, E_METHOD_NOT_FOUND, err);
		goto out;
	}
	if (method_check_params(m, req.params, err, sizeof(err)) < 0) {
		reply_error(c, req.id, req.jsonrpc, E_INVALID_PARAMS, err);
		goto out;
	}
	if ((m->flags & METHOD_ADMIN) && !is_admin(d, server_peer(c))) {
		reply_error(c, req.id, req.jsonrpc, E_FORBIDDEN,
		    "this method needs root or the daemon's own user");
		goto out;
	}
	cs = cstate_of(c);
	if (cs == NULL) {
		reply_error(c, req.id, req.jsonrpc, E_NOMEM, "out of memory");
		goto out;
	}
	if (req.id != NULL && find_call(cs, req.id) != NULL) {
		reply_error(c, req.id, req.jsonrpc, E_DUPLICATE_ID,
		    "a call with this id is already in flight");
		goto out;
	}
	if (cs->ncalls >= DISPATCH_MAX_CALLS) {
		reply_error(c, req.id, req.jsonrpc, E_TOO_MANY_CALLS,
		    "too many calls in flight on this connection");
		goto out;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		reply_error(c, req.id, req.jsonrpc, E_NOMEM, "out of memory");
		goto out;
	}
	call->d = d;
	call->conn = c;
	call->m = m;
	call->started = loop_now(d->loop);
	call->jsonrpc = req.jsonrpc;
	call->id = req.id != NULL ? cJSON_Duplicate(req.id, 0) : NULL;
	call->params = req.params != NULL ?
	    cJSON_Duplicate(req.params, 1) :
	    cJSON_CreateObject();
	call->cs = cs;
	TAILQ_INSERT_TAIL(&cs->calls, call, link);
	cs->ncalls++;
	d->calls_total++;
	if (call->params == NULL || (req.id != NULL && call->id == NULL)) {
		call_fail(call, E_NOMEM, "out of memory");
		goto out;
	}
	k = cJSON_GetObjectItemCaseSensitive(call->params, "idempotency_key");
	if (cJSON_IsString(k) && k->valuestring[0] != '\0' &&
	    strlen(k->valuestring) < sizeof(call->idem_key) &&
	    strpbrk(k->valuestring, "\r\n") == NULL)
		(void)snprintf(call->idem_key, sizeof(call->idem_key), "%s",
		    k->valuestring);
	else if (m->flags & METHOD_IDEM)
		sig_random_uuid(call->idem_key);
	if (m->handler == H_LOCAL)
		local_call(call);
	else
		upstream_call(call);
out:
	codec_request_done(&req);
}

void
dispatch_overlong(struct conn *c, void *arg)
{
	(void)arg;
	reply_error(c, NULL, false, E_LINE_TOO_LONG,
	    "line longer than the protocol limit; skipped up to its newline");
}

void
dispatch_closed(struct conn *c, void *arg)
{
	struct cstate *cs = server_data(c);
	struct call *call;

	(void)arg;
	if (cs == NULL)
		return;
	while ((call = TAILQ_FIRST(&cs->calls)) != NULL)
		call_free(call);
	free(cs);
	server_set_data(c, NULL);
}

size_t
dispatch_pending(struct conn *c, void *arg)
{
	struct cstate *cs = server_data(c);

	(void)arg;
	return cs != NULL ? cs->ncalls : 0;
}

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
#include "dispatch_int.h"
#include "inbox.h"
#include "log.h"
#include "policy.h"
#include "loop.h"
#include "methods.h"
#include "request.h"
#include "server.h"
#include "sig.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"
#include "webhook.h"


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
	TAILQ_INIT(&d->fetches);
	*ret = d;
	return 0;
}

void
dispatch_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	reads_free(d);
	free(d);
}

void
dispatch_set_cache(struct dispatch *d, struct cache *c)
{
	d->cache = c;
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
dispatch_set_policy(struct dispatch *d, struct policy *p)
{
	d->policy = p;
}

void
dispatch_set_reload(struct dispatch *d,
    int (*fn)(void *arg, char *err, size_t errlen), void *arg)
{
	d->reload = fn;
	d->reload_arg = arg;
}

void
dispatch_set_poll_interval(struct dispatch *d, double seconds)
{
	d->cfg.poll_interval_s = seconds;
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

/* The peer's rule, matched again when the policy was reloaded. */
static const struct policy_rule *
rule_of(struct dispatch *d, struct conn *c, struct cstate *cs)
{
	const struct ucred *p = server_peer(c);

	if (d->policy == NULL)
		return NULL;
	if (cs->rule == NULL || cs->rule_gen != policy_generation(d->policy)) {
		cs->rule = policy_match(d->policy, p->uid, p->gid,
		    cs->user[0] ? cs->user : NULL);
		cs->rule_gen = policy_generation(d->policy);
	}
	return cs->rule;
}

/*
 * The peer's user name, from a small cache: a burst of connections (a
 * script running m8tes in a loop) costs one NSS lookup, which may block.
 */
static void
user_name(struct dispatch *d, uid_t uid, char *buf, size_t len)
{
	uint64_t now = loop_update_time(d->loop);
	unsigned i;

	for (i = 0; i < DISPATCH_NAMES; i++)
		if (d->names[i].expires_ms > now && d->names[i].uid == uid)
			break;
	if (i == DISPATCH_NAMES) {
		i = d->names_next++ % DISPATCH_NAMES;
		if (policy_user_name(uid, d->names[i].name,
			sizeof(d->names[i].name)) < 0)
			d->names[i].name[0] = '\0';
		d->names[i].uid = uid;
		d->names[i].expires_ms = now + DISPATCH_NAME_TTL_MS;
	}
	(void)snprintf(buf, len, "%s", d->names[i].name);
}

int
dispatch_accepted(struct conn *c, void *arg, const char **ret_reason)
{
	static const char cap[] =
	    "{\"error\":{\"code\":\"" E_BUSY "\",\"message\":\"too many "
	    "connections for this user\",\"retryable\":true}}\n";
	struct dispatch *d = arg;
	const struct ucred *p = server_peer(c);
	struct cstate *cs = cstate_of(c);
	int r;

	if (cs == NULL)
		return -ENOMEM;
	if (d->policy == NULL)
		return 0;
	/* Resolved once per connection, never on the call path. */
	user_name(d, p->uid, cs->user, sizeof(cs->user));
	r = policy_conn_open(d->policy, rule_of(d, c, cs), p->uid);
	if (r < 0) {
		log_info("refusing a connection of uid %d: %s", (int)p->uid,
		    r == -EDQUOT ? "too many connections for this user" :
				   strerror(-r));
		server_set_data(c, NULL);
		free(cs);
		*ret_reason = cap;
		return r;
	}
	cs->counted = true;
	return 0;
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

void
call_free(struct call *call)
{
	if (call->up != NULL)
		upstream_cancel(call->d->up, call->up);
	if (call->sub != NULL)
		streams_unsubscribe(call->sub);
	reads_call_done(call);
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
	free(call->write_path);
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

void
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

void
call_finish_fd(struct call *call, char *line, size_t len, int fd)
{
	TAILQ_REMOVE(&call->cs->calls, call, link);
	call->cs->ncalls--;
	call->cs = NULL;
	if (line == NULL || server_send_fd(call->conn, line, len, fd) < 0)
		log_debug("%s: the file descriptor was not sent",
		    call->m->name);
	free(line);
	call_free(call);
}

/* Final success line; result is borrowed. Frees the call. */
void
call_result(struct call *call, const cJSON *result)
{
	size_t len = 0;
	char *line = codec_result_served(call->id, call->jsonrpc, result,
	    call->served, &len);

	call_finish(call, line, len);
}

/* Final error line. Frees the call. */
void
call_error(struct call *call, const struct codec_error *e)
{
	size_t len = 0;
	char *line = codec_error_line(call->id, call->jsonrpc, e, &len);

	call->d->calls_failed++;
	call_finish(call, line, len);
}

void
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

struct call *
call_find(struct cstate *cs, const cJSON *id)
{
	struct call *call;

	TAILQ_FOREACH(call, &cs->calls, link)
	if (same_id(call->id, id))
		return call;
	return NULL;
}

/* ---- request lines ------------------------------------------------------ */

static bool
is_admin(const struct dispatch *d, const struct ucred *peer)
{
	return peer->uid == 0 || peer->uid == d->cfg.admin_uid;
}

/*
 * The policy's word on a call: allowed (params may gain a forced
 * user_id), refused, or over the peer's rate. 0 or a reply was sent.
 */
static int
check_policy(struct dispatch *d, struct conn *c, struct cstate *cs,
    const struct codec_request *req, const struct method *m, cJSON *params)
{
	const struct ucred *p = server_peer(c);
	const struct policy_rule *rule = rule_of(d, c, cs);
	char reason[256];
	uint64_t wait_ms = 0;
	int r;

	if (rule == NULL) {
		if ((m->flags & METHOD_ADMIN) && !is_admin(d, p)) {
			reply_error(c, req->id, req->jsonrpc, E_FORBIDDEN,
			    "this method needs root or the daemon's own user");
			return -EPERM;
		}
		return 0;
	}
	r = policy_check_call(rule, is_admin(d, p), m->name, params, reason,
	    sizeof(reason));
	if (r < 0) {
		reply_error(c, req->id, req->jsonrpc,
		    r == -ENOMEM ? E_NOMEM : E_FORBIDDEN,
		    r == -ENOMEM ? "out of memory" : reason);
		return r;
	}
	if (m->verb != VERB_NONE &&
	    policy_rate_take(d->policy, rule, p->uid, loop_now(d->loop),
		&wait_ms) == -EAGAIN) {
		struct codec_error e = {.code = E_BUSY,
		    .message = "request rate of this user exceeded",
		    .retry_after = (double)wait_ms / 1000.0,
		    .retryable = true};
		size_t len = 0;
		char *line = codec_error_line(req->id, req->jsonrpc, &e, &len);

		send_owned(c, line, len);
		return -EAGAIN;
	}
	return 0;
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
	cs = cstate_of(c);
	if (cs == NULL) {
		reply_error(c, req.id, req.jsonrpc, E_NOMEM, "out of memory");
		goto out;
	}
	/* The tenant is forced on the request's own params (before copy). */
	if (req.params == NULL && d->policy != NULL) {
		cJSON *empty = cJSON_AddObjectToObject(req.root, "params");

		req.params = empty;
	}
	if (check_policy(d, c, cs, &req, m, (cJSON *)(uintptr_t)req.params) <
	    0)
		goto out;
	if (req.id != NULL && call_find(cs, req.id) != NULL) {
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

	if (cs == NULL)
		return;
	while ((call = TAILQ_FIRST(&cs->calls)) != NULL)
		call_free(call);
	if (cs->counted && ((struct dispatch *)arg)->policy != NULL)
		policy_conn_close(((struct dispatch *)arg)->policy,
		    server_peer(c)->uid);
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

/*
 * SPDX-License-Identifier: MIT
 *
 * The daemon's own methods: daemon.*, cancel, the webhook inbox
 * (webhooks.listen/ack/replay), auth.* and audit.list. Part of dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "audit.h"
#include "cache.h"
#include "codec.h"
#include "dispatch_int.h"
#include "inbox.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "policy.h"
#include "request.h"
#include "server.h"
#include "sig.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"
#include "webhook.h"

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

/* How the policy sees the peer: name, [peer] section, tenant, admin. */
static void
hello_peer(struct call *call, cJSON *p)
{
	const struct ucred *peer = server_peer(call->conn);
	const struct policy_rule *r = call->cs->rule;
	const char *rule = r != NULL ? policy_rule_name(r) : NULL;
	const char *tenant = r != NULL ? policy_rule_tenant(r) : NULL;

	cJSON_AddNumberToObject(p, "uid", peer->uid);
	cJSON_AddNumberToObject(p, "gid", peer->gid);
	cJSON_AddNumberToObject(p, "pid", peer->pid);
	if (call->cs->user[0] != '\0')
		cJSON_AddStringToObject(p, "user", call->cs->user);
	else
		cJSON_AddNullToObject(p, "user");
	if (rule != NULL)
		cJSON_AddStringToObject(p, "rule", rule);
	else
		cJSON_AddNullToObject(p, "rule");
	if (tenant != NULL)
		cJSON_AddStringToObject(p, "tenant", tenant);
	else
		cJSON_AddNullToObject(p, "tenant");
	cJSON_AddBoolToObject(p, "admin", peer->uid == 0 ||
	    peer->uid == call->d->cfg.admin_uid ||
	    (r != NULL && policy_rule_admin(r)));
}

static void
local_hello(struct call *call)
{
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
	if (p != NULL)
		hello_peer(call, p);
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
	if (call->d->streams != NULL) {
		struct streams_stats st;

		streams_stats(call->d->streams, &st);
		o = cJSON_AddObjectToObject(res, "streams");
		cJSON_AddNumberToObject(o, "runs", (double)st.runs);
		cJSON_AddNumberToObject(o, "subscribers", (double)st.subs);
		cJSON_AddNumberToObject(o, "upstream_streams",
		    (double)st.upstream_streams);
		cJSON_AddNumberToObject(o, "reattaches", (double)st.reattaches);
		cJSON_AddNumberToObject(o, "events", (double)st.events);
		cJSON_AddNumberToObject(o, "deliveries", (double)st.deliveries);
		cJSON_AddNumberToObject(o, "lagged", (double)st.lagged);
	}
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
void
local_auth_validated(struct call *call, const struct up_response *r)
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

/* A key as sig_key_set takes it, checked before it is sent anywhere. */
static bool
key_text_ok(const char *s, size_t len)
{
	if (len == 0 || len > 4096)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
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
		    .done = calls_upstream_done_cb, .arg = call};
		size_t len = strlen(k->valuestring);
		int r;

		/* The same rules as for any key: no blanks, no controls. */
		if (!key_text_ok(k->valuestring, len)) {
			call_fail(call, E_INVALID_PARAMS,
			    "\"api_key\" must be 1 to 4096 printable "
			    "characters without blanks");
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
local_cache(struct call *call)
{
	struct cache *c = call->d->cache;
	struct cache_stats st;
	cJSON *res;

	if (c == NULL) {
		call_fail(call, E_UNAVAILABLE,
		    "no cache: m8tesd runs without a cache directory");
		return;
	}
	res = cJSON_CreateObject();
	if (strcmp(call->m->name, "cache.clear") == 0) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(call->params,
		    "resource");
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(call->params,
		    "prefix");
		int n = cache_clear(c, cJSON_IsString(r) ? r->valuestring : NULL,
		    cJSON_IsString(p) ? p->valuestring : NULL);

		if (n < 0) {
			cJSON_Delete(res);
			call_fail(call, E_INTERNAL, "cannot clear the cache: %s",
			    strerror(-n));
			return;
		}
		cJSON_AddNumberToObject(res, "removed", n);
	} else {
		cache_stats(c, &st);
		cJSON_AddNumberToObject(res, "entries", (double)st.entries);
		cJSON_AddNumberToObject(res, "bytes", (double)st.entry_bytes);
		cJSON_AddNumberToObject(res, "max_bytes",
		    (double)st.max_entry_bytes);
		cJSON_AddNumberToObject(res, "blobs", (double)st.blobs);
		cJSON_AddNumberToObject(res, "blob_bytes", (double)st.blob_bytes);
		cJSON_AddNumberToObject(res, "max_blob_bytes",
		    (double)st.max_blob_bytes);
		cJSON_AddNumberToObject(res, "hits", (double)st.hits);
		cJSON_AddNumberToObject(res, "misses", (double)st.misses);
		cJSON_AddNumberToObject(res, "stale", (double)st.stale);
		cJSON_AddNumberToObject(res, "bypass", (double)st.bypass);
		cJSON_AddNumberToObject(res, "hit_ratio", st.hit_ratio);
		cJSON_AddNumberToObject(res, "evictions", (double)st.evictions);
		cJSON_AddNumberToObject(res, "blob_evictions",
		    (double)st.blob_evictions);
		cJSON_AddNumberToObject(res, "rebuilds", (double)st.rebuilds);
		cJSON_AddBoolToObject(res, "available", st.available);
	}
	call_result(call, res);
	cJSON_Delete(res);
}

void
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
	} else if (strcmp(name, "daemon.reload") == 0) {
		char err[512] = "";
		int r = call->d->reload != NULL ?
		    call->d->reload(call->d->reload_arg, err, sizeof(err)) :
		    -ENOTSUP;

		if (r < 0) {
			call_fail(call, E_INVALID_PARAMS, "%s",
			    err[0] ? err : "no configuration to reload");
			return;
		}
		res = cJSON_CreateObject();
		cJSON_AddBoolToObject(res, "reloaded", true);
		if (err[0] != '\0')
			cJSON_AddStringToObject(res, "note", err);
		call_result(call, res);
		cJSON_Delete(res);
	} else if (strncmp(name, "webhooks.", 9) == 0) {
		local_webhooks(call);
	} else if (strncmp(name, "auth.", 5) == 0) {
		local_auth(call);
	} else if (strcmp(name, "audit.list") == 0) {
		local_audit(call);
	} else if (strncmp(name, "cache.", 6) == 0) {
		local_cache(call);
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
		struct call *other = call_find(call->cs, target);

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

/*
 * SPDX-License-Identifier: MIT
 *
 * POST /__mock/deliver: send signed webhook deliveries to a receiver under
 * test, one blocking libcurl transfer after another in the calling
 * connection's thread, and answer with the HTTP statuses they got.
 *
 * Request: {"url", "secret", "body" (default {"event":E,"run_id":R}),
 * "event", "run_id", "mode", "webhook_id", "timestamp", "count",
 * "distinct", "headers", "timeout_ms", "endpoint_id", "dry_run"}; modes:
 * valid, tampered, wrong_secret, stale, future, bad_ts, multi_sig,
 * missing_id, missing_ts, missing_sig.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "deliver.h"
#include "http.h"
#include "json.h"
#include "store.h"
#include "util.h"

#define DELIVER_SIG_LEN (3 + 2 * crypto_auth_hmacsha256_BYTES + 1)

static const char *const modes[] = {"valid", "tampered", "wrong_secret",
    "stale", "future", "bad_ts", "multi_sig", "missing_id", "missing_ts",
    "missing_sig", NULL};

int
deliver_sign(const char *secret, const char *id, const char *ts,
    const char *body, size_t body_len, char *sig, size_t len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	if (len < DELIVER_SIG_LEN)
		return -ENOBUFS;
	if (crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret,
	        strlen(secret)) != 0 ||
	    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id,
	        strlen(id)) != 0 ||
	    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1) !=
	        0 ||
	    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts,
	        strlen(ts)) != 0 ||
	    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1) !=
	        0 ||
	    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body,
	        body_len) != 0 ||
	    crypto_auth_hmacsha256_final(&st, mac) != 0)
		return -EIO;
	memcpy(sig, "v1=", 4); /* the hex and its NUL follow */
	(void)sodium_bin2hex(sig + 3, len - 3, mac, sizeof(mac));
	sodium_memzero(&st, sizeof(st));
	return 0;
}

int
deliver_init(void)
{
	static const struct {
		const char *secret, *id, *ts, *body, *want;
	} vectors[] = {
	    {"whsec_test_secret_123", "msg_abc", "1700000000",
	        "{\"event\":\"run.completed\",\"run_id\":42}",
	        "v1="
	        "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322"
	        "b6"},
	    {"whsec_empty", "msg_5", "1700000000", "",
	        "v1="
	        "b90542c8751515c38eca2f61b914689089954e09c25ec9b451ba214f123f62"
	        "4e"},
	};
	char sig[DELIVER_SIG_LEN];

	if (sodium_init() < 0)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		if (deliver_sign(vectors[i].secret, vectors[i].id,
		        vectors[i].ts, vectors[i].body, strlen(vectors[i].body),
		        sig, sizeof(sig)) < 0 ||
		    strcmp(sig, vectors[i].want) != 0)
			return -EPROTO;
	return 0;
}

void
deliver_done(void)
{
	curl_global_cleanup();
}

static size_t
discard_cb(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* One delivery attempt, as the parameters say; the HTTP status or 0. */
struct attempt {
	const char *url;
	const char *id;  /* NULL: header left out */
	const char *ts;  /* NULL: header left out */
	const char *sig; /* NULL: header left out */
	const char *body;
	const cJSON *headers; /* extra request headers */
	long timeout_ms;
};

static long
post(const struct attempt *a, char *err, size_t errlen)
{
	struct curl_slist *h = NULL, *n;
	char line[512];
	const cJSON *it;
	long code = 0;
	CURLcode rc;
	CURL *c;

	c = curl_easy_init();
	if (c == NULL) {
		(void)snprintf(err, errlen, "curl_easy_init failed");
		return 0;
	}
	n = curl_slist_append(h, "Content-Type: application/json");
	h = n != NULL ? n : h;
	n = curl_slist_append(h, "User-Agent: m8tes-webhooks/1.0 (mock)");
	h = n != NULL ? n : h;
	if (a->id != NULL) {
		(void)snprintf(line, sizeof(line), "Webhook-Id: %s", a->id);
		n = curl_slist_append(h, line);
		h = n != NULL ? n : h;
	}
	if (a->ts != NULL) {
		(void)snprintf(line, sizeof(line), "Webhook-Timestamp: %s",
		    a->ts);
		n = curl_slist_append(h, line);
		h = n != NULL ? n : h;
	}
	if (a->sig != NULL) {
		(void)snprintf(line, sizeof(line), "Webhook-Signature: %s",
		    a->sig);
		n = curl_slist_append(h, line);
		h = n != NULL ? n : h;
	}
	for (it = json_first(a->headers); it != NULL; it = it->next) {
		if (!cJSON_IsString(it))
			continue;
		(void)snprintf(line, sizeof(line), "%s: %s", it->string,
		    it->valuestring);
		n = curl_slist_append(h, line);
		h = n != NULL ? n : h;
	}
	(void)curl_easy_setopt(c, CURLOPT_URL, a->url);
	(void)curl_easy_setopt(c, CURLOPT_POST, 1L);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(a->body));
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	else
		(void)snprintf(err, errlen, "%s", curl_easy_strerror(rc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code;
}

/* The body actually sent in "tampered" mode: the signed one, altered. */
static char *
tamper(const char *body)
{
	size_t n = strlen(body);
	char *t = malloc(n + 20);

	if (t == NULL)
		return NULL;
	if (n > 0 && body[n - 1] == '}')
		(void)snprintf(t, n + 20, "%.*s%s\"tampered\":true}",
		    (int)(n - 1), body, n > 2 ? "," : "");
	else
		(void)snprintf(t, n + 20, "%sX", body);
	return t;
}

/* Record the outcome on a /webhooks/ endpoint's deliveries page. */
static void
record(long long endpoint, const char *event, long long run_id, long code)
{
	char eid[21];
	cJSON *d;
	int r;

	store_lock();
	if (json_find_id(store.webhooks, endpoint) == NULL) {
		store_unlock();
		return;
	}
	d = cJSON_CreateObject();
	if (d != NULL) {
		memcpy(eid, "evt_", 5);
		util_randhex(eid + 4, 16);
		r = json_set_num(d, "id", (double)++store.seq_delivery);
		r |= json_set_num(d, "webhook_endpoint_id", (double)endpoint);
		r |= json_set_str(d, "event_type", event);
		r |= json_set_str(d, "event_id", eid);
		r |= json_set_num(d, "run_id", (double)run_id);
		r |= json_set_str(d, "status",
		    code >= 200 && code < 300 ? "success" : "failed");
		r |= json_set_num(d, "response_status_code", (double)code);
		r |= json_set_null(d, "response_body");
		r |= json_set_num(d, "attempts", 1);
		r |= json_set_null(d, "next_retry_at");
		r |= json_set_now(d, "created_at");
		if (r < 0 || !cJSON_AddItemToArray(store.deliveries, d))
			cJSON_Delete(d);
	}
	store_unlock();
}

/* A 400 {"detail"}; returns 1 (answered) or -ENOMEM. */
static int
bad_request(struct mresp *resp, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	int r;

	if (o == NULL || json_set_str(o, "detail", msg) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	r = http_resp_json(resp, 400, o);
	return r < 0 ? r : 1;
}

static const char *
str_or(const cJSON *j, const char *k, const char *def)
{
	const char *s = json_str(j, k);

	return s != NULL ? s : def;
}

struct plan {
	const char *url, *secret, *mode, *event, *body;
	char *owned_body;
	char id[128];
	long long run_id, count, ts, endpoint;
	long timeout_ms;
	bool distinct, dry_run, fixed_ts;
};

/* Refuse an unusable plan: 1 (answered), 0, or -ENOMEM. */
static int
plan_check(const struct plan *p, struct mresp *resp)
{
	size_t i;

	for (i = 0; modes[i] != NULL && strcmp(modes[i], p->mode) != 0; i++)
		;
	if (modes[i] == NULL)
		return bad_request(resp, "unknown mode");
	if ((p->url == NULL && !p->dry_run) || p->secret == NULL)
		return bad_request(resp, "url and secret are required");
	if (p->count < 1 || p->count > DELIVER_MAX_COUNT)
		return bad_request(resp, "count must be 1..10000");
	return 0;
}

static int
plan_parse(const cJSON *j, struct plan *p, struct mresp *resp)
{
	const char *id = json_str(j, "webhook_id");
	long long v;
	int r;

	memset(p, 0, sizeof(*p));
	p->url = json_str(j, "url");
	p->secret = json_str(j, "secret");
	p->mode = str_or(j, "mode", "valid");
	p->event = str_or(j, "event", "run.completed");
	p->run_id = json_int(j, "run_id", &v) == 0 ? v : 42;
	p->count = json_int(j, "count", &v) == 0 ? v : 1;
	p->endpoint = json_int(j, "endpoint_id", &v) == 0 ? v : -1;
	p->timeout_ms = DELIVER_TIMEOUT_MS;
	if (json_int(j, "timeout_ms", &v) == 0 && v > 0)
		p->timeout_ms = (long)v;
	p->fixed_ts = json_int(j, "timestamp", &p->ts) == 0;
	p->distinct =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "distinct"));
	p->dry_run =
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "dry_run"));
	r = plan_check(p, resp);
	if (r != 0)
		return r;
	if (id != NULL)
		(void)snprintf(p->id, sizeof(p->id), "%s", id);
	else {
		memcpy(p->id, "msg_", 5);
		util_randhex(p->id + 4, 24);
	}
	p->body = json_str(j, "body");
	if (p->body == NULL) {
		if (asprintf(&p->owned_body,
		        "{\"event\":\"%s\",\"run_id\":%lld}", p->event,
		        p->run_id) < 0)
			return -ENOMEM;
		p->body = p->owned_body;
	}
	return 0;
}

/* Build attempt n of the plan into a, with its buffers. */
static int
plan_attempt(const struct plan *p, long long n, struct attempt *a, char *id,
    size_t idlen, char *ts, size_t tslen, char *sig, size_t siglen,
    char **tampered)
{
	char key[512], good[DELIVER_SIG_LEN];
	long long t = p->fixed_ts ? p->ts : (long long)time(NULL);
	const char *m = p->mode;
	int r;

	if (strcmp(m, "stale") == 0)
		t -= DELIVER_STALE_S;
	else if (strcmp(m, "future") == 0)
		t += DELIVER_STALE_S;
	if (p->distinct && n > 0)
		(void)snprintf(id, idlen, "%s_%lld", p->id, n);
	else
		(void)snprintf(id, idlen, "%s", p->id);
	if (strcmp(m, "bad_ts") == 0)
		(void)snprintf(ts, tslen, "yesterday");
	else
		(void)snprintf(ts, tslen, "%lld", t);
	(void)snprintf(key, sizeof(key), "%s%s", p->secret,
	    strcmp(m, "wrong_secret") == 0 ? "_wrong" : "");
	r = deliver_sign(key, id, ts, p->body, strlen(p->body), good,
	    sizeof(good));
	if (r < 0)
		return r;
	if (strcmp(m, "multi_sig") == 0)
		(void)snprintf(sig, siglen, "v1=%064d %s", 0, good);
	else
		(void)snprintf(sig, siglen, "%s", good);
	a->url = p->url;
	a->body = p->body;
	a->timeout_ms = p->timeout_ms;
	a->id = strcmp(m, "missing_id") == 0 ? NULL : id;
	a->ts = strcmp(m, "missing_ts") == 0 ? NULL : ts;
	a->sig = strcmp(m, "missing_sig") == 0 ? NULL : sig;
	if (strcmp(m, "tampered") == 0) {
		*tampered = tamper(p->body);
		if (*tampered == NULL)
			return -ENOMEM;
		a->body = *tampered;
	}
	return 0;
}

int
deliver_handle(struct mreq *req, struct mresp *resp)
{
	char id[160], ts[32], sig[2 * DELIVER_SIG_LEN + 8], err[256] = "";
	cJSON *out, *statuses, *errors;
	struct attempt a = {0};
	struct plan p;
	int r;

	r = cJSON_IsObject(req->json)
	    ? plan_parse(req->json, &p, resp)
	    : bad_request(resp, "expected a JSON object");
	if (r != 0)
		return r < 0 ? r : 0;
	a.headers = cJSON_GetObjectItemCaseSensitive(req->json, "headers");
	out = cJSON_CreateObject();
	statuses = cJSON_AddArrayToObject(out, "statuses");
	errors = cJSON_AddArrayToObject(out, "errors");
	r = statuses != NULL && errors != NULL ? 0 : -ENOMEM;
	for (long long n = 0; r == 0 && n < p.count; n++) {
		char *tampered = NULL;
		long code = 0;

		r = plan_attempt(&p, n, &a, id, sizeof(id), ts, sizeof(ts), sig,
		    sizeof(sig), &tampered);
		if (r == 0 && !p.dry_run) {
			err[0] = '\0';
			code = post(&a, err, sizeof(err));
			if (!cJSON_AddItemToArray(statuses,
			        cJSON_CreateNumber((double)code)) ||
			    (err[0] != '\0' &&
			        !cJSON_AddItemToArray(errors,
			            cJSON_CreateString(err))))
				r = -ENOMEM;
			if (p.endpoint >= 0)
				record(p.endpoint, p.event, p.run_id, code);
		}
		if (r == 0 && n == 0)
			r = json_set_str(out, "webhook_id", id) |
			    json_set_str(out, "timestamp", ts) |
			    json_set_str(out, "signature", sig) |
			    json_set_str(out, "body", a.body) |
			    json_set_str(out, "mode", p.mode);
		free(tampered);
	}
	free(p.owned_body);
	if (r < 0) {
		cJSON_Delete(out);
		return r;
	}
	return http_resp_json(resp, 200, out);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Outbound webhook endpoints (/webhooks/, §9.1): https-only URLs with an
 * SSRF guard, default events, the signing secret shown in full only on
 * create and on rotate_secret, and a deliveries page seeded with two
 * records per endpoint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "routes.h"
#include "store.h"
#include "util.h"

static const char *const known_events[] = {
    "run.started",
    "run.completed",
    "run.failed",
    "run.cancelled",
    "run.awaiting_input",
    "run.message_received",
    "run.message_cancelled",
    "balance.low",
    "balance.critical",
    "balance.depleted",
    NULL,
};

/* True for hosts the SSRF guard refuses: loopback, private, link-local. */
static bool
private_host(const char *url)
{
	static const char *const prefixes[] = {"localhost", "127.", "10.",
	    "192.168.", "169.254.", "0.", "[::", "[fc", "[fd", "[fe80",
	    "metadata.", NULL};
	const char *h = url + 8;
	char host[256];
	size_t n = strcspn(h, "/?#");

	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, h, n);
	host[n] = '\0';
	if (host[0] != '[')
		host[strcspn(host, ":")] = '\0';
	for (size_t i = 0; prefixes[i] != NULL; i++)
		if (strncasecmp(host, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	if (strncmp(host, "172.", 4) == 0) {
		char *end;
		unsigned long b = strtoul(host + 4, &end, 10);

		if (*end == '.' && b >= 16 && b <= 31)
			return true;
	}
	n = strlen(host);
	return (n > 6 && strcasecmp(host + n - 6, ".local") == 0) ||
	    (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0) || n == 0;
}

static int
check_body(struct mreq *req, struct mresp *resp, bool create)
{
	const char *url = json_str(req->json, "url");
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(req->json, "events");
	const cJSON *it;
	int r;

	if (create || json_has(req->json, "url")) {
		if (url == NULL || strncasecmp(url, "https://", 8) != 0)
			return routes_invalid(req, resp,
			    "url must be an https:// URL");
		if (private_host(url)) {
			r = http_resp_error(resp, req, 422,
			    "invalid_request_error", "url_not_allowed",
			    "url must not point at a local or private host");
			return routes_answered(r);
		}
	}
	if (ev != NULL && !cJSON_IsArray(ev) && !cJSON_IsNull(ev))
		return routes_invalid(req, resp, "events must be a list");
	for (it = json_first(ev); it != NULL; it = it->next) {
		bool ok = false;

		for (size_t i = 0; cJSON_IsString(it) && known_events[i]; i++)
			ok =
			    ok || strcmp(it->valuestring, known_events[i]) == 0;
		if (!ok)
			return routes_invalid(req, resp,
			    "Unknown event type in events");
	}
	it = cJSON_GetObjectItemCaseSensitive(req->json, "active");
	if (it != NULL && !cJSON_IsBool(it))
		return routes_invalid(req, resp, "active must be a boolean");
	return 0;
}

static int
new_secret(cJSON *w)
{
	char hex[41], full[48];

	util_randhex(hex, 40);
	(void)snprintf(full, sizeof(full), "whsec_%s", hex);
	return json_set_str(w, "_secret", full);
}

/* The served form: secret masked unless full is set. */
static cJSON *
view(const cJSON *w, bool full)
{
	const char *s = json_str(w, "_secret");
	cJSON *o = store_public(w);
	char masked[32];

	if (o == NULL || s == NULL)
		return o;
	(void)snprintf(masked, sizeof(masked), "%.10s...", s);
	if (json_set_str(o, "secret", full ? s : masked) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int
seed_delivery(const cJSON *w, const char *event, const char *status, int code,
    int attempts, long long run_id)
{
	char eid[24];
	cJSON *d = cJSON_CreateObject();
	int r;

	if (d == NULL)
		return -ENOMEM;
	memcpy(eid, "evt_", 5);
	util_randhex(eid + 4, 16);
	r = json_set_num(d, "id", (double)++store.seq_delivery);
	r |= json_set_num(d, "webhook_endpoint_id", (double)json_id(w));
	r |= json_set_str(d, "event_type", event);
	r |= json_set_str(d, "event_id", eid);
	r |= json_set_num(d, "run_id", (double)run_id);
	r |= json_set_str(d, "status", status);
	r |= json_set_num(d, "response_status_code", code);
	r |= json_set_str(d, "response_body",
	    code == 200 ? "ok" : "Internal Server Error");
	r |= json_set_num(d, "attempts", attempts);
	r |= json_set_null(d, "next_retry_at");
	r |= json_set_now(d, "created_at");
	if (r < 0 || !cJSON_AddItemToArray(store.deliveries, d)) {
		cJSON_Delete(d);
		return -ENOMEM;
	}
	return 0;
}

int
routes_webhooks_create(struct mreq *req, struct mresp *resp)
{
	const cJSON *ev;
	cJSON *w = NULL;
	int r;

	r = routes_body(req, resp, true);
	if (r == 0)
		r = check_body(req, resp, true);
	if (r != 0)
		return ROUTE_DONE(r);
	w = cJSON_CreateObject();
	if (w == NULL)
		return -ENOMEM;
	ev = cJSON_GetObjectItemCaseSensitive(req->json, "events");
	r = json_set_num(w, "id", (double)++store.seq_webhook);
	r |= json_copy_key(w, req->json, "url");
	r |= cJSON_IsArray(ev)
	    ? json_copy_key(w, req->json, "events")
	    : json_set(w, "events",
	          json_template("[\"run.completed\","
	                        "\"run.failed\",\"run.cancelled\"]"));
	r |= new_secret(w);
	r |= json_set_bool(w, "active", true);
	r |= json_set_now(w, "created_at");
	r |= json_set_now(w, "updated_at");
	if (r < 0 || !cJSON_AddItemToArray(store.webhooks, w)) {
		cJSON_Delete(w);
		return -ENOMEM;
	}
	r = seed_delivery(w, "run.completed", "success", 200, 1, 42);
	r |= seed_delivery(w, "run.failed", "failed", 500, 3, 43);
	if (r < 0)
		return r;
	return http_resp_json(resp, 201, view(w, true));
}

int
routes_webhooks_list(struct mreq *req, struct mresp *resp)
{
	struct pager pg;
	cJSON *v = NULL;
	int r;

	r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (cJSON *w = json_last(store.webhooks); w != NULL && r == 0;
	     w = json_prev(store.webhooks, w)) {
		v = view(w, false);
		r = v != NULL ? pager_add(&pg, v) : -ENOMEM;
		cJSON_Delete(v);
	}
	if (r < 0) {
		pager_done(&pg);
		return r;
	}
	return pager_send(&pg, resp);
}

static int
webhook_lookup(struct mreq *req, struct mresp *resp, cJSON **ret)
{
	long long id = 0;
	cJSON *w = NULL;
	int r;

	r = routes_param_id(req, resp, 0, &id);
	if (r != 0)
		return r;
	w = json_find_id(store.webhooks, id);
	if (w == NULL)
		return routes_answered(
		    routes_not_found(req, resp, "Webhook endpoint"));
	*ret = w;
	return 0;
}

int
routes_webhooks_get(struct mreq *req, struct mresp *resp)
{
	cJSON *w = NULL;
	int r = webhook_lookup(req, resp, &w);

	return r != 0 ? ROUTE_DONE(r)
	              : http_resp_json(resp, 200, view(w, false));
}

int
routes_webhooks_update(struct mreq *req, struct mresp *resp)
{
	bool rotate;
	cJSON *w = NULL;
	int r;

	r = webhook_lookup(req, resp, &w);
	if (r == 0)
		r = routes_body(req, resp, true);
	if (r == 0)
		r = check_body(req, resp, false);
	if (r != 0)
		return ROUTE_DONE(r);
	rotate = cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(req->json, "rotate_secret"));
	if (json_has(req->json, "url"))
		r |= json_copy_key(w, req->json, "url");
	if (cJSON_IsArray(
	        cJSON_GetObjectItemCaseSensitive(req->json, "events")))
		r |= json_copy_key(w, req->json, "events");
	if (json_has(req->json, "active"))
		r |= json_copy_key(w, req->json, "active");
	if (rotate)
		r |= new_secret(w);
	r |= json_set_now(w, "updated_at");
	return r < 0 ? r : http_resp_json(resp, 200, view(w, rotate));
}

int
routes_webhooks_delete(struct mreq *req, struct mresp *resp)
{
	cJSON *w, *d, *next;
	int r = webhook_lookup(req, resp, &w);
	long long wid, e;

	if (r != 0)
		return ROUTE_DONE(r);
	wid = json_id(w);
	for (d = store.deliveries->child; d != NULL; d = next) {
		next = d->next;
		if (json_int(d, "webhook_endpoint_id", &e) == 0 && e == wid)
			cJSON_Delete(
			    cJSON_DetachItemViaPointer(store.deliveries, d));
	}
	cJSON_Delete(cJSON_DetachItemViaPointer(store.webhooks, w));
	return http_resp_empty(resp, 204);
}

int
routes_webhooks_deliveries(struct mreq *req, struct mresp *resp)
{
	struct pager pg;
	long long e;
	cJSON *w = NULL;
	int r;

	r = webhook_lookup(req, resp, &w);
	if (r == 0)
		r = pager_init(&pg, req, resp);
	if (r != 0)
		return ROUTE_DONE(r);
	for (cJSON *d = json_last(store.deliveries); d != NULL && r == 0;
	     d = json_prev(store.deliveries, d))
		if (json_int(d, "webhook_endpoint_id", &e) == 0 &&
		    e == json_id(w))
			r = pager_add(&pg, d);
	if (r < 0) {
		pager_done(&pg);
		return r;
	}
	return pager_send(&pg, resp);
}

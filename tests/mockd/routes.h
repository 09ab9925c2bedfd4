/*
 * SPDX-License-Identifier: MIT
 *
 * The /api/v2 route table and what every handler shares: matching on the
 * decoded segments, auth, the per-route list of allowed query parameters,
 * limit checks, strict end-user mode, 404/422 answers and the pager.
 *
 * Handlers return 0 (answer written) or a negative errno (the caller
 * answers 500). Helpers that may answer on their own return ROUTE_ANSWERED
 * when they did, so handlers stop with "return ROUTE_DONE(r)".
 */
#ifndef MOCKD_ROUTES_H
#define MOCKD_ROUTES_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "http.h"

struct run;

#define ROUTE_SCOPED 0x1 /* user_id in the query; strict mode applies */
#define ROUTE_PAGED 0x2  /* limit must be 1..100 */

#define ROUTE_ANSWERED 1
#define ROUTE_DONE(r) ((r) < 0 ? (r) : 0)

#define ROUTE_MAX_LIMIT 100
#define ROUTE_DEF_LIMIT 20

typedef int (*route_cb)(struct mreq *, struct mresp *);

/*
 * The result of a helper that has answered: ROUTE_ANSWERED, or its error.
 * Never 0, so a lookup's caller may rely on its out-parameter when it is.
 */
static inline int
routes_answered(int r)
{
	return r < 0 ? r : ROUTE_ANSWERED;
}

/* Serve a request whose path starts with /api/v2/; 0 or -errno. */
int routes_dispatch(struct mreq *req, struct mresp *resp);

/* Path parameter i as an integer id; ROUTE_ANSWERED with a 422 if not. */
int
routes_param_id(struct mreq *req, struct mresp *resp, int i, long long *ret);

/* 404 envelope "<what> not found"; returns ROUTE_ANSWERED or -ENOMEM. */
int routes_not_found(struct mreq *req, struct mresp *resp, const char *what);

/* 422 validation_error with a message; ROUTE_ANSWERED or -ENOMEM. */
int routes_invalid(struct mreq *req, struct mresp *resp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 409 conflict with error_code; ROUTE_ANSWERED or -ENOMEM. */
int routes_conflict(struct mreq *req, struct mresp *resp, const char *code,
    const char *msg);

/* Require a JSON object body (an empty body counts as {} if optional). */
int routes_body(struct mreq *req, struct mresp *resp, bool required);

/*
 * Strict mode: when require_end_user_id is on and user_id is NULL, answer
 * 422 naming require_end_user_id=False and return ROUTE_ANSWERED.
 */
int routes_strict(struct mreq *req, struct mresp *resp, const char *user_id);

/* The body's "user_id" string, or NULL (absent or null). */
const char *routes_body_user(const struct mreq *req);

/* Answer status with a public copy of o. */
int routes_send(struct mresp *resp, unsigned int status, const cJSON *o);

/* One page of a list walked newest first. */
struct pager {
	cJSON *data;
	long long cursor; /* starting_after, or LLONG_MAX */
	long long limit;
	long long last; /* id of the last item taken */
	bool full;      /* limit reached */
	bool has_more;  /* an item past the limit exists */
};

int pager_init(struct pager *pg, struct mreq *req, struct mresp *resp);

/*
 * Offer the next item (descending id). Returns 1 when the page is complete
 * and the walk can stop, 0 to go on, -ENOMEM.
 */
int pager_add(struct pager *pg, const cJSON *o);

/* Answer {data, has_more, next_starting_after}; frees the pager. */
int pager_send(struct pager *pg, struct mresp *resp);
void pager_done(struct pager *pg);

/*
 * Start a run from req->json (POST /runs/, /runs/with-files and, with
 * task set, /tasks/{id}/runs): idempotency replay, teammate/task scope
 * inheritance, strict mode, end-user run limits, then a JSON or SSE answer.
 */
int routes_runs_start(struct mreq *req, struct mresp *resp, cJSON *task);

/*
 * Mint (or rotate) the inbound trigger URL of a teammate ("mates") or task
 * ("tasks"): the full URL goes to url and the private "_webhook_url", the
 * object shows it masked. 0 or -ENOMEM.
 */
int routes_mint_url(cJSON *o, const char *kind, char *url, size_t len);

/* POST (mint, shown once) / PATCH {enabled} / DELETE of a trigger URL. */
int routes_trigger_url(struct mreq *req, struct mresp *resp, cJSON *obj,
    const char *kind);

/* The run of path parameter 0 (scope-checked when scoped), or a 404. */
int routes_run_lookup(struct mreq *req, struct mresp *resp, bool scoped,
    struct run **ret);

/* The task of path parameter 0 (scope-checked when scoped), or a 404. */
int routes_tasks_lookup(struct mreq *req, struct mresp *resp, bool scoped,
    cJSON **ret);

/* Add a cron schedule trigger to task t (tasks.create "schedule"). */
int routes_triggers_schedule(cJSON *t, const char *cron, const char *tz);

/* Handlers, one group per file. */
#define ROUTE_FN(n) int n(struct mreq *, struct mresp *)
ROUTE_FN(routes_agents_create);
ROUTE_FN(routes_agents_list);
ROUTE_FN(routes_agents_get);
ROUTE_FN(routes_agents_update);
ROUTE_FN(routes_agents_delete);
ROUTE_FN(routes_agents_prompt);
ROUTE_FN(routes_agents_state);
ROUTE_FN(routes_agents_webhook);
ROUTE_FN(routes_agents_inbox);

ROUTE_FN(routes_runs_create);
ROUTE_FN(routes_runs_create_files);
ROUTE_FN(routes_runs_list);
ROUTE_FN(routes_runs_check);
ROUTE_FN(routes_runs_get);
ROUTE_FN(routes_runs_stream);
ROUTE_FN(routes_runs_outcome);
ROUTE_FN(routes_runs_messages);
ROUTE_FN(routes_runs_reply);
ROUTE_FN(routes_runs_reply_files);
ROUTE_FN(routes_runs_cancel);
ROUTE_FN(routes_runs_retry);
ROUTE_FN(routes_runs_mode);
ROUTE_FN(routes_runs_permissions);
ROUTE_FN(routes_runs_approve);
ROUTE_FN(routes_runs_answer);
ROUTE_FN(routes_runs_files);
ROUTE_FN(routes_runs_download);

ROUTE_FN(routes_tasks_create);
ROUTE_FN(routes_tasks_list);
ROUTE_FN(routes_tasks_get);
ROUTE_FN(routes_tasks_update);
ROUTE_FN(routes_tasks_delete);
ROUTE_FN(routes_tasks_run);
ROUTE_FN(routes_tasks_webhook);
ROUTE_FN(routes_triggers_create);
ROUTE_FN(routes_triggers_list);
ROUTE_FN(routes_triggers_update);
ROUTE_FN(routes_triggers_delete);
ROUTE_FN(routes_triggers_all);

ROUTE_FN(routes_apps_list);
ROUTE_FN(routes_apps_connect);
ROUTE_FN(routes_apps_connections);
ROUTE_FN(routes_apps_disconnect);
ROUTE_FN(routes_apps_tools);
ROUTE_FN(routes_apps_triggers);

ROUTE_FN(routes_memories_create);
ROUTE_FN(routes_memories_list);
ROUTE_FN(routes_memories_update);
ROUTE_FN(routes_memories_delete);
ROUTE_FN(routes_policies_create);
ROUTE_FN(routes_policies_list);
ROUTE_FN(routes_policies_delete);
ROUTE_FN(routes_users_create);
ROUTE_FN(routes_users_list);
ROUTE_FN(routes_users_get);
ROUTE_FN(routes_users_update);
ROUTE_FN(routes_users_delete);
ROUTE_FN(routes_users_usage);
ROUTE_FN(routes_settings_get);
ROUTE_FN(routes_settings_update);

ROUTE_FN(routes_webhooks_create);
ROUTE_FN(routes_webhooks_list);
ROUTE_FN(routes_webhooks_get);
ROUTE_FN(routes_webhooks_update);
ROUTE_FN(routes_webhooks_delete);
ROUTE_FN(routes_webhooks_deliveries);
#undef ROUTE_FN

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * Following a run's stream with a person in the loop. The event callback
 * only prints and notes that a permission request arrived; when it does
 * while this module waits on the stream, the callback stops that wait
 * (CLI_RUN_STOP), so the prompt and the runs.permissions and runs.approve
 * calls happen outside any callback and no wait is ever nested in another.
 * Events that arrive during those calls are printed by the same callback
 * and only noted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_common.h"
#include "cli_hitl.h"
#include "cli_out.h"
#include "cli_run.h"
#include "codec.h"
#include "libm8tes.h"

/* A callback's value that ends a wait for a prompt; libm8tes never uses it. */
#define CLI_RUN_STOP (-EINPROGRESS)

static int run_event_cb(const struct m8c_event *ev, void *arg);
static bool handled(const struct cli_run *s, const char *id);
static void mark_handled(struct cli_run *s, const char *id);
static cJSON *run_params(long long run_id);
static int answer_one(struct cli_run *s, const cJSON *req);
static int answer_pending(struct cli_run *s);
static int resume_params(const cJSON *orig, long long run_id,
    unsigned long long after, cJSON **ret);
static bool run_failed(const cJSON *result);

void
cli_run_init(struct cli_run *s, struct m8c_conn *c, struct cli_out *out,
    FILE *in, FILE *prompt, int timeout_ms)
{
	memset(s, 0, sizeof(*s));
	s->conn = c;
	s->out = out;
	s->in = in;
	s->prompt = prompt;
	s->timeout_ms = timeout_ms;
	out->prompts = in != NULL;
}

static int
run_event_cb(const struct m8c_event *ev, void *arg)
{
	struct cli_run *s = arg;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev->event, "type");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev->event,
	    "request_id");
	bool repeat;

	/* permission_request and awaiting_approval name one gate twice. */
	repeat = cJSON_IsString(id) &&
	    (strcmp(id->valuestring, s->out->hinted) == 0 ||
	        handled(s, id->valuestring));
	(void)cli_out_event_cb(ev, s->out);
	if (s->in == NULL || repeat || !cJSON_IsString(t) ||
	    (strcmp(t->valuestring, "permission_request") != 0 &&
	        strcmp(t->valuestring, "awaiting_approval") != 0))
		return 0;
	s->hitl_pending = true;
	return s->armed ? CLI_RUN_STOP : 0;
}

static bool
handled(const struct cli_run *s, const char *id)
{
	size_t n = s->nhandled < CLI_RUN_MAX_HANDLED ? s->nhandled
	                                             : CLI_RUN_MAX_HANDLED;

	for (size_t i = 0; i < n; i++)
		if (strcmp(s->handled[i], id) == 0)
			return true;
	return false;
}

static void
mark_handled(struct cli_run *s, const char *id)
{
	(void)snprintf(s->handled[s->nhandled % CLI_RUN_MAX_HANDLED],
	    CLI_OUT_ID_MAX, "%s", id);
	s->nhandled++;
}

/* {"run_id": run_id}, or NULL on ENOMEM. */
static cJSON *
run_params(long long run_id)
{
	cJSON *p = cJSON_CreateObject();

	if (p != NULL &&
	    cJSON_AddNumberToObject(p, "run_id", (double)run_id) == NULL) {
		cJSON_Delete(p);
		return NULL;
	}
	return p;
}

/*
 * Prompts for one pending request and sends the answer. Returns 0 (also
 * when the daemon refused the answer, which is then shown), or -errno of
 * the connection.
 */
static int
answer_one(struct cli_run *s, const cJSON *req)
{
	struct m8c_reply reply = {0};
	const cJSON *decision;
	const char *method;
	cJSON *params = NULL;
	int r;

	cli_out_end_line(s->out);
	(void)fflush(s->out->f);
	r = cli_hitl_ask(req, s->in, s->prompt, &method, &params);
	if (r == -ENODATA || r == -EBADMSG) {
		/* No one to ask any more: say how, as without a terminal. */
		if (r == -ENODATA) {
			s->in = NULL;
			s->out->prompts = false;
		}
		cli_hitl_hint(s->out->err, s->out->run_id, req);
		return 0;
	}
	if (r < 0)
		return r;
	/*
	 * The decision first: the run resumes at once, and its events may
	 * come before the daemon's answer to this call.
	 */
	decision = cJSON_GetObjectItemCaseSensitive(params, "decision");
	(void)fprintf(s->prompt, "  %s\n",
	    !cJSON_IsString(decision)                     ? "answered"
	        : strcmp(decision->valuestring, "allow") == 0 ? "allowed"
	                                                     : "denied");
	(void)fflush(s->prompt);
	r = -ENOMEM;
	if (cJSON_AddNumberToObject(params, "run_id",
	        (double)s->out->run_id) == NULL)
		goto out;
	r = m8c_call(s->conn, method, params, s->timeout_ms, NULL, NULL,
	    &reply);
	if (r < 0)
		goto out;
	if (reply.kind == M8C_ERROR)
		cli_out_error(s->out->err, &reply.error);
	r = 0;
out:
	m8c_reply_done(&reply);
	cJSON_Delete(params);
	return r;
}

/*
 * Fetches the run's permission requests and prompts for each pending one
 * not answered yet. Returns 0, or -errno of the connection.
 */
static int
answer_pending(struct cli_run *s)
{
	struct m8c_reply reply = {0};
	const cJSON *req;
	cJSON *params;
	int r;

	s->hitl_pending = false;
	if (s->out->run_id <= 0)
		return 0;
	params = run_params(s->out->run_id);
	if (params == NULL)
		return -ENOMEM;
	r = m8c_call(s->conn, "runs.permissions", params, s->timeout_ms, NULL,
	    NULL, &reply);
	cJSON_Delete(params);
	if (r < 0)
		return r;
	if (reply.kind != M8C_RESULT) {
		if (reply.kind == M8C_ERROR)
			cli_out_error(s->out->err, &reply.error);
		m8c_reply_done(&reply);
		return 0;
	}
	cJSON_ArrayForEach(req, reply.result)
	{
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(req,
		    "status");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(req,
		    "request_id");

		if (!cJSON_IsString(id) || !cJSON_IsString(st) ||
		    strcmp(st->valuestring, "pending") != 0 ||
		    handled(s, id->valuestring))
			continue;
		mark_handled(s, id->valuestring);
		if (s->in == NULL) {
			cli_hitl_hint(s->out->err, s->out->run_id, req);
			continue;
		}
		r = answer_one(s, req);
		if (r < 0)
			break;
	}
	m8c_reply_done(&reply);
	return r < 0 ? r : 0;
}

/* runs.stream params that re-attach after seq after, keeping text_only. */
static int
resume_params(const cJSON *orig, long long run_id, unsigned long long after,
    cJSON **ret)
{
	cJSON *p = run_params(run_id);

	if (p == NULL ||
	    cJSON_AddNumberToObject(p, "after_seq", (double)after) == NULL ||
	    (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(orig, "text_only")) &&
	        cJSON_AddTrueToObject(p, "text_only") == NULL)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

int
cli_run_stream(struct cli_run *s, const char *method, const cJSON *params,
    struct m8c_reply *ret_reply)
{
	struct m8c_call *call = NULL;
	struct m8c_reply reply = {0};
	cJSON *resume = NULL;
	int r;

	r = m8c_start(s->conn, method, params, run_event_cb, s, &call);
	while (r >= 0) {
		while (s->hitl_pending && r >= 0)
			r = answer_pending(s);
		if (r < 0)
			break;
		s->armed = true;
		r = m8c_wait(s->conn, call, s->timeout_ms, &reply);
		s->armed = false;
		if (r == CLI_RUN_STOP) {
			r = 0;
			continue;
		}
		if (r != M8C_LAGGED || s->out->run_id <= 0 ||
		    s->resumes >= CLI_RUN_MAX_RESUMES)
			break;
		/* Fell behind: pick the stream up after the last seq seen. */
		s->resumes++;
		cJSON_Delete(resume);
		resume = NULL;
		r = resume_params(params, s->out->run_id, reply.resume_after,
		    &resume);
		m8c_reply_done(&reply);
		m8c_call_free(call);
		call = NULL;
		if (r == 0)
			r = m8c_start(s->conn, "runs.stream", resume,
			    run_event_cb, s, &call);
	}
	m8c_call_free(call);
	cJSON_Delete(resume);
	if (r >= 0)
		*ret_reply = reply;
	return r;
}

/* A result that reports errors, or a run whose status is failed. */
static bool
run_failed(const cJSON *result)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(result, "status");

	return cJSON_IsTrue(
	           cJSON_GetObjectItemCaseSensitive(result, "has_errors")) ||
	    (cJSON_IsString(st) && strcmp(st->valuestring, "failed") == 0);
}

int
cli_run_show(struct cli_run *s, const struct cli_opts *o, int r,
    const struct m8c_reply *reply)
{
	if (r < 0)
		return cli_call_error(r, o);
	if (reply->kind != M8C_RESULT)
		return cli_reply_error(reply);
	r = cli_out_run_result(s->out, reply->result);
	if (r < 0)
		return cli_call_error(r, o);
	(void)fflush(s->out->f);
	return run_failed(reply->result) ? CLI_EXIT_RUN_FAILED : 0;
}

void
cli_run_setup(const struct cli_opts *o, const char *method,
    struct cli_out *out, FILE **ret_in, FILE **ret_prompt)
{
	*out = (struct cli_out){
	    .f = stdout,
	    .err = stderr,
	    .json = o->json,
	    .method = method,
	};
	/* Prompts need a person: a terminal on both ends. */
	*ret_in = o->tty_in && o->tty_out ? stdin : NULL;
	*ret_prompt = o->json ? stderr : stdout;
}

int
cli_run_main(const struct cli_opts *o, const char *method,
    const cJSON *params)
{
	struct m8c_reply reply = {0};
	struct m8c_conn *c;
	struct cli_out out;
	struct cli_run s;
	FILE *in, *prompt;
	int r, status;

	status = cli_connect(o, &c);
	if (status != 0)
		return status;
	cli_run_setup(o, method, &out, &in, &prompt);
	cli_run_init(&s, c, &out, in, prompt, o->timeout_ms);
	r = cli_run_stream(&s, method, params, &reply);
	status = cli_run_show(&s, o, r, &reply);
	m8c_reply_done(&reply);
	m8c_close(c);
	return cli_finish(status);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Run lifecycle: creation, turns, the polled step machine, the driver
 * thread of streamed runs, gates (approvals and questions), cancellation,
 * the event log that streams replay, and the files of completed runs.
 * Everything runs under the store lock; the driver drops it only while it
 * waits on the store's condition variable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "runs.h"
#include "script.h"
#include "store.h"
#include "util.h"

#define RUNS_DRIVER_STACK (256u << 10)
#define RUNS_CSV_ROWS 120
#define RUNS_PNG_SIZE 2048

const char *const runs_file_names[] = {"report.csv", "chart.png", NULL};

static char *csv_data;
static size_t csv_len;
static uint8_t png_data[RUNS_PNG_SIZE];
static bool png_ready;

static const char run_template[] =
    "{\"id\":0,\"teammate_id\":null,\"task_id\":null,\"status\":\"running\","
    "\"output\":null,\"error\":null,\"error_code\":null,\"user_id\":null,"
    "\"metadata\":null,\"created_at\":null,\"updated_at\":null,"
    "\"permission_mode\":\"autonomous\",\"retryable\":false,"
    "\"retry_of_run_id\":null,\"retry_count\":0,\"auto_retry_count\":0,"
    "\"next_retry_at\":null,\"output_data\":null,\"usage\":null,"
    "\"auth_method\":\"api_key\",\"auth_provider\":null,\"task_name\":null,"
    "\"trigger_source\":\"api\",\"channel\":\"api\",\"run_mode\":\"task\","
    "\"archived\":false,\"share_token\":null,\"sandbox_state\":null,"
    "\"description\":null,\"retention_mode\":\"standard\","
    "\"started_at\":null,\"last_activity_at\":null,\"stop_reason\":null,"
    "\"is_expired\":false,\"retry_blocked_reason\":null,"
    "\"retry_blocked_message\":null,\"notified_at\":null,"
    "\"repeats_actions\":false,\"last_viewed_at\":null,"
    "\"billing_surface\":\"api\",\"closing_preview\":null}";

static const char usage_template[] =
    "{\"input_tokens\":1200,\"output_tokens\":300,\"cache_read_tokens\":0,"
    "\"cache_creation_tokens\":0,\"total_tokens\":1500,"
    "\"cost_usd\":\"0.012000\"}";

static int
ev_append(struct run *run, enum run_ev_kind kind, const char *text)
{
	char *t;

	if (run->nev == run->evcap) {
		size_t cap = run->evcap == 0 ? 64 : run->evcap * 2;
		struct run_event *ev;

		ev = reallocarray(run->ev, cap, sizeof(*ev));
		if (ev == NULL)
			return -ENOMEM;
		run->ev = ev;
		run->evcap = cap;
	}
	t = strdup(text);
	if (t == NULL)
		return -ENOMEM;
	run->ev[run->nev].kind = kind;
	run->ev[run->nev].text = t;
	run->nev++;
	store_broadcast();
	return 0;
}

static int
ev_json(struct run *run, cJSON *take)
{
	char *s;
	int r;

	if (take == NULL)
		return -ENOMEM;
	s = cJSON_PrintUnformatted(take);
	cJSON_Delete(take);
	if (s == NULL)
		return -ENOMEM;
	r = ev_append(run, RUN_EV_DATA, s);
	free(s);
	return r;
}

static int
set_status(struct run *run, const char *status)
{
	return json_set_str(run->obj, "status", status) |
	    json_set_now(run->obj, "updated_at") |
	    json_set_now(run->obj, "last_activity_at");
}

static int
message_add(struct run *run, const char *role, const char *content)
{
	cJSON *m = cJSON_CreateObject();
	int r;

	if (m == NULL)
		return -ENOMEM;
	r = json_set_num(m, "id", (double)++store.seq_msg);
	r |= json_set_num(m, "run_id", (double)run->id);
	r |= json_set_num(m, "sequence",
	    (double)cJSON_GetArraySize(run->messages) + 1);
	r |= json_set_str(m, "role", role);
	r |= json_set_str(m, "content", content);
	r |= json_set_null(m, "content_blocks");
	r |= json_set_null(m, "event_metadata");
	r |= json_set_now(m, "created_at");
	if (strcmp(role, "assistant") == 0)
		r |= json_set_num(m, "input_tokens", 1200) |
		    json_set_num(m, "output_tokens", 300);
	if (r < 0 || !cJSON_AddItemToArray(run->messages, m)) {
		cJSON_Delete(m);
		return -ENOMEM;
	}
	return 0;
}

static cJSON *
gate_request(struct run *run, const char *kind)
{
	static const char approval[] =
	    "{\"tool_name\":\"gmail\",\"status\":\"pending\","
	    "\"tool_input\":{\"to\":\"ops@example.com\","
	    "\"subject\":\"Weekly recap\"},\"resolved_at\":null,"
	    "\"auto_resolved\":false,\"resumed\":false,\"remembered\":false,"
	    "\"agent_type\":\"teammate\",\"display_name\":\"Send an email\","
	    "\"mate_name\":null,\"task_name\":null,"
	    "\"consequence\":\"Sends an email on your behalf\","
	    "\"fields\":[[\"To\",\"ops@example.com\"],"
	    "[\"Subject\",\"Weekly recap\"]],\"prose\":\"Send the weekly "
	    "recap to ops@example.com?\",\"can_remember\":true,"
	    "\"remember_default\":true,\"timeout_seconds\":55,"
	    "\"script\":null}";
	static const char question[] =
	    "{\"tool_name\":\"AskUserQuestion\",\"status\":\"pending\","
	    "\"tool_input\":{\"questions\":[{\"question\":\"Which format "
	    "should the report use?\",\"header\":\"Format\","
	    "\"multiSelect\":false,\"options\":[{\"label\":\"CSV\"},"
	    "{\"label\":\"PDF\"}]}]},\"resolved_at\":null,"
	    "\"auto_resolved\":false,\"resumed\":false,\"remembered\":false,"
	    "\"agent_type\":\"teammate\",\"display_name\":\"Question\","
	    "\"mate_name\":null,\"task_name\":null,\"consequence\":null,"
	    "\"fields\":[],\"prose\":null,\"can_remember\":false,"
	    "\"remember_default\":false,\"timeout_seconds\":55,"
	    "\"script\":null}";
	static const char plan[] =
	    "{\"tool_name\":\"AskUserQuestion\",\"status\":\"pending\","
	    "\"tool_input\":{\"questions\":[{\"question\":\"1. Pull last "
	    "week's numbers\\n2. Write report.csv\\n3. Email the recap\","
	    "\"header\":\"Plan Approval\",\"multiSelect\":false,"
	    "\"options\":[{\"label\":\"Approve\"},{\"label\":\"Revise\"}]}]},"
	    "\"resolved_at\":null,\"auto_resolved\":false,\"resumed\":false,"
	    "\"remembered\":false,\"agent_type\":\"teammate\","
	    "\"display_name\":\"Plan approval\",\"mate_name\":null,"
	    "\"task_name\":null,\"consequence\":null,\"fields\":[],"
	    "\"prose\":null,\"can_remember\":false,\"remember_default\":false,"
	    "\"timeout_seconds\":55,\"script\":null}";
	cJSON *p;
	char id[64];
	int r;

	p = json_template(strcmp(kind, "approval") == 0 ? approval
	        : strcmp(kind, "plan") == 0             ? plan
	                                                : question);
	if (p == NULL)
		return NULL;
	run->gates++;
	(void)snprintf(id, sizeof(id), "req_%lld_%u", run->id, run->gates);
	r = json_set_str(p, "request_id", id);
	(void)snprintf(id, sizeof(id), "toolu_%lld_g%u", run->id, run->gates);
	r |= json_set_str(p, "tool_use_id", id);
	r |= json_set_now(p, "created_at");
	r |= json_copy_key(p, run->obj, "task_name");
	if (r < 0) {
		cJSON_Delete(p);
		return NULL;
	}
	return p;
}

static int
gate_open(struct run *run, const char *kind)
{
	cJSON *p, *f;
	int r;

	p = gate_request(run, kind);
	if (p == NULL)
		return -ENOMEM;
	if (!cJSON_AddItemToArray(run->perms, p)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	run->gate_open = true;
	r = set_status(run, "awaiting_approval");
	f = cJSON_CreateObject();
	if (f != NULL)
		r |= json_set_str(f, "type", "permission_request") |
		    json_copy_key(f, p, "request_id") |
		    json_copy_key(f, p, "tool_name") |
		    json_copy_key(f, p, "tool_input") |
		    json_copy_key(f, p, "display_name");
	r |= ev_json(run, f);
	f = cJSON_CreateObject();
	if (f != NULL)
		r |= json_set_str(f, "type", "awaiting_approval") |
		    json_copy_key(f, p, "request_id");
	r |= ev_json(run, f);
	return r;
}

static int
end_turn(struct run *run, const char *status)
{
	char *out;
	int r;

	r = set_status(run, status);
	if (strcmp(status, "completed") == 0) {
		out = script_output(run);
		if (out == NULL)
			return -ENOMEM;
		r |= json_set_str(run->obj, "output", out);
		r |= message_add(run, "assistant", out);
		free(out);
		r |= json_set(run->obj, "usage", json_template(usage_template));
		r |= json_set_str(run->obj, "stop_reason", "end_turn");
		if (run->m.soft_fail[0] != '\0')
			r |= json_set_str(run->obj, "error_code",
			    run->m.soft_fail);
		run->files = true;
	} else if (strcmp(status, "failed") == 0) {
		char msg[128];

		(void)snprintf(msg, sizeof(msg), "Mock failure: %s",
		    run->m.fail);
		r |= json_set_str(run->obj, "error", msg);
		r |= json_set_str(run->obj, "error_code", run->m.fail);
		r |= json_set_bool(run->obj, "retryable", true);
		r |= json_set_str(run->obj, "stop_reason", "error");
		r |= json_set(run->obj, "usage", json_template(usage_template));
	} else {
		r |= json_set_str(run->obj, "stop_reason", "cancelled");
	}
	return r;
}

static int
perms_cancel(struct run *run)
{
	cJSON *p;
	int r = 0;

	for (p = json_first(run->perms); p != NULL; p = p->next) {
		const char *s = json_str(p, "status");

		if (s != NULL && strcmp(s, "pending") == 0)
			r |= json_set_str(p, "status", "cancelled");
	}
	return r;
}

/* Execute the action at pc; a gate only opens (pc stays on it). */
static int
exec_one(struct run *run)
{
	struct run_act *a = &run->acts[run->pc];
	int r = 0;

	switch (a->kind) {
	case RUN_ACT_EMIT:
		r = ev_append(run, a->ev, a->text);
		break;
	case RUN_ACT_GATE:
		if (!run->gate_open)
			r = gate_open(run, a->text);
		store_broadcast();
		return r;
	case RUN_ACT_END:
		r = end_turn(run, a->text);
		break;
	case RUN_ACT_STEP:
	case RUN_ACT_STALL:
		break;
	}
	run->pc++;
	store_broadcast();
	return r;
}

void
runs_advance(struct run *run)
{
	if (run->driven || run->gate_open || runs_terminal(run))
		return;
	while (run->pc < run->nacts) {
		enum run_act_kind kind = run->acts[run->pc].kind;

		if (exec_one(run) < 0 || kind == RUN_ACT_GATE ||
		    kind == RUN_ACT_STEP)
			return;
	}
}

static bool
driver_ok(const struct run *run, unsigned int turn)
{
	return !store.stopping && !run->dead && run->turn == turn &&
	    run->pc < run->nacts;
}

/* Wait until deadline; false when the driver must stop. */
static bool
driver_sleep(const struct run *run, unsigned int turn, unsigned int ms)
{
	uint64_t deadline = util_now_ms() + ms;

	while (driver_ok(run, turn) && !store_wait(deadline))
		;
	return driver_ok(run, turn);
}

static void *
driver_main(void *arg)
{
	struct run *run = arg;
	bool emitted = false, slept = false;
	unsigned int turn;

	store_lock();
	turn = run->turn;
	while (driver_ok(run, turn)) {
		const struct run_act *a = &run->acts[run->pc];

		if (a->kind == RUN_ACT_GATE && run->gate_open) {
			(void)store_wait(util_now_ms() + 1000);
			continue;
		}
		/* Sleep once before a stall or a [slow] frame, then act. */
		if (!slept &&
		    (a->kind == RUN_ACT_STALL ||
		        (a->kind == RUN_ACT_EMIT && emitted &&
		            run->m.slow_ms > 0))) {
			slept = true;
			(void)driver_sleep(run, turn,
			    a->kind == RUN_ACT_STALL ? a->ms : run->m.slow_ms);
			continue;
		}
		slept = false;
		emitted = a->kind == RUN_ACT_EMIT;
		if (exec_one(run) < 0)
			break;
	}
	if (run->turn == turn)
		run->driven = false;
	store.drivers--;
	store_broadcast();
	runs_unref(run);
	store_unlock();
	return NULL;
}

static int
driver_start(struct run *run)
{
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	if (pthread_attr_init(&attr) != 0)
		return -ENOMEM;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	(void)pthread_attr_setstacksize(&attr, RUNS_DRIVER_STACK);
	run->driven = true;
	runs_ref(run);
	store.drivers++;
	r = pthread_create(&tid, &attr, driver_main, run);
	(void)pthread_attr_destroy(&attr);
	if (r != 0) {
		run->driven = false;
		store.drivers--;
		runs_unref(run);
		return -EAGAIN;
	}
	return 0;
}

/* Forget the oldest finished run nobody is streaming, to bound memory. */
static void
evict_one(void)
{
	struct run *run;

	TAILQ_FOREACH(run, &store.runs, entry)
		if (runs_terminal(run) && run->refs == 1 && !run->driven) {
			TAILQ_REMOVE(&store.runs, run, entry);
			store.nruns--;
			run->dead = true;
			runs_unref(run);
			return;
		}
}

struct run *
runs_new(void)
{
	struct run *run;
	int r;

	if (store.nruns >= RUNS_MAX)
		evict_one();
	run = calloc(1, sizeof(*run));
	if (run == NULL)
		return NULL;
	run->obj = json_template(run_template);
	run->perms = cJSON_CreateArray();
	run->messages = cJSON_CreateArray();
	if (run->obj == NULL || run->perms == NULL || run->messages == NULL)
		goto fail;
	run->id = ++store.seq_run;
	r = json_set_num(run->obj, "id", (double)run->id);
	r |= json_set_now(run->obj, "created_at");
	r |= json_set_now(run->obj, "updated_at");
	r |= json_set_now(run->obj, "started_at");
	r |= json_set_now(run->obj, "last_activity_at");
	r |= json_set_str(run->obj, "retention_mode",
	    json_str(store.settings, "retention_mode"));
	if (r < 0)
		goto fail;
	run->refs = 1;
	TAILQ_INSERT_TAIL(&store.runs, run, entry);
	store.nruns++;
	return run;
fail:
	cJSON_Delete(run->obj);
	cJSON_Delete(run->perms);
	cJSON_Delete(run->messages);
	free(run);
	return NULL;
}

int
runs_turn(struct run *run, const char *message, bool stream)
{
	char *m;
	int r;

	m = strdup(message);
	if (m == NULL)
		return -ENOMEM;
	free(run->message);
	run->message = m;
	script_marks(message, &run->m);
	run->turn++;
	run->gate_open = false;
	run->denied = false;
	run->origin_cut = false;
	run->ev_base = run->nev;
	/* Gates left open by the previous turn are superseded. */
	r = perms_cancel(run);
	r |= set_status(run, "running");
	r |= json_set_null(run->obj, "error");
	r |= json_set_null(run->obj, "error_code");
	r |= json_set_null(run->obj, "stop_reason");
	r |= message_add(run, "user", message);
	if (r < 0)
		return r;
	r = script_build(run);
	if (r < 0)
		return r;
	store_broadcast();
	if (stream)
		return driver_start(run);
	run->driven = false;
	runs_advance(run);
	return 0;
}

int
runs_cancel(struct run *run)
{
	int r;

	if (runs_terminal(run))
		return -EALREADY;
	r = perms_cancel(run);
	run->gate_open = false;
	run->pc = run->nacts;
	r |= set_status(run, "cancelled");
	r |= json_set_str(run->obj, "stop_reason", "cancelled");
	r |= ev_json(run,
	    json_template(
	        "{\"type\":\"cancelled\",\"message\":\"Run cancelled\"}"));
	store_broadcast();
	return r;
}

int
runs_resolve(struct run *run, cJSON *perm, const char *status, bool remember)
{
	cJSON *f;
	int r;

	r = json_set_str(perm, "status", status);
	r |= json_set_now(perm, "resolved_at");
	r |= json_set_bool(perm, "resumed", true);
	r |= json_set_bool(perm, "remembered", remember);
	if (!run->gate_open)
		return r;
	run->gate_open = false;
	if (strcmp(status, "denied") == 0)
		run->denied = true;
	if (run->pc < run->nacts && run->acts[run->pc].kind == RUN_ACT_GATE)
		run->pc++;
	r |= set_status(run, "running");
	f = cJSON_CreateObject();
	if (f != NULL)
		r |= json_set_str(f, "type", "permission_resolved") |
		    json_copy_key(f, perm, "request_id") |
		    json_set_str(f, "decision", status);
	r |= ev_json(run, f);
	store_broadcast();
	return r;
}

struct run *
runs_find(long long id)
{
	struct run *run;

	TAILQ_FOREACH(run, &store.runs, entry)
		if (run->id == id)
			return run;
	return NULL;
}

void
runs_ref(struct run *run)
{
	run->refs++;
}

void
runs_unref(struct run *run)
{
	if (run == NULL || --run->refs > 0)
		return;
	script_free(run);
	for (size_t i = 0; i < run->nev; i++)
		free(run->ev[i].text);
	free(run->ev);
	free(run->message);
	cJSON_Delete(run->obj);
	cJSON_Delete(run->perms);
	cJSON_Delete(run->messages);
	free(run);
}

void
runs_clear(void)
{
	struct run *run;

	while ((run = TAILQ_FIRST(&store.runs)) != NULL) {
		TAILQ_REMOVE(&store.runs, run, entry);
		run->dead = true;
		runs_unref(run);
	}
	store.nruns = 0;
	store_broadcast();
}

void
runs_done(void)
{
	runs_clear();
	free(csv_data);
	csv_data = NULL;
}

const char *
runs_status(const struct run *run)
{
	const char *s = json_str(run->obj, "status");

	return s != NULL ? s : "running";
}

bool
runs_terminal(const struct run *run)
{
	const char *s = runs_status(run);

	return strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 ||
	    strcmp(s, "cancelled") == 0 || strcmp(s, "closed") == 0;
}

bool
runs_live(const struct run *run)
{
	return !run->dead && run->pc < run->nacts;
}

static void
files_init(void)
{
	size_t cap = 64 + RUNS_CSV_ROWS * 48, n;
	int k;

	if (csv_data == NULL) {
		csv_data = malloc(cap);
		if (csv_data == NULL)
			return;
		n = (size_t)snprintf(csv_data, cap,
		    "date,channel,runs,cost_usd,status\n");
		for (int i = 0; i < RUNS_CSV_ROWS && n < cap; i++) {
			k = snprintf(csv_data + n, cap - n,
			    "2026-01-%02d,%s,%d,%d.%04d,%s\n", i % 28 + 1,
			    i % 3 == 0       ? "email"
			        : i % 3 == 1 ? "slack"
			                     : "api",
			    10 + i * 7 % 90, i % 5, i * 37 % 10000,
			    i % 11 == 0 ? "failed" : "completed");
			if (k < 0)
				break;
			n += (size_t)k;
		}
		csv_len = n < cap ? n : cap - 1;
	}
	if (!png_ready) {
		static const uint8_t head[] = {0x89, 'P', 'N', 'G', '\r', '\n',
		    0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 32, 0,
		    0, 0, 32, 8, 6, 0, 0, 0};

		memcpy(png_data, head, sizeof(head));
		for (size_t i = sizeof(head); i < sizeof(png_data); i++)
			png_data[i] = (uint8_t)(i * 31 % 251 * (i % 5 != 0));
		png_ready = true;
	}
}

const void *
runs_file(const struct run *run, const char *name, size_t *ret_len,
    const char **ret_ctype)
{
	if (!run->files)
		return NULL;
	files_init();
	if (strcmp(name, "report.csv") == 0 && csv_data != NULL) {
		*ret_len = csv_len;
		*ret_ctype = "text/csv";
		return csv_data;
	}
	if (strcmp(name, "chart.png") == 0) {
		*ret_len = sizeof(png_data);
		*ret_ctype = "image/png";
		return png_data;
	}
	return NULL;
}

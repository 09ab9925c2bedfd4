/*
 * SPDX-License-Identifier: MIT
 *
 * Compiles a turn's message into the actions runs.c executes. The event
 * vocabulary follows upstream-api.md §6: metadata first, reasoning while
 * the polled steps pass, optional gates, then text, a tool call, a todo
 * update, run_metrics and the terminal frames.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "script.h"
#include "store.h"

#define SCRIPT_MAX_ECHO 160    /* message bytes quoted in output */
#define SCRIPT_MAX_LONG 100000 /* cap of [long:N] */
#define SCRIPT_MAX_MS 3600000  /* cap of any marker delay */

static unsigned int
marker_num(const char *arg, unsigned int def, unsigned int max)
{
	char *end;
	unsigned long v;

	if (arg == NULL || *arg == '\0')
		return def;
	v = strtoul(arg, &end, 10);
	if (*end != '\0')
		return def;
	return v > max ? max : (unsigned int)v;
}

static void
marker_word(char *dst, size_t len, const char *arg, const char *def)
{
	size_t i = 0;

	if (arg == NULL || *arg == '\0')
		arg = def;
	for (; *arg != '\0' && i + 1 < len; arg++)
		if ((*arg >= 'A' && *arg <= 'Z') ||
		    (*arg >= 'a' && *arg <= 'z') ||
		    (*arg >= '0' && *arg <= '9') || *arg == '_' || *arg == '-')
			dst[i++] = *arg;
	dst[i] = '\0';
}

static void
marker_apply(struct run_marks *m, const char *name, const char *arg)
{
	static const struct {
		const char *name;
		size_t off;
	} flags[] = {
#define F(n) {#n, offsetof(struct run_marks, n)}
	    F(approval),
	    F(question),
	    F(plan),
	    F(autocontinue),
	    F(error),
	    F(cancelled),
	    F(invalid),
	    F(unknown),
	    F(fields),
	    F(split),
	    F(crlf),
	    F(cr),
	    F(keepalive),
	    F(multiline),
	    F(nodone),
	    F(doneonly),
	    F(bracketonly),
	    F(stamp),
	    F(native),
#undef F
	};

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcmp(name, flags[i].name) == 0) {
			*(bool *)((char *)m + flags[i].off) = true;
			return;
		}
	if (strcmp(name, "fail") == 0)
		marker_word(m->fail, sizeof(m->fail), arg, "sdk_error");
	else if (strcmp(name, "soft_fail") == 0)
		marker_word(m->soft_fail, sizeof(m->soft_fail), arg,
		    "rate_limited");
	else if (strcmp(name, "drop") == 0)
		m->drop = marker_num(arg, 3, 1000000);
	else if (strcmp(name, "stall") == 0)
		m->stall_ms =
		    marker_num(arg, RUNS_DEFAULT_STALL_MS, SCRIPT_MAX_MS);
	else if (strcmp(name, "slow") == 0)
		m->slow_ms = marker_num(arg, 50, SCRIPT_MAX_MS);
	else if (strcmp(name, "long") == 0)
		m->long_n = marker_num(arg, 100, SCRIPT_MAX_LONG);
}

void
script_marks(const char *message, struct run_marks *ret)
{
	const char *p = message;

	memset(ret, 0, sizeof(*ret));
	while (p != NULL && (p = strchr(p, '[')) != NULL) {
		const char *end = strchr(p, ']');
		char tok[64], *colon;
		size_t n;

		if (end == NULL)
			break;
		n = (size_t)(end - p - 1);
		if (n > 0 && n < sizeof(tok)) {
			memcpy(tok, p + 1, n);
			tok[n] = '\0';
			colon = strchr(tok, ':');
			if (colon != NULL)
				*colon++ = '\0';
			marker_apply(ret, tok, colon);
		}
		p = end + 1;
	}
}

/* The message without its markers, trimmed and capped, for the output. */
static char *
echo_text(const char *message)
{
	size_t len = strlen(message), o = 0;
	char *out = malloc(len + 1);
	const char *p;

	if (out == NULL)
		return NULL;
	for (p = message; *p != '\0';) {
		const char *end = *p == '[' ? strchr(p, ']') : NULL;

		if (end != NULL) {
			p = end + 1;
			continue;
		}
		if ((*p == ' ' || *p == '\n' || *p == '\t') &&
		    (o == 0 || out[o - 1] == ' ')) {
			p++;
			continue;
		}
		out[o++] = (char)(*p == '\n' || *p == '\t' ? ' ' : *p);
		p++;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	if (o > SCRIPT_MAX_ECHO) {
		o = SCRIPT_MAX_ECHO;
		/* Do not cut a UTF-8 sequence in half. */
		while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
			o--;
	}
	out[o] = '\0';
	return out;
}

char *
script_output(const struct run *run)
{
	char *echo, *out = NULL;
	size_t len;
	int n;

	echo = echo_text(run->message != NULL ? run->message : "");
	if (echo == NULL)
		return NULL;
	len = strlen(echo) + 160 + (size_t)run->m.long_n * 24;
	out = malloc(len);
	if (out != NULL) {
		n = snprintf(out, len,
		    "Done \xe2\x80\x94 I worked through "
		    "\"%s\" and saved the numbers to report.csv, with a "
		    "chart in chart.png.",
		    *echo != '\0' ? echo : "your request");
		for (unsigned int i = 1; n > 0 && i <= run->m.long_n; i++)
			n += snprintf(out + n, len - (size_t)n, " (%u/%u)", i,
			    run->m.long_n);
	}
	free(echo);
	return out;
}

static int
push(struct run *run, enum run_act_kind kind, enum run_ev_kind ev, char *take,
    unsigned int ms)
{
	struct run_act *a;

	if (run->nacts == run->actcap) {
		size_t cap = run->actcap == 0 ? 32 : run->actcap * 2;

		a = reallocarray(run->acts, cap, sizeof(*a));
		if (a == NULL) {
			free(take);
			return -ENOMEM;
		}
		run->acts = a;
		run->actcap = cap;
	}
	a = &run->acts[run->nacts++];
	a->kind = kind;
	a->ev = ev;
	a->text = take;
	a->ms = ms;
	return 0;
}

static int
push_text(struct run *run, enum run_act_kind kind, enum run_ev_kind ev,
    const char *text)
{
	char *t = NULL;

	if (text != NULL) {
		t = strdup(text);
		if (t == NULL)
			return -ENOMEM;
	}
	return push(run, kind, ev, t, 0);
}

/* Emit a JSON frame; with [multiline] its fields span two data: lines. */
static int
emit(struct run *run, cJSON *take)
{
	char *s, *c;

	if (take == NULL)
		return -ENOMEM;
	s = cJSON_PrintUnformatted(take);
	cJSON_Delete(take);
	if (s == NULL)
		return -ENOMEM;
	c = run->m.multiline ? strstr(s, ",\"") : NULL;
	if (c != NULL) {
		char *t = malloc(strlen(s) + 2);

		if (t == NULL) {
			free(s);
			return -ENOMEM;
		}
		memcpy(t, s, (size_t)(c - s) + 1);
		t[c - s + 1] = '\n';
		memcpy(t + (c - s) + 2, c + 1, strlen(c + 1) + 1);
		free(s);
		s = t;
	}
	return push(run, RUN_ACT_EMIT, RUN_EV_DATA, s, 0);
}

static cJSON *
frame(const char *type)
{
	cJSON *o = cJSON_CreateObject();

	if (o != NULL && json_set_str(o, "type", type) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *
frame_s(const char *type, const char *k1, const char *v1, const char *k2,
    const char *v2)
{
	cJSON *o = frame(type);
	int r = 0;

	if (o == NULL)
		return NULL;
	if (k1 != NULL)
		r |= json_set_str(o, k1, v1);
	if (k2 != NULL)
		r |= json_set_str(o, k2, v2);
	if (r < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *
metadata(const struct run *run, bool usage)
{
	cJSON *o = frame("metadata"), *p;
	int r;

	p = cJSON_AddObjectToObject(o, "payload");
	if (p == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	r = json_set_num(p, "run_id", (double)run->id);
	r |= json_copy_key(p, run->obj, "teammate_id");
	if (usage)
		r |= json_set(p, "usage",
		    json_template(
		        "{\"input_tokens\":1200,\"output_tokens\":300,"
		        "\"cache_read_tokens\":0,\"cache_creation_tokens\":0,"
		        "\"total_tokens\":1500,\"cost_usd\":\"0.012000\"}"));
	if (r < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int
build_prelude(struct run *run)
{
	unsigned int steps =
	    store.run_steps > 0 ? (unsigned)store.run_steps : 1;
	char buf[64];
	int r;

	r = emit(run, metadata(run, false));
	if (r == 0 && run->m.unknown) {
		r = emit(run,
		    frame_s("sdk_init", "subtype", "init", NULL, NULL));
		r |= emit(run,
		    frame_s("x-mock-unknown", "note",
		        "an event type no client knows", NULL, NULL));
		r |= emit(run,
		    frame_s("RUNNER_DIAG", "message", "warm", NULL, NULL));
	}
	if (r == 0 && run->m.keepalive)
		r = push_text(run, RUN_ACT_EMIT, RUN_EV_COMMENT,
		    ": keep-alive");
	if (r == 0)
		r = emit(run,
		    frame_s("reasoning-start", "id", "rsn_1", NULL, NULL));
	if (r == 0)
		r = push(run, RUN_ACT_STEP, RUN_EV_DATA, NULL, 0);
	for (unsigned int k = 1; r == 0 && k < steps; k++) {
		(void)snprintf(buf, sizeof(buf), "Step %u of %u. ", k, steps);
		r = emit(run,
		    frame_s("reasoning-delta", "id", "rsn_1", "delta", buf));
		if (r == 0 && run->m.keepalive)
			r = push_text(run, RUN_ACT_EMIT, RUN_EV_COMMENT,
			    ": keep-alive");
		if (r == 0)
			r = push(run, RUN_ACT_STEP, RUN_EV_DATA, NULL, 0);
	}
	if (r == 0)
		r = emit(run,
		    frame_s("reasoning-end", "id", "rsn_1", NULL, NULL));
	return r;
}

/*
 * A Claude-native frame (upstream-api.md 6.3): type, id, and the object
 * member key holding {"type": sub, skey: sval}.
 */
static cJSON *
native(const char *type, const char *id, const char *key, const char *sub,
    const char *skey, const char *sval)
{
	cJSON *o = frame_s(type, "id", id, NULL, NULL), *in;

	if (o == NULL || key == NULL)
		return o;
	in = cJSON_AddObjectToObject(o, key);
	if (in == NULL || json_set_str(in, "type", sub) < 0 ||
	    (skey != NULL && json_set_str(in, skey, sval) < 0)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* A text delta, AI-SDK style or as a native content_block_delta. */
static cJSON *
text_delta(const struct run *run, const char *text)
{
	if (run->m.native)
		return native("content_block_delta", "txt_1", "delta",
		    "text_delta", "text", text);
	return frame_s("text-delta", "id", "txt_1", "delta", text);
}

static int
build_text(struct run *run)
{
	char *out = script_output(run), *p;
	int r;

	if (out == NULL)
		return -ENOMEM;
	if (run->m.native)
		r = emit(run, native("content_block_start", "txt_1",
		    "content_block", "text", NULL, NULL));
	else
		r = emit(run, frame_s("text-start", "id", "txt_1", NULL, NULL));
	for (p = out; r == 0 && *p != '\0';) {
		size_t n = strcspn(p, " ");
		char save;

		n += strspn(p + n, " ");
		save = p[n];
		p[n] = '\0';
		r = emit(run, text_delta(run, p));
		p[n] = save;
		p += n;
	}
	free(out);
	if (r == 0 && run->m.native)
		r = emit(run, frame_s("content_block_stop", "id", "txt_1", NULL,
		    NULL));
	else if (r == 0)
		r = emit(run, frame_s("text-end", "id", "txt_1", NULL, NULL));
	return r;
}

/* The gmail call's result: a TYPE frame, IDKEY = id, FIELD = the result. */
static cJSON *
gmail_result(const char *type, const char *idkey, const char *id,
    const char *field)
{
	cJSON *o = frame_s(type, idkey, id, NULL, NULL);

	if (o != NULL &&
	    json_set(o, field,
	        json_template(
	            "{\"status\":\"sent\",\"message_id\":\"msg_mock_1\"}")) <
	        0) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

/* The gmail call of build_tool() as Claude-native frames. */
static int
build_tool_native(struct run *run, const char *id)
{
	int r;

	r = emit(run, frame_s("tool_use", "id", id, "name", "gmail"));
	r |= emit(run, native("content_block_delta", id, "delta",
	    "input_json_delta", "partial_json", "{\"to\":\"ops@example.com\","));
	r |= emit(run, native("content_block_delta", id, "delta",
	    "input_json_delta", "partial_json", "\"subject\":\"Weekly recap\"}"));
	r |= emit(run, frame_s("content_block_stop", "id", id, NULL, NULL));
	r |= emit(run,
	    gmail_result("tool_result", "tool_use_id", id, "content"));
	return r;
}

static int
build_tool(struct run *run)
{
	char id[48];
	cJSON *o;
	int r;

	(void)snprintf(id, sizeof(id), "toolu_%lld_%u", run->id, run->turn);
	if (run->m.native) {
		r = build_tool_native(run, id);
		goto todos;
	}
	r = emit(run,
	    frame_s("tool-call-start", "toolCallId", id, "toolName", "gmail"));
	r |= emit(run,
	    frame_s("tool-call-delta", "toolCallId", id, "delta",
	        "{\"to\":\"ops@example.com\","));
	r |= emit(run,
	    frame_s("tool-call-delta", "toolCallId", id, "delta",
	        "\"subject\":\"Weekly recap\"}"));
	r |= emit(run, frame_s("tool-call-end", "toolCallId", id, NULL, NULL));
	r |= emit(run,
	    gmail_result("tool-result-end", "toolCallId", id, "result"));
todos:
	o = frame_s("todo-update", "toolCallId", id, NULL, NULL);
	if (o != NULL &&
	    json_set(o, "todos",
	        json_template(
	            "[{\"id\":\"1\",\"content\":\"Pull the numbers\","
	            "\"status\":\"completed\"},{\"id\":\"2\",\"content\":"
	            "\"Send the recap\",\"status\":\"completed\"}]")) < 0) {
		cJSON_Delete(o);
		o = NULL;
	}
	r |= emit(run, o);
	return r;
}

static int
build_failure(struct run *run)
{
	char msg[128];
	cJSON *o;
	int r;

	(void)snprintf(msg, sizeof(msg), "Mock failure: %s", run->m.fail);
	r = push_text(run, RUN_ACT_END, RUN_EV_DATA, "failed");
	o = frame_s(run->m.fail, "error", msg, "error_code", run->m.fail);
	if (o != NULL && json_set_str(o, "message", msg) < 0) {
		cJSON_Delete(o);
		o = NULL;
	}
	r |= emit(run, o);
	return r;
}

static int
build_end(struct run *run)
{
	cJSON *o;
	int r;

	o = frame("run_metrics");
	if (o != NULL &&
	    (json_set_num(o, "execution_time_ms", 1234) |
	        json_set_num(o, "input_tokens_used", 1200) |
	        json_set_num(o, "output_tokens_used", 300) |
	        json_set_num(o, "claude_token_cost_usd", 0.012) |
	        json_set_str(o, "stop_reason", "end_turn") |
	        json_set_str(o, "completion_state", "complete") |
	        json_set(o, "unresolved_tool_use_ids", cJSON_CreateArray())) <
	        0) {
		cJSON_Delete(o);
		o = NULL;
	}
	r = emit(run, o);
	r |= emit(run, metadata(run, true));
	r |= push_text(run, RUN_ACT_END, RUN_EV_DATA, "completed");
	if (r < 0)
		return r;
	if (run->m.nodone)
		return push_text(run, RUN_ACT_EMIT, RUN_EV_PARTIAL,
		    "data: {\"type\":\"done\",\"stop_re");
	if (!run->m.bracketonly) {
		o = frame_s("done", "stop_reason", "end_turn",
		    "completion_state", "complete");
		if (o != NULL &&
		    json_set(o, "unresolved_tool_use_ids",
		        cJSON_CreateArray()) < 0) {
			cJSON_Delete(o);
			o = NULL;
		}
		r = emit(run, o);
	}
	if (r == 0 && !run->m.doneonly)
		r = push_text(run, RUN_ACT_EMIT, RUN_EV_DATA, "[DONE]");
	return r;
}

/* A stall, the approval/question/plan gates and an [error] frame. */
static int
build_middle(struct run *run)
{
	const struct run_marks *m = &run->m;
	int r = 0;

	if (m->stall_ms > 0)
		r = push(run, RUN_ACT_STALL, RUN_EV_DATA, NULL, m->stall_ms);
	if (r == 0 && m->approval)
		r = push_text(run, RUN_ACT_GATE, RUN_EV_DATA, "approval");
	if (r == 0 && m->question)
		r = push_text(run, RUN_ACT_GATE, RUN_EV_DATA, "question");
	if (r == 0 && m->plan)
		r = push_text(run, RUN_ACT_GATE, RUN_EV_DATA, "plan");
	if (r == 0 && m->error)
		r = emit(run,
		    frame_s("error", "error",
		        "Mock error: the gmail tool answered 500", "error_code",
		        "tool_error"));
	return r;
}

/* How the turn ends: a failure, a cancellation, or the normal output. */
static int
build_outcome(struct run *run)
{
	const struct run_marks *m = &run->m;
	int r;

	if (m->fail[0] != '\0') {
		r = build_failure(run);
		if (r == 0 && !m->nodone)
			r = push_text(run, RUN_ACT_EMIT, RUN_EV_DATA, "[DONE]");
		return r;
	}
	if (m->cancelled) {
		r = push_text(run, RUN_ACT_END, RUN_EV_DATA, "cancelled");
		if (r == 0)
			r = emit(run,
			    frame_s("cancelled", "message", "Run cancelled",
			        NULL, NULL));
		return r;
	}
	r = build_text(run);
	if (r == 0)
		r = build_tool(run);
	if (r == 0 && m->invalid)
		r = push_text(run, RUN_ACT_EMIT, RUN_EV_DATA,
		    "{\"type\":\"text-delta\",\"delta\":");
	if (r == 0)
		r = build_end(run);
	return r;
}

int
script_build(struct run *run)
{
	int r;

	script_free(run);
	r = build_prelude(run);
	if (r == 0)
		r = build_middle(run);
	if (r == 0)
		r = build_outcome(run);
	if (r < 0)
		script_free(run);
	return r;
}

void
script_free(struct run *run)
{
	for (size_t i = 0; i < run->nacts; i++)
		free(run->acts[i].text);
	free(run->acts);
	run->acts = NULL;
	run->nacts = run->actcap = 0;
	run->pc = 0;
}

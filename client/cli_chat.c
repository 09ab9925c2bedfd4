/*
 * SPDX-License-Identifier: MIT
 *
 * A teammate's task and chat on one connection. The teammate is the one
 * named, else (as the SDK's CLI does) the first of teammates.list. Each
 * chat turn is a full stream; a turn that fails is reported and the
 * conversation goes on, except when the connection is gone.
 */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli_chat.h"
#include "cli_cmd.h"
#include "cli_common.h"
#include "cli_out.h"
#include "cli_run.h"
#include "codec.h"
#include "libm8tes.h"

#define CHAT_PROMPT "you> "

static int turn_params(const cJSON *opts, const char *msg, long long run_id,
    cJSON **ret);
static int pick_teammate(struct m8c_conn *c, const struct cli_opts *o,
    cJSON *params);
static void chat_help(FILE *f);
static int chat_turn(struct cli_run *s, const struct cli_opts *o,
    struct cli_chat *ch, const char *method, const cJSON *params,
    bool *ret_gone);

/* A copy of opts with the message, and run_id when > 0. */
static int
turn_params(const cJSON *opts, const char *msg, long long run_id, cJSON **ret)
{
	cJSON *p = opts != NULL ? cJSON_Duplicate(opts, true)
	                        : cJSON_CreateObject();

	if (p == NULL)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(p, "message");
	if (cJSON_AddStringToObject(p, "message", msg) == NULL ||
	    (run_id > 0 &&
	        cJSON_AddNumberToObject(p, "run_id", (double)run_id) == NULL)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

int
cli_chat_next(struct cli_chat *ch, const char *line, const char **ret_method,
    cJSON **ret_params)
{
	char *text, *s, *e;
	long long id;
	int r;

	if (line == NULL)
		return CLI_CHAT_QUIT;
	text = strdup(line);
	if (text == NULL)
		return -ENOMEM;
	for (s = text; isspace((unsigned char)*s); s++)
		;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	if (s[0] == '\0') {
		r = CLI_CHAT_SKIP;
	} else if (strcmp(s, "/exit") == 0 || strcmp(s, "/quit") == 0) {
		r = CLI_CHAT_QUIT;
	} else if (strcmp(s, "/help") == 0) {
		r = CLI_CHAT_HELP;
	} else if (strcmp(s, "/new") == 0 || strcmp(s, "/clear") == 0) {
		ch->run_id = 0;
		r = CLI_CHAT_SKIP;
	} else if (strncmp(s, "/resume", 7) == 0 &&
	    (s[7] == '\0' || isspace((unsigned char)s[7]))) {
		char *end;

		for (s += 7; isspace((unsigned char)*s); s++)
			;
		errno = 0;
		id = isdigit((unsigned char)*s) ? strtoll(s, &end, 10) : 0;
		r = -EINVAL;
		if (id > 0 && errno == 0 && *end == '\0') {
			ch->run_id = id;
			r = CLI_CHAT_SKIP;
		}
	} else if (ch->run_id == 0) {
		r = turn_params(ch->create, s, 0, ret_params);
		if (r == 0) {
			*ret_method = "runs.create";
			r = CLI_CHAT_CREATE;
		}
	} else {
		r = turn_params(ch->reply, s, ch->run_id, ret_params);
		if (r == 0) {
			*ret_method = "runs.reply";
			r = CLI_CHAT_REPLY;
		}
	}
	free(text);
	return r;
}

void
cli_chat_turn_done(struct cli_chat *ch, long long run_id)
{
	if (run_id > 0)
		ch->run_id = run_id;
}

/*
 * Sets params.teammate_id to the first teammate of teammates.list. Returns
 * 0, or the exit status after saying why not.
 */
static int
pick_teammate(struct m8c_conn *c, const struct cli_opts *o, cJSON *params)
{
	struct m8c_reply reply = {0};
	const cJSON *first, *id, *name;
	cJSON *p;
	int r, status = 0;

	p = cJSON_CreateObject();
	if (p == NULL || cJSON_AddNumberToObject(p, "limit", 1) == NULL) {
		cJSON_Delete(p);
		return cli_call_error(-ENOMEM, o);
	}
	r = m8c_call(c, "teammates.list", p, o->timeout_ms, NULL, NULL, &reply);
	cJSON_Delete(p);
	if (r < 0)
		return cli_call_error(r, o);
	if (reply.kind != M8C_RESULT) {
		status = cli_reply_error(&reply);
		goto out;
	}
	first = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(reply.result, "data"), 0);
	id = cJSON_GetObjectItemCaseSensitive(first, "id");
	if (!cJSON_IsNumber(id) && !cJSON_IsString(id)) {
		(void)fputs("m8tes: no teammates yet; create one with: m8tes "
		            "teammates create --name NAME\n",
		    stderr);
		status = codec_exit_code("m8tes.not_found");
		goto out;
	}
	if (!cJSON_AddItemToObject(params, "teammate_id",
	        cJSON_Duplicate(id, false))) {
		status = cli_call_error(-ENOMEM, o);
		goto out;
	}
	name = cJSON_GetObjectItemCaseSensitive(first, "name");
	if (o->tty_err) {
		char *js = cJSON_PrintUnformatted(id);

		(void)fprintf(stderr, "m8tes: teammate %s", js != NULL ? js : "");
		if (cJSON_IsString(name)) {
			(void)fputs(" (", stderr);
			cli_out_clean(stderr, name->valuestring, NULL);
			(void)fputc(')', stderr);
		}
		(void)fputc('\n', stderr);
		free(js);
	}
out:
	m8c_reply_done(&reply);
	return status;
}

int
cli_chat_task_main(const struct cli_opts *o, struct cli_cmd *cmd)
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
	if (cmd->pick_teammate)
		status = pick_teammate(c, o, cmd->params);
	if (status == 0) {
		cli_run_setup(o, "runs.create", &out, &in, &prompt);
		cli_run_init(&s, c, &out, in, prompt, o->timeout_ms);
		r = cli_run_stream(&s, "runs.create", cmd->params, &reply);
		status = cli_run_show(&s, o, r, &reply);
		m8c_reply_done(&reply);
	}
	m8c_close(c);
	return cli_finish(status);
}

static void
chat_help(FILE *f)
{
	(void)fputs("  each line is a message; /new starts a new run, /resume "
	            "RUN_ID continues one,\n"
	            "  /exit or Ctrl-D ends the chat\n",
	    f);
}

/*
 * One turn: streams it and learns the run it talked to. Returns the turn's
 * exit status (reported); *ret_gone tells whether the connection is gone.
 */
static int
chat_turn(struct cli_run *s, const struct cli_opts *o, struct cli_chat *ch,
    const char *method, const cJSON *params, bool *ret_gone)
{
	struct m8c_reply reply = {0};
	int r, status;

	cli_out_stream_reset(s->out);
	s->out->run_id = ch->run_id;
	r = cli_run_stream(s, method, params, &reply);
	status = cli_run_show(s, o, r, &reply);
	cli_chat_turn_done(ch, s->out->run_id);
	m8c_reply_done(&reply);
	*ret_gone = r < 0 && r != -ETIMEDOUT;
	return status;
}

int
cli_chat_main(const struct cli_opts *o, struct cli_cmd *cmd)
{
	struct cli_chat ch = {
	    .create = cmd->params,
	    .reply = cmd->reply_params,
	    .run_id = cmd->resume_run,
	};
	bool prompting = o->tty_in && !o->json;
	struct m8c_conn *c;
	struct cli_out out;
	struct cli_run s;
	FILE *in, *prompt;
	char *line = NULL;
	size_t cap = 0;
	int status = 0;

	status = cli_connect(o, &c);
	if (status != 0)
		return status;
	if (cmd->pick_teammate && cmd->resume_run == 0)
		status = pick_teammate(c, o, cmd->params);
	if (status != 0)
		goto out;
	cli_run_setup(o, "runs.create", &out, &in, &prompt);
	cli_run_init(&s, c, &out, in, prompt, o->timeout_ms);
	if (prompting)
		chat_help(stdout);
	for (;;) {
		const char *method = NULL;
		cJSON *params = NULL;
		bool gone = false;
		ssize_t n;
		int act, st;

		if (prompting) {
			(void)fputs(CHAT_PROMPT, stdout);
			(void)fflush(stdout);
		}
		n = getline(&line, &cap, stdin);
		act = cli_chat_next(&ch, n < 0 ? NULL : line, &method, &params);
		if (act == CLI_CHAT_QUIT) {
			if (prompting && n < 0)
				(void)fputc('\n', stdout);
			break;
		}
		if (act == CLI_CHAT_HELP)
			chat_help(stdout);
		if (act == -EINVAL)
			(void)fputs("m8tes: /resume wants a run id\n", stderr);
		if (act == -ENOMEM) {
			status = cli_call_error(act, o);
			break;
		}
		if (act != CLI_CHAT_CREATE && act != CLI_CHAT_REPLY)
			continue;
		st = chat_turn(&s, o, &ch, method, params, &gone);
		cJSON_Delete(params);
		if (st != 0)
			status = st;
		if (gone)
			break;
	}
out:
	free(line);
	m8c_close(c);
	return cli_finish(status);
}

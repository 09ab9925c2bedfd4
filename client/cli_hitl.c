/*
 * SPDX-License-Identifier: MIT
 *
 * Permission requests and questions of a run, for a person: the prompt
 * and its answer on a terminal, the answering command without one. The
 * shapes are those of upstream-api.md section 7: a PermissionRequest has
 * request_id, tool_name, tool_input, display_name, consequence; a question
 * is one whose tool_name is AskUserQuestion, with tool_input.questions[]
 * of {question, header, multiSelect, options[{label}]}.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli_hitl.h"
#include "cli_out.h"

#define LINE_MAX_IN 1024 /* bytes of one answer */
#define INPUT_COLS 200   /* bytes of tool input shown */

static const char *str(const cJSON *o, const char *key);
static const cJSON *questions(const cJSON *req);
static int read_answer(FILE *in, char *buf, size_t len);
static char *trim(char *s);
static void show_tool(FILE *out, const cJSON *req);
static int ask_allow(FILE *in, FILE *out, bool *ret_allow);
static const char *option_label(const cJSON *opts, const char *choice);
static int pick_multi(const cJSON *opts, char *choice, char **ret);
static int ask_question(const cJSON *q, FILE *in, FILE *out, char **ret);
static int ask_questions(const cJSON *req, FILE *in, FILE *out,
    cJSON *answers);
static cJSON *sample_answers(const cJSON *qs);

/* The string at key, or NULL. */
static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* tool_input.questions when it is a non-empty array, else NULL. */
static const cJSON *
questions(const cJSON *req)
{
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(req, "tool_input");
	const cJSON *qs = cJSON_GetObjectItemCaseSensitive(in, "questions");

	return cJSON_IsArray(qs) && cJSON_GetArraySize(qs) > 0 ? qs : NULL;
}

bool
cli_hitl_is_question(const cJSON *req)
{
	const char *tool = str(req, "tool_name");

	return tool != NULL && strcmp(tool, CLI_HITL_QUESTION_TOOL) == 0;
}

void
cli_shell_quote(FILE *f, const char *s)
{
	(void)fputc('\'', f);
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			(void)fputs("'\\''", f);
		else
			(void)fputc(*s, f);
	}
	(void)fputc('\'', f);
}

/*
 * The answers object a script would send: every question with its first
 * option (or "..." without options). NULL on ENOMEM.
 */
static cJSON *
sample_answers(const cJSON *qs)
{
	cJSON *answers = cJSON_CreateObject();
	const cJSON *q;

	if (answers == NULL)
		return NULL;
	cJSON_ArrayForEach(q, qs)
	{
		const char *text = str(q, "question");
		const cJSON *opt = cJSON_GetArrayItem(
		    cJSON_GetObjectItemCaseSensitive(q, "options"), 0);
		const char *label = str(opt, "label");

		if (text == NULL)
			continue;
		if (cJSON_AddStringToObject(answers, text,
		        label != NULL ? label : "...") == NULL) {
			cJSON_Delete(answers);
			return NULL;
		}
	}
	return answers;
}

void
cli_hitl_hint(FILE *f, long long run_id, const cJSON *req)
{
	const char *id = str(req, "request_id"), *tool = str(req, "tool_name");
	const char *what = str(req, "display_name");
	const cJSON *qs = questions(req), *q, *opt;
	cJSON *answers;
	char *js;

	if (cli_hitl_is_question(req) && qs != NULL) {
		cJSON_ArrayForEach(q, qs)
		{
			const cJSON *opts =
			    cJSON_GetObjectItemCaseSensitive(q, "options");

			(void)fprintf(f, "m8tes: run %lld asks: ", run_id);
			cli_out_clean(f,
			    str(q, "question") != NULL ? str(q, "question")
			                               : "?",
			    "\n  ");
			cJSON_ArrayForEach(opt, opts)
			{
				(void)fputs(opt == opts->child ? " [" : ", ", f);
				cli_out_clean(f,
				    str(opt, "label") != NULL ? str(opt, "label")
				                              : "?",
				    NULL);
				if (opt->next == NULL)
					(void)fputc(']', f);
			}
			(void)fputc('\n', f);
		}
		answers = sample_answers(qs);
		js = answers != NULL ? cJSON_PrintUnformatted(answers) : NULL;
		(void)fprintf(f, "m8tes: answer with: m8tes runs answer %lld ",
		    run_id);
		cli_shell_quote(f, js != NULL ? js : "{}");
		if (id != NULL) {
			(void)fputs(" --request-id ", f);
			cli_shell_quote(f, id);
		}
		(void)fputc('\n', f);
		free(js);
		cJSON_Delete(answers);
		return;
	}
	if (id == NULL || tool == NULL || cli_hitl_is_question(req)) {
		/* Too little to answer from here: where to look. */
		(void)fprintf(f,
		    "m8tes: run %lld is awaiting approval; see: m8tes runs "
		    "permissions %lld\n",
		    run_id, run_id);
		return;
	}
	(void)fprintf(f, "m8tes: run %lld asks to use ", run_id);
	cli_out_clean(f, tool != NULL ? tool : "a tool", NULL);
	if (what != NULL) {
		(void)fputs(" (", f);
		cli_out_clean(f, what, NULL);
		(void)fputc(')', f);
	}
	(void)fprintf(f, "\nm8tes: answer with: m8tes runs approve %lld ",
	    run_id);
	cli_shell_quote(f, id);
	(void)fputs(" allow   (or deny)\n", f);
}

/*
 * Reads one line of at most len - 1 bytes (the rest of a longer line is
 * dropped). Returns 0, or -ENODATA at the end of the input.
 */
static int
read_answer(FILE *in, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, in) == NULL)
		return -ENODATA;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] != '\n') {
		int c;

		do {
			c = fgetc(in);
		} while (c != EOF && c != '\n');
	}
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* "  ? gmail: Send an email", its input and consequence. */
static void
show_tool(FILE *out, const cJSON *req)
{
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(req,
	    "tool_input");
	const char *what = str(req, "display_name");
	const char *cons = str(req, "consequence");
	const char *prose = str(req, "prose");
	char *js = NULL;

	(void)fputs("  ? ", out);
	cli_out_clean(out,
	    str(req, "tool_name") != NULL ? str(req, "tool_name") : "tool",
	    NULL);
	if (what != NULL) {
		(void)fputs(": ", out);
		cli_out_clean(out, what, NULL);
	}
	(void)fputc('\n', out);
	if (input != NULL && !cJSON_IsNull(input))
		js = cJSON_PrintUnformatted(input);
	if (js != NULL) {
		if (strlen(js) > INPUT_COLS)
			(void)memcpy(js + INPUT_COLS - 3, "...", 4);
		(void)fputs("    input: ", out);
		cli_out_clean(out, js, NULL);
		(void)fputc('\n', out);
		free(js);
	}
	if (cons != NULL) {
		(void)fputs("    consequence: ", out);
		cli_out_clean(out, cons, "\n      ");
		(void)fputc('\n', out);
	}
	if (prose != NULL) {
		(void)fputs("    ", out);
		cli_out_clean(out, prose, "\n    ");
		(void)fputc('\n', out);
	}
}

static int
ask_allow(FILE *in, FILE *out, bool *ret_allow)
{
	char buf[LINE_MAX_IN], *a;

	for (int i = 0; i < CLI_HITL_MAX_TRIES; i++) {
		(void)fputs("  allow? [y/N] ", out);
		(void)fflush(out);
		if (read_answer(in, buf, sizeof(buf)) < 0) {
			(void)fputc('\n', out);
			return -ENODATA;
		}
		a = trim(buf);
		if (strcasecmp(a, "y") == 0 || strcasecmp(a, "yes") == 0) {
			*ret_allow = true;
			return 0;
		}
		if (a[0] == '\0' || strcasecmp(a, "n") == 0 ||
		    strcasecmp(a, "no") == 0) {
			*ret_allow = false;
			return 0;
		}
		(void)fputs("  please answer y or n\n", out);
	}
	return -ENODATA;
}

/* The label a choice names: its number (1-based) or the label itself. */
static const char *
option_label(const cJSON *opts, const char *choice)
{
	char *end;
	long n;
	const cJSON *opt;

	n = strtol(choice, &end, 10);
	if (end != choice && *end == '\0') {
		if (n < 1 || n > cJSON_GetArraySize(opts))
			return NULL;
		return str(cJSON_GetArrayItem(opts, (int)n - 1), "label");
	}
	cJSON_ArrayForEach(opt, opts)
	{
		const char *label = str(opt, "label");

		if (label != NULL && strcasecmp(label, choice) == 0)
			return label;
	}
	return NULL;
}

/*
 * "1,3" -> "A, C" for a multiple choice. Returns 0 and a new string, 1 when
 * an item names no option, -ENOMEM.
 */
static int
pick_multi(const cJSON *opts, char *choice, char **ret)
{
	size_t len = 0, cap = strlen(choice) * 4 + 64;
	char *out = malloc(cap), *save = NULL, *tok;

	if (out == NULL)
		return -ENOMEM;
	out[0] = '\0';
	for (tok = strtok_r(choice, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		const char *label = option_label(opts, trim(tok));
		size_t n;

		if (label == NULL) {
			free(out);
			return 1;
		}
		n = strlen(label);
		if (len + n + 3 > cap) {
			char *bigger = realloc(out, (len + n + 3) * 2);

			if (bigger == NULL) {
				free(out);
				return -ENOMEM;
			}
			out = bigger;
			cap = (len + n + 3) * 2;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		    len > 0 ? ", " : "", label);
	}
	*ret = out;
	return 0;
}

/*
 * One question: its text, numbered options, then a choice. Text that names
 * no option is taken as a free answer. Returns 0 and a new string, or
 * -ENODATA, -ENOMEM.
 */
static int
ask_question(const cJSON *q, FILE *in, FILE *out, char **ret)
{
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(q, "options");
	const char *header = str(q, "header"), *label;
	bool multi = cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(q, "multiSelect"));
	int nopts = cJSON_IsArray(opts) ? cJSON_GetArraySize(opts) : 0;
	char buf[LINE_MAX_IN], *a;
	const cJSON *opt;
	int i = 0, r;

	(void)fputs("  ? ", out);
	if (header != NULL && header[0] != '\0') {
		cli_out_clean(out, header, NULL);
		(void)fputs(":\n    ", out);
	}
	cli_out_clean(out, str(q, "question"), "\n    ");
	(void)fputc('\n', out);
	for (opt = nopts > 0 ? opts->child : NULL; opt != NULL;
	     opt = opt->next) {
		(void)fprintf(out, "    %d) ", ++i);
		cli_out_clean(out,
		    str(opt, "label") != NULL ? str(opt, "label") : "?", NULL);
		(void)fputc('\n', out);
	}
	for (int t = 0; t < CLI_HITL_MAX_TRIES; t++) {
		if (nopts > 0)
			(void)fprintf(out, "  %s [1-%d]: ",
			    multi ? "choices, comma-separated" : "choice",
			    nopts);
		else
			(void)fputs("  answer: ", out);
		(void)fflush(out);
		if (read_answer(in, buf, sizeof(buf)) < 0) {
			(void)fputc('\n', out);
			return -ENODATA;
		}
		a = trim(buf);
		if (a[0] == '\0')
			continue;
		if (multi && nopts > 0) {
			r = pick_multi(opts, a, ret);
			if (r <= 0)
				return r;
		} else if (nopts > 0) {
			label = option_label(opts, a);
			if (label != NULL) {
				*ret = strdup(label);
				return *ret != NULL ? 0 : -ENOMEM;
			}
		}
		if (nopts > 0 && strspn(a, "0123456789, ") == strlen(a)) {
			(void)fputs("  no such option\n", out);
			continue;
		}
		/* Not an option: the user's own words. */
		*ret = strdup(a);
		return *ret != NULL ? 0 : -ENOMEM;
	}
	return -ENODATA;
}

static int
ask_questions(const cJSON *req, FILE *in, FILE *out, cJSON *answers)
{
	const cJSON *qs = questions(req), *q;

	if (qs == NULL)
		return -EBADMSG;
	cJSON_ArrayForEach(q, qs)
	{
		const char *text = str(q, "question");
		char *answer = NULL;
		int r;

		if (text == NULL)
			continue;
		r = ask_question(q, in, out, &answer);
		if (r < 0)
			return r;
		if (cJSON_AddStringToObject(answers, text, answer) == NULL) {
			free(answer);
			return -ENOMEM;
		}
		free(answer);
	}
	return 0;
}

int
cli_hitl_ask(const cJSON *req, FILE *in, FILE *out, const char **ret_method,
    cJSON **ret_params)
{
	const char *id = str(req, "request_id");
	cJSON *params, *answers;
	bool allow = false;
	int r;

	if (id == NULL || (cli_hitl_is_question(req) && questions(req) == NULL))
		return -EBADMSG;
	params = cJSON_CreateObject();
	if (params == NULL ||
	    cJSON_AddStringToObject(params, "request_id", id) == NULL) {
		cJSON_Delete(params);
		return -ENOMEM;
	}
	if (cli_hitl_is_question(req)) {
		answers = cJSON_AddObjectToObject(params, "answers");
		r = answers != NULL ? ask_questions(req, in, out, answers)
		                    : -ENOMEM;
		*ret_method = "runs.answer";
	} else {
		show_tool(out, req);
		r = ask_allow(in, out, &allow);
		if (r == 0 &&
		    cJSON_AddStringToObject(params, "decision",
		        allow ? "allow" : "deny") == NULL)
			r = -ENOMEM;
		*ret_method = "runs.approve";
	}
	if (r < 0) {
		cJSON_Delete(params);
		return r;
	}
	*ret_params = params;
	return 0;
}

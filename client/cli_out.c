/*
 * SPDX-License-Identifier: MIT
 *
 * The m8tes output formats: JSON lines for scripts; tables, "key: value"
 * lines and live run text for a terminal. Every string that came from the
 * API is printed with its control characters replaced, so an answer cannot
 * drive the user's terminal.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_hitl.h"
#include "cli_out.h"
#include "libm8tes.h"

#define CELL_MAX 256 /* bytes of one rendered table cell */
#define CELL_COLS 40 /* columns a cell may take */
#define MAX_COLS 6   /* columns of a table */
#define KEY_COLS 24  /* widest key column of "key: value" lines */

/* Table columns per method, first matching prefix wins. */
static const struct {
	const char *prefix;
	const char *cols[MAX_COLS];
} columns[] = {
    {"teammates.", {"id", "name", "status", "tools"}},
    {"runs.permissions", {"request_id", "tool_name", "status"}},
    {"runs.list_files", {"name", "size"}},
    {"runs.", {"id", "status", "teammate_id", "created_at"}},
    {"tasks.triggers.", {"id", "type", "enabled", "cron", "next_run"}},
    {"tasks.", {"id", "name", "teammate_id", "status"}},
    {"apps.", {"name", "display_name", "category", "connected"}},
    {"memories.", {"id", "scope", "user_id", "content"}},
    {"permissions.", {"id", "tool_name", "user_id", "source"}},
    {"users.", {"id", "user_id", "name", "email"}},
    {"webhooks.list_deliveries",
        {"id", "event_type", "run_id", "status", "attempts"}},
    {"webhooks.", {"id", "url", "events", "active"}},
    {"daemon.describe", {"name", "kind", "summary"}},
};

static size_t utf8_cols(const char *s);
static void cell_append(char *buf, size_t len, size_t *at, const char *s);
static void fmt_number(double d, char *buf, size_t len);
static bool scalar_list(const cJSON *v);
static void cell_array(const cJSON *v, char *buf, size_t len);
static void cell(const cJSON *v, char *buf, size_t len);
static void column_widths(const cJSON *rows, const char *const *cols,
    size_t ncols, size_t *width);
static void
print_row(FILE *f, const char *const *cells, size_t ncols, const size_t *width);
static int
write_file(const char *path, const unsigned char *bytes, size_t n, bool excl);
static size_t
pick_columns(const char *method, const cJSON *rows, const char *cols[MAX_COLS]);
static void print_value(FILE *f, const cJSON *v, const char *indent);
static int print_object(FILE *f, const cJSON *obj, bool skip_text);
static void end_text(struct cli_out *o);
static int print_describe(FILE *f, const cJSON *methods);
static bool terminal_failure(const char *type);
static const char *str_at(const cJSON *o, const char *key);
static long long run_id_of(const cJSON *v);
static void note_metadata(struct cli_out *o, const cJSON *ev);
static void put_prefix(FILE *f, const char *s);
static void print_tool_result(struct cli_out *o, const cJSON *ev);
static void print_run_error(struct cli_out *o, const cJSON *ev,
    const char *type);
static void print_stop(struct cli_out *o, const char *reason);
static void note_hitl(struct cli_out *o, const cJSON *ev);
static void print_event(struct cli_out *o, const cJSON *ev, const char *type);

/* Terminal columns of UTF-8 text, one per code point. */
static size_t
utf8_cols(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

void
cli_out_clean(FILE *f, const char *s, const char *nl_indent)
{
	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n' && nl_indent != NULL)
			(void)fputs(nl_indent, f);
		else if (c == '\n' || c == '\t' || c == '\r')
			(void)fputc(' ', f);
		else if (c < 0x20 || c == 0x7F)
			(void)fputc('?', f);
		else
			(void)fputc(c, f);
	}
}

/*
 * Appends s to a cell, control characters made spaces, stopping at
 * CELL_COLS columns (then ending in "...") or the buffer's end, never
 * inside a UTF-8 sequence.
 */
static void
cell_append(char *buf, size_t len, size_t *at, const char *s)
{
	static const char more[] = "\xE2\x80\xA6"; /* U+2026 */
	size_t cols = utf8_cols(buf);

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		bool lead = (c & 0xC0) != 0x80;
		size_t seq = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		char ch = *s;

		if (lead && cols >= CELL_COLS - 1) {
			if (*at + sizeof(more) <= len) {
				memcpy(buf + *at, more, sizeof(more));
				*at += sizeof(more) - 1;
			}
			return;
		}
		if ((lead && *at + seq >= len) || *at + 1 >= len)
			return;
		if (c < 0x20 || c == 0x7F)
			ch = ' ';
		cols += lead;
		buf[(*at)++] = ch;
		buf[*at] = '\0';
	}
}

/* Integers without a fraction; others in 15 significant digits. */
static void
fmt_number(double d, char *buf, size_t len)
{
	if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
	    d == (double)(long long)d)
		(void)snprintf(buf, len, "%lld", (long long)d);
	else
		(void)snprintf(buf, len, "%.15g", d);
}

/* True when no element of the array v is an object or array. */
static bool
scalar_list(const cJSON *v)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, v)
	{
		if (cJSON_IsObject(it) || cJSON_IsArray(it))
			return false;
	}
	return true;
}

/* A non-empty array as a cell: "a,b", or "[N items]" for containers. */
static void
cell_array(const cJSON *v, char *buf, size_t len)
{
	char item[64];
	const cJSON *it;
	size_t at = 0;

	if (!scalar_list(v)) {
		(void)snprintf(item, sizeof(item), "[%d items]",
		    cJSON_GetArraySize(v));
		cell_append(buf, len, &at, item);
		return;
	}
	cJSON_ArrayForEach(it, v)
	{
		if (at > 0)
			cell_append(buf, len, &at, ",");
		cell(it, item, sizeof(item));
		cell_append(buf, len, &at, item);
	}
}

/* A value as one table cell: "-" for null, absent or empty. */
static void
cell(const cJSON *v, char *buf, size_t len)
{
	const char *text = "-";
	char num[64];
	size_t at = 0;

	buf[0] = '\0';
	if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
		cell_array(v, buf, len);
		return;
	}
	if (cJSON_IsString(v)) {
		text = v->valuestring;
	} else if (cJSON_IsBool(v)) {
		text = cJSON_IsTrue(v) ? "true" : "false";
	} else if (cJSON_IsNumber(v)) {
		fmt_number(v->valuedouble, num, sizeof(num));
		text = num;
	} else if (cJSON_IsObject(v)) {
		text = "{...}";
	}
	cell_append(buf, len, &at, text);
}

static size_t
pick_columns(const char *method, const cJSON *rows, const char *cols[MAX_COLS])
{
	const cJSON *first = cJSON_GetArrayItem(rows, 0), *it;
	size_t n = 0;

	for (size_t i = 0;
	     method != NULL && i < sizeof(columns) / sizeof(columns[0]); i++) {
		if (strncmp(method, columns[i].prefix,
		        strlen(columns[i].prefix)) != 0)
			continue;
		for (; n < MAX_COLS && columns[i].cols[n] != NULL; n++)
			cols[n] = columns[i].cols[n];
		return n;
	}
	if (cJSON_GetObjectItemCaseSensitive(first, "id") != NULL)
		cols[n++] = "id";
	cJSON_ArrayForEach(it, first)
	{
		if (n == 5)
			break;
		if (it->string == NULL || strcmp(it->string, "id") == 0 ||
		    cJSON_IsObject(it) || cJSON_IsArray(it))
			continue;
		cols[n++] = it->string;
	}
	return n;
}

/* Widest cell of each column, header included. */
static void
column_widths(const cJSON *rows, const char *const *cols, size_t ncols,
    size_t *width)
{
	char buf[CELL_MAX];
	const cJSON *row;

	for (size_t c = 0; c < ncols; c++)
		width[c] = strlen(cols[c]);
	cJSON_ArrayForEach(row, rows)
	{
		for (size_t c = 0; c < ncols; c++) {
			cell(cJSON_GetObjectItemCaseSensitive(row, cols[c]),
			    buf, sizeof(buf));
			if (utf8_cols(buf) > width[c])
				width[c] = utf8_cols(buf);
		}
	}
}

/* One line of a table; cells padded but the last. */
static void
print_row(FILE *f, const char *const *cells, size_t ncols, const size_t *width)
{
	for (size_t c = 0; c < ncols; c++) {
		(void)fputs(cells[c], f);
		if (c + 1 < ncols)
			(void)fprintf(f, "%*s",
			    (int)(width[c] - utf8_cols(cells[c]) + 2), "");
	}
	(void)fputc('\n', f);
}

int
cli_out_table(FILE *f, const char *method, const cJSON *rows)
{
	char bufs[MAX_COLS][CELL_MAX];
	const char *cols[MAX_COLS], *cells[MAX_COLS];
	size_t width[MAX_COLS], ncols;
	const cJSON *row;

	if (cJSON_GetArraySize(rows) == 0) {
		(void)fputs("(none)\n", f);
		return 0;
	}
	if (!cJSON_IsObject(cJSON_GetArrayItem(rows, 0))) {
		/* A list of names or numbers: one per line. */
		cJSON_ArrayForEach(row, rows)
		{
			cell(row, bufs[0], sizeof(bufs[0]));
			(void)fprintf(f, "%s\n", bufs[0]);
		}
		return 0;
	}
	ncols = pick_columns(method, rows, cols);
	column_widths(rows, cols, ncols, width);
	for (size_t c = 0; c < ncols; c++) {
		size_t i;

		for (i = 0; cols[c][i] != '\0' && i + 1 < CELL_MAX; i++)
			bufs[c][i] = (char)toupper((unsigned char)cols[c][i]);
		bufs[c][i] = '\0';
		cells[c] = bufs[c];
	}
	print_row(f, cells, ncols, width);
	cJSON_ArrayForEach(row, rows)
	{
		for (size_t c = 0; c < ncols; c++)
			cell(cJSON_GetObjectItemCaseSensitive(row, cols[c]),
			    bufs[c], sizeof(bufs[c]));
		print_row(f, cells, ncols, width);
	}
	return 0;
}

/* One value after its key: scalars plainly, lists joined, else JSON. */
static void
print_value(FILE *f, const cJSON *v, const char *indent)
{
	char buf[CELL_MAX];
	const cJSON *it;
	char *s;

	if (cJSON_IsString(v)) {
		cli_out_clean(f, v->valuestring, indent);
	} else if ((cJSON_IsArray(v) || cJSON_IsObject(v)) &&
	    v->child == NULL) {
		/* Empty lists and objects read as nothing, like null. */
		cell(NULL, buf, sizeof(buf));
		(void)fputs(buf, f);
	} else if (cJSON_IsArray(v) && scalar_list(v)) {
		cJSON_ArrayForEach(it, v)
		{
			if (it != v->child)
				(void)fputs(", ", f);
			print_value(f, it, NULL);
		}
	} else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		s = cJSON_PrintUnformatted(v);
		if (s != NULL)
			cli_out_clean(f, s, NULL);
		free(s);
	} else {
		cell(v, buf, sizeof(buf));
		(void)fputs(buf, f);
	}
}

static int
print_object(FILE *f, const cJSON *obj, bool skip_text)
{
	char indent[KEY_COLS + 4];
	size_t w = 0;
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		size_t n = it->string != NULL ? utf8_cols(it->string) : 0;

		if (n > w)
			w = n;
	}
	if (w > KEY_COLS)
		w = KEY_COLS;
	indent[0] = '\n';
	memset(indent + 1, ' ', w + 2);
	indent[w + 3] = '\0';
	cJSON_ArrayForEach(it, obj)
	{
		const char *key = it->string != NULL ? it->string : "";
		size_t n = utf8_cols(key);

		if (skip_text && strcmp(key, "text") == 0)
			continue;
		cli_out_clean(f, key, NULL);
		(void)fputc(':', f);
		(void)fprintf(f, "%*s", (int)(n < w ? w - n + 1 : 1), "");
		print_value(f, it, indent);
		(void)fputc('\n', f);
	}
	return 0;
}

/* daemon.describe: a table of methods, or one method and its params. */
static int
print_describe(FILE *f, const cJSON *methods)
{
	const cJSON *m = cJSON_GetArrayItem(methods, 0), *params, *it;
	cJSON *copy;
	int r;

	if (cJSON_GetArraySize(methods) != 1)
		return cli_out_table(f, "daemon.describe", methods);
	copy = cJSON_Duplicate(m, true);
	if (copy == NULL)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "params");
	r = print_object(f, copy, false);
	cJSON_Delete(copy);
	params = cJSON_GetObjectItemCaseSensitive(m, "params");
	if (r < 0 || cJSON_GetArraySize(params) == 0)
		return r;
	(void)fputs("params:\n", f);
	cJSON_ArrayForEach(it, params)
	{
		const char *keys[] = {"name", "type", "in", "required",
		    "default"};
		char buf[CELL_MAX];

		(void)fputs(" ", f);
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			const cJSON *v =
			    cJSON_GetObjectItemCaseSensitive(it, keys[k]);

			if (v == NULL || cJSON_IsNull(v) || cJSON_IsFalse(v))
				continue;
			cell(v, buf, sizeof(buf));
			if (cJSON_IsTrue(v))
				(void)fprintf(f, " %s", keys[k]);
			else if (strcmp(keys[k], "default") == 0)
				(void)fprintf(f, " default=%s", buf);
			else
				(void)fprintf(f, " %s", buf);
		}
		(void)fputc('\n', f);
	}
	return 0;
}

/* Ends the line of streamed text, if one is open. */
static void
end_text(struct cli_out *o)
{
	if (o->text_open)
		(void)fputc('\n', o->f);
	o->text_open = false;
}

/* Terminal failure frames (upstream-api.md 6.4): errors that end a run. */
static bool
terminal_failure(const char *type)
{
	static const char *const types[] = {"sdk_error", "AGENT_RUNNER_DIED",
	    "RUNNER_LIFECYCLE_ERROR", "SANDBOX_BOOT_TIMEOUT",
	    "SANDBOX_QUOTA_EXHAUSTED", "SANDBOX_UNAVAILABLE",
	    "SNAPSHOT_VERSION_MISMATCH"};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

/* The string at key of o, or NULL. */
static const char *
str_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A run id: a positive integer, or a string of digits; 0 otherwise. */
static long long
run_id_of(const cJSON *v)
{
	char *end;
	long long n;

	if (cJSON_IsNumber(v) && v->valuedouble >= 1 &&
	    v->valuedouble <= 9007199254740992.0)
		return (long long)v->valuedouble;
	if (!cJSON_IsString(v) || v->valuestring[0] < '0' ||
	    v->valuestring[0] > '9')
		return 0;
	errno = 0;
	n = strtoll(v->valuestring, &end, 10);
	return errno == 0 && *end == '\0' && n > 0 ? n : 0;
}

/* metadata: payload.run_id, or a flat run_id (upstream-api.md 6.3). */
static void
note_metadata(struct cli_out *o, const cJSON *ev)
{
	const cJSON *payload = cJSON_GetObjectItemCaseSensitive(ev, "payload");
	long long id = run_id_of(cJSON_GetObjectItemCaseSensitive(
	    cJSON_IsObject(payload) ? payload : ev, "run_id"));

	if (id > 0)
		o->run_id = id;
}

/* Prints at most CLI_OUT_RESULT_COLS characters of s, never half of one. */
static void
put_prefix(FILE *f, const char *s)
{
	size_t cols = 0, n = 0;

	while (s[n] != '\0') {
		if (((unsigned char)s[n] & 0xC0) != 0x80 &&
		    cols++ == CLI_OUT_RESULT_COLS)
			break;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		(void)fputc(c < 0x20 || c == 0x7F ? ' ' : c, f);
	}
}

/* "  > RESULT": a string as it is, anything else as compact JSON. */
static void
print_tool_result(struct cli_out *o, const cJSON *ev)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, "result");
	char *js = NULL;

	end_text(o);
	if (v != NULL && !cJSON_IsString(v))
		js = cJSON_PrintUnformatted(v);
	(void)fputs("  > ", o->f);
	put_prefix(o->f, cJSON_IsString(v) ? v->valuestring
	        : js != NULL               ? js
	                                   : "null");
	(void)fputc('\n', o->f);
	free(js);
}

/* "m8tes: run error: X" or "m8tes: run failed: TYPE: X" on err. */
static void
print_run_error(struct cli_out *o, const cJSON *ev, const char *type)
{
	const char *msg = str_at(ev, "error");

	if (msg == NULL)
		msg = str_at(ev, "message");
	end_text(o);
	(void)fflush(o->f);
	if (strcmp(type, "error") == 0) {
		(void)fputs("m8tes: run error: ", o->err);
	} else {
		(void)fputs("m8tes: run failed: ", o->err);
		cli_out_clean(o->err, type, NULL);
		(void)fputs(": ", o->err);
	}
	cli_out_clean(o->err, msg != NULL ? msg : "unknown error", NULL);
	(void)fputc('\n', o->err);
	(void)fflush(o->err);
	o->errors++;
}

/* "  STOP_REASON (run N)". */
static void
print_stop(struct cli_out *o, const char *reason)
{
	end_text(o);
	(void)fputs("  ", o->f);
	cli_out_clean(o->f, reason, NULL);
	if (o->run_id > 0)
		(void)fprintf(o->f, " (run %lld)", o->run_id);
	(void)fputc('\n', o->f);
	o->stop_shown = true;
}

/*
 * permission_request and awaiting_approval: the first event naming a
 * request says how to answer it, unless the caller prompts for it.
 */
static void
note_hitl(struct cli_out *o, const cJSON *ev)
{
	const char *id = str_at(ev, "request_id");

	if (id != NULL && strcmp(id, o->hinted) == 0)
		return;
	(void)snprintf(o->hinted, sizeof(o->hinted), "%s",
	    id != NULL ? id : "");
	if (o->prompts)
		return;
	if (!o->json)
		end_text(o);
	(void)fflush(o->f);
	cli_hitl_hint(o->err, o->run_id, ev);
	(void)fflush(o->err);
}

/* The readable form of one event. */
static void
print_event(struct cli_out *o, const cJSON *ev, const char *type)
{
	const cJSON *v;

	if (strcmp(type, "text-delta") == 0) {
		v = cJSON_GetObjectItemCaseSensitive(ev, "delta");
		if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
			size_t n = strlen(v->valuestring);

			cli_out_clean(o->f, v->valuestring, "\n");
			o->text_open = v->valuestring[n - 1] != '\n';
			o->streamed_text = true;
		}
	} else if (strcmp(type, "tool-call-start") == 0) {
		end_text(o);
		(void)fputs("  ", o->f);
		cli_out_clean(o->f,
		    str_at(ev, "toolName") != NULL ? str_at(ev, "toolName")
		                                   : "tool",
		    NULL);
		(void)fputc('\n', o->f);
	} else if (strcmp(type, "tool-result-end") == 0) {
		print_tool_result(o, ev);
	} else if (strcmp(type, "done") == 0) {
		if (str_at(ev, "stop_reason") != NULL)
			print_stop(o, str_at(ev, "stop_reason"));
		else
			end_text(o);
	} else if (strcmp(type, "cancelled") == 0) {
		print_stop(o, "cancelled");
	}
}

int
cli_out_event_cb(const struct m8c_event *ev, void *arg)
{
	struct cli_out *o = arg;
	const char *type = str_at(ev->event, "type");

	if (type == NULL)
		type = "";
	if (o->json) {
		(void)fwrite(ev->line, 1, ev->len, o->f);
		(void)fputc('\n', o->f);
	} else {
		print_event(o, ev->event, type);
	}
	if (strcmp(type, "metadata") == 0)
		note_metadata(o, ev->event);
	else if (strcmp(type, "error") == 0 || terminal_failure(type))
		print_run_error(o, ev->event, type);
	else if (strcmp(type, "permission_request") == 0 ||
	    strcmp(type, "awaiting_approval") == 0)
		note_hitl(o, ev->event);
	(void)fflush(o->f);
	return 0;
}

void
cli_out_end_line(struct cli_out *o)
{
	if (!o->json)
		end_text(o);
}

void
cli_out_stream_reset(struct cli_out *o)
{
	o->text_open = false;
	o->streamed_text = false;
	o->stop_shown = false;
	o->errors = 0;
	o->hinted[0] = '\0';
}

int
cli_out_run_result(struct cli_out *o, const cJSON *result)
{
	const cJSON *errors, *e, *finished, *run;
	const char *text, *reason;
	long long id;
	char *s;

	id = run_id_of(cJSON_GetObjectItemCaseSensitive(result, "run_id"));
	if (id > 0)
		o->run_id = id;
	if (o->json) {
		s = cJSON_PrintUnformatted(result);
		if (s == NULL)
			return -ENOMEM;
		(void)fprintf(o->f, "%s\n", s);
		free(s);
		return 0;
	}
	text = str_at(result, "text");
	run = cJSON_GetObjectItemCaseSensitive(result, "run");
	/* A run that ended out of sight: its final state was fetched. */
	if ((text == NULL || text[0] == '\0') && str_at(run, "output") != NULL)
		text = str_at(run, "output");
	if (!o->streamed_text && text != NULL && text[0] != '\0') {
		cli_out_clean(o->f, text, "\n");
		o->text_open = text[strlen(text) - 1] != '\n';
	}
	end_text(o);
	errors = cJSON_GetObjectItemCaseSensitive(result, "errors");
	if (o->errors == 0 && cJSON_GetArraySize(errors) > 0) {
		(void)fflush(o->f);
		cJSON_ArrayForEach(e, errors)
		{
			(void)fputs("m8tes: run error: ", o->err);
			cli_out_clean(o->err,
			    cJSON_IsString(e) ? e->valuestring : "?", NULL);
			(void)fputc('\n', o->err);
			o->errors++;
		}
	}
	reason = str_at(result, "stop_reason");
	if (reason == NULL)
		reason = str_at(run, "stop_reason");
	if (!o->stop_shown && reason != NULL)
		print_stop(o, reason);
	finished = cJSON_GetObjectItemCaseSensitive(result, "finished");
	if (cJSON_IsFalse(finished)) {
		(void)fflush(o->f);
		(void)fputs("m8tes: the stream ended before the run did", o->err);
		if (o->run_id > 0)
			(void)fprintf(o->err, "; follow it with: m8tes runs "
			                      "watch %lld",
			    o->run_id);
		(void)fputc('\n', o->err);
	}
	return 0;
}

int
cli_out_result(struct cli_out *o, const cJSON *result)
{
	const cJSON *data, *more, *next, *ok;
	char buf[CELL_MAX];
	char *s;
	int r;

	if (o->json) {
		s = cJSON_PrintUnformatted(result);
		if (s == NULL)
			return -ENOMEM;
		(void)fprintf(o->f, "%s\n", s);
		free(s);
		return 0;
	}
	end_text(o);
	if (cJSON_IsArray(result))
		return cli_out_table(o->f, o->method, result);
	if (!cJSON_IsObject(result)) {
		print_value(o->f, result, "\n");
		(void)fputc('\n', o->f);
		return 0;
	}
	data = cJSON_GetObjectItemCaseSensitive(result, "methods");
	if (o->method != NULL && strcmp(o->method, "daemon.describe") == 0 &&
	    cJSON_IsArray(data))
		return print_describe(o->f, data);
	ok = cJSON_GetObjectItemCaseSensitive(result, "ok");
	if (cJSON_IsTrue(ok) && cJSON_GetArraySize(result) == 1) {
		(void)fputs("ok\n", o->f);
		return 0;
	}
	data = cJSON_GetObjectItemCaseSensitive(result, "data");
	more = cJSON_GetObjectItemCaseSensitive(result, "has_more");
	if (!cJSON_IsArray(data) || !cJSON_IsBool(more))
		return print_object(o->f, result, o->streamed_text);
	r = cli_out_table(o->f, o->method, data);
	if (r < 0 || !cJSON_IsTrue(more))
		return r;
	next = cJSON_GetObjectItemCaseSensitive(result, "next_starting_after");
	if (next == NULL || cJSON_IsNull(next))
		next = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetArrayItem(data, cJSON_GetArraySize(data) - 1),
		    "id");
	if (next != NULL && !cJSON_IsNull(next)) {
		cell(next, buf, sizeof(buf));
		(void)fprintf(o->f, "more: next --starting-after %s\n", buf);
	}
	return 0;
}

void
cli_out_error(FILE *f, const struct m8c_error *e)
{
	(void)fputs("m8tes: ", f);
	cli_out_clean(f, e->message, NULL);
	(void)fputs(" (", f);
	cli_out_clean(f, e->code, NULL);
	if (e->status > 0)
		(void)fprintf(f, ", status %d", e->status);
	if (e->retry_after >= 0)
		(void)fprintf(f, ", retry after %g s", e->retry_after);
	(void)fputs(")\n", f);
}

long
cli_base64_decode(const char *in, size_t len, unsigned char *out)
{
	unsigned acc = 0;
	int bits = 0;
	long n = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		unsigned v;

		if (c >= 'A' && c <= 'Z')
			v = (unsigned)(c - 'A');
		else if (c >= 'a' && c <= 'z')
			v = (unsigned)(c - 'a') + 26;
		else if (c >= '0' && c <= '9')
			v = (unsigned)(c - '0') + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -1;
		acc = ((acc << 6) | v) & 0xFFFu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return bits >= 6 ? -1 : n;
}

/* Writes n bytes to a new path (excl) or over it. Returns 0 or -errno. */
static int
write_file(const char *path, const unsigned char *bytes, size_t n, bool excl)
{
	size_t done = 0;
	int fd, r = 0;

	fd = open(path,
	    O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0666);
	if (fd == -1)
		return -errno;
	while (done < n && r == 0) {
		ssize_t w = write(fd, bytes + done, n - done);

		if (w >= 0)
			done += (size_t)w;
		else if (errno != EINTR)
			r = -errno;
	}
	if (close(fd) == -1 && r == 0)
		r = -errno;
	return r;
}

int
cli_out_save(FILE *f, const cJSON *result, const char *path,
    const char **ret_path, size_t *ret_size, char *err, size_t errlen)
{
	const cJSON *name, *data;
	bool own_name = path == NULL;
	unsigned char *bytes;
	long n;
	int r = 0;

	name = cJSON_GetObjectItemCaseSensitive(result, "filename");
	data = cJSON_GetObjectItemCaseSensitive(result, "data_base64");
	if (!cJSON_IsString(name) || !cJSON_IsString(data)) {
		(void)snprintf(err, errlen, "download result without data");
		return -EBADMSG;
	}
	if (own_name) {
		/* A name from the API: only a plain one in this directory. */
		const char *base = strrchr(name->valuestring, '/');

		path = base != NULL ? base + 1 : name->valuestring;
		if (path[0] == '\0' || path[0] == '.' || path[0] == '-') {
			(void)snprintf(err, errlen,
			    "unsafe file name; give --output FILE");
			return -EINVAL;
		}
	}
	bytes = malloc(strlen(data->valuestring) / 4 * 3 + 3);
	if (bytes == NULL)
		return -ENOMEM;
	n = cli_base64_decode(data->valuestring, strlen(data->valuestring),
	    bytes);
	if (n < 0) {
		(void)snprintf(err, errlen, "download result: bad base64");
		free(bytes);
		return -EBADMSG;
	}
	if (strcmp(path, "-") == 0)
		r = fwrite(bytes, 1, (size_t)n, f) == (size_t)n ? 0 : -EIO;
	else
		r = write_file(path, bytes, (size_t)n, own_name);
	free(bytes);
	if (r < 0) {
		(void)snprintf(err, errlen, "%s: %s", path,
		    r == -EEXIST ? "exists; give --output FILE to replace it"
		                 : strerror(-r));
		return r;
	}
	*ret_path = path;
	*ret_size = (size_t)n;
	return 0;
}

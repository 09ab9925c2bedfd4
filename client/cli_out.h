/*
 * SPDX-License-Identifier: MIT
 *
 * How m8tes shows what the daemon answered: one compact JSON line per
 * result (and each event line as it arrives) for scripts, or a readable form
 * on a terminal: lists as aligned tables with columns picked per resource,
 * objects as "key: value" lines, live text for streamed runs, errors in one
 * line on stderr. Also saves a downloaded file. Owns no state beyond struct
 * cli_out; never exits.
 */
#ifndef M8_CLI_OUT_H
#define M8_CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct cJSON;
struct m8c_error;
struct m8c_event;

#define CLI_OUT_ID_MAX 128  /* bytes of a remembered request id */
#define CLI_OUT_RESULT_COLS 100 /* characters of a tool result shown */

struct cli_out {
	FILE *f;            /* results and events, normally stdout */
	FILE *err;          /* run errors and hints, normally stderr */
	bool json;          /* JSON lines instead of the readable form */
	const char *method; /* picks table columns; may be NULL */
	bool text_open;     /* streamed text printed, its line not ended */
	bool streamed_text; /* some text-delta was printed */
	bool prompts;       /* HITL requests get a prompt: print no hint */
	bool stop_shown;    /* a stop reason (done, cancelled) was printed */
	long long run_id;   /* from the last metadata event, 0 = unknown */
	unsigned errors;    /* run errors printed on err */
	char hinted[CLI_OUT_ID_MAX]; /* request id last announced */
};

/*
 * An m8c_event_cb (arg: struct cli_out). In JSON mode prints the event line
 * as received; else, as the SDK's streaming example does, text deltas
 * live, "  NAME" at each tool-call-start, "  > RESULT" (its first
 * CLI_OUT_RESULT_COLS characters) at each tool-result-end and "  STOP_REASON
 * (run N)" at done. In both modes it remembers the run id of metadata
 * events, prints run errors and terminal failures on err and, unless
 * prompts is set, how to answer a permission_request or awaiting_approval
 * (once per request id, cli_hitl_hint). Flushes after each event. Returns
 * 0.
 */
int cli_out_event_cb(const struct m8c_event *ev, void *arg);

/* Ends the line of streamed text, if one is open (readable mode). */
void cli_out_end_line(struct cli_out *o);

/* Forgets what one streamed call printed, to print the next one. */
void cli_out_stream_reset(struct cli_out *o);

/*
 * Prints the final result of a streamed run: a JSON line; or, readable,
 * the text when none was streamed, the run's errors on err when no event
 * showed them, the stop reason when no event did, and a note on err when
 * the stream ended before the run did. Returns 0 or -ENOMEM.
 */
int cli_out_run_result(struct cli_out *o, const struct cJSON *result);

/*
 * Prints s with control characters replaced by '?'; a newline becomes
 * nl_indent's newline and indent, or a space when nl_indent is NULL. s may
 * be NULL (prints nothing).
 */
void cli_out_clean(FILE *f, const char *s, const char *nl_indent);

/*
 * Prints a call's result: a JSON line, or the readable form: a page,
 * envelope or array as a table (then "more: next --starting-after N" when
 * a page has more), an object as "key: value" lines (without "text" when it
 * was streamed already), {"ok":true} as "ok". Returns 0 or -ENOMEM.
 */
int cli_out_result(struct cli_out *o, const struct cJSON *result);

/*
 * Prints rows (an array) as a table with the columns for method: for
 * teammates id, name, status, tools; runs id, status, teammate_id,
 * created_at; tasks id, name, teammate_id, status; ...; otherwise id and
 * the first scalar fields of the first row. Returns 0 or -ENOMEM.
 */
int cli_out_table(FILE *f, const char *method, const struct cJSON *rows);

/*
 * "m8tes: <message> (<code>[, status N][, retry after S s])" and a newline
 * on f, control characters made harmless.
 */
void cli_out_error(FILE *f, const struct m8c_error *e);

/*
 * Writes the bytes of a download result ({"filename", "data_base64", ...})
 * to path ("-" is f) or, with path NULL, to a new file named after the
 * result's filename in the current directory, never replacing one. Sets
 * *ret_path to the name written (path, or borrowed from result) and
 * *ret_size to the byte count. Returns 0, -EBADMSG for a malformed result,
 * -EEXIST, or -errno; err gets a one-line reason.
 */
int cli_out_save(FILE *f, const struct cJSON *result, const char *path,
    const char **ret_path, size_t *ret_size, char *err, size_t errlen);

/* Decodes standard base64 (padding optional). Returns the length or -1. */
long cli_base64_decode(const char *in, size_t len, unsigned char *out);

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * A streamed run on one connection, from its first event to its final
 * line: runs.create, runs.reply, tasks.run and runs.stream. Events are
 * printed by cli_out; a permission request stops the wait, the pending
 * requests are fetched with runs.permissions on a second call over the same
 * connection, prompted for (cli_hitl) and answered with runs.approve or
 * runs.answer while the stream stays in flight; a lagged stream is
 * re-attached with runs.stream after the last seq seen. Owns the calls it
 * starts, not the connection or the printer.
 */
#ifndef M8_CLI_RUN_H
#define M8_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli_out.h"

struct cJSON;
struct cli_opts;
struct m8c_conn;
struct m8c_reply;

#define CLI_RUN_MAX_HANDLED 32   /* request ids remembered as answered */
#define CLI_RUN_MAX_RESUMES 1000 /* re-attachments after lagged */

struct cli_run {
	struct m8c_conn *conn;
	struct cli_out *out; /* prints the events and the result */
	FILE *in;            /* answers to prompts; NULL: never prompt */
	FILE *prompt;        /* where prompts go */
	int timeout_ms;      /* bounds each call, -1 = none */
	bool armed;          /* a permission request may stop the wait */
	bool hitl_pending;   /* one came in since the last look */
	char handled[CLI_RUN_MAX_HANDLED][CLI_OUT_ID_MAX];
	size_t nhandled; /* ids in handled, a ring once full */
	unsigned resumes;
};

/*
 * Prepares s for streams on c printed by out. With in (stdin on a
 * terminal) set, permission requests are prompted for on prompt; without,
 * out prints how to answer them.
 */
void cli_run_init(struct cli_run *s, struct m8c_conn *c, struct cli_out *out,
    FILE *in, FILE *prompt, int timeout_ms);

/*
 * Calls method (a streaming one) with params and follows it to its final
 * line, answering permission requests and re-attaching after lagged while
 * the run id is known. Returns M8C_RESULT or M8C_ERROR with the final
 * line in *ret_reply, M8C_LAGGED when it could not re-attach, or -errno as
 * m8c_wait.
 */
int cli_run_stream(struct cli_run *s, const char *method,
    const struct cJSON *params, struct m8c_reply *ret_reply);

/*
 * Prints how a stream ended (r and reply from cli_run_stream) and returns
 * the exit status: 0; CLI_EXIT_RUN_FAILED for a result with errors or a
 * failed run; the error's or the failure's status otherwise.
 */
int cli_run_show(struct cli_run *s, const struct cli_opts *o, int r,
    const struct m8c_reply *reply);

/*
 * The whole of "m8tes runs create|reply|watch", "tasks run": connects,
 * streams method with params, prints. Returns the exit status.
 */
int cli_run_main(const struct cli_opts *o, const char *method,
    const struct cJSON *params);

/* The readable-or-JSON printer and prompt streams a command uses. */
void cli_run_setup(const struct cli_opts *o, const char *method,
    struct cli_out *out, FILE **ret_in, FILE **ret_prompt);

#endif

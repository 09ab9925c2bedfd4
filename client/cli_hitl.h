/*
 * SPDX-License-Identifier: MIT
 *
 * Human-in-the-loop for m8tes: showing a run's pending permission request
 * (a tool use to allow or deny, or an AskUserQuestion to answer) and
 * reading the user's decision, or, without a terminal, printing the
 * command that answers it. Works on FILE streams given by the caller, so
 * the tests drive it with memory streams; sends nothing itself.
 */
#ifndef M8_CLI_HITL_H
#define M8_CLI_HITL_H

#include <stdbool.h>
#include <stdio.h>

struct cJSON;

#define CLI_HITL_QUESTION_TOOL "AskUserQuestion"
#define CLI_HITL_MAX_TRIES 5 /* unreadable answers before giving up */

/* True when req (a request or event) is an AskUserQuestion. */
bool cli_hitl_is_question(const struct cJSON *req);

/*
 * Prints on f how to answer req, which is a permission_request or
 * awaiting_approval event or an item of runs.permissions: "m8tes runs
 * approve RUN REQ allow" for a tool use, "m8tes runs answer RUN '{...}'"
 * with the first option of every question for a question, or "m8tes runs
 * permissions RUN" when req names no request. Text from the API is made
 * harmless for the terminal and quoted for the shell.
 */
void cli_hitl_hint(FILE *f, long long run_id, const struct cJSON *req);

/*
 * Shows the pending request req (an item of runs.permissions: tool,
 * input, consequence; or each question and its numbered options) on out
 * and reads the decision from in: "allow? [y/N]" for a tool use, a number,
 * a label or free text per question. Returns 0 with *ret_method
 * ("runs.approve" or "runs.answer", static) and *ret_params, a new object
 * without run_id ({"request_id","decision"} or {"answers":{...},
 * "request_id"}); -ENODATA at the end of in or after CLI_HITL_MAX_TRIES
 * unreadable answers; -EBADMSG when req is not a request (no request_id,
 * or a question without questions); -ENOMEM.
 */
int cli_hitl_ask(const struct cJSON *req, FILE *in, FILE *out,
    const char **ret_method, struct cJSON **ret_params);

/* Prints s in single quotes for a POSIX shell ('\'' for a quote). */
void cli_shell_quote(FILE *f, const char *s);

#endif

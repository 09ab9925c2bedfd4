/*
 * SPDX-License-Identifier: MIT
 *
 * The run accumulator: what the SDK's StreamAccumulator keeps while a run
 * streams (upstream-api.md §6.5) - text, reasoning, plan, run id, errors,
 * stop reason, tool calls and usage - built from the normalised events that
 * sse delivers, and the final result object made from them. Every buffer
 * and list has a cap; what does not fit is dropped and the result says
 * "truncated". It does not parse bytes (sse does) nor own the stream or its
 * subscribers (streams does). Re-attaching replays a run's history, so the
 * owner calls runacc_reset() before feeding the replay.
 */
#ifndef M8_RUNACC_H
#define M8_RUNACC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct runacc_tool;

#define RUNACC_MAX_TEXT ((size_t)16 * 1024 * 1024) /* bytes of text */
#define RUNACC_MAX_REASONING                                                   \
	((size_t)16 * 1024 * 1024)                /* bytes of reasoning        \
	                                           */
#define RUNACC_MAX_PLAN ((size_t)4 * 1024 * 1024) /* bytes of plan */
#define RUNACC_MAX_TOOLS 1024                     /* distinct tool calls */
/* Bytes of all tool calls' ids, names, arguments, results and todos. */
#define RUNACC_MAX_TOOL_BYTES ((size_t)64 * 1024 * 1024)
#define RUNACC_MAX_ERRORS 256     /* entries of errors */
#define RUNACC_MAX_ERROR_LEN 4096 /* bytes of one error; longer is cut */

/* A text buffer with a cap; private to runacc.c. */
struct runacc_buf {
	char *data; /* NUL-terminated when not NULL */
	size_t len;
	size_t cap;
	size_t max;
	bool parts;   /* something was appended, if only "" */
	bool last_nl; /* the last part appended ended with \n */
	bool full;    /* the cap was hit: nothing more is appended */
};

/*
 * Embedded in its owner. Read it through the functions below; the fields
 * are private.
 */
struct runacc {
	struct runacc_buf text;
	struct runacc_buf reasoning;
	struct runacc_buf plan;
	int64_t run_id;
	bool has_run_id;
	bool finished;  /* done, cancelled or a terminal failure seen */
	bool truncated; /* something was dropped at a cap */
	char *stop_reason;
	char **errors;
	size_t nerrors;
	struct runacc_tool *tools; /* in order of first appearance */
	size_t ntools;
	size_t tool_bytes;   /* counted against RUNACC_MAX_TOOL_BYTES */
	size_t tool_hint;    /* index of the last tool looked up */
	struct cJSON *usage; /* the last metadata usage object, or NULL */
};

/* Initialises an empty accumulator. Cannot fail; allocates nothing. */
void runacc_init(struct runacc *a);

/* Frees what a holds. Accepts a zeroed or already-done accumulator. */
void runacc_done(struct runacc *a);

/* Empties a, as after runacc_init(), e.g. before a re-attach's replay. */
void runacc_reset(struct runacc *a);

/*
 * Accumulates one normalised event (struct sse_event.json; borrowed, not
 * changed). Per type:
 *  - text-delta: delta to text; reasoning-/thinking-delta to reasoning and
 *    plan-delta to plan; their -start/-end put a \n there unless the last
 *    part appended ended with one (the SDK's rule);
 *  - metadata: run_id (an integer, or a string of decimal digits) and usage
 *    (an object) from "payload" when that is an object, else from the frame
 *    itself; the most recent wins;
 *  - error: "error" when a string, printed JSON for other values, else
 *    "Unknown error", appended to errors;
 *  - a terminal failure (sse_type_is_terminal_failure()): appended to
 *    errors as "<type>: <detail>", detail the first truthy of error,
 *    message, type; it also finishes the run, as done and cancelled do;
 *  - done, run_metrics: stop_reason when a string;
 *  - tool-call-start (re)starts the call toolCallId with toolName;
 *    tool-call-delta and tool-result-delta append to a known call's
 *    arguments and result text, tool-result-end sets a known call's result
 *    and completes it; tool-result-start, tool-call-end and todo-update
 *    create the call if needed, tool-call-end completing it and
 *    todo-update setting its todos (the objects of "todos").
 * Anything else, and non-string ids, are ignored. Returns 0, or -ENOMEM
 * (a is then still consistent, minus that event).
 */
int runacc_feed(struct runacc *a, const struct cJSON *ev);

/*
 * Builds the result object, owned by the caller (cJSON_Delete()):
 * {"run_id": int|null, "text", "reasoning", "plan": strings,
 *  "errors": [strings], "has_errors": bool, "stop_reason": string|null,
 *  "finished": bool, "truncated": bool,
 *  "tool_calls": [{"id", "name": string|null, "arguments": string,
 *    "result": JSON|null, "completed": bool, "todos": [objects]|null}],
 *  "usage": object|null}
 * A tool call's result is its tool-result-end result when truthy, else its
 * concatenated result deltas when not empty, else null. NULL on ENOMEM.
 */
struct cJSON *runacc_result(const struct runacc *a);

/* Sets *ret_run_id and returns 0, or -ENODATA before a run id is known. */
int runacc_run_id(const struct runacc *a, int64_t *ret_run_id);

/* True once done, cancelled or a terminal failure was fed. */
bool runacc_finished(const struct runacc *a);

#endif

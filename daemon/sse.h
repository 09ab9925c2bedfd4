/*
 * SPDX-License-Identifier: MIT
 *
 * An incremental parser for the upstream's Server-Sent Events streams
 * (upstream-api.md §6.2-§6.4). Bytes go in through sse_feed() in pieces of
 * any size, split anywhere; each complete frame comes out through a callback
 * as one cJSON object, already normalised to the AI-SDK event vocabulary
 * (Claude-native frames translated, "ping" renamed "keep-alive", the delta
 * fields made strings). The module does no I/O, keeps no global state and
 * does not log: the caller owns the transfer, the timers and the log lines,
 * and reads the counters kept here. It does not accumulate a run's result
 * (runacc does that) nor decide what a terminal frame means for the transfer.
 */
#ifndef M8_SSE_H
#define M8_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* A sensible cap on one frame's accumulated data, for sse_init(). */
#define SSE_MAX_FRAME_DEFAULT ((size_t)4 * 1024 * 1024)
/* Deeper JSON nesting than this is skipped as invalid. */
#define SSE_MAX_DEPTH 256

/* Flags of struct sse_event. */
#define SSE_EVENT_DONE_BRACKET 0x1 /* the "data: [DONE]" form of done */
#define SSE_EVENT_TRANSLATED 0x2   /* translated from a Claude-native frame */

/*
 * One parsed event, handed to the callback.
 *
 * json is a JSON object whose "type" member is always a string. Frames
 * with an AI-SDK type are passed through as sent, except that:
 *  - a missing or non-string type becomes "unknown" and "ping" becomes
 *    "keep-alive" (callers should ignore keep-alives);
 *  - text-, tool-call- and tool-result-delta carry a string "delta" ("" when
 *    absent or not a string); reasoning- and thinking-delta take "delta" from
 *    the first non-empty string of delta, text; plan-delta of delta, text,
 *    plan;
 *  - todo-update carries "toolCallId" (taken from tool_call_id when needed)
 *    and "todos" holding only the objects of the list sent ([] otherwise).
 * Types the SDK does not name keep their name (the SDK reports them as
 * "unknown" with the raw payload). A translated Claude-native frame
 * (upstream-api.md §6.3) keeps its members, gets its AI-SDK type, the
 * fields of that type (e.g. "delta", "toolCallId", "toolName", "messageId",
 * "result"; JSON null when absent) and "native", its original type.
 * The bracket form "data: [DONE]" yields exactly {"type":"done"}.
 */
struct sse_event {
	struct cJSON *json; /* see the ownership rule at sse_event_cb */
	const char *type;   /* json's "type"; valid while json is */
	unsigned flags;     /* SSE_EVENT_* */
};

/*
 * Called once per event, in stream order. The parser owns ev->json and
 * frees it when the callback returns; a callback that wants to keep the
 * object takes it by setting ev->json to NULL, and then frees it with
 * cJSON_Delete(). Returning < 0 stops the parser: sse_feed()/sse_finish()
 * return that value at once and the parser is left failed (see below). The
 * callback must not call sse_feed(), sse_finish() or sse_done() on the
 * parser that called it.
 */
typedef int (*sse_event_cb)(struct sse_event *ev, void *arg);

/* Counters, never reset by the parser; read them at any time. */
struct sse_stats {
	uint64_t frames;           /* frames with a non-blank payload */
	uint64_t events;           /* events passed to the callback */
	uint64_t skipped_invalid;  /* payload not one JSON object */
	uint64_t dropped_system;   /* "subtype" init or success */
	uint64_t dropped_oversize; /* data over max_frame, discarded */
};

/* Embedded in its owner; the fields are private except stats. */
struct sse_parser {
	struct sse_stats stats;
	size_t max_frame; /* cap on one frame's data, in bytes */
	char *buf;        /* the frame's data lines, joined with \n */
	size_t len;
	size_t cap;
	unsigned state;  /* where the current line is: SSE_ST_* in sse.c */
	unsigned prefix; /* bytes of "data:" matched at the line start */
	bool have_data;  /* the frame has a data line */
	bool oversize;   /* discarding the frame until its end */
	bool cr;         /* last byte was \r: a \n right after is no line */
	bool busy;       /* in the callback */
	int error;       /* < 0: failed; every later call returns it */
};

/*
 * Initialises p with a cap of max_frame_bytes (> 0) on one frame's data
 * (the data lines after their "data:" prefix, joined with \n): a frame past
 * the cap is discarded up to its end and counted in dropped_oversize, so
 * the parser never holds more than max_frame_bytes + 1 bytes of input plus,
 * for a frame holding invalid UTF-8, a transient copy of up to three times
 * that. Cannot fail; allocates nothing until data arrives.
 */
void sse_init(struct sse_parser *p, size_t max_frame_bytes);

/* Frees what p holds. Accepts a zeroed or already-done parser. */
void sse_done(struct sse_parser *p);

/*
 * Feeds len bytes of the stream and calls cb for every event completed by
 * them (lines end in \n, \r\n or \r, also when split between calls; a blank
 * line ends a frame). Frames that are not one JSON object, after invalid
 * UTF-8 has been replaced by U+FFFD, are skipped and counted, and so are
 * system frames and oversize frames; none of these is an error.
 * Returns 0, -ENOMEM when an allocation failed, or the callback's negative
 * value. After an error return the parser is failed: the rest of buf was
 * not parsed and every later sse_feed()/sse_finish() returns the same error
 * until sse_done().
 */
int sse_feed(struct sse_parser *p, const uint8_t *buf, size_t len,
    sse_event_cb cb, void *arg);

/*
 * Ends the stream (EOF): text left over is parsed as a final frame, even
 * without a line end or blank line. Afterwards p is ready for a new stream
 * (stats are kept). Returns as sse_feed().
 */
int sse_finish(struct sse_parser *p, sse_event_cb cb, void *arg);

/*
 * True for the types that end a run in failure (upstream-api.md §6.4):
 * sdk_error, AGENT_RUNNER_DIED, RUNNER_LIFECYCLE_ERROR, SANDBOX_BOOT_TIMEOUT,
 * SANDBOX_QUOTA_EXHAUSTED, SANDBOX_UNAVAILABLE, SNAPSHOT_VERSION_MISMATCH.
 * False for NULL.
 */
bool sse_type_is_terminal_failure(const char *type);

/* True for done, cancelled and the terminal failures. False for NULL. */
bool sse_type_is_terminal(const char *type);

#endif

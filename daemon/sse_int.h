/*
 * SPDX-License-Identifier: MIT
 *
 * What sse.c (framing, UTF-8, the JSON check) and sse_norm.c (the event
 * vocabulary) share. Not for other modules: they use sse.h.
 */
#ifndef M8_SSE_INT_H
#define M8_SSE_INT_H

struct cJSON;

/*
 * Normalises ev, a frame's JSON object, in place to an event as sse.h
 * describes it; a translated Claude-native frame adds SSE_EVENT_TRANSLATED
 * to *ret_flags. Returns 1 (deliver ev), 0 (a system frame: drop it) or
 * -ENOMEM (ev is left half-normalised; the caller frees it).
 */
int sse_normalise(struct cJSON *ev, unsigned *ret_flags);

/* The event of a "data: [DONE]" frame, {"type":"done"}; NULL on OOM. */
struct cJSON *sse_done_event(void);

#endif

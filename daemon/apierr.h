/*
 * SPDX-License-Identifier: MIT
 *
 * Maps an upstream error answer (status, body, headers) to the protocol's
 * stable error fields, reading the v2 error envelope the way the SDK does
 * (upstream-api §4.1), and a transport failure to m8tesd.* codes. Pure.
 */
#ifndef M8_APIERR_H
#define M8_APIERR_H

#include <stddef.h>

#include "codec.h"

struct cJSON;

/* Owns the strings a codec_error points into. */
struct apierr {
	struct codec_error e;
	char message[512];
	char request_id[128];
	char upstream_code[128];
	struct cJSON *details; /* owned */
};

/*
 * Fills a from an HTTP error answer. body may be NULL; request_id_header is
 * the X-Request-Id header or NULL; retry_after < 0 when absent.
 */
void apierr_from_http(struct apierr *a, long status, const char *body,
    size_t len, const char *request_id_header, double retry_after);

/* Fills a from a transport failure (-errno) with curl's text. */
void apierr_from_transport(struct apierr *a, int error, const char *text);

void apierr_done(struct apierr *a);

/* The code for an HTTP status (m8tes.* names). */
const char *apierr_code_for_status(long status);

#endif

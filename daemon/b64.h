/*
 * SPDX-License-Identifier: MIT
 *
 * Base64 (RFC 4648, with padding) through libsodium.
 */
#ifndef M8_B64_H
#define M8_B64_H

#include <stddef.h>

/* Returns a malloc'd, NUL-terminated encoding of p[0..len), or NULL. */
char *b64_encode(const void *p, size_t len);

#endif

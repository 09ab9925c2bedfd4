/*
 * SPDX-License-Identifier: MIT
 *
 * Base64 through libsodium's constant-time codec.
 */
#include <stdlib.h>

#include <sodium.h>

#include "b64.h"

char *
b64_encode(const void *p, size_t len)
{
	size_t n = sodium_base64_encoded_len(len,
	    sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(n);

	if (out == NULL)
		return NULL;
	sodium_bin2base64(out, n, p, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

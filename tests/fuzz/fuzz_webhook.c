/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target for the webhook verification path: the input is split at
 * newlines into Webhook-Id, Webhook-Timestamp, Webhook-Signature and the
 * raw body (the rest, newlines and all), exactly as the receiver hands
 * them to sig_verify with two secrets and both tolerance modes. A
 * signature the harness computes itself must always verify, sealed or
 * unsealed as the receiver holds them under load, and a one-byte change of
 * the body must never verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies the next line of p[0..*len) into a NUL-terminated string. */
static char *
next_line(const uint8_t **p, size_t *len)
{
	const uint8_t *nl = memchr(*p, '\n', *len);
	size_t n = nl != NULL ? (size_t)(nl - *p) : *len;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nl != NULL);
	*len -= n + (nl != NULL);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sig_secret *secrets[2];
	char *id, *ts, *sg, sig[SIG_SIGNATURE_SIZE];
	const uint8_t *p = data;
	size_t len = size;
	enum sig_result r;

	if (secrets[0] == NULL) {
		if (sig_init() < 0)
			abort();
		secrets[0] = sig_secret_new("whsec_test_secret_123", 21);
		secrets[1] = sig_secret_new("whsec_rotated", 13);
	}
	id = next_line(&p, &len);
	ts = next_line(&p, &len);
	sg = next_line(&p, &len);
	r = sig_verify(id[0] ? id : NULL, ts[0] ? ts : NULL, sg[0] ? sg : NULL,
	    p, len, secrets, 2, 300, 1700000000);
	if (r > SIG_BAD_SIGNATURE)
		abort();
	(void)sig_verify(id, ts, sg, p, len, secrets, 2, 0, 1700000000);
	/* What we sign ourselves verifies; a changed body does not. */
	if (id[0] != '\0' && ts[0] != '\0' &&
	    strspn(ts, "0123456789") == strlen(ts) && strlen(ts) < 18) {
		sig_sign("whsec_rotated", id, ts, p, len, sig);
		if (sig_verify(id, ts, sig, p, len, secrets, 2, 0, 0) != SIG_OK)
			abort();
		sig_secret_unseal(secrets[0]);
		sig_secret_unseal(secrets[1]);
		r = sig_verify(id, ts, sig, p, len, secrets, 2, 0, 0);
		sig_secret_seal(secrets[0]);
		sig_secret_seal(secrets[1]);
		if (r != SIG_OK)
			abort();
		if (len > 0) {
			uint8_t *copy = malloc(len);

			if (copy == NULL)
				abort();
			memcpy(copy, p, len);
			copy[0] ^= 1;
			if (sig_verify(id, ts, sig, copy, len, secrets, 2, 0,
			        0) == SIG_OK)
				abort();
			free(copy);
		}
	}
	free(id);
	free(ts);
	free(sg);
	return 0;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target for the request path of the local protocol: a line goes
 * through the decoder, the method table's parameter check and, when those
 * accept it, the upstream request builder — everything the daemon does
 * with a client's line before any I/O.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "methods.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_request req;
	const struct method *m;
	const char *code = NULL;
	char err[256], *path = NULL, *body = NULL;
	size_t len = 0;
	char *line;

	if (methods_init() < 0)
		abort();
	if (codec_request_parse((const char *)data, size, &req, &code, err,
		sizeof(err)) < 0) {
		if (code == NULL)
			abort();
		line = codec_error_line(req.id, req.jsonrpc,
		    &(struct codec_error){.code = code, .message = err,
			.retry_after = -1},
		    &len);
		free(line);
		goto out;
	}
	m = methods_find(req.method);
	if (m == NULL || method_check_params(m, req.params, err,
			     sizeof(err)) < 0)
		goto out;
	if (m->verb != VERB_NONE &&
	    request_build(m, req.params, &path, &body, err, sizeof(err)) == 0) {
		if (path == NULL || path[0] != '/')
			abort();
		free(path);
		free(body);
	}
	line = codec_result(req.id, req.jsonrpc, req.params, &len);
	free(line);
out:
	codec_request_done(&req);
	return 0;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * The protocol codec and the method table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "methods.h"
#include "t.h"

static const char *
parse_code(const char *line)
{
	struct codec_request req;
	const char *code = NULL;
	char err[128];
	int r;

	r = codec_request_parse(line, strlen(line), &req, &code, err,
	    sizeof(err));
	codec_request_done(&req);
	return r == 0 ? "ok" : code;
}

TEST(request_decoding)
{
	struct codec_request req;
	const char *code;
	char err[128];
	const char *l = "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"a.b\","
			"\"params\":{\"k\":1}}";

	ASSERT_OK(codec_request_parse(l, strlen(l), &req, &code, err,
	    sizeof(err)));
	ASSERT(req.jsonrpc);
	ASSERT_STREQ(req.method, "a.b");
	ASSERT_STREQ(req.id->valuestring, "x");
	ASSERT(cJSON_IsObject(req.params));
	codec_request_done(&req);

	ASSERT_STREQ(parse_code("{\"method\":\"x\"}"), "ok");
	ASSERT_STREQ(parse_code("nope"), E_PARSE);
	ASSERT_STREQ(parse_code("[1,2]"), E_INVALID_REQUEST);
	ASSERT_STREQ(parse_code("{\"id\":1}"), E_INVALID_REQUEST);
	ASSERT_STREQ(parse_code("{\"method\":\"\"}"), E_INVALID_REQUEST);
	ASSERT_STREQ(parse_code("{\"method\":5}"), E_INVALID_REQUEST);
	ASSERT_STREQ(parse_code("{\"method\":\"x\",\"id\":[1]}"),
	    E_INVALID_REQUEST);
	ASSERT_STREQ(parse_code("{\"method\":\"x\",\"params\":[1]}"),
	    E_INVALID_PARAMS);
	ASSERT_STREQ(parse_code("{\"method\":\"\xc3\x28\"}"), E_INVALID_UTF8);
}

TEST(id_kept_on_bad_params)
{
	struct codec_request req;
	const char *code = NULL;
	char err[128];
	const char *l = "{\"id\":9,\"method\":\"x\",\"params\":3}";

	ASSERT_EQ(codec_request_parse(l, strlen(l), &req, &code, err,
		      sizeof(err)),
	    -EINVAL);
	ASSERT(req.id != NULL && req.id->valuedouble == 9);
	codec_request_done(&req);
}

TEST(depth_limit)
{
	char line[400];
	size_t n = 0;

	n += (size_t)snprintf(line, sizeof(line), "{\"method\":\"x\",\"p\":");
	for (int i = 0; i < 70; i++)
		line[n++] = '[';
	for (int i = 0; i < 70; i++)
		line[n++] = ']';
	line[n++] = '}';
	line[n] = '\0';
	ASSERT_STREQ(parse_code(line), E_TOO_DEEP);
	/* Brackets inside strings do not count. */
	ASSERT_EQ(codec_json_depth("{\"a\":\"[[[[\\\"[[\"}", 16, 64), 1);
}

TEST(utf8)
{
	ASSERT(codec_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	ASSERT(!codec_utf8_valid("\xc0\xaf", 2));         /* overlong */
	ASSERT(!codec_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	ASSERT(!codec_utf8_valid("\xe2\x82", 2));         /* truncated */
	ASSERT(!codec_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	ASSERT(!codec_utf8_valid("\xff", 1));
}

TEST(envelopes)
{
	cJSON *id = cJSON_CreateNumber(7), *res = cJSON_Parse("{\"a\":[1]}");
	struct codec_error e = {.code = E_UP_NOT_FOUND, .message = "gone",
	    .status = 404, .request_id = "req_1", .retry_after = -1};
	size_t len;
	char *s;

	s = codec_result(id, true, res, &len);
	ASSERT_STREQ(s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"a\":[1]}}\n");
	ASSERT_EQ(len, strlen(s));
	free(s);
	s = codec_event(id, 3, res, &len);
	ASSERT_STREQ(s, "{\"id\":7,\"seq\":3,\"event\":{\"a\":[1]}}\n");
	free(s);
	s = codec_error_line(NULL, false, &e, &len);
	ASSERT_STREQ(s, "{\"error\":{\"code\":\"m8tes.not_found\",\"message\":"
			"\"gone\",\"status\":404,\"request_id\":\"req_1\","
			"\"retryable\":false}}\n");
	free(s);
	e.retry_after = 1.5;
	e.retryable = true;
	e.status = 429;
	e.code = E_UP_RATE_LIMIT;
	s = codec_error_line(id, false, &e, &len);
	ASSERT(strstr(s, "\"retry_after\":1.5,\"retryable\":true") != NULL);
	free(s);
	/* The borrowed result is intact afterwards. */
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(res, "a")), 1);
	cJSON_Delete(id);
	cJSON_Delete(res);
}

/* A result spliced from its text is the line codec_result_served makes. */
TEST(result_text)
{
	/* As the cache holds it: what cJSON_PrintUnformatted wrote. */
	static const char text[] = "{\"data\":[{\"id\":1,\"s\":\"\xc3\xa9\\\"\"}],"
	                           "\"has_more\":false}";
	cJSON *ids[3], *res = cJSON_Parse(text);
	size_t n1 = 0, n2 = 0, i;
	char *a, *b;

	ASSERT(res != NULL);
	ids[0] = cJSON_CreateNumber(7);
	ids[1] = cJSON_CreateString("x\"y\n");
	ids[2] = NULL;
	for (i = 0; i < 3; i++) {
		a = codec_result_text(ids[i], i == 1, text, strlen(text),
		    i == 2 ? NULL : "hit", &n1);
		b = codec_result_served(ids[i], i == 1, res,
		    i == 2 ? NULL : "hit", &n2);
		ASSERT(a != NULL && b != NULL);
		ASSERT_STREQ(a, b);
		ASSERT_EQ(n1, n2);
		ASSERT_EQ(n1, strlen(a));
		free(a);
		free(b);
	}
	a = codec_result_text(ids[0], false, "42", 2, "miss", &n1);
	ASSERT_STREQ(a, "{\"id\":7,\"result\":42,\"cache\":\"miss\"}\n");
	free(a);
	for (i = 0; i < 3; i++)
		cJSON_Delete(ids[i]);
	cJSON_Delete(res);
}

TEST(exit_codes)
{
	ASSERT_EQ(codec_exit_code(NULL), 0);
	ASSERT_EQ(codec_exit_code(E_UP_NOT_FOUND), 3);
	ASSERT_EQ(codec_exit_code(E_UP_AUTH), 4);
	ASSERT_EQ(codec_exit_code(E_UP_RATE_LIMIT), 5);
	ASSERT_EQ(codec_exit_code(E_INVALID_PARAMS), 2);
	ASSERT_EQ(codec_exit_code(E_UNREACHABLE), 69);
	ASSERT_EQ(codec_exit_code(E_UP_API), 1);
}

TEST(method_table)
{
	const struct method *m;
	char err[128];
	cJSON *p;

	ASSERT_OK(methods_init());
	ASSERT(methods_count() > 50);
	/* Every name is unique and every path parameter is declared. */
	for (size_t i = 0; i < methods_count(); i++) {
		const char *t;

		m = methods_at(i);
		for (size_t j = i + 1; j < methods_count(); j++)
			ASSERT(strcmp(m->name, methods_at(j)->name) != 0);
		for (t = strchr(m->path, '{'); t != NULL;
		     t = strchr(t + 1, '{')) {
			char name[64];
			const struct method_param *mp;

			(void)snprintf(name, sizeof(name), "%.*s",
			    (int)(strchr(t, '}') - t - 1), t + 1);
			mp = method_param_find(m, name);
			ASSERT(mp != NULL && mp->loc == LOC_PATH &&
			    (mp->flags & PARAM_REQUIRED));
		}
	}
	m = methods_find("teammates.get");
	ASSERT(m != NULL && m->verb == VERB_GET && m->kind == KIND_OBJ);
	p = cJSON_Parse("{\"agent_id\":3}");
	ASSERT_OK(method_check_params(m, p, err, sizeof(err)));
	cJSON_Delete(p);
	p = cJSON_Parse("{\"teammate_id\":\"x\",\"bogus\":1}");
	ASSERT_EQ(method_check_params(m, p, err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "unknown parameter \"bogus\" for teammates.get");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"user_id\":\"u\"}");
	ASSERT_EQ(method_check_params(m, p, err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "missing required parameter \"teammate_id\"");
	cJSON_Delete(p);
	p = cJSON_Parse("{\"teammate_id\":1.5}");
	ASSERT_EQ(method_check_params(m, p, err, sizeof(err)), -EINVAL);
	cJSON_Delete(p);
	m = methods_find("runs.create");
	ASSERT(m->flags & METHOD_IDEM);
	ASSERT_STREQ(method_param_find(m, "stream")->def, "true");
}

int
main(void)
{
	RUN(request_decoding);
	RUN(id_kept_on_bad_params);
	RUN(depth_limit);
	RUN(utf8);
	RUN(envelopes);
	RUN(result_text);
	RUN(exit_codes);
	RUN(method_table);
	return t_done();
}

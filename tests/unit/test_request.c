/*
 * SPDX-License-Identifier: MIT
 *
 * Request building: the upstream path-encoding parity vectors, query and
 * body rules of the method table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "methods.h"
#include "request.h"
#include "t.h"

static cJSON *
load_vectors(void)
{
	const char *dir = getenv("M8TES_VECTORS");
	char path[1024], *buf;
	cJSON *root;
	FILE *f;
	long n;

	(void)snprintf(path, sizeof(path), "%s/path_encoding_parity.json",
	    dir != NULL ? dir : "tests/vectors");
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	(void)fseek(f, 0, SEEK_END);
	n = ftell(f);
	(void)fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		(void)fclose(f);
		return NULL;
	}
	(void)fclose(f);
	buf[n] = '\0';
	root = cJSON_Parse(buf);
	free(buf);
	return root;
}

/* Maps a vector's SDK call onto our method and params. */
static const struct method *
vector_call(const cJSON *c, const char *value, cJSON **ret_params)
{
	const cJSON *py = cJSON_GetObjectItem(c, "python");
	const char *res = cJSON_GetObjectItem(py, "resource")->valuestring;
	const char *meth = cJSON_GetObjectItem(py, "method")->valuestring;
	cJSON *p = cJSON_CreateObject();
	char name[128];

	(void)snprintf(name, sizeof(name), "%s.%s", res, meth);
	if (strcmp(name, "users.get") == 0) {
		cJSON_AddStringToObject(p, "user_id", value);
	} else if (strcmp(name, "runs.get") == 0) {
		cJSON_AddStringToObject(p, "run_id", value);
	} else if (strcmp(name, "apps.connect_api_key") == 0) {
		cJSON_AddStringToObject(p, "app_name", value);
		cJSON_AddStringToObject(p, "api_key", "sk_test");
	} else if (strcmp(name, "runs.download_file") == 0) {
		cJSON_AddNumberToObject(p, "run_id", 42);
		cJSON_AddStringToObject(p, "filename", value);
	} else {
		cJSON_Delete(p);
		return NULL;
	}
	*ret_params = p;
	return methods_find(name);
}

TEST(parity_cases)
{
	cJSON *v = load_vectors(), *c;
	int n = 0;

	ASSERT(v != NULL);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(v, "cases"))
	{
		const char *value = cJSON_GetObjectItem(c, "value")->valuestring;
		const char *want =
		    cJSON_GetObjectItem(c, "expected_path")->valuestring;
		const struct method *m;
		char err[256], *path = NULL, *body = NULL;
		cJSON *params = NULL;

		m = vector_call(c, value, &params);
		if (m == NULL) {
			cJSON_Delete(v);
			T_FAIL("no method for vector %s",
			    cJSON_GetObjectItem(c, "name")->valuestring);
		}
		ASSERT_OK(method_check_params(m, params, err, sizeof(err)));
		ASSERT_OK(request_build(m, params, &path, &body, err,
		    sizeof(err)));
		ASSERT_STREQ(path, want);
		if (strcmp(m->name, "apps.connect_api_key") == 0)
			ASSERT_STREQ(body, "{\"api_key\":\"sk_test\"}");
		free(path);
		free(body);
		cJSON_Delete(params);
		n++;
	}
	ASSERT_EQ(n, 12);
	cJSON_Delete(v);
}

TEST(parity_refused)
{
	cJSON *v = load_vectors(), *c;
	int n = 0;

	ASSERT(v != NULL);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(v, "refused"))
	{
		const char *value = cJSON_GetObjectItem(c, "value")->valuestring;
		const struct method *m;
		char err[256], *path = NULL, *body = NULL;
		cJSON *params = NULL;

		m = vector_call(c, value, &params);
		ASSERT(m != NULL);
		ASSERT_EQ(request_build(m, params, &path, &body, err,
			      sizeof(err)),
		    -EINVAL);
		ASSERT(path == NULL);
		cJSON_Delete(params);
		n++;
	}
	ASSERT_EQ(n, 8);
	cJSON_Delete(v);
}

static void
build(const char *method, const char *params_json, char **path, char **body)
{
	const struct method *m = methods_find(method);
	cJSON *p = cJSON_Parse(params_json);
	char err[256];

	*path = *body = NULL;
	if (m != NULL && method_check_params(m, p, err, sizeof(err)) == 0)
		(void)request_build(m, p, path, body, err, sizeof(err));
	cJSON_Delete(p);
}

TEST(query_rules)
{
	char *path, *body;

	build("teammates.list",
	    "{\"limit\":5,\"user_id\":\"ann b&c\",\"include_archived\":true}",
	    &path, &body);
	ASSERT_STREQ(path,
	    "/agents/?user_id=ann+b%26c&limit=5&include_archived=true");
	ASSERT(body == NULL);
	free(path);
	build("teammates.list", "{\"include_archived\":false}", &path, &body);
	ASSERT_STREQ(path, "/agents/");
	free(path);
	build("runs.list", "{\"agent_id\":3,\"starting_after\":\"x y\"}",
	    &path, &body);
	ASSERT_STREQ(path, "/runs/?teammate_id=3&starting_after=x+y");
	free(path);
}

TEST(body_rules)
{
	char *path, *body;

	/* stream always present; message first as the SDK sends it. */
	build("runs.create", "{\"message\":\"Hi\",\"stream\":false}", &path,
	    &body);
	ASSERT_STREQ(path, "/runs/");
	ASSERT_STREQ(body, "{\"message\":\"Hi\",\"stream\":false}");
	free(path);
	free(body);
	/* permissions.create: user_id always present, null by default. */
	build("permissions.create", "{\"tool\":\"gmail\"}", &path, &body);
	ASSERT_STREQ(body, "{\"tool\":\"gmail\",\"user_id\":null}");
	free(path);
	free(body);
	/* Null clears only the nullable fields; others are left out. */
	build("teammates.update",
	    "{\"teammate_id\":7,\"model\":null,\"name\":null,\"role\":\"r\"}",
	    &path, &body);
	ASSERT_STREQ(path, "/agents/7");
	ASSERT_STREQ(body, "{\"role\":\"r\",\"model\":null}");
	free(path);
	free(body);
	/* Flags sent only when true; the webhook flag omitted when false. */
	build("teammates.create", "{\"name\":\"a\",\"webhook\":false,"
				  "\"email_inbox\":true}",
	    &path, &body);
	ASSERT_STREQ(body, "{\"name\":\"a\",\"email_inbox\":true}");
	free(path);
	free(body);
	/* Triggers: timezone defaults to UTC, user_id in body and query. */
	build("tasks.triggers.create",
	    "{\"task_id\":3,\"type\":\"schedule\",\"cron\":\"0 9 * * 1\","
	    "\"user_id\":\"u1\",\"run_at\":\"\"}",
	    &path, &body);
	ASSERT_STREQ(path, "/tasks/3/triggers/?user_id=u1");
	ASSERT_STREQ(body, "{\"type\":\"schedule\",\"timezone\":\"UTC\","
			   "\"cron\":\"0 9 * * 1\",\"user_id\":\"u1\"}");
	free(path);
	free(body);
	/* tasks.create: schedule_timezone only with schedule. */
	build("tasks.create",
	    "{\"teammate_id\":1,\"instructions\":\"x\","
	    "\"email_notifications\":true,\"schedule_timezone\":\"X\"}",
	    &path, &body);
	ASSERT_STREQ(body, "{\"teammate_id\":1,\"instructions\":\"x\"}");
	free(path);
	free(body);
	build("tasks.create",
	    "{\"teammate_id\":1,\"instructions\":\"x\",\"schedule\":\"0 9 * * "
	    "*\",\"email_notifications\":false}",
	    &path, &body);
	ASSERT_STREQ(body, "{\"teammate_id\":1,\"instructions\":\"x\","
			   "\"email_notifications\":false,\"schedule\":\"0 9 "
			   "* * *\",\"schedule_timezone\":\"UTC\"}");
	free(path);
	free(body);
	/* approve sends remember:false explicitly. */
	build("runs.approve",
	    "{\"run_id\":42,\"request_id\":\"req_1\",\"decision\":\"allow\"}",
	    &path, &body);
	ASSERT_STREQ(path, "/runs/42/approve");
	ASSERT_STREQ(body, "{\"request_id\":\"req_1\",\"decision\":\"allow\","
			   "\"remember\":false}");
	free(path);
	free(body);
	/* A POST with no body fields sends no body. */
	build("teammates.enable_webhook", "{\"teammate_id\":1}", &path, &body);
	ASSERT_STREQ(path, "/agents/1/webhook");
	ASSERT(body == NULL);
	free(path);
}

TEST(segment_encoding)
{
	char out[64];

	ASSERT_EQ(request_seg_encode("a b", out, sizeof(out)), 5);
	ASSERT_STREQ(out, "a%20b");
	ASSERT_EQ(request_seg_encode("", out, sizeof(out)), -EINVAL);
	ASSERT_EQ(request_seg_encode("..", out, sizeof(out)), -EINVAL);
	ASSERT_EQ(request_seg_encode("%2F", out, sizeof(out)), 5);
	ASSERT_STREQ(out, "%252F");
	ASSERT_EQ(request_seg_encode("abcdef", out, 4), -ENOBUFS);
	ASSERT_EQ(request_form_encode("a b+c", out, sizeof(out)), 7);
	ASSERT_STREQ(out, "a+b%2Bc");
}

int
main(void)
{
	if (methods_init() < 0) {
		printf("method table does not parse\n");
		return 1;
	}
	RUN(parity_cases);
	RUN(parity_refused);
	RUN(query_rules);
	RUN(body_rules);
	RUN(segment_encoding);
	return t_done();
}

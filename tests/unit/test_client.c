/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of the client side that need no daemon: key=value typing and
 * argv -> method + params mapping against the real method table, the
 * bounded line reader and the routing of interleaved calls over a
 * socketpair with a scripted peer, descriptor passing, the socket path
 * resolver and the readable output; the commands beyond the table (their
 * arguments, --since, the HTTP forwarder, the live run printer, permission
 * prompts and hints, the chat's create-or-reply decision, streamed runs
 * answering a permission request and re-attaching after lagged, downloads
 * through a passed descriptor and their fallbacks, the key reader, the
 * audit table).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_args.h"
#include "cli_chat.h"
#include "cli_cmd.h"
#include "cli_dl.h"
#include "cli_hitl.h"
#include "cli_http.h"
#include "cli_listen.h"
#include "cli_local.h"
#include "cli_out.h"
#include "cli_run.h"
#include "codec.h"
#include "libm8tes.h"
#include "methods.h"
#include "t.h"

#define MAXARGS 32

/*
 * Parses "words|of|a|command" as m8tes would after its global options and
 * writes "method {params}" into out. Returns cli_*'s value.
 */
static int
map_argv(const char *spec, char *out, size_t outlen, char *err, size_t errlen)
{
	char *copy = strdup(spec), *argv[MAXARGS], *save = NULL, *tok;
	const struct method *m;
	struct cli_request req;
	char group[PROTO_MAX_METHOD + 1];
	int argc = 0, used, r;
	char *js;

	for (tok = strtok_r(copy, "|", &save); tok != NULL && argc < MAXARGS;
	     tok = strtok_r(NULL, "|", &save))
		argv[argc++] = tok;
	used = cli_find_method(argc, argv, &m, group, sizeof(group));
	if (used == 0) {
		(void)snprintf(out, outlen, "group:%s", group);
		free(copy);
		return -ENOENT;
	}
	r = cli_method_args(m, argc - used, argv + used, &req, err, errlen);
	if (r < 0) {
		free(copy);
		return r;
	}
	js = cJSON_PrintUnformatted(req.params);
	(void)snprintf(out, outlen, "%s %s%s%s%s", req.name, js,
	    req.help ? " help" : "", req.json ? " json" : "",
	    req.output != NULL ? " output" : "");
	if (req.output != NULL)
		(void)snprintf(out + strlen(out), outlen - strlen(out), "=%s",
		    req.output);
	free(js);
	cli_request_done(&req);
	free(copy);
	return 0;
}

/* One key=value item for method name (NULL: unknown) as JSON text. */
static int
kv(const char *name, const char *arg, char *out, size_t outlen)
{
	cJSON *params = cJSON_CreateObject();
	char err[256], *js;
	int r;

	r = cli_kv_parse(name != NULL ? methods_find(name) : NULL, arg, params,
	    err, sizeof(err));
	js = cJSON_PrintUnformatted(params);
	(void)snprintf(out, outlen, "%s", r < 0 ? err : js);
	free(js);
	cJSON_Delete(params);
	return r;
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			_exit(3);
		p += n;
		len -= (size_t)n;
	}
}

static void
peer_write(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

/* A child writing len bytes of data to fd, for writes over a socket's buffer.
 */
static pid_t
spawn_writer(int fd, const char *data, size_t len)
{
	pid_t pid = fork();

	if (pid == 0) {
		write_all(fd, data, len);
		_exit(0);
	}
	return pid;
}

static int
reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads what the client sent so far (for the request lines). */
static size_t
peer_read(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* What an event callback saw, as "id:seq:delta " items. */
struct seen {
	char log[512];
	int calls;
	int ret; /* what the callback returns */
};

static int
record_cb(const struct m8c_event *ev, void *arg)
{
	struct seen *s = arg;
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev->event, "delta");
	size_t n = strlen(s->log);

	(void)snprintf(s->log + n, sizeof(s->log) - n, "%lld:%llu:%s ", ev->id,
	    ev->seq, cJSON_IsString(d) ? d->valuestring : "?");
	s->calls++;
	return s->ret;
}

static struct m8c_conn *
pair(int *ret_peer)
{
	struct m8c_conn *c = NULL;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return NULL;
	if (m8c_open_fd(sv[0], &c) < 0) {
		(void)close(sv[1]);
		return NULL;
	}
	*ret_peer = sv[1];
	return c;
}

TEST(find_method)
{
	char out[256], err[256];

	ASSERT_EQ(
	    map_argv("teammates|list", out, sizeof(out), err, sizeof(err)), 0);
	ASSERT_STREQ(out, "teammates.list {}");
	/* The SDK CLI's aliases. */
	ASSERT_EQ(map_argv("mate|get|7", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "teammates.get {\"teammate_id\":7}");
	ASSERT_EQ(map_argv("agent|list", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "teammates.list {}");
	ASSERT_EQ(
	    map_argv("task|trigger|list|3", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "tasks.triggers.list {\"task_id\":3}");
	ASSERT_EQ(map_argv("run|get|42", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "runs.get {\"run_id\":42}");
	/* "run" under tasks is the method, not the alias of runs. */
	ASSERT_EQ(map_argv("tasks|run|5|--no-stream", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "tasks.run {\"stream\":false,\"task_id\":5}");
	/* '-' and '_' both name c_d. */
	ASSERT_EQ(map_argv("runs|download-file|42|report.csv", out, sizeof(out),
	              err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs.download_file {\"run_id\":42,\"filename\":\"report.csv\"}");
	ASSERT_EQ(map_argv("runs|download_file|42|r.csv", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs.download_file {\"run_id\":42,\"filename\":\"r.csv\"}");
	/* Groups and unknown words. */
	ASSERT_EQ(map_argv("tasks", out, sizeof(out), err, sizeof(err)),
	    -ENOENT);
	ASSERT_STREQ(out, "group:tasks");
	ASSERT_EQ(map_argv("tasks|triggers|--help", out, sizeof(out), err,
	              sizeof(err)),
	    -ENOENT);
	ASSERT_STREQ(out, "group:tasks.triggers");
	ASSERT_EQ(map_argv("tasks|frob", out, sizeof(out), err, sizeof(err)),
	    -ENOENT);
	ASSERT_STREQ(out, "group:tasks");
	ASSERT_EQ(map_argv("frob|list", out, sizeof(out), err, sizeof(err)),
	    -ENOENT);
	ASSERT_STREQ(out, "group:");
	/* cancel only works on the connection of the call. */
	ASSERT_EQ(map_argv("cancel|1", out, sizeof(out), err, sizeof(err)),
	    -ENOENT);
	ASSERT(cli_is_group("daemon"));
	ASSERT(!cli_is_group("daemon.ping"));
}

TEST(positional_path_params)
{
	char out[256], err[256];

	ASSERT_EQ(map_argv("tasks|triggers|delete|3|schedule_5", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "tasks.triggers.delete "
	    "{\"task_id\":3,\"trigger_id\":\"schedule_5\"}");
	/* A path parameter given as a flag is skipped by the positionals. */
	ASSERT_EQ(map_argv("tasks|triggers|delete|--task-id|3|webhook", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "tasks.triggers.delete "
	    "{\"task_id\":3,\"trigger_id\":\"webhook\"}");
	/* Ids: digits are integers, anything else a string. */
	ASSERT_EQ(
	    map_argv("users|get|cust_123", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "users.get {\"user_id\":\"cust_123\"}");
	ASSERT_EQ(map_argv("users|get|123", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "users.get {\"user_id\":\"123\"}");
	/* After the path, the other required parameters in table order. */
	ASSERT_EQ(map_argv("runs|approve|42|req_1|allow", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs.approve {\"run_id\":42,\"request_id\":"
	    "\"req_1\",\"decision\":\"allow\"}");
	ASSERT_EQ(map_argv("runs|get", out, sizeof(out), err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "missing RUN_ID (argument 1, or --run-id)");
	ASSERT_EQ(map_argv("runs|get|1|2", out, sizeof(out), err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "too many arguments for runs.get: \"2\" (see m8tes "
	    "runs get --help)");
	/* "--" makes an option-looking word a value. */
	ASSERT_EQ(map_argv("memories|create|--|--not-a-flag", out, sizeof(out),
	              err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "memories.create {\"content\":\"--not-a-flag\"}");
}

TEST(flags_typed)
{
	char out[512], err[256];

	ASSERT_EQ(map_argv("tasks|create|--teammate-id|1|--instructions|do "
	                   "it",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "tasks.create "
	    "{\"teammate_id\":1,\"instructions\":\"do it\"}");
	ASSERT_EQ(map_argv("tasks|triggers|create|3|--type|schedule|--cron|0 "
	                   "9 * * 1-5",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "tasks.triggers.create {\"type\":\"schedule\","
	    "\"cron\":\"0 9 * * 1-5\",\"task_id\":3}");
	/* Booleans, --no-, comma arrays appending, objects, =value. */
	ASSERT_EQ(map_argv("teammates|create|--name=x|--tools|gmail, "
	                   "slack|--tools|linear|--enable-memory|--no-enable-"
	                   "history|--metadata|{\"k\":1}",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "teammates.create {\"name\":\"x\",\"tools\":["
	    "\"gmail\",\"slack\",\"linear\"],\"enable_memory\":"
	    "true,\"enable_history\":false,\"metadata\":{"
	    "\"k\":1}}");
	ASSERT_EQ(map_argv("teammates|create|--tools|[\"a,b\"]|--tools=", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "teammates.create {\"tools\":[\"a,b\"]}");
	/* "--memory false" takes the word; --flag=VALUE; numbers; null. */
	ASSERT_EQ(map_argv("runs|create|hi|--memory|false|--history=true|"
	                   "--feedback|--stream=no",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs.create {\"memory\":false,\"history\":true,"
	    "\"feedback\":true,\"stream\":false,\"message\":"
	    "\"hi\"}");
	ASSERT_EQ(map_argv("runs|poll|9|--interval|0.5|--timeout|60", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs.poll {\"interval\":0.5,\"timeout\":60,\"run_id\":9}");
	ASSERT_EQ(map_argv("teammates|update|5|--model|null|--display-order|"
	                   "-3|--enable-memory=null",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "teammates.update {\"model\":null,\"display_order\":"
	    "-3,\"enable_memory\":null,\"teammate_id\":5}");
	/* "null" is a plain string where null means nothing. */
	ASSERT_EQ(map_argv("teammates|create|--name|null", out, sizeof(out),
	              err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "teammates.create {\"name\":\"null\"}");
	/* The SDK's alias flag lands on the canonical name. */
	ASSERT_EQ(map_argv("tasks|create|--agent-id|4|--instructions|x", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "tasks.create {\"teammate_id\":4,\"instructions\":\"x\"}");
	ASSERT_EQ(map_argv("teammates|list|--limit|5|--starting-after|8|"
	                   "--include-archived|--json",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "teammates.list {\"limit\":5,\"starting_after\":8,"
	    "\"include_archived\":true} json");
	ASSERT_EQ(map_argv("runs|download-file|42|r.csv|-o|out.csv", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs.download_file {\"run_id\":42,\"filename\":"
	    "\"r.csv\"} output=out.csv");
	/* --help skips the checks. */
	ASSERT_EQ(
	    map_argv("runs|get|--help", out, sizeof(out), err, sizeof(err)), 0);
	ASSERT_STREQ(out, "runs.get {} help");
}

TEST(flag_errors)
{
	char out[256], err[256];

	ASSERT_EQ(map_argv("teammates|list|--bogus|1", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "unknown option --bogus for teammates.list (see "
	    "m8tes teammates list --help)");
	ASSERT_EQ(map_argv("teammates|list|--limit=abc", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "parameter \"limit\" must be an integer, not \"abc\"");
	ASSERT_EQ(map_argv("teammates|list|--limit|1.5", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_EQ(map_argv("teammates|list|--limit", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "option --limit needs a value");
	/* --no- only for booleans, and without a value. */
	ASSERT_EQ(map_argv("teammates|create|--no-name", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "unknown option --no-name for teammates.create (see "
	    "m8tes teammates create --help)");
	ASSERT_EQ(map_argv("teammates|create|--no-webhook=1", out, sizeof(out),
	              err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "--no-webhook takes no value");
	ASSERT_EQ(map_argv("teammates|create|--metadata|[1]", out, sizeof(out),
	              err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "parameter \"metadata\" must be a JSON object, not \"[1]\"");
	ASSERT_EQ(map_argv("teammates|create|--enable-memory=maybe", out,
	              sizeof(out), err, sizeof(err)),
	    -EINVAL);
	ASSERT_EQ(
	    map_argv("teammates|list|-x", out, sizeof(out), err, sizeof(err)),
	    -EINVAL);
	/* -o belongs to downloads only. */
	ASSERT_EQ(
	    map_argv("runs|get|1|-o|f", out, sizeof(out), err, sizeof(err)),
	    -EINVAL);
}

TEST(value_parse)
{
	struct method_param p = {.name = "v"};
	char err[256], *js;
	cJSON *v;

	p.type = TYPE_INT;
	ASSERT_EQ(cli_value_parse(&p, "-12", &v, err, sizeof(err)), 0);
	ASSERT(cJSON_IsNumber(v) && v->valuedouble == -12);
	cJSON_Delete(v);
	ASSERT_EQ(cli_value_parse(&p, "1e3", &v, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(cli_value_parse(&p, " 1", &v, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(cli_value_parse(&p, "9007199254740993", &v, err, sizeof(err)),
	    -EINVAL);
	p.type = TYPE_NUMBER;
	ASSERT_EQ(cli_value_parse(&p, "2.5e1", &v, err, sizeof(err)), 0);
	ASSERT(v->valuedouble == 25);
	cJSON_Delete(v);
	ASSERT_EQ(cli_value_parse(&p, ".5", &v, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(cli_value_parse(&p, "nan", &v, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(cli_value_parse(&p, "1e999", &v, err, sizeof(err)), -EINVAL);
	p.type = TYPE_ID;
	ASSERT_EQ(cli_value_parse(&p, "schedule_5", &v, err, sizeof(err)), 0);
	ASSERT_STREQ(cJSON_GetStringValue(v), "schedule_5");
	cJSON_Delete(v);
	ASSERT_EQ(cli_value_parse(&p, "", &v, err, sizeof(err)), -EINVAL);
	p.type = TYPE_ARRAY;
	ASSERT_EQ(cli_value_parse(&p, " a ,,b,", &v, err, sizeof(err)), 0);
	js = cJSON_PrintUnformatted(v);
	ASSERT_STREQ(js, "[\"a\",\"b\"]");
	free(js);
	cJSON_Delete(v);
	ASSERT_EQ(cli_value_parse(&p, "[1,", &v, err, sizeof(err)), -EINVAL);
	p.type = TYPE_ANY;
	ASSERT_EQ(cli_value_parse(&p, "{\"a\":[true]}", &v, err, sizeof(err)),
	    0);
	ASSERT(cJSON_IsObject(v));
	cJSON_Delete(v);
	ASSERT_EQ(cli_value_parse(&p, "word", &v, err, sizeof(err)), 0);
	ASSERT_STREQ(cJSON_GetStringValue(v), "word");
	cJSON_Delete(v);
	p.type = TYPE_STRING;
	p.flags = PARAM_NULLABLE;
	ASSERT_EQ(cli_value_parse(&p, "null", &v, err, sizeof(err)), 0);
	ASSERT(cJSON_IsNull(v));
	cJSON_Delete(v);
}

TEST(kv_typing)
{
	char out[256], path[] = "/tmp/m8c_test_XXXXXX";
	int fd;

	/* JSON literals for unknown methods, strings otherwise. */
	ASSERT_EQ(kv(NULL, "limit=5", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"limit\":5}");
	ASSERT_EQ(kv(NULL, "tools=[\"gmail\"]", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"tools\":[\"gmail\"]}");
	ASSERT_EQ(kv(NULL, "o={\"a\":null}", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"o\":{\"a\":null}}");
	ASSERT_EQ(kv(NULL, "b=false", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"b\":false}");
	ASSERT_EQ(kv(NULL, "n=null", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"n\":null}");
	ASSERT_EQ(kv(NULL, "x=-1.5e2", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"x\":-150}");
	/* Not JSON numbers: stay strings, leading zeros kept. */
	ASSERT_EQ(kv(NULL, "zip=01234", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"zip\":\"01234\"}");
	ASSERT_EQ(kv(NULL, "h=0x10", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"h\":\"0x10\"}");
	ASSERT_EQ(kv(NULL, "s=hello world", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"s\":\"hello world\"}");
	ASSERT_EQ(kv(NULL, "q=\"x\"", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"q\":\"\\\"x\\\"\"}");
	ASSERT_EQ(kv(NULL, "bad=[1,", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"bad\":\"[1,\"}");
	ASSERT_EQ(kv(NULL, "e=", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"e\":\"\"}");
	ASSERT_EQ(kv(NULL, "a=b=c", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"a\":\"b=c\"}");
	/* := forces JSON. */
	ASSERT_EQ(kv(NULL, "name:=\"42\"", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"name\":\"42\"}");
	ASSERT_EQ(kv(NULL, "n:=7", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"n\":7}");
	ASSERT_EQ(kv(NULL, "n:=seven", out, sizeof(out)), -EINVAL);
	ASSERT_STREQ(out, "n: not valid JSON: seven");
	/* Typed by the table: strings stay strings, the rest as above. */
	ASSERT_EQ(kv("users.get", "user_id=123", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"user_id\":\"123\"}");
	ASSERT_EQ(kv("teammates.create", "name=true", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"name\":\"true\"}");
	ASSERT_EQ(kv("teammates.list", "limit=5", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"limit\":5}");
	ASSERT_EQ(kv("teammates.get", "teammate_id=abc", out, sizeof(out)), 0);
	ASSERT_STREQ(out, "{\"teammate_id\":\"abc\"}");
	/* Malformed items. */
	ASSERT_EQ(kv(NULL, "novalue", out, sizeof(out)), -EINVAL);
	ASSERT_EQ(kv(NULL, "=v", out, sizeof(out)), -EINVAL);
	ASSERT_EQ(kv(NULL, ":=1", out, sizeof(out)), -EINVAL);
	/* @FILE: the text as is, newline included. */
	fd = mkstemp(path);
	ASSERT(fd >= 0);
	write_all(fd, "line one\nline \"two\"\n", 20);
	(void)close(fd);
	{
		char arg[64];

		(void)snprintf(arg, sizeof(arg), "instructions=@%s", path);
		ASSERT_EQ(kv("tasks.create", arg, out, sizeof(out)), 0);
	}
	(void)unlink(path);
	ASSERT_STREQ(out,
	    "{\"instructions\":\"line one\\nline \\\"two\\\"\\n\"}");
	ASSERT_EQ(kv(NULL, "x=@/nonexistent/file", out, sizeof(out)), -ENOENT);
	ASSERT_STREQ(out, "/nonexistent/file: No such file or directory");
}

TEST(call_args)
{
	char *argv[4], a0[] = "teammates.list", a1[] = "{\"limit\":5}",
	               a2[] = "limit=6", a3[] = "tools=x";
	struct cli_request req;
	char err[256], *js;

	argv[0] = a0;
	argv[1] = a1;
	argv[2] = a2;
	ASSERT_EQ(cli_call_args(3, argv, &req, err, sizeof(err)), 0);
	ASSERT(req.method == methods_find("teammates.list"));
	js = cJSON_PrintUnformatted(req.params);
	ASSERT_STREQ(js, "{\"limit\":6}");
	free(js);
	cli_request_done(&req);
	/* Known methods are checked before anything is sent. */
	argv[1] = a3;
	ASSERT_EQ(cli_call_args(2, argv, &req, err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "unknown parameter \"tools\" for teammates.list");
	/* Unknown methods go out as they are. */
	{
		char f0[] = "future.thing", f1[] = "tools=x";

		argv[0] = f0;
		argv[1] = f1;
		ASSERT_EQ(cli_call_args(2, argv, &req, err, sizeof(err)), 0);
		ASSERT(req.method == NULL);
		ASSERT_STREQ(req.name, "future.thing");
		js = cJSON_PrintUnformatted(req.params);
		ASSERT_STREQ(js, "{\"tools\":\"x\"}");
		free(js);
		cli_request_done(&req);
	}
	ASSERT_EQ(cli_call_args(0, argv, &req, err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "call: missing METHOD");
}

TEST(socket_path)
{
	char buf[300], big[200];

	ASSERT_EQ(setenv("M8TES_SOCKET", "/x/y.sock", 1), 0);
	ASSERT_EQ(m8c_socket_path(buf, sizeof(buf)), 9);
	ASSERT_STREQ(buf, "/x/y.sock");
	ASSERT_EQ(setenv("M8TES_SOCKET", "", 1), 0);
	ASSERT_EQ(setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1), 0);
	ASSERT_OK(m8c_socket_path(buf, sizeof(buf)));
	ASSERT_STREQ(buf, "/run/user/1000/m8tes/m8tesd.sock");
	ASSERT_EQ(unsetenv("XDG_RUNTIME_DIR"), 0);
	ASSERT_OK(m8c_socket_path(buf, sizeof(buf)));
	ASSERT_STREQ(buf, "/run/m8tes/m8tesd.sock");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ASSERT_EQ(setenv("M8TES_SOCKET", big, 1), 0);
	ASSERT_EQ(m8c_socket_path(buf, sizeof(buf)), -ENAMETOOLONG);
	ASSERT_EQ(unsetenv("M8TES_SOCKET"), 0);
	ASSERT_EQ(m8c_socket_path(buf, 5), -ENAMETOOLONG);
	{
		struct m8c_conn *c = NULL;

		ASSERT_EQ(m8c_connect("/nonexistent/m8tesd.sock", &c), -ENOENT);
		ASSERT_EQ(m8c_connect(big, &c), -ENAMETOOLONG);
		ASSERT(c == NULL);
	}
}

TEST(read_split_lines)
{
	struct m8c_conn *c;
	const char *line;
	size_t len;
	int peer;

	c = pair(&peer);
	ASSERT(c != NULL);
	peer_write(peer, "{\"a\":1}\n{\"b\"");
	ASSERT_EQ(m8c_read_line(c, 1000, &line, &len), 0);
	ASSERT_MEMEQ(line, len, "{\"a\":1}", 7);
	ASSERT_EQ(line[len], '\0');
	/* Half a line is not a line. */
	ASSERT_EQ(m8c_read_line(c, 0, &line, &len), -ETIMEDOUT);
	peer_write(peer, ":2}\r\n\n\n{\"c\":3}\n{\"d\"");
	ASSERT_EQ(m8c_read_line(c, 1000, &line, &len), 0);
	ASSERT_MEMEQ(line, len, "{\"b\":2}", 7);
	/* Empty lines are skipped. */
	ASSERT_EQ(m8c_read_line(c, 1000, &line, &len), 0);
	ASSERT_MEMEQ(line, len, "{\"c\":3}", 7);
	ASSERT_EQ(m8c_read_line(c, 0, &line, &len), -ETIMEDOUT);
	peer_write(peer, ":4}\n");
	ASSERT_EQ(m8c_read_line(c, 1000, &line, &len), 0);
	ASSERT_MEMEQ(line, len, "{\"d\":4}", 7);
	/* A half line at the end of the stream is lost, and said so. */
	peer_write(peer, "{\"e\"");
	(void)close(peer);
	ASSERT_EQ(m8c_read_line(c, 1000, &line, &len), -ECONNRESET);
	ASSERT_EQ(m8c_read_line(c, 1000, &line, &len), -ECONNRESET);
	m8c_close(c);
}

TEST(read_overlong_line)
{
	size_t big = PROTO_MAX_LINE + 1 + 64;
	char *data = malloc(PROTO_MAX_LINE * 2 + 256);
	struct m8c_conn *c;
	const char *line;
	size_t len, n = 0;
	pid_t pid;
	int peer;

	ASSERT(data != NULL);
	c = pair(&peer);
	ASSERT(c != NULL);
	/* Exactly the limit: a line. One byte more: an error. */
	memset(data, 'a', PROTO_MAX_LINE);
	n = PROTO_MAX_LINE;
	data[n++] = '\n';
	memset(data + n, 'b', big);
	n += big;
	memcpy(data + n, "tail\n{\"ok\":1}\n", 14);
	n += 14;
	pid = spawn_writer(peer, data, n);
	ASSERT(pid > 0);
	ASSERT_EQ(m8c_read_line(c, 5000, &line, &len), 0);
	ASSERT_EQ(len, PROTO_MAX_LINE);
	ASSERT(line[0] == 'a' && line[len - 1] == 'a');
	ASSERT_EQ(m8c_read_line(c, 5000, &line, &len), -EMSGSIZE);
	/* The rest of it is dropped; the stream goes on after it. */
	ASSERT_EQ(m8c_read_line(c, 5000, &line, &len), 0);
	ASSERT_MEMEQ(line, len, "{\"ok\":1}", 8);
	ASSERT_EQ(reap(pid), 0);
	(void)close(peer);
	m8c_close(c);
	free(data);
}

TEST(interleaved_calls)
{
	struct seen sa = {0}, sb = {0};
	struct m8c_call *a, *b;
	struct m8c_reply ra, rb;
	struct m8c_conn *c;
	cJSON *pa, *pb;
	char buf[512];
	int peer;

	c = pair(&peer);
	ASSERT(c != NULL);
	pa = cJSON_Parse("{\"message\":\"hi\"}");
	pb = cJSON_Parse("{\"run_id\":1}");
	ASSERT_EQ(m8c_start(c, "runs.create", pa, record_cb, &sa, &a), 0);
	ASSERT_EQ(m8c_start(c, "runs.stream", pb, record_cb, &sb, &b), 0);
	cJSON_Delete(pa);
	cJSON_Delete(pb);
	ASSERT_EQ(m8c_call_id(a), 1);
	ASSERT_EQ(m8c_call_id(b), 2);
	peer_read(peer, buf, sizeof(buf));
	ASSERT_STREQ(buf,
	    "{\"id\":1,\"method\":\"runs.create\",\"params\":{\"message\":"
	    "\"hi\"}}\n{\"id\":2,\"method\":\"runs.stream\",\"params\":{"
	    "\"run_id\":1}}\n");
	peer_write(peer,
	    "{\"id\":1,\"seq\":1,\"event\":{\"type\":\"text-delta\","
	    "\"delta\":\"Hel\"}}\n"
	    "{\"id\":2,\"seq\":1,\"event\":{\"delta\":\"x\"}}\n"
	    "{\"id\":99,\"result\":{}}\n"
	    "{\"id\":\"1\",\"result\":{}}\n"
	    "{\"id\":2,\"future\":{}}\n"
	    "{\"id\":2,\"result\":{\"n\":2}}\n"
	    "{\"id\":2,\"seq\":2,\"event\":{\"delta\":\"late\"}}\n"
	    "{\"id\":1,\"seq\":2,\"event\":{\"delta\":\"lo\"}}\n"
	    "{\"id\":1,\"result\":{\"text\":\"Hello\"}}\n");
	ASSERT_EQ(m8c_wait(c, a, 1000, &ra), M8C_RESULT);
	ASSERT_STREQ(cJSON_GetStringValue(
	                 cJSON_GetObjectItemCaseSensitive(ra.result, "text")),
	    "Hello");
	/* Each call saw its own events; b's final was kept for it. */
	ASSERT_STREQ(sa.log, "1:1:Hel 1:2:lo ");
	ASSERT_STREQ(sb.log, "2:1:x ");
	ASSERT(m8c_call_done(b));
	ASSERT_EQ(m8c_wait(c, b, 0, &rb), M8C_RESULT);
	ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(rb.result, "n")->valueint,
	    2);
	ASSERT_EQ(m8c_wait(c, a, 0, &ra), -EALREADY);
	m8c_reply_done(&ra);
	m8c_reply_done(&rb);
	m8c_call_free(a);
	m8c_call_free(b);
	(void)close(peer);
	m8c_close(c);
}

TEST(final_kinds)
{
	struct m8c_reply r;
	struct m8c_call *k;
	struct m8c_conn *c;
	struct seen s = {0};
	char buf[4096];
	int peer;

	c = pair(&peer);
	ASSERT(c != NULL);
	peer_write(peer,
	    "{\"id\":1,\"error\":{\"code\":\"m8tes.rate_limited\","
	    "\"message\":\"slow down\",\"status\":429,\"retry_after\":2.5,"
	    "\"retryable\":true,\"request_id\":\"req_1\"}}\n");
	ASSERT_EQ(m8c_call(c, "runs.list", NULL, 1000, NULL, NULL, &r),
	    M8C_ERROR);
	ASSERT_STREQ(r.error.code, "m8tes.rate_limited");
	ASSERT_STREQ(r.error.message, "slow down");
	ASSERT_EQ(r.error.status, 429);
	ASSERT(r.error.retry_after == 2.5);
	ASSERT(r.error.retryable);
	ASSERT_STREQ(r.error.request_id, "req_1");
	ASSERT_EQ(codec_exit_code(r.error.code), 5);
	m8c_reply_done(&r);
	/* Without message, status or retry_after. */
	peer_write(peer,
	    "{\"id\":2,\"error\":{\"code\":\"m8tes.not_found\"}}\n");
	ASSERT_EQ(m8c_call(c, "teammates.get", NULL, 1000, NULL, NULL, &r),
	    M8C_ERROR);
	ASSERT_STREQ(r.error.message, "m8tes.not_found");
	ASSERT_EQ(r.error.status, 0);
	ASSERT(r.error.retry_after < 0);
	m8c_reply_done(&r);
	peer_write(peer, "{\"id\":3,\"lagged\":{\"resume_after\":17}}\n");
	ASSERT_EQ(m8c_call(c, "runs.stream", NULL, 1000, NULL, NULL, &r),
	    M8C_LAGGED);
	ASSERT_EQ(r.resume_after, 17);
	m8c_reply_done(&r);
	/* An error about a line the daemon could not read has no id. */
	peer_write(peer,
	    "{\"error\":{\"code\":\"m8tesd.parse_error\","
	    "\"message\":\"bad\"}}\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    M8C_ERROR);
	ASSERT_STREQ(r.error.code, "m8tesd.parse_error");
	m8c_reply_done(&r);
	/* An error without its code cannot be reported: the call fails. */
	peer_write(peer, "{\"id\":5,\"error\":{\"message\":\"?\"}}\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    -EBADMSG);
	/* Not JSON: the only call in flight fails. */
	peer_write(peer, "garbage\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    -EBADMSG);
	/* A timeout leaves the call in flight; it can be waited for again. */
	ASSERT_EQ(m8c_start(c, "daemon.ping", NULL, record_cb, &s, &k), 0);
	ASSERT_EQ(m8c_wait(c, k, 0, &r), -ETIMEDOUT);
	ASSERT(!m8c_call_done(k));
	/* A callback's error stops the wait, not the call. */
	s.ret = -ECANCELED;
	ASSERT_EQ(m8c_call_id(k), 7);
	peer_write(peer,
	    "{\"id\":7,\"seq\":1,\"event\":{\"delta\":\"d\"}}\n"
	    "{\"id\":7,\"result\":{\"pong\":true}}\n");
	ASSERT_EQ(m8c_wait(c, k, 1000, &r), -ECANCELED);
	ASSERT(!m8c_call_done(k));
	ASSERT_EQ(m8c_wait(c, k, 1000, &r), M8C_RESULT);
	ASSERT(
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.result, "pong")));
	ASSERT_STREQ(s.log, "7:1:d ");
	m8c_reply_done(&r);
	m8c_call_free(k);
	/* cancel goes out as its own call naming the other. */
	ASSERT_EQ(m8c_start(c, "runs.stream", NULL, NULL, NULL, &k), 0);
	peer_read(peer, buf, sizeof(buf));
	peer_write(peer,
	    "{\"id\":9,\"result\":{\"cancelled\":true}}\n"
	    "{\"id\":8,\"error\":{\"code\":\"m8tesd.cancelled\","
	    "\"message\":\"cancelled\"}}\n");
	ASSERT_EQ(m8c_cancel(c, k, 1000), 0);
	peer_read(peer, buf, sizeof(buf));
	ASSERT_STREQ(buf,
	    "{\"id\":9,\"method\":\"cancel\",\"params\":{"
	    "\"id\":8}}\n");
	ASSERT_EQ(m8c_wait(c, k, 1000, &r), M8C_ERROR);
	ASSERT_STREQ(r.error.code, "m8tesd.cancelled");
	m8c_reply_done(&r);
	m8c_call_free(k);
	/* Closing the connection ends what is still in flight. */
	ASSERT_EQ(m8c_start(c, "daemon.ping", NULL, NULL, NULL, &k), 0);
	m8c_close(c);
	ASSERT(m8c_call_done(k));
	ASSERT_EQ(m8c_wait(NULL, k, 0, &r), -ECONNABORTED);
	m8c_call_free(k);
	(void)close(peer);
}

/* Plain results taken raw: their text as sent; other lines parsed. */
TEST(raw_results)
{
	static const char text[] = "{\"data\":[{\"id\":2,\"s\":\"a \\\"}\\\\\"},"
	                           "{\"id\":1,\"x\":[[],{}]}],\"has_more\":false}";
	struct m8c_reply r;
	struct m8c_conn *c;
	char line[512];
	int peer;

	c = pair(&peer);
	ASSERT(c != NULL);
	m8c_set_raw_results(c, true);
	(void)snprintf(line, sizeof(line),
	    "{\"id\":1,\"result\":%s,\"cache\":\"hit\"}\n", text);
	peer_write(peer, line);
	ASSERT_EQ(m8c_call(c, "teammates.list", NULL, 1000, NULL, NULL, &r),
	    M8C_RESULT);
	ASSERT(r.result == NULL && r.root == NULL);
	ASSERT_STREQ(r.result_text, text);
	ASSERT_EQ(r.result_len, strlen(text));
	m8c_reply_done(&r);
	/* jsonrpc first, blanks, a scalar result. */
	peer_write(peer, "{\"jsonrpc\":\"2.0\", \"id\":2 ,\"result\": 42}\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    M8C_RESULT);
	ASSERT_STREQ(r.result_text, "42");
	m8c_reply_done(&r);
	/* Errors and anything else are parsed as always. */
	peer_write(peer, "{\"id\":3,\"error\":{\"code\":\"m8tes.not_found\","
	                 "\"message\":\"gone\"}}\n");
	ASSERT_EQ(m8c_call(c, "teammates.get", NULL, 1000, NULL, NULL, &r),
	    M8C_ERROR);
	ASSERT_STREQ(r.error.code, "m8tes.not_found");
	m8c_reply_done(&r);
	peer_write(peer, "{\"id\":4,\"result\":{\"a\":1},\"extra\":true}\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    M8C_RESULT);
	ASSERT(r.result_text == NULL && cJSON_IsObject(r.result));
	m8c_reply_done(&r);
	/* An unterminated result is no plain result: parsed, and refused. */
	peer_write(peer, "{\"id\":5,\"result\":{\"a\":\"}\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    -EBADMSG);
	/* Off again: parsed. */
	m8c_set_raw_results(c, false);
	peer_write(peer, "{\"id\":6,\"result\":{\"pong\":true}}\n");
	ASSERT_EQ(m8c_call(c, "daemon.ping", NULL, 1000, NULL, NULL, &r),
	    M8C_RESULT);
	ASSERT(r.result_text == NULL && cJSON_IsObject(r.result));
	m8c_reply_done(&r);
	m8c_close(c);
	(void)close(peer);
}

TEST(overlong_reply_fails_its_call)
{
	size_t n = 0, big = PROTO_MAX_LINE + 100;
	char *data = malloc(big + 128);
	struct m8c_call *a, *b;
	struct m8c_reply r;
	struct m8c_conn *c;
	pid_t pid;
	int peer;

	ASSERT(data != NULL);
	c = pair(&peer);
	ASSERT(c != NULL);
	ASSERT_EQ(m8c_start(c, "a", NULL, NULL, NULL, &a), 0);
	ASSERT_EQ(m8c_start(c, "b", NULL, NULL, NULL, &b), 0);
	memcpy(data, "{\"id\":2,\"result\":\"", 18);
	n = 18;
	memset(data + n, 'x', big);
	n += big;
	memcpy(data + n, "\"}\n{\"id\":1,\"result\":1}\n", 23);
	n += 23;
	pid = spawn_writer(peer, data, n);
	ASSERT(pid > 0);
	ASSERT_EQ(m8c_wait(c, a, 5000, &r), M8C_RESULT);
	ASSERT_EQ(r.result->valueint, 1);
	m8c_reply_done(&r);
	ASSERT(m8c_call_done(b));
	ASSERT_EQ(m8c_wait(c, b, 0, &r), -EMSGSIZE);
	ASSERT_EQ(reap(pid), 0);
	/* The end of the stream ends every call in flight. */
	m8c_call_free(a);
	m8c_call_free(b);
	ASSERT_EQ(m8c_start(c, "c", NULL, NULL, NULL, &a), 0);
	(void)close(peer);
	ASSERT_EQ(m8c_wait(c, a, 5000, &r), -ECONNRESET);
	m8c_call_free(a);
	ASSERT_EQ(m8c_start(c, "d", NULL, NULL, NULL, &a), -EPIPE);
	m8c_close(c);
	free(data);
}

/* Sends text with fd attached, as the daemon will for downloads. */
static int
send_fd(int sock, int fd, const char *text)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {(void *)(uintptr_t)text, strlen(text)};
	struct msghdr mh = {.msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = ctl.buf,
	    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == (ssize_t)strlen(text) ? 0 : -1;
}

TEST(recv_fd)
{
	struct m8c_reply r;
	struct m8c_conn *c;
	char buf[16] = "";
	int peer, p[2], fd = -1;

	c = pair(&peer);
	ASSERT(c != NULL);
	ASSERT_EQ(pipe(p), 0);
	/* A descriptor riding on a reply line is kept for m8c_recv_fd. */
	ASSERT_EQ(send_fd(peer, p[0], "{\"id\":1,\"result\":{\"fd\":true}}\n"),
	    0);
	ASSERT_EQ(m8c_call(c, "runs.download_file", NULL, 1000, NULL, NULL, &r),
	    M8C_RESULT);
	m8c_reply_done(&r);
	ASSERT_EQ(m8c_recv_fd(c, 0, &fd), 0);
	ASSERT(fd >= 0);
	ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	write_all(p[1], "ping", 4);
	ASSERT_EQ(read(fd, buf, sizeof(buf)), 4);
	ASSERT_STREQ(buf, "ping");
	(void)close(fd);
	/* Waiting for one; the bytes that come with it stay readable. */
	ASSERT_EQ(m8c_recv_fd(c, 0, &fd), -ETIMEDOUT);
	ASSERT_EQ(send_fd(peer, p[1], "{\"x\":1}\n"), 0);
	ASSERT_EQ(m8c_recv_fd(c, 1000, &fd), 0);
	write_all(fd, "pong", 4);
	ASSERT_EQ(read(p[0], buf, sizeof(buf)), 4);
	ASSERT_MEMEQ(buf, 4, "pong", 4);
	(void)close(fd);
	{
		const char *line;
		size_t len;

		ASSERT_EQ(m8c_read_line(c, 0, &line, &len), 0);
		ASSERT_MEMEQ(line, len, "{\"x\":1}", 7);
	}
	(void)close(p[0]);
	(void)close(p[1]);
	(void)close(peer);
	m8c_close(c);
}

TEST(table_output)
{
	cJSON *page = cJSON_Parse(
	    "{\"data\":[{\"id\":2,\"name\":\"Ops Mate\",\"status\":\"enabled\","
	    "\"tools\":[\"gmail\",\"slack\"],\"role\":null},{\"id\":10,"
	    "\"name\":\"B\\u001bot\",\"status\":\"disabled\",\"tools\":[]}],"
	    "\"has_more\":true,\"next_starting_after\":null}");
	struct cli_out o = {.json = false, .method = "teammates.list"};
	char *text = NULL;
	size_t len = 0;

	ASSERT(page != NULL);
	o.f = open_memstream(&text, &len);
	ASSERT(o.f != NULL);
	ASSERT_EQ(cli_out_result(&o, page), 0);
	(void)fclose(o.f);
	ASSERT_STREQ(text,
	    "ID  NAME      STATUS    TOOLS\n"
	    "2   Ops Mate  enabled   gmail,slack\n"
	    "10  B ot      disabled  -\n"
	    "more: next --starting-after 10\n");
	free(text);
	/* Unknown resources: id, then the first scalar fields. */
	o.f = open_memstream(&text, &len);
	o.method = NULL;
	ASSERT_EQ(cli_out_table(o.f, NULL,
	              cJSON_GetObjectItemCaseSensitive(page, "data")),
	    0);
	(void)fclose(o.f);
	ASSERT_STREQ(text,
	    "ID  NAME      STATUS    ROLE\n"
	    "2   Ops Mate  enabled   -\n"
	    "10  B ot      disabled  -\n");
	free(text);
	/* JSON mode: one compact line. */
	o.f = open_memstream(&text, &len);
	o.json = true;
	ASSERT_EQ(
	    cli_out_result(&o,
	        cJSON_GetObjectItemCaseSensitive(
	            cJSON_GetArrayItem(
	                cJSON_GetObjectItemCaseSensitive(page, "data"), 0),
	            "tools")),
	    0);
	(void)fclose(o.f);
	ASSERT_STREQ(text, "[\"gmail\",\"slack\"]\n");
	free(text);
	cJSON_Delete(page);
}

TEST(object_and_error_output)
{
	cJSON *obj = cJSON_Parse("{\"id\":7,\"instructions\":\"a\\nb\","
	                         "\"tools\":[\"gmail\",\"slack\"],\"metadata\":"
	                         "{\"k\":1},\"text\":\"streamed\",\"on\":false,"
	                         "\"none\":[],\"n\":0}");
	struct m8c_error e = {.code = "m8tes.rate_limited",
	    .message = "slow\ndown",
	    .status = 429,
	    .retry_after = 2.5};
	struct cli_out o = {.method = "teammates.get"};
	char *text = NULL;
	size_t len = 0;

	o.f = open_memstream(&text, &len);
	o.streamed_text = true;
	ASSERT_EQ(cli_out_result(&o, obj), 0);
	(void)fclose(o.f);
	ASSERT_STREQ(text,
	    "id:           7\n"
	    "instructions: a\n"
	    "              b\n"
	    "tools:        gmail, slack\n"
	    "metadata:     {\"k\":1}\n"
	    "on:           false\n"
	    "none:         -\n"
	    "n:            0\n");
	free(text);
	cJSON_Delete(obj);
	o.f = open_memstream(&text, &len);
	cli_out_error(o.f, &e);
	e.status = 0;
	e.retry_after = -1;
	e.code = "m8tes.not_found";
	cli_out_error(o.f, &e);
	(void)fclose(o.f);
	ASSERT_STREQ(text,
	    "m8tes: slow down (m8tes.rate_limited, status 429, "
	    "retry after 2.5 s)\n"
	    "m8tes: slow down (m8tes.not_found)\n");
	free(text);
}

TEST(event_printer)
{
	struct cli_out o = {.json = false};
	struct m8c_event ev = {.id = 1};
	const char *lines[] = {
	    "{\"type\":\"text-delta\",\"delta\":\"Hello\"}",
	    "{\"type\":\"tool-call-start\",\"toolName\":\"gmail\"}",
	    "{\"type\":\"text-delta\",\"delta\":\"done\\n\"}",
	    "{\"type\":\"text-delta\",\"delta\":\"more\"}",
	};
	char *text = NULL, *etext = NULL;
	size_t len = 0, elen = 0;

	o.f = open_memstream(&text, &len);
	o.err = open_memstream(&etext, &elen);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		cJSON *e = cJSON_Parse(lines[i]);

		ev.event = e;
		ASSERT_EQ(cli_out_event_cb(&ev, &o), 0);
		cJSON_Delete(e);
	}
	{
		cJSON *e =
		    cJSON_Parse("{\"type\":\"error\",\"error\":\"boom\"}");

		ev.event = e;
		ASSERT_EQ(cli_out_event_cb(&ev, &o), 0);
		cJSON_Delete(e);
	}
	(void)fclose(o.f);
	(void)fclose(o.err);
	ASSERT_STREQ(text, "Hello\n  gmail\ndone\nmore\n");
	ASSERT_STREQ(etext, "m8tes: run error: boom\n");
	ASSERT(o.streamed_text);
	free(text);
	free(etext);
	/* JSON mode prints the line as received. */
	o = (struct cli_out){.json = true};
	o.f = open_memstream(&text, &len);
	ev.line = "{\"id\":1,\"seq\":3,\"event\":{}}";
	ev.len = strlen(ev.line);
	{
		cJSON *e = cJSON_CreateObject();

		ev.event = e;
		ASSERT_EQ(cli_out_event_cb(&ev, &o), 0);
		cJSON_Delete(e);
	}
	(void)fclose(o.f);
	ASSERT_STREQ(text, "{\"id\":1,\"seq\":3,\"event\":{}}\n");
	free(text);
}

TEST(base64)
{
	unsigned char out[16];

	ASSERT_EQ(cli_base64_decode("YSxiCjEs", 8, out), 6);
	ASSERT_MEMEQ(out, 6, "a,b\n1,", 6);
	ASSERT_EQ(cli_base64_decode("YQ==", 4, out), 1);
	ASSERT_EQ(out[0], 'a');
	ASSERT_EQ(cli_base64_decode("YWI", 3, out), 2);
	ASSERT_EQ(cli_base64_decode("", 0, out), 0);
	ASSERT_EQ(cli_base64_decode("Y", 1, out), -1);
	ASSERT_EQ(cli_base64_decode("Y!==", 4, out), -1);
}

/* Text read from a memory stream opened by open_memstream, then freed. */
static void
take(FILE *f, char **text, char *out, size_t outlen)
{
	(void)fclose(f);
	(void)snprintf(out, outlen, "%s", *text != NULL ? *text : "");
	free(*text);
	*text = NULL;
}

/*
 * Parses "words|of|a|command" as one of cli_cmd's commands (now = 100000)
 * and writes "words: method {params}" and its options into out.
 */
static int
cmd_argv(const char *spec, char *out, size_t outlen, char *err, size_t errlen)
{
	char *copy = strdup(spec), *argv[MAXARGS], *save = NULL, *tok;
	enum cli_cmd_kind kind;
	struct cli_cmd cmd;
	int argc = 0, used, r;
	char *js, *rjs = NULL;
	size_t n;

	for (tok = strtok_r(copy, "|", &save); tok != NULL && argc < MAXARGS;
	     tok = strtok_r(NULL, "|", &save))
		argv[argc++] = tok;
	used = cli_cmd_find(argc, argv, &kind);
	if (used == 0) {
		(void)snprintf(out, outlen, "none");
		free(copy);
		return -ENOENT;
	}
	r = cli_cmd_parse(kind, argc - used, argv + used, 100000, &cmd, err,
	    errlen);
	if (r < 0) {
		free(copy);
		return r;
	}
	js = cJSON_PrintUnformatted(cmd.params);
	if (cmd.reply_params != NULL)
		rjs = cJSON_PrintUnformatted(cmd.reply_params);
	n = (size_t)snprintf(out, outlen, "%s: %s %s", cli_cmd_words(kind),
	    cmd.method->name, js);
	if (rjs != NULL)
		n += (size_t)snprintf(out + n, outlen - n, " reply=%s", rjs);
	if (cmd.pick_teammate)
		n += (size_t)snprintf(out + n, outlen - n, " pick");
	if (cmd.resume_run > 0)
		n += (size_t)snprintf(out + n, outlen - n, " resume=%lld",
		    cmd.resume_run);
	if (cmd.output != NULL)
		n += (size_t)snprintf(out + n, outlen - n, " output=%s",
		    cmd.output);
	if (cmd.forward_to != NULL)
		n += (size_t)snprintf(out + n, outlen - n, " forward=%s",
		    cmd.forward_to);
	if (cmd.exec != NULL)
		n += (size_t)snprintf(out + n, outlen - n, " exec=%s", cmd.exec);
	(void)snprintf(out + n, outlen - n, "%s%s", cmd.help ? " help" : "",
	    cmd.json ? " json" : "");
	free(js);
	free(rjs);
	cli_cmd_done(&cmd);
	free(copy);
	return 0;
}

TEST(cmd_find)
{
	static const struct {
		const char *spec;
		int used;
		enum cli_cmd_kind kind;
	} cases[] = {
	    {"runs|watch|1", 2, CLI_CMD_WATCH},
	    {"run|watch", 2, CLI_CMD_WATCH},
	    {"runs|download|1|f", 2, CLI_CMD_DOWNLOAD},
	    {"mate|task|hi", 2, CLI_CMD_MATE_TASK},
	    {"agent|t|hi", 2, CLI_CMD_MATE_TASK},
	    {"teammates|chat", 2, CLI_CMD_MATE_CHAT},
	    {"mate|ch", 2, CLI_CMD_MATE_CHAT},
	    {"webhook|listen", 2, CLI_CMD_LISTEN},
	    {"webhooks|replay|3", 2, CLI_CMD_REPLAY},
	    {"auth|login", 2, CLI_CMD_LOGIN},
	    {"auth|status", 2, CLI_CMD_AUTH_STATUS},
	    {"auth|logout", 2, CLI_CMD_LOGOUT},
	    {"cache|stats", 2, CLI_CMD_CACHE_STATS},
	    {"cache|clear", 2, CLI_CMD_CACHE_CLEAR},
	    {"audit", 1, CLI_CMD_AUDIT},
	    {"audit|--uid|0", 1, CLI_CMD_AUDIT},
	    {"audit|list|--limit|3", 2, CLI_CMD_AUDIT},
	    /* The method table's commands stay its own. */
	    {"runs|create|hi", 0, CLI_CMD_NONE},
	    {"runs|stream|1", 0, CLI_CMD_NONE},
	    {"runs|download-file|1|f", 0, CLI_CMD_NONE},
	    {"tasks|run|5", 0, CLI_CMD_NONE},
	    {"webhooks|list", 0, CLI_CMD_NONE},
	    {"webhooks|ack|ci|3", 0, CLI_CMD_NONE},
	    {"mate|list", 0, CLI_CMD_NONE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *copy = strdup(cases[i].spec), *argv[MAXARGS];
		char *save = NULL, *tok;
		enum cli_cmd_kind kind = CLI_CMD_NONE;
		int argc = 0, used;

		for (tok = strtok_r(copy, "|", &save); tok != NULL;
		     tok = strtok_r(NULL, "|", &save))
			argv[argc++] = tok;
		used = cli_cmd_find(argc, argv, &kind);
		free(copy);
		if (used != cases[i].used || kind != cases[i].kind)
			T_FAIL("%s: used %d kind %d, want %d %d",
			    cases[i].spec, used, (int)kind, cases[i].used,
			    (int)cases[i].kind);
	}
	ASSERT_STREQ(cli_cmd_words(CLI_CMD_MATE_CHAT), "mate chat");
}

TEST(cmd_runs_and_mates)
{
	char out[512], err[256];

	ASSERT_EQ(cmd_argv("runs|watch|42|--after-seq|7|--text-only", out,
	              sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs watch: runs.stream {\"after_seq\":7,\"text_only\":true,"
	    "\"run_id\":42}");
	ASSERT_EQ(cmd_argv("runs|download|42|report.csv|-o|out.csv|--json",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "runs download: runs.download_file {\"run_id\":42,"
	    "\"filename\":\"report.csv\"} output=out.csv json");
	ASSERT_EQ(cmd_argv("runs|download|42", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "missing FILENAME (argument 2, or --filename)");
	/* mate task [ID] MESSAGE: one word is the message. */
	ASSERT_EQ(cmd_argv("mate|task|3|hello", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "mate task: runs.create {\"teammate_id\":3,\"message\":"
	    "\"hello\"}");
	ASSERT_EQ(cmd_argv("mate|task|hello|--tools|gmail,slack|--text-only",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "mate task: runs.create {\"tools\":[\"gmail\",\"slack\"],"
	    "\"text_only\":true,\"message\":\"hello\"} pick");
	ASSERT_EQ(cmd_argv("agent|t|--teammate-id|4|x", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "mate task: runs.create {\"teammate_id\":4,\"message\":\"x\"}");
	ASSERT_EQ(cmd_argv("mate|task|4|--message|hi", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "mate task: runs.create {\"message\":\"hi\",\"teammate_id\":4}");
	/* A boolean's "false" is its value, not a positional. */
	ASSERT_EQ(cmd_argv("mate|task|--memory|false|7|go", out, sizeof(out),
	              err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "mate task: runs.create {\"memory\":false,\"teammate_id\":7,"
	    "\"message\":\"go\"}");
	ASSERT_EQ(cmd_argv("mate|task|--help", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "mate task: runs.create {} pick help");
	ASSERT_EQ(cmd_argv("mate|task", out, sizeof(out), err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "missing MESSAGE (mate task [ID] MESSAGE)");
	ASSERT_EQ(cmd_argv("mate|task|1|2|3", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "too many arguments for mate task: \"3\"");
	ASSERT_EQ(cmd_argv("mate|task|3|--teammate-id|4|hi", out, sizeof(out),
	              err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "teammate given twice: \"3\" and --teammate-id");
	ASSERT_EQ(cmd_argv("mate|task|3|hi|--bogus", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "unknown option --bogus for runs.create (see m8tes runs "
	    "create --help)");
	/* mate chat [ID]: options for both runs.create and runs.reply. */
	ASSERT_EQ(cmd_argv("mate|chat", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "mate chat: runs.create {} reply={} pick");
	ASSERT_EQ(cmd_argv("mate|chat|5|--tools|a|--human-in-the-loop|--model|"
	                   "opus|--resume|9",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "mate chat: runs.create {\"tools\":[\"a\"],"
	    "\"human_in_the_loop\":true,\"model\":\"opus\","
	    "\"teammate_id\":5} reply={\"tools\":[\"a\"],"
	    "\"human_in_the_loop\":true} resume=9");
	ASSERT_EQ(cmd_argv("mate|chat|--message|x", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "mate chat reads its messages from stdin, not --message");
	ASSERT_EQ(cmd_argv("mate|chat|1|2", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "too many arguments for mate chat: \"2\"");
	ASSERT_EQ(cmd_argv("mate|chat|--resume|abc", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "--resume wants a run id, not \"abc\"");
}

TEST(cmd_webhooks_and_local)
{
	char out[512], err[256];

	ASSERT_EQ(cmd_argv("webhooks|listen|--events|run.completed,run.failed|"
	                   "--run-id|4|--after-seq|10|--consumer|ci|"
	                   "--forward-to|http://127.0.0.1:3000/hook|--exec|cat",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "webhooks listen: webhooks.listen {\"events\":["
	    "\"run.completed\",\"run.failed\"],\"run_id\":4,\"after_seq\":10,"
	    "\"consumer\":\"ci\"} forward=http://127.0.0.1:3000/hook "
	    "exec=cat");
	ASSERT_EQ(cmd_argv("webhooks|listen|--forward-to=https://x/", out,
	              sizeof(out), err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "https is not supported (no TLS here): forward to a local "
	    "http:// URL");
	ASSERT_EQ(cmd_argv("webhooks|listen|--exec", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "option --exec needs a value");
	ASSERT_EQ(cmd_argv("webhooks|listen|--bogus", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "unknown option --bogus for webhooks.listen (see m8tes "
	    "webhooks listen --help)");
	/* replay: exactly one of SEQ, --since, --from [--to]. */
	ASSERT_EQ(cmd_argv("webhooks|replay|12", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "webhooks replay: webhooks.replay {\"seq\":12}");
	ASSERT_EQ(cmd_argv("webhooks|replay|--since|2h", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "webhooks replay: webhooks.replay {\"since\":92800}");
	ASSERT_EQ(cmd_argv("webhooks|replay|--from|3|--to=9", out, sizeof(out),
	              err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "webhooks replay: webhooks.replay {\"from_seq\":3,"
	    "\"to_seq\":9}");
	ASSERT_EQ(cmd_argv("webhooks|replay|12|--since|1d", out, sizeof(out),
	              err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "webhooks replay wants one of SEQ, --since TIME or --from SEQ "
	    "[--to SEQ]");
	ASSERT_EQ(cmd_argv("webhooks|replay|--to|5", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_EQ(cmd_argv("webhooks|replay|0", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "SEQ must be a positive integer, not \"0\"");
	ASSERT_EQ(cmd_argv("webhooks|replay|--since|soon", out, sizeof(out),
	              err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "--since wants Unix seconds, 10m, 2h, 1d or YYYY-MM-DD, not "
	    "\"soon\"");
	ASSERT_EQ(cmd_argv("webhooks|replay|1|2", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "too many arguments: \"2\" for webhooks replay");
	ASSERT_EQ(cmd_argv("webhooks|replay|--help", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "webhooks replay: webhooks.replay {} help");
	/* The key never comes from the command line. */
	ASSERT_EQ(cmd_argv("auth|login", out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out, "auth login: auth.login {}");
	ASSERT_EQ(cmd_argv("auth|login|m8_secret", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "auth login takes no arguments: it reads the key from the "
	    "terminal, or from stdin");
	ASSERT_EQ(cmd_argv("auth|login|--api-key=m8_secret", out, sizeof(out),
	              err, sizeof(err)),
	    -EINVAL);
	ASSERT_EQ(cmd_argv("auth|status|--json", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "auth status: auth.status {} json");
	ASSERT_EQ(cmd_argv("cache|clear|--resource|teammates|--prefix|"
	                   "/agents/7",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "cache clear: cache.clear {\"resource\":\"teammates\","
	    "\"prefix\":\"/agents/7\"}");
	ASSERT_EQ(cmd_argv("cache|stats|x", out, sizeof(out), err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "too many arguments for cache.stats: \"x\" (see m8tes cache "
	    "stats --help)");
	ASSERT_EQ(cmd_argv("audit|--uid|1000|--method|runs.*|--limit|5|"
	                   "--since|10m",
	              out, sizeof(out), err, sizeof(err)),
	    0);
	ASSERT_STREQ(out,
	    "audit: audit.list {\"uid\":1000,\"method\":\"runs.*\","
	    "\"limit\":5,\"since\":99400}");
	ASSERT_EQ(cmd_argv("audit|list|--limit|2", out, sizeof(out), err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(out, "audit: audit.list {\"limit\":2}");
}

TEST(since_parse)
{
	static const struct {
		const char *text;
		long long now, want; /* want < 0: -EINVAL */
	} cases[] = {
	    {"1700000000", 5, 1700000000},
	    {"30s", 100000, 99970},
	    {"10m", 100000, 99400},
	    {"2h", 100000, 92800},
	    {"1d", 100000, 13600},
	    {"1w", 1000000, 395200},
	    {"2025-01-31", 0, 1738281600},
	    {"2025-01-31T09:00:00Z", 0, 1738314000},
	    {"2d", 100000, -1}, /* before 1970 */
	    {"0", 100000, -1},
	    {"", 100000, -1},
	    {"m", 100000, -1},
	    {"10x", 100000, -1},
	    {"-5m", 100000, -1},
	    {"1.5h", 100000, -1},
	    {"99999999999999999999m", 100000, -1},
	    {"2025-13-01", 0, -1},
	    {"2025-01-31T09:00", 0, -1},
	    {"yesterday", 0, -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long v = -7;
		int r = cli_since_parse(cases[i].text, cases[i].now, &v);

		if (cases[i].want < 0 ? r != -EINVAL
		                      : r != 0 || v != cases[i].want)
			T_FAIL("\"%s\": r %d v %lld, want %lld", cases[i].text,
			    r, v, cases[i].want);
	}
}

TEST(http_url_and_request)
{
	struct cli_http_header h[2] = {{"X-M8tes-Event", "run.completed"},
	    {"X-M8tes-Seq", "12"}};
	struct cli_url u;
	char err[256], *req;
	size_t len;

	ASSERT_EQ(cli_http_url_parse("http://127.0.0.1:3000/hook?x=1#frag", &u,
	              err, sizeof(err)),
	    0);
	ASSERT_STREQ(u.host, "127.0.0.1");
	ASSERT_STREQ(u.port, "3000");
	ASSERT_STREQ(u.path, "/hook?x=1");
	ASSERT_EQ(u.ipv6, 0);
	ASSERT_EQ(cli_http_request(&u, "application/json", h, 2, "{\"a\":1}",
	              7, &req, &len),
	    0);
	ASSERT_STREQ(req,
	    "POST /hook?x=1 HTTP/1.1\r\n"
	    "Host: 127.0.0.1:3000\r\n"
	    "User-Agent: m8tes/" M8TESD_VERSION "\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 7\r\n"
	    "Connection: close\r\n"
	    "X-M8tes-Event: run.completed\r\n"
	    "X-M8tes-Seq: 12\r\n"
	    "\r\n"
	    "{\"a\":1}");
	ASSERT_EQ(len, strlen(req));
	free(req);
	ASSERT_EQ(cli_http_url_parse("HTTP://localhost", &u, err, sizeof(err)),
	    0);
	ASSERT_STREQ(u.port, "80");
	ASSERT_STREQ(u.path, "/");
	ASSERT_EQ(cli_http_request(&u, "text/plain", NULL, 0, "", 0, &req,
	              &len),
	    0);
	ASSERT_STREQ(req,
	    "POST / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: m8tes/" M8TESD_VERSION
	    "\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
	    "Connection: close\r\n\r\n");
	free(req);
	ASSERT_EQ(cli_http_url_parse("http://[::1]:8080?q", &u, err,
	              sizeof(err)),
	    0);
	ASSERT_STREQ(u.host, "::1");
	ASSERT_STREQ(u.path, "/?q");
	ASSERT_EQ(u.ipv6, 1);
	ASSERT_EQ(cli_http_request(&u, "a/b", NULL, 0, "", 0, &req, &len), 0);
	ASSERT(strstr(req, "\r\nHost: [::1]:8080\r\n") != NULL);
	free(req);
	/* Headers cannot smuggle lines. */
	h[0].value = "x\r\nEvil: 1";
	ASSERT_EQ(cli_http_request(&u, "a/b", h, 1, "", 0, &req, &len),
	    -EINVAL);
	h[0] = (struct cli_http_header){"Bad:Name", "v"};
	ASSERT_EQ(cli_http_request(&u, "a/b", h, 1, "", 0, &req, &len),
	    -EINVAL);
	/* Refused URLs, each with its reason. */
	{
		static const struct {
			const char *url, *err;
		} bad[] = {
		    {"https://x/", "https is not supported (no TLS here): "
		                   "forward to a local http:// URL"},
		    {"ftp://x", "URL must start with http://, not \"ftp://x\""},
		    {"http://", "URL: empty host"},
		    {"http://:80/", "URL: empty host"},
		    {"http://h:0/", "URL: bad port"},
		    {"http://h:65536", "URL: bad port"},
		    {"http://h:8a", "URL: bad port"},
		    {"http://h:/", "URL: bad port"},
		    {"http://u@h/", "URL with user info"},
		    {"http://h/a b", "URL with a space or control character"},
		    {"http://h/\r\nX: y", "URL with a space or control "
		                         "character"},
		    {"http://[::1", "URL: unclosed ["},
		    {"http://[::1]x/", "URL: junk after ]"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			err[0] = '\0';
			if (cli_http_url_parse(bad[i].url, &u, err,
			        sizeof(err)) != -EINVAL ||
			    strcmp(err, bad[i].err) != 0)
				T_FAIL("%s: \"%s\"", bad[i].url, err);
		}
	}
}

TEST(http_status_parse)
{
	static const struct {
		const char *head;
		int r, status;
	} cases[] = {
	    {"HTTP/1.1 200 OK\r\n", 1, 200},
	    {"HTTP/1.0 404 Not Found\r\nX: y\r\n", 1, 404},
	    {"HTTP/1.1 204\n", 1, 204},
	    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n", 1, 201},
	    {"HTTP/1.1 100 Continue\r\n\r\n", 0, 0},
	    {"HTTP/1.1 100 Continue\r\n", 0, 0},
	    {"HTTP/1.1 204", 0, 0},
	    {"HTT", 0, 0},
	    {"", 0, 0},
	    {"SSH-2.0-OpenSSH\r\n", -EBADMSG, 0},
	    {"HTTP/2 200\r\n", -EBADMSG, 0},
	    {"HTTP/1.1 2x0 OK\r\n", -EBADMSG, 0},
	    {"HTTP/1.1 099 x\r\n", -EBADMSG, 0},
	    {"HTTP/1.1 2000\r\n", -EBADMSG, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int status = 0;
		int r = cli_http_status_parse(cases[i].head,
		    strlen(cases[i].head), &status);

		if (r != cases[i].r || (r == 1 && status != cases[i].status))
			T_FAIL("case %zu: r %d status %d", i, r, status);
	}
}

/* A TCP listener on 127.0.0.1; its port in *ret_port. */
static int
tcp_listener(int *ret_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

/* The child side: reads one request, checks it, answers. */
static void
http_peer(int lfd)
{
	char buf[4096];
	size_t len = 0;
	int c = accept(lfd, NULL, NULL);

	if (c < 0)
		_exit(2);
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n{\"k\":true}") != NULL)
			break;
	}
	buf[len] = '\0';
	if (strncmp(buf, "POST /in HTTP/1.1\r\n", 19) != 0 ||
	    strstr(buf, "\r\nContent-Length: 10\r\n") == NULL)
		_exit(3);
	peer_write(c,
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n"
	    "Content-Length: 0\r\n\r\n");
	(void)close(c);
	_exit(0);
}

TEST(http_post_local)
{
	struct cli_url u;
	char url[64], err[128], *req;
	size_t len;
	int lfd, port, status = 0;
	pid_t pid;

	lfd = tcp_listener(&port);
	ASSERT(lfd >= 0);
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/in", port);
	ASSERT_EQ(cli_http_url_parse(url, &u, err, sizeof(err)), 0);
	ASSERT_EQ(cli_http_request(&u, "application/json", NULL, 0,
	              "{\"k\":true}", 10, &req, &len),
	    0);
	pid = fork();
	if (pid == 0)
		http_peer(lfd);
	ASSERT_EQ(cli_http_post(&u, req, len, 5000, &status), 0);
	ASSERT_EQ(status, 202);
	ASSERT_EQ(reap(pid), 0);
	/* Nobody answers: the deadline ends the wait. */
	ASSERT_EQ(cli_http_post(&u, req, len, 200, &status), -ETIMEDOUT);
	(void)close(lfd);
	/* Nobody listens. */
	ASSERT_EQ(cli_http_post(&u, req, len, 1000, &status), -ECONNREFUSED);
	free(req);
}

/* Feeds event objects (JSON texts) to the printer o. */
static void
feed(struct cli_out *o, const char *const *events, size_t n)
{
	struct m8c_event ev = {.id = 1};

	for (size_t i = 0; i < n; i++) {
		cJSON *e = cJSON_Parse(events[i]);

		ev.event = e;
		ev.line = events[i];
		ev.len = strlen(events[i]);
		(void)cli_out_event_cb(&ev, o);
		cJSON_Delete(e);
	}
}

TEST(run_printer)
{
	const char *events[] = {
	    "{\"type\":\"metadata\",\"payload\":{\"run_id\":7}}",
	    "{\"type\":\"reasoning-delta\",\"delta\":\"hmm\"}",
	    "{\"type\":\"text-delta\",\"delta\":\"Checking\"}",
	    "{\"type\":\"tool-call-start\",\"toolName\":\"gmail\","
	    "\"toolCallId\":\"t1\"}",
	    "{\"type\":\"tool-call-delta\",\"delta\":\"{}\"}",
	    "{\"type\":\"tool-result-end\",\"toolCallId\":\"t1\","
	    "\"result\":{\"status\":\"sent\"}}",
	    NULL, /* a long string result, below */
	    "{\"type\":\"tool-result-end\",\"result\":\"two\\nlines\"}",
	    "{\"type\":\"text-delta\",\"delta\":\"Done.\"}",
	    "{\"type\":\"error\",\"error\":\"boom\"}",
	    "{\"type\":\"sdk_error\",\"error\":\"died\"}",
	    "{\"type\":\"rate_limit\",\"message\":\"slow\"}",
	    "{\"type\":\"done\",\"stop_reason\":\"end_turn\"}",
	};
	char longres[256], want[512], text[1024], etext[512];
	struct cli_out o = {.json = false};
	char *t = NULL, *e = NULL;
	size_t len = 0, elen = 0;

	/* "x" * 150 plus a 3-byte character at the cut. */
	(void)snprintf(longres, sizeof(longres),
	    "{\"type\":\"tool-result-end\",\"result\":\"%.99s\xE2\x82\xAC%s\"}",
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	    "yyyyyyyyyy");
	events[6] = longres;
	o.f = open_memstream(&t, &len);
	o.err = open_memstream(&e, &elen);
	feed(&o, events, sizeof(events) / sizeof(events[0]));
	take(o.f, &t, text, sizeof(text));
	take(o.err, &e, etext, sizeof(etext));
	(void)snprintf(want, sizeof(want),
	    "Checking\n"
	    "  gmail\n"
	    "  > {\"status\":\"sent\"}\n"
	    "  > %.99s\xE2\x82\xAC\n"
	    "  > two lines\n"
	    "Done.\n"
	    "  end_turn (run 7)\n",
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	ASSERT_STREQ(text, want);
	ASSERT_STREQ(etext,
	    "m8tes: run error: boom\n"
	    "m8tes: run failed: sdk_error: died\n");
	ASSERT_EQ(o.run_id, 7);
	ASSERT_EQ(o.errors, 2);
	ASSERT(o.stop_shown);
}

TEST(run_printer_hints)
{
	const char *events[] = {
	    "{\"type\":\"metadata\",\"payload\":{\"run_id\":\"7\"}}",
	    "{\"type\":\"text-delta\",\"delta\":\"Let me send it\"}",
	    "{\"type\":\"permission_request\",\"request_id\":\"req_1\","
	    "\"tool_name\":\"gmail\",\"tool_input\":{\"to\":\"a@b\"},"
	    "\"display_name\":\"Send an email\"}",
	    "{\"type\":\"awaiting_approval\",\"request_id\":\"req_1\"}",
	    "{\"type\":\"permission_request\",\"request_id\":\"req_2\","
	    "\"tool_name\":\"AskUserQuestion\",\"tool_input\":{\"questions\":"
	    "[{\"question\":\"What's the format?\",\"options\":[{\"label\":"
	    "\"CSV\"},{\"label\":\"PDF\"}]}]}}",
	    "{\"type\":\"awaiting_approval\",\"request_id\":\"req_3\"}",
	    "{\"type\":\"cancelled\"}",
	};
	struct cli_out o = {.json = false};
	char text[512], etext[1024];
	char *t = NULL, *e = NULL;
	size_t len = 0, elen = 0;

	/* No terminal: each request once, with the command answering it. */
	o.f = open_memstream(&t, &len);
	o.err = open_memstream(&e, &elen);
	feed(&o, events, sizeof(events) / sizeof(events[0]));
	take(o.f, &t, text, sizeof(text));
	take(o.err, &e, etext, sizeof(etext));
	ASSERT_STREQ(text, "Let me send it\n  cancelled (run 7)\n");
	ASSERT_STREQ(etext,
	    "m8tes: run 7 asks to use gmail (Send an email)\n"
	    "m8tes: answer with: m8tes runs approve 7 'req_1' allow   "
	    "(or deny)\n"
	    "m8tes: run 7 asks: What's the format? [CSV, PDF]\n"
	    "m8tes: answer with: m8tes runs answer 7 "
	    "'{\"What'\\''s the format?\":\"CSV\"}' --request-id 'req_2'\n"
	    "m8tes: run 7 is awaiting approval; see: m8tes runs "
	    "permissions 7\n");
	/* JSON lines on stdout, the hints still on stderr. */
	o = (struct cli_out){.json = true};
	o.f = open_memstream(&t, &len);
	o.err = open_memstream(&e, &elen);
	feed(&o, events, 3);
	take(o.f, &t, text, sizeof(text));
	take(o.err, &e, etext, sizeof(etext));
	ASSERT(strncmp(text, events[0], strlen(events[0])) == 0);
	ASSERT(strstr(etext, "m8tes runs approve 7 'req_1' allow") != NULL);
	/* With a prompt coming, no hint. */
	o = (struct cli_out){.prompts = true};
	o.f = open_memstream(&t, &len);
	o.err = open_memstream(&e, &elen);
	feed(&o, events, 4);
	take(o.f, &t, text, sizeof(text));
	take(o.err, &e, etext, sizeof(etext));
	ASSERT_STREQ(etext, "");
	ASSERT_STREQ(o.hinted, "req_1");
}

/* Runs cli_hitl_ask on req with input in; the prompt text into shown. */
static int
ask(const char *req, const char *in, char *shown, size_t shownlen,
    char *result, size_t resultlen)
{
	cJSON *r = cJSON_Parse(req), *params = NULL;
	const char *method = NULL;
	FILE *fin, *fout;
	char *t = NULL, *js;
	size_t len = 0;
	int ret;

	fin = in[0] != '\0' ? fmemopen((void *)(uintptr_t)in, strlen(in), "r")
	                    : fopen("/dev/null", "r");
	fout = open_memstream(&t, &len);
	ret = cli_hitl_ask(r, fin, fout, &method, &params);
	(void)fclose(fin);
	take(fout, &t, shown, shownlen);
	js = params != NULL ? cJSON_PrintUnformatted(params) : NULL;
	(void)snprintf(result, resultlen, "%s %s", method != NULL ? method : "-",
	    js != NULL ? js : "-");
	free(js);
	cJSON_Delete(params);
	cJSON_Delete(r);
	return ret;
}

TEST(hitl_prompts)
{
	static const char approval[] =
	    "{\"request_id\":\"req_1\",\"tool_name\":\"gmail\","
	    "\"status\":\"pending\",\"display_name\":\"Send an email\","
	    "\"tool_input\":{\"to\":\"ops@example.com\"},"
	    "\"consequence\":\"Sends an email\",\"prose\":null}";
	static const char question[] =
	    "{\"request_id\":\"req_2\",\"tool_name\":\"AskUserQuestion\","
	    "\"tool_input\":{\"questions\":[{\"question\":\"Which format?\","
	    "\"header\":\"Format\",\"options\":[{\"label\":\"CSV\"},"
	    "{\"label\":\"PDF\"}]}]}}";
	static const char multi[] =
	    "{\"request_id\":\"req_3\",\"tool_name\":\"AskUserQuestion\","
	    "\"tool_input\":{\"questions\":[{\"question\":\"Which?\","
	    "\"multiSelect\":true,\"options\":[{\"label\":\"A\"},"
	    "{\"label\":\"B\"},{\"label\":\"C\"}]}]}}";
	char shown[1024], res[512];

	ASSERT_EQ(ask(approval, "y\n", shown, sizeof(shown), res, sizeof(res)),
	    0);
	ASSERT_STREQ(shown,
	    "  ? gmail: Send an email\n"
	    "    input: {\"to\":\"ops@example.com\"}\n"
	    "    consequence: Sends an email\n"
	    "  allow? [y/N] ");
	ASSERT_STREQ(res,
	    "runs.approve {\"request_id\":\"req_1\",\"decision\":\"allow\"}");
	/* The default is no; unclear answers are asked again. */
	ASSERT_EQ(ask(approval, "\n", shown, sizeof(shown), res, sizeof(res)),
	    0);
	ASSERT_STREQ(res,
	    "runs.approve {\"request_id\":\"req_1\",\"decision\":\"deny\"}");
	ASSERT_EQ(ask(approval, "maybe\n YES \n", shown, sizeof(shown), res,
	              sizeof(res)),
	    0);
	ASSERT(strstr(shown, "  please answer y or n\n  allow? [y/N] ") !=
	    NULL);
	ASSERT_STREQ(res,
	    "runs.approve {\"request_id\":\"req_1\",\"decision\":\"allow\"}");
	ASSERT_EQ(ask(approval, "", shown, sizeof(shown), res, sizeof(res)),
	    -ENODATA);
	ASSERT_EQ(ask(approval, "a\nb\nc\nd\ne\ny\n", shown, sizeof(shown), res,
	              sizeof(res)),
	    -ENODATA);
	/* Questions: a number, a label, or the user's own words. */
	ASSERT_EQ(ask(question, "2\n", shown, sizeof(shown), res, sizeof(res)),
	    0);
	ASSERT_STREQ(shown,
	    "  ? Format:\n"
	    "    Which format?\n"
	    "    1) CSV\n"
	    "    2) PDF\n"
	    "  choice [1-2]: ");
	ASSERT_STREQ(res,
	    "runs.answer {\"request_id\":\"req_2\",\"answers\":{"
	    "\"Which format?\":\"PDF\"}}");
	ASSERT_EQ(ask(question, "csv\n", shown, sizeof(shown), res,
	              sizeof(res)),
	    0);
	ASSERT_STREQ(res,
	    "runs.answer {\"request_id\":\"req_2\",\"answers\":{"
	    "\"Which format?\":\"CSV\"}}");
	ASSERT_EQ(ask(question, "\n9\nMarkdown, please\n", shown,
	              sizeof(shown), res, sizeof(res)),
	    0);
	ASSERT(strstr(shown, "  no such option\n") != NULL);
	ASSERT_STREQ(res,
	    "runs.answer {\"request_id\":\"req_2\",\"answers\":{"
	    "\"Which format?\":\"Markdown, please\"}}");
	ASSERT_EQ(ask(multi, "1, 3\n", shown, sizeof(shown), res, sizeof(res)),
	    0);
	ASSERT(strstr(shown, "  choices, comma-separated [1-3]: ") != NULL);
	ASSERT_STREQ(res,
	    "runs.answer {\"request_id\":\"req_3\",\"answers\":{"
	    "\"Which?\":\"A, C\"}}");
	ASSERT_EQ(ask(question, "", shown, sizeof(shown), res, sizeof(res)),
	    -ENODATA);
	/* Not a request. */
	ASSERT_EQ(ask("{\"tool_name\":\"gmail\"}", "y\n", shown, sizeof(shown),
	              res, sizeof(res)),
	    -EBADMSG);
	ASSERT_EQ(ask("{\"request_id\":\"r\",\"tool_name\":\"AskUserQuestion\","
	              "\"tool_input\":{}}",
	              "1\n", shown, sizeof(shown), res, sizeof(res)),
	    -EBADMSG);
	{
		char *t = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&t, &len);

		cli_shell_quote(f, "it's");
		take(f, &t, shown, sizeof(shown));
		ASSERT_STREQ(shown, "'it'\\''s'");
	}
}

/* One chat step: "action method params" for line. */
static int
chat_step(struct cli_chat *ch, const char *line, char *out, size_t outlen)
{
	const char *method = NULL;
	cJSON *params = NULL;
	char *js;
	int r;

	r = cli_chat_next(ch, line, &method, &params);
	js = params != NULL ? cJSON_PrintUnformatted(params) : NULL;
	(void)snprintf(out, outlen, "%d %s %s", r, method != NULL ? method : "-",
	    js != NULL ? js : "-");
	free(js);
	cJSON_Delete(params);
	return r;
}

TEST(chat_state)
{
	cJSON *create = cJSON_Parse("{\"teammate_id\":3,\"tools\":[\"a\"]}");
	cJSON *reply = cJSON_Parse("{\"tools\":[\"a\"]}");
	struct cli_chat ch = {.create = create, .reply = reply};
	char out[512];

	/* The first line creates; until a run is known, every line does. */
	ASSERT_EQ(chat_step(&ch, "hello\n", out, sizeof(out)),
	    CLI_CHAT_CREATE);
	ASSERT_STREQ(out,
	    "1 runs.create {\"teammate_id\":3,\"tools\":[\"a\"],"
	    "\"message\":\"hello\"}");
	cli_chat_turn_done(&ch, 0);
	ASSERT_EQ(chat_step(&ch, "again", out, sizeof(out)), CLI_CHAT_CREATE);
	/* Then every line replies to that run. */
	cli_chat_turn_done(&ch, 42);
	ASSERT_EQ(chat_step(&ch, "  more  \r\n", out, sizeof(out)),
	    CLI_CHAT_REPLY);
	ASSERT_STREQ(out,
	    "2 runs.reply {\"tools\":[\"a\"],\"message\":\"more\","
	    "\"run_id\":42}");
	cli_chat_turn_done(&ch, 0);
	ASSERT_EQ(ch.run_id, 42);
	ASSERT_EQ(chat_step(&ch, "\n", out, sizeof(out)), CLI_CHAT_SKIP);
	ASSERT_EQ(chat_step(&ch, "   ", out, sizeof(out)), CLI_CHAT_SKIP);
	ASSERT_EQ(chat_step(&ch, "/help\n", out, sizeof(out)), CLI_CHAT_HELP);
	/* /new forgets the run; /resume picks one. */
	ASSERT_EQ(chat_step(&ch, "/new\n", out, sizeof(out)), CLI_CHAT_SKIP);
	ASSERT_EQ(ch.run_id, 0);
	ASSERT_EQ(chat_step(&ch, "x", out, sizeof(out)), CLI_CHAT_CREATE);
	ASSERT_EQ(chat_step(&ch, "/resume 9\n", out, sizeof(out)),
	    CLI_CHAT_SKIP);
	ASSERT_EQ(chat_step(&ch, "y", out, sizeof(out)), CLI_CHAT_REPLY);
	ASSERT_STREQ(out,
	    "2 runs.reply {\"tools\":[\"a\"],\"message\":\"y\",\"run_id\":9}");
	ASSERT_EQ(chat_step(&ch, "/resume\n", out, sizeof(out)), -EINVAL);
	ASSERT_EQ(chat_step(&ch, "/resume 9x\n", out, sizeof(out)), -EINVAL);
	ASSERT_EQ(ch.run_id, 9);
	/* Other slashes are messages. */
	ASSERT_EQ(chat_step(&ch, "/resumes are fun", out, sizeof(out)),
	    CLI_CHAT_REPLY);
	ASSERT_EQ(chat_step(&ch, "/exit\n", out, sizeof(out)), CLI_CHAT_QUIT);
	ASSERT_EQ(chat_step(&ch, " /quit ", out, sizeof(out)), CLI_CHAT_QUIT);
	ASSERT_EQ(chat_step(&ch, NULL, out, sizeof(out)), CLI_CHAT_QUIT);
	/* Without options: the message, and the run to reply to. */
	ch = (struct cli_chat){.run_id = 5};
	ASSERT_EQ(chat_step(&ch, "hi", out, sizeof(out)), CLI_CHAT_REPLY);
	ASSERT_STREQ(out, "2 runs.reply {\"message\":\"hi\",\"run_id\":5}");
	cJSON_Delete(create);
	cJSON_Delete(reply);
}

/* What the peer read so far, as one string. */
static void
peer_requests(int peer, char *buf, size_t len)
{
	size_t n = 0;

	for (int tries = 0; tries < 50 && n + 1 < len; tries++) {
		ssize_t r = recv(peer, buf + n, len - 1 - n, MSG_DONTWAIT);

		if (r > 0)
			n += (size_t)r;
		else
			break;
	}
	buf[n] = '\0';
}

TEST(run_stream_answers_hitl)
{
	struct m8c_reply reply = {0};
	struct cli_out o = {0};
	struct cli_run s;
	struct m8c_conn *c;
	char *t = NULL, *e = NULL, *p = NULL;
	size_t tl = 0, el = 0, pl = 0;
	char text[512], etext[256], ptext[512], reqs[1024];
	FILE *in;
	cJSON *params = cJSON_Parse("{\"message\":\"send it\"}");
	int peer, r;

	c = pair(&peer);
	ASSERT(c != NULL);
	/* Everything the daemon will say, in order: ids are predictable. */
	peer_write(peer,
	    "{\"id\":1,\"seq\":1,\"event\":{\"type\":\"metadata\","
	    "\"payload\":{\"run_id\":7}}}\n"
	    "{\"id\":1,\"seq\":2,\"event\":{\"type\":\"text-delta\","
	    "\"delta\":\"Hi\"}}\n"
	    "{\"id\":1,\"seq\":3,\"event\":{\"type\":\"permission_request\","
	    "\"request_id\":\"req_1\",\"tool_name\":\"gmail\"}}\n"
	    "{\"id\":1,\"seq\":4,\"event\":{\"type\":\"awaiting_approval\","
	    "\"request_id\":\"req_1\"}}\n"
	    "{\"id\":2,\"result\":[{\"request_id\":\"req_0\",\"tool_name\":"
	    "\"x\",\"status\":\"allowed\"},{\"request_id\":\"req_1\","
	    "\"tool_name\":\"gmail\",\"status\":\"pending\",\"tool_input\":"
	    "{\"to\":\"a@b\"},\"consequence\":\"Sends mail\"}]}\n"
	    "{\"id\":3,\"result\":{\"request_id\":\"req_1\",\"status\":"
	    "\"allowed\"}}\n"
	    "{\"id\":1,\"seq\":5,\"event\":{\"type\":\"tool-call-start\","
	    "\"toolName\":\"gmail\",\"toolCallId\":\"t1\"}}\n"
	    "{\"id\":1,\"seq\":6,\"event\":{\"type\":\"tool-result-end\","
	    "\"toolCallId\":\"t1\",\"result\":{\"status\":\"sent\"}}}\n"
	    "{\"id\":1,\"seq\":7,\"event\":{\"type\":\"done\","
	    "\"stop_reason\":\"end_turn\"}}\n"
	    "{\"id\":1,\"result\":{\"run_id\":7,\"text\":\"Hi\",\"errors\":[],"
	    "\"has_errors\":false,\"stop_reason\":\"end_turn\","
	    "\"finished\":true}}\n");
	o.f = open_memstream(&t, &tl);
	o.err = open_memstream(&e, &el);
	in = fmemopen((void *)(uintptr_t) "y\n", 2, "r");
	{
		FILE *pf = open_memstream(&p, &pl);

		cli_run_init(&s, c, &o, in, pf, 2000);
		r = cli_run_stream(&s, "runs.create", params, &reply);
		ASSERT_EQ(r, M8C_RESULT);
		ASSERT_EQ(cli_out_run_result(&o, reply.result), 0);
		take(pf, &p, ptext, sizeof(ptext));
	}
	(void)fclose(in);
	take(o.f, &t, text, sizeof(text));
	take(o.err, &e, etext, sizeof(etext));
	peer_requests(peer, reqs, sizeof(reqs));
	ASSERT_STREQ(reqs,
	    "{\"id\":1,\"method\":\"runs.create\",\"params\":{\"message\":"
	    "\"send it\"}}\n"
	    "{\"id\":2,\"method\":\"runs.permissions\",\"params\":{"
	    "\"run_id\":7}}\n"
	    "{\"id\":3,\"method\":\"runs.approve\",\"params\":{"
	    "\"request_id\":\"req_1\",\"decision\":\"allow\",\"run_id\":7}}"
	    "\n");
	ASSERT_STREQ(text,
	    "Hi\n  gmail\n  > {\"status\":\"sent\"}\n  end_turn (run 7)\n");
	ASSERT_STREQ(ptext,
	    "  ? gmail\n    input: {\"to\":\"a@b\"}\n"
	    "    consequence: Sends mail\n  allow? [y/N]   allowed\n");
	ASSERT_STREQ(etext, "");
	m8c_reply_done(&reply);
	cJSON_Delete(params);
	(void)close(peer);
	m8c_close(c);
}

TEST(run_stream_resumes_after_lag)
{
	struct m8c_reply reply = {0};
	struct cli_out o = {0};
	struct cli_run s;
	struct m8c_conn *c;
	char *t = NULL, *e = NULL;
	size_t tl = 0, el = 0;
	char text[256], etext[256], reqs[1024];
	cJSON *params = cJSON_Parse("{\"run_id\":7,\"text_only\":true}");
	int peer;

	c = pair(&peer);
	ASSERT(c != NULL);
	peer_write(peer,
	    "{\"id\":1,\"seq\":1,\"event\":{\"type\":\"metadata\","
	    "\"payload\":{\"run_id\":7}}}\n"
	    "{\"id\":1,\"seq\":2,\"event\":{\"type\":\"text-delta\","
	    "\"delta\":\"He\"}}\n"
	    "{\"id\":1,\"lagged\":{\"resume_after\":2}}\n"
	    "{\"id\":2,\"seq\":3,\"event\":{\"type\":\"text-delta\","
	    "\"delta\":\"llo\"}}\n"
	    "{\"id\":2,\"result\":{\"run_id\":7,\"text\":\"Hello\","
	    "\"errors\":[\"sdk_error: died\"],\"has_errors\":true,"
	    "\"stop_reason\":\"error\",\"finished\":true}}\n");
	o.f = open_memstream(&t, &tl);
	o.err = open_memstream(&e, &el);
	cli_run_init(&s, c, &o, NULL, NULL, 2000);
	ASSERT_EQ(cli_run_stream(&s, "runs.stream", params, &reply),
	    M8C_RESULT);
	ASSERT_EQ(s.resumes, 1);
	ASSERT_EQ(cli_out_run_result(&o, reply.result), 0);
	take(o.f, &t, text, sizeof(text));
	take(o.err, &e, etext, sizeof(etext));
	peer_requests(peer, reqs, sizeof(reqs));
	ASSERT_STREQ(reqs,
	    "{\"id\":1,\"method\":\"runs.stream\",\"params\":{\"run_id\":7,"
	    "\"text_only\":true}}\n"
	    "{\"id\":2,\"method\":\"runs.stream\",\"params\":{\"run_id\":7,"
	    "\"after_seq\":2,\"text_only\":true}}\n");
	/* No event showed the errors or the stop reason: the result does. */
	ASSERT_STREQ(text, "Hello\n  error (run 7)\n");
	ASSERT_STREQ(etext, "m8tes: run error: sdk_error: died\n");
	m8c_reply_done(&reply);
	/* An error reply ends the stream as it is. */
	peer_write(peer,
	    "{\"id\":3,\"error\":{\"code\":\"m8tes.conflict\",\"message\":"
	    "\"Run is not executing\",\"status\":409}}\n");
	ASSERT_EQ(cli_run_stream(&s, "runs.stream", params, &reply), M8C_ERROR);
	ASSERT_STREQ(reply.error.code, "m8tes.conflict");
	m8c_reply_done(&reply);
	cJSON_Delete(params);
	(void)close(peer);
	m8c_close(c);
}

/* A file holding text, open for reading at its start. */
static int
memfile(const char *text)
{
	char path[] = "/tmp/m8c_dl_XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	(void)unlink(path);
	write_all(fd, text, strlen(text));
	(void)lseek(fd, 0, SEEK_SET);
	return fd;
}

/* The contents of path, or "" when it does not exist. */
static void
slurp_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		(void)close(fd);
}

TEST(download_fd_and_fallbacks)
{
	cJSON *params = cJSON_Parse("{\"run_id\":42,\"filename\":\"r.csv\"}");
	char dir[] = "/tmp/m8c_dlt_XXXXXX", path[128], buf[256], reqs[1024];
	struct m8c_reply reply = {0};
	struct cli_dl d;
	struct m8c_conn *c;
	struct stat st;
	int peer, fd;

	ASSERT(mkdtemp(dir) != NULL);
	(void)snprintf(path, sizeof(path), "%s/out.csv", dir);
	c = pair(&peer);
	ASSERT(c != NULL);
	/* The descriptor rides on the result. */
	fd = memfile("a,b\n1,2\n");
	ASSERT(fd >= 0);
	ASSERT_EQ(send_fd(peer, fd,
	              "{\"id\":1,\"result\":{\"filename\":\"r.csv\","
	              "\"size\":8,\"content_type\":\"text/csv\","
	              "\"sha256\":\"x\",\"fd\":true}}\n"),
	    0);
	(void)close(fd);
	d = (struct cli_dl){.conn = c, .path = path, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), M8C_RESULT);
	ASSERT_EQ(d.via, CLI_DL_FD);
	ASSERT_EQ(d.size, 8);
	ASSERT_STREQ(d.saved, path);
	m8c_reply_done(&reply);
	slurp_file(path, buf, sizeof(buf));
	ASSERT_STREQ(buf, "a,b\n1,2\n");
	peer_requests(peer, reqs, sizeof(reqs));
	ASSERT_STREQ(reqs,
	    "{\"id\":1,\"method\":\"runs.download_file\",\"params\":{"
	    "\"run_id\":42,\"filename\":\"r.csv\",\"fd\":true}}\n");
	/* An older daemon: fd refused, then chunks. */
	peer_write(peer,
	    "{\"id\":2,\"error\":{\"code\":\"m8tesd.invalid_params\","
	    "\"message\":\"unknown parameter \\\"fd\\\"\"}}\n"
	    "{\"id\":3,\"seq\":1,\"event\":{\"type\":\"chunk\",\"offset\":0,"
	    "\"data_base64\":\"aGVs\"}}\n"
	    "{\"id\":3,\"seq\":2,\"event\":{\"type\":\"chunk\",\"offset\":3,"
	    "\"data_base64\":\"bG8=\"}}\n"
	    "{\"id\":3,\"result\":{\"filename\":\"r.csv\",\"size\":5}}\n");
	d = (struct cli_dl){.conn = c, .path = path, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), M8C_RESULT);
	ASSERT_EQ(d.via, CLI_DL_CHUNKS);
	m8c_reply_done(&reply);
	slurp_file(path, buf, sizeof(buf));
	ASSERT_STREQ(buf, "hello");
	/* Older still: both refused, the base64 result. */
	peer_write(peer,
	    "{\"id\":4,\"error\":{\"code\":\"m8tesd.invalid_params\","
	    "\"message\":\"x\"}}\n"
	    "{\"id\":5,\"error\":{\"code\":\"m8tesd.invalid_params\","
	    "\"message\":\"x\"}}\n"
	    "{\"id\":6,\"result\":{\"filename\":\"r.csv\",\"size\":3,"
	    "\"data_base64\":\"YWJj\"}}\n");
	d = (struct cli_dl){.conn = c, .path = path, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), M8C_RESULT);
	ASSERT_EQ(d.via, CLI_DL_BASE64);
	m8c_reply_done(&reply);
	slurp_file(path, buf, sizeof(buf));
	ASSERT_STREQ(buf, "abc");
	/* A short file fails and leaves the old one and no temporary. */
	fd = memfile("abc");
	ASSERT_EQ(send_fd(peer, fd,
	              "{\"id\":7,\"result\":{\"filename\":\"r.csv\","
	              "\"size\":9,\"fd\":true}}\n"),
	    0);
	(void)close(fd);
	d = (struct cli_dl){.conn = c, .path = path, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), -EBADMSG);
	ASSERT_STREQ(d.err, "size mismatch: got 3 bytes, m8tesd announced 9");
	slurp_file(path, buf, sizeof(buf));
	ASSERT_STREQ(buf, "abc");
	/* Other errors are the daemon's to report. */
	peer_write(peer,
	    "{\"id\":8,\"error\":{\"code\":\"m8tes.not_found\","
	    "\"message\":\"File not found\",\"status\":404}}\n");
	d = (struct cli_dl){.conn = c, .path = path, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), M8C_ERROR);
	ASSERT_STREQ(reply.error.code, "m8tes.not_found");
	m8c_reply_done(&reply);
	/* Without -o: FILENAME here, never replaced. */
	ASSERT_EQ(chdir(dir), 0);
	peer_write(peer,
	    "{\"id\":9,\"result\":{\"filename\":\"r.csv\",\"size\":1,"
	    "\"data_base64\":\"eA==\"}}\n");
	d = (struct cli_dl){.conn = c, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), M8C_RESULT);
	m8c_reply_done(&reply);
	ASSERT_STREQ(d.saved, "r.csv");
	ASSERT_EQ(stat("r.csv", &st), 0);
	ASSERT_EQ(st.st_size, 1);
	d = (struct cli_dl){.conn = c, .timeout_ms = 2000};
	ASSERT_EQ(cli_dl_fetch(&d, params, &reply), -EEXIST);
	ASSERT_STREQ(d.err, "r.csv: exists; give -o PATH to replace it");
	ASSERT_EQ(unlink("r.csv"), 0);
	ASSERT_EQ(chdir("/"), 0);
	/* Only out.csv is left: no temporary file anywhere. */
	ASSERT_EQ(unlink(path), 0);
	ASSERT_EQ(rmdir(dir), 0);
	cJSON_Delete(params);
	(void)close(peer);
	m8c_close(c);
}

TEST(progress_and_sizes)
{
	char buf[128];

	cli_dl_human(buf, sizeof(buf), 1023);
	ASSERT_STREQ(buf, "1023 B");
	cli_dl_human(buf, sizeof(buf), 1536);
	ASSERT_STREQ(buf, "1.5 KiB");
	cli_dl_human(buf, sizeof(buf), 5.0 * 1073741824);
	ASSERT_STREQ(buf, "5.0 GiB");
	cli_dl_progress_format(buf, sizeof(buf), "r.csv", 512, 1024, 1.0);
	ASSERT_STREQ(buf, "r.csv   50%  512 B / 1.0 KiB  512 B/s");
	cli_dl_progress_format(buf, sizeof(buf), "r.csv", 3 * 1048576, 0, 0);
	ASSERT_STREQ(buf, "r.csv    ?%  3.0 MiB / ?  -");
	cli_dl_progress_format(buf, sizeof(buf), "big", 2048, 1024, 2.0);
	ASSERT_STREQ(buf, "big  100%  2.0 KiB / 1.0 KiB  1.0 KiB/s");
}

TEST(listen_lines)
{
	cJSON *ev = cJSON_Parse(
	    "{\"type\":\"webhook\",\"seq\":12,\"webhook_id\":\"wh_1\","
	    "\"event\":\"run.completed\",\"run_id\":42,"
	    "\"received_at\":1738314000,\"replayed\":false,"
	    "\"payload\":{\"a\":1}}");
	cJSON *raw = cJSON_Parse(
	    "{\"type\":\"webhook\",\"seq\":13,\"webhook_id\":\"wh_2\","
	    "\"event\":null,\"run_id\":null,\"received_at\":1738314001,"
	    "\"replayed\":true,\"payload\":null,\"body\":\"a=b\"}");
	char out[256], *t = NULL, *body;
	const char *type;
	size_t len = 0;
	FILE *f;

	ASSERT_EQ(setenv("TZ", "UTC", 1), 0);
	tzset();
	f = open_memstream(&t, &len);
	cli_listen_line(f, ev);
	cli_listen_line(f, raw);
	take(f, &t, out, sizeof(out));
	ASSERT_STREQ(out,
	    "2025-01-31 09:00:00  #12  run.completed  run 42\n"
	    "2025-01-31 09:00:01  #13  -  run -  (replayed)\n");
	ASSERT_EQ(cli_listen_body(ev, &body, &len, &type), 0);
	ASSERT_STREQ(body, "{\"a\":1}");
	ASSERT_EQ(len, 7);
	ASSERT_STREQ(type, "application/json");
	free(body);
	ASSERT_EQ(cli_listen_body(raw, &body, &len, &type), 0);
	ASSERT_STREQ(body, "a=b");
	ASSERT_STREQ(type, "text/plain; charset=utf-8");
	free(body);
	cJSON_Delete(ev);
	cJSON_Delete(raw);
}

/* cli_local_read_key on a pipe holding text. */
static int
read_key(const char *text, char *buf, size_t len)
{
	int p[2], r;

	if (pipe(p) != 0)
		return -EIO;
	write_all(p[1], text, strlen(text));
	(void)close(p[1]);
	r = cli_local_read_key(p[0], NULL, buf, len);
	(void)close(p[0]);
	return r;
}

TEST(read_key)
{
	char key[16];

	ASSERT_EQ(read_key("  m8_abc \r\nrest\n", key, sizeof(key)), 6);
	ASSERT_STREQ(key, "m8_abc");
	ASSERT_EQ(read_key("m8_abc", key, sizeof(key)), 6);
	ASSERT_EQ(read_key(" \n", key, sizeof(key)), -ENODATA);
	ASSERT_EQ(read_key("", key, sizeof(key)), -ENODATA);
	ASSERT_EQ(read_key("m8_\x1b[2J\n", key, sizeof(key)), -EINVAL);
	/* The buffer holds nothing after a failure. */
	for (size_t i = 0; i < sizeof(key); i++)
		ASSERT_EQ(key[i], 0);
	ASSERT_EQ(read_key("0123456789abcdefXYZ\n", key, sizeof(key)),
	    -EMSGSIZE);
	ASSERT_EQ(key[0], 0);
}

TEST(audit_table)
{
	cJSON *res = cJSON_Parse(
	    "{\"data\":[{\"time_ms\":1738314000123,\"uid\":1000,\"pid\":4242,"
	    "\"comm\":\"m8tes\",\"method\":\"teammates.list\",\"status\":200,"
	    "\"duration_ms\":35},{\"time\":1738314060,\"uid\":0,\"pid\":7,"
	    "\"comm\":\"python3\",\"method\":\"runs.create\",\"status\":429,"
	    "\"duration_ms\":1200}]}");
	cJSON *none = cJSON_Parse("{\"data\":[]}");
	char out[512], *t = NULL;
	size_t len = 0;
	FILE *f;

	ASSERT_EQ(setenv("TZ", "UTC", 1), 0);
	tzset();
	f = open_memstream(&t, &len);
	cli_local_audit_table(f, res);
	cli_local_audit_table(f, none);
	take(f, &t, out, sizeof(out));
	ASSERT_STREQ(out,
	    "TIME                 UID   PID   COMM     METHOD          STATUS"
	    "  DURATION\n"
	    "2025-01-31 09:00:00  1000  4242  m8tes    teammates.list  200   "
	    "     35 ms\n"
	    "2025-01-31 09:01:00  0     7     python3  runs.create     429   "
	    "   1200 ms\n"
	    "(none)\n");
	cJSON_Delete(res);
	cJSON_Delete(none);
}

int
main(void)
{
	if (methods_init() < 0) {
		printf("methods_init failed\n");
		return 1;
	}
	RUN(find_method);
	RUN(positional_path_params);
	RUN(flags_typed);
	RUN(flag_errors);
	RUN(value_parse);
	RUN(kv_typing);
	RUN(call_args);
	RUN(socket_path);
	RUN(read_split_lines);
	RUN(read_overlong_line);
	RUN(interleaved_calls);
	RUN(final_kinds);
	RUN(raw_results);
	RUN(overlong_reply_fails_its_call);
	RUN(recv_fd);
	RUN(table_output);
	RUN(object_and_error_output);
	RUN(event_printer);
	RUN(base64);
	RUN(cmd_find);
	RUN(cmd_runs_and_mates);
	RUN(cmd_webhooks_and_local);
	RUN(since_parse);
	RUN(http_url_and_request);
	RUN(http_status_parse);
	RUN(http_post_local);
	RUN(run_printer);
	RUN(run_printer_hints);
	RUN(hitl_prompts);
	RUN(chat_state);
	RUN(run_stream_answers_hitl);
	RUN(run_stream_resumes_after_lag);
	RUN(download_fd_and_fallbacks);
	RUN(progress_and_sizes);
	RUN(listen_lines);
	RUN(read_key);
	RUN(audit_table);
	return t_done();
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of the client side that need no daemon: key=value typing and
 * argv -> method + params mapping against the real method table, the
 * bounded line reader and the routing of interleaved calls over a
 * socketpair with a scripted peer, descriptor passing, the socket path
 * resolver and the readable output.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_args.h"
#include "cli_out.h"
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
	ASSERT_STREQ(text, "Hello\n[gmail]\ndone\nmore\n");
	ASSERT_STREQ(etext, "m8tes: run error: boom\n");
	ASSERT(o.streamed_text);
	free(text);
	free(etext);
	/* JSON mode prints the line as received. */
	o = (struct cli_out){.json = true};
	o.f = open_memstream(&text, &len);
	ev.line = "{\"id\":1,\"seq\":3,\"event\":{}}";
	ev.len = strlen(ev.line);
	ASSERT_EQ(cli_out_event_cb(&ev, &o), 0);
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
	RUN(overlong_reply_fails_its_call);
	RUN(recv_fd);
	RUN(table_output);
	RUN(object_and_error_output);
	RUN(event_printer);
	RUN(base64);
	return t_done();
}

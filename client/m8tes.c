/*
 * SPDX-License-Identifier: MIT
 *
 * m8tes: the command-line client of m8tesd. This file owns the global
 * options, the choice of command, the one call of a plain method, and the
 * exit status; cli_args.c turns the words into a method and params,
 * cli_out.c prints what comes back, cli_help.c explains it all. Commands
 * that are more than one call (cli_cmd.c) run in cli_run.c, cli_chat.c,
 * cli_listen.c, cli_dl.c and cli_local.c. Only main() exits.
 *
 *   m8tes [--socket PATH] [--json] [--timeout SEC] COMMAND ...
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_args.h"
#include "cli_chat.h"
#include "cli_cmd.h"
#include "cli_common.h"
#include "cli_dl.h"
#include "cli_help.h"
#include "cli_listen.h"
#include "cli_local.h"
#include "cli_out.h"
#include "cli_run.h"
#include "codec.h"
#include "libm8tes.h"
#include "methods.h"

static int parse_timeout(const char *s, int *ret_ms);
static int set_global(struct cli_opts *o, const char *opt, const char *v);
static int parse_globals(int argc, char *argv[], struct cli_opts *o,
    int *ret_index);
static bool streams(const struct cli_request *req);
static int show_result(const struct cli_opts *o,
    const struct cli_request *req, struct cli_out *out, const cJSON *result);
static int run(const struct cli_opts *o, struct cli_request *req);
static int cmd_help(int argc, char *argv[]);
static int cmd_describe(const struct cli_opts *o, int argc, char *argv[]);
static int cmd_method(const struct cli_opts *o, const struct method *m,
    int argc, char *argv[]);
static int cmd_call(const struct cli_opts *o, int argc, char *argv[]);
static int cmd_ours(const struct cli_opts *o, enum cli_cmd_kind kind,
    int argc, char *argv[]);

static int
parse_timeout(const char *s, int *ret_ms)
{
	char *end;
	double sec;

	errno = 0;
	sec = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(sec) ||
	    sec <= 0 || sec * 1000 > INT_MAX)
		return -EINVAL;
	*ret_ms = (int)ceil(sec * 1000);
	return 0;
}

/* Sets --socket or --timeout. Returns -1, or the usage error's status. */
static int
set_global(struct cli_opts *o, const char *opt, const char *v)
{
	if (strcmp(opt, "--socket") == 0) {
		if (v[0] == '\0')
			return cli_usage_error("--socket needs a path", "", "");
		o->socket = v;
		return -1;
	}
	if (parse_timeout(v, &o->timeout_ms) < 0)
		return cli_usage_error("--timeout wants seconds > 0, not \"", v,
		    "\"");
	return -1;
}

/*
 * Options before the command. Returns -1 and the command's index in
 * *ret_index, or the status to exit with (help, version, usage error).
 */
static int
parse_globals(int argc, char *argv[], struct cli_opts *o, int *ret_index)
{
	int i, r;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		size_t len = strcspn(a, "=");
		char opt[16];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cli_help_main(stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			(void)printf("m8tes %s (protocol %d)\n", M8TESD_VERSION,
			    PROTO_VERSION);
			return 0;
		}
		(void)snprintf(opt, sizeof(opt), "%.*s", (int)len, a);
		if (strcmp(opt, "--socket") != 0 &&
		    strcmp(opt, "--timeout") != 0)
			return cli_usage_error("unknown option ", a,
			    " (see m8tes --help)");
		if (a[len] != '=' && i + 1 >= argc)
			return cli_usage_error("option ", a, " needs a value");
		r = set_global(o, opt, a[len] == '=' ? a + len + 1 : argv[++i]);
		if (r >= 0)
			return r;
	}
	*ret_index = i;
	return -1;
}

/* A streamed call, unless the caller asked for stream false. */
static bool
streams(const struct cli_request *req)
{
	return req->method != NULL && req->method->handler == H_STREAM &&
	    !cJSON_IsFalse(
	        cJSON_GetObjectItemCaseSensitive(req->params, "stream"));
}

static int
show_result(const struct cli_opts *o, const struct cli_request *req,
    struct cli_out *out, const cJSON *result)
{
	char err[256];
	const char *path;
	size_t size;
	int r;

	if (req->method != NULL && req->method->handler == H_DOWNLOAD &&
	    (req->output != NULL || !o->json)) {
		r = cli_out_save(stdout, result, req->output, &path, &size, err,
		    sizeof(err));
		if (r < 0) {
			(void)fprintf(stderr, "m8tes: %s\n", err);
			return r == -EBADMSG ? CLI_EXIT_PROTOCOL
			                     : CLI_EXIT_IOERR;
		}
		if (strcmp(path, "-") != 0 && !o->json)
			(void)printf("saved %s (%zu bytes)\n", path, size);
		return 0;
	}
	r = cli_out_result(out, result);
	if (r < 0)
		return cli_call_error(r, o);
	return 0;
}

static int
run(const struct cli_opts *o, struct cli_request *req)
{
	struct cli_out out = {
	    .f = stdout,
	    .err = stderr,
	    .json = o->json,
	    .method = req->name,
	};
	struct m8c_reply reply = {0};
	struct m8c_conn *c;
	int r, status;

	if (streams(req))
		return cli_run_main(o, req->name, req->params);
	status = cli_connect(o, &c);
	if (status != 0)
		return status;
	/* JSON out is the result as it came: no need to parse and print it. */
	if (o->json && (req->method == NULL ||
	    req->method->handler != H_DOWNLOAD))
		m8c_set_raw_results(c, true);
	r = m8c_call(c, req->name, req->params, o->timeout_ms, cli_out_event_cb,
	    &out, &reply);
	if (r < 0)
		status = cli_call_error(r, o);
	else if (reply.kind == M8C_RESULT && reply.result_text != NULL)
		status = printf("%s\n", reply.result_text) < 0
		    ? CLI_EXIT_IOERR
		    : 0;
	else if (reply.kind == M8C_RESULT)
		status = show_result(o, req, &out, reply.result);
	else
		status = cli_reply_error(&reply);
	m8c_reply_done(&reply);
	m8c_close(c);
	return cli_finish(status);
}

/* "help [WORDS...]": the help of whatever the words name. */
static int
cmd_help(int argc, char *argv[])
{
	char group[PROTO_MAX_METHOD + 1];
	const struct method *m;
	enum cli_cmd_kind kind;

	if (argc == 0) {
		cli_help_main(stdout);
		return 0;
	}
	if (strcmp(argv[0], "call") == 0 || strcmp(argv[0], "ping") == 0 ||
	    strcmp(argv[0], "hello") == 0 || strcmp(argv[0], "describe") == 0) {
		cli_help_builtin(stdout, argv[0]);
		return 0;
	}
	if (cli_cmd_find(argc, argv, &kind) > 0) {
		cli_help_cmd(stdout, kind);
		return 0;
	}
	if (cli_find_method(argc, argv, &m, group, sizeof(group)) > 0) {
		cli_help_method(stdout, m);
		return 0;
	}
	if (group[0] != '\0') {
		cli_help_group(stdout, group);
		return 0;
	}
	return cli_usage_error("no such command: ", argv[0],
	    " (see m8tes --help)");
}

/* "describe [METHOD | WORDS...]" */
static int
cmd_describe(const struct cli_opts *o, int argc, char *argv[])
{
	struct cli_request req = {.name = "daemon.describe"};
	const struct method *m = NULL;
	const char *name = NULL;
	char group[PROTO_MAX_METHOD + 1];
	struct cli_opts oo = *o;
	int r, used = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			cli_help_builtin(stdout, "describe");
			return 0;
		}
		if (strcmp(argv[i], "--json") == 0)
			oo.json = true;
	}
	if (argc > 0 && argv[0][0] != '-') {
		used = cli_find_method(argc, argv, &m, group, sizeof(group));
		name = m != NULL ? m->name : argv[0];
		if (used == 0)
			used = 1;
	}
	for (int i = used; i < argc; i++)
		if (strcmp(argv[i], "--json") != 0)
			return cli_usage_error("describe: unexpected \"",
			    argv[i], "\"");
	req.method = methods_find("daemon.describe");
	req.params = cJSON_CreateObject();
	if (req.params == NULL ||
	    (name != NULL &&
	        cJSON_AddStringToObject(req.params, "method", name) == NULL)) {
		cli_request_done(&req);
		return cli_args_error(-ENOMEM, "");
	}
	r = run(&oo, &req);
	cli_request_done(&req);
	return r;
}

static int
cmd_method(const struct cli_opts *o, const struct method *m, int argc,
    char *argv[])
{
	struct cli_request req;
	struct cli_opts oo = *o;
	char err[512];
	int r;

	r = cli_method_args(m, argc, argv, &req, err, sizeof(err));
	if (r < 0)
		return cli_args_error(r, err);
	if (req.help) {
		cli_help_method(stdout, m);
		cli_request_done(&req);
		return 0;
	}
	oo.json = oo.json || req.json;
	r = run(&oo, &req);
	cli_request_done(&req);
	return r;
}

static int
cmd_call(const struct cli_opts *o, int argc, char *argv[])
{
	struct cli_request req;
	struct cli_opts oo = *o;
	char err[512];
	int r;

	r = cli_call_args(argc, argv, &req, err, sizeof(err));
	if (r < 0)
		return cli_args_error(r, err);
	if (req.help) {
		if (req.method != NULL)
			cli_help_method(stdout, req.method);
		else
			cli_help_builtin(stdout, "call");
		cli_request_done(&req);
		return 0;
	}
	oo.json = oo.json || req.json;
	r = run(&oo, &req);
	cli_request_done(&req);
	return r;
}

/* A command of cli_cmd: watch, download, mate, webhooks, auth, cache, audit. */
static int
cmd_ours(const struct cli_opts *o, enum cli_cmd_kind kind, int argc,
    char *argv[])
{
	struct cli_opts oo = *o;
	struct cli_cmd cmd;
	char err[512];
	int r;

	r = cli_cmd_parse(kind, argc, argv, (long long)time(NULL), &cmd, err,
	    sizeof(err));
	if (r < 0)
		return cli_args_error(r, err);
	if (cmd.help) {
		cli_help_cmd(stdout, kind);
		cli_cmd_done(&cmd);
		return 0;
	}
	oo.json = oo.json || cmd.json;
	switch (kind) {
	case CLI_CMD_WATCH:
		r = cli_run_main(&oo, cmd.method->name, cmd.params);
		break;
	case CLI_CMD_DOWNLOAD:
		r = cli_dl_main(&oo, &cmd);
		break;
	case CLI_CMD_MATE_TASK:
		r = cli_chat_task_main(&oo, &cmd);
		break;
	case CLI_CMD_MATE_CHAT:
		r = cli_chat_main(&oo, &cmd);
		break;
	case CLI_CMD_LISTEN:
		r = cli_listen_main(&oo, &cmd);
		break;
	case CLI_CMD_REPLAY:
		r = cli_listen_replay_main(&oo, &cmd);
		break;
	case CLI_CMD_NONE:
	case CLI_CMD_LOGIN:
	case CLI_CMD_AUTH_STATUS:
	case CLI_CMD_LOGOUT:
	case CLI_CMD_CACHE_STATS:
	case CLI_CMD_CACHE_CLEAR:
	case CLI_CMD_AUDIT:
	default:
		r = cli_local_main(&oo, &cmd);
		break;
	}
	cli_cmd_done(&cmd);
	return r;
}

int
main(int argc, char *argv[])
{
	struct cli_opts o = {.timeout_ms = -1};
	char group[PROTO_MAX_METHOD + 1];
	const struct method *m;
	enum cli_cmd_kind kind;
	const char *cmd;
	int i = 0, k, used, status;

	if (methods_init() < 0) {
		(void)fputs("m8tes: the built-in method table is broken\n",
		    stderr);
		return CLI_EXIT_SOFTWARE;
	}
	/* A reader that went away (| head) ends us by EPIPE, not a signal. */
	(void)signal(SIGPIPE, SIG_IGN);
	status = parse_globals(argc, argv, &o, &i);
	if (status >= 0)
		return status;
	o.tty_in = isatty(STDIN_FILENO);
	o.tty_out = isatty(STDOUT_FILENO);
	o.tty_err = isatty(STDERR_FILENO);
	if (!o.json)
		o.json = !o.tty_out;
	if (i >= argc) {
		cli_help_main(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = argv[i++];
	if (strcmp(cmd, "help") == 0)
		return cmd_help(argc - i, argv + i);
	if (strcmp(cmd, "call") == 0)
		return cmd_call(&o, argc - i, argv + i);
	if (strcmp(cmd, "describe") == 0)
		return cmd_describe(&o, argc - i, argv + i);
	if (strcmp(cmd, "ping") == 0 || strcmp(cmd, "hello") == 0) {
		char name[32];

		(void)snprintf(name, sizeof(name), "daemon.%s", cmd);
		if (i < argc &&
		    (strcmp(argv[i], "--help") == 0 ||
		        strcmp(argv[i], "-h") == 0)) {
			cli_help_builtin(stdout, cmd);
			return 0;
		}
		return cmd_method(&o, methods_find(name), argc - i, argv + i);
	}
	used = cli_cmd_find(argc - i + 1, argv + i - 1, &kind);
	if (used > 0)
		return cmd_ours(&o, kind, argc - i + 1 - used,
		    argv + i - 1 + used);
	used = cli_find_method(argc - i + 1, argv + i - 1, &m, group,
	    sizeof(group));
	if (used > 0)
		return cmd_method(&o, m, argc - i + 1 - used,
		    argv + i - 1 + used);
	if (group[0] == '\0')
		return cli_usage_error("no such command: ", cmd,
		    " (see m8tes --help)");
	/* Words naming a group: list its commands. */
	for (k = i; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 ||
		    strcmp(argv[k], "-h") == 0) {
			cli_help_group(stdout, group);
			return 0;
		}
	}
	k = i;
	for (const char *c = group; *c != '\0'; c++)
		k += *c == '.';
	if (k < argc)
		(void)fprintf(stderr, "m8tes: no command \"%s\" here\n",
		    argv[k]);
	cli_help_group(stderr, group);
	return CLI_EXIT_USAGE;
}

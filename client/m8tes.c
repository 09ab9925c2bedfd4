/*
 * SPDX-License-Identifier: MIT
 *
 * m8tes: the command-line client of m8tesd. This file owns the global
 * options, the choice of command, the one connection and call, and the exit
 * status; cli_args.c turns the words into a method and params, cli_out.c
 * prints what comes back, cli_help.c explains it all. Only main() exits.
 *
 *   m8tes [--socket PATH] [--json] [--timeout SEC] COMMAND ...
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_args.h"
#include "cli_help.h"
#include "cli_out.h"
#include "codec.h"
#include "libm8tes.h"
#include "methods.h"

/* Exit statuses of our own (sysexits.h values); API errors use codec's. */
#define EXIT_USAGE 2
#define EXIT_NOINPUT 66
#define EXIT_UNAVAILABLE 69
#define EXIT_SOFTWARE 70
#define EXIT_IOERR 74
#define EXIT_TEMPFAIL 75
#define EXIT_PROTOCOL 76

struct opts {
	const char *socket; /* NULL: m8c_socket_path */
	bool json;
	int timeout_ms; /* -1: wait */
};

static int usage_error(const char *pre, const char *arg, const char *post);
static int parse_timeout(const char *s, int *ret_ms);
static int
parse_globals(int argc, char *argv[], struct opts *o, int *ret_index);
static int exit_for_args(int r, const char *err);
static int connect_error(const char *path, int r);
static int call_error(int r, const struct opts *o);
static int show_result(const struct opts *o, const struct cli_request *req,
    struct cli_out *out, const cJSON *result);
static int run(const struct opts *o, struct cli_request *req);
static int cmd_help(int argc, char *argv[]);
static int cmd_describe(const struct opts *o, int argc, char *argv[]);
static int cmd_method(const struct opts *o, const struct method *m, int argc,
    char *argv[]);
static int cmd_call(const struct opts *o, int argc, char *argv[]);

/* Says what is wrong with the command line: pre, arg, post on a line. */
static int
usage_error(const char *pre, const char *arg, const char *post)
{
	(void)fprintf(stderr, "m8tes: %s%s%s\n", pre, arg, post);
	return EXIT_USAGE;
}

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
set_global(struct opts *o, const char *opt, const char *v)
{
	if (strcmp(opt, "--socket") == 0) {
		if (v[0] == '\0')
			return usage_error("--socket needs a path", "", "");
		o->socket = v;
		return -1;
	}
	if (parse_timeout(v, &o->timeout_ms) < 0)
		return usage_error("--timeout wants seconds > 0, not \"", v,
		    "\"");
	return -1;
}

/*
 * Options before the command. Returns -1 and the command's index in
 * *ret_index, or the status to exit with (help, version, usage error).
 */
static int
parse_globals(int argc, char *argv[], struct opts *o, int *ret_index)
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
			return usage_error("unknown option ", a,
			    " (see m8tes --help)");
		if (a[len] != '=' && i + 1 >= argc)
			return usage_error("option ", a, " needs a value");
		r = set_global(o, opt, a[len] == '=' ? a + len + 1 : argv[++i]);
		if (r >= 0)
			return r;
	}
	*ret_index = i;
	return -1;
}

/* The exit status for a failure of cli_*_args, after saying why. */
static int
exit_for_args(int r, const char *err)
{
	if (r == -ENOMEM) {
		(void)fputs("m8tes: out of memory\n", stderr);
		return EXIT_SOFTWARE;
	}
	(void)fprintf(stderr, "m8tes: %s\n", err);
	return r == -EINVAL ? EXIT_USAGE : EXIT_NOINPUT;
}

static int
connect_error(const char *path, int r)
{
	char def[256];

	if (path == NULL)
		path = m8c_socket_path(def, sizeof(def)) >= 0 ? def : "(none)";
	(void)fprintf(stderr, "m8tes: cannot connect to %s: %s\n", path,
	    strerror(-r));
	if (r == -EACCES)
		(void)fputs(
		    "m8tes: is your user in the daemon's group (m8tes)?\n",
		    stderr);
	else
		(void)fputs(
		    "m8tes: is m8tesd running? Start it with `m8tesd`, or "
		    "point --socket or\n"
		    "       M8TES_SOCKET at its socket.\n",
		    stderr);
	return EXIT_UNAVAILABLE;
}

/* A call that ended without a reply: say why, pick the status. */
static int
call_error(int r, const struct opts *o)
{
	switch (r) {
	case -ETIMEDOUT:
		(void)fprintf(stderr,
		    "m8tes: no answer from m8tesd within %g s\n",
		    o->timeout_ms / 1000.0);
		return EXIT_TEMPFAIL;
	case -ECONNRESET:
	case -EPIPE:
	case -ECONNABORTED:
		(void)fputs("m8tes: m8tesd closed the connection\n", stderr);
		return EXIT_UNAVAILABLE;
	case -EMSGSIZE:
		(void)fputs(
		    "m8tes: reply longer than the protocol's line limit\n",
		    stderr);
		return EXIT_PROTOCOL;
	case -EBADMSG:
		(void)fputs("m8tes: m8tesd sent a line that is not a protocol "
		            "reply\n",
		    stderr);
		return EXIT_PROTOCOL;
	case -ENOMEM:
		(void)fputs("m8tes: out of memory\n", stderr);
		return EXIT_SOFTWARE;
	default:
		(void)fprintf(stderr, "m8tes: %s\n", strerror(-r));
		return EXIT_IOERR;
	}
}

static int
show_result(const struct opts *o, const struct cli_request *req,
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
			return r == -EBADMSG ? EXIT_PROTOCOL : EXIT_IOERR;
		}
		if (strcmp(path, "-") != 0 && !o->json)
			(void)printf("saved %s (%zu bytes)\n", path, size);
		return 0;
	}
	r = cli_out_result(out, result);
	if (r < 0)
		return call_error(r, o);
	return 0;
}

static int
run(const struct opts *o, struct cli_request *req)
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

	r = m8c_connect(o->socket, &c);
	if (r < 0)
		return connect_error(o->socket, r);
	if (o->timeout_ms > 0)
		m8c_set_send_timeout(c, o->timeout_ms);
	r = m8c_call(c, req->name, req->params, o->timeout_ms, cli_out_event_cb,
	    &out, &reply);
	if (r < 0) {
		(void)fflush(stdout);
		status = call_error(r, o);
		goto out;
	}
	switch (reply.kind) {
	case M8C_RESULT:
		status = show_result(o, req, &out, reply.result);
		break;
	case M8C_ERROR:
		(void)fflush(stdout);
		cli_out_error(stderr, &reply.error);
		status = codec_exit_code(reply.error.code);
		break;
	case M8C_LAGGED:
	default:
		(void)fflush(stdout);
		(void)fprintf(stderr,
		    "m8tes: fell behind the stream; resume with "
		    "--after-seq %llu\n",
		    reply.resume_after);
		status = EXIT_TEMPFAIL;
		break;
	}
out:
	m8c_reply_done(&reply);
	m8c_close(c);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (status == 0)
			perror("m8tes: stdout");
		return status == 0 ? EXIT_IOERR : status;
	}
	return status;
}

/* "help [WORDS...]": the help of whatever the words name. */
static int
cmd_help(int argc, char *argv[])
{
	char group[PROTO_MAX_METHOD + 1];
	const struct method *m;

	if (argc == 0) {
		cli_help_main(stdout);
		return 0;
	}
	if (strcmp(argv[0], "call") == 0 || strcmp(argv[0], "ping") == 0 ||
	    strcmp(argv[0], "hello") == 0 || strcmp(argv[0], "describe") == 0) {
		cli_help_builtin(stdout, argv[0]);
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
	return usage_error("no such command: ", argv[0], " (see m8tes --help)");
}

/* "describe [METHOD | WORDS...]" */
static int
cmd_describe(const struct opts *o, int argc, char *argv[])
{
	struct cli_request req = {.name = "daemon.describe"};
	const struct method *m = NULL;
	const char *name = NULL;
	char group[PROTO_MAX_METHOD + 1];
	struct opts oo = *o;
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
			return usage_error("describe: unexpected \"", argv[i],
			    "\"");
	req.method = methods_find("daemon.describe");
	req.params = cJSON_CreateObject();
	if (req.params == NULL ||
	    (name != NULL &&
	        cJSON_AddStringToObject(req.params, "method", name) == NULL)) {
		cli_request_done(&req);
		return exit_for_args(-ENOMEM, "");
	}
	r = run(&oo, &req);
	cli_request_done(&req);
	return r;
}

static int
cmd_method(const struct opts *o, const struct method *m, int argc, char *argv[])
{
	struct cli_request req;
	struct opts oo = *o;
	char err[512];
	int r;

	r = cli_method_args(m, argc, argv, &req, err, sizeof(err));
	if (r < 0)
		return exit_for_args(r, err);
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
cmd_call(const struct opts *o, int argc, char *argv[])
{
	struct cli_request req;
	struct opts oo = *o;
	char err[512];
	int r;

	r = cli_call_args(argc, argv, &req, err, sizeof(err));
	if (r < 0)
		return exit_for_args(r, err);
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

int
main(int argc, char *argv[])
{
	struct opts o = {.timeout_ms = -1};
	char group[PROTO_MAX_METHOD + 1];
	const struct method *m;
	const char *cmd;
	int i = 0, k, used, status;

	if (methods_init() < 0) {
		(void)fputs("m8tes: the built-in method table is broken\n",
		    stderr);
		return EXIT_SOFTWARE;
	}
	status = parse_globals(argc, argv, &o, &i);
	if (status >= 0)
		return status;
	if (!o.json)
		o.json = !isatty(STDOUT_FILENO);
	if (i >= argc) {
		cli_help_main(stderr);
		return EXIT_USAGE;
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
	used = cli_find_method(argc - i + 1, argv + i - 1, &m, group,
	    sizeof(group));
	if (used > 0)
		return cmd_method(&o, m, argc - i + 1 - used,
		    argv + i - 1 + used);
	if (group[0] == '\0')
		return usage_error("no such command: ", cmd,
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
	return EXIT_USAGE;
}

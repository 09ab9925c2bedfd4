/*
 * SPDX-License-Identifier: MIT
 *
 * Connecting and the exit statuses of m8tes, shared by every command: the
 * one place that turns an -errno or an error reply into a line on stderr
 * and a number for main() to exit with.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "cli_out.h"
#include "codec.h"
#include "libm8tes.h"

int
cli_usage_error(const char *pre, const char *arg, const char *post)
{
	(void)fprintf(stderr, "m8tes: %s%s%s\n", pre, arg, post);
	return CLI_EXIT_USAGE;
}

int
cli_args_error(int r, const char *err)
{
	if (r == -ENOMEM) {
		(void)fputs("m8tes: out of memory\n", stderr);
		return CLI_EXIT_SOFTWARE;
	}
	(void)fprintf(stderr, "m8tes: %s\n", err);
	return r == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_NOINPUT;
}

int
cli_connect(const struct cli_opts *o, struct m8c_conn **ret)
{
	const char *path = o->socket;
	char def[256];
	int r;

	r = m8c_connect(path, ret);
	if (r == 0) {
		if (o->timeout_ms > 0)
			m8c_set_send_timeout(*ret, o->timeout_ms);
		return 0;
	}
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
	return CLI_EXIT_UNAVAILABLE;
}

int
cli_call_error(int r, const struct cli_opts *o)
{
	(void)fflush(stdout);
	switch (r) {
	case -ETIMEDOUT:
		(void)fprintf(stderr,
		    "m8tes: no answer from m8tesd within %g s\n",
		    o->timeout_ms / 1000.0);
		return CLI_EXIT_TEMPFAIL;
	case -ECONNRESET:
	case -EPIPE:
	case -ECONNABORTED:
		(void)fputs("m8tes: m8tesd closed the connection\n", stderr);
		return CLI_EXIT_UNAVAILABLE;
	case -EMSGSIZE:
		(void)fputs(
		    "m8tes: reply longer than the protocol's line limit\n",
		    stderr);
		return CLI_EXIT_PROTOCOL;
	case -EBADMSG:
		(void)fputs("m8tes: m8tesd sent a line that is not a protocol "
		            "reply\n",
		    stderr);
		return CLI_EXIT_PROTOCOL;
	case -ENOMEM:
		(void)fputs("m8tes: out of memory\n", stderr);
		return CLI_EXIT_SOFTWARE;
	default:
		(void)fprintf(stderr, "m8tes: %s\n", strerror(-r));
		return CLI_EXIT_IOERR;
	}
}

int
cli_reply_error(const struct m8c_reply *reply)
{
	(void)fflush(stdout);
	if (reply->kind == M8C_ERROR) {
		cli_out_error(stderr, &reply->error);
		return codec_exit_code(reply->error.code);
	}
	(void)fprintf(stderr,
	    "m8tes: fell behind the stream; resume with --after-seq %llu\n",
	    reply->resume_after);
	return CLI_EXIT_TEMPFAIL;
}

int
cli_finish(int status)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (status == 0)
			perror("m8tes: stdout");
		return status == 0 ? CLI_EXIT_IOERR : status;
	}
	return status;
}

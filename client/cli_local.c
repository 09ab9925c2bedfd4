/*
 * SPDX-License-Identifier: MIT
 *
 * Key handling and the daemon's local methods. The key is read with
 * read(2), not stdio, so no stdio buffer keeps a copy; the line buffer, the
 * params string and the request text (libm8tes wipes it) are cleared with
 * explicit_bzero once sent. Echo is turned off with termios and restored
 * by the same code path that a SIGINT, SIGTERM or SIGHUP during the read
 * takes (their handler only interrupts the read).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_cmd.h"
#include "cli_common.h"
#include "cli_dl.h"
#include "cli_local.h"
#include "cli_out.h"
#include "libm8tes.h"
#include "methods.h"

#define AUDIT_COLS 7

static void interrupt_cb(int sig);
static int read_line_fd(int fd, char *buf, size_t len);
static void audit_time(const cJSON *row, char *buf, size_t len);
static const char *str(const cJSON *o, const char *key);
static double num(const cJSON *o, const char *key);
static int login(const struct cli_opts *o, struct m8c_conn *c,
    struct m8c_reply *ret_reply);
static void show(const struct cli_cmd *cmd, const cJSON *result);

static volatile sig_atomic_t interrupted;

/* Only interrupts the read (no SA_RESTART); the reader restores. */
static void
interrupt_cb(int sig)
{
	interrupted = sig;
}

/* Reads up to a newline or the end; returns the length or -errno. */
static int
read_line_fd(int fd, char *buf, size_t len)
{
	size_t n = 0;
	bool over = false;
	char c = 0;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR && !interrupted)
			continue;
		if (r < 0)
			return interrupted ? -EINTR : -errno;
		if (r == 0 || c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
		else
			over = true;
	}
	explicit_bzero(&c, sizeof(c));
	buf[n] = '\0';
	return over ? -EMSGSIZE : (int)n;
}

int
cli_local_read_key(int fd, FILE *tty, char *buf, size_t len)
{
	struct sigaction sa = {.sa_handler = interrupt_cb}, old[3];
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	struct termios saved, quiet;
	bool echo_off = false;
	size_t start = 0, end;
	int r;

	if (isatty(fd) && tcgetattr(fd, &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		interrupted = 0;
		(void)sigemptyset(&sa.sa_mask);
		for (int i = 0; i < 3; i++)
			(void)sigaction(sigs[i], &sa, &old[i]);
		if (tty != NULL) {
			(void)fputs("API key: ", tty);
			(void)fflush(tty);
		}
		echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	r = read_line_fd(fd, buf, len);
	if (echo_off) {
		(void)tcsetattr(fd, TCSAFLUSH, &saved);
		if (tty != NULL)
			(void)fputc('\n', tty);
	}
	if (isatty(fd))
		for (int i = 0; i < 3; i++)
			(void)sigaction(sigs[i], &old[i], NULL);
	if (r < 0)
		goto fail;
	end = (size_t)r;
	while (start < end && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	while (end > start && (buf[end - 1] == ' ' || buf[end - 1] == '\t' ||
	                          buf[end - 1] == '\r'))
		end--;
	memmove(buf, buf + start, end - start);
	explicit_bzero(buf + (end - start), len - (end - start));
	r = (int)(end - start);
	if (r == 0) {
		r = -ENODATA;
		goto fail;
	}
	for (int i = 0; i < r; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7F) {
			r = -EINVAL;
			goto fail;
		}
	}
	return r;
fail:
	explicit_bzero(buf, len);
	return r;
}

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* "time" (Unix seconds or text) or "time_ms", as local time. */
static void
audit_time(const cJSON *row, char *buf, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, "time");
	double secs = -1;
	struct tm tm;
	time_t t;

	if (cJSON_IsString(v)) {
		(void)snprintf(buf, len, "%s", v->valuestring);
		return;
	}
	if (cJSON_IsNumber(v))
		secs = v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(row, "time_ms");
	if (secs < 0 && cJSON_IsNumber(v))
		secs = v->valuedouble / 1000;
	t = (time_t)secs;
	if (secs < 0 || secs > 1e11 || localtime_r(&t, &tm) == NULL) {
		(void)snprintf(buf, len, "-");
		return;
	}
	(void)strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void
cli_local_audit_table(FILE *f, const cJSON *result)
{
	static const char *const head[AUDIT_COLS] = {"TIME", "UID", "PID",
	    "COMM", "METHOD", "STATUS", "DURATION"};
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(result, "data");
	const cJSON *row;
	size_t width[AUDIT_COLS];
	char cell[AUDIT_COLS][80];

	if (cJSON_GetArraySize(rows) == 0) {
		(void)fputs("(none)\n", f);
		return;
	}
	for (int c = 0; c < AUDIT_COLS; c++)
		width[c] = strlen(head[c]);
	/* Two passes over the rows: widths, then the lines. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (int c = 0; c < AUDIT_COLS; c++)
				(void)fprintf(f, c + 1 < AUDIT_COLS ? "%-*s  "
				                                    : "%*s\n",
				    (int)width[c], head[c]);
		}
		cJSON_ArrayForEach(row, rows)
		{
			audit_time(row, cell[0], sizeof(cell[0]));
			(void)snprintf(cell[1], sizeof(cell[1]), "%.0f",
			    num(row, "uid"));
			(void)snprintf(cell[2], sizeof(cell[2]), "%.0f",
			    num(row, "pid"));
			(void)snprintf(cell[3], sizeof(cell[3]), "%.20s",
			    str(row, "comm") != NULL ? str(row, "comm") : "-");
			(void)snprintf(cell[4], sizeof(cell[4]), "%.64s",
			    str(row, "method") != NULL ? str(row, "method")
			                               : "-");
			(void)snprintf(cell[5], sizeof(cell[5]), "%.0f",
			    num(row, "status"));
			(void)snprintf(cell[6], sizeof(cell[6]), "%.0f ms",
			    num(row, "duration_ms"));
			for (int c = 0; c < AUDIT_COLS; c++) {
				if (pass == 0) {
					if (strlen(cell[c]) > width[c])
						width[c] = strlen(cell[c]);
					continue;
				}
				if (c + 1 < AUDIT_COLS) {
					cli_out_clean(f, cell[c], NULL);
					(void)fprintf(f, "%*s",
					    (int)(width[c] - strlen(cell[c]) +
					        2),
					    "");
				} else {
					(void)fprintf(f, "%*s\n",
					    (int)width[c], cell[c]);
				}
			}
		}
	}
}

/* Reads the key and sends it; every copy of it here is wiped after. */
static int
login(const struct cli_opts *o, struct m8c_conn *c, struct m8c_reply *ret)
{
	char key[CLI_KEY_MAX + 1];
	cJSON *params, *item;
	int r;

	r = cli_local_read_key(STDIN_FILENO, o->tty_in ? stderr : NULL, key,
	    sizeof(key));
	if (r < 0) {
		(void)fprintf(stderr, "m8tes: %s\n",
		    r == -ENODATA    ? "no key given"
		        : r == -EMSGSIZE ? "key too long"
		        : r == -EINVAL   ? "key with a control character"
		        : r == -EINTR    ? "interrupted"
		                         : strerror(-r));
		return r == -EINTR ? -EINTR : -EINVAL;
	}
	params = cJSON_CreateObject();
	item = params != NULL ? cJSON_AddStringToObject(params, "api_key", key)
	                      : NULL;
	explicit_bzero(key, sizeof(key));
	if (item == NULL) {
		cJSON_Delete(params);
		return -ENOMEM;
	}
	r = m8c_call(c, "auth.login", params, o->timeout_ms, NULL, NULL, ret);
	explicit_bzero(item->valuestring, strlen(item->valuestring));
	cJSON_Delete(params);
	return r;
}

/* The readable answer of one of these commands. */
static void
show(const struct cli_cmd *cmd, const cJSON *result)
{
	char a[32], b[32];

	switch (cmd->kind) {
	case CLI_CMD_LOGIN:
		(void)fputs("logged in; key fingerprint ", stdout);
		cli_out_clean(stdout,
		    str(result, "fingerprint") != NULL
		        ? str(result, "fingerprint")
		        : "-",
		    NULL);
		(void)fputc('\n', stdout);
		break;
	case CLI_CMD_AUTH_STATUS:
		(void)fputs("source:      ", stdout);
		cli_out_clean(stdout,
		    str(result, "source") != NULL ? str(result, "source") : "-",
		    NULL);
		(void)fputs("\nfingerprint: ", stdout);
		cli_out_clean(stdout,
		    str(result, "fingerprint") != NULL
		        ? str(result, "fingerprint")
		        : "- (no key set)",
		    NULL);
		(void)fputc('\n', stdout);
		break;
	case CLI_CMD_LOGOUT:
		(void)puts("logged out; the stored key is gone");
		break;
	case CLI_CMD_CACHE_STATS:
		cli_dl_human(a, sizeof(a), num(result, "bytes"));
		cli_dl_human(b, sizeof(b), num(result, "blob_bytes"));
		(void)printf("entries:    %.0f (%s)\n"
		             "files:      %.0f (%s)\n"
		             "hits:       %.0f\n"
		             "misses:     %.0f\n"
		             "stale:      %.0f\n"
		             "hit ratio:  %.1f%%\n",
		    num(result, "entries"), a, num(result, "blobs"), b,
		    num(result, "hits"), num(result, "misses"),
		    num(result, "stale"), 100 * num(result, "hit_ratio"));
		break;
	case CLI_CMD_CACHE_CLEAR:
		(void)printf("removed %.0f cached answer%s\n",
		    num(result, "removed"),
		    num(result, "removed") == 1 ? "" : "s");
		break;
	case CLI_CMD_AUDIT:
		cli_local_audit_table(stdout, result);
		break;
	default:
		break;
	}
}

int
cli_local_main(const struct cli_opts *o, struct cli_cmd *cmd)
{
	struct m8c_reply reply = {0};
	struct m8c_conn *c;
	char *js;
	int r, status;

	status = cli_connect(o, &c);
	if (status != 0)
		return status;
	if (cmd->kind == CLI_CMD_LOGIN)
		r = login(o, c, &reply);
	else
		r = m8c_call(c, cmd->method->name, cmd->params, o->timeout_ms,
		    NULL, NULL, &reply);
	if (r == -EINVAL || r == -EINTR) {
		status = r == -EINTR ? 130 : CLI_EXIT_USAGE;
	} else if (r < 0) {
		status = cli_call_error(r, o);
	} else if (reply.kind != M8C_RESULT) {
		status = cli_reply_error(&reply);
	} else if (o->json) {
		js = cJSON_PrintUnformatted(reply.result);
		if (js != NULL)
			(void)printf("%s\n", js);
		status = js != NULL ? 0 : cli_call_error(-ENOMEM, o);
		free(js);
	} else {
		show(cmd, reply.result);
	}
	m8c_reply_done(&reply);
	m8c_close(c);
	return cli_finish(status);
}

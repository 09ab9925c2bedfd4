/*
 * SPDX-License-Identifier: MIT
 *
 * Downloading a run's file three ways, best first: a descriptor passed
 * with the result (nothing of the file crosses the protocol), chunk event
 * lines, or one base64 result. The output is a temporary file renamed
 * into place, or stdout, or an existing non-regular file (/dev/null, a
 * FIFO) written directly.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_cmd.h"
#include "cli_common.h"
#include "cli_dl.h"
#include "cli_out.h"
#include "libm8tes.h"

#define COPY_BUF (64 * 1024)

static long long mono_ms(void);
static void progress(struct cli_dl *d, bool last);
static int fail(struct cli_dl *d, int r, const char *what);
static const char *own_name(const char *filename);
static int open_output(struct cli_dl *d, const char *filename);
static int write_out(struct cli_dl *d, const void *p, size_t n);
static int finish_output(struct cli_dl *d);
static void abort_output(struct cli_dl *d);
static int copy_fd(struct cli_dl *d, int src);
static int write_base64(struct cli_dl *d, const char *b64);
static int chunk_cb(const struct m8c_event *ev, void *arg);
static bool refused_param(const struct m8c_reply *reply);
static int ask(struct cli_dl *d, const cJSON *params, const char *flag,
    struct m8c_reply *ret_reply);
static int save_result(struct cli_dl *d, const char *filename,
    const cJSON *result);

static long long
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cli_dl_human(char *buf, size_t len, double bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	if (bytes < 1024) {
		(void)snprintf(buf, len, "%.0f B", bytes);
		return;
	}
	bytes /= 1024;
	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	(void)snprintf(buf, len, "%.1f %s", bytes, units[u]);
}

void
cli_dl_progress_format(char *buf, size_t len, const char *name,
    uint64_t done, uint64_t total, double secs)
{
	char d[32], t[32] = "?", rate[40] = "-", pct[8] = "  ?%";

	cli_dl_human(d, sizeof(d), (double)done);
	if (total > 0) {
		cli_dl_human(t, sizeof(t), (double)total);
		(void)snprintf(pct, sizeof(pct), "%3.0f%%",
		    done >= total ? 100.0 : 100.0 * (double)done / (double)total);
	}
	if (secs > 0) {
		char r[32];

		cli_dl_human(r, sizeof(r), (double)done / secs);
		(void)snprintf(rate, sizeof(rate), "%s/s", r);
	}
	(void)snprintf(buf, len, "%s  %s  %s / %s  %s", name, pct, d, t, rate);
}

/* Redraws the bar, at most every CLI_DL_PROGRESS_MS unless last. */
static void
progress(struct cli_dl *d, bool last)
{
	char line[256];
	long long now;

	if (d->progress == NULL)
		return;
	now = mono_ms();
	if (!last && now - d->last < CLI_DL_PROGRESS_MS)
		return;
	d->last = now;
	cli_dl_progress_format(line, sizeof(line), d->saved, d->size,
	    d->total, (double)(now - d->t0) / 1000.0);
	/* \033[K clears what a longer earlier line left. */
	(void)fprintf(d->progress, "\r%s\033[K%s", line, last ? "\n" : "");
	(void)fflush(d->progress);
}

/* Sets d->err to "what: strerror" and returns r. */
static int
fail(struct cli_dl *d, int r, const char *what)
{
	(void)snprintf(d->err, sizeof(d->err), "%s: %s", what, strerror(-r));
	return r;
}

/* The name of the file here: a plain one only. NULL when unsafe. */
static const char *
own_name(const char *filename)
{
	const char *base = strrchr(filename, '/');

	base = base != NULL ? base + 1 : filename;
	if (base[0] == '\0' || base[0] == '.' || base[0] == '-')
		return NULL;
	return base;
}

static int
open_output(struct cli_dl *d, const char *filename)
{
	const char *target = d->path;
	struct stat st;
	mode_t mask;
	int r;

	d->t0 = d->last = mono_ms();
	if (target != NULL && strcmp(target, "-") == 0) {
		(void)fflush(stdout);
		d->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		(void)snprintf(d->saved, sizeof(d->saved), "-");
		return d->fd >= 0 ? 0 : fail(d, -errno, "stdout");
	}
	if (target == NULL) {
		target = own_name(filename);
		if (target == NULL) {
			(void)snprintf(d->err, sizeof(d->err),
			    "unsafe file name; give -o PATH");
			return -EINVAL;
		}
		if (lstat(target, &st) == 0) {
			(void)snprintf(d->err, sizeof(d->err),
			    "%s: exists; give -o PATH to replace it", target);
			return -EEXIST;
		}
	}
	if (strlen(target) >= sizeof(d->saved))
		return fail(d, -ENAMETOOLONG, "output");
	(void)snprintf(d->saved, sizeof(d->saved), "%s", target);
	if (d->path != NULL && stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* /dev/null, a FIFO: nothing to rename into place. */
		d->fd = open(target, O_WRONLY | O_CLOEXEC);
		return d->fd >= 0 ? 0 : fail(d, -errno, target);
	}
	(void)snprintf(d->tmp, sizeof(d->tmp), "%s.m8tes-XXXXXX", target);
	d->fd = mkostemp(d->tmp, O_CLOEXEC);
	if (d->fd == -1) {
		r = -errno;
		d->tmp[0] = '\0';
		return fail(d, r, target);
	}
	/* mkstemp makes 0600; a download gets what the umask allows. */
	mask = umask(0);
	(void)umask(mask);
	(void)fchmod(d->fd, 0666 & ~mask);
	return 0;
}

static int
write_out(struct cli_dl *d, const void *p, size_t n)
{
	const char *b = p;
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(d->fd, b + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return fail(d, -errno, d->saved);
		done += (size_t)w;
	}
	d->size += n;
	progress(d, false);
	return 0;
}

/* Closes the output and puts the file in place. */
static int
finish_output(struct cli_dl *d)
{
	int r = 0;

	if (close(d->fd) == -1)
		r = -errno;
	d->fd = -1;
	if (r == 0 && d->tmp[0] != '\0') {
		if (d->path != NULL) {
			if (rename(d->tmp, d->saved) == -1)
				r = -errno;
		} else if (link(d->tmp, d->saved) == -1) {
			/* Never replace what appeared meanwhile. */
			r = -errno;
		}
	}
	if (d->tmp[0] != '\0')
		(void)unlink(d->tmp);
	d->tmp[0] = '\0';
	if (r < 0)
		return fail(d, r, d->saved);
	progress(d, true);
	return 0;
}

static void
abort_output(struct cli_dl *d)
{
	if (d->fd >= 0)
		(void)close(d->fd);
	d->fd = -1;
	if (d->tmp[0] != '\0')
		(void)unlink(d->tmp);
	d->tmp[0] = '\0';
	d->size = 0;
}

static int
copy_fd(struct cli_dl *d, int src)
{
	char *buf = malloc(COPY_BUF);
	int r = 0;

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(src, buf, COPY_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(d, -errno, "the daemon's descriptor");
			break;
		}
		if (n == 0)
			break;
		r = write_out(d, buf, (size_t)n);
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}

static int
write_base64(struct cli_dl *d, const char *b64)
{
	size_t len = strlen(b64);
	unsigned char *bytes = malloc(len / 4 * 3 + 3);
	long n;
	int r;

	if (bytes == NULL)
		return -ENOMEM;
	n = cli_base64_decode(b64, len, bytes);
	if (n < 0) {
		free(bytes);
		(void)snprintf(d->err, sizeof(d->err), "bad base64 from m8tesd");
		return -EBADMSG;
	}
	r = write_out(d, bytes, (size_t)n);
	free(bytes);
	return r;
}

/* One {"type":"chunk","offset","data_base64"} event, in order. */
static int
chunk_cb(const struct m8c_event *ev, void *arg)
{
	struct cli_dl *d = arg;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev->event, "type");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(ev->event,
	    "offset");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev->event,
	    "data_base64");

	if (!cJSON_IsString(t) || strcmp(t->valuestring, "chunk") != 0)
		return 0;
	if (!cJSON_IsNumber(off) || off->valuedouble != (double)d->size ||
	    !cJSON_IsString(data)) {
		(void)snprintf(d->err, sizeof(d->err),
		    "chunk out of order or without data");
		d->cb_err = -EBADMSG;
	} else {
		d->cb_err = write_base64(d, data->valuestring);
	}
	return d->cb_err;
}

/* An older daemon refusing a parameter it does not know. */
static bool
refused_param(const struct m8c_reply *reply)
{
	return reply->kind == M8C_ERROR &&
	    strcmp(reply->error.code, "m8tesd.invalid_params") == 0;
}

/*
 * Calls runs.download_file with params and flag ("fd", "chunks" or NULL)
 * set to true. Returns as m8c_wait; chunks go into the output meanwhile.
 */
static int
ask(struct cli_dl *d, const cJSON *params, const char *flag,
    struct m8c_reply *ret_reply)
{
	struct m8c_call *call;
	cJSON *p = cJSON_Duplicate(params, true);
	int r;

	if (p == NULL || (flag != NULL && cJSON_AddTrueToObject(p, flag) ==
	                                      NULL)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	r = m8c_start(d->conn, "runs.download_file", p,
	    flag != NULL && strcmp(flag, "chunks") == 0 ? chunk_cb : NULL, d,
	    &call);
	cJSON_Delete(p);
	if (r < 0)
		return r;
	r = m8c_wait(d->conn, call, d->timeout_ms, ret_reply);
	m8c_call_free(call);
	return r;
}

/* Writes what the result carries and checks the size it announces. */
static int
save_result(struct cli_dl *d, const char *filename, const cJSON *result)
{
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(result, "size");
	const cJSON *viafd = cJSON_GetObjectItemCaseSensitive(result, "fd");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(result,
	    "data_base64");
	int r, src;

	if (cJSON_IsNumber(size) && size->valuedouble >= 0)
		d->total = (uint64_t)size->valuedouble;
	if (d->fd < 0) {
		r = open_output(d, filename);
		if (r < 0)
			return r;
	}
	if (cJSON_IsTrue(viafd)) {
		d->via = CLI_DL_FD;
		r = m8c_recv_fd(d->conn, CLI_DL_FD_WAIT_MS, &src);
		if (r < 0)
			return fail(d, r, "no descriptor came with the result");
		r = copy_fd(d, src);
		(void)close(src);
	} else if (cJSON_IsString(data)) {
		d->via = CLI_DL_BASE64;
		r = write_base64(d, data->valuestring);
	} else if (d->via == CLI_DL_CHUNKS) {
		r = 0;
	} else {
		(void)snprintf(d->err, sizeof(d->err),
		    "download result without data");
		r = -EBADMSG;
	}
	if (r < 0)
		return r;
	if (cJSON_IsNumber(size) && d->size != d->total) {
		(void)snprintf(d->err, sizeof(d->err),
		    "size mismatch: got %llu bytes, m8tesd announced %llu",
		    (unsigned long long)d->size,
		    (unsigned long long)d->total);
		return -EBADMSG;
	}
	return finish_output(d);
}

int
cli_dl_fetch(struct cli_dl *d, const cJSON *params,
    struct m8c_reply *ret_reply)
{
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(params, "filename");
	static const char *const flags[] = {"fd", "chunks", NULL};
	struct m8c_reply reply = {0};
	int r;

	d->fd = -1;
	d->tmp[0] = '\0';
	if (!cJSON_IsString(fn))
		return -EINVAL;
	/* Before asking: a name that exists here fails without a transfer. */
	r = open_output(d, fn->valuestring);
	if (r < 0)
		return r;
	for (size_t i = 0; i < 3; i++) {
		d->via = i == 0 ? CLI_DL_FD : i == 1 ? CLI_DL_CHUNKS
		                                     : CLI_DL_BASE64;
		r = ask(d, params, flags[i], &reply);
		if (r != M8C_ERROR || !refused_param(&reply) || i == 2)
			break;
		/* An older daemon: nothing was written, try the next way. */
		m8c_reply_done(&reply);
	}
	if (r == M8C_RESULT)
		r = save_result(d, fn->valuestring, reply.result);
	else if (r < 0 && d->cb_err < 0)
		r = d->cb_err;
	if (r != M8C_RESULT)
		abort_output(d);
	if (r < 0) {
		m8c_reply_done(&reply);
		return r;
	}
	*ret_reply = reply;
	return r;
}

int
cli_dl_main(const struct cli_opts *o, struct cli_cmd *cmd)
{
	struct cli_dl d = {
	    .path = cmd->output,
	    .progress = o->tty_err ? stderr : NULL,
	    .timeout_ms = o->timeout_ms,
	};
	struct m8c_reply reply = {0};
	const char *via[] = {"fd", "chunks", "base64"};
	cJSON *info;
	char *js;
	int r, status = 0;

	status = cli_connect(o, &d.conn);
	if (status != 0)
		return status;
	r = cli_dl_fetch(&d, cmd->params, &reply);
	if (r < 0 && d.err[0] != '\0') {
		(void)fprintf(stderr, "m8tes: %s\n", d.err);
		status = r == -EBADMSG ? CLI_EXIT_PROTOCOL
		    : r == -EINVAL || r == -EEXIST ? CLI_EXIT_USAGE
		                                   : CLI_EXIT_IOERR;
	} else if (r < 0) {
		status = cli_call_error(r, o);
	} else if (reply.kind != M8C_RESULT) {
		status = cli_reply_error(&reply);
	} else if (strcmp(d.saved, "-") == 0) {
		status = 0;
	} else if (o->json || cmd->json) {
		info = cJSON_Duplicate(reply.result, true);
		if (info != NULL) {
			cJSON_DeleteItemFromObjectCaseSensitive(info,
			    "data_base64");
			cJSON_DeleteItemFromObjectCaseSensitive(info, "fd");
			(void)cJSON_AddStringToObject(info, "path", d.saved);
			(void)cJSON_AddStringToObject(info, "via", via[d.via]);
		}
		js = info != NULL ? cJSON_PrintUnformatted(info) : NULL;
		if (js != NULL)
			(void)printf("%s\n", js);
		status = js != NULL ? 0 : cli_call_error(-ENOMEM, o);
		free(js);
		cJSON_Delete(info);
	} else {
		(void)printf("saved %s (%llu bytes)\n", d.saved,
		    (unsigned long long)d.size);
	}
	m8c_reply_done(&reply);
	m8c_close(d.conn);
	return cli_finish(status);
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Webhooks from the daemon's inbox, handed on. Each event is processed in
 * the event callback in order: printed, forwarded, run; then, for a
 * consumer, acknowledged. Acks are sent without waiting (webhooks.ack is
 * cumulative: "processed up to seq"), and their answers are collected as
 * they arrive, so the callback never waits on the connection itself. Once a
 * delivery fails, no later seq is acknowledged, so that the consumer's
 * cursor stays before the failed webhook and a new listen resumes there.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_cmd.h"
#include "cli_common.h"
#include "cli_http.h"
#include "cli_listen.h"
#include "cli_out.h"
#include "codec.h"
#include "libm8tes.h"

struct listen {
	const struct cli_opts *o;
	const struct cli_cmd *cmd;
	struct m8c_conn *conn;
	FILE *note;         /* delivery results: stdout, stderr in JSON mode */
	struct cli_url url; /* --forward-to */
	const char *consumer;
	bool acks_stopped;               /* a delivery failed */
	unsigned long long last_seq;     /* the last seq printed */
	unsigned long long last_ack_seq; /* the last seq acknowledged */
	struct m8c_call *acks[CLI_LISTEN_MAX_ACKS];
	size_t nacks;
	int fatal; /* < 0: stop listening */
};

static const char *str(const cJSON *o, const char *key);
static void put_num(FILE *f, const cJSON *v);
static int forward(struct listen *l, const cJSON *ev, const char *body,
    size_t len, const char *type);
static int run_exec(struct listen *l, const cJSON *ev, const char *body,
    size_t len);
static void collect_acks(struct listen *l);
static void ack(struct listen *l, unsigned long long seq);
static int deliver(struct listen *l, const cJSON *ev);
static int listen_event_cb(const struct m8c_event *ev, void *arg);
static int listen_params(const struct cli_cmd *cmd, unsigned long long after,
    cJSON **ret);

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A number as an integer, a string cleaned, anything else "-". */
static void
put_num(FILE *f, const cJSON *v)
{
	if (cJSON_IsNumber(v))
		(void)fprintf(f, "%.0f", v->valuedouble);
	else if (cJSON_IsString(v))
		cli_out_clean(f, v->valuestring, NULL);
	else
		(void)fputc('-', f);
}

void
cli_listen_line(FILE *f, const cJSON *ev)
{
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(ev, "received_at");
	char when[32] = "-";
	struct tm tm;

	if (cJSON_IsNumber(at) && at->valuedouble >= 0 &&
	    at->valuedouble < 1e11) {
		time_t t = (time_t)at->valuedouble;

		if (localtime_r(&t, &tm) != NULL)
			(void)strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
			    &tm);
	}
	(void)fprintf(f, "%s  #", when);
	put_num(f, cJSON_GetObjectItemCaseSensitive(ev, "seq"));
	(void)fputs("  ", f);
	cli_out_clean(f, str(ev, "event") != NULL ? str(ev, "event") : "-",
	    NULL);
	(void)fputs("  run ", f);
	put_num(f, cJSON_GetObjectItemCaseSensitive(ev, "run_id"));
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "replayed")))
		(void)fputs("  (replayed)", f);
	(void)fputc('\n', f);
}

int
cli_listen_body(const cJSON *ev, char **ret, size_t *ret_len,
    const char **ret_type)
{
	const cJSON *payload = cJSON_GetObjectItemCaseSensitive(ev, "payload");
	const char *body = str(ev, "body");
	char *s;

	if (payload != NULL && !cJSON_IsNull(payload)) {
		s = cJSON_PrintUnformatted(payload);
		*ret_type = "application/json";
	} else {
		s = strdup(body != NULL ? body : "");
		*ret_type = "text/plain; charset=utf-8";
	}
	if (s == NULL)
		return -ENOMEM;
	*ret = s;
	*ret_len = strlen(s);
	return 0;
}

/* POSTs one webhook to --forward-to. Returns 0 on a 2xx, else < 0. */
static int
forward(struct listen *l, const cJSON *ev, const char *body, size_t len,
    const char *type)
{
	char seq[24] = "", run[24] = "";
	struct cli_http_header h[4];
	const cJSON *v;
	size_t nh = 0, rlen;
	char *req;
	int r, status = 0;

	v = cJSON_GetObjectItemCaseSensitive(ev, "seq");
	if (cJSON_IsNumber(v))
		(void)snprintf(seq, sizeof(seq), "%.0f", v->valuedouble);
	v = cJSON_GetObjectItemCaseSensitive(ev, "run_id");
	if (cJSON_IsNumber(v))
		(void)snprintf(run, sizeof(run), "%.0f", v->valuedouble);
	if (str(ev, "event") != NULL)
		h[nh++] = (struct cli_http_header){"X-M8tes-Event",
		    str(ev, "event")};
	if (seq[0] != '\0')
		h[nh++] = (struct cli_http_header){"X-M8tes-Seq", seq};
	if (str(ev, "webhook_id") != NULL)
		h[nh++] = (struct cli_http_header){"X-M8tes-Webhook-Id",
		    str(ev, "webhook_id")};
	if (run[0] != '\0')
		h[nh++] = (struct cli_http_header){"X-M8tes-Run-Id", run};
	r = cli_http_request(&l->url, type, h, nh, body, len, &req, &rlen);
	if (r == -EINVAL) /* a header from the API with a newline: drop them */
		r = cli_http_request(&l->url, type, NULL, 0, body, len, &req,
		    &rlen);
	if (r == 0) {
		r = cli_http_post(&l->url, req, rlen, CLI_LISTEN_FORWARD_MS,
		    &status);
		free(req);
	}
	(void)fprintf(l->note, "  -> POST %s ", l->cmd->forward_to);
	if (r < 0)
		(void)fprintf(l->note, "failed: %s\n",
		    r == -EBADMSG ? "not an HTTP answer" : strerror(-r));
	else
		(void)fprintf(l->note, "%d\n", status);
	if (r == 0 && (status < 200 || status > 299))
		r = -EPROTO;
	return r;
}

/*
 * Runs "sh -c CMD" with the body on stdin (a memfd, so a command that reads
 * nothing cannot block us) and the webhook's M8TES_* variables. Returns 0
 * when it exits 0, else < 0.
 */
static int
run_exec(struct listen *l, const cJSON *ev, const char *body, size_t len)
{
	char seq[24] = "", run[24] = "";
	const cJSON *v;
	size_t done = 0;
	pid_t pid, w;
	int fd, st = 0;

	v = cJSON_GetObjectItemCaseSensitive(ev, "seq");
	if (cJSON_IsNumber(v))
		(void)snprintf(seq, sizeof(seq), "%.0f", v->valuedouble);
	v = cJSON_GetObjectItemCaseSensitive(ev, "run_id");
	if (cJSON_IsNumber(v))
		(void)snprintf(run, sizeof(run), "%.0f", v->valuedouble);
	fd = memfd_create("m8tes-webhook", MFD_CLOEXEC);
	if (fd == -1)
		goto fail;
	while (done < len) {
		ssize_t n = write(fd, body + done, len - done);

		if (n < 0 && errno != EINTR)
			goto fail_close;
		if (n > 0)
			done += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) == -1)
		goto fail_close;
	(void)fflush(stdout);
	(void)fflush(stderr);
	pid = fork();
	if (pid == -1)
		goto fail_close;
	if (pid == 0) {
		/* The child: no return from here. */
		if (dup2(fd, STDIN_FILENO) == -1 ||
		    (l->o->json && dup2(STDERR_FILENO, STDOUT_FILENO) == -1))
			_exit(126);
		(void)signal(SIGPIPE, SIG_DFL);
		if (setenv("M8TES_EVENT",
		        str(ev, "event") != NULL ? str(ev, "event") : "", 1) ||
		    setenv("M8TES_SEQ", seq, 1) ||
		    setenv("M8TES_RUN_ID", run, 1) ||
		    setenv("M8TES_WEBHOOK_ID",
		        str(ev, "webhook_id") != NULL ? str(ev, "webhook_id")
		                                      : "",
		        1) ||
		    setenv("M8TES_REPLAYED",
		        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev,
		            "replayed"))
		            ? "1"
		            : "0",
		        1))
			_exit(126);
		(void)execl("/bin/sh", "sh", "-c", l->cmd->exec, (char *)NULL);
		_exit(127);
	}
	(void)close(fd);
	do {
		w = waitpid(pid, &st, 0);
	} while (w == -1 && errno == EINTR);
	if (w == -1)
		goto fail;
	if (WIFEXITED(st))
		(void)fprintf(l->note, "  -> exec exit %d\n", WEXITSTATUS(st));
	else
		(void)fprintf(l->note, "  -> exec killed by signal %d\n",
		    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
fail_close:
	(void)close(fd);
fail:
	(void)fprintf(l->note, "  -> exec failed: %s\n", strerror(errno));
	return -ECHILD;
}

/* Frees the acks that have their answer; a refused one is reported. */
static void
collect_acks(struct listen *l)
{
	size_t k = 0;

	for (size_t i = 0; i < l->nacks; i++) {
		struct m8c_reply reply = {0};
		int r;

		if (!m8c_call_done(l->acks[i])) {
			l->acks[k++] = l->acks[i];
			continue;
		}
		r = m8c_wait(l->conn, l->acks[i], 0, &reply);
		if (r == M8C_ERROR)
			cli_out_error(stderr, &reply.error);
		m8c_reply_done(&reply);
		m8c_call_free(l->acks[i]);
	}
	l->nacks = k;
}

/* Acknowledges seq for the consumer without waiting for the answer. */
static void
ack(struct listen *l, unsigned long long seq)
{
	struct m8c_call *call;
	cJSON *p;
	int r;

	collect_acks(l);
	/* Full: skip; the next ack covers this seq as well. */
	if (l->nacks == CLI_LISTEN_MAX_ACKS)
		return;
	p = cJSON_CreateObject();
	if (p == NULL ||
	    cJSON_AddStringToObject(p, "consumer", l->consumer) == NULL ||
	    cJSON_AddNumberToObject(p, "seq", (double)seq) == NULL) {
		cJSON_Delete(p);
		l->fatal = -ENOMEM;
		return;
	}
	r = m8c_start(l->conn, "webhooks.ack", p, NULL, NULL, &call);
	cJSON_Delete(p);
	if (r < 0) {
		l->fatal = r;
		return;
	}
	l->acks[l->nacks++] = call;
	l->last_ack_seq = seq;
}

/* Forwards and runs one webhook. Returns 0 when all went well. */
static int
deliver(struct listen *l, const cJSON *ev)
{
	const char *type;
	char *body;
	size_t len;
	int r, ok = 0;

	if (l->cmd->forward_to == NULL && l->cmd->exec == NULL)
		return 0;
	r = cli_listen_body(ev, &body, &len, &type);
	if (r < 0)
		return r;
	if (l->cmd->forward_to != NULL && forward(l, ev, body, len, type) < 0)
		ok = -EIO;
	if (l->cmd->exec != NULL && run_exec(l, ev, body, len) < 0)
		ok = -EIO;
	free(body);
	return ok;
}

static int
listen_event_cb(const struct m8c_event *ev, void *arg)
{
	struct listen *l = arg;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev->event, "type");
	const cJSON *sv = cJSON_GetObjectItemCaseSensitive(ev->event, "seq");
	unsigned long long seq = ev->seq;
	char *js;

	if (cJSON_IsNumber(sv) && sv->valuedouble >= 1)
		seq = (unsigned long long)sv->valuedouble;
	if (l->o->json) {
		js = cJSON_PrintUnformatted(ev->event);
		if (js == NULL)
			return -ENOMEM;
		(void)printf("%s\n", js);
		free(js);
	} else if (cJSON_IsString(t) && strcmp(t->valuestring, "webhook") == 0) {
		cli_listen_line(stdout, ev->event);
	}
	(void)fflush(stdout);
	if (!cJSON_IsString(t) || strcmp(t->valuestring, "webhook") != 0)
		return 0;
	if (seq > l->last_seq)
		l->last_seq = seq;
	if (deliver(l, ev->event) < 0) {
		if (l->consumer != NULL && !l->acks_stopped)
			(void)fprintf(stderr,
			    "m8tes: delivery of #%llu failed; not "
			    "acknowledging it or any later webhook, so "
			    "\"%s\" resumes there next time\n",
			    seq, l->consumer);
		l->acks_stopped = true;
	} else if (l->consumer != NULL && !l->acks_stopped && seq > 0) {
		ack(l, seq);
	}
	(void)fflush(l->note);
	return l->fatal;
}

/* webhooks.listen's params, with after_seq moved on after lagged. */
static int
listen_params(const struct cli_cmd *cmd, unsigned long long after,
    cJSON **ret)
{
	cJSON *p = cJSON_Duplicate(cmd->params, true);

	if (p == NULL)
		return -ENOMEM;
	if (after > 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(p, "after_seq");
		if (cJSON_AddNumberToObject(p, "after_seq", (double)after) ==
		    NULL) {
			cJSON_Delete(p);
			return -ENOMEM;
		}
	}
	*ret = p;
	return 0;
}

int
cli_listen_main(const struct cli_opts *o, struct cli_cmd *cmd)
{
	struct listen l = {.o = o, .cmd = cmd};
	const cJSON *cons = cJSON_GetObjectItemCaseSensitive(cmd->params,
	    "consumer");
	struct m8c_reply reply = {0};
	struct m8c_call *call = NULL;
	unsigned long long after = 0;
	char err[256];
	cJSON *params = NULL;
	int r, status;

	l.note = o->json ? stderr : stdout;
	l.consumer = cJSON_IsString(cons) ? cons->valuestring : NULL;
	if (cmd->forward_to != NULL &&
	    cli_http_url_parse(cmd->forward_to, &l.url, err, sizeof(err)) < 0)
		return cli_args_error(-EINVAL, err);
	status = cli_connect(o, &l.conn);
	if (status != 0)
		return status;
	if (o->tty_out && !o->json)
		(void)fputs("m8tes: listening for webhooks; Ctrl-C ends\n",
		    stderr);
	for (;;) {
		r = listen_params(cmd, after, &params);
		if (r == 0)
			r = m8c_start(l.conn, "webhooks.listen", params,
			    listen_event_cb, &l, &call);
		cJSON_Delete(params);
		params = NULL;
		if (r == 0)
			r = m8c_wait(l.conn, call, -1, &reply);
		m8c_call_free(call);
		call = NULL;
		if (r != M8C_LAGGED)
			break;
		/* Fell behind: listen again after the last one handled. */
		after = reply.resume_after > l.last_seq ? reply.resume_after
		                                        : l.last_seq;
		m8c_reply_done(&reply);
	}
	if (r < 0)
		status = cli_call_error(r, o);
	else if (reply.kind == M8C_ERROR)
		status = cli_reply_error(&reply);
	else
		status = 0;
	m8c_reply_done(&reply);
	/* What is still in flight is lost with the connection: acks are
	 * cumulative, the next one covers it. */
	collect_acks(&l);
	for (size_t i = 0; i < l.nacks; i++)
		m8c_call_free(l.acks[i]);
	m8c_close(l.conn);
	return cli_finish(status);
}

int
cli_listen_replay_main(const struct cli_opts *o, struct cli_cmd *cmd)
{
	struct m8c_reply reply = {0};
	struct m8c_conn *c;
	const cJSON *n;
	char *js;
	int r, status;

	status = cli_connect(o, &c);
	if (status != 0)
		return status;
	r = m8c_call(c, "webhooks.replay", cmd->params, o->timeout_ms, NULL,
	    NULL, &reply);
	if (r < 0) {
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
		n = cJSON_GetObjectItemCaseSensitive(reply.result, "replayed");
		(void)printf("replayed %.0f webhook%s to the listeners\n",
		    cJSON_IsNumber(n) ? n->valuedouble : 0.0,
		    cJSON_IsNumber(n) && n->valuedouble == 1 ? "" : "s");
	}
	m8c_reply_done(&reply);
	m8c_close(c);
	return cli_finish(status);
}

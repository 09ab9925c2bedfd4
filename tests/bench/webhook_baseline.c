/*
 * SPDX-License-Identifier: MIT
 *
 * The baseline for bench_webhooks.sh: a bare libmicrohttpd receiver (epoll,
 * an internal thread pool) that checks a delivery as m8tesd does
 * (upstream-api.md §9.2: the three headers, a 300 s timestamp window,
 * v1=<hex HMAC-SHA256(secret, id.ts.body)> compared in constant time with
 * libsodium) and answers 204, storing nothing. What m8tesd adds on top
 * (durable group commit, the inbox, local delivery) is what the ratio
 * measures.
 *
 * usage: bench-webhook-baseline PORT_FILE SECRET [THREADS]
 * Listens on 127.0.0.1, a free port, written to PORT_FILE; runs until
 * SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#define MAX_BODY (1024 * 1024)
#define TOLERANCE 300

struct req {
	char *body;
	size_t len, cap;
	bool too_big;
};

static const char *secret;
static size_t secret_len;
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL,
	    MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);

	MHD_destroy_response(r);
	return ret;
}

static bool
verify(const char *id, const char *ts, const char *sig, const char *body,
    size_t len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES], got[sizeof(mac)];
	crypto_auth_hmacsha256_state st;
	char *end;
	long long t;

	if (id == NULL || *id == '\0' || ts == NULL || *ts == '\0' ||
	    sig == NULL || strlen(sig) != 3 + 2 * sizeof(mac) ||
	    strncmp(sig, "v1=", 3) != 0)
		return false;
	t = strtoll(ts, &end, 10);
	if (*end != '\0' || llabs((long long)time(NULL) - t) > TOLERANCE)
		return false;
	if (sodium_hex2bin(got, sizeof(got), sig + 3, 2 * sizeof(mac), NULL,
		NULL, NULL) != 0)
		return false;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret,
	    secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)id,
	    strlen(id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts,
	    strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	return sodium_memcmp(mac, got, sizeof(mac)) == 0;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)url;
	(void)version;
	if (rq == NULL) {
		if (strcmp(method, "POST") != 0)
			return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED);
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (rq->too_big || rq->len + n > MAX_BODY) {
			rq->too_big = true;
			return MHD_YES;
		}
		if (rq->len + n > rq->cap) {
			size_t cap = rq->cap ? rq->cap : 4096;
			char *b;

			while (cap < rq->len + n)
				cap *= 2;
			b = realloc(rq->body, cap);
			if (b == NULL)
				return MHD_NO;
			rq->body = b;
			rq->cap = cap;
		}
		memcpy(rq->body + rq->len, upload, n);
		rq->len += n;
		return MHD_YES;
	}
	if (rq->too_big)
		return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE);
	if (!verify(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
			"Webhook-Id"),
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    "Webhook-Timestamp"),
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    "Webhook-Signature"),
		rq->body ? rq->body : "", rq->len))
		return answer(conn, MHD_HTTP_UNAUTHORIZED);
	return answer(conn, MHD_HTTP_NO_CONTENT);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rq != NULL) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	unsigned threads;
	char tmp[4096];
	FILE *f;

	if (argc < 3) {
		(void)fprintf(stderr, "usage: %s PORT_FILE SECRET [THREADS]\n",
		    argv[0]);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	secret = argv[2];
	secret_len = strlen(secret);
	threads = argc > 3 ? (unsigned)atoi(argv[3]) :
			     (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD |
		MHD_USE_ERROR_LOG,
	    0, NULL, NULL, access_cb, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT,
	    10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_END);
	if (d == NULL) {
		(void)fprintf(stderr, "cannot start libmicrohttpd\n");
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	(void)snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	f = fopen(tmp, "we");
	if (info == NULL || f == NULL) {
		MHD_stop_daemon(d);
		return 1;
	}
	(void)fprintf(f, "%u\n", info->port);
	if (fclose(f) != 0 || rename(tmp, argv[1]) != 0) {
		MHD_stop_daemon(d);
		return 1;
	}
	(void)signal(SIGTERM, on_signal);
	(void)signal(SIGINT, on_signal);
	while (!stop)
		(void)pause();
	MHD_stop_daemon(d);
	return 0;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * m8tes-mockd: an in-memory mock of the m8tes v2 HTTP API for integration
 * tests and the offline demo. This file owns the command line, signals,
 * the port file and the order of start-up and shutdown; http.c serves,
 * routes*.c implement the API, inspect.c the /__mock/ test API.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "deliver.h"
#include "http.h"
#include "inspect.h"
#include "store.h"
#include "util.h"

static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: m8tes-mockd --listen ADDR:PORT --api-key KEY "
	    "[--port-file FILE]\n"
	    "                   [--run-steps N] [--strict] [--verbose]\n"
	    "\n"
	    "Serves a mock of the m8tes v2 API under http://ADDR:PORT/api/v2 "
	    "and a test\n"
	    "API under /__mock/. Port 0 picks a free port; --port-file "
	    "receives it.\n"
	    "  --listen ADDR:PORT  address to bind ([::1]:PORT for IPv6)\n"
	    "  --api-key KEY       the Bearer key clients must send\n"
	    "  --port-file FILE    write the bound port here (atomically)\n"
	    "  --run-steps N       GETs of a polled run until it ends "
	    "(default 2)\n"
	    "  --strict            start with require_end_user_id=true\n"
	    "  --verbose           log every request to stderr\n");
}

static int
parse_listen(const char *s, char *host, size_t len, uint16_t *ret_port)
{
	const char *colon;
	long long port;
	size_t n;

	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL)
			return -EINVAL;
		n = (size_t)(colon - s - 1);
		if (n >= len)
			return -EINVAL;
		memcpy(host, s + 1, n);
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (n >= len)
			return -EINVAL;
		memcpy(host, s, n);
	}
	host[n] = '\0';
	if (util_parse_ll(colon + 1, &port) < 0 || port < 0 || port > 65535)
		return -EINVAL;
	*ret_port = (uint16_t)port;
	return 0;
}

static int
write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	if (fprintf(f, "%u\n", port) < 0 || fclose(f) != 0) {
		(void)unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, path) == -1) {
		int r = -errno;

		(void)unlink(tmp);
		return r;
	}
	return 0;
}

/* Thread-per-connection needs a descriptor per client: lift the soft cap. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"api-key", required_argument, NULL, 'k'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"run-steps", required_argument, NULL, 's'},
	    {"strict", no_argument, NULL, 'S'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen = NULL, *port_file = NULL;
	struct MHD_Daemon *d;
	char host[256];
	uint16_t port, bound;
	long long steps;
	sigset_t set;
	int c, sig, r;

	while ((c = getopt_long(argc, argv, "l:k:p:s:Svh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'k':
			store.api_key = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 's':
			if (util_parse_ll(optarg, &steps) < 0 || steps < 1 ||
			    steps > 1000) {
				(void)fprintf(stderr,
				    "m8tes-mockd: --run-steps: 1..1000\n");
				return 2;
			}
			store.run_steps = store.cli_run_steps = (int)steps;
			break;
		case 'S':
			store.strict = true;
			break;
		case 'v':
			store.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || listen == NULL || store.api_key == NULL) {
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen, host, sizeof(host), &port) < 0) {
		(void)fprintf(stderr,
		    "m8tes-mockd: --listen: expected ADDR:PORT\n");
		return 2;
	}
	raise_nofile();
	(void)signal(SIGPIPE, SIG_IGN);
	/* Block the stop signals before any thread exists; main waits. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (store_init() < 0 || inspect_init() < 0) {
		(void)fprintf(stderr, "m8tes-mockd: out of memory\n");
		return 1;
	}
	r = deliver_init();
	if (r < 0) {
		(void)fprintf(stderr, "m8tes-mockd: webhook signer: %s\n",
		    r == -EPROTO ? "test vectors do not match" : strerror(-r));
		return 1;
	}
	d = http_start(host, port, &bound);
	if (d == NULL) {
		(void)fprintf(stderr, "m8tes-mockd: cannot listen on %s: %s\n",
		    listen, strerror(errno));
		return 1;
	}
	if (port_file != NULL) {
		r = write_port_file(port_file, bound);
		if (r < 0) {
			(void)fprintf(stderr, "m8tes-mockd: %s: %s\n",
			    port_file, strerror(-r));
			http_stop(d);
			return 1;
		}
	}
	(void)fprintf(stderr,
	    strchr(host, ':') != NULL ? "listening on http://[%s]:%u/api/v2\n"
	                              : "listening on http://%s:%u/api/v2\n",
	    host, bound);
	(void)fflush(stderr);
	do {
		r = sigwait(&set, &sig);
	} while (r != 0);
	/* End waits in streams and drivers first, then join connections. */
	store_lock();
	store.stopping = true;
	store_broadcast();
	while (store.drivers > 0)
		(void)store_wait(util_now_ms() + 100);
	store_unlock();
	http_stop(d);
	store_lock();
	store_done();
	inspect_done();
	store_unlock();
	deliver_done();
	return 0;
}

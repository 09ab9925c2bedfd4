/*
 * SPDX-License-Identifier: MIT
 *
 * m8tesd: command line, environment and credentials, wiring of the loop,
 * the control socket, the dispatcher and the upstream client, and the exit
 * status. The only file that exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "audit.h"
#include "dispatch.h"
#include "hooks.h"
#include "inbox.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "server.h"
#include "sig.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"
#include "webhook.h"

#define DEFAULT_BASE_URL "https://api.m8tes.ai/api/v2"
#define KEY_FILE_MAX 4096
#define MAX_CONNS 4096
#define MAX_OUT (16u * 1024 * 1024)
#define LISTEN_FDS_START 3

struct options {
	const char *socket;
	const char *base_url;
	const char *key_file;
	const char *state_dir;
	const char *cache_dir;
	const char *webhook_listen;
	const char *config;
	const char *log_level;
	unsigned timeout_s;
	double poll_interval_s;
	double backoff_s;
	double max_retry_after_s;
};

static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: m8tesd [options]\n"
	    "\n"
	    "Serves the m8tes.ai agent API to local programs on a Unix socket,\n"
	    "holding the API key so that no other process has to.\n"
	    "\n"
	    "  --socket PATH          control socket (default\n"
	    "                         $XDG_RUNTIME_DIR/m8tes/m8tesd.sock, or\n"
	    "                         /run/m8tes/m8tesd.sock as root)\n"
	    "  --base-url URL         upstream API (default $M8TES_BASE_URL or\n"
	    "                         " DEFAULT_BASE_URL ")\n"
	    "  --api-key-file FILE    read the API key from FILE (else\n"
	    "                         $CREDENTIALS_DIRECTORY/m8tes-api-key,\n"
	    "                         else $M8TES_API_KEY)\n"
	    "  --state-dir DIR        durable state (webhook inbox, secrets)\n"
	    "  --cache-dir DIR        response and file cache\n"
	    "  --webhook-listen A:P   receive webhooks on this address\n"
	    "  --config FILE          configuration file\n"
	    "  --log-level LEVEL      error, warn, info (default) or debug\n"
	    "  --upstream-timeout S   connect and read-inactivity timeout\n"
	    "                         (default 300)\n"
	    "  --poll-interval S      default runs.poll interval (default 2)\n"
	    "  --retry-backoff S      first retry wait (default 0.5, then x2)\n"
	    "  --max-retry-after S    longest Retry-After waited (default 60)\n"
	    "  --foreground           accepted; m8tesd never forks\n"
	    "  -h, --help             this help\n"
	    "  -V, --version          version\n");
}

static int
parse_double(const char *s, double lo, double hi, double *ret)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || *end != '\0' || end == s || !(d >= lo && d <= hi))
		return -EINVAL;
	*ret = d;
	return 0;
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_SOCKET = 256,
		OPT_BASE_URL,
		OPT_KEY_FILE,
		OPT_STATE_DIR,
		OPT_CACHE_DIR,
		OPT_WEBHOOK,
		OPT_CONFIG,
		OPT_FOREGROUND,
		OPT_LOG_LEVEL,
		OPT_TIMEOUT,
		OPT_POLL,
		OPT_BACKOFF,
		OPT_MAX_RA,
	};
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"base-url", required_argument, NULL, OPT_BASE_URL},
	    {"api-key-file", required_argument, NULL, OPT_KEY_FILE},
	    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
	    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
	    {"webhook-listen", required_argument, NULL, OPT_WEBHOOK},
	    {"config", required_argument, NULL, OPT_CONFIG},
	    {"foreground", no_argument, NULL, OPT_FOREGROUND},
	    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	    {"upstream-timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"poll-interval", required_argument, NULL, OPT_POLL},
	    {"retry-backoff", required_argument, NULL, OPT_BACKOFF},
	    {"max-retry-after", required_argument, NULL, OPT_MAX_RA},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	double d;
	int c;

	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_BASE_URL:
			o->base_url = optarg;
			break;
		case OPT_KEY_FILE:
			o->key_file = optarg;
			break;
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case OPT_CACHE_DIR:
			o->cache_dir = optarg;
			break;
		case OPT_WEBHOOK:
			o->webhook_listen = optarg;
			break;
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_FOREGROUND:
			break;
		case OPT_LOG_LEVEL:
			o->log_level = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_double(optarg, 1, 86400, &d) < 0)
				goto bad;
			o->timeout_s = (unsigned)d;
			break;
		case OPT_POLL:
			if (parse_double(optarg, 0.01, 3600,
				&o->poll_interval_s) < 0)
				goto bad;
			break;
		case OPT_BACKOFF:
			if (parse_double(optarg, 0, 60, &o->backoff_s) < 0)
				goto bad;
			break;
		case OPT_MAX_RA:
			if (parse_double(optarg, 0, 86400,
				&o->max_retry_after_s) < 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			(void)printf("m8tesd %s (protocol %d)\n", M8TESD_VERSION,
			    PROTO_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		continue;
bad:
		(void)fprintf(stderr, "m8tesd: bad value \"%s\" for --%s\n",
		    optarg, opts[c - OPT_SOCKET].name);
		return -EINVAL;
	}
	if (optind < argc) {
		(void)fprintf(stderr, "m8tesd: unexpected argument \"%s\"\n",
		    argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Reads a key file (at most KEY_FILE_MAX bytes), trimming whitespace. */
static int
read_key_file(const char *path, struct sig_key *key)
{
	char buf[KEY_FILE_MAX + 1];
	ssize_t n;
	size_t len;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	r = n < 0 ? -errno : 0;
	(void)close(fd);
	if (r < 0)
		return r;
	if ((size_t)n > KEY_FILE_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return -EFBIG;
	}
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
			      buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	r = len > 0 ? sig_key_set(key, buf, len) : -ENOKEY;
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/*
 * The key, in order: --api-key-file, $CREDENTIALS_DIRECTORY/m8tes-api-key,
 * the key stored by auth.login (state.db, read later), $M8TES_API_KEY.
 * The environment's copy goes into env_key and out of the environment.
 */
static int
load_key(const struct options *o, struct sig_key *key, struct sig_key *env_key,
    const char **ret_source)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	const char *env = getenv("M8TES_API_KEY");
	int r = 0;

	*ret_source = "none";
	if (o->key_file != NULL) {
		r = read_key_file(o->key_file, key);
		if (r < 0)
			log_error("cannot read the API key from %s: %s",
			    o->key_file, strerror(-r));
		*ret_source = "file";
	} else if (creds != NULL && *creds != '\0') {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s/m8tes-api-key", creds);

		if (n > 0 && (size_t)n < sizeof(path) &&
		    access(path, F_OK) == 0) {
			r = read_key_file(path, key);
			if (r < 0)
				log_error("cannot read credential %s: %s", path,
				    strerror(-r));
			*ret_source = "credentials";
		}
	}
	if (env != NULL && *env != '\0' &&
	    sig_key_set(env_key, env, strlen(env)) < 0) {
		log_error("M8TES_API_KEY is not a usable key");
		r = -EINVAL;
	}
	/* Children (hooks) must never inherit the key. */
	if (env != NULL) {
		explicit_bzero((char *)(uintptr_t)env, strlen(env));
		(void)unsetenv("M8TES_API_KEY");
	}
	return r;
}

static const char *
key_cb(void *arg)
{
	return sig_key_get(arg);
}

/* mkdir -p for the socket's directory, 0700 for new directories. */
static int
make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

static const char *
default_socket(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (xdg != NULL && *xdg == '/') {
		(void)snprintf(buf, len, "%s/m8tes/m8tesd.sock", xdg);
		return buf;
	}
	return "/run/m8tes/m8tesd.sock";
}

/* A socket handed over by systemd (LISTEN_FDS), or -1. */
static int
inherited_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int fd = LISTEN_FDS_START;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid() ||
	    strtol(fds, NULL, 10) < 1)
		return -1;
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* The state directory: --state-dir, else the usual place for the user. */
static const char *
default_state_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (getuid() == 0)
		return "/var/lib/m8tes";
	if (xdg != NULL && *xdg == '/')
		(void)snprintf(buf, len, "%s/m8tes", xdg);
	else if (home != NULL && *home == '/')
		(void)snprintf(buf, len, "%s/.local/state/m8tes", home);
	else
		return NULL;
	return buf;
}

static int
load_secret_cb(const struct store_secret *s, void *arg)
{
	(void)webhook_add_secret(arg, s->secret, strlen(s->secret),
	    s->not_after);
	return 0;
}

/* Secrets from systemd credentials and from state.db (captured ones). */
static void
load_webhook_secrets(struct webhook *w, struct store *st)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");

	if (creds != NULL && *creds != '\0') {
		char path[PATH_MAX], buf[1024];
		ssize_t n;
		int fd;

		n = snprintf(path, sizeof(path), "%s/m8tes-webhook-secret",
		    creds);
		fd = n > 0 && (size_t)n < sizeof(path) ?
		    open(path, O_RDONLY | O_CLOEXEC) :
		    -1;
		if (fd != -1) {
			n = read(fd, buf, sizeof(buf) - 1);
			(void)close(fd);
			while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
				n--;
			if (n > 0)
				(void)webhook_add_secret(w, buf, (size_t)n, 0);
			explicit_bzero(buf, sizeof(buf));
		}
	}
	(void)store_secret_list(st, load_secret_cb, w);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
stop_signal_cb(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info("signal %d: stopping", signo);
	loop_stop(loop);
}

struct sleep_work {
	struct streams *streams;
	struct inbox *inbox;
	struct hooks *hooks;
	int64_t hooked_seq; /* inbox seq the hooks last saw */
	struct server *srv;
};

/* Before each sleep: feed subscribers that were behind, then write. */
static void
flush_hook(struct loop *loop, void *arg)
{
	struct sleep_work *w = arg;

	(void)loop;
	streams_pump(w->streams);
	if (w->inbox != NULL) {
		inbox_pump(w->inbox);
		if (w->hooks != NULL &&
		    inbox_last_seq(w->inbox) != w->hooked_seq) {
			w->hooked_seq = inbox_last_seq(w->inbox);
			hooks_kick(w->hooks);
		}
	}
	server_flush(w->srv);
}

int
main(int argc, char **argv)
{
	struct options o = {
	    .timeout_s = 300,
	    .poll_interval_s = 2.0,
	    .backoff_s = 0.5,
	    .max_retry_after_s = 60,
	};
	struct server_config scfg = {
	    .max_conns = MAX_CONNS,
	    .max_line = PROTO_MAX_LINE,
	    .max_out = MAX_OUT,
	};
	struct server_handlers sh = {
	    .line = dispatch_line,
	    .overlong = dispatch_overlong,
	    .pending = dispatch_pending,
	    .closed = dispatch_closed,
	};
	struct upstream_config ucfg = {0};
	struct dispatch_config dcfg = {0};
	struct loop *loop = NULL;
	struct upstream *up = NULL;
	struct dispatch *d = NULL;
	struct server *srv = NULL;
	struct streams *streams = NULL;
	struct store *store = NULL;
	struct inbox *inbox = NULL;
	struct webhook *webhook = NULL;
	struct sleep_work hooks = {0};
	char statebuf[PATH_MAX];
	const char *state_dir;
	struct sig_key *key = NULL, *env_key = NULL;
	const char *key_source = "none";
	struct audit *audit = NULL;
	enum log_level level = LOG_LEVEL_INFO;
	char sockbuf[PATH_MAX];
	const char *sockpath;
	int status = 1, fd, r;

	if (parse_args(argc, argv, &o) < 0)
		return 2;
	if (o.log_level != NULL && log_level_parse(o.log_level, &level) < 0) {
		(void)fprintf(stderr, "m8tesd: bad log level \"%s\"\n",
		    o.log_level);
		return 2;
	}
	log_init(level, getenv("JOURNAL_STREAM") != NULL);
	(void)signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (o.base_url == NULL) {
		const char *e = getenv("M8TES_BASE_URL");

		o.base_url = e != NULL && *e != '\0' ? e : DEFAULT_BASE_URL;
	}
	if (strncmp(o.base_url, "http://", 7) != 0 &&
	    strncmp(o.base_url, "https://", 8) != 0) {
		log_error("--base-url must start with http:// or https://");
		return 2;
	}
	if (methods_init() < 0 || sig_init() < 0 ||
	    upstream_global_init() < 0) {
		log_error("start-up failed");
		return 1;
	}
	key = sig_key_new();
	env_key = sig_key_new();
	if (key == NULL || env_key == NULL)
		goto out;
	if (load_key(&o, key, env_key, &key_source) < 0)
		goto out;

	if ((r = loop_new(&loop)) < 0) {
		log_warnc(r, "event loop");
		goto out;
	}
	ucfg.base_url = o.base_url;
	ucfg.timeout_s = o.timeout_s;
	ucfg.max_retry_after_s = o.max_retry_after_s;
	ucfg.backoff_base_s = o.backoff_s;
	ucfg.key = key_cb;
	ucfg.key_arg = key;
	if ((r = upstream_new(loop, &ucfg, &up)) < 0) {
		log_warnc(r, "upstream client");
		goto out;
	}
	dcfg.poll_interval_s = o.poll_interval_s;
	dcfg.poll_timeout_s = 300;
	dcfg.admin_uid = getuid();
	if ((r = dispatch_new(loop, up, key, &dcfg, &d)) < 0 ||
	    (r = streams_new(loop, up, &streams)) < 0)
		goto out;
	dispatch_set_streams(d, streams);

	state_dir = o.state_dir != NULL ?
	    o.state_dir :
	    default_state_dir(statebuf, sizeof(statebuf));
	if (state_dir != NULL) {
		char db[PATH_MAX];

		r = snprintf(db, sizeof(db), "%s/state.db", state_dir);
		if (r < 0 || (size_t)r >= sizeof(db)) {
			log_error("--state-dir is too long");
			goto out;
		}
		if ((r = make_parent(db)) < 0) {
			log_warnc(r, "cannot create %s", state_dir);
			goto out;
		}
		r = store_open(db, &store);
		if (r == -EBADMSG) {
			log_error("%s is damaged; it holds the webhook inbox, "
				  "so it is left alone: move it away to start "
				  "afresh",
			    db);
			goto out;
		}
		if (r < 0) {
			log_warnc(r, "cannot open %s", db);
			goto out;
		}
		if (!sig_key_isset(key) && store_key_get(store, key) == 0)
			key_source = "login";
		if ((r = audit_new(loop, store, &audit)) < 0)
			goto out;
		if ((r = inbox_new(loop, store, &inbox)) < 0) {
			log_warnc(r, "webhook inbox");
			goto out;
		}
		if (o.webhook_listen != NULL) {
			struct webhook_config wcfg = {
			    .listen = o.webhook_listen,
			    .state_db = db,
			    .tolerance_s = 300,
			    .max_body = 1024 * 1024,
			    .max_conns = 1024,
			    .idle_timeout_s = 10,
			};

			r = webhook_new(loop, inbox, &wcfg, &webhook);
			if (r < 0) {
				log_warnc(r, "cannot receive webhooks on %s",
				    o.webhook_listen);
				goto out;
			}
			load_webhook_secrets(webhook, store);
			log_info("receiving webhooks on port %u (%zu secrets)",
			    webhook_port(webhook),
			    webhook_secret_count(webhook));
		}
	} else if (o.webhook_listen != NULL) {
		log_error("--webhook-listen needs --state-dir");
		goto out;
	}
	dispatch_set_webhooks(d, store, inbox, webhook);
	dispatch_set_audit(d, audit);
	if (!sig_key_isset(key) && sig_key_isset(env_key)) {
		(void)sig_key_set(key, sig_key_get(env_key),
		    strlen(sig_key_get(env_key)));
		key_source = "env";
	}
	sig_key_free(env_key);
	env_key = NULL;
	dispatch_set_key_source(d, key_source);
	if (!sig_key_isset(key))
		log_warn("no API key: upstream calls fail with %s until "
			 "m8tes auth login",
		    E_NO_KEY);
	sh.arg = d;

	fd = inherited_socket();
	sockpath = o.socket != NULL ? o.socket :
				      default_socket(sockbuf, sizeof(sockbuf));
	if (fd < 0) {
		if ((r = make_parent(sockpath)) < 0) {
			log_warnc(r, "cannot create the directory of %s",
			    sockpath);
			goto out;
		}
		fd = server_listen_unix(sockpath, 0660);
		if (fd < 0) {
			log_warnc(fd, "cannot listen on %s", sockpath);
			goto out;
		}
	}
	if ((r = server_new(loop, fd, &scfg, &sh, &srv)) < 0) {
		(void)close(fd);
		goto out;
	}
	dispatch_set_server(d, srv);
	hooks.streams = streams;
	hooks.inbox = inbox;
	hooks.srv = srv;
	if (loop_hook_add(loop, flush_hook, &hooks) < 0 ||
	    loop_signal_add(loop, SIGINT, stop_signal_cb, NULL) < 0 ||
	    loop_signal_add(loop, SIGTERM, stop_signal_cb, NULL) < 0)
		goto out;
	log_info("m8tesd %s listening on %s, upstream %s", M8TESD_VERSION,
	    sockpath, o.base_url);
	if ((r = loop_run(loop)) < 0) {
		log_warnc(r, "event loop");
		goto out;
	}
	server_flush(srv);
	status = 0;
	log_info("stopped");
out:
	server_free(srv);
	webhook_free(webhook);
	inbox_free(inbox);
	audit_free(audit);
	store_close(store);
	streams_free(streams);
	dispatch_free(d);
	upstream_free(up);
	loop_free(loop);
	sig_key_free(key);
	sig_key_free(env_key);
	upstream_global_done();
	return status;
}

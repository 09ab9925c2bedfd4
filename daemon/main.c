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
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "codec.h"
#include "audit.h"
#include "cache.h"
#include "config.h"
#include "dispatch.h"
#include "hooks.h"
#include "inbox.h"
#include "log.h"
#include "loop.h"
#include "methods.h"
#include "notify.h"
#include "policy.h"
#include "server.h"
#include "sig.h"
#include "store.h"
#include "streams.h"
#include "upstream.h"
#include "webhook.h"

#define DEFAULT_BASE_URL "https://api.m8tes.ai/api/v2"
#define KEY_FILE_MAX 4096
#define MAX_OUT (16u * 1024 * 1024)
#define LISTEN_FDS_START 3
#define PRUNE_PERIOD_MS (3600u * 1000) /* state.db retention: hourly */
#define PRUNE_BATCH 128                /* rows deleted per transaction */
#define PRUNE_PAUSE_MS 10              /* between batches while behind */
#define PRUNE_RETRY_MS 5000            /* after a failure (database busy) */

struct options {
	struct config cli; /* what the command line set */
	const char *config_path;
	bool config_given;
	char config_buf[PATH_MAX]; /* the default path, when none is given */
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
	    "                         the key stored by `m8tes auth login`,\n"
	    "                         $M8TES_API_KEY)\n"
	    "  --state-dir DIR        durable state: webhook inbox, secrets,\n"
	    "                         stored key, audit log, finished runs'\n"
	    "                         event logs\n"
	    "  --cache-dir DIR        response and file cache\n"
	    "  --webhook-listen A:P   receive webhooks on this address\n"
	    "  --config FILE          configuration file (default\n"
	    "                         /etc/m8tes/m8tesd.conf as root, else\n"
	    "                         $XDG_CONFIG_HOME/m8tes/m8tesd.conf)\n"
	    "  --log-level LEVEL      error, warn, info (default) or debug\n"
	    "  --upstream-timeout S   connect and read-inactivity timeout\n"
	    "                         (default 300)\n"
	    "  --poll-interval S      default runs.poll interval (default 2)\n"
	    "  --retry-backoff S      first retry wait (default 0.5, then x2)\n"
	    "  --max-retry-after S    longest Retry-After waited (default 60)\n"
	    "  --cache-max-bytes N    cap of cached pages and objects (64M)\n"
	    "  --cache-max-file-bytes N  cap of cached downloads (1G)\n"
	    "  --cache-ttl LIST       TTLs per resource, e.g. \"agents=60 runs=5\"\n"
	    "  --foreground           accepted; m8tesd never forks\n"
	    "  -h, --help             this help\n"
	    "  -V, --version          version\n"
	    "\n"
	    "Every option is also a key of the configuration file (see\n"
	    "m8tesd.conf(5)); the command line wins. SIGHUP or daemon.reload\n"
	    "re-reads the file. Keys of the file alone include the retention\n"
	    "of state.db: run_log_retention_days (30), run_log_max_stored\n"
	    "(10000 runs), webhook_retention_days (30) and webhook_max_stored\n"
	    "(1000000 webhooks).\n");
}

/* Command-line options, as config keys: checked by the config module. */
static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"base-url", required_argument, NULL, 'b'},
	    {"api-key-file", required_argument, NULL, 'k'},
	    {"state-dir", required_argument, NULL, 'S'},
	    {"cache-dir", required_argument, NULL, 'C'},
	    {"webhook-listen", required_argument, NULL, 'w'},
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"upstream-timeout", required_argument, NULL, 't'},
	    {"poll-interval", required_argument, NULL, 'p'},
	    {"retry-backoff", required_argument, NULL, 'r'},
	    {"max-retry-after", required_argument, NULL, 'R'},
	    {"cache-max-bytes", required_argument, NULL, 'B'},
	    {"cache-max-file-bytes", required_argument, NULL, 'F'},
	    {"cache-ttl", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	char err[256];
	int c, idx;

	while ((c = getopt_long(argc, argv, "hV", opts, &idx)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			o->config_given = true;
			break;
		case 'f':
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			(void)printf("m8tesd %s (protocol %d)\n", M8TESD_VERSION,
			    PROTO_VERSION);
			exit(0);
		case '?':
			usage(stderr);
			return -EINVAL;
		default:
			if (config_set(&o->cli, opts[idx].name, optarg, err,
				sizeof(err)) < 0) {
				(void)fprintf(stderr, "m8tesd: --%s: %s\n",
				    opts[idx].name, err);
				return -EINVAL;
			}
			break;
		}
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

/* Everything main owns, for the signal and reload callbacks. */
struct daemon {
	struct options *opts;
	struct config cfg;
	struct loop *loop;
	struct upstream *up;
	struct dispatch *d;
	struct server *srv;
	struct streams *streams;
	struct store *store;
	struct inbox *inbox;
	struct webhook *webhook;
	struct hooks *hooks;
	struct audit *audit;
	struct cache *cache;
	struct policy *policy;
	struct sig_key *key;
	const char *key_source;
	int64_t hooked_seq; /* inbox seq the hooks last saw */
	bool runs_changed;  /* a run.* webhook came: cached runs are stale */
	const char *sock_path; /* bound here (not inherited): removed at exit */
	struct stat sock_st;
	struct loop_timer *watchdog;
	uint64_t watchdog_ms;
	struct loop_timer *pruner; /* state.db retention */
	long long pruned;          /* rows deleted by the pass under way */
};

/*
 * The key, in order: --api-key-file, $CREDENTIALS_DIRECTORY/m8tes-api-key,
 * the key stored by auth.login (state.db, read later), $M8TES_API_KEY.
 * The environment's copy goes into env_key and out of the environment.
 */
static int
load_key(const struct config *cfg, struct sig_key *key,
    struct sig_key *env_key, const char **ret_source)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	const char *env = getenv("M8TES_API_KEY");
	int r = 0;

	*ret_source = "none";
	if (cfg->api_key_file != NULL) {
		r = read_key_file(cfg->api_key_file, key);
		if (r < 0)
			log_error("cannot read the API key from %s: %s",
			    cfg->api_key_file, strerror(-r));
		*ret_source = "file";
	} else if (creds != NULL && *creds != '\0') {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s/m8tes-api-key", creds);

		if (n > 0 && (size_t)n < sizeof(path) &&
		    access(path, F_OK) == 0) {
			r = read_key_file(path, key);
			/* An empty credential means "no key here". */
			if (r == -ENOKEY)
				r = 0;
			else if (r < 0)
				log_error("cannot read credential %s: %s", path,
				    strerror(-r));
			else
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

/* mkdir -p for the parent of path, 0700 for the last directory. */
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

	if (getuid() != 0 && xdg != NULL && *xdg == '/') {
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

/* The state directory: the configured one, else the usual place. */
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

/* Reads a small secret file into buf, trimmed; its length or -errno. */
static ssize_t
read_secret(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	(void)close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			    buf[n - 1] == ' '))
		n--;
	return n;
}

/*
 * Secrets from the configuration, systemd credentials and state.db (those
 * captured when an endpoint was created through the daemon).
 */
static void
load_webhook_secrets(struct daemon *dm)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX], buf[1024];
	ssize_t n;

	/* A reload replaces the whole set. */
	webhook_clear_secrets(dm->webhook);
	for (size_t i = 0; i < dm->cfg.nwebhook_secrets; i++)
		(void)webhook_add_secret(dm->webhook, dm->cfg.webhook_secrets[i],
		    strlen(dm->cfg.webhook_secrets[i]), 0);
	if (dm->cfg.webhook_secret_file != NULL) {
		n = read_secret(dm->cfg.webhook_secret_file, buf, sizeof(buf));
		if (n > 0)
			(void)webhook_add_secret(dm->webhook, buf, (size_t)n, 0);
		else
			log_warn("cannot read %s", dm->cfg.webhook_secret_file);
	}
	if (creds != NULL && *creds != '\0') {
		n = snprintf(path, sizeof(path), "%s/m8tes-webhook-secret",
		    creds);
		if (n > 0 && (size_t)n < sizeof(path) &&
		    (n = read_secret(path, buf, sizeof(buf))) > 0)
			(void)webhook_add_secret(dm->webhook, buf, (size_t)n, 0);
	}
	explicit_bzero(buf, sizeof(buf));
	(void)store_secret_list(dm->store, load_secret_cb, dm->webhook);
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
	(void)notify_stopping("stopping");
	loop_stop(loop);
}

/* Before each sleep: feed subscribers that were behind, then write. */
static void
flush_hook(struct loop *loop, void *arg)
{
	struct daemon *dm = arg;

	(void)loop;
	streams_pump(dm->streams);
	if (dm->runs_changed) {
		/* Once for the whole batch of deliveries just committed. */
		dm->runs_changed = false;
		(void)cache_invalidate(dm->cache, "runs", NULL);
	}
	if (dm->inbox != NULL) {
		inbox_pump(dm->inbox);
		if (dm->hooks != NULL &&
		    inbox_last_seq(dm->inbox) != dm->hooked_seq) {
			dm->hooked_seq = inbox_last_seq(dm->inbox);
			hooks_kick(dm->hooks);
		}
	}
	server_flush(dm->srv);
}

static void
watchdog_cb(struct loop *loop, void *arg)
{
	struct daemon *dm = arg;

	/* The loop turned: it is alive. */
	(void)notify_watchdog();
	(void)loop_timer_add(loop, dm->watchdog_ms, watchdog_cb, dm,
	    &dm->watchdog);
}

/*
 * state.db's retention: finished runs' logs and received webhooks past
 * their age or count limit go, a small batch per transaction and the next
 * batch soon while there is more, so neither the loop nor the webhook
 * writer waits long; then again in an hour.
 */
static void
prune_cb(struct loop *loop, void *arg)
{
	struct daemon *dm = arg;
	const struct config *c = &dm->cfg;
	struct store_retention keep = {
	    .inbox_max_count = c->webhook_max_stored,
	    .inbox_max_age = (int64_t)c->webhook_retention_days * 86400,
	    .runs_max_count = c->run_log_max_stored,
	    .runs_max_age = (int64_t)c->run_log_retention_days * 86400,
	};
	uint64_t next = PRUNE_PERIOD_MS;
	int n;

	dm->pruner = NULL;
	n = store_prune(dm->store, &keep, (int64_t)time(NULL), PRUNE_BATCH);
	if (n < 0) {
		log_warn("state.db retention: %s; trying again in %u s",
		    strerror(-n), PRUNE_RETRY_MS / 1000);
		next = PRUNE_RETRY_MS;
	} else if (n == PRUNE_BATCH) {
		dm->pruned += n;
		next = PRUNE_PAUSE_MS;
	} else if (dm->pruned + n > 0) {
		log_info("state.db retention: %lld rows deleted",
		    dm->pruned + n);
		dm->pruned = 0;
	}
	if (loop_timer_add(loop, next, prune_cb, dm, &dm->pruner) < 0)
		dm->pruner = NULL;
}

/* A retention pass now (at start, and after a reload). */
static void
prune_soon(struct daemon *dm)
{
	if (dm->store == NULL)
		return;
	if (dm->pruner != NULL)
		loop_timer_del(dm->loop, dm->pruner);
	dm->pruned = 0;
	if (loop_timer_add(dm->loop, 0, prune_cb, dm, &dm->pruner) < 0)
		dm->pruner = NULL;
}

/* What a reload can change without a restart. */
static void
apply_config(struct daemon *dm)
{
	const struct config *c = &dm->cfg;

	log_set_level(c->log_level);
	if (c->base_url != NULL)
		(void)upstream_set_base_url(dm->up, c->base_url);
	upstream_set_limits(dm->up, (unsigned)c->upstream_timeout,
	    c->max_retry_after, c->retry_backoff);
	dispatch_set_poll_interval(dm->d, c->poll_interval);
}

/*
 * SIGHUP and daemon.reload: parse the file again; a bad one keeps the old
 * configuration. Returns 0 or -errno with the reason in err.
 */
static int
reload(void *arg, char *err, size_t errlen)
{
	struct daemon *dm = arg;
	struct config old;
	uint64_t changed, restart;
	int r;

	(void)notify_reloading("reloading the configuration");
	config_init(&old);
	r = config_merge(&old, &dm->cfg, err, errlen);
	if (r == 0)
		r = config_reload(dm->opts->config_path, dm->opts->config_given,
		    &dm->opts->cli, &dm->cfg, err, errlen);
	if (r < 0) {
		log_warn("reload failed, keeping the running configuration: %s",
		    err);
		config_done(&old);
		(void)notify_ready("running (reload failed)");
		return r;
	}
	changed = config_diff(&old, &dm->cfg);
	restart = changed &
	    (CONFIG_BIT(CONFIG_SOCKET) | CONFIG_BIT(CONFIG_STATE_DIR) |
		CONFIG_BIT(CONFIG_CACHE_DIR) | CONFIG_BIT(CONFIG_WEBHOOK_LISTEN) |
		CONFIG_BIT(CONFIG_CACHE_MAX_BYTES) |
		CONFIG_BIT(CONFIG_CACHE_MAX_FILE_BYTES) |
		CONFIG_BIT(CONFIG_CACHE_TTL) |
		CONFIG_BIT(CONFIG_SOCKET_MODE) |
		CONFIG_BIT(CONFIG_SOCKET_GROUP) |
		CONFIG_BIT(CONFIG_WEBHOOK_TLS_CERT) |
		CONFIG_BIT(CONFIG_WEBHOOK_TLS_KEY) | CONFIG_BIT(CONFIG_HOOKS) |
		CONFIG_BIT(CONFIG_API_KEY_FILE) |
		CONFIG_BIT(CONFIG_MAX_CONNECTIONS) |
		CONFIG_BIT(CONFIG_WEBHOOK_TOLERANCE) |
		CONFIG_BIT(CONFIG_WEBHOOK_MAX_BODY) |
		CONFIG_BIT(CONFIG_AUDIT_RETENTION_DAYS));
	config_done(&old);
	apply_config(dm);
	if (dm->policy != NULL && (r = policy_reload(dm->policy, &dm->cfg)) < 0)
		log_warn("policy not reloaded: %s", strerror(-r));
	if (dm->webhook != NULL)
		load_webhook_secrets(dm);
	prune_soon(dm);
	for (int k = 0; k < CONFIG_NKEYS; k++)
		if (restart & CONFIG_BIT(k))
			log_warn("reload: %s changed; it takes effect at the "
				 "next start",
			    config_key_name((enum config_key)k));
	log_info("configuration reloaded");
	(void)notify_ready("running");
	(void)snprintf(err, errlen, "%s",
	    restart ? "some changes need a restart" : "");
	return 0;
}

static void
hup_cb(struct loop *loop, int signo, void *arg)
{
	char err[512];

	(void)loop;
	(void)signo;
	(void)reload(arg, err, sizeof(err));
}

/* Reads the command line and the file into dm->cfg. Exit status or 0. */
static int
configure(struct daemon *dm, int argc, char **argv)
{
	char err[512];
	struct config file;
	int r;

	config_init(&dm->opts->cli);
	if (parse_args(argc, argv, dm->opts) < 0)
		return 2;
	if (dm->opts->config_path == NULL) {
		dm->opts->config_path = config_default_path(
		    dm->opts->config_buf, sizeof(dm->opts->config_buf));
	}
	config_init(&file);
	if (dm->opts->config_path != NULL) {
		r = config_load(dm->opts->config_path, dm->opts->config_given,
		    &file, err, sizeof(err));
		if (r < 0) {
			(void)fprintf(stderr, "m8tesd: %s\n", err);
			config_done(&file);
			return 2;
		}
	}
	r = config_merge(&file, &dm->opts->cli, err, sizeof(err));
	if (r < 0) {
		(void)fprintf(stderr, "m8tesd: %s\n", err);
		config_done(&file);
		return 2;
	}
	dm->cfg = file;
	if (dm->cfg.base_url == NULL) {
		const char *e = getenv("M8TES_BASE_URL");

		if (config_set(&dm->cfg, "base_url",
			e != NULL && *e != '\0' ? e : DEFAULT_BASE_URL, err,
			sizeof(err)) < 0) {
			(void)fprintf(stderr, "m8tesd: M8TES_BASE_URL: %s\n",
			    err);
			return 2;
		}
		/* Not a configured value: a reload keeps it. */
		dm->cfg.set &= ~CONFIG_BIT(CONFIG_BASE_URL);
		(void)config_set(&dm->opts->cli, "base_url",
		    dm->cfg.base_url, err, sizeof(err));
	}
	return 0;
}

/* Opens state.db, the inbox, the audit log and the webhook receiver. */
static int
open_state(struct daemon *dm, const char *state_dir)
{
	char db[PATH_MAX];
	int r;

	r = snprintf(db, sizeof(db), "%s/state.db", state_dir);
	if (r < 0 || (size_t)r >= sizeof(db)) {
		log_error("the state directory's name is too long");
		return -ENAMETOOLONG;
	}
	if ((r = make_parent(db)) < 0)
		return log_warnc(r, "cannot create %s", state_dir);
	r = store_open(db, &dm->store);
	if (r == -EBADMSG) {
		log_error("%s is damaged; it holds the webhook inbox, so it is "
			  "left alone: move it away to start afresh",
		    db);
		return r;
	}
	if (r < 0)
		return log_warnc(r, "cannot open %s", db);
	if (!sig_key_isset(dm->key) && store_key_get(dm->store, dm->key) == 0)
		dm->key_source = "login";
	if ((r = audit_new(dm->loop, dm->store, dm->cfg.audit_retention_days,
		 &dm->audit)) < 0 ||
	    (r = inbox_new(dm->loop, dm->store, &dm->inbox)) < 0)
		return log_warnc(r, "state");
	if (dm->cfg.webhook_listen != NULL) {
		struct webhook_config wcfg = {
		    .listen = dm->cfg.webhook_listen,
		    .state_db = db,
		    .tolerance_s = dm->cfg.webhook_tolerance,
		    .max_body = dm->cfg.webhook_max_body,
		    .max_conns = WEBHOOK_MAX_CONNS,
		    .timeout_s = WEBHOOK_TIMEOUT_S,
		    .tls_cert = dm->cfg.webhook_tls_cert,
		    .tls_key = dm->cfg.webhook_tls_key,
		};

		r = webhook_new(dm->loop, dm->inbox, &wcfg, &dm->webhook);
		if (r < 0)
			return log_warnc(r, "cannot receive webhooks on %s",
			    dm->cfg.webhook_listen);
		load_webhook_secrets(dm);
		log_info("receiving webhooks on port %u (%zu secrets)",
		    webhook_port(dm->webhook), webhook_secret_count(dm->webhook));
	}
	if (dm->cfg.nhooks > 0) {
		r = hooks_new(dm->loop, dm->store, dm->up, dm->cfg.hooks,
		    dm->cfg.nhooks, &dm->hooks);
		if (r < 0)
			return log_warnc(r, "hooks");
	}
	return 0;
}

/* The cache directory: configured, else the usual place; NULL = none. */
static const char *
default_cache_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (getuid() == 0)
		return "/var/cache/m8tes";
	if (xdg != NULL && *xdg == '/')
		(void)snprintf(buf, len, "%s/m8tes", xdg);
	else if (home != NULL && *home == '/')
		(void)snprintf(buf, len, "%s/.cache/m8tes", home);
	else
		return NULL;
	return buf;
}

/*
 * Opens the cache with the configured caps and TTLs. The cache is
 * disposable: without one (no directory, or it cannot be opened), calls
 * still work, uncached.
 */
static void
open_cache(struct daemon *dm)
{
	struct config_ttl ttls[CONFIG_MAX_TTLS];
	struct cache_ttl cttls[CONFIG_MAX_TTLS];
	char cachebuf[PATH_MAX];
	const char *dir = dm->cfg.cache_dir != NULL
	    ? dm->cfg.cache_dir
	    : default_cache_dir(cachebuf, sizeof(cachebuf));
	struct cache_config ccfg = {
	    .dir = dir,
	    .max_entry_bytes = dm->cfg.cache_max_bytes,
	    .max_blob_bytes = dm->cfg.cache_max_file_bytes,
	    .ttls = cttls,
	};
	int n = 0, r;

	/* The configuration module checked the value already. */
	if (dm->cfg.cache_ttl != NULL)
		n = config_parse_ttls(dm->cfg.cache_ttl, ttls, CONFIG_MAX_TTLS);
	for (int i = 0; i < n; i++)
		cttls[i] = (struct cache_ttl){.resource = ttls[i].resource,
		    .ttl_ms = ttls[i].ttl_ms};
	ccfg.nttls = n > 0 ? (size_t)n : 0;
	if (dir != NULL && (r = cache_open(&ccfg, &dm->cache)) < 0)
		log_warnc(r, "no cache in %s", dir);
	dispatch_set_cache(dm->d, dm->cache);
}

/*
 * A received run.completed or run.failed outdates the cached runs: they
 * are dropped before the loop sleeps, once however many came.
 */
static void
webhook_commit_cb(void *arg, const struct store_webhook *wh)
{
	struct daemon *dm = arg;

	if (dm->cache != NULL && wh->event_type != NULL &&
	    strncmp(wh->event_type, "run.", 4) == 0)
		dm->runs_changed = true;
}

/* Our socket file, unless another daemon has bound the path since. */
static void
remove_socket(const struct daemon *dm)
{
	struct stat st;

	if (dm->sock_path != NULL && lstat(dm->sock_path, &st) == 0 &&
	    st.st_dev == dm->sock_st.st_dev && st.st_ino == dm->sock_st.st_ino)
		(void)unlink(dm->sock_path);
}

/* The control socket: inherited from systemd, or bound here. */
static int
open_socket(struct daemon *dm, const char **ret_name)
{
	static char sockbuf[PATH_MAX];
	const char *path;
	int fd = inherited_socket(), r;

	if (fd >= 0) {
		*ret_name = "the socket passed by systemd";
		return fd;
	}
	path = dm->cfg.socket != NULL ? dm->cfg.socket :
					default_socket(sockbuf, sizeof(sockbuf));
	*ret_name = path;
	if ((r = make_parent(path)) < 0)
		return log_warnc(r, "cannot create the directory of %s", path);
	fd = server_listen_unix(path, (mode_t)dm->cfg.socket_mode);
	if (fd == -EADDRINUSE) {
		log_error("%s: another daemon is listening there", path);
		return fd;
	}
	if (fd < 0)
		return log_warnc(fd, "cannot listen on %s", path);
	if (stat(path, &dm->sock_st) == 0)
		dm->sock_path = path;
	if (dm->cfg.socket_group != NULL) {
		struct group *g = getgrnam(dm->cfg.socket_group);
		char *end;
		unsigned long gid = strtoul(dm->cfg.socket_group, &end, 10);

		if (g != NULL)
			gid = g->gr_gid;
		else if (*end != '\0')
			gid = (unsigned long)-1;
		if (gid == (unsigned long)-1 ||
		    chown(path, (uid_t)-1, (gid_t)gid) == -1)
			log_warn("cannot give %s to group %s", path,
			    dm->cfg.socket_group);
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct options opts = {0};
	struct daemon dm = {.opts = &opts, .key_source = "none"};
	struct server_config scfg = {
	    .max_line = PROTO_MAX_LINE,
	    .max_out = MAX_OUT,
	};
	struct server_handlers sh = {
	    .line = dispatch_line,
	    .overlong = dispatch_overlong,
	    .accepted = dispatch_accepted,
	    .pending = dispatch_pending,
	    .closed = dispatch_closed,
	};
	struct upstream_config ucfg = {0};
	struct dispatch_config dcfg = {0};
	struct sig_key *env_key = NULL;
	char statebuf[PATH_MAX];
	const char *state_dir, *sockname = NULL;
	uint64_t wd_usec = 0;
	int status = 1, fd, r;

	r = configure(&dm, argc, argv);
	if (r != 0)
		return r;
	log_init(dm.cfg.log_level, getenv("JOURNAL_STREAM") != NULL);
	(void)signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	/* No allocation statistics: they take a global mutex per malloc. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (methods_init() < 0 || sig_init() < 0 ||
	    upstream_global_init() < 0) {
		log_error("start-up failed");
		goto out;
	}
	dm.key = sig_key_new();
	env_key = sig_key_new();
	if (dm.key == NULL || env_key == NULL)
		goto out;
	if (load_key(&dm.cfg, dm.key, env_key, &dm.key_source) < 0)
		goto out;
	if ((r = loop_new(&dm.loop)) < 0) {
		log_warnc(r, "event loop");
		goto out;
	}
	/*
	 * Block the signals we take through the signalfd before any thread
	 * (the webhook writer, libcurl's resolver) exists, so that every
	 * thread inherits the mask and none of them takes SIGTERM itself.
	 */
	if (loop_signal_add(dm.loop, SIGINT, stop_signal_cb, NULL) < 0 ||
	    loop_signal_add(dm.loop, SIGTERM, stop_signal_cb, NULL) < 0 ||
	    loop_signal_add(dm.loop, SIGHUP, hup_cb, &dm) < 0)
		goto out;
	ucfg.base_url = dm.cfg.base_url;
	ucfg.timeout_s = (unsigned)dm.cfg.upstream_timeout;
	ucfg.max_retry_after_s = dm.cfg.max_retry_after;
	ucfg.backoff_base_s = dm.cfg.retry_backoff;
	ucfg.key = key_cb;
	ucfg.key_arg = dm.key;
	if ((r = upstream_new(dm.loop, &ucfg, &dm.up)) < 0) {
		log_warnc(r, "upstream client");
		goto out;
	}
	dm.policy = policy_new(&dm.cfg);
	dcfg.poll_interval_s = dm.cfg.poll_interval;
	dcfg.poll_timeout_s = 300;
	dcfg.admin_uid = getuid();
	if (dm.policy == NULL ||
	    (r = dispatch_new(dm.loop, dm.up, dm.key, &dcfg, &dm.d)) < 0 ||
	    (r = streams_new(dm.loop, dm.up, &dm.streams)) < 0)
		goto out;
	dispatch_set_streams(dm.d, dm.streams);
	dispatch_set_policy(dm.d, dm.policy);
	dispatch_set_reload(dm.d, reload, &dm);

	state_dir = dm.cfg.state_dir != NULL ?
	    dm.cfg.state_dir :
	    default_state_dir(statebuf, sizeof(statebuf));
	if (state_dir != NULL) {
		if (open_state(&dm, state_dir) < 0)
			goto out;
	} else if (dm.cfg.webhook_listen != NULL) {
		log_error("webhook_listen needs a state directory");
		goto out;
	}
	open_cache(&dm);
	streams_set_store(dm.streams, dm.store);
	prune_soon(&dm);
	if (dm.inbox != NULL)
		inbox_set_commit_cb(dm.inbox, webhook_commit_cb, &dm);
	dispatch_set_webhooks(dm.d, dm.store, dm.inbox, dm.webhook);
	dispatch_set_audit(dm.d, dm.audit);
	if (!sig_key_isset(dm.key) && sig_key_isset(env_key)) {
		(void)sig_key_set(dm.key, sig_key_get(env_key),
		    strlen(sig_key_get(env_key)));
		dm.key_source = "env";
	}
	sig_key_free(env_key);
	env_key = NULL;
	dispatch_set_key_source(dm.d, dm.key_source);
	if (!sig_key_isset(dm.key))
		log_warn("no API key: upstream calls fail with %s until "
			 "m8tes auth login",
		    E_NO_KEY);

	fd = open_socket(&dm, &sockname);
	if (fd < 0)
		goto out;
	scfg.max_conns = dm.cfg.max_connections;
	sh.arg = dm.d;
	if ((r = server_new(dm.loop, fd, &scfg, &sh, &dm.srv)) < 0) {
		(void)close(fd);
		goto out;
	}
	dispatch_set_server(dm.d, dm.srv);
	if (loop_hook_add(dm.loop, flush_hook, &dm) < 0)
		goto out;
	if (notify_watchdog_enabled(&wd_usec) > 0 && wd_usec > 0) {
		dm.watchdog_ms = wd_usec / 2000;
		(void)loop_timer_add(dm.loop, dm.watchdog_ms, watchdog_cb, &dm,
		    &dm.watchdog);
	}
	log_info("m8tesd %s listening on %s, upstream %s", M8TESD_VERSION,
	    sockname, dm.cfg.base_url);
	(void)notify_ready("running");
	if ((r = loop_run(dm.loop)) < 0) {
		log_warnc(r, "event loop");
		goto out;
	}
	server_flush(dm.srv);
	remove_socket(&dm);
	status = 0;
	log_info("stopped");
out:
	if (dm.watchdog != NULL)
		loop_timer_del(dm.loop, dm.watchdog);
	if (dm.pruner != NULL)
		loop_timer_del(dm.loop, dm.pruner);
	server_free(dm.srv);
	hooks_free(dm.hooks);
	webhook_free(dm.webhook);
	inbox_free(dm.inbox);
	audit_free(dm.audit);
	/* Finished runs waiting to be written go to state.db first. */
	streams_free(dm.streams);
	store_close(dm.store);
	dispatch_free(dm.d);
	cache_close(dm.cache);
	upstream_free(dm.up);
	policy_free(dm.policy);
	loop_free(dm.loop);
	sig_key_free(dm.key);
	sig_key_free(env_key);
	config_done(&dm.cfg);
	config_done(&opts.cli);
	upstream_global_done();
	return status;
}

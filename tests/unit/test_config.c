/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of config: every key, every kind of bad value with its
 * FILE:LINE message, quoting and comments, [peer] and [hook] sections,
 * config_set and config_merge (the command line over the file),
 * config_diff, and a reload that keeps the old configuration when the new
 * file is bad. Run under ASan, every test also checks that config_done
 * frees all a configuration holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "t.h"

static char err[512];

/* Parses text named "m8tesd.conf" into *c. */
static int
parse(const char *text, struct config *c)
{
	err[0] = '\0';
	return config_parse(text, strlen(text), "m8tesd.conf", c, err,
	    sizeof(err));
}

/* Parses text that must fail; err holds the message. */
static int
parse_bad(const char *text)
{
	struct config c;
	int r = parse(text, &c);

	if (r == 0)
		config_done(&c);
	return r;
}

static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (f == NULL)
		return -errno;
	(void)fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

static char tmpdir[64];

static const char *
tmp_path(const char *name)
{
	static char buf[128];

	(void)snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

TEST(defaults)
{
	struct config c;

	config_init(&c);
	ASSERT_EQ(c.set, 0);
	ASSERT(c.socket == NULL && c.base_url == NULL);
	ASSERT_EQ(c.log_level, LOG_LEVEL_INFO);
	ASSERT(c.upstream_timeout == 300.0);
	ASSERT(c.poll_interval == 2.0);
	ASSERT(c.retry_backoff == 0.5);
	ASSERT(c.max_retry_after == 60.0);
	ASSERT_EQ(c.socket_mode, 0660);
	ASSERT_EQ(c.max_connections, 4096);
	ASSERT_EQ(c.max_connections_per_uid, 0);
	ASSERT_EQ(c.webhook_tolerance, 300);
	ASSERT_EQ(c.webhook_max_body, 1024 * 1024);
	ASSERT_EQ(c.audit_retention_days, 90);
	ASSERT_EQ(c.run_log_retention_days, 30);
	ASSERT_EQ(c.run_log_max_stored, 10000);
	ASSERT_EQ(c.webhook_retention_days, 30);
	ASSERT_EQ(c.webhook_max_stored, 1000000);
	ASSERT(!c.default_deny);
	ASSERT_EQ(c.npeers, 0);
	ASSERT(c.hooks == NULL && c.nhooks == 0);
	config_done(&c);
	config_done(NULL);
}

TEST(every_key)
{
	static const char text[] =
	    "# m8tesd.conf\n"
	    "socket = /run/m8tes/m8tesd.sock\n"
	    "base_url = https://api.m8tes.ai/api/v2\n"
	    "api_key_file = /etc/m8tes/api-key\n"
	    "state_dir = /var/lib/m8tes\n"
	    "cache_dir = /var/cache/m8tes\n"
	    "webhook_listen = 127.0.0.1:8787\n"
	    "log_level = debug\n"
	    "upstream_timeout = 120\n"
	    "poll_interval = 0.5\n"
	    "retry_backoff = 0.25\n"
	    "max_retry_after = 30\n"
	    "socket_mode = 0600\n"
	    "socket_group = m8tes\n"
	    "max_connections = 512\n"
	    "max_connections_per_uid = 64\n"
	    "webhook_secret = whsec_one\n"
	    "webhook_secret = whsec_two\n"
	    "webhook_secret_file = /etc/m8tes/webhook-secret\n"
	    "webhook_tolerance = 0\n"
	    "webhook_max_body = 2M\n"
	    "webhook_tls_cert = /etc/m8tes/cert.pem\n"
	    "webhook_tls_key = /etc/m8tes/key.pem\n"
	    "audit_retention_days = 7\n"
	    "default_deny = yes\n"
	    "cache_max_bytes = 8M\n"
	    "cache_max_file_bytes = 2G\n"
	    "cache_ttl = agents=60 runs=2.5\n"
	    "run_log_retention_days = 14\n"
	    "run_log_max_stored = 500\n"
	    "webhook_retention_days = 0\n"
	    "webhook_max_stored = 2000\n";
	struct config c;

	ASSERT_OK(parse(text, &c));
	ASSERT_STREQ(c.socket, "/run/m8tes/m8tesd.sock");
	ASSERT_STREQ(c.base_url, "https://api.m8tes.ai/api/v2");
	ASSERT_STREQ(c.api_key_file, "/etc/m8tes/api-key");
	ASSERT_STREQ(c.state_dir, "/var/lib/m8tes");
	ASSERT_STREQ(c.cache_dir, "/var/cache/m8tes");
	ASSERT_STREQ(c.webhook_listen, "127.0.0.1:8787");
	ASSERT_EQ(c.log_level, LOG_LEVEL_DEBUG);
	ASSERT(c.upstream_timeout == 120.0);
	ASSERT(c.poll_interval == 0.5);
	ASSERT(c.retry_backoff == 0.25);
	ASSERT(c.max_retry_after == 30.0);
	ASSERT_EQ(c.socket_mode, 0600);
	ASSERT_STREQ(c.socket_group, "m8tes");
	ASSERT_EQ(c.max_connections, 512);
	ASSERT_EQ(c.max_connections_per_uid, 64);
	ASSERT_EQ(c.nwebhook_secrets, 2);
	ASSERT_STREQ(c.webhook_secrets[0], "whsec_one");
	ASSERT_STREQ(c.webhook_secrets[1], "whsec_two");
	ASSERT_STREQ(c.webhook_secret_file, "/etc/m8tes/webhook-secret");
	ASSERT_EQ(c.webhook_tolerance, 0);
	ASSERT_EQ(c.webhook_max_body, 2 * 1024 * 1024);
	ASSERT_STREQ(c.webhook_tls_cert, "/etc/m8tes/cert.pem");
	ASSERT_STREQ(c.webhook_tls_key, "/etc/m8tes/key.pem");
	ASSERT_EQ(c.audit_retention_days, 7);
	ASSERT(c.default_deny);
	ASSERT_EQ(c.cache_max_bytes, 8 * 1024 * 1024);
	ASSERT_EQ(c.cache_max_file_bytes, 2ull * 1024 * 1024 * 1024);
	ASSERT_STREQ(c.cache_ttl, "agents=60 runs=2.5");
	ASSERT_EQ(c.run_log_retention_days, 14);
	ASSERT_EQ(c.run_log_max_stored, 500);
	ASSERT_EQ(c.webhook_retention_days, 0);
	ASSERT_EQ(c.webhook_max_stored, 2000);
	/* Every key but the [peer] sections was given. */
	ASSERT_EQ(c.set, CONFIG_BIT(CONFIG_PEERS) - 1);
	for (int k = 0; k < CONFIG_PEERS; k++)
		ASSERT(config_isset(&c, (enum config_key)k));
	ASSERT(!config_isset(&c, CONFIG_PEERS));
	ASSERT(!config_isset(&c, CONFIG_HOOKS));
	config_done(&c);
	ASSERT(c.socket == NULL && c.nwebhook_secrets == 0 && c.set == 0);
}

TEST(key_names)
{
	ASSERT_STREQ(config_key_name(CONFIG_SOCKET), "socket");
	ASSERT_STREQ(config_key_name(CONFIG_MAX_RETRY_AFTER),
	    "max_retry_after");
	ASSERT_STREQ(config_key_name(CONFIG_PEERS), "peer");
	ASSERT_STREQ(config_key_name(CONFIG_HOOKS), "hook");
	ASSERT_STREQ(config_key_name(CONFIG_NKEYS), "?");
	/* The table indexed by enum config_key has every key, once. */
	for (int k = 0; k < CONFIG_NKEYS; k++) {
		const char *n = config_key_name((enum config_key)k);

		if (n == NULL || n[0] == '\0')
			T_FAIL("key %d has no name", k);
		for (int j = 0; j < k; j++)
			if (strcmp(n, config_key_name((enum config_key)j)) == 0)
				T_FAIL("keys %d and %d are both \"%s\"", j, k,
				    n);
	}
	ASSERT(CONFIG_NKEYS <= 64);
}

TEST(values_in_range)
{
	static const struct {
		const char *text;
		size_t off;
		int kind; /* 0 double, 1 unsigned, 2 size_t, 3 bool */
		double want;
	} cases[] = {
	    {"upstream_timeout = 1", offsetof(struct config, upstream_timeout),
	        0, 1},
	    {"upstream_timeout = 86400",
	        offsetof(struct config, upstream_timeout), 0, 86400},
	    {"poll_interval = 0.01", offsetof(struct config, poll_interval), 0,
	        0.01},
	    {"retry_backoff = 0", offsetof(struct config, retry_backoff), 0, 0},
	    {"max_retry_after = 0", offsetof(struct config, max_retry_after), 0,
	        0},
	    {"socket_mode = 660", offsetof(struct config, socket_mode), 1,
	        0660},
	    {"socket_mode = 0777", offsetof(struct config, socket_mode), 1,
	        0777},
	    {"max_connections = 1", offsetof(struct config, max_connections), 1,
	        1},
	    {"webhook_tolerance = 600",
	        offsetof(struct config, webhook_tolerance), 1, 600},
	    {"webhook_max_body = 64k",
	        offsetof(struct config, webhook_max_body), 2, 65536},
	    {"webhook_max_body = 1G", offsetof(struct config, webhook_max_body),
	        2, 1024.0 * 1024 * 1024},
	    {"webhook_max_body = 4096",
	        offsetof(struct config, webhook_max_body), 2, 4096},
	    {"audit_retention_days = 0",
	        offsetof(struct config, audit_retention_days), 1, 0},
	    {"run_log_max_stored = 1",
	        offsetof(struct config, run_log_max_stored), 1, 1},
	    {"webhook_max_stored = 1000000000",
	        offsetof(struct config, webhook_max_stored), 1, 1e9},
	    {"webhook_retention_days = 36500",
	        offsetof(struct config, webhook_retention_days), 1, 36500},
	    {"default_deny = off", offsetof(struct config, default_deny), 3, 0},
	    {"default_deny = TRUE", offsetof(struct config, default_deny), 3,
	        1},
	    {"default_deny = 1", offsetof(struct config, default_deny), 3, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;
		const char *f;
		double got;

		if (parse(cases[i].text, &c) < 0)
			T_FAIL("%s: %s", cases[i].text, err);
		f = (const char *)&c + cases[i].off;
		switch (cases[i].kind) {
		case 0:
			got = *(const double *)(const void *)f;
			break;
		case 1:
			got = *(const unsigned *)(const void *)f;
			break;
		case 2:
			got = (double)*(const size_t *)(const void *)f;
			break;
		default:
			got = *(const bool *)(const void *)f;
			break;
		}
		config_done(&c);
		if (got != cases[i].want)
			T_FAIL("%s: got %g, want %g", cases[i].text, got,
			    cases[i].want);
	}
}

TEST(bad_values)
{
	static const struct {
		const char *text;
		const char *want; /* the whole message */
	} cases[] = {
	    {"\n\nsokcet = /x\n",
	        "m8tesd.conf:3: unknown key \"sokcet\" (did you mean "
	        "\"socket\"?)"},
	    {"frobnicate = 1\n", "m8tesd.conf:1: unknown key \"frobnicate\""},
	    {"base-url = http://x\n",
	        "m8tesd.conf:1: unknown key \"base-url\" (did you mean "
	        "\"base_url\"?)"},
	    {"socket =\n", "m8tesd.conf:1: socket needs a value"},
	    {"socket = \"\"\n", "m8tesd.conf:1: socket needs a value"},
	    {"socket\n", "m8tesd.conf:1: expected \"=\" after \"socket\""},
	    {"= 1\n", "m8tesd.conf:1: expected \"key = value\""},
	    {"base_url = ftp://x\n",
	        "m8tesd.conf:1: bad value \"ftp://x\" for base_url: want an "
	        "http:// or https:// URL"},
	    {"base_url = https://\n",
	        "m8tesd.conf:1: bad value \"https://\" for base_url: want an "
	        "http:// or https:// URL"},
	    {"webhook_listen = 8080\n",
	        "m8tesd.conf:1: bad value \"8080\" for webhook_listen: want "
	        "ADDRESS:PORT (port 0 to 65535)"},
	    {"webhook_listen = 0.0.0.0:70000\n",
	        "m8tesd.conf:1: bad value \"0.0.0.0:70000\" for "
	        "webhook_listen: want ADDRESS:PORT (port 0 to 65535)"},
	    {"log_level = loud\n",
	        "m8tesd.conf:1: bad value \"loud\" for log_level: want error, "
	        "warn, info or debug"},
	    {"upstream_timeout = 0\n",
	        "m8tesd.conf:1: bad value \"0\" for upstream_timeout: want "
	        "seconds from 1 to 86400"},
	    {"upstream_timeout = 1e3\n",
	        "m8tesd.conf:1: bad value \"1e3\" for upstream_timeout: want "
	        "seconds from 1 to 86400"},
	    {"poll_interval = 0x10\n",
	        "m8tesd.conf:1: bad value \"0x10\" for poll_interval: want "
	        "seconds from 0.01 to 3600"},
	    {"retry_backoff = -1\n",
	        "m8tesd.conf:1: bad value \"-1\" for retry_backoff: want "
	        "seconds from 0 to 60"},
	    {"max_retry_after = inf\n",
	        "m8tesd.conf:1: bad value \"inf\" for max_retry_after: want "
	        "seconds from 0 to 86400"},
	    {"socket_mode = 0800\n",
	        "m8tesd.conf:1: bad value \"0800\" for socket_mode: want an "
	        "octal mode such as 0660"},
	    {"socket_mode = 01777\n",
	        "m8tesd.conf:1: bad value \"01777\" for socket_mode: want an "
	        "octal mode such as 0660"},
	    {"socket_group = -x\n",
	        "m8tesd.conf:1: bad value \"-x\" for socket_group: want a "
	        "group name or number"},
	    {"max_connections = 0\n",
	        "m8tesd.conf:1: bad value \"0\" for max_connections: want a "
	        "whole number from 1 to 1048576"},
	    {"max_connections = 99999999999999999999999\n",
	        "m8tesd.conf:1: bad value \"99999999999999999999999\" for "
	        "max_connections: want a whole number from 1 to 1048576"},
	    {"max_connections_per_uid = 12x\n",
	        "m8tesd.conf:1: bad value \"12x\" for max_connections_per_uid: "
	        "want a whole number from 0 to 1048576"},
	    {"webhook_tolerance = -5\n",
	        "m8tesd.conf:1: bad value \"-5\" for webhook_tolerance: want a "
	        "whole number from 0 to 2592000"},
	    {"webhook_max_body = 100\n",
	        "m8tesd.conf:1: bad value \"100\" for webhook_max_body: want "
	        "bytes from 1024 to 1073741824 (K, M and G suffixes allowed)"},
	    {"webhook_max_body = 2G\n",
	        "m8tesd.conf:1: bad value \"2G\" for webhook_max_body: want "
	        "bytes from 1024 to 1073741824 (K, M and G suffixes allowed)"},
	    {"audit_retention_days = 40000\n",
	        "m8tesd.conf:1: bad value \"40000\" for audit_retention_days: "
	        "want a whole number from 0 to 36500"},
	    {"run_log_max_stored = 0\n",
	        "m8tesd.conf:1: bad value \"0\" for run_log_max_stored: want "
	        "a whole number from 1 to 100000000"},
	    {"webhook_max_stored = -1\n",
	        "m8tesd.conf:1: bad value \"-1\" for webhook_max_stored: want "
	        "a whole number from 1 to 1000000000"},
	    {"webhook_retention_days = 36501\n",
	        "m8tesd.conf:1: bad value \"36501\" for "
	        "webhook_retention_days: want a whole number from 0 to 36500"},
	    {"default_deny = maybe\n",
	        "m8tesd.conf:1: bad value \"maybe\" for default_deny: want "
	        "true or false"},
	    {"socket = /a\nsocket = /b\n",
	        "m8tesd.conf:2: socket is already set on line 1"},
	    {"webhook_tls_cert = /c.pem\n",
	        "m8tesd.conf:1: webhook_tls_cert needs webhook_tls_key as "
	        "well"},
	    {"\nwebhook_tls_key = /k.pem\n",
	        "m8tesd.conf:2: webhook_tls_key needs webhook_tls_cert as "
	        "well"},
	    {"socket = /run/"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "\n",
	        "m8tesd.conf:1: bad value \"/run/"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" "
	        "for socket: a socket path must be shorter than 108 bytes"},
	    {"state_dir = /a\x01b\n",
	        "m8tesd.conf:1: bad value for state_dir: control character"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_bad(cases[i].text) != -EINVAL)
			T_FAIL("case %zu (%s) parsed", i, cases[i].text);
		if (strcmp(err, cases[i].want) != 0)
			T_FAIL("case %zu:\n    got  %s\n    want %s", i, err,
			    cases[i].want);
	}
}

TEST(secrets_never_echoed)
{
	static char text[2048];
	char big[CONFIG_MAX_SECRET + 2];

	memset(big, 's', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)snprintf(text, sizeof(text), "webhook_secret = %s\n", big);
	ASSERT_EQ(parse_bad(text), -EINVAL);
	ASSERT_STREQ(err,
	    "m8tesd.conf:1: bad value for webhook_secret: want at most 512 "
	    "printable bytes");
	ASSERT(strstr(err, "sss") == NULL);

	for (int i = 0, n = 0; i <= CONFIG_MAX_SECRETS; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
		    "webhook_secret = s%d\n", i);
	ASSERT_EQ(parse_bad(text), -EINVAL);
	ASSERT_STREQ(err, "m8tesd.conf:17: more than 16 webhook_secret values");
}

TEST(quoting_and_comments)
{
	struct config c;

	ASSERT_OK(parse("  # a comment\n"
	                "\t\n"
	                "socket = \"/run/with space/m8.sock\"  # trailing\n"
	                "state_dir = /var/lib/m8tes#not-a-comment\n"
	                "cache_dir = /var/cache/m8tes # a comment\n"
	                "webhook_secret = \"a \\\"quoted\\\" \\\\ # secret\"\n"
	                "api_key_file=/k\r\n"
	                "socket_group=\"m8tes\"\n",
	    &c));
	ASSERT_STREQ(c.socket, "/run/with space/m8.sock");
	ASSERT_STREQ(c.state_dir, "/var/lib/m8tes#not-a-comment");
	ASSERT_STREQ(c.cache_dir, "/var/cache/m8tes");
	ASSERT_STREQ(c.webhook_secrets[0], "a \"quoted\" \\ # secret");
	ASSERT_STREQ(c.api_key_file, "/k");
	ASSERT_STREQ(c.socket_group, "m8tes");
	config_done(&c);

	ASSERT_EQ(parse_bad("socket = \"/x\n"), -EINVAL);
	ASSERT_STREQ(err, "m8tesd.conf:1: unterminated quoted value");
	ASSERT_EQ(parse_bad("socket = \"/x\\n\"\n"), -EINVAL);
	ASSERT_STREQ(err,
	    "m8tesd.conf:1: unknown escape in a quoted value (only \\\" and "
	    "\\\\)");
	ASSERT_EQ(parse_bad("socket = \"/x\" y\n"), -EINVAL);
	ASSERT_STREQ(err, "m8tesd.conf:1: text after the closing quote");
	ASSERT_EQ(parse_bad("socket = # nothing\n"), -EINVAL);
	ASSERT_STREQ(err, "m8tesd.conf:1: socket needs a value");
}

TEST(bad_text)
{
	static char text[CONFIG_MAX_LINE + 64];
	struct config c;

	ASSERT_EQ(config_parse("socket = /a\0b\n", 14, "f.conf", &c, err,
	              sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "f.conf:1: NUL byte in the line");

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text, "\nsocket = ", 10);
	ASSERT_EQ(parse_bad(text), -EINVAL);
	ASSERT_STREQ(err, "m8tesd.conf:2: line longer than 8192 bytes");

	/* No name: "config"; a missing final newline is fine. */
	ASSERT_EQ(config_parse("x = 1", 5, NULL, &c, err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err, "config:1: unknown key \"x\"");
	ASSERT_OK(config_parse("socket = /s", 11, NULL, &c, err, sizeof(err)));
	ASSERT_STREQ(c.socket, "/s");
	config_done(&c);
	ASSERT_OK(config_parse("", 0, NULL, &c, err, sizeof(err)));
	ASSERT_EQ(c.set, 0);
	config_done(&c);

	/* A tiny error buffer is cut, never overrun. */
	{
		char small[8];

		ASSERT_EQ(config_parse("x = 1", 5, "m8tesd.conf", &c, small,
		              sizeof(small)),
		    -EINVAL);
		ASSERT_STREQ(small, "m8tesd.");
	}
}

TEST(peer_sections)
{
	static const char text[] = "socket_mode = 0660\n"
	                           "\n"
	                           "[peer web]\n"
	                           "match_user = www-data\n"
	                           "allow = teammates.* runs.*\n"
	                           "allow = daemon.stats\n"
	                           "deny = runs.cancel\n"
	                           "tenant = \"customer 42\"\n"
	                           "max_connections = 8\n"
	                           "rate = 2.5\n"
	                           "\n"
	                           "[ peer  ops ]  # operators\n"
	                           "match_gid = 27\n"
	                           "admin = true\n"
	                           "rate = 10\n"
	                           "burst = 50\n"
	                           "[peer backup]\n"
	                           "match_uid = 34\n";
	struct config c;
	const struct config_peer *p;

	ASSERT_OK(parse(text, &c));
	ASSERT(config_isset(&c, CONFIG_PEERS));
	ASSERT_EQ(c.npeers, 3);
	p = &c.peers[0];
	ASSERT_STREQ(p->name, "web");
	ASSERT_EQ(p->line, 3);
	ASSERT_EQ(p->match, CONFIG_MATCH_USER);
	ASSERT_STREQ(p->user, "www-data");
	ASSERT_EQ(p->nallow, 3);
	ASSERT_STREQ(p->allow[0], "teammates.*");
	ASSERT_STREQ(p->allow[1], "runs.*");
	ASSERT_STREQ(p->allow[2], "daemon.stats");
	ASSERT_EQ(p->ndeny, 1);
	ASSERT_STREQ(p->deny[0], "runs.cancel");
	ASSERT_STREQ(p->tenant, "customer 42");
	ASSERT_EQ(p->max_connections, 8);
	ASSERT(p->rate == 2.5);
	ASSERT_EQ(p->burst, 3); /* one second's worth, rounded up */
	ASSERT(!p->admin);
	p = &c.peers[1];
	ASSERT_STREQ(p->name, "ops");
	ASSERT_EQ(p->match, CONFIG_MATCH_GID);
	ASSERT_EQ(p->gid, 27);
	ASSERT(p->admin);
	ASSERT_EQ(p->nallow, 0); /* default: everything */
	ASSERT(p->rate == 10.0);
	ASSERT_EQ(p->burst, 50);
	p = &c.peers[2];
	ASSERT_EQ(p->match, CONFIG_MATCH_UID);
	ASSERT_EQ(p->uid, 34);
	ASSERT(p->rate == 0 && p->burst == 0 && p->tenant == NULL);
	config_done(&c);
}

TEST(peer_errors)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
	    {"[peer a]\nallow = *\n",
	        "m8tesd.conf:1: [peer a] needs one of match_uid, match_gid, "
	        "match_user"},
	    {"[peer a]\nmatch_uid = 1\n[peer b]\n",
	        "m8tesd.conf:3: [peer b] needs one of match_uid, match_gid, "
	        "match_user"},
	    {"[peer a]\nmatch_uid = 1\nmatch_user = bob\n",
	        "m8tesd.conf:3: [peer a] already matches by match_uid (line "
	        "2); give one of match_uid, match_gid, match_user"},
	    {"[peer a]\nmatch_uid = 1\nmatch_uid = 2\n",
	        "m8tesd.conf:3: match_uid is already set in [peer a] on line "
	        "2"},
	    {"[peer a]\nmatch_uid = bob\n",
	        "m8tesd.conf:2: bad value \"bob\" for match_uid: want a number "
	        "(use match_user for a name)"},
	    {"[peer a]\nmatch_gid = 4294967295\n",
	        "m8tesd.conf:2: bad value \"4294967295\" for match_gid: want a "
	        "number (use match_user for a name)"},
	    {"[peer a]\nmatch_user = a:b\n",
	        "m8tesd.conf:2: bad value \"a:b\" for match_user: want a user "
	        "name"},
	    {"[peer a]\nmatch_uid = 1\nsocket = /x\n",
	        "m8tesd.conf:3: key \"socket\" belongs before the first "
	        "section"},
	    {"allow = *\n",
	        "m8tesd.conf:1: key \"allow\" is only valid in a [peer NAME] "
	        "section"},
	    {"[peer a]\nmatch_uid = 1\n[peer a]\nmatch_uid = 2\n",
	        "m8tesd.conf:3: [peer a] is already defined on line 1"},
	    {"[global]\n",
	        "m8tesd.conf:1: unknown section \"[global]\": want [peer "
	        "NAME] or [hook NAME]"},
	    {"[]\n",
	        "m8tesd.conf:1: unknown section \"[]\": want [peer NAME] or "
	        "[hook NAME]"},
	    {"[peer]\n",
	        "m8tesd.conf:1: [peer] needs a NAME: want [peer NAME]"},
	    {"[peer a b]\n",
	        "m8tesd.conf:1: bad section header: want [peer NAME]"},
	    {"[peer a\n",
	        "m8tesd.conf:1: bad section header: want [peer NAME]"},
	    {"[peer a] x\n", "m8tesd.conf:1: text after the section header"},
	    {"[peer a/b]\n",
	        "m8tesd.conf:1: bad section name \"a/b\": want letters, digits "
	        "and _.@- (at most 64)"},
	    {"[peer a]\nmatch_uid = 1\nallow = teammates.*, runs.*\n",
	        "m8tesd.conf:3: bad pattern \"teammates.*,\" in allow: want "
	        "method names or globs (such as runs.*) separated by blanks"},
	    {"[peer a]\nmatch_uid = 1\ndeny = user.*\n",
	        "m8tesd.conf:3: pattern \"user.*\" in deny matches no method"},
	    {"[peer a]\nmatch_uid = 1\ntenant = a/b\n",
	        "m8tesd.conf:3: bad value \"a/b\" for tenant: want a user_id "
	        "of "
	        "at most 256 bytes, without '/'"},
	    {"[peer a]\nmatch_uid = 1\ntenant = ..\n",
	        "m8tesd.conf:3: bad value \"..\" for tenant: want a user_id of "
	        "at most 256 bytes, without '/'"},
	    {"[peer a]\nmatch_uid = 1\ntenant = x\ntenant = y\n",
	        "m8tesd.conf:4: tenant is already set in [peer a] on line 3"},
	    {"[peer a]\nmatch_uid = 1\nrate = fast\n",
	        "m8tesd.conf:3: bad value \"fast\" for rate: want requests per "
	        "second from 0 to 1000000"},
	    {"[peer a]\nmatch_uid = 1\nburst = 0\n",
	        "m8tesd.conf:3: bad value \"0\" for burst: want a whole number "
	        "from 1 to 1000000"},
	    {"[peer a]\nmatch_uid = 1\nburst = 5\n",
	        "m8tesd.conf:3: burst in [peer a] needs a rate above 0"},
	    {"[peer a]\nmatch_uid = 1\nmax_connections = -1\n",
	        "m8tesd.conf:3: bad value \"-1\" for max_connections: want a "
	        "whole number from 0 to 1048576"},
	    {"[peer a]\nmatch_uid = 1\nadmin = sure\n",
	        "m8tesd.conf:3: bad value \"sure\" for admin: want true or "
	        "false"},
	    {"[peer a]\nmatch_uid = 1\nalow = *\n",
	        "m8tesd.conf:3: unknown key \"alow\" in [peer a] (did you "
	        "mean \"allow\"?)"},
	    {"[peer a]\nmatch_uid = 1\nexec = /bin/true\n",
	        "m8tesd.conf:3: key \"exec\" is only valid in a [hook NAME] "
	        "section"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_bad(cases[i].text) != -EINVAL)
			T_FAIL("case %zu (%s) parsed", i, cases[i].text);
		if (strcmp(err, cases[i].want) != 0)
			T_FAIL("case %zu:\n    got  %s\n    want %s", i, err,
			    cases[i].want);
	}
}

TEST(hook_sections)
{
	static const char text[] =
	    "webhook_listen = 127.0.0.1:8787\n"
	    "\n"
	    "[hook billing]\n"
	    "events = run.completed run.failed\n"
	    "events = task.*\n"
	    "exec = \"/usr/local/bin/on-run-done --tag \\\"a b\\\"\"\n"
	    "max_concurrent = 8\n"
	    "retries = 0\n"
	    "timeout = 3600\n"
	    "\n"
	    "[ hook  chat ]  # a local service\n"
	    "url = http://127.0.0.1:8080/hooks/m8tes\n"
	    "[peer ops]\n"
	    "match_gid = 4\n"
	    "[hook billing.2]\n"
	    "exec = cat >>/tmp/log\t# tab, then a comment\n"
	    "max_concurrent = 256\n"
	    "retries = 100\n"
	    "timeout = 1\n";
	struct config c;
	const struct hook_def *h;

	ASSERT_OK(parse(text, &c));
	ASSERT(config_isset(&c, CONFIG_HOOKS));
	ASSERT(config_isset(&c, CONFIG_PEERS));
	ASSERT_EQ(c.npeers, 1);
	ASSERT_EQ(c.nhooks, 3);
	h = &c.hooks[0];
	ASSERT_STREQ(h->name, "billing");
	ASSERT_EQ(h->nevents, 3);
	ASSERT_STREQ(h->events[0], "run.completed");
	ASSERT_STREQ(h->events[1], "run.failed");
	ASSERT_STREQ(h->events[2], "task.*");
	ASSERT_STREQ(h->exec, "/usr/local/bin/on-run-done --tag \"a b\"");
	ASSERT(h->url == NULL);
	ASSERT_EQ(h->max_concurrent, 8);
	ASSERT_EQ(h->retries, 0);
	ASSERT_EQ(h->timeout_s, 3600);
	h = &c.hooks[1];
	ASSERT_STREQ(h->name, "chat");
	ASSERT_EQ(h->nevents, 0); /* every event */
	ASSERT(h->exec == NULL);
	ASSERT_STREQ(h->url, "http://127.0.0.1:8080/hooks/m8tes");
	ASSERT_EQ(h->max_concurrent, CONFIG_DEF_HOOK_MAX_CONCURRENT);
	ASSERT_EQ(h->retries, CONFIG_DEF_HOOK_RETRIES);
	ASSERT_EQ(h->timeout_s, CONFIG_DEF_HOOK_TIMEOUT);
	ASSERT_EQ(h->max_concurrent, 4);
	ASSERT_EQ(h->retries, 5);
	ASSERT_EQ(h->timeout_s, 30);
	h = &c.hooks[2];
	ASSERT_STREQ(h->name, "billing.2");
	ASSERT_STREQ(h->exec, "cat >>/tmp/log");
	ASSERT_EQ(h->max_concurrent, 256);
	ASSERT_EQ(h->retries, 100);
	ASSERT_EQ(h->timeout_s, 1);
	config_done(&c);
	ASSERT(c.hooks == NULL && c.nhooks == 0 && c.set == 0);

	/* A '#' after a blank starts a comment unless the value is quoted. */
	ASSERT_OK(parse("[hook q]\n"
	                "exec = \"sed 's/ #.*//' >>/var/log/q\"  # note\n",
	    &c));
	ASSERT_STREQ(c.hooks[0].exec, "sed 's/ #.*//' >>/var/log/q");
	config_done(&c);

	/* As many sections and patterns as allowed. */
	{
		static char big[16384];
		size_t n = 0;

		for (int i = 0; i < CONFIG_MAX_HOOKS; i++) {
			n += (size_t)snprintf(big + n, sizeof(big) - n,
			    "[hook h%d]\nurl = https://localhost/%d\nevents =",
			    i, i);
			for (int j = 0; j < HOOK_MAX_EVENTS; j++)
				n += (size_t)snprintf(big + n, sizeof(big) - n,
				    " e%d.*", j);
			n += (size_t)snprintf(big + n, sizeof(big) - n, "\n");
		}
		ASSERT(n < sizeof(big));
		if (parse(big, &c) < 0)
			T_FAIL("%s", err);
		ASSERT_EQ(c.nhooks, 32);
		ASSERT_EQ(c.hooks[31].nevents, 16);
		ASSERT_STREQ(c.hooks[31].events[15], "e15.*");
		config_done(&c);
	}
}

TEST(hook_errors)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
	    {"[hook a]\n", "m8tesd.conf:1: [hook a] needs one of exec and url"},
	    {"[hook a]\nevents = run.*\n\n",
	        "m8tesd.conf:1: [hook a] needs one of exec and url"},
	    {"[hook a]\nexec = /bin/true\n[hook b]\nevents = run.*\n"
	     "[peer p]\nmatch_uid = 1\n",
	        "m8tesd.conf:3: [hook b] needs one of exec and url"},
	    {"[hook a]\nexec = /bin/true\nurl = http://127.0.0.1:1/\n",
	        "m8tesd.conf:3: [hook a] already has exec (line 2); give one "
	        "of exec and url"},
	    {"[hook a]\nurl = http://127.0.0.1:1/\n\nexec = /bin/true\n",
	        "m8tesd.conf:4: [hook a] already has url (line 2); give one "
	        "of exec and url"},
	    {"[hook a]\nexec = /bin/true\nexec = /bin/false\n",
	        "m8tesd.conf:3: exec is already set in [hook a] on line 2"},
	    {"[hook a]\nurl = ftp://127.0.0.1/\n",
	        "m8tesd.conf:2: bad value \"ftp://127.0.0.1/\" for url: want "
	        "an http:// or https:// URL"},
	    {"[hook a]\nurl = \"http://x/a b\"\n",
	        "m8tesd.conf:2: bad value \"http://x/a b\" for url: blank in "
	        "a URL"},
	    {"[hook a]\nexec =\n", "m8tesd.conf:2: exec needs a value"},
	    {"[hook a]\nexec = \"\"\n", "m8tesd.conf:2: exec needs a value"},
	    {"[hook a]\nexec = a\x01z\n",
	        "m8tesd.conf:2: bad value for exec: control character"},
	    {"[hook a]\nexec = x\nevents = # none\n",
	        "m8tesd.conf:3: events needs a value"},
	    {"[hook a]\nexec = x\nevents = run.completed,run.failed\n",
	        "m8tesd.conf:3: bad pattern \"run.completed,run.failed\" in "
	        "events: want event types or globs (such as run.*) separated "
	        "by blanks"},
	    {"[hook a]\nexec = x\nevents = a b c d e f g h i j k l m n o p\n"
	     "events = q\n",
	        "m8tesd.conf:4: more than 16 patterns in [hook a]"},
	    {"[hook a]\nexec = x\nmax_concurrent = 0\n",
	        "m8tesd.conf:3: bad value \"0\" for max_concurrent: want a "
	        "whole number from 1 to 256"},
	    {"[hook a]\nexec = x\nmax_concurrent = 257\n",
	        "m8tesd.conf:3: bad value \"257\" for max_concurrent: want a "
	        "whole number from 1 to 256"},
	    {"[hook a]\nexec = x\nretries = 101\n",
	        "m8tesd.conf:3: bad value \"101\" for retries: want a whole "
	        "number from 0 to 100"},
	    {"[hook a]\nexec = x\nretries = -1\n",
	        "m8tesd.conf:3: bad value \"-1\" for retries: want a whole "
	        "number from 0 to 100"},
	    {"[hook a]\nexec = x\ntimeout = 0\n",
	        "m8tesd.conf:3: bad value \"0\" for timeout: want whole "
	        "seconds from 1 to 3600"},
	    {"[hook a]\nexec = x\ntimeout = 1.5\n",
	        "m8tesd.conf:3: bad value \"1.5\" for timeout: want whole "
	        "seconds from 1 to 3600"},
	    {"[hook a]\nexec = x\ntimeout = 99999999999999999999999\n",
	        "m8tesd.conf:3: bad value \"99999999999999999999999\" for "
	        "timeout: want whole seconds from 1 to 3600"},
	    {"[hook a]\nexec = x\ntimeout = 30\ntimeout = 60\n",
	        "m8tesd.conf:4: timeout is already set in [hook a] on line 3"},
	    {"[hook a]\nexec = x\nexce = y\n",
	        "m8tesd.conf:3: unknown key \"exce\" in [hook a] (did you mean "
	        "\"exec\"?)"},
	    {"[hook a]\nexec = x\nmax_concurent = 2\n",
	        "m8tesd.conf:3: unknown key \"max_concurent\" in [hook a] (did "
	        "you mean \"max_concurrent\"?)"},
	    {"[hook a]\nexec = x\nfrobnicate = 1\n",
	        "m8tesd.conf:3: unknown key \"frobnicate\" in [hook a]"},
	    {"[hook a]\nexec = x\nsocket = /s\n",
	        "m8tesd.conf:3: key \"socket\" belongs before the first "
	        "section"},
	    {"[hook a]\nexec = x\nmax_connections = 2\n",
	        "m8tesd.conf:3: key \"max_connections\" belongs before the "
	        "first section"},
	    {"[hook a]\nexec = x\nallow = *\n",
	        "m8tesd.conf:3: key \"allow\" is only valid in a [peer NAME] "
	        "section"},
	    {"[hook a]\nexec = x\nmatch_uid = 1\n",
	        "m8tesd.conf:3: key \"match_uid\" is only valid in a [peer "
	        "NAME] section"},
	    {"exec = /bin/true\n",
	        "m8tesd.conf:1: key \"exec\" is only valid in a [hook NAME] "
	        "section"},
	    {"\nevents = run.*\n",
	        "m8tesd.conf:2: key \"events\" is only valid in a [hook NAME] "
	        "section"},
	    {"[hook a]\nexec = x\n\n[hook a]\nurl = http://127.0.0.1/\n",
	        "m8tesd.conf:4: [hook a] is already defined on line 1"},
	    {"[hook]\n",
	        "m8tesd.conf:1: [hook] needs a NAME: want [hook NAME]"},
	    {"[hook a b]\n",
	        "m8tesd.conf:1: bad section header: want [hook NAME]"},
	    {"[hook a\n",
	        "m8tesd.conf:1: bad section header: want [hook NAME]"},
	    {"[hook a] exec = x\n",
	        "m8tesd.conf:1: text after the section header"},
	    {"[hook a/b]\n",
	        "m8tesd.conf:1: bad section name \"a/b\": want letters, digits "
	        "and _.@- (at most 64)"},
	    {"[hook "
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "]\n",
	        "m8tesd.conf:1: bad section name "
	        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aaaa"
	        "\": want letters, digits and _.@- (at most 64)"},
	    {"[hooks a]\n",
	        "m8tesd.conf:1: unknown section \"[hooks]\": want [peer NAME] "
	        "or [hook NAME]"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_bad(cases[i].text) != -EINVAL)
			T_FAIL("case %zu (%s) parsed", i, cases[i].text);
		if (strcmp(err, cases[i].want) != 0)
			T_FAIL("case %zu:\n    got  %s\n    want %s", i, err,
			    cases[i].want);
	}
}

TEST(hook_too_many)
{
	static char text[8192];
	size_t n = 0;

	for (int i = 0; i <= CONFIG_MAX_HOOKS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "[hook h%d]\nexec = /bin/true\n", i);
	ASSERT(n < sizeof(text));
	ASSERT_EQ(parse_bad(text), -EINVAL);
	/* The 33rd header, on line 65. */
	ASSERT_STREQ(err, "m8tesd.conf:65: more than 32 [hook] sections");
}

/* Section names are per kind: a hook and a peer may share one. */
TEST(hook_and_peer_names)
{
	struct config c;

	ASSERT_OK(parse("[peer ops]\nmatch_uid = 1\n"
	                "[hook ops]\nexec = /bin/true\n",
	    &c));
	ASSERT_STREQ(c.peers[0].name, "ops");
	ASSERT_STREQ(c.hooks[0].name, "ops");
	config_done(&c);
}

TEST(hook_merge_and_diff)
{
	static const char base[] = "[hook a]\n"
	                           "events = run.*\n"
	                           "exec = /bin/true\n"
	                           "[hook b]\n"
	                           "url = http://127.0.0.1:1/h\n";
	static const struct {
		const char *text; /* differs from base in its hooks only */
	} changed[] = {
	    {"[hook a]\nevents = run.*\nexec = /bin/false\n"
	     "[hook b]\nurl = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nevents = run.* task.*\nexec = /bin/true\n"
	     "[hook b]\nurl = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nexec = /bin/true\n"
	     "[hook b]\nurl = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nevents = run.*\nexec = /bin/true\nretries = 4\n"
	     "[hook b]\nurl = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nevents = run.*\nexec = /bin/true\ntimeout = 31\n"
	     "[hook b]\nurl = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nevents = run.*\nexec = /bin/true\n"
	     "[hook b]\nurl = http://127.0.0.1:1/h\nmax_concurrent = 1\n"},
	    {"[hook a]\nevents = run.*\nexec = /bin/true\n"
	     "[hook c]\nurl = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nevents = run.*\nexec = /bin/true\n"
	     "[hook b]\nexec = http://127.0.0.1:1/h\n"},
	    {"[hook a]\nevents = run.*\nexec = /bin/true\n"},
	    {"[hook b]\nurl = http://127.0.0.1:1/h\n"
	     "[hook a]\nevents = run.*\nexec = /bin/true\n"},
	    {""},
	};
	struct config a, b, cli;

	ASSERT_OK(parse(base, &a));
	ASSERT_OK(parse(base, &b));
	ASSERT_EQ(config_diff(&a, &b), 0);
	config_done(&b);
	for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++) {
		if (parse(changed[i].text, &b) < 0)
			T_FAIL("case %zu: %s", i, err);
		if (config_diff(&a, &b) != CONFIG_BIT(CONFIG_HOOKS) ||
		    config_diff(&b, &a) != CONFIG_BIT(CONFIG_HOOKS)) {
			config_done(&b);
			T_FAIL("case %zu: diff is %#llx", i,
			    (unsigned long long)config_diff(&a, &b));
		}
		config_done(&b);
	}

	/* A command line has no sections: the file's hooks stay. */
	config_init(&cli);
	ASSERT_OK(config_set(&cli, "log-level", "debug", err, sizeof(err)));
	ASSERT_OK(config_merge(&a, &cli, err, sizeof(err)));
	ASSERT_EQ(a.nhooks, 2);
	ASSERT_STREQ(a.hooks[0].events[0], "run.*");
	ASSERT_STREQ(a.hooks[1].url, "http://127.0.0.1:1/h");
	ASSERT(config_isset(&a, CONFIG_HOOKS));
	config_done(&cli);

	/* Sections set in src replace dst's, as deep copies. */
	ASSERT_OK(parse("[hook z]\nevents = x.* y\nexec = /bin/z\n"
	                "max_concurrent = 2\nretries = 7\ntimeout = 9\n",
	    &b));
	ASSERT_OK(config_merge(&a, &b, err, sizeof(err)));
	ASSERT_EQ(config_diff(&a, &b), CONFIG_BIT(CONFIG_LOG_LEVEL));
	ASSERT_EQ(a.log_level, LOG_LEVEL_DEBUG);
	ASSERT_EQ(a.nhooks, 1);
	ASSERT(a.hooks[0].name != b.hooks[0].name);
	ASSERT(a.hooks[0].events[1] != b.hooks[0].events[1]);
	config_done(&b);
	ASSERT_STREQ(a.hooks[0].name, "z");
	ASSERT_STREQ(a.hooks[0].events[1], "y");
	ASSERT_STREQ(a.hooks[0].exec, "/bin/z");
	ASSERT(a.hooks[0].url == NULL);
	ASSERT_EQ(a.hooks[0].max_concurrent, 2);
	ASSERT_EQ(a.hooks[0].retries, 7);
	ASSERT_EQ(a.hooks[0].timeout_s, 9);

	/* A merge that fails leaves dst's hooks as they were. */
	config_init(&cli);
	ASSERT_OK(config_set(&cli, "webhook_tls_key", "/k", err, sizeof(err)));
	ASSERT_EQ(config_merge(&a, &cli, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(a.nhooks, 1);
	ASSERT_STREQ(a.hooks[0].exec, "/bin/z");
	config_done(&cli);

	/* Copying into an empty config is how main keeps the old one. */
	config_init(&b);
	ASSERT_OK(config_merge(&b, &a, err, sizeof(err)));
	ASSERT_EQ(config_diff(&a, &b), 0);
	config_done(&b);
	config_done(&a);
}

TEST(hook_reload)
{
	struct config cur;
	const char *path = tmp_path("hooks.conf");

	ASSERT_OK(write_file(path,
	    "[hook a]\nevents = run.completed\nexec = /bin/a\n"
	    "[hook b]\nurl = http://127.0.0.1:9/b\n"));
	config_init(&cur);
	ASSERT_EQ(config_reload(path, true, NULL, &cur, err, sizeof(err)), 1);
	ASSERT_EQ(cur.nhooks, 2);

	/* A bad [hook] section: an error, and the running hooks stay. */
	ASSERT_OK(write_file(path,
	    "[hook a]\nevents = run.completed\nexec = /bin/a2\n"
	    "[hook b]\nurl = http://127.0.0.1:9/b\nexec = /bin/b\n"));
	ASSERT_EQ(config_reload(path, true, NULL, &cur, err, sizeof(err)),
	    -EINVAL);
	ASSERT(strstr(err, "hooks.conf:6: [hook b] already has url (line 5)") !=
	    NULL);
	ASSERT_OK(write_file(path, "[hook a]\nevents = run.completed\n"));
	ASSERT_EQ(config_reload(path, true, NULL, &cur, err, sizeof(err)),
	    -EINVAL);
	ASSERT(strstr(err,
	           "hooks.conf:1: [hook a] needs one of exec and url") != NULL);
	ASSERT_EQ(cur.nhooks, 2);
	ASSERT_STREQ(cur.hooks[0].exec, "/bin/a");
	ASSERT_STREQ(cur.hooks[0].events[0], "run.completed");
	ASSERT_STREQ(cur.hooks[1].url, "http://127.0.0.1:9/b");

	/* A good change is taken. */
	ASSERT_OK(write_file(path, "[hook b]\nurl = https://127.0.0.1/b2\n"));
	ASSERT_EQ(config_reload(path, true, NULL, &cur, err, sizeof(err)), 1);
	ASSERT_EQ(cur.nhooks, 1);
	ASSERT_STREQ(cur.hooks[0].name, "b");
	ASSERT_STREQ(cur.hooks[0].url, "https://127.0.0.1/b2");
	config_done(&cur);
	(void)unlink(path);
}

TEST(set_from_command_line)
{
	struct config c;

	config_init(&c);
	ASSERT_OK(config_set(&c, "socket", "/tmp/s", err, sizeof(err)));
	ASSERT_OK(config_set(&c, "base-url", "http://127.0.0.1:1/api/v2", err,
	    sizeof(err)));
	ASSERT_OK(config_set(&c, "upstream-timeout", "10", err, sizeof(err)));
	ASSERT_OK(config_set(&c, "log_level", "warn", err, sizeof(err)));
	ASSERT_OK(config_set(&c, "socket", "/tmp/t", err, sizeof(err)));
	ASSERT_STREQ(c.socket, "/tmp/t");
	ASSERT_STREQ(c.base_url, "http://127.0.0.1:1/api/v2");
	ASSERT(c.upstream_timeout == 10.0);
	ASSERT_EQ(c.log_level, LOG_LEVEL_WARN);
	ASSERT_EQ(c.set,
	    CONFIG_BIT(CONFIG_SOCKET) | CONFIG_BIT(CONFIG_BASE_URL) |
	        CONFIG_BIT(CONFIG_UPSTREAM_TIMEOUT) |
	        CONFIG_BIT(CONFIG_LOG_LEVEL));

	ASSERT_EQ(config_set(&c, "poll-interval", "0", err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "bad value \"0\" for poll-interval: want seconds from 0.01 to "
	    "3600");
	ASSERT(c.poll_interval == 2.0);
	ASSERT_EQ(config_set(&c, "sokcet", "/x", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "unknown key \"sokcet\" (did you mean \"socket\"?)");
	ASSERT_EQ(config_set(&c, "tenant", "x", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err,
	    "key \"tenant\" is only valid in a [peer NAME] section");
	ASSERT_EQ(config_set(&c, "peer", "x", err, sizeof(err)), -EINVAL);
	ASSERT_EQ(config_set(&c, "hook", "x", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "unknown key \"hook\"");
	ASSERT_EQ(config_set(&c, "exec", "/bin/true", err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "key \"exec\" is only valid in a [hook NAME] section");
	ASSERT_EQ(config_set(&c, "max-concurrent", "1", err, sizeof(err)),
	    -EINVAL);
	ASSERT_STREQ(err,
	    "key \"max-concurrent\" is only valid in a [hook NAME] section");
	ASSERT(c.nhooks == 0 && !config_isset(&c, CONFIG_HOOKS));
	config_done(&c);
}

TEST(merge_command_line_wins)
{
	struct config file, cli;

	ASSERT_OK(parse("socket = /run/file.sock\n"
	                "state_dir = /var/lib/file\n"
	                "upstream_timeout = 100\n"
	                "webhook_secret = from-file\n"
	                "[peer a]\n"
	                "match_uid = 5\n",
	    &file));
	config_init(&cli);
	ASSERT_OK(
	    config_set(&cli, "socket", "/tmp/cli.sock", err, sizeof(err)));
	ASSERT_OK(config_set(&cli, "retry-backoff", "2", err, sizeof(err)));
	ASSERT_OK(config_merge(&file, &cli, err, sizeof(err)));
	ASSERT_STREQ(file.socket, "/tmp/cli.sock");    /* overridden */
	ASSERT_STREQ(file.state_dir, "/var/lib/file"); /* kept */
	ASSERT(file.upstream_timeout == 100.0);        /* kept */
	ASSERT(file.retry_backoff == 2.0);             /* from cli */
	ASSERT(file.poll_interval == 2.0);             /* default */
	ASSERT_EQ(file.nwebhook_secrets, 1);
	ASSERT_EQ(file.npeers, 1);
	ASSERT_EQ(file.peers[0].uid, 5);
	ASSERT(config_isset(&file, CONFIG_SOCKET));
	ASSERT(config_isset(&file, CONFIG_RETRY_BACKOFF));
	ASSERT(config_isset(&file, CONFIG_STATE_DIR));
	ASSERT(!config_isset(&file, CONFIG_POLL_INTERVAL));
	/* src is untouched and still owns its strings. */
	ASSERT_STREQ(cli.socket, "/tmp/cli.sock");

	/* A list key replaces the whole list. */
	ASSERT_OK(
	    config_set(&cli, "webhook_secret", "cli-1", err, sizeof(err)));
	ASSERT_OK(
	    config_set(&cli, "webhook_secret", "cli-2", err, sizeof(err)));
	ASSERT_OK(config_merge(&file, &cli, err, sizeof(err)));
	ASSERT_EQ(file.nwebhook_secrets, 2);
	ASSERT_STREQ(file.webhook_secrets[0], "cli-1");

	/* A merge that would break a pair fails and changes nothing. */
	config_done(&cli);
	config_init(&cli);
	ASSERT_OK(config_set(&cli, "webhook_tls_cert", "/c", err, sizeof(err)));
	ASSERT_EQ(config_merge(&file, &cli, err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "webhook_tls_cert needs webhook_tls_key as well");
	ASSERT(file.webhook_tls_cert == NULL);
	ASSERT_STREQ(file.socket, "/tmp/cli.sock");
	config_done(&cli);
	config_done(&file);
}

TEST(diff)
{
	struct config a, b;

	ASSERT_OK(parse(
	    "socket = /a\nlog_level = info\n[peer x]\nmatch_uid = 1\n", &a));
	ASSERT_OK(parse(
	    "socket = /a\nlog_level = info\n[peer x]\nmatch_uid = 1\n", &b));
	ASSERT_EQ(config_diff(&a, &b), 0);
	config_done(&b);
	ASSERT_OK(parse(
	    "socket = /b\nlog_level = debug\n[peer x]\nmatch_uid = 2\n", &b));
	ASSERT_EQ(config_diff(&a, &b),
	    CONFIG_BIT(CONFIG_SOCKET) | CONFIG_BIT(CONFIG_LOG_LEVEL) |
	        CONFIG_BIT(CONFIG_PEERS));
	config_done(&b);
	config_init(&b);
	ASSERT_EQ(config_diff(&a, &b),
	    CONFIG_BIT(CONFIG_SOCKET) | CONFIG_BIT(CONFIG_PEERS));
	config_done(&b);
	config_done(&a);
}

TEST(load)
{
	struct config c;
	char big[256];
	int fd;

	/* A missing default file is fine; a missing named one is not. */
	ASSERT_EQ(
	    config_load(tmp_path("absent.conf"), false, &c, err, sizeof(err)),
	    0);
	ASSERT_EQ(c.set, 0);
	config_done(&c);
	ASSERT_EQ(
	    config_load(tmp_path("absent.conf"), true, &c, err, sizeof(err)),
	    -ENOENT);
	ASSERT(starts(err, "cannot open ") &&
	    strstr(err, "absent.conf: No such file or directory") != NULL);

	ASSERT_OK(write_file(tmp_path("good.conf"), "socket = /run/x.sock\n"));
	ASSERT_EQ(
	    config_load(tmp_path("good.conf"), true, &c, err, sizeof(err)), 1);
	ASSERT_STREQ(c.socket, "/run/x.sock");
	config_done(&c);

	ASSERT_OK(write_file(tmp_path("bad.conf"), "\n\nsokcet = /x\n"));
	ASSERT_EQ(
	    config_load(tmp_path("bad.conf"), false, &c, err, sizeof(err)),
	    -EINVAL);
	(void)snprintf(big, sizeof(big), "%s:3: unknown key",
	    tmp_path("bad.conf"));
	ASSERT(starts(err, big));

	ASSERT_EQ(config_load(tmpdir, true, &c, err, sizeof(err)), -EINVAL);
	ASSERT(strstr(err, "is not a regular file") != NULL);

	fd = open(tmp_path("huge.conf"),
	    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT(fd >= 0);
	ASSERT_OK(ftruncate(fd, CONFIG_MAX_SIZE + 1));
	(void)close(fd);
	ASSERT_EQ(
	    config_load(tmp_path("huge.conf"), true, &c, err, sizeof(err)),
	    -EFBIG);
	ASSERT(strstr(err, "is larger than 1048576 bytes") != NULL);
}

TEST(reload_keeps_old_on_error)
{
	struct config cur, cli;
	const char *path = tmp_path("reload.conf");

	config_init(&cli);
	ASSERT_OK(
	    config_set(&cli, "socket", "/tmp/cli.sock", err, sizeof(err)));

	ASSERT_OK(write_file(path,
	    "log_level = info\n"
	    "[peer a]\nmatch_uid = 1\ntenant = t1\n"));
	config_init(&cur);
	ASSERT_EQ(config_reload(path, true, &cli, &cur, err, sizeof(err)), 1);
	ASSERT_EQ(cur.log_level, LOG_LEVEL_INFO);
	ASSERT_STREQ(cur.socket, "/tmp/cli.sock");
	ASSERT_STREQ(cur.peers[0].tenant, "t1");

	/* A good change is taken, the command line still on top. */
	ASSERT_OK(write_file(path,
	    "log_level = debug\nsocket = /run/f.sock\n"
	    "[peer a]\nmatch_uid = 1\ntenant = t2\n"));
	ASSERT_EQ(config_reload(path, true, &cli, &cur, err, sizeof(err)), 1);
	ASSERT_EQ(cur.log_level, LOG_LEVEL_DEBUG);
	ASSERT_STREQ(cur.socket, "/tmp/cli.sock");
	ASSERT_STREQ(cur.peers[0].tenant, "t2");

	/* A bad file: an error, and the running configuration stays. */
	ASSERT_OK(
	    write_file(path, "log_level = warn\n[peer a]\nmatch_uid = x\n"));
	ASSERT_EQ(config_reload(path, true, &cli, &cur, err, sizeof(err)),
	    -EINVAL);
	ASSERT(strstr(err, "reload.conf:3: bad value \"x\" for match_uid") !=
	    NULL);
	ASSERT_EQ(cur.log_level, LOG_LEVEL_DEBUG);
	ASSERT_STREQ(cur.peers[0].tenant, "t2");

	/* A file that went away: the same. */
	ASSERT_OK(unlink(path));
	ASSERT_EQ(config_reload(path, true, &cli, &cur, err, sizeof(err)),
	    -ENOENT);
	ASSERT_EQ(cur.log_level, LOG_LEVEL_DEBUG);
	/* Unless it may be absent: then defaults plus the command line. */
	ASSERT_EQ(config_reload(path, false, &cli, &cur, err, sizeof(err)), 0);
	ASSERT_EQ(cur.log_level, LOG_LEVEL_INFO);
	ASSERT_STREQ(cur.socket, "/tmp/cli.sock");
	ASSERT_EQ(cur.npeers, 0);
	config_done(&cur);
	config_done(&cli);
}

TEST(default_path)
{
	char buf[256];
	const char *p;

	if (getuid() == 0) {
		ASSERT_STREQ(config_default_path(buf, sizeof(buf)),
		    "/etc/m8tes/m8tesd.conf");
		return;
	}
	(void)setenv("XDG_CONFIG_HOME", "/home/u/.cfg", 1);
	p = config_default_path(buf, sizeof(buf));
	ASSERT_STREQ(p, "/home/u/.cfg/m8tes/m8tesd.conf");
	(void)unsetenv("XDG_CONFIG_HOME");
	(void)setenv("HOME", "/home/u", 1);
	ASSERT_STREQ(config_default_path(buf, sizeof(buf)),
	    "/home/u/.config/m8tes/m8tesd.conf");
	ASSERT_STREQ(config_default_path(buf, 4), "/etc/m8tes/m8tesd.conf");
}

/* systemd/m8tesd.conf.example, found from the vectors or this file. */
static const char *
example_path(char *buf, size_t len)
{
	const char *v = getenv("M8TES_VECTORS"),
	           *slash = strrchr(__FILE__, '/');

	if (v != NULL)
		(void)snprintf(buf, len, "%s/../../systemd/m8tesd.conf.example",
		    v);
	else
		(void)snprintf(buf, len,
		    "%.*s/../../systemd/m8tesd.conf.example",
		    slash != NULL ? (int)(slash - __FILE__) : 1,
		    slash != NULL ? __FILE__ : ".");
	return buf;
}

TEST(shipped_example)
{
	static char text[CONFIG_MAX_SIZE];
	char path[512], line[1024];
	struct config c;
	size_t n = 0;
	FILE *f;

	/* As shipped, everything is commented out. */
	if (config_load(example_path(path, sizeof(path)), true, &c, err,
	        sizeof(err)) != 1)
		T_FAIL("%s", err);
	ASSERT_EQ(c.set, 0);
	config_done(&c);

	/* Every example line, uncommented, is valid: all keys, 5 sections. */
	f = fopen(path, "re");
	ASSERT(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *l = line;

		if (l[0] == '#' &&
		    ((l[1] >= 'a' && l[1] <= 'z') || l[1] == '['))
			l++;
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", l);
	}
	(void)fclose(f);
	if (parse(text, &c) < 0)
		T_FAIL("uncommented example: %s", err);
	ASSERT_EQ(c.set, CONFIG_BIT(CONFIG_NKEYS) - 1);
	ASSERT_EQ(c.npeers, 3);
	ASSERT_STREQ(c.peers[0].tenant, "customer_42");
	ASSERT_EQ(c.peers[0].burst, 20);
	ASSERT(c.peers[1].admin);
	ASSERT_EQ(c.peers[2].nallow, 4);
	ASSERT_EQ(c.nhooks, 2);
	ASSERT_STREQ(c.hooks[0].name, "billing");
	ASSERT_EQ(c.hooks[0].nevents, 2);
	ASSERT_STREQ(c.hooks[0].exec, "/usr/local/bin/on-run-done");
	ASSERT_STREQ(c.hooks[1].url, "http://127.0.0.1:8080/hooks/m8tes");
	config_done(&c);
}

int
main(void)
{
	(void)snprintf(tmpdir, sizeof(tmpdir), "%s",
	    "/tmp/m8test_config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(defaults);
	RUN(every_key);
	RUN(key_names);
	RUN(values_in_range);
	RUN(bad_values);
	RUN(secrets_never_echoed);
	RUN(quoting_and_comments);
	RUN(bad_text);
	RUN(peer_sections);
	RUN(peer_errors);
	RUN(hook_sections);
	RUN(hook_errors);
	RUN(hook_too_many);
	RUN(hook_and_peer_names);
	RUN(set_from_command_line);
	RUN(merge_command_line_wins);
	RUN(diff);
	RUN(load);
	RUN(hook_merge_and_diff);
	RUN(reload_keeps_old_on_error);
	RUN(hook_reload);
	RUN(default_path);
	RUN(shipped_example);
	(void)unlink(tmp_path("good.conf"));
	(void)unlink(tmp_path("bad.conf"));
	(void)unlink(tmp_path("huge.conf"));
	(void)rmdir(tmpdir);
	return t_done();
}

/*
 * SPDX-License-Identifier: MIT
 *
 * "m8tes runs download RUN_ID FILENAME [-o PATH]": a run's file through a
 * descriptor the daemon passes (runs.download_file with "fd": true and
 * SCM_RIGHTS), copied to PATH with a progress bar and its size checked.
 * An older daemon that refuses "fd" is asked for event-line chunks
 * ("chunks": true), and one that refuses those too for the base64 result.
 * The file is written to a temporary name next to PATH and renamed into
 * place once complete, so a failed download leaves nothing behind.
 */
#ifndef M8_CLI_DL_H
#define M8_CLI_DL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cJSON;
struct cli_cmd;
struct cli_opts;
struct m8c_conn;
struct m8c_reply;

#define CLI_DL_FD_WAIT_MS 10000   /* for the descriptor after its result */
#define CLI_DL_PROGRESS_MS 100    /* between progress bar updates */
#define CLI_DL_PATH_MAX 4096

/* How the bytes came. */
enum cli_dl_via {
	CLI_DL_FD = 0,
	CLI_DL_CHUNKS,
	CLI_DL_BASE64,
};

/* One download. Zero it, set the inputs, call cli_dl_fetch. */
struct cli_dl {
	struct m8c_conn *conn;
	const char *path;   /* -o PATH, "-" stdout; NULL: FILENAME here */
	FILE *progress;     /* the bar goes here; NULL: no bar */
	int timeout_ms;     /* each call, -1 = none */
	/* Results. */
	char saved[CLI_DL_PATH_MAX]; /* the name written, "-" for stdout */
	uint64_t size;               /* bytes written */
	enum cli_dl_via via;
	char err[CLI_DL_PATH_MAX + 256]; /* why it failed, locally */
	/* Private. */
	int fd;            /* the output, -1 when closed */
	char tmp[CLI_DL_PATH_MAX + 16]; /* temporary name, "" when none */
	uint64_t total;    /* expected size, 0 = unknown */
	long long t0, last; /* monotonic ms: start, last bar */
	int cb_err;        /* a chunk callback's failure */
};

/*
 * "report.csv  45%  1.2 MiB / 2.6 MiB  3.4 MiB/s" for done of total bytes
 * after secs seconds ("?" for an unknown total). Writes at most len bytes
 * (NUL included).
 */
void cli_dl_progress_format(char *buf, size_t len, const char *name,
    uint64_t done, uint64_t total, double secs);

/* "1023 B", "1.5 KiB", "2.0 MiB", "3.2 GiB". */
void cli_dl_human(char *buf, size_t len, double bytes);

/*
 * Downloads the file params names ({"run_id","filename"}) into d->path.
 * Returns M8C_RESULT with the final reply in *ret_reply once the file is
 * complete and has the size the daemon announced; M8C_ERROR with the
 * daemon's error; or -errno with d->err set: -EBADMSG for a malformed
 * answer or a size mismatch, -EEXIST when FILENAME exists here, -errno of
 * the connection or the output.
 */
int cli_dl_fetch(struct cli_dl *d, const struct cJSON *params,
    struct m8c_reply *ret_reply);

/* The whole command; the exit status. */
int cli_dl_main(const struct cli_opts *o, struct cli_cmd *cmd);

#endif

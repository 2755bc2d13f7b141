/* Shared helpers for parley's tests: temporary directories, running real
 * parleyd / parleyctl processes, and a line-oriented JSON-RPC client.
 *
 * Include this instead of <cmocka.h>: it pulls cmocka in with the headers
 * cmocka needs. Everything here is for the test's main thread; nothing is
 * thread-safe. Child processes started here are killed (SIGKILL) when the
 * test program exits, even if a test failed half-way, so a failing test
 * never leaves a daemon behind.
 *
 * Timeouts are in milliseconds and are scaled by ts_timeout_ms(), so slow
 * builds (sanitizers, valgrind) can set PARLEY_TEST_TIMEOUT_SCALE=3 instead
 * of every test growing its own margins. Do not build a test on tight
 * timings: the machines have two shared cores.
 *
 * Conventions: functions returning int return 0 on success and a negative
 * value on failure, after printing the reason to stderr (so a failing test
 * says why); functions returning a pointer return NULL on failure. Strings
 * and json_t results are owned by the caller unless said otherwise.
 */
#ifndef PARLEY_TESTSUPPORT_H
#define PARLEY_TESTSUPPORT_H

/* cmocka needs these before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define TS_PATH_MAX 512

/* --- time ----------------------------------------------------------------
 */

/* base_ms times $PARLEY_TEST_TIMEOUT_SCALE (a positive number, default 1).
 */
int ts_timeout_ms(int base_ms);
/* Monotonic milliseconds, for measuring elapsed time. */
int64_t ts_now_ms(void);
void ts_sleep_ms(int ms);

/* --- files and directories ----------------------------------------------
 */

/* Creates a fresh private directory $TMPDIR/parley-<tag>-XXXXXX (TMPDIR
 * defaults to /tmp; short, so socket paths inside stay under the 107-byte
 * limit). Returns the malloc'd path or NULL. */
char *ts_tmpdir(const char *tag);
/* rm -rf path (does not follow symlinks). Returns 0 or -errno of the first
 * failure; a missing path is success. */
int ts_rm_rf(const char *path);
/* Convenience: malloc'd "dir/name" (never NULL: aborts on OOM). */
char *ts_path(const char *dir, const char *name);
/* Reads a whole file; returns a malloc'd NUL-terminated copy (its length in
 * *len if len is not NULL), or NULL. */
char *ts_read_file(const char *path, size_t *len);
/* Returns the file's permission bits (st_mode & 07777) or -1. */
int ts_file_mode(const char *path);
bool ts_exists(const char *path);

/* --- processes -----------------------------------------------------------
 */

/* How a finished process ended, as a shell reports it: its exit code
 * (0..255), or 128 + the signal that killed it. -1 means it did not finish
 * in time (it was then SIGKILLed and reaped). */
typedef struct ts_output {
  int status;
  char *out; /* everything it wrote to stdout, NUL-terminated */
  char *err; /* and to stderr */
} ts_output_t;

/* Runs argv[0] (a path; not searched in PATH unless it has no '/') with
 * stdin from /dev/null, capturing both outputs, and waits up to timeout_ms.
 * env: NULL-terminated "NAME=value" strings set on top of this process's
 * environment, less PARLEY_SOCKET (may be NULL). Returns 0 when it ran (see
 * out->status) or -1 if it could not be started. Free with ts_output_free. */
int ts_run(const char *const *argv, const char *const *env, int timeout_ms,
           ts_output_t *out);
/* ts_run of `parleyctl --socket <socket> args...` (socket may be NULL to
 * let parleyctl choose), with PARLEY_SOCKET unset. */
int ts_run_ctl(const char *socket, const char *const *args, ts_output_t *out);
/* ts_run of `/bin/sh -c cmd`. */
int ts_run_sh(const char *cmd, ts_output_t *out);
void ts_output_free(ts_output_t *out);

/* Waits for a child to end; returns its status as in ts_output_t, or -1 on
 * timeout (the child is left running). */
int ts_wait_pid(pid_t pid, int timeout_ms);

/* --- audio files ---------------------------------------------------------
 */

/* Mono 48 kHz samples (malloc'd; free(s)). */
typedef struct ts_pcm {
  int16_t *s;
  size_t n;
} ts_pcm_t;

/* Up to max_seconds of a WAV file as the `file:` source reads it (48 kHz
 * mono, converted if need be), in whole 20 ms frames. Returns 0, or -1
 * (printing why) when the file cannot be opened. */
int ts_load_wav(const char *path, double max_seconds, ts_pcm_t *out);

/* --- parleyd -------------------------------------------------------------
 */

/* One parleyd run in a temporary XDG home:
 *   XDG_CONFIG_HOME = <home>/config    (config in <home>/config/parley/)
 *   XDG_DATA_HOME   = <home>/data      (data dir <home>/data/parley/)
 *   XDG_RUNTIME_DIR = <home>/run       (socket <home>/run/parley/parleyd.sock)
 *   HOME            = <home>
 * with PARLEY_* variables removed from its environment. Its stdout and
 * stderr go to files in <home> named after a per-process run counter, so
 * several daemons (or restarts) in one home keep their own logs. */
typedef struct ts_daemon {
  char home[TS_PATH_MAX];
  char config_dir[TS_PATH_MAX];  /* $XDG_CONFIG_HOME/parley */
  char data_dir[TS_PATH_MAX];    /* $XDG_DATA_HOME/parley */
  char runtime_dir[TS_PATH_MAX]; /* $XDG_RUNTIME_DIR */
  char socket[TS_PATH_MAX];      /* default, or the --socket given */
  char out_path[TS_PATH_MAX];    /* its stdout of the latest spawn */
  char err_path[TS_PATH_MAX];    /* its stderr */
  pid_t pid;                     /* 0 when not running */
  int status;                    /* how the last run ended (ts_output_t) */
  char peer_id[65];              /* from `status`, once ready */
} ts_daemon_t;

/* A UDP port on 127.0.0.1 that was free a moment ago (the kernel's pick),
 * or -1. */
int ts_free_udp_port(void);

/* Fills d's paths for home (creating nothing). */
void ts_daemon_init(ts_daemon_t *d, const char *home);
/* Starts parleyd (PARLEYD_PATH) with args (NULL-terminated, may be NULL).
 * Unless args contain "--listen", "--listen 127.0.0.1:0" is added so
 * parallel tests never fight over a port (status and the ticket show the
 * port the kernel picked). A "--socket P" in args becomes d->socket. Does
 * not wait. */
int ts_daemon_spawn(ts_daemon_t *d, const char *const *args);
/* Waits until the daemon printed "parleyd: ready" and its socket answers
 * `status` (fills d->peer_id). Fails early, showing the daemon's stderr, if
 * the daemon exits meanwhile. */
int ts_daemon_wait_ready(ts_daemon_t *d, int timeout_ms);
/* init + spawn + wait_ready (ts_timeout_ms(20000)). */
int ts_daemon_start(ts_daemon_t *d, const char *home, const char *const *args);
/* Sends SIGTERM and waits (ts_timeout_ms(15000)). Returns the status as in
 * ts_output_t (0 for a clean exit), or -1 if it had to be SIGKILLed. */
int ts_daemon_stop(ts_daemon_t *d);
/* SIGKILL and reap. Returns the status (137). */
int ts_daemon_kill(ts_daemon_t *d);
/* Waits for the daemon to exit on its own; status or -1 on timeout. */
int ts_daemon_wait_exit(ts_daemon_t *d, int timeout_ms);
/* Contents of its latest stdout / stderr files (malloc'd; "" if none). */
char *ts_daemon_stdout(const ts_daemon_t *d);
char *ts_daemon_stderr(const ts_daemon_t *d);
/* Prints its stderr to ours, for a failing test's diagnostics. */
void ts_daemon_dump(const ts_daemon_t *d);

/* SIGKILLs every child still running that this library started. Runs at
 * exit by itself; call it from a teardown to clean up between tests. */
void ts_kill_all(void);

/* --- two daemons and a relay (call tests) --------------------------------
 */

/* Starts a and b, each with its own home ("a", "b") under dir. */
int ts_daemon_pair_start(const char *dir, ts_daemon_t *a, ts_daemon_t *b);
/* The same, each with config as its parleyd.conf (NULL: none). */
int ts_daemon_pair_start_config(const char *dir, ts_daemon_t *a, ts_daemon_t *b,
                                const char *config);
/* The UDP port d listens on (from the ticket on its stdout), or -1. */
int ts_daemon_port(const ts_daemon_t *d);
/* Starts parley-relay (seed 7) between 127.0.0.1:0 and upstream_port with
 * opts; its output goes to dir/relay.out. Its stdin is /dev/null, or with
 * ctl a pipe whose write end *ctl gets (the relay's control channel: "set
 * up-rate 600"). Fills addr ("ip:port") and returns the pid (killed with
 * the others at exit), or -1. */
pid_t ts_relay_start(const char *dir, int upstream_port, const char *opts,
                     FILE **ctl, char *addr, size_t addr_size);
/* b adds a as a contact; returns what a dials to reach b: b's ticket, or
 * b's peer ID at relay_addr when that is given. NULL on failure. */
char *ts_pair_contacts(const ts_daemon_t *a, const ts_daemon_t *b,
                       const char *relay_addr);

/* --- JSON-RPC client -----------------------------------------------------
 */

typedef struct ts_rpc ts_rpc_t;

/* Connects to a Unix socket, retrying while it is missing or refusing
 * (a daemon still starting) until timeout_ms. */
ts_rpc_t *ts_rpc_connect(const char *socket, int timeout_ms);
/* Closes the connection (abruptly: unread data is dropped). NULL ok. */
void ts_rpc_close(ts_rpc_t *c);
int ts_rpc_fd(const ts_rpc_t *c);

/* Sends len bytes as they are (no newline added). 0 or -errno. */
int ts_rpc_send_raw(ts_rpc_t *c, const void *data, size_t len);
/* Reads the next line (without '\n'), malloc'd; NULL on timeout, EOF or
 * error. Lines of any length are accepted. */
char *ts_rpc_read_line(ts_rpc_t *c, int timeout_ms);
/* ts_rpc_read_line + parse. NULL if no line or not JSON. */
json_t *ts_rpc_read_json(ts_rpc_t *c, int timeout_ms);
/* True if the peer closes the connection within timeout_ms (data still
 * arriving meanwhile is discarded). */
bool ts_rpc_wait_closed(ts_rpc_t *c, int timeout_ms);

/* Sends {"jsonrpc":"2.0","id":N,"method":method[,"params":params]} and
 * returns the whole response object with that id (so a test can look at
 * "error"), or NULL on timeout/EOF. params is stolen (NULL: none).
 * Notifications arriving meanwhile are kept for ts_rpc_next_notification.
 * timeout_ms <= 0 means ts_timeout_ms(10000). */
json_t *ts_rpc_call(ts_rpc_t *c, const char *method, json_t *params,
                    int timeout_ms);
/* ts_rpc_call that asserts (cmocka) a result and returns it (new ref). */
json_t *ts_rpc_call_ok(ts_rpc_t *c, const char *method, json_t *params);
/* The next notification (queued or read), or NULL on timeout. Responses
 * read meanwhile are dropped. */
json_t *ts_rpc_next_notification(ts_rpc_t *c, int timeout_ms);

/* The next notification named method, skipping others, or a cmocka
 * failure after timeout_ms (scaled by ts_timeout_ms). Caller frees. */
json_t *ts_rpc_wait_event(ts_rpc_t *c, const char *method, int timeout_ms);
/* Waits (as above, 10 s per event) for a call-state notification with the
 * given state. */
void ts_rpc_wait_call_state(ts_rpc_t *c, const char *state);

/* The error code of a response (0 if it has none) and its message ("" if
 * none; borrowed from resp). */
int ts_rpc_error_code(const json_t *resp);
const char *ts_rpc_error_message(const json_t *resp);

/* One-shot: connect, call, close. NULL on failure. */
json_t *ts_rpc_call_once(const char *socket, const char *method,
                         json_t *params);

/* --- assertions ----------------------------------------------------------
 */

/* Asserts that resp is an error with the given code and id (id < 0: must
 * be null), printing the response when not. */
void ts_assert_rpc_error(const json_t *resp, int code, long long id);
/* Asserts that haystack contains needle (both printed when not). */
#define ts_assert_contains(haystack, needle)                                   \
  ts__assert_contains((haystack), (needle), __FILE__, __LINE__)
void ts__assert_contains(const char *haystack, const char *needle,
                         const char *file, int line);

#endif

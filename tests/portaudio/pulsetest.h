/* What the PortAudio tests share: a private PulseAudio server whose null
 * sinks stand in for microphones and speakers (the recipe is
 * docs/devices.md and ../shared/design/PORTAUDIO.md), the players,
 * recorders and other clients the test starts against it, and WAV files
 * loaded for analysis.
 *
 * One server per test program, started by the group setup
 * (pt_server_start) and stopped by the group teardown (pt_server_stop).
 * When it cannot start the tests skip, saying why (pt_need_server), and
 * the program exits 77, which ctest shows as "Skipped". Every process
 * started here gets PR_SET_PDEATHSIG and is killed by PID: by
 * pt_stop_clients, by pt_server_stop, or at exit, even after a failed
 * assertion. PARLEY_TEST_KEEP=1 keeps the temporary directory (server
 * log, recordings, client logs). Like testsupport, for the main thread
 * only. */
#ifndef PARLEY_TESTS_PORTAUDIO_PULSETEST_H
#define PARLEY_TESTS_PORTAUDIO_PULSETEST_H

#include "testsupport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Mono 48 kHz samples (malloc'd). */
typedef ts_pcm_t pt_pcm_t;

/* --- the sound server ----------------------------------------------------
 */

/* Makes the temporary directory $TMPDIR/parley-<tag>-XXXXXX, writes a
 * server.pa with one null sink (48 kHz mono s16le) per name in sinks
 * (NULL-terminated), each kept running by a loopback from a silent source,
 * and the given default sink and source, then starts pulseaudio there and
 * waits until `pactl info` answers. Sets PULSE_SERVER, PULSE_COOKIE and
 * JACK_NO_START_SERVER for this process and whatever it starts. Returns
 * whether the server is up; when not, the reason is kept for
 * pt_need_server. */
bool pt_server_start(const char *tag, const char *const *sinks,
                     const char *default_sink, const char *default_source);
/* Kills every process started here, the server last, and removes the
 * directory (kept, and its path printed, with PARLEY_TEST_KEEP set). */
void pt_server_stop(void);
/* Skips the test (visibly: "SKIP: why") when the server is not up, and
 * waits out its first seconds: an idle null sink runs ~2 s ahead, so a
 * stream started then would start late. */
void pt_need_server(void);
bool pt_server_up(void);
/* The temporary directory (NULL before pt_server_start). */
const char *pt_dir(void);

/* pactl ARGS... (NULL-terminated, at most 14); its stdout (malloc'd) or a
 * test failure showing pactl's stderr. */
char *pt_pactl(const char *const *args);

/* --- processes -----------------------------------------------------------
 */

/* Starts argv[0] (searched in PATH) with stdin from /dev/null and stdout
 * and stderr appended to logname in the directory; it dies with us
 * (PR_SET_PDEATHSIG) and is tracked, so that pt_stop_clients kills it. */
pid_t pt_spawn(const char *const *argv, const char *logname);
/* For a child forked elsewhere: tracks pid like pt_spawn's. */
void pt_track(pid_t pid);
/* pid was reaped: never signal it again (the number may be reused). */
void pt_untrack(pid_t pid);
/* Sends sig and reaps pid within timeout_ms (then SIGKILL). Returns its
 * wait status, or -1 (also for pid <= 0). */
int pt_stop_pid(pid_t pid, int sig, int timeout_ms);
/* SIGKILLs every tracked process (not the server): what a failed test
 * left behind. */
void pt_stop_clients(void);

/* paplay of wav into a sink (a "microphone"), 200 ms of latency. */
pid_t pt_play(const char *sink, const char *wav);
/* parecord of a source (a "speaker"'s monitor) into wav, 48 kHz mono. */
pid_t pt_record(const char *source, const char *wav);
/* Stops a pt_record: SIGINT makes parecord write its WAV header; asserts
 * it exited, then loads wav into out. */
void pt_stop_recording(pid_t pid, const char *wav, pt_pcm_t *out);

/* Starts a parleyd with its home in the directory's subdirectory name
 * (created here), whose PortAudio captures source and plays to sink
 * (PULSE_SOURCE / PULSE_SINK in its environment only). */
void pt_daemon_start(ts_daemon_t *d, const char *name, const char *source,
                     const char *sink);

/* --- files ---------------------------------------------------------------
 */

/* Up to 60 s of a WAV file, as the file: source reads it (48 kHz mono),
 * in whole frames, or a test failure. */
void pt_load_wav(const char *path, pt_pcm_t *out);

#endif

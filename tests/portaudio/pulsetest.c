/* The private PulseAudio server of the PortAudio tests and the clients
 * they start against it (see pulsetest.h). */
#include "pulsetest.h"

#include "device/device.h"
#include "media/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETTLE_MS 2500 /* an idle null sink runs ahead for ~2 s */
#define MAX_PIDS 16

/* The whole program shares one sound server. */
static struct {
  char *dir;
  char skip_why[256];
  bool up;
  int64_t started_ms;
  pid_t server;
  pid_t pids[MAX_PIDS]; /* players, recorders, forks; 0 when reaped */
} g;

/* ---- processes ---- */

void pt_track(pid_t pid) {
  for (int i = 0; i < MAX_PIDS; i++)
    if (g.pids[i] == 0) {
      g.pids[i] = pid;
      return;
    }
  abort();
}

void pt_untrack(pid_t pid) {
  for (int i = 0; i < MAX_PIDS; i++)
    if (g.pids[i] == pid)
      g.pids[i] = 0;
  if (g.server == pid)
    g.server = 0;
}

/* Starts argv[0] (searched in PATH), output to dir/logname; it dies with
 * us. The server is not tracked: it outlives pt_stop_clients. */
static pid_t spawn_untracked(const char *const *argv, const char *logname) {
  char *log = ts_path(g.dir, logname);
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The parent died before prctl: nobody would kill this one. */
    if (getppid() != parent)
      _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int in = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (in >= 0)
      dup2(in, 0);
    execvp(argv[0], (char *const *)argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(log);
  return pid;
}

pid_t pt_spawn(const char *const *argv, const char *logname) {
  pid_t pid = spawn_untracked(argv, logname);
  pt_track(pid);
  return pid;
}

int pt_stop_pid(pid_t pid, int sig, int timeout_ms) {
  if (pid <= 0)
    return -1;
  kill(pid, sig);
  int st = -1;
  int64_t end = ts_now_ms() + timeout_ms;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (ts_now_ms() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    ts_sleep_ms(10);
  }
  pt_untrack(pid);
  return st;
}

void pt_stop_clients(void) {
  for (int i = 0; i < MAX_PIDS; i++)
    if (g.pids[i] > 0)
      pt_stop_pid(g.pids[i], SIGKILL, 1000);
}

static void stop_all(void) {
  pt_stop_clients();
  if (g.server > 0)
    pt_stop_pid(g.server, SIGTERM, 3000);
  g.server = 0;
}

pid_t pt_play(const char *sink, const char *wav) {
  const char *argv[] = {"paplay", "--latency-msec=200", "-d", sink, wav, NULL};
  return pt_spawn(argv, "paplay.log");
}

pid_t pt_record(const char *source, const char *wav) {
  const char *argv[] = {"parecord",
                        "--latency-msec=20",
                        "-d",
                        source,
                        "--rate=48000",
                        "--channels=1",
                        "--format=s16le",
                        "--file-format=wav",
                        wav,
                        NULL};
  return pt_spawn(argv, "parecord.log");
}

void pt_stop_recording(pid_t pid, const char *wav, pt_pcm_t *out) {
  int st = pt_stop_pid(pid, SIGINT, 5000);
  assert_true(WIFEXITED(st));
  pt_load_wav(wav, out);
}

void pt_daemon_start(ts_daemon_t *d, const char *name, const char *source,
                     const char *sink) {
  char *home = ts_path(g.dir, name);
  assert_int_equal(mkdir(home, 0700), 0);
  /* ts_daemon_spawn passes our environment on, plus its own. */
  setenv("PULSE_SOURCE", source, 1);
  setenv("PULSE_SINK", sink, 1);
  int r = ts_daemon_start(d, home, NULL);
  unsetenv("PULSE_SOURCE");
  unsetenv("PULSE_SINK");
  assert_int_equal(r, 0);
  free(home);
}

/* ---- files ---- */

void pt_load_wav(const char *path, pt_pcm_t *out) {
  assert_int_equal(ts_load_wav(path, 60, out), 0);
}

/* ---- the sound server ---- */

static bool pactl_ok(void) {
  const char *argv[] = {"pactl", "info", NULL};
  ts_output_t o;
  bool ok = ts_run(argv, NULL, 3000, &o) == 0 && o.status == 0;
  ts_output_free(&o);
  return ok;
}

char *pt_pactl(const char *const *args) {
  const char *argv[16] = {"pactl"};
  int n = 1;
  for (; args[n - 1]; n++) {
    assert_true(n < 15);
    argv[n] = args[n - 1];
  }
  argv[n] = NULL;
  ts_output_t o;
  assert_int_equal(ts_run(argv, NULL, 5000, &o), 0);
  if (o.status != 0)
    fail_msg("pactl %s: %s", args[0], o.err);
  char *out = strdup(o.out);
  ts_output_free(&o);
  return out;
}

bool pt_server_start(const char *tag, const char *const *sinks,
                     const char *default_sink, const char *default_source) {
  /* Before anything is started: a failed assertion below must not leave
   * the server running. */
  atexit(stop_all);

  g.dir = ts_tmpdir(tag);
  assert_non_null(g.dir);
  char *conf = ts_path(g.dir, "server.pa");
  FILE *f = fopen(conf, "w");
  assert_non_null(f);
  fprintf(f,
          "load-module module-native-protocol-unix auth-anonymous=1 "
          "socket=%s/native\n"
          "load-module module-null-source source_name=silence rate=48000 "
          "channels=1 format=s16le\n",
          g.dir);
  for (int i = 0; sinks[i]; i++)
    fprintf(f,
            "load-module module-null-sink sink_name=%s rate=48000 "
            "channels=1 format=s16le\n"
            "load-module module-loopback source=silence sink=%s "
            "latency_msec=20 source_dont_move=1 sink_dont_move=1\n",
            sinks[i], sinks[i]);
  fprintf(f, "set-default-sink %s\nset-default-source %s\n", default_sink,
          default_source);
  fclose(f);

  /* The server and every client here (this process's PortAudio, paplay,
   * parecord, parleyd) find it through these. No D-Bus, no autospawn, no
   * JACK server. The server asks for real-time threads and nice -11
   * (granted to root, else it runs without): on two shared cores a
   * starved server glitches every stream at once. */
  char v[TS_PATH_MAX + 16];
  snprintf(v, sizeof(v), "unix:%s/native", g.dir);
  setenv("PULSE_SERVER", v, 1);
  snprintf(v, sizeof(v), "%s/cookie", g.dir);
  setenv("PULSE_COOKIE", v, 1);
  setenv("JACK_NO_START_SERVER", "1", 1);
  unsetenv("PULSE_SINK");
  unsetenv("PULSE_SOURCE");

  /* The server keeps its runtime files, state and cookie in the
   * directory, not in the user's home; HOME is ours again once it is
   * started. */
  char *state_dir = ts_path(g.dir, "state");
  setenv("PULSE_RUNTIME_PATH", g.dir, 1);
  setenv("PULSE_STATE_PATH", state_dir, 1);
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("HOME", g.dir, 1);
  const char *argv[] = {"pulseaudio",
                        "-n",
                        "-F",
                        conf,
                        "--daemonize=no",
                        "--exit-idle-time=-1",
                        "--disallow-exit",
                        "--use-pid-file=no",
                        "--realtime=yes",
                        "--high-priority=yes",
                        "--log-target=stderr",
                        NULL};
  g.server = spawn_untracked(argv, "pulseaudio.log");
  g.started_ms = ts_now_ms();
  if (home)
    setenv("HOME", home, 1);
  else
    unsetenv("HOME");
  unsetenv("PULSE_RUNTIME_PATH");
  unsetenv("PULSE_STATE_PATH");
  free(home);
  free(state_dir);
  free(conf);

  int64_t end = ts_now_ms() + ts_timeout_ms(10000);
  while (!g.up && ts_now_ms() < end) {
    if (waitpid(g.server, NULL, WNOHANG) == g.server) {
      pt_untrack(g.server);
      break;
    }
    g.up = pactl_ok();
    if (!g.up)
      ts_sleep_ms(100);
  }
  if (!g.up) {
    char *log = ts_path(g.dir, "pulseaudio.log");
    char *text = ts_read_file(log, NULL);
    snprintf(g.skip_why, sizeof(g.skip_why),
             "the PulseAudio server did not come up: %.180s",
             text && *text ? text : "(no output)");
    free(text);
    free(log);
    stop_all();
  }
  return g.up;
}

void pt_server_stop(void) {
  stop_all();
  if (g.dir) {
    if (getenv("PARLEY_TEST_KEEP"))
      printf("kept %s\n", g.dir);
    else
      ts_rm_rf(g.dir);
    free(g.dir);
    g.dir = NULL;
  }
}

void pt_need_server(void) {
  if (!g.up) {
    printf("SKIP: %s\n", g.skip_why);
    skip();
  }
  int64_t left = g.started_ms + SETTLE_MS - ts_now_ms();
  if (left > 0)
    ts_sleep_ms((int)left);
}

bool pt_server_up(void) {
  return g.up;
}

const char *pt_dir(void) {
  return g.dir;
}

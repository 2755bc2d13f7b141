/* Shared test helpers: temp dirs, child processes, parleyd, a JSON-RPC
 * client. See testsupport.h. */
#include "testsupport.h"

#include "device/device.h"
#include "media/audio.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TS_CHILDREN_MAX 256

static pid_t ts__children[TS_CHILDREN_MAX];
static bool ts__atexit_done;
static int ts__run_counter;

static void ts__track(pid_t pid);
static void ts__untrack(pid_t pid);
static int ts__status(int wstatus);
static char **ts__make_env(const char *const *set, const char *const *unset);
static void ts__free_env(char **env);
static pid_t ts__spawn(const char *const *argv, char **env, int out_fd,
                       int err_fd);
static void ts__fmt(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- time --------------------------------------------------------------- */

int ts_timeout_ms(int base_ms) {
  const char *s = getenv("PARLEY_TEST_TIMEOUT_SCALE");
  double scale = s ? atof(s) : 1.0;
  if (scale <= 0)
    scale = 1.0;
  return (int)(base_ms * scale);
}

int64_t ts_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ts_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* --- files -------------------------------------------------------------- */

char *ts_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || base[0] != '/' || strlen(base) > 40)
    base = "/tmp";
  char tmpl[TS_PATH_MAX];
  snprintf(tmpl, sizeof(tmpl), "%s/parley-%s-XXXXXX", base, tag);
  if (!mkdtemp(tmpl)) {
    fprintf(stderr, "ts_tmpdir: mkdtemp %s: %s\n", tmpl, strerror(errno));
    return NULL;
  }
  return strdup(tmpl);
}

int ts_rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 0 : -errno;
  int rc = 0;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d)
      return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char *child = ts_path(path, e->d_name);
      int r = ts_rm_rf(child);
      if (r != 0 && rc == 0)
        rc = r;
      free(child);
    }
    closedir(d);
    if (rmdir(path) != 0 && rc == 0)
      rc = -errno;
  } else if (unlink(path) != 0) {
    rc = -errno;
  }
  return rc;
}

char *ts_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (!p)
    abort();
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

char *ts_read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    if (!buf)
      abort();
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

int ts_file_mode(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

bool ts_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* --- processes ---------------------------------------------------------- */

void ts_kill_all(void) {
  for (int i = 0; i < TS_CHILDREN_MAX; i++) {
    if (ts__children[i] > 0) {
      kill(ts__children[i], SIGKILL);
      waitpid(ts__children[i], NULL, 0);
      ts__children[i] = 0;
    }
  }
}

int ts_wait_pid(pid_t pid, int timeout_ms) {
  int64_t deadline = ts_now_ms() + timeout_ms;
  int delay = 1;
  for (;;) {
    int ws;
    pid_t r = waitpid(pid, &ws, WNOHANG);
    if (r == pid) {
      ts__untrack(pid);
      return ts__status(ws);
    }
    if (r < 0 && errno != EINTR) {
      ts__untrack(pid);
      return -1;
    }
    if (ts_now_ms() >= deadline)
      return -1;
    ts_sleep_ms(delay);
    if (delay < 50)
      delay *= 2;
  }
}

int ts_run(const char *const *argv, const char *const *env, int timeout_ms,
           ts_output_t *out) {
  memset(out, 0, sizeof(*out));
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) != 0)
    return -1;
  if (pipe2(pe, O_CLOEXEC) != 0) {
    close(po[0]);
    close(po[1]);
    return -1;
  }
  char **envp = ts__make_env(env, NULL);
  pid_t pid = ts__spawn(argv, envp, po[1], pe[1]);
  ts__free_env(envp);
  close(po[1]);
  close(pe[1]);
  if (pid < 0) {
    close(po[0]);
    close(pe[0]);
    return -1;
  }

  char *bufs[2] = {NULL, NULL};
  size_t lens[2] = {0, 0}, caps[2] = {0, 0};
  struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN},
                         {.fd = pe[0], .events = POLLIN}};
  int open_fds = 2;
  int64_t deadline = ts_now_ms() + timeout_ms;
  bool timed_out = false;
  while (open_fds > 0) {
    int64_t left = deadline - ts_now_ms();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int r = poll(pf, 2, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      continue;
    for (int i = 0; i < 2; i++) {
      if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (caps[i] - lens[i] < 4096) {
        caps[i] = caps[i] ? caps[i] * 2 : 8192;
        bufs[i] = realloc(bufs[i], caps[i]);
        if (!bufs[i])
          abort();
      }
      ssize_t n = read(pf[i].fd, bufs[i] + lens[i], caps[i] - lens[i] - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        close(pf[i].fd);
        pf[i].fd = -1;
        open_fds--;
        continue;
      }
      lens[i] += (size_t)n;
    }
  }
  for (int i = 0; i < 2; i++)
    if (pf[i].fd >= 0)
      close(pf[i].fd);
  if (timed_out) {
    fprintf(stderr, "ts_run: %s did not finish in %d ms; killing it\n", argv[0],
            timeout_ms);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ts__untrack(pid);
    out->status = -1;
  } else {
    out->status = ts_wait_pid(pid, timeout_ms);
    if (out->status < 0) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      ts__untrack(pid);
    }
  }
  for (int i = 0; i < 2; i++) {
    if (!bufs[i])
      bufs[i] = malloc(1);
    if (!bufs[i])
      abort();
    bufs[i][lens[i]] = '\0';
  }
  out->out = bufs[0];
  out->err = bufs[1];
  return 0;
}

int ts_run_ctl(const char *socket, const char *const *args, ts_output_t *out) {
  const char *argv[64];
  size_t n = 0;
  argv[n++] = PARLEYCTL_PATH;
  if (socket) {
    argv[n++] = "--socket";
    argv[n++] = socket;
  }
  for (size_t i = 0; args && args[i] && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return ts_run(argv, NULL, ts_timeout_ms(30000), out);
}

int ts_run_sh(const char *cmd, ts_output_t *out) {
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  return ts_run(argv, NULL, ts_timeout_ms(30000), out);
}

void ts_output_free(ts_output_t *out) {
  free(out->out);
  free(out->err);
  out->out = out->err = NULL;
}

/* --- parleyd ------------------------------------------------------------ */

int ts_free_udp_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sin);
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  close(fd);
  if (port < 0)
    fprintf(stderr, "ts_free_udp_port: %s\n", strerror(errno));
  return port;
}

void ts_daemon_init(ts_daemon_t *d, const char *home) {
  memset(d, 0, sizeof(*d));
  ts__fmt(d->home, sizeof(d->home), "%s", home);
  ts__fmt(d->config_dir, sizeof(d->config_dir), "%s/config/parley", home);
  ts__fmt(d->data_dir, sizeof(d->data_dir), "%s/data/parley", home);
  ts__fmt(d->runtime_dir, sizeof(d->runtime_dir), "%s/run", home);
  ts__fmt(d->socket, sizeof(d->socket), "%s/run/parley/parleyd.sock", home);
  d->status = -1;
}

int ts_daemon_spawn(ts_daemon_t *d, const char *const *args) {
  const char *argv[64];
  size_t n = 0;
  bool has_listen = false;
  argv[n++] = PARLEYD_PATH;
  for (size_t i = 0; args && args[i]; i++) {
    if (n >= 60) {
      fprintf(stderr, "ts_daemon_spawn: too many arguments\n");
      return -1;
    }
    if (strncmp(args[i], "--listen", 8) == 0)
      has_listen = true;
    if (strcmp(args[i], "--socket") == 0 && args[i + 1])
      ts__fmt(d->socket, sizeof(d->socket), "%s", args[i + 1]);
    else if (strncmp(args[i], "--socket=", 9) == 0)
      ts__fmt(d->socket, sizeof(d->socket), "%s", args[i] + 9);
    argv[n++] = args[i];
  }
  if (!has_listen) {
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0"; /* the kernel picks a free port */
  }
  argv[n] = NULL;

  int run = ++ts__run_counter;
  ts__fmt(d->out_path, sizeof(d->out_path), "%s/parleyd.%d.stdout", d->home,
          run);
  ts__fmt(d->err_path, sizeof(d->err_path), "%s/parleyd.%d.stderr", d->home,
          run);
  int out = open(d->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = open(d->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0 || err < 0) {
    fprintf(stderr, "ts_daemon_spawn: cannot create %s: %s\n", d->out_path,
            strerror(errno));
    if (out >= 0)
      close(out);
    if (err >= 0)
      close(err);
    return -1;
  }

  char cfg[TS_PATH_MAX + 32], data[TS_PATH_MAX + 32], run_dir[TS_PATH_MAX + 32],
      home[TS_PATH_MAX + 32];
  ts__fmt(cfg, sizeof(cfg), "XDG_CONFIG_HOME=%s/config", d->home);
  ts__fmt(data, sizeof(data), "XDG_DATA_HOME=%s/data", d->home);
  ts__fmt(run_dir, sizeof(run_dir), "XDG_RUNTIME_DIR=%s", d->runtime_dir);
  ts__fmt(home, sizeof(home), "HOME=%s", d->home);
  const char *set[] = {cfg, data, run_dir, home, NULL};
  static const char *const unset[] = {"PARLEY_", "XDG_CONFIG_DIRS",
                                      "XDG_DATA_DIRS", NULL};
  char **envp = ts__make_env(set, unset);
  d->pid = ts__spawn(argv, envp, out, err);
  ts__free_env(envp);
  close(out);
  close(err);
  d->status = -1;
  d->peer_id[0] = '\0';
  return d->pid > 0 ? 0 : -1;
}

int ts_daemon_wait_ready(ts_daemon_t *d, int timeout_ms) {
  int64_t deadline = ts_now_ms() + timeout_ms;
  while (ts_now_ms() < deadline) {
    int ws;
    pid_t r = waitpid(d->pid, &ws, WNOHANG);
    if (r == d->pid) {
      ts__untrack(d->pid);
      d->pid = 0;
      d->status = ts__status(ws);
      fprintf(stderr, "ts_daemon_wait_ready: parleyd exited (status %d):\n",
              d->status);
      ts_daemon_dump(d);
      return -1;
    }
    /* The socket alone could be another daemon's: wait for this one to
     * say it is ready, then check that the socket answers. */
    char *out = ts_read_file(d->out_path, NULL);
    bool ready = out && strstr(out, "parleyd: ready\n");
    free(out);
    ts_rpc_t *c = ready ? ts_rpc_connect(d->socket, 0) : NULL;
    if (c) {
      json_t *resp = ts_rpc_call(c, "status", NULL, ts_timeout_ms(5000));
      ts_rpc_close(c);
      json_t *res = json_object_get(resp, "result");
      const char *id = json_string_value(json_object_get(res, "peer_id"));
      if (id) {
        snprintf(d->peer_id, sizeof(d->peer_id), "%s", id);
        json_decref(resp);
        return 0;
      }
      json_decref(resp);
    }
    ts_sleep_ms(20);
  }
  fprintf(stderr, "ts_daemon_wait_ready: %s did not answer in %d ms\n",
          d->socket, timeout_ms);
  ts_daemon_dump(d);
  return -1;
}

int ts_daemon_start(ts_daemon_t *d, const char *home, const char *const *args) {
  ts_daemon_init(d, home);
  if (ts_daemon_spawn(d, args) != 0)
    return -1;
  return ts_daemon_wait_ready(d, ts_timeout_ms(20000));
}

int ts_daemon_wait_exit(ts_daemon_t *d, int timeout_ms) {
  if (d->pid <= 0)
    return d->status;
  int st = ts_wait_pid(d->pid, timeout_ms);
  if (st >= 0) {
    d->pid = 0;
    d->status = st;
  }
  return st;
}

int ts_daemon_stop(ts_daemon_t *d) {
  if (d->pid <= 0)
    return d->status;
  kill(d->pid, SIGTERM);
  int st = ts_daemon_wait_exit(d, ts_timeout_ms(15000));
  if (st < 0) {
    fprintf(stderr, "ts_daemon_stop: parleyd %d ignored SIGTERM; killing\n",
            (int)d->pid);
    ts_daemon_dump(d);
    ts_daemon_kill(d);
    return -1;
  }
  return st;
}

int ts_daemon_kill(ts_daemon_t *d) {
  if (d->pid <= 0)
    return d->status;
  kill(d->pid, SIGKILL);
  int ws;
  while (waitpid(d->pid, &ws, 0) < 0 && errno == EINTR) {
  }
  ts__untrack(d->pid);
  d->pid = 0;
  d->status = ts__status(ws);
  return d->status;
}

char *ts_daemon_stdout(const ts_daemon_t *d) {
  char *s = ts_read_file(d->out_path, NULL);
  return s ? s : strdup("");
}

char *ts_daemon_stderr(const ts_daemon_t *d) {
  char *s = ts_read_file(d->err_path, NULL);
  return s ? s : strdup("");
}

void ts_daemon_dump(const ts_daemon_t *d) {
  char *s = ts_daemon_stderr(d);
  fprintf(stderr, "---- %s ----\n%s---- end ----\n", d->err_path, s);
  free(s);
}

/* --- JSON-RPC client ---------------------------------------------------- */

struct ts_rpc {
  int fd;
  char *buf;
  size_t len, cap;
  json_t *queued; /* notifications read while waiting for a response */
  long long next_id;
  bool eof;
};

ts_rpc_t *ts_rpc_connect(const char *socket_path, int timeout_ms) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof(sun.sun_path)) {
    fprintf(stderr, "ts_rpc_connect: path too long: %s\n", socket_path);
    return NULL;
  }
  memcpy(sun.sun_path, socket_path, strlen(socket_path) + 1);
  int64_t deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return NULL;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
      ts_rpc_t *c = calloc(1, sizeof(*c));
      if (!c)
        abort();
      c->fd = fd;
      c->queued = json_array();
      c->next_id = 1;
      return c;
    }
    int err = errno;
    close(fd);
    bool retry = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
    if (!retry || ts_now_ms() >= deadline) {
      if (timeout_ms > 0)
        fprintf(stderr, "ts_rpc_connect: %s: %s\n", socket_path, strerror(err));
      return NULL;
    }
    ts_sleep_ms(20);
  }
}

void ts_rpc_close(ts_rpc_t *c) {
  if (!c)
    return;
  close(c->fd);
  free(c->buf);
  json_decref(c->queued);
  free(c);
}

int ts_rpc_fd(const ts_rpc_t *c) {
  return c->fd;
}

int ts_rpc_send_raw(ts_rpc_t *c, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads more bytes into c->buf; 1 if some came, 0 on timeout, -1 on EOF or
 * error. */
static int ts__rpc_fill(ts_rpc_t *c, int timeout_ms) {
  if (c->eof)
    return -1;
  if (c->cap - c->len < 65536) {
    c->cap = c->cap ? c->cap * 2 : 131072;
    c->buf = realloc(c->buf, c->cap);
    if (!c->buf)
      abort();
  }
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  int r;
  do
    r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return 0;
  ssize_t n;
  do
    n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    c->eof = true;
    return -1;
  }
  c->len += (size_t)n;
  return 1;
}

char *ts_rpc_read_line(ts_rpc_t *c, int timeout_ms) {
  int64_t deadline = ts_now_ms() + timeout_ms;
  size_t scanned = 0;
  for (;;) {
    char *nl = c->len > scanned
                   ? memchr(c->buf + scanned, '\n', c->len - scanned)
                   : NULL;
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      char *line = malloc(n + 1);
      if (!line)
        abort();
      memcpy(line, c->buf, n);
      line[n] = '\0';
      memmove(c->buf, nl + 1, c->len - n - 1);
      c->len -= n + 1;
      return line;
    }
    scanned = c->len;
    int64_t left = deadline - ts_now_ms();
    if (left <= 0 || ts__rpc_fill(c, (int)left) <= 0)
      return NULL;
  }
}

json_t *ts_rpc_read_json(ts_rpc_t *c, int timeout_ms) {
  char *line = ts_rpc_read_line(c, timeout_ms);
  if (!line)
    return NULL;
  json_error_t err;
  json_t *v = json_loads(line, JSON_DECODE_ANY, &err);
  if (!v)
    fprintf(stderr, "ts_rpc_read_json: not JSON (%s): %.200s\n", err.text,
            line);
  free(line);
  return v;
}

bool ts_rpc_wait_closed(ts_rpc_t *c, int timeout_ms) {
  int64_t deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    c->len = 0;
    int64_t left = deadline - ts_now_ms();
    if (left <= 0)
      return false;
    if (ts__rpc_fill(c, (int)left) < 0)
      return true;
  }
}

json_t *ts_rpc_call(ts_rpc_t *c, const char *method, json_t *params,
                    int timeout_ms) {
  if (timeout_ms <= 0)
    timeout_ms = ts_timeout_ms(10000);
  long long id = c->next_id++;
  json_t *req = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id",
                          (json_int_t)id, "method", method);
  if (params)
    json_object_set_new(req, "params", params);
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  size_t len = strlen(text);
  text[len] = '\n';
  int rc = ts_rpc_send_raw(c, text, len + 1);
  free(text);
  if (rc != 0) {
    fprintf(stderr, "ts_rpc_call %s: send: %s\n", method, strerror(-rc));
    return NULL;
  }
  int64_t deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - ts_now_ms();
    json_t *msg = left > 0 ? ts_rpc_read_json(c, (int)left) : NULL;
    if (!msg) {
      fprintf(stderr, "ts_rpc_call %s: no response in %d ms%s\n", method,
              timeout_ms, c->eof ? " (connection closed)" : "");
      return NULL;
    }
    json_t *rid = json_object_get(msg, "id");
    if (!rid && json_object_get(msg, "method")) {
      json_array_append_new(c->queued, msg);
      continue;
    }
    if (json_is_integer(rid) && json_integer_value(rid) == id)
      return msg;
    fprintf(stderr, "ts_rpc_call %s: skipping unexpected message\n", method);
    json_decref(msg);
  }
}

json_t *ts_rpc_call_ok(ts_rpc_t *c, const char *method, json_t *params) {
  json_t *resp = ts_rpc_call(c, method, params, 0);
  assert_non_null(resp);
  json_t *res = json_object_get(resp, "result");
  if (!res) {
    char *s = json_dumps(resp, JSON_COMPACT);
    fprintf(stderr, "%s failed: %s\n", method, s);
    free(s);
  }
  assert_non_null(res);
  json_incref(res);
  json_decref(resp);
  return res;
}

json_t *ts_rpc_next_notification(ts_rpc_t *c, int timeout_ms) {
  if (json_array_size(c->queued) > 0) {
    json_t *n = json_incref(json_array_get(c->queued, 0));
    json_array_remove(c->queued, 0);
    return n;
  }
  int64_t deadline = ts_now_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - ts_now_ms();
    json_t *msg = left > 0 ? ts_rpc_read_json(c, (int)left) : NULL;
    if (!msg)
      return NULL;
    if (!json_object_get(msg, "id") && json_object_get(msg, "method"))
      return msg;
    json_decref(msg);
  }
}

json_t *ts_rpc_wait_event(ts_rpc_t *c, const char *method, int timeout_ms) {
  int64_t end = ts_now_ms() + ts_timeout_ms(timeout_ms);
  while (ts_now_ms() < end) {
    json_t *n = ts_rpc_next_notification(c, (int)(end - ts_now_ms()));
    if (!n)
      break;
    if (strcmp(json_string_value(json_object_get(n, "method")), method) == 0)
      return n;
    json_decref(n);
  }
  fail_msg("no %s event in %d ms", method, ts_timeout_ms(timeout_ms));
  return NULL;
}

void ts_rpc_wait_call_state(ts_rpc_t *c, const char *state) {
  for (;;) {
    json_t *n = ts_rpc_wait_event(c, "call-state", 10000);
    const char *s = json_string_value(
        json_object_get(json_object_get(n, "params"), "state"));
    bool hit = s && strcmp(s, state) == 0;
    json_decref(n);
    if (hit)
      return;
  }
}

int ts_rpc_error_code(const json_t *resp) {
  json_t *e = json_object_get(resp, "error");
  return e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
}

const char *ts_rpc_error_message(const json_t *resp) {
  const char *m = json_string_value(
      json_object_get(json_object_get(resp, "error"), "message"));
  return m ? m : "";
}

json_t *ts_rpc_call_once(const char *socket_path, const char *method,
                         json_t *params) {
  ts_rpc_t *c = ts_rpc_connect(socket_path, ts_timeout_ms(5000));
  if (!c) {
    json_decref(params);
    return NULL;
  }
  json_t *resp = ts_rpc_call(c, method, params, 0);
  ts_rpc_close(c);
  return resp;
}

/* --- assertions --------------------------------------------------------- */

void ts_assert_rpc_error(const json_t *resp, int code, long long id) {
  bool ok = resp && json_object_get(resp, "error") &&
            !json_object_get(resp, "result") &&
            ts_rpc_error_code(resp) == code &&
            json_is_string(
                json_object_get(json_object_get(resp, "error"), "message")) &&
            json_is_string(json_object_get(resp, "jsonrpc"));
  json_t *rid = json_object_get(resp, "id");
  if (ok)
    ok = id < 0 ? json_is_null(rid)
                : json_is_integer(rid) && json_integer_value(rid) == id;
  if (!ok) {
    char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    fprintf(stderr, "expected error %d with id %lld, got: %s\n", code, id,
            s ? s : "(nothing)");
    free(s);
  }
  assert_true(ok);
}

void ts__assert_contains(const char *haystack, const char *needle,
                         const char *file, int line) {
  if (haystack && needle && strstr(haystack, needle))
    return;
  fprintf(stderr, "%s:%d: expected to find \"%s\" in:\n%s\n", file, line,
          needle ? needle : "(null)", haystack ? haystack : "(null)");
  fail();
}

/* --- internals ---------------------------------------------------------- */

static void ts__track(pid_t pid) {
  if (!ts__atexit_done) {
    atexit(ts_kill_all);
    signal(SIGPIPE, SIG_IGN);
    ts__atexit_done = true;
  }
  for (int i = 0; i < TS_CHILDREN_MAX; i++) {
    if (ts__children[i] == 0) {
      ts__children[i] = pid;
      return;
    }
  }
}

static void ts__untrack(pid_t pid) {
  for (int i = 0; i < TS_CHILDREN_MAX; i++)
    if (ts__children[i] == pid)
      ts__children[i] = 0;
}

static int ts__status(int ws) {
  if (WIFEXITED(ws))
    return WEXITSTATUS(ws);
  if (WIFSIGNALED(ws))
    return 128 + WTERMSIG(ws);
  return -1;
}

/* environ minus every variable starting with a prefix in unset (NULL
 * terminated, may be NULL) and those named in set, plus set. */
static char **ts__make_env(const char *const *set, const char *const *unset) {
  size_t n = 0, m = 0;
  while (environ[n])
    n++;
  while (set && set[m])
    m++;
  char **env = calloc(n + m + 1, sizeof(char *));
  if (!env)
    abort();
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *e = environ[i];
    bool drop = strncmp(e, "PARLEY_SOCKET=", 14) == 0;
    for (size_t u = 0; !drop && unset && unset[u]; u++)
      drop = strncmp(e, unset[u], strlen(unset[u])) == 0;
    /* Keep the test's own timeout scale; it is not read by parleyd. */
    if (strncmp(e, "PARLEY_TEST_", 12) == 0)
      drop = false;
    for (size_t s = 0; !drop && s < m; s++) {
      const char *eq = strchr(set[s], '=');
      size_t len = eq ? (size_t)(eq - set[s]) + 1 : strlen(set[s]);
      drop = strncmp(e, set[s], len) == 0;
    }
    if (!drop)
      env[k++] = strdup(e);
  }
  for (size_t s = 0; s < m; s++)
    env[k++] = strdup(set[s]);
  env[k] = NULL;
  return env;
}

static void ts__free_env(char **env) {
  for (size_t i = 0; env[i]; i++)
    free(env[i]);
  free(env);
}

static pid_t ts__spawn(const char *const *argv, char **env, int out_fd,
                       int err_fd) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "ts: fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0)
      dup2(in, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (strchr(argv[0], '/'))
      execve(argv[0], (char *const *)argv, env);
    else {
      environ = env;
      execvp(argv[0], (char *const *)argv);
    }
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  ts__track(pid);
  return pid;
}

/* snprintf that aborts instead of truncating: a cut path would make a test
 * fail in confusing ways. */
static void ts__fmt(char *out, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, size, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= size) {
    fprintf(stderr, "testsupport: path too long: %s\n", out);
    abort();
  }
}

/* --- two daemons and a relay ---------------------------------------------
 */

/* Writes home's parleyd.conf (where ts_daemon_init's XDG_CONFIG_HOME puts
 * it). */
static int ts__write_config(const char *home, const char *config) {
  char path[TS_PATH_MAX];
  ts__fmt(path, sizeof(path), "%s/config", home);
  if (mkdir(path, 0700) != 0)
    return -1;
  ts__fmt(path, sizeof(path), "%s/config/parley", home);
  if (mkdir(path, 0700) != 0)
    return -1;
  ts__fmt(path, sizeof(path), "%s/config/parley/parleyd.conf", home);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  bool ok = fputs(config, f) >= 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int ts_daemon_pair_start(const char *dir, ts_daemon_t *a, ts_daemon_t *b) {
  return ts_daemon_pair_start_config(dir, a, b, NULL);
}

int ts_daemon_pair_start_config(const char *dir, ts_daemon_t *a, ts_daemon_t *b,
                                const char *config) {
  ts_daemon_t *d[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    char *home = ts_path(dir, i ? "b" : "a");
    int r = mkdir(home, 0700) != 0 ||
                    (config && ts__write_config(home, config) != 0)
                ? -1
                : ts_daemon_start(d[i], home, NULL);
    if (r != 0)
      fprintf(stderr, "cannot start daemon %s in %s\n", i ? "b" : "a", home);
    free(home);
    if (r != 0)
      return -1;
  }
  return 0;
}

int ts_daemon_port(const ts_daemon_t *d) {
  char *out = ts_read_file(d->out_path, NULL);
  const char *p = out ? strstr(out, "@127.0.0.1:") : NULL;
  int port = p ? atoi(p + 11) : -1;
  free(out);
  if (port <= 0)
    fprintf(stderr, "no 127.0.0.1 port in %s\n", d->out_path);
  return port;
}

pid_t ts_relay_start(const char *dir, int upstream_port, const char *opts,
                     FILE **ctl, char *addr, size_t addr_size) {
  char *log = ts_path(dir, "relay.out");
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "exec %s --listen 127.0.0.1:0 --upstream 127.0.0.1:%d %s --seed 7 "
           "%s >%s 2>&1",
           PARLEY_RELAY_PATH, upstream_port, opts ? opts : "",
           ctl ? "" : "</dev/null", log);
  int fds[2] = {-1, -1};
  if (ctl && pipe(fds) != 0) {
    free(log);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (ctl) {
      dup2(fds[0], 0);
      close(fds[0]);
      close(fds[1]);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  if (ctl) {
    close(fds[0]);
    *ctl = pid > 0 ? fdopen(fds[1], "w") : NULL;
  }
  if (pid < 0) {
    free(log);
    return -1;
  }
  ts__track(pid);
  char got[64] = "";
  for (int i = 0; i < 100 && !got[0]; i++) {
    char *text = ts_read_file(log, NULL);
    const char *p = text ? strstr(text, "listening on ") : NULL;
    if (p && strchr(p, '\n'))
      sscanf(p + 13, "%63s", got);
    free(text);
    if (!got[0])
      ts_sleep_ms(50);
  }
  if (!got[0])
    fprintf(stderr, "parley-relay did not start (see %s)\n", log);
  free(log);
  snprintf(addr, addr_size, "%s", got);
  return got[0] ? pid : -1;
}

char *ts_pair_contacts(const ts_daemon_t *a, const ts_daemon_t *b,
                       const char *relay_addr) {
  json_t *ta = ts_rpc_call_once(a->socket, "get_ticket", NULL);
  json_t *tb = ts_rpc_call_once(b->socket, "get_ticket", NULL);
  const char *ticket_a = json_string_value(
      json_object_get(json_object_get(ta, "result"), "ticket"));
  const char *ticket_b = json_string_value(
      json_object_get(json_object_get(tb, "result"), "ticket"));
  json_t *r = ticket_a
                  ? ts_rpc_call_once(b->socket, "add_contact",
                                     json_pack("{s:s}", "ticket", ticket_a))
                  : NULL;
  char *out = NULL;
  if (ticket_b && json_object_get(r, "result")) {
    out = malloc(256);
    if (out && relay_addr)
      snprintf(out, 256, "parley1:%s@%s", b->peer_id, relay_addr);
    else if (out)
      snprintf(out, 256, "%s", ticket_b);
  } else {
    fprintf(stderr, "cannot exchange tickets between the daemons\n");
  }
  json_decref(r);
  json_decref(ta);
  json_decref(tb);
  return out;
}

/* ---- audio files ---- */

int ts_load_wav(const char *path, double max_seconds, ts_pcm_t *out) {
  char name[TS_PATH_MAX + 8], err[256];
  audio_source_t *src;
  snprintf(name, sizeof(name), "file:%s", path);
  if (device_open_source(name, &src, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  size_t cap = (size_t)(AUDIO_RATE * max_seconds);
  out->s = malloc((cap ? cap : 1) * sizeof(int16_t));
  out->n = 0;
  while (out->s && out->n + AUDIO_FRAME_SAMPLES <= cap &&
         audio_source_read(src, out->s + out->n) == AUDIO_FRAME_SAMPLES)
    out->n += AUDIO_FRAME_SAMPLES;
  audio_source_close(src);
  return out->s ? 0 : -1;
}

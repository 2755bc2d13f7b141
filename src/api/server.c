/* The JSON-RPC server on a Unix stream socket: listener, clients, line
 * framing, bounded write queues, `subscribe` and event broadcast. See api.h.
 * Clients may vanish with answers in flight: the process must ignore
 * SIGPIPE (parleyd does), so such writes fail with EPIPE instead. */
#include "api/api.h"

#include "api/params.h"
#include "api/rpc.h"
#include "core/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A client whose unsent output passes API_READ_PAUSE stops being served
 * (its socket is not read and input already read waits in a stash) until
 * the output drains to half of that, which throttles a client that
 * pipelines many requests without reading the answers. Output the client does
 * not cause (events) can still pile up: past API_WRITE_QUEUE_MAX the client is
 * disconnected, so the daemon's memory stays bounded. Media frames are dropped
 * rather than queued once API_MEDIA_DROP bytes wait: a late frame is worthless
 * anyway. */
#define API_READ_BUF (64 * 1024)
#define API_READ_PAUSE (1024 * 1024)
#define API_MEDIA_DROP (2 * 1024 * 1024)
#define API_WRITE_QUEUE_MAX (8 * 1024 * 1024)
#define API_LINE_KEEP (64 * 1024) /* line buffers above this are freed */
#define API_CLIENTS_MAX 256
#define API_BACKLOG 128
#define API_TABLES_MAX 8 /* built-ins + method tables of the modules */

struct api_server {
  uv_loop_t *loop;
  uv_pipe_t listener;
  char *socket_path;
  api_rpc_table_t tables[API_TABLES_MAX]; /* built-ins first */
  size_t n_tables;
  api_client_t *clients; /* doubly linked, open clients only */
  size_t n_clients;
  size_t n_handles; /* listener + clients not yet closed by libuv */
  uint64_t next_client_id;
  bool closing;
  char read_buf[API_READ_BUF]; /* reads are consumed before the next one */
};

struct api_client {
  uv_pipe_t pipe;
  api_server_t *server;
  api_client_t *prev, *next;
  uint64_t id; /* for log lines */
  char *line;  /* the line being received, without its '\n' */
  size_t line_len, line_cap;
  bool discarding; /* dropping the rest of an over-long line */
  bool reading;    /* uv_read_start is in effect */
  bool paused;     /* too much output waiting: input is not processed */
  char *stash;     /* input read but not processed while paused */
  size_t stash_len;
  bool eof; /* the client will send nothing more */
  bool closing;
  size_t queued; /* bytes handed to uv_write whose callback has not run */
  bool subscribed;
  bool all_events; /* subscribed without an "events" list */
  uint32_t events; /* API_EVENT_BIT()s */
  uint64_t media_dropped;
};

/* A reference-counted output line, shared by every client a broadcast goes
 * to. */
typedef struct api_buf {
  size_t refs;
  size_t len;
  char data[];
} api_buf_t;

typedef struct api_write {
  uv_write_t req;
  api_client_t *client;
  api_buf_t *buf;
} api_write_t;

static int api__subscribe(void *ctx, api_client_t *client, json_t *params,
                          json_t **result, api_error_t *err);
static const api_method_t api__builtins[] = {{"subscribe", api__subscribe}};

static int api__check_dir(const char *socket_path);
static int api__remove_stale(const char *path);
static int api__bind(const char *path, int *fd_out);
static void api__on_connection(uv_stream_t *listener, int status);
static void api__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void api__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void api__consume(api_client_t *c, const char *p, size_t n);
static void api__resume(api_client_t *c);
static void api__append(api_client_t *c, const char *p, size_t n);
static void api__line_done(api_client_t *c);
static void api__handle_line(api_client_t *c, const char *line, size_t len);
static void api__send_json(api_client_t *c, const json_t *msg);
static int api__write(api_client_t *c, api_buf_t *b);
static void api__on_write(uv_write_t *req, int status);
static void api__on_shutdown(uv_shutdown_t *req, int status);
static void api__client_close(api_client_t *c);
static void api__on_client_closed(uv_handle_t *h);
static void api__on_listener_closed(uv_handle_t *h);
static void api__handle_gone(api_server_t *s);
static api_buf_t *api__buf_from_json(const json_t *msg);
static void api__buf_unref(api_buf_t *b);

int api_server_start(api_server_t **out, uv_loop_t *loop,
                     const char *socket_path, const api_method_t *methods,
                     size_t n_methods, void *ctx) {
  *out = NULL;
  struct sockaddr_un sun;
  if (strlen(socket_path) >= sizeof(sun.sun_path)) {
    LOG_ERROR("api", "socket path too long (%zu bytes, at most %zu): %s",
              strlen(socket_path), sizeof(sun.sun_path) - 1, socket_path);
    return -ENAMETOOLONG;
  }
  int rc = api__check_dir(socket_path);
  if (rc == 0)
    rc = api__remove_stale(socket_path);
  int fd = -1;
  if (rc == 0)
    rc = api__bind(socket_path, &fd);
  if (rc != 0)
    return rc;

  api_server_t *s = calloc(1, sizeof(*s));
  char *path = strdup(socket_path);
  if (!s || !path) {
    free(s);
    free(path);
    close(fd);
    unlink(socket_path);
    return -ENOMEM;
  }
  s->loop = loop;
  s->socket_path = path;
  s->tables[0] = (api_rpc_table_t){api__builtins, 1, s};
  s->tables[1] = (api_rpc_table_t){methods, n_methods, ctx};
  s->n_tables = 2;
  s->n_handles = 1;
  uv_pipe_init(loop, &s->listener, 0);
  s->listener.data = s;
  rc = uv_pipe_open(&s->listener, fd);
  if (rc != 0)
    close(fd); /* not the handle's yet */
  else
    rc =
        uv_listen((uv_stream_t *)&s->listener, API_BACKLOG, api__on_connection);
  if (rc != 0) {
    LOG_ERROR("api", "cannot listen on %s: %s", socket_path, uv_strerror(rc));
    api_server_close(s); /* frees s once the loop runs */
    return rc;
  }
  LOG_INFO("api", "listening on %s", socket_path);
  *out = s;
  return 0;
}

/* Adds another module's method table (e.g. calls) after those given so
 * far; a name already taken keeps its first method. methods must outlive
 * the server. Returns 0, -EINVAL, or -ENOSPC past API_TABLES_MAX tables. */
int api_server_add_methods(api_server_t *s, const api_method_t *methods,
                           size_t n_methods, void *ctx) {
  if (!s || (!methods && n_methods))
    return -EINVAL;
  if (s->n_tables == API_TABLES_MAX) {
    LOG_ERROR("api", "too many method tables (at most %d)", API_TABLES_MAX);
    return -ENOSPC;
  }
  s->tables[s->n_tables++] = (api_rpc_table_t){methods, n_methods, ctx};
  return 0;
}

void api_server_close(api_server_t *s) {
  if (!s || s->closing)
    return;
  s->closing = true;
  while (s->clients)
    api__client_close(s->clients);
  uv_close((uv_handle_t *)&s->listener, api__on_listener_closed);
  if (unlink(s->socket_path) != 0 && errno != ENOENT)
    LOG_WARN("api", "cannot remove %s: %s", s->socket_path, strerror(errno));
}

void api_broadcast(api_server_t *s, const char *event, json_t *params) {
  json_t *msg = api_rpc_notification(event, params);
  if (!s || s->closing || !msg || !s->clients) {
    json_decref(msg);
    return;
  }
  int e = api_event_parse(event);
  uint32_t bit = e >= 0 ? API_EVENT_BIT(e) : 0;
  if (e < 0)
    LOG_DEBUG("api",
              "event '%s' has no name in rpc.c; sent only to clients "
              "subscribed to all events",
              event);
  api_buf_t *b = api__buf_from_json(msg);
  json_decref(msg);
  if (!b)
    return;
  api_client_t *next;
  for (api_client_t *c = s->clients; c; c = next) {
    next = c->next; /* api__write may close c */
    if (!c->subscribed || (e >= 0 ? !(c->events & bit) : !c->all_events))
      continue;
    if ((bit & API_EVENT_MEDIA_MASK) && c->queued > API_MEDIA_DROP) {
      if (c->media_dropped++ % 100 == 0)
        LOG_WARN("api",
                 "client %llu reads too slowly; %llu media frames "
                 "dropped",
                 (unsigned long long)c->id,
                 (unsigned long long)c->media_dropped);
      continue;
    }
    b->refs++;
    api__write(c, b);
  }
  api__buf_unref(b);
}

size_t api_client_count(const api_server_t *s) {
  return s ? s->n_clients : 0;
}

/* --- start-up ----------------------------------------------------------- */

/* Creates the socket's missing parent directories 0700. An existing
 * directory is left as it is (it may be /tmp or /run), but it must belong
 * to us or to root: a directory someone else made could hand them our
 * socket. */
static int api__check_dir(const char *socket_path) {
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
  snprintf(dir, sizeof(dir), "%s", socket_path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    return 0; /* relative name in the working directory */
  if (slash == dir)
    return 0; /* in / */
  *slash = '\0';

  for (char *p = dir + 1;; p++) {
    bool end = *p == '\0';
    if (!end && *p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      int err = errno;
      LOG_ERROR("api", "cannot create socket directory %s: %s", dir,
                strerror(err));
      return -err;
    }
    if (end)
      break;
    *p = '/';
  }
  struct stat st;
  if (stat(dir, &st) != 0) {
    int err = errno;
    LOG_ERROR("api", "cannot use socket directory %s: %s", dir, strerror(err));
    return -err;
  }
  if (!S_ISDIR(st.st_mode)) {
    LOG_ERROR("api", "socket directory %s is not a directory", dir);
    return -ENOTDIR;
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    LOG_ERROR("api", "socket directory %s belongs to uid %u, not to us", dir,
              (unsigned)st.st_uid);
    return -EPERM;
  }
  if ((st.st_mode & 077) && !(st.st_mode & S_ISVTX))
    LOG_WARN("api",
             "socket directory %s is open to other users (mode %03o); "
             "the socket itself is 0600",
             dir, (unsigned)(st.st_mode & 0777));
  return 0;
}

/* A socket file left by a daemon that died is removed; one that answers
 * belongs to a live daemon and makes start-up fail. */
static int api__remove_stale(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode)) {
    LOG_ERROR("api", "%s exists and is not a socket; not touching it", path);
    return -EEXIST;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  memcpy(sun.sun_path, path, strlen(path) + 1);
  int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
  int err = errno;
  close(fd);
  if (rc == 0) {
    LOG_ERROR("api", "another parleyd is already listening on %s", path);
    return -EADDRINUSE;
  }
  if (err != ECONNREFUSED && err != ENOENT) {
    LOG_ERROR("api", "cannot probe existing socket %s: %s", path,
              strerror(err));
    return -err;
  }
  if (unlink(path) != 0 && errno != ENOENT) {
    err = errno;
    LOG_ERROR("api", "cannot remove stale socket %s: %s", path, strerror(err));
    return -err;
  }
  LOG_INFO("api", "removed stale socket %s", path);
  return 0;
}

/* Binds and listens with plain system calls, so a failure leaves no libuv
 * handle to close. */
static int api__bind(const char *path, int *fd_out) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  memcpy(sun.sun_path, path, strlen(path) + 1);
  int err = 0;
  if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
    err = errno;
    LOG_ERROR("api", "cannot bind %s: %s", path, strerror(err));
    close(fd);
    return -err;
  }
  /* The directory is already private; this keeps the socket private even
   * in a shared directory. */
  if (chmod(path, 0600) != 0 || listen(fd, API_BACKLOG) != 0) {
    err = errno;
    LOG_ERROR("api", "cannot set up %s: %s", path, strerror(err));
    close(fd);
    unlink(path);
    return -err;
  }
  *fd_out = fd;
  return 0;
}

/* --- clients ------------------------------------------------------------ */

static void api__on_connection(uv_stream_t *listener, int status) {
  api_server_t *s = listener->data;
  if (status < 0) {
    LOG_WARN("api", "accept failed: %s", uv_strerror(status));
    return;
  }
  api_client_t *c = calloc(1, sizeof(*c));
  if (!c) {
    LOG_ERROR("api", "out of memory accepting a client");
    return;
  }
  uv_pipe_init(s->loop, &c->pipe, 0);
  c->pipe.data = c;
  c->server = s;
  c->id = ++s->next_client_id;
  s->n_handles++;
  int rc = uv_accept(listener, (uv_stream_t *)&c->pipe);
  if (rc != 0) {
    LOG_WARN("api", "accept failed: %s", uv_strerror(rc));
    c->closing = true;
    uv_close((uv_handle_t *)&c->pipe, api__on_client_closed);
    return;
  }
  if (s->n_clients >= API_CLIENTS_MAX) {
    LOG_WARN("api", "too many clients (%d); refusing one", API_CLIENTS_MAX);
    c->closing = true;
    uv_close((uv_handle_t *)&c->pipe, api__on_client_closed);
    return;
  }
  c->next = s->clients;
  if (s->clients)
    s->clients->prev = c;
  s->clients = c;
  s->n_clients++;
  rc = uv_read_start((uv_stream_t *)&c->pipe, api__on_alloc, api__on_read);
  if (rc != 0) {
    LOG_WARN("api", "cannot read from client: %s", uv_strerror(rc));
    api__client_close(c);
    return;
  }
  c->reading = true;
  LOG_DEBUG("api", "client %llu connected (%zu clients)",
            (unsigned long long)c->id, s->n_clients);
}

static void api__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  api_client_t *c = h->data;
  *buf = uv_buf_init(c->server->read_buf, sizeof(c->server->read_buf));
}

static void api__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  api_client_t *c = st->data;
  if (nread == UV_EOF) {
    /* The client sent all it will send. A last line without '\n' is still
     * a line (printf '...' | socat works); answers already queued are
     * flushed by the shutdown before the connection closes. */
    c->reading = false;
    c->eof = true;
    if (c->line_len > 0 || c->discarding)
      api__line_done(c);
    if (c->closing)
      return;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req || uv_shutdown(req, st, api__on_shutdown) != 0) {
      free(req);
      api__client_close(c);
    }
    return;
  }
  if (nread < 0) {
    LOG_DEBUG("api", "client %llu: %s", (unsigned long long)c->id,
              uv_strerror((int)nread));
    api__client_close(c);
    return;
  }
  api__consume(c, buf->base, (size_t)nread);
}

/* Cuts input into lines and handles them, until it runs out or the client
 * gets paused; the rest then waits in the stash. */
static void api__consume(api_client_t *c, const char *p, size_t n) {
  while (n > 0 && !c->closing) {
    if (c->paused) {
      char *stash = realloc(c->stash, c->stash_len + n);
      if (!stash) {
        api__client_close(c);
        return;
      }
      memcpy(stash + c->stash_len, p, n);
      c->stash = stash;
      c->stash_len += n;
      return;
    }
    const char *nl = memchr(p, '\n', n);
    size_t seg = nl ? (size_t)(nl - p) : n;
    if (nl && c->line_len == 0 && !c->discarding) {
      api__handle_line(c, p, seg); /* whole line in the read buffer */
    } else {
      api__append(c, p, seg);
      if (nl)
        api__line_done(c);
    }
    if (nl)
      seg++;
    p += seg;
    n -= seg;
  }
}

static void api__append(api_client_t *c, const char *p, size_t n) {
  if (c->discarding || n == 0)
    return;
  if (n > API_LINE_MAX - c->line_len) {
    c->discarding = true;
    c->line_len = 0;
    free(c->line);
    c->line = NULL;
    c->line_cap = 0;
    LOG_WARN("api", "client %llu sent a line over %d bytes; discarding it",
             (unsigned long long)c->id, API_LINE_MAX);
    char msg[80];
    snprintf(msg, sizeof(msg), "line too long (limit %d bytes)", API_LINE_MAX);
    json_t *resp = api_rpc_error_response(NULL, API_ERR_INVALID_REQUEST, msg);
    api__send_json(c, resp);
    json_decref(resp);
    return;
  }
  if (c->line_len + n > c->line_cap) {
    size_t cap = c->line_cap ? c->line_cap : 4096;
    while (cap < c->line_len + n)
      cap *= 2;
    if (cap > API_LINE_MAX)
      cap = API_LINE_MAX;
    char *line = realloc(c->line, cap);
    if (!line) {
      LOG_ERROR("api", "out of memory for client %llu; disconnecting",
                (unsigned long long)c->id);
      api__client_close(c);
      return;
    }
    c->line = line;
    c->line_cap = cap;
  }
  memcpy(c->line + c->line_len, p, n);
  c->line_len += n;
}

static void api__line_done(api_client_t *c) {
  if (c->discarding) {
    c->discarding = false; /* already answered when it grew too long */
    return;
  }
  size_t len = c->line_len;
  c->line_len = 0;
  api__handle_line(c, c->line, len);
  if (c->line_cap > API_LINE_KEEP) {
    free(c->line);
    c->line = NULL;
    c->line_cap = 0;
  }
}

static void api__handle_line(api_client_t *c, const char *line, size_t len) {
  api_server_t *s = c->server;
  json_t *resp =
      api_rpc_handle_line(line ? line : "", len, s->tables, s->n_tables, c);
  if (resp) {
    api__send_json(c, resp);
    json_decref(resp);
  }
}

static void api__send_json(api_client_t *c, const json_t *msg) {
  api_buf_t *b = api__buf_from_json(msg);
  if (!b) {
    LOG_ERROR("api", "cannot serialise a message for client %llu",
              (unsigned long long)c->id);
    return;
  }
  api__write(c, b);
}

/* Queues b (whose reference it takes) on c's connection. */
static int api__write(api_client_t *c, api_buf_t *b) {
  if (c->closing) {
    api__buf_unref(b);
    return -1;
  }
  if (b->len > API_WRITE_QUEUE_MAX - c->queued) {
    LOG_WARN("api",
             "client %llu does not read its messages (%zu bytes "
             "waiting); disconnecting it",
             (unsigned long long)c->id, c->queued);
    api__buf_unref(b);
    api__client_close(c);
    return -1;
  }
  api_write_t *w = malloc(sizeof(*w));
  if (!w) {
    api__buf_unref(b);
    api__client_close(c);
    return -1;
  }
  w->client = c;
  w->buf = b;
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &ub, 1, api__on_write);
  if (rc != 0) {
    LOG_DEBUG("api", "client %llu: write: %s", (unsigned long long)c->id,
              uv_strerror(rc));
    free(w);
    api__buf_unref(b);
    api__client_close(c);
    return -1;
  }
  c->queued += b->len;
  if (!c->paused && c->queued > API_READ_PAUSE) {
    c->paused = true; /* until api__on_write sees the queue drain */
    if (c->reading)
      uv_read_stop((uv_stream_t *)&c->pipe);
    c->reading = false;
  }
  return 0;
}

static void api__on_write(uv_write_t *req, int status) {
  api_write_t *w = (api_write_t *)req;
  api_client_t *c = w->client;
  c->queued -= w->buf->len;
  api__buf_unref(w->buf);
  free(w);
  if (status < 0) {
    if (status != UV_ECANCELED)
      LOG_DEBUG("api", "client %llu: write: %s", (unsigned long long)c->id,
                uv_strerror(status));
    api__client_close(c);
    return;
  }
  if (c->paused && !c->closing && c->queued <= API_READ_PAUSE / 2)
    api__resume(c);
}

/* Handles the stashed input, then reads again unless that paused the
 * client once more. */
static void api__resume(api_client_t *c) {
  c->paused = false;
  char *stash = c->stash;
  size_t len = c->stash_len;
  c->stash = NULL;
  c->stash_len = 0;
  api__consume(c, stash, len);
  free(stash);
  if (c->paused || c->closing || c->eof || c->reading)
    return;
  if (uv_read_start((uv_stream_t *)&c->pipe, api__on_alloc, api__on_read) !=
      0) {
    api__client_close(c);
    return;
  }
  c->reading = true;
}

static void api__on_shutdown(uv_shutdown_t *req, int status) {
  api_client_t *c = req->handle->data;
  free(req);
  api__client_close(c);
}

static void api__client_close(api_client_t *c) {
  if (c->closing)
    return;
  api_server_t *s = c->server;
  c->closing = true;
  c->reading = false;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  s->n_clients--;
  LOG_DEBUG("api", "client %llu disconnected (%zu clients)",
            (unsigned long long)c->id, s->n_clients);
  uv_close((uv_handle_t *)&c->pipe, api__on_client_closed);
}

static void api__on_client_closed(uv_handle_t *h) {
  api_client_t *c = h->data;
  api_server_t *s = c->server;
  free(c->line);
  free(c->stash);
  free(c);
  api__handle_gone(s);
}

static void api__on_listener_closed(uv_handle_t *h) {
  api__handle_gone(h->data);
}

static void api__handle_gone(api_server_t *s) {
  if (--s->n_handles == 0 && s->closing) {
    free(s->socket_path);
    free(s);
  }
}

/* --- subscribe ---------------------------------------------------------- */

static int api__subscribe(void *ctx, api_client_t *client, json_t *params,
                          json_t **result, api_error_t *err) {
  uint32_t mask;
  bool media;
  if (api_rpc_parse_subscribe(params, &mask, &media, err) != 0)
    return -1;
  if (client) {
    client->subscribed = true;
    client->events = mask;
    client->all_events = api_param(params, 0, "events") == NULL;
    client->media_dropped = 0;
  }
  *result = json_object();
  return 0;
}

/* --- buffers ------------------------------------------------------------ */

/* Like api_rpc_dump_line, straight into a shared buffer. */
static api_buf_t *api__buf_from_json(const json_t *msg) {
  size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
  if (n == 0)
    return NULL;
  api_buf_t *b = malloc(sizeof(*b) + n + 1);
  if (!b)
    return NULL;
  if (json_dumpb(msg, b->data, n, JSON_COMPACT) != n) {
    free(b);
    return NULL;
  }
  b->data[n] = '\n';
  b->refs = 1;
  b->len = n + 1;
  return b;
}

static void api__buf_unref(api_buf_t *b) {
  if (--b->refs == 0)
    free(b);
}

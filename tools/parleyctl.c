/* parleyctl: the command-line client of parleyd's JSON-RPC socket.
 * One request per run (or a stream of events), human output or --json. */
#include "api/paths.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXIT_DAEMON_ERROR 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3
#define REPLY_TIMEOUT_MS 30000
#define LINE_MAX_BYTES (64 * 1024 * 1024)
#define ADDRS_MAX 8

typedef struct opts {
  const char *socket;
  bool json;
  const char *limit;
  const char *before;
  const char *name;
  const char *addrs[ADDRS_MAX];
  size_t n_addrs;
  bool media;
  bool video;
  const char *reason;
  const char *pos[6]; /* command and its positional arguments */
  size_t n_pos;
} opts_t;

typedef struct conn {
  int fd;
  const char *path;
  char *buf;
  size_t len, cap;
  json_int_t next_id;
} conn_t;

static volatile sig_atomic_t ctl__stop;

static void ctl__usage(FILE *f) {
  char def[256];
  if (api_default_socket_path(def, sizeof(def)) != 0)
    snprintf(def, sizeof(def), "(too long)");
  fprintf(
      f,
      "usage: parleyctl [--socket PATH] [--json] COMMAND [ARGS]\n"
      "\n"
      "Commands:\n"
      "  status                          the daemon's peer ID, addresses, "
      "calls\n"
      "  ticket                          this daemon's ticket, to give to a "
      "contact\n"
      "  history [--limit N] [--before TS]\n"
      "                                  call history, newest first\n"
      "  contacts                        list contacts\n"
      "  add PEER-ID|TICKET [--name NAME] [--addr IP:PORT]...\n"
      "                                  add or update a contact\n"
      "  remove PEER-ID                  remove a contact\n"
      "  events [--media]                print events, one per line, until "
      "interrupted\n"
      "  call PEER-ID|TICKET [--video]   call a contact or a ticket; prints "
      "the call ID\n"
      "  answer CALL-ID                  answer an incoming call\n"
      "  reject CALL-ID [--reason TEXT]  reject an incoming call\n"
      "  hangup CALL-ID                  end a call (or cancel a ringing "
      "one)\n"
      "  calls                           the live calls\n"
      "  mute CALL-ID on|off             mute or unmute your audio\n"
      "  video CALL-ID on|off            start or stop sending video\n"
      "  stats CALL-ID                   the call's media figures\n"
      "  audio-processing [CALL-ID] [aec=on|off] [ns=on|off] [agc=on|off]\n"
      "                                  echo cancellation, noise "
      "suppression,\n"
      "                                  gain control of a call, or without "
      "CALL-ID\n"
      "                                  the defaults for new calls (also "
      "=auto)\n"
      "  rpc METHOD [PARAMS-JSON]        send any request, print its result\n"
      "\n"
      "Options:\n"
      "  --socket PATH   the daemon's socket (default: %s;\n"
      "                  from $PARLEY_SOCKET, else $XDG_RUNTIME_DIR/parley/, "
      "else /tmp/parley-$UID/)\n"
      "  --json          print the raw JSON result\n"
      "  -h, --help      this help\n"
      "  -V, --version   the version\n"
      "\n"
      "Exit status: 0 success, 1 the daemon answered with an error, 2 usage "
      "error,\n"
      "3 cannot reach the daemon.\n",
      def);
}

static int ctl__usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("parleyctl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n(see parleyctl --help)\n", stderr);
  va_end(ap);
  return EXIT_USAGE;
}

/* --- arguments ---------------------------------------------------------- */

/* Options may come before or after the command. Returns 0, -1 (usage error
 * printed) or 1 (--help/--version done). */
static int ctl__parse(int argc, char **argv, opts_t *o) {
  bool only_pos = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (o->n_pos == sizeof(o->pos) / sizeof(o->pos[0])) {
        ctl__usage_error("too many arguments");
        return -1;
      }
      o->pos[o->n_pos++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      ctl__usage(stdout);
      return 1;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("parleyctl %s\n", PARLEY_VERSION);
      return 1;
    }
    if (strcmp(a, "--json") == 0) {
      o->json = true;
      continue;
    }
    if (strcmp(a, "--media") == 0) {
      o->media = true;
      continue;
    }
    if (strcmp(a, "--video") == 0) {
      o->video = true;
      continue;
    }
    /* Options with a value: "--opt value" or "--opt=value". */
    static const char *const with_value[] = {"--socket", "--limit", "--before",
                                             "--name",   "--addr",  "--reason"};
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    const char *opt = NULL;
    for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
      if (strlen(with_value[k]) == nlen && strncmp(a, with_value[k], nlen) == 0)
        opt = with_value[k];
    if (!opt) {
      ctl__usage_error("unknown option '%s'", a);
      return -1;
    }
    const char *val = eq ? eq + 1 : NULL;
    if (!val) {
      if (i + 1 >= argc) {
        ctl__usage_error("option %s needs a value", opt);
        return -1;
      }
      val = argv[++i];
    }
    if (strcmp(opt, "--socket") == 0)
      o->socket = val;
    else if (strcmp(opt, "--limit") == 0)
      o->limit = val;
    else if (strcmp(opt, "--before") == 0)
      o->before = val;
    else if (strcmp(opt, "--name") == 0)
      o->name = val;
    else if (strcmp(opt, "--reason") == 0)
      o->reason = val;
    else if (o->n_addrs == ADDRS_MAX) {
      ctl__usage_error("at most %d --addr options", ADDRS_MAX);
      return -1;
    } else {
      o->addrs[o->n_addrs++] = val;
    }
  }
  return 0;
}

static int ctl__parse_int(const char *opt, const char *s, long long min,
                          long long max, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    ctl__usage_error("%s wants an integer between %lld and %lld, not '%s'", opt,
                     min, max, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* --- connection --------------------------------------------------------- */

static int ctl__connect(conn_t *c, const char *path) {
  memset(c, 0, sizeof(*c));
  c->path = path;
  c->next_id = 1;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sun.sun_path)) {
    fprintf(stderr, "parleyctl: socket path too long: %s\n", path);
    return -1;
  }
  memcpy(sun.sun_path, path, strlen(path) + 1);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
    fprintf(stderr,
            "parleyctl: cannot connect to %s: %s (is parleyd running? "
            "--socket or $PARLEY_SOCKET choose another socket)\n",
            path, strerror(errno));
    if (c->fd >= 0)
      close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static int ctl__send(conn_t *c, const json_t *msg) {
  char *text = json_dumps(msg, JSON_COMPACT);
  if (!text)
    return -1;
  size_t len = strlen(text);
  text[len] = '\n'; /* replaces the NUL; we send len + 1 bytes */
  size_t off = 0;
  while (off < len + 1) {
    ssize_t n = send(c->fd, text + off, len + 1 - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      fprintf(stderr, "parleyctl: cannot write to %s: %s\n", c->path,
              strerror(errno));
      free(text);
      return -1;
    }
    off += (size_t)n;
  }
  free(text);
  return 0;
}

/* Reads one line (without '\n') into a malloc'd string. timeout_ms < 0
 * waits forever. Returns NULL on EOF, error, timeout or ctl__stop, with
 * *why saying which ("eof", "timeout", "interrupted", or strerror). */
static char *ctl__read_line(conn_t *c, int timeout_ms, const char **why) {
  for (;;) {
    char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      char *line = malloc(n + 1);
      if (!line) {
        *why = "out of memory";
        return NULL;
      }
      memcpy(line, c->buf, n);
      line[n] = '\0';
      memmove(c->buf, nl + 1, c->len - n - 1);
      c->len -= n + 1;
      return line;
    }
    if (ctl__stop) {
      *why = "interrupted";
      return NULL;
    }
    if (c->cap - c->len < 4096) {
      size_t cap = c->cap ? c->cap * 2 : 65536;
      if (cap > LINE_MAX_BYTES) {
        *why = "reply too long";
        return NULL;
      }
      char *b = realloc(c->buf, cap);
      if (!b) {
        *why = "out of memory";
        return NULL;
      }
      c->buf = b;
      c->cap = cap;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0) {
      *why = "timeout";
      return NULL;
    }
    ssize_t n = r < 0 ? -1 : recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0) {
      *why = "eof";
      return NULL;
    }
    if (n < 0) {
      *why = strerror(errno);
      return NULL;
    }
    c->len += (size_t)n;
  }
}

/* Sends a request and waits for its response. Returns 0 with *result (new
 * reference), or an exit code after printing why. */
static int ctl__call(conn_t *c, const char *method, json_t *params,
                     json_t **result) {
  json_int_t id = c->next_id++;
  json_t *req = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", id,
                          "method", method);
  if (params)
    json_object_set_new(req, "params", params);
  int rc = ctl__send(c, req);
  json_decref(req);
  if (rc != 0)
    return EXIT_CONNECT;
  for (;;) {
    const char *why = NULL;
    char *line = ctl__read_line(c, REPLY_TIMEOUT_MS, &why);
    if (!line) {
      if (strcmp(why, "eof") == 0)
        fprintf(stderr, "parleyctl: %s closed the connection\n", c->path);
      else
        fprintf(stderr, "parleyctl: no answer from %s: %s\n", c->path, why);
      return EXIT_CONNECT;
    }
    json_t *msg = json_loads(line, 0, NULL);
    free(line);
    json_t *rid = json_object_get(msg, "id");
    /* Skip notifications and anything that is not our answer. An error
     * about the line itself (id null) is ours too. */
    if (!msg || (!json_is_integer(rid) && !json_is_null(rid)) ||
        (json_is_integer(rid) && json_integer_value(rid) != id)) {
      json_decref(msg);
      continue;
    }
    json_t *err = json_object_get(msg, "error");
    if (err) {
      const char *m = json_string_value(json_object_get(err, "message"));
      fprintf(stderr, "parleyctl: %s (code %" JSON_INTEGER_FORMAT ")\n",
              m ? m : "error",
              json_integer_value(json_object_get(err, "code")));
      json_decref(msg);
      return EXIT_DAEMON_ERROR;
    }
    json_t *res = json_object_get(msg, "result");
    if (!res) {
      fprintf(stderr, "parleyctl: malformed answer from %s\n", c->path);
      json_decref(msg);
      return EXIT_CONNECT;
    }
    *result = json_incref(res);
    json_decref(msg);
    return 0;
  }
}

/* --- output ------------------------------------------------------------- */

static void ctl__print_json(const json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (s)
    puts(s);
  free(s);
}

static const char *ctl__str(const json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "";
}

static json_int_t ctl__int(const json_t *obj, const char *key) {
  return json_integer_value(json_object_get(obj, key));
}

static void ctl__duration(char *out, size_t size, json_int_t s) {
  if (s < 0)
    s = 0;
  if (s >= 3600)
    snprintf(out, size, "%" JSON_INTEGER_FORMAT ":%02d:%02d", s / 3600,
             (int)(s / 60 % 60), (int)(s % 60));
  else
    snprintf(out, size, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

static void ctl__print_status(const json_t *r) {
  printf("peer id: %s\n", ctl__str(r, "peer_id"));
  printf("version: %s\n", ctl__str(r, "version"));
  printf("listen:");
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(r, "listen"), i, a)
      printf("%s%s", i ? ", " : " ", json_string_value(a));
  printf("\n");
  printf("socket: %s\n", ctl__str(r, "socket"));
  char up[32];
  ctl__duration(up, sizeof(up), ctl__int(r, "uptime_seconds"));
  printf("uptime: %s\n", up);
  printf("clients: %" JSON_INTEGER_FORMAT "\n", ctl__int(r, "clients"));
  printf("active calls: %zu\n",
         json_array_size(json_object_get(r, "active_calls")));
}

static void ctl__print_history(const json_t *r) {
  if (json_array_size(r) == 0) {
    printf("no calls\n");
    return;
  }
  printf("%-19s  %-9s  %-12s  %8s  %-5s  %s\n", "TIME", "DIRECTION", "PEER",
         "DURATION", "VIDEO", "REASON");
  size_t i;
  json_t *rec;
  json_array_foreach(r, i, rec) {
    time_t t = (time_t)ctl__int(rec, "timestamp");
    struct tm tm;
    char when[32] = "?";
    if (localtime_r(&t, &tm))
      strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    char dur[32];
    ctl__duration(dur, sizeof(dur), ctl__int(rec, "duration_seconds"));
    printf("%-19s  %-9s  %-12.12s  %8s  %-5s  %s\n", when,
           ctl__str(rec, "direction"), ctl__str(rec, "peer"), dur,
           json_is_true(json_object_get(rec, "had_video")) ? "yes" : "no",
           ctl__str(rec, "ended_reason"));
  }
}

static void ctl__print_contact(const json_t *c) {
  printf("%s  %s", ctl__str(c, "peer"),
         ctl__str(c, "name")[0] ? ctl__str(c, "name") : "-");
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(c, "addresses"), i, a)
      printf("%s%s", i ? "," : "  ", json_string_value(a));
  printf("\n");
}

static void ctl__print_contacts(const json_t *r) {
  if (json_array_size(r) == 0) {
    printf("no contacts\n");
    return;
  }
  size_t i;
  json_t *c;
  json_array_foreach(r, i, c) ctl__print_contact(c);
}

static void ctl__print_calls(const json_t *r) {
  if (json_array_size(r) == 0) {
    printf("no live calls\n");
    return;
  }
  printf("%-32s  %-9s  %-12s  %-12s  %8s  %s\n", "CALL ID", "DIRECTION",
         "STATE", "PEER", "DURATION", "VIDEO");
  size_t i;
  json_t *call;
  json_array_foreach(r, i, call) {
    char dur[32];
    ctl__duration(dur, sizeof(dur), ctl__int(call, "duration_seconds"));
    printf("%-32s  %-9s  %-12s  %-12.12s  %8s  %s\n", ctl__str(call, "call_id"),
           ctl__str(call, "direction"), ctl__str(call, "state"),
           ctl__str(call, "peer"), dur,
           json_is_true(json_object_get(call, "video")) ? "yes" : "no");
  }
}

/* --- commands ----------------------------------------------------------- */

/* audio-processing [CALL-ID] [aec|ns|agc=on|off|auto]...: the params of
 * set_audio_processing, or NULL after a usage error. */
static json_t *ctl__audio_processing_params(const opts_t *o) {
  json_t *p = json_object();
  for (size_t i = 1; i < o->n_pos; i++) {
    const char *a = o->pos[i], *eq = strchr(a, '=');
    if (!eq) {
      if (json_object_get(p, "call_id")) {
        json_decref(p);
        ctl__usage_error("one CALL-ID at most");
        return NULL;
      }
      json_object_set_new(p, "call_id", json_string(a));
      continue;
    }
    size_t n = (size_t)(eq - a);
    const char *v = eq + 1;
    bool known =
        (n == 3 && (strncmp(a, "aec", 3) == 0 || strncmp(a, "agc", 3) == 0)) ||
        (n == 2 && strncmp(a, "ns", 2) == 0);
    json_t *val = strcmp(v, "on") == 0     ? json_true()
                  : strcmp(v, "off") == 0  ? json_false()
                  : strcmp(v, "auto") == 0 ? json_string("auto")
                                           : NULL;
    if (!known || !val) {
      json_decref(val);
      json_decref(p);
      ctl__usage_error("'%s': want aec=, ns= or agc= with on, off or auto", a);
      return NULL;
    }
    char key[4];
    snprintf(key, sizeof(key), "%.*s", (int)n, a);
    json_object_set_new(p, key, val);
  }
  return p;
}

static void ctl__print_audio_processing(const json_t *r) {
  static const char *const keys[] = {"aec", "ns", "agc"};
  for (size_t i = 0; i < 3; i++) {
    const json_t *v = json_object_get(r, keys[i]);
    printf("%s%s %s", i ? "  " : "", keys[i],
           json_is_string(v) ? json_string_value(v)
           : json_is_true(v) ? "on"
                             : "off");
  }
  const char *id = ctl__str(r, "call_id");
  printf(*id ? "  (call %s)\n" : "  (defaults for new calls)\n", id);
}

static void ctl__on_signal(int sig) {
  (void)sig;
  ctl__stop = 1;
}

/* Subscribes and prints each notification until interrupted. */
static int ctl__events(conn_t *c, const opts_t *o) {
  json_t *res = NULL;
  int rc =
      ctl__call(c, "subscribe", json_pack("{s:b}", "media", o->media), &res);
  if (rc != 0)
    return rc;
  json_decref(res);
  struct sigaction sa = {.sa_handler = ctl__on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  for (;;) {
    const char *why = NULL;
    char *line = ctl__read_line(c, -1, &why);
    if (!line) {
      if (strcmp(why, "interrupted") == 0)
        return 0;
      fprintf(stderr, "parleyctl: %s: %s\n", c->path,
              strcmp(why, "eof") == 0 ? "the daemon closed the connection"
                                      : why);
      return EXIT_CONNECT;
    }
    json_t *msg = json_loads(line, 0, NULL);
    const char *method = json_string_value(json_object_get(msg, "method"));
    if (msg && method && !json_object_get(msg, "id")) {
      if (o->json) {
        puts(line);
      } else {
        json_t *params = json_object_get(msg, "params");
        char *p = params ? json_dumps(params, JSON_COMPACT) : NULL;
        printf("%s %s\n", method, p ? p : "{}");
        free(p);
      }
      fflush(stdout);
    }
    json_decref(msg);
    free(line);
  }
}

static int ctl__run(conn_t *c, const opts_t *o) {
  const char *cmd = o->pos[0];
  json_t *params = NULL, *res = NULL;
  const char *method = NULL;
  void (*print)(const json_t *) = NULL;

  if (strcmp(cmd, "status") == 0) {
    method = "status";
    print = ctl__print_status;
  } else if (strcmp(cmd, "ticket") == 0) {
    method = "get_ticket";
  } else if (strcmp(cmd, "history") == 0) {
    method = "get_call_history";
    print = ctl__print_history;
    params = json_object();
    long long v;
    if (o->limit) {
      if (ctl__parse_int("--limit", o->limit, 1, 1000, &v) != 0)
        goto usage;
      json_object_set_new(params, "limit", json_integer(v));
    }
    if (o->before) {
      if (ctl__parse_int("--before", o->before, 0, INT64_MAX, &v) != 0)
        goto usage;
      json_object_set_new(params, "before", json_integer(v));
    }
  } else if (strcmp(cmd, "contacts") == 0) {
    method = "list_contacts";
    print = ctl__print_contacts;
  } else if (strcmp(cmd, "add") == 0) {
    method = "add_contact";
    print = ctl__print_contact;
    const char *who = o->pos[1];
    params = json_object();
    bool is_ticket = strncmp(who, "parley1:", 8) == 0;
    json_object_set_new(params, is_ticket ? "ticket" : "peer",
                        json_string(who));
    if (o->name)
      json_object_set_new(params, "name", json_string(o->name));
    if (o->n_addrs) {
      json_t *a = json_array();
      for (size_t i = 0; i < o->n_addrs; i++)
        json_array_append_new(a, json_string(o->addrs[i]));
      json_object_set_new(params, "addresses", a);
    }
  } else if (strcmp(cmd, "remove") == 0) {
    method = "remove_contact";
    params = json_pack("{s:s}", "peer", o->pos[1]);
  } else if (strcmp(cmd, "call") == 0) {
    method = "start_call";
    params = json_pack("{s:s, s:b}", "peer", o->pos[1], "video", o->video);
  } else if (strcmp(cmd, "answer") == 0 || strcmp(cmd, "hangup") == 0) {
    method = cmd[0] == 'a' ? "answer_call" : "end_call";
    params = json_pack("{s:s}", "call_id", o->pos[1]);
  } else if (strcmp(cmd, "reject") == 0) {
    method = "reject_call";
    params = json_pack("{s:s}", "call_id", o->pos[1]);
    if (o->reason)
      json_object_set_new(params, "reason", json_string(o->reason));
  } else if (strcmp(cmd, "calls") == 0) {
    method = "list_calls";
    print = ctl__print_calls;
  } else if (strcmp(cmd, "mute") == 0 || strcmp(cmd, "video") == 0) {
    bool on = strcmp(o->pos[2], "on") == 0; /* or "off": checked */
    method = cmd[0] == 'm' ? "toggle_mute" : "toggle_video";
    params = json_pack("{s:s, s:b}", "call_id", o->pos[1],
                       cmd[0] == 'm' ? "muted" : "enabled", on);
  } else if (strcmp(cmd, "stats") == 0) {
    method = "call_stats";
    params = json_pack("{s:s}", "call_id", o->pos[1]);
  } else if (strcmp(cmd, "audio-processing") == 0) {
    method = "set_audio_processing";
    print = ctl__print_audio_processing;
    if (!(params = ctl__audio_processing_params(o)))
      return EXIT_USAGE;
  } else if (strcmp(cmd, "rpc") == 0) {
    method = o->pos[1];
    if (o->n_pos > 2) {
      json_error_t jerr;
      params = json_loads(o->pos[2], 0, &jerr);
      if (!params) {
        ctl__usage_error("PARAMS-JSON is not JSON: %s", jerr.text);
        return EXIT_USAGE;
      }
    }
  } else {
    return EXIT_USAGE; /* checked by main */
  }
  int rc = ctl__call(c, method, params, &res);
  if (rc != 0)
    return rc;
  if (o->json)
    ctl__print_json(res);
  else if (strcmp(cmd, "ticket") == 0)
    printf("%s\n", ctl__str(res, "ticket"));
  else if (strcmp(cmd, "remove") == 0)
    printf("removed %s\n", o->pos[1]);
  else if (strcmp(cmd, "call") == 0)
    printf("%s\n", ctl__str(res, "call_id"));
  else if (strcmp(cmd, "answer") == 0)
    printf("answered %s\n", o->pos[1]);
  else if (strcmp(cmd, "reject") == 0)
    printf("rejected %s\n", o->pos[1]);
  else if (strcmp(cmd, "hangup") == 0)
    printf("ended %s\n", o->pos[1]);
  else if (strcmp(cmd, "mute") == 0 || strcmp(cmd, "video") == 0)
    printf("%s %s: %s\n", cmd, o->pos[2], o->pos[1]);
  else if (print)
    print(res);
  else
    ctl__print_json(res);
  json_decref(res);
  return 0;

usage:
  json_decref(params);
  return EXIT_USAGE;
}

/* Checks the command, its argument count and that its options fit. */
static int ctl__check(const opts_t *o) {
  static const struct {
    const char *name;
    size_t min_args, max_args;
  } cmds[] = {{"status", 0, 0},
              {"ticket", 0, 0},
              {"history", 0, 0},
              {"contacts", 0, 0},
              {"add", 1, 1},
              {"remove", 1, 1},
              {"events", 0, 0},
              {"rpc", 1, 2},
              {"call", 1, 1},
              {"answer", 1, 1},
              {"reject", 1, 1},
              {"hangup", 1, 1},
              {"calls", 0, 0},
              {"mute", 2, 2},
              {"video", 2, 2},
              {"stats", 1, 1},
              {"audio-processing", 0, 4}};
  if (o->n_pos == 0)
    return ctl__usage_error("no command given");
  const char *cmd = o->pos[0];
  size_t i = 0, n = sizeof(cmds) / sizeof(cmds[0]);
  while (i < n && strcmp(cmds[i].name, cmd) != 0)
    i++;
  if (i == n)
    return ctl__usage_error("unknown command '%s'", cmd);
  size_t args = o->n_pos - 1;
  if (args < cmds[i].min_args || args > cmds[i].max_args)
    return ctl__usage_error("wrong number of arguments for '%s'", cmd);
  bool history = strcmp(cmd, "history") == 0, add = strcmp(cmd, "add") == 0;
  if ((o->limit || o->before) && !history)
    return ctl__usage_error("--limit and --before go with 'history'");
  if ((o->name || o->n_addrs) && !add)
    return ctl__usage_error("--name and --addr go with 'add'");
  if (o->media && strcmp(cmd, "events") != 0)
    return ctl__usage_error("--media goes with 'events'");
  if (o->video && strcmp(cmd, "call") != 0)
    return ctl__usage_error("--video goes with 'call'");
  if (o->reason && strcmp(cmd, "reject") != 0)
    return ctl__usage_error("--reason goes with 'reject'");
  if ((strcmp(cmd, "mute") == 0 || strcmp(cmd, "video") == 0) &&
      strcmp(o->pos[2], "on") != 0 && strcmp(o->pos[2], "off") != 0)
    return ctl__usage_error("'%s' takes on or off", cmd);
  return 0;
}

int main(int argc, char **argv) {
  opts_t o = {0};
  int rc = ctl__parse(argc, argv, &o);
  if (rc != 0)
    return rc > 0 ? 0 : EXIT_USAGE;
  rc = ctl__check(&o);
  if (rc != 0)
    return rc;

  char path[256];
  if (!o.socket) {
    if (api_default_socket_path(path, sizeof(path)) != 0)
      return ctl__usage_error("the default socket path is too long; use "
                              "--socket");
    o.socket = path;
  }
  signal(SIGPIPE, SIG_IGN);
  conn_t c;
  if (ctl__connect(&c, o.socket) != 0)
    return EXIT_CONNECT;
  if (strcmp(o.pos[0], "events") == 0)
    rc = ctl__events(&c, &o);
  else
    rc = ctl__run(&c, &o);
  close(c.fd);
  free(c.buf);
  return rc;
}

/* parleyd: parses arguments and wires the modules together around one libuv
 * loop. Everything with logic of its own lives in a module under src/. */
#include "api/api.h"
#include "api/methods.h"
#include "api/paths.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "net/ticket.h"
#include "store/store.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <uv.h>

#define LOCK_FILE "parleyd.lock"

typedef struct daemon {
  uv_loop_t *loop;
  parley_config_t cfg;
  identity_t identity;
  store_t *store;
  api_server_t *api;
  api_deps_t deps;
  int lock_fd;
  uv_signal_t sigint, sigterm;
  int signals_on;
  uv_udp_t udp[CONFIG_LISTEN_MAX];
  size_t n_udp;
  char listen[CONFIG_LISTEN_MAX][64]; /* bound addresses, real ports */
  const char *listen_ptrs[CONFIG_LISTEN_MAX];
  char ticket[TICKET_MAX_LEN + 1];
} daemon_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: parleyd [options]\n"
          "End-to-end encrypted peer-to-peer voice and video calling daemon.\n"
          "\n"
          "  --config PATH     config file (default "
          "$XDG_CONFIG_HOME/parley/parleyd.conf)\n"
          "  --data-dir DIR    identity, contacts, history (default "
          "$XDG_DATA_HOME/parley)\n"
          "  --socket PATH     JSON-RPC socket (default "
          "$XDG_RUNTIME_DIR/parley/parleyd.sock)\n"
          "  --listen ADDR     UDP address for QUIC, ip:port or [ip6]:port;\n"
          "                    repeat for several (default 0.0.0.0:%d)\n"
          "  --log-level LVL   error, warn, info or debug (default info)\n"
          "  --help            this text\n"
          "  --version         print the version\n",
          CONFIG_DEFAULT_PORT);
}

/* Two passes: the first only finds --config, so that flags override the
 * file whatever their order. Returns 0, 1 to exit successfully, -1 on error. */
static int parse_args(daemon_t *d, int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"data-dir", required_argument, NULL, 'd'},
      {"socket", required_argument, NULL, 's'},
      {"listen", required_argument, NULL, 'l'},
      {"log-level", required_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {0, 0, 0, 0}};
  char err[1024];
  int explicit_config = 0, c;
  if (config_defaults(&d->cfg, err, sizeof(err)) != 0)
    goto fail;

  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 1;
    }
    if (c == 'V') {
      printf("parleyd %s\n", PARLEY_VERSION);
      return 1;
    }
    if (c == '?') {
      fprintf(stderr, "parleyd: unknown or incomplete option '%s'\n",
              argv[optind - 1]);
      usage(stderr);
      return -1;
    }
    if (c == 'c') {
      if (optarg[0] != '/' ||
          strlen(optarg) >= sizeof(d->cfg.config_path)) {
        snprintf(err, sizeof(err), "--config needs an absolute path: %s",
                 optarg);
        goto fail;
      }
      strcpy(d->cfg.config_path, optarg);
      explicit_config = 1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "parleyd: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  if (explicit_config && access(d->cfg.config_path, R_OK) != 0) {
    snprintf(err, sizeof(err), "cannot read config file %s: %s",
             d->cfg.config_path, strerror(errno));
    goto fail;
  }
  if (config_load_file(&d->cfg, !explicit_config, err, sizeof(err)) != 0)
    goto fail;

  int listen_from_flags = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    const char *key = c == 'd'   ? "data_dir"
                      : c == 's' ? "socket"
                      : c == 'v' ? "log_level"
                                 : NULL;
    if (c == 'l') {
      /* Repeated --listen accumulate; the first one replaces the file's. */
      char joined[CONFIG_LISTEN_MAX * 64 + 8] = "";
      for (size_t i = 0; listen_from_flags && i < d->cfg.n_listen; i++)
        snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined),
                 "%s,", d->cfg.listen[i]);
      snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s",
               optarg);
      listen_from_flags = 1;
      if (config_set(&d->cfg, "listen", joined, err, sizeof(err)) != 0)
        goto fail;
    } else if (key && config_set(&d->cfg, key, optarg, err, sizeof(err)) != 0) {
      goto fail;
    }
  }
  return 0;
fail:
  fprintf(stderr, "parleyd: %s\n", err);
  return -1;
}

/* A second parleyd on the same data directory would corrupt nothing (LMDB
 * locks) but would fight over the socket and the calls: refuse it. */
static int take_lock(daemon_t *d) {
  char path[CONFIG_PATH_MAX + 32];
  if (path_join(path, sizeof(path), d->cfg.data_dir, LOCK_FILE) != 0)
    return -1;
  d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (d->lock_fd < 0) {
    LOG_ERROR("parleyd", "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    LOG_ERROR("parleyd",
              "another parleyd is already running on data directory %s "
              "(lock %s is held); refusing to start",
              d->cfg.data_dir, path);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
  if (ftruncate(d->lock_fd, 0) != 0 || write(d->lock_fd, pid, (size_t)n) != n)
    LOG_WARN("parleyd", "cannot record pid in %s", path);
  return 0;
}

/* Links a trivial use of the QUIC stack so that a broken wolfSSL (built
 * without its QUIC API) or ngtcp2 fails at start-up with a clear message. */
static int check_quic_stack(void) {
  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  if (wolfSSL_Init() != WOLFSSL_SUCCESS)
    return -1;
  WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
  int ok = ctx && ngtcp2_crypto_wolfssl_configure_server_context(ctx) == 0;
  if (ctx)
    wolfSSL_CTX_free(ctx);
  if (!ok)
    LOG_ERROR("parleyd", "wolfSSL has no QUIC support (rebuild it with "
                         "WOLFSSL_QUIC; see scripts/deps.sh)");
  return ok ? 0 : -1;
}

/* Expands a wildcard bind address into this host's addresses of the same
 * family, for the ticket; a concrete address is kept as is. */
static void add_ticket_addrs(ticket_t *t, const struct sockaddr_storage *bound) {
  int wildcard =
      (bound->ss_family == AF_INET &&
       ((const struct sockaddr_in *)bound)->sin_addr.s_addr == INADDR_ANY) ||
      (bound->ss_family == AF_INET6 &&
       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)bound)->sin6_addr));
  if (!wildcard) {
    if (t->n_addrs < TICKET_ADDRS_MAX)
      t->addrs[t->n_addrs++] = *bound;
    return;
  }
  uv_interface_address_t *ifs;
  int n;
  if (uv_interface_addresses(&ifs, &n) != 0)
    return;
  uint16_t port = ((const struct sockaddr_in *)bound)->sin_port;
  for (int i = 0; i < n && t->n_addrs < TICKET_ADDRS_MAX; i++) {
    struct sockaddr_storage a = {0};
    if (bound->ss_family == AF_INET && ifs[i].address.address4.sin_family == AF_INET) {
      memcpy(&a, &ifs[i].address.address4, sizeof(struct sockaddr_in));
      ((struct sockaddr_in *)&a)->sin_port = port;
    } else if (bound->ss_family == AF_INET6 &&
               ifs[i].address.address6.sin6_family == AF_INET6 &&
               !IN6_IS_ADDR_LINKLOCAL(&ifs[i].address.address6.sin6_addr)) {
      memcpy(&a, &ifs[i].address.address6, sizeof(struct sockaddr_in6));
      ((struct sockaddr_in6 *)&a)->sin6_port = port;
    } else {
      continue;
    }
    t->addrs[t->n_addrs++] = a;
  }
  uv_free_interface_addresses(ifs, n);
}

/* Binds the UDP sockets QUIC will use and builds the ticket from the
 * addresses actually bound (port 0 becomes the kernel's choice). */
static int bind_listen(daemon_t *d) {
  ticket_t t = {0};
  memcpy(t.peer, d->identity.public_key, 32);
  for (size_t i = 0; i < d->cfg.n_listen; i++) {
    struct sockaddr_storage sa;
    const char *text = d->cfg.listen[i];
    if (addr_parse(text, strlen(text), &sa) != 0) {
      LOG_ERROR("parleyd", "bad listen address '%s' (want ip:port or [ip6]:port)",
                text);
      return -1;
    }
    uv_udp_t *u = &d->udp[d->n_udp];
    uv_udp_init(d->loop, u);
    d->n_udp++;
    int r = uv_udp_bind(u, (const struct sockaddr *)&sa, 0);
    if (r != 0) {
      LOG_ERROR("parleyd", "cannot listen on %s: %s", text, uv_strerror(r));
      return -1;
    }
    int len = sizeof(sa);
    uv_udp_getsockname(u, (struct sockaddr *)&sa, &len);
    addr_format((const struct sockaddr *)&sa, d->listen[i], sizeof(d->listen[i]));
    d->listen_ptrs[i] = d->listen[i];
    add_ticket_addrs(&t, &sa);
  }
  return ticket_format(&t, d->ticket, sizeof(d->ticket)) < 0 ? -1 : 0;
}

static void on_closed(uv_handle_t *h) {
  (void)h;
}

static void shutdown_daemon(daemon_t *d) {
  if (d->signals_on) {
    uv_close((uv_handle_t *)&d->sigint, on_closed);
    uv_close((uv_handle_t *)&d->sigterm, on_closed);
    d->signals_on = 0;
  }
  if (d->api)
    api_server_close(d->api);
  d->api = NULL;
  for (size_t i = 0; i < d->n_udp; i++)
    uv_close((uv_handle_t *)&d->udp[i], on_closed);
  d->n_udp = 0;
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_t *d = h->data;
  LOG_INFO("parleyd", "%s received, shutting down",
           signum == SIGINT ? "SIGINT" : "SIGTERM");
  shutdown_daemon(d);
}

static int start(daemon_t *d) {
  char err[1024];
  int r = path_mkdir_p(d->cfg.data_dir, 0700);
  if (r != 0) {
    LOG_ERROR("parleyd", "cannot create data directory %s: %s", d->cfg.data_dir,
              strerror(-r));
    return -1;
  }
  if (take_lock(d) != 0)
    return -1;
  if (identity_load_or_create(&d->identity, d->cfg.data_dir, err,
                              sizeof(err)) != 0) {
    LOG_ERROR("parleyd", "identity: %s", err);
    return -1;
  }
  if (store_open(&d->store, d->cfg.data_dir) != 0)
    return -1;
  if (check_quic_stack() != 0 || bind_listen(d) != 0)
    return -1;
  if (!d->cfg.socket_path[0] &&
      api_default_socket_path(d->cfg.socket_path, sizeof(d->cfg.socket_path)) !=
          0) {
    LOG_ERROR("parleyd", "cannot choose a socket path; use --socket");
    return -1;
  }

  d->deps = (api_deps_t){.store = d->store,
                         .identity = &d->identity,
                         .ticket = d->ticket,
                         .listen = d->listen_ptrs,
                         .n_listen = d->cfg.n_listen,
                         .socket_path = d->cfg.socket_path,
                         .started_at = time_now_s()};
  if (api_server_start(&d->api, d->loop, d->cfg.socket_path, api_core_methods,
                       api_core_methods_count, &d->deps) != 0)
    return -1;
  d->deps.server = d->api;

  uv_signal_init(d->loop, &d->sigint);
  uv_signal_init(d->loop, &d->sigterm);
  d->sigint.data = d->sigterm.data = d;
  uv_signal_start(&d->sigint, on_signal, SIGINT);
  uv_signal_start(&d->sigterm, on_signal, SIGTERM);
  d->signals_on = 1;
  return 0;
}

int main(int argc, char **argv) {
  daemon_t d = {.lock_fd = -1};
  int r = parse_args(&d, argc, argv);
  if (r != 0)
    return r > 0 ? 0 : 2;
  log_set_level(d.cfg.log_level);
  signal(SIGPIPE, SIG_IGN);
  d.loop = uv_default_loop();

  int status = 0;
  if (start(&d) != 0) {
    status = 1;
    shutdown_daemon(&d);
  } else {
    printf("peer id: %s\nticket:  %s\nsocket:  %s\nparleyd: ready\n",
           d.identity.peer_id, d.ticket, d.cfg.socket_path);
    fflush(stdout);
    LOG_INFO("parleyd", "listening on %s, API on %s", d.listen[0],
             d.cfg.socket_path);
  }
  uv_run(d.loop, UV_RUN_DEFAULT);
  store_close(d.store);
  identity_wipe(&d.identity);
  if (d.lock_fd >= 0)
    close(d.lock_fd);
  if (uv_loop_close(d.loop) != 0)
    LOG_WARN("parleyd", "loop closed with handles still open");
  if (status == 0)
    LOG_INFO("parleyd", "stopped");
  return status;
}

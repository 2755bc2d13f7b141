/* parleyd: parses arguments and wires the modules together around one libuv
 * loop. Everything with logic of its own lives in a module under src/. */
#include "api/api.h"
#include "api/call_methods.h"
#include "api/methods.h"
#include "api/paths.h"
#include "call/call.h"
#include "call/media.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "device/portaudio.h"
#include "net/quic.h"
#include "net/ticket.h"
#include "signal/dm.h"
#include "store/store.h"

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
  uv_timer_t drain;
  int draining;
  uint64_t drain_deadline;
  quic_endpoint_t *ep;
  dm_t *dm;
  call_mgr_t *calls;
  media_mgr_t *media;
  api_call_deps_t call_deps;
  char listen[64]; /* the bound address, real port */
  const char *listen_ptr;
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
          "  --listen ADDR     UDP address for QUIC, ip:port or [ip6]:port\n"
          "                    (default 0.0.0.0:%d; [::]:PORT serves IPv4 "
          "too)\n"
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
  char err[CONFIG_PATH_MAX + 256];
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
      if (optarg[0] != '/' || strlen(optarg) >= sizeof(d->cfg.config_path)) {
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

  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    const char *key = c == 'd'   ? "data_dir"
                      : c == 's' ? "socket"
                      : c == 'v' ? "log_level"
                      : c == 'l' ? "listen"
                                 : NULL;
    if (key && config_set(&d->cfg, key, optarg, err, sizeof(err)) != 0)
      goto fail;
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

/* Expands a wildcard bind address into this host's addresses of the same
 * family, for the ticket; a concrete address is kept as is. */
static void add_ticket_addrs(ticket_t *t,
                             const struct sockaddr_storage *bound) {
  int wildcard =
      (bound->ss_family == AF_INET &&
       ((const struct sockaddr_in *)bound)->sin_addr.s_addr == INADDR_ANY) ||
      (bound->ss_family == AF_INET6 &&
       IN6_IS_ADDR_UNSPECIFIED(
           &((const struct sockaddr_in6 *)bound)->sin6_addr));
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
    if (bound->ss_family == AF_INET &&
        ifs[i].address.address4.sin_family == AF_INET) {
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

/* The QUIC endpoint on the listen address, and the ticket built from the
 * address actually bound (port 0 becomes the kernel's choice). */
static int start_endpoint(daemon_t *d) {
  char err[256];
  int r = quic_endpoint_new(d->loop, &d->identity, d->cfg.listen, NULL, &d->ep,
                            err, sizeof(err));
  if (r != 0) {
    LOG_ERROR("parleyd", "cannot listen on %s: %s", d->cfg.listen, err);
    return -1;
  }
  struct sockaddr_storage sa;
  quic_endpoint_local_addr(d->ep, &sa);
  addr_format((const struct sockaddr *)&sa, d->listen, sizeof(d->listen));
  d->listen_ptr = d->listen;
  ticket_t t = {0};
  memcpy(t.peer, d->identity.public_key, 32);
  add_ticket_addrs(&t, &sa);
  return ticket_format(&t, d->ticket, sizeof(d->ticket)) < 0 ? -1 : 0;
}

/* ---- wiring: the call manager, the DM transport, the store, the API ---- */

static int wire_send_signal(void *ctx, const uint8_t peer[32],
                            const callsignal_t *cs, uint64_t token) {
  daemon_t *d = ctx;
  return dm_send(d->dm, peer, cs, token);
}

static void wire_event(void *ctx, const char *name, json_t *params) {
  daemon_t *d = ctx;
  if (d->api)
    api_broadcast(d->api, name, params);
  else
    json_decref(params);
}

static bool wire_is_contact(void *ctx, const uint8_t peer[32]) {
  daemon_t *d = ctx;
  char hex[65];
  contact_t c;
  hex_encode(hex, peer, 32);
  return store_contact_get(d->store, hex, &c) == 0;
}

static void wire_on_signal(void *ctx, const uint8_t peer[32],
                           const callsignal_t *cs) {
  daemon_t *d = ctx;
  call_mgr_on_signal(d->calls, peer, cs);
}

static void wire_on_send_done(void *ctx, uint64_t token, bool delivered) {
  daemon_t *d = ctx;
  if (d->calls)
    call_mgr_send_done(d->calls, token, delivered);
}

/* A contact's addresses, parsed; unparsable ones are skipped. */
static size_t wire_peer_addrs(void *ctx, const uint8_t peer[32],
                              struct sockaddr_storage *out, size_t max) {
  daemon_t *d = ctx;
  char hex[65];
  contact_t c;
  size_t n = 0;
  hex_encode(hex, peer, 32);
  if (store_contact_get(d->store, hex, &c) != 0)
    return 0;
  for (size_t i = 0; i < c.n_addrs && n < max; i++)
    if (addr_parse(c.addrs[i], strlen(c.addrs[i]), &out[n]) == 0)
      n++;
  return n;
}

/* The media link dials the callee where the signaling reached it, else
 * at its contact's first address. */
static int wire_media_start(void *ctx, const call_info_t *ci,
                            const uint8_t peer[32],
                            const uint8_t secret[CALLSIGNAL_SECRET_LEN]) {
  daemon_t *d = ctx;
  struct sockaddr_storage sa = {0};
  if (ci->direction == CALL_DIR_OUTGOING && dm_peer_addr(d->dm, peer, &sa) &&
      wire_peer_addrs(d, peer, &sa, 1) == 0)
    return -1;
  return media_mgr_start(d->media, ci, peer, secret,
                         (const struct sockaddr *)&sa);
}

static void wire_media_stop(void *ctx, const char *call_id) {
  daemon_t *d = ctx;
  media_mgr_stop(d->media, call_id);
}

static void wire_on_link(void *ctx, const char *call_id, bool up) {
  daemon_t *d = ctx;
  if (d->calls)
    call_mgr_media_event(d->calls, call_id, up);
}

static void wire_on_video(void *ctx, const char *call_id) {
  daemon_t *d = ctx;
  if (d->calls)
    call_mgr_mark_video(d->calls, call_id);
}

static int start_calls(daemon_t *d) {
  static const dm_ops_t dm_ops = {wire_on_signal, wire_on_send_done,
                                  wire_peer_addrs};
  static const call_mgr_ops_t call_ops = {.send_signal = wire_send_signal,
                                          .event = wire_event,
                                          .is_contact = wire_is_contact,
                                          .media_start = wire_media_start,
                                          .media_stop = wire_media_stop};
  static const media_mgr_ops_t media_ops = {
      .on_link = wire_on_link, .event = wire_event, .on_video = wire_on_video};
  call_mgr_opts_t opts;
  call_mgr_opts_default(&opts);
  opts.ring_timeout_ms = d->cfg.ring_timeout_ms;
  opts.accept_from = d->cfg.accept_calls_from_anyone ? CALL_POLICY_ANYONE
                                                     : CALL_POLICY_CONTACTS;
  opts.offers_per_minute = d->cfg.offers_per_minute;
  portaudio_register();
  d->dm = dm_new(d->loop, d->ep, d->store, &d->identity, &dm_ops, d);
  d->media =
      media_mgr_new(d->loop, d->ep, d->identity.public_key, &media_ops, d);
  if (d->media) { /* the config's aec, ns, agc: defaults for new calls */
    static const int mode[] = {[CONFIG_AUTO] = MEDIA_AP_AUTO,
                               [CONFIG_OFF] = MEDIA_AP_OFF,
                               [CONFIG_ON] = MEDIA_AP_ON};
    media_audio_processing_t ap = {
        mode[d->cfg.audio_aec], mode[d->cfg.audio_ns], mode[d->cfg.audio_agc]};
    media_mgr_set_audio_processing_defaults(d->media, &ap);
    media_mgr_set_dtx(d->media, d->cfg.dtx);
  }
  d->calls = call_mgr_new(d->loop, d->store, d->identity.public_key, &opts,
                          &call_ops, d);
  d->call_deps = (api_call_deps_t){.calls = d->calls,
                                   .media = d->media,
                                   .store = d->store,
                                   .me = d->identity.public_key};
  return d->dm && d->calls && d->media ? 0 : -1;
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
  /* Calls end first (they still send End and write records), then the
   * transports close, then the API goes. */
  call_mgr_free(d->calls);
  d->calls = NULL;
  media_mgr_free(d->media);
  d->media = NULL;
  dm_close(d->dm);
  if (d->ep)
    quic_endpoint_free(d->ep);
  d->ep = NULL;
  dm_free(d->dm);
  d->dm = NULL;
  if (d->api)
    api_server_close(d->api);
  d->api = NULL;
}

/* Live calls end first and their End goes out; the rest closes once the
 * DM transport has no envelope waiting for an ack, or after
 * SHUTDOWN_DRAIN_MS, so a peer learns of the hang-up instead of waiting for
 * the media link to time out. */
#define SHUTDOWN_DRAIN_MS 1000

static void on_drain_tick(uv_timer_t *t) {
  daemon_t *d = t->data;
  if (dm_pending(d->dm) > 0 && uv_now(d->loop) < d->drain_deadline)
    return;
  uv_close((uv_handle_t *)t, on_closed);
  shutdown_daemon(d);
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_t *d = h->data;
  if (d->draining) {
    LOG_INFO("parleyd", "second signal: stopping now");
    d->drain_deadline = 0; /* the next tick closes everything */
    return;
  }
  LOG_INFO("parleyd", "%s received, shutting down",
           signum == SIGINT ? "SIGINT" : "SIGTERM");
  d->draining = 1;
  call_mgr_free(d->calls);
  d->calls = NULL;
  d->drain_deadline = uv_now(d->loop) + SHUTDOWN_DRAIN_MS;
  uv_timer_init(d->loop, &d->drain);
  d->drain.data = d;
  uv_timer_start(&d->drain, on_drain_tick, 0, 20);
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
  if (start_endpoint(d) != 0 || start_calls(d) != 0)
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
                         .calls = d->calls,
                         .listen = &d->listen_ptr,
                         .n_listen = 1,
                         .socket_path = d->cfg.socket_path,
                         .started_at = time_now_s()};
  if (api_server_start(&d->api, d->loop, d->cfg.socket_path, api_core_methods,
                       api_core_methods_count, &d->deps) != 0 ||
      api_server_add_methods(d->api, api_call_methods, api_call_methods_count,
                             &d->call_deps) != 0)
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
    LOG_INFO("parleyd", "listening on %s, API on %s", d.listen,
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

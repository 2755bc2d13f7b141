/* parley-relay: a UDP relay that impairs traffic the way a bad network does.
 *
 * Tests and benchmarks put it between two endpoints instead of tc netem
 * (which these machines lack). It drops, delays, jitters, reorders,
 * duplicates, rate-limits and black-holes datagrams, separately per
 * direction, with a seeded PRNG of its own so runs repeat, and counts
 * everything it does. Single-threaded: all of it runs on one libuv loop.
 *
 * Path of a datagram through one direction (a "link"):
 *
 *   in -> blackhole? -> loss? -> duplicate? -> rate shaper (bounded queue)
 *      -> delay + jitter (+ reorder gap) -> timer queue -> blackhole? -> out
 *
 * The loss, duplicate and reorder decisions for the Nth datagram of a
 * direction depend only on (seed, direction, N): each has its own PRNG
 * stream and every datagram draws once from each, whatever happens to it.
 * Jitter has a fourth stream; queue and blackhole drops depend on timing.
 * Counters add up per direction: in + duplicated = out + pending +
 * dropped_{loss,queue,blackhole,error}.
 *
 * Jitter does not reorder. The jitter offset is a random process over time,
 * linear between knots spaced 2*J ms apart whose values are drawn from
 * [-J, +J] (uniform, or normal with sigma J/2 clipped to +-J). Its slope is
 * never below -1, so a later datagram never leaves before an earlier one,
 * and the mean delay stays unbiased at any packet rate (clamping independent
 * draws to FIFO order would not). Only --reorder reorders: the chosen
 * datagrams are held back --reorder-gap ms so later ones overtake them.
 *
 * Delays use one uv_timer per direction over a queue sorted by due time;
 * datagrams leave between 0.5 ms early and about 1.5 ms late.
 */
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#define RELAY_MOD "relay"
#define RELAY_MAX_DATAGRAM 65536
#define RELAY_MAX_BLACKHOLES 64
#define RELAY_MAX_SESSIONS 256
#define RELAY_MAX_PENDING 100000 /* datagrams held per direction */
#define RELAY_EARLY_US 500       /* a timer may release this much early */
#define RELAY_SOCKBUF (4 << 20)
#define RELAY_CTL_LINE 512

enum relay_dir { RELAY_UP = 0, RELAY_DOWN = 1 };
enum relay_dist { RELAY_DIST_UNIFORM = 0, RELAY_DIST_NORMAL = 1 };
enum relay_stream {
  RELAY_RNG_LOSS,
  RELAY_RNG_DUP,
  RELAY_RNG_REORDER,
  RELAY_RNG_JITTER,
  RELAY_RNG_COUNT
};

/* The impairments of one direction; every field is a knob (see below). */
struct relay_imp {
  double loss_pct;
  double delay_ms;
  double jitter_ms;
  double jitter_dist; /* enum relay_dist */
  double reorder_pct;
  double reorder_gap_ms;
  double dup_pct;
  double rate_kbit;   /* 0: unlimited */
  double queue_ms;    /* longest wait in the rate shaper's queue */
  double queue_bytes; /* if > 0, replaces queue_ms (converted at the rate) */
  double burst_bytes; /* token bucket depth; 0: one datagram */
};

struct relay_stats {
  uint64_t in, out, bytes_in, bytes_out;
  uint64_t drop_loss, drop_queue, drop_blackhole, drop_error;
  uint64_t duplicated, reordered;
};

struct relay_rng {
  uint64_t s[4]; /* xoshiro256** */
};

struct relay;

/* One direction: its knobs, counters, PRNGs, shaper, jitter and queue. */
struct relay_link {
  struct relay *relay;
  enum relay_dir dir;
  struct relay_imp imp;
  struct relay_stats st;
  struct relay_rng rng[RELAY_RNG_COUNT];
  double shaper_tat_us;  /* when the token bucket is full again */
  double shaper_last_us; /* departure of the last shaped datagram */
  int64_t jit_seg;       /* index of the jitter segment in use */
  double jit_v0, jit_v1; /* jitter at its two knots, us */
  int64_t last_release_us;
  struct relay_pkt *head, *tail; /* sorted by release_us, FIFO on ties */
  size_t pending;
  uv_timer_t timer;
};

struct relay_pkt {
  struct relay_pkt *prev, *next;
  uv_udp_t *sock;
  struct sockaddr_storage dst;
  int64_t release_us;
  size_t len;
  uint8_t data[];
};

/* A client address and the socket that speaks for it upstream. */
struct relay_session {
  struct relay *relay;
  struct sockaddr_storage client;
  uv_udp_t sock;
};

struct relay_blackhole {
  int64_t start_us, end_us;
};

struct relay {
  uv_loop_t *loop;
  uint64_t t0_ns;
  uint64_t seed;
  struct sockaddr_storage listen_addr, upstream;
  uv_udp_t listen;
  struct relay_link link[2];
  struct relay_session *sessions[RELAY_MAX_SESSIONS];
  size_t nsessions;
  uint64_t foreign; /* datagrams on an upstream socket not from upstream */
  uint64_t refused; /* datagrams from clients beyond RELAY_MAX_SESSIONS */
  struct relay_blackhole bh[RELAY_MAX_BLACKHOLES];
  size_t nbh;
  const char *json_path;
  bool control;
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } ctl;
  bool ctl_open;
  char ctl_buf[RELAY_CTL_LINE];
  size_t ctl_len;
  uv_signal_t sigint, sigterm;
  bool stopped;
};

/* A knob: one impairment, settable per direction. */
struct relay_knob {
  const char *name;
  size_t off;
  double min, max;
  const char *arg, *help;
};

static const struct relay_knob relay__knobs[] = {
    {"loss", offsetof(struct relay_imp, loss_pct), 0, 100, "PCT",
     "drop PCT percent of datagrams at random"},
    {"delay", offsetof(struct relay_imp, delay_ms), 0, 600000, "MS",
     "add MS milliseconds of delay"},
    {"jitter", offsetof(struct relay_imp, jitter_ms), 0, 600000, "MS",
     "vary the delay within +-MS, without reordering"},
    {"jitter-dist", offsetof(struct relay_imp, jitter_dist), 0, 1, "D",
     "uniform (default) or normal (sigma MS/2, clipped)"},
    {"reorder", offsetof(struct relay_imp, reorder_pct), 0, 100, "PCT",
     "hold back PCT percent so later datagrams overtake"},
    {"reorder-gap", offsetof(struct relay_imp, reorder_gap_ms), 0, 600000, "MS",
     "how long a reordered datagram is held back (30)"},
    {"duplicate", offsetof(struct relay_imp, dup_pct), 0, 100, "PCT",
     "send PCT percent of datagrams twice (alias: dup)"},
    {"rate", offsetof(struct relay_imp, rate_kbit), 0, 1e9, "KBIT",
     "limit to KBIT kbit/s of UDP payload; 0 = unlimited"},
    {"queue", offsetof(struct relay_imp, queue_ms), 0, 600000, "MS",
     "drop what would wait over MS in the rate queue (100)"},
    {"queue-bytes", offsetof(struct relay_imp, queue_bytes), 0, 1e12, "N",
     "bound the rate queue by N bytes instead; 0 = use MS"},
    {"burst", offsetof(struct relay_imp, burst_bytes), 0, 1e12, "BYTES",
     "token bucket depth; 0 = one datagram (no burst)"},
};

static const char *const relay__dir_names[] = {"up", "down"};

static int relay__parse_args(struct relay *r, int argc, char **argv);
static int relay__set(struct relay *r, const char *key, const char *value,
                      char *err, size_t err_size);
static int relay__add_blackhole(struct relay *r, int64_t start_us,
                                int64_t dur_us);
static int relay__start(struct relay *r);
static void relay__stop(struct relay *r);
static void relay__close_all(struct relay *r);
static void relay__on_timer(uv_timer_t *t);
static void relay__send(struct relay_link *l, uv_udp_t *sock,
                        const struct sockaddr *dst, const uint8_t *data,
                        size_t len);

/* ---- Small helpers: time, PRNG, addresses ---- */

static int64_t relay__now_us(const struct relay *r) {
  return (int64_t)((uv_hrtime() - r->t0_ns) / 1000u);
}

static uint64_t relay__splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void relay__rng_seed(struct relay_rng *g, uint64_t seed,
                            uint64_t stream) {
  uint64_t x = seed ^ (0xd1b54a32d192ed03u * (stream + 1));
  for (int i = 0; i < 4; i++)
    g->s[i] = relay__splitmix64(&x);
}

static uint64_t relay__rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static uint64_t relay__rng_next(struct relay_rng *g) {
  uint64_t *s = g->s;
  uint64_t out = relay__rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = relay__rotl(s[3], 45);
  return out;
}

/* Uniform in [0, 1). */
static double relay__rng_unit(struct relay_rng *g) {
  return (double)(relay__rng_next(g) >> 11) * 0x1.0p-53;
}

static void relay__fmt_addr(const struct sockaddr *sa, char *out, size_t size) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, host, sizeof(host));
    port = ntohs(a->sin6_port);
    snprintf(out, size, "[%s]:%d", host, port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, host, sizeof(host));
    port = ntohs(a->sin_port);
    snprintf(out, size, "%s:%d", host, port);
  }
}

/* Parses HOST:PORT or [HOST]:PORT; HOST may be a name. Returns 0 or -1. */
static int relay__parse_addr(const char *s, struct sockaddr_storage *out) {
  char host[256];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s || colon[1] == '\0')
    return -1;
  size_t hlen = (size_t)(colon - s);
  const char *h = s;
  if (s[0] == '[' && colon[-1] == ']') {
    h = s + 1;
    hlen -= 2;
  }
  if (hlen == 0 || hlen >= sizeof(host))
    return -1;
  memcpy(host, h, hlen);
  host[hlen] = '\0';

  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
    return -1;
  memset(out, 0, sizeof(*out));
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

static bool relay__same_addr(const struct sockaddr *a,
                             const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return false;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static int relay__parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

static int relay__parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
    return -1;
  *out = v;
  return 0;
}

/* ---- Knobs: parsing and applying impairments ---- */

static void relay__imp_defaults(struct relay_imp *imp) {
  memset(imp, 0, sizeof(*imp));
  imp->reorder_gap_ms = 30;
  imp->queue_ms = 100;
}

/* Starts the clocks of a link: a full token bucket, fresh jitter knots. */
static void relay__link_reset(struct relay_link *l) {
  int64_t now = relay__now_us(l->relay);
  l->shaper_tat_us = (double)now;
  l->shaper_last_us = (double)now;
  l->jit_seg = -2;
}

/* A changed jitter draws new knots; the shaper keeps its state, so after a
 * rate change new datagrams queue behind the backlog at the new rate. The
 * FIFO floor (last_release_us) stays too: lowering the delay or jitter never
 * lets later datagrams overtake queued ones. */
static void relay__knob_changed(struct relay_link *l,
                                const struct relay_knob *k) {
  if (strncmp(k->name, "jitter", 6) == 0)
    l->jit_seg = -2;
}

static const struct relay_knob *relay__find_knob(const char *name) {
  for (size_t i = 0; i < ARRAY_SIZE(relay__knobs); i++)
    if (strcmp(relay__knobs[i].name, name) == 0)
      return &relay__knobs[i];
  if (strcmp(name, "dup") == 0)
    return relay__find_knob("duplicate");
  return NULL;
}

static int relay__knob_value(const struct relay_knob *k, const char *s,
                             double *v) {
  if (strcmp(k->name, "jitter-dist") == 0) {
    if (strcmp(s, "uniform") == 0)
      *v = RELAY_DIST_UNIFORM;
    else if (strcmp(s, "normal") == 0)
      *v = RELAY_DIST_NORMAL;
    else
      return -1;
    return 0;
  }
  if (relay__parse_double(s, v) < 0 || *v < k->min || *v > k->max)
    return -1;
  return 0;
}

/* Sets "[up-|down-]KNOB" to value in one or both directions. Used by the
 * command line and the control channel alike. Returns 0 or -1 with err. */
static int relay__set(struct relay *r, const char *key, const char *value,
                      char *err, size_t err_size) {
  int first = RELAY_UP, last = RELAY_DOWN;
  if (strncmp(key, "up-", 3) == 0) {
    key += 3;
    last = RELAY_UP;
  } else if (strncmp(key, "down-", 5) == 0) {
    key += 5;
    first = RELAY_DOWN;
  }
  const struct relay_knob *k = relay__find_knob(key);
  if (k == NULL) {
    snprintf(err, err_size, "unknown impairment '%s'", key);
    return -1;
  }
  double v;
  if (relay__knob_value(k, value, &v) < 0) {
    snprintf(err, err_size, "bad value '%s' for %s", value, k->name);
    return -1;
  }
  for (int d = first; d <= last; d++) {
    *(double *)((char *)&r->link[d].imp + k->off) = v;
    relay__knob_changed(&r->link[d], k);
  }
  return 0;
}

static int relay__add_blackhole(struct relay *r, int64_t start_us,
                                int64_t dur_us) {
  if (r->nbh == RELAY_MAX_BLACKHOLES || start_us < 0 || dur_us < 0)
    return -1;
  r->bh[r->nbh].start_us = start_us;
  r->bh[r->nbh].end_us = start_us + dur_us;
  r->nbh++;
  return 0;
}

static bool relay__blackholed(const struct relay *r, int64_t now) {
  for (size_t i = 0; i < r->nbh; i++)
    if (now >= r->bh[i].start_us && now < r->bh[i].end_us)
      return true;
  return false;
}

/* ---- The impairment pipeline ---- */

/* Token bucket of depth max(burst, len) filling at the rate, in front of a
 * FIFO queue. Sets *depart to when the datagram leaves the shaper, or
 * returns -1 if it would wait longer than the queue bound. */
static int relay__shape(struct relay_link *l, int64_t now, size_t len,
                        int64_t *depart) {
  const struct relay_imp *imp = &l->imp;
  double us_per_byte = 8000.0 / imp->rate_kbit;
  double depth = imp->burst_bytes > (double)len ? imp->burst_bytes : len;
  double d = (double)now;
  if (d < l->shaper_last_us)
    d = l->shaper_last_us;
  if (d < l->shaper_tat_us - (depth - (double)len) * us_per_byte)
    d = l->shaper_tat_us - (depth - (double)len) * us_per_byte;

  double limit_us = imp->queue_bytes > 0 ? imp->queue_bytes * us_per_byte
                                         : imp->queue_ms * 1000.0;
  if (d - (double)now > limit_us)
    return -1;
  double base = l->shaper_tat_us > d ? l->shaper_tat_us : d;
  l->shaper_tat_us = base + (double)len * us_per_byte;
  l->shaper_last_us = d;
  *depart = (int64_t)ceil(d);
  return 0;
}

/* One knot value in us: uniform in [-J, J] or normal(0, J/2) clipped. */
static double relay__jitter_knot(struct relay_link *l) {
  struct relay_rng *g = &l->rng[RELAY_RNG_JITTER];
  double j = l->imp.jitter_ms * 1000.0;
  if (l->imp.jitter_dist != RELAY_DIST_NORMAL)
    return (2.0 * relay__rng_unit(g) - 1.0) * j;
  double u1 = 1.0 - relay__rng_unit(g); /* (0, 1] */
  double u2 = relay__rng_unit(g);
  double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2) * (j / 2.0);
  return z < -j ? -j : (z > j ? j : z);
}

/* The jitter offset at time t (us), linear between knots 2*J apart so its
 * slope is >= -1 and t + jitter(t) never decreases. */
static int64_t relay__jitter(struct relay_link *l, int64_t t) {
  if (l->imp.jitter_ms <= 0)
    return 0;
  int64_t period = (int64_t)(2000.0 * l->imp.jitter_ms);
  if (period < 1)
    period = 1;
  int64_t k = t / period;
  if (k < l->jit_seg) {
    k = l->jit_seg; /* time never runs back; guard the arithmetic anyway */
    t = k * period;
  }
  if (k == l->jit_seg + 1) {
    l->jit_v0 = l->jit_v1;
    l->jit_v1 = relay__jitter_knot(l);
  } else if (k != l->jit_seg) {
    /* Skipped knots nobody saw: any values keep the slope bound, since at
     * least one whole period passed since the last datagram. */
    l->jit_v0 = relay__jitter_knot(l);
    l->jit_v1 = relay__jitter_knot(l);
  }
  l->jit_seg = k;
  double frac = (double)(t - k * period) / (double)period;
  return (int64_t)llround(l->jit_v0 + (l->jit_v1 - l->jit_v0) * frac);
}

static void relay__arm(struct relay_link *l) {
  if (l->head == NULL) {
    uv_timer_stop(&l->timer);
    return;
  }
  struct relay *r = l->relay;
  uv_update_time(r->loop);
  /* libuv fires when its ms clock reaches the due ms; round up to that. */
  int64_t target_ns = (int64_t)r->t0_ns +
                      (l->head->release_us - RELAY_EARLY_US) * (int64_t)1000;
  int64_t due_ms = (target_ns + 999999) / 1000000;
  int64_t now_ms = (int64_t)uv_now(r->loop);
  uint64_t timeout = due_ms > now_ms ? (uint64_t)(due_ms - now_ms) : 0;
  uv_timer_start(&l->timer, relay__on_timer, timeout, 0);
}

/* Inserts p sorted by release time, after any equal ones (FIFO). */
static void relay__enqueue(struct relay_link *l, struct relay_pkt *p) {
  struct relay_pkt *at = l->tail;
  while (at != NULL && at->release_us > p->release_us)
    at = at->prev;
  p->prev = at;
  p->next = at != NULL ? at->next : l->head;
  if (p->next != NULL)
    p->next->prev = p;
  else
    l->tail = p;
  if (at != NULL)
    at->next = p;
  else
    l->head = p;
  l->pending++;
  if (l->head == p)
    relay__arm(l);
}

static void relay__schedule(struct relay_link *l, uv_udp_t *sock,
                            const struct sockaddr *dst, const uint8_t *data,
                            size_t len, int64_t now, bool reorder) {
  int64_t depart = now;
  if (l->pending >= RELAY_MAX_PENDING ||
      (l->imp.rate_kbit > 0 && relay__shape(l, now, len, &depart) < 0)) {
    l->st.drop_queue++;
    return;
  }
  int64_t release = depart + (int64_t)llround(l->imp.delay_ms * 1000.0) +
                    relay__jitter(l, depart);
  if (reorder) {
    release += (int64_t)llround(l->imp.reorder_gap_ms * 1000.0);
  } else {
    if (release < l->last_release_us)
      release = l->last_release_us;
    l->last_release_us = release;
  }

  if (l->head == NULL && release <= now) {
    relay__send(l, sock, dst, data, len); /* nothing to wait for */
    return;
  }

  struct relay_pkt *p = malloc(sizeof(*p) + len);
  if (p == NULL) {
    l->st.drop_queue++;
    return;
  }
  p->sock = sock;
  memset(&p->dst, 0, sizeof(p->dst));
  memcpy(&p->dst, dst,
         dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                    : sizeof(struct sockaddr_in));
  p->release_us = release;
  p->len = len;
  if (len > 0)
    memcpy(p->data, data, len);
  relay__enqueue(l, p);
}

/* Entry of the pipeline for one received datagram. */
static void relay__ingress(struct relay_link *l, uv_udp_t *sock,
                           const struct sockaddr *dst, const uint8_t *data,
                           size_t len) {
  int64_t now = relay__now_us(l->relay);
  l->st.in++;
  l->st.bytes_in += len;
  /* Draw every stream once per datagram, so decisions depend on the seed
   * and the datagram's index only, not on timing or on other knobs. */
  double u_loss = relay__rng_unit(&l->rng[RELAY_RNG_LOSS]);
  double u_dup = relay__rng_unit(&l->rng[RELAY_RNG_DUP]);
  double u_reorder = relay__rng_unit(&l->rng[RELAY_RNG_REORDER]);

  if (relay__blackholed(l->relay, now)) {
    l->st.drop_blackhole++;
    return;
  }
  if (u_loss * 100.0 < l->imp.loss_pct) {
    l->st.drop_loss++;
    return;
  }
  bool reorder = u_reorder * 100.0 < l->imp.reorder_pct;
  if (reorder)
    l->st.reordered++;
  relay__schedule(l, sock, dst, data, len, now, reorder);
  if (u_dup * 100.0 < l->imp.dup_pct) {
    l->st.duplicated++;
    relay__schedule(l, sock, dst, data, len, now, reorder);
  }
}

static void relay__send(struct relay_link *l, uv_udp_t *sock,
                        const struct sockaddr *dst, const uint8_t *data,
                        size_t len) {
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(sock, &buf, 1, dst);
  if (rc < 0) {
    /* Loopback rarely pushes back; a full socket buffer is a drop, as on a
     * real host, and counted apart from the configured impairments. */
    l->st.drop_error++;
    LOG_DEBUG(RELAY_MOD, "%s: send failed: %s", relay__dir_names[l->dir],
              uv_strerror(rc));
    return;
  }
  l->st.out++;
  l->st.bytes_out += len;
}

/* Releases every datagram that is due; a blackhole also eats datagrams
 * that were already in flight when it began. */
static void relay__on_timer(uv_timer_t *t) {
  struct relay_link *l = t->data;
  int64_t now = relay__now_us(l->relay);
  bool dark = relay__blackholed(l->relay, now);
  while (l->head != NULL && l->head->release_us <= now + RELAY_EARLY_US) {
    struct relay_pkt *p = l->head;
    l->head = p->next;
    if (l->head != NULL)
      l->head->prev = NULL;
    else
      l->tail = NULL;
    l->pending--;
    if (dark)
      l->st.drop_blackhole++;
    else
      relay__send(l, p->sock, (struct sockaddr *)&p->dst, p->data, p->len);
    free(p);
  }
  relay__arm(l);
}

/* ---- Sockets and sessions ---- */

static void relay__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  /* One datagram at a time on one thread: a shared buffer is enough. */
  static char storage[RELAY_MAX_DATAGRAM];
  *buf = uv_buf_init(storage, sizeof(storage));
}

static void relay__grow_buffers(uv_udp_t *sock) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)sock, &fd) != 0)
    return;
  int size = RELAY_SOCKBUF;
  /* FORCE passes rmem_max/wmem_max if privileged; else best effort. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* Down: a reply from upstream on a session's socket goes to its client. */
static void relay__on_upstream_recv(uv_udp_t *sock, ssize_t nread,
                                    const uv_buf_t *buf,
                                    const struct sockaddr *from,
                                    unsigned flags) {
  struct relay_session *s = sock->data;
  struct relay *r = s->relay;
  if (nread < 0) {
    LOG_WARN(RELAY_MOD, "upstream socket: %s", uv_strerror((int)nread));
    return;
  }
  if (from == NULL || r->stopped)
    return;
  if (!relay__same_addr(from, (struct sockaddr *)&r->upstream)) {
    r->foreign++;
    return;
  }
  relay__ingress(&r->link[RELAY_DOWN], &r->listen,
                 (struct sockaddr *)&s->client, (const uint8_t *)buf->base,
                 (size_t)nread);
}

static struct relay_session *relay__session_new(struct relay *r,
                                                const struct sockaddr *client) {
  if (r->nsessions == RELAY_MAX_SESSIONS)
    return NULL;
  struct relay_session *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->relay = r;
  memcpy(&s->client, client,
         client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
  struct sockaddr_storage any;
  memset(&any, 0, sizeof(any));
  any.ss_family = r->upstream.ss_family;
  int rc = uv_udp_init(r->loop, &s->sock);
  if (rc != 0) {
    LOG_ERROR(RELAY_MOD, "upstream socket: %s", uv_strerror(rc));
    free(s);
    return NULL;
  }
  s->sock.data = s;
  r->sessions[r->nsessions++] = s; /* owned by r (and its loop) from here */
  rc = uv_udp_bind(&s->sock, (struct sockaddr *)&any, 0);
  if (rc == 0)
    rc = uv_udp_recv_start(&s->sock, relay__alloc, relay__on_upstream_recv);
  if (rc != 0) {
    LOG_ERROR(RELAY_MOD, "upstream socket: %s", uv_strerror(rc));
    return NULL;
  }
  relay__grow_buffers(&s->sock);
  char name[64];
  relay__fmt_addr(client, name, sizeof(name));
  LOG_INFO(RELAY_MOD, "new client %s", name);
  return s;
}

static struct relay_session *relay__session_get(struct relay *r,
                                                const struct sockaddr *client) {
  for (size_t i = 0; i < r->nsessions; i++)
    if (relay__same_addr((struct sockaddr *)&r->sessions[i]->client, client))
      return r->sessions[i];
  return relay__session_new(r, client);
}

/* Up: a datagram from a client goes upstream from that client's socket. */
static void relay__on_listen_recv(uv_udp_t *sock, ssize_t nread,
                                  const uv_buf_t *buf,
                                  const struct sockaddr *from, unsigned flags) {
  struct relay *r = sock->data;
  if (nread < 0) {
    LOG_WARN(RELAY_MOD, "listen socket: %s", uv_strerror((int)nread));
    return;
  }
  if (from == NULL || r->stopped)
    return;
  struct relay_session *s = relay__session_get(r, from);
  if (s == NULL) {
    r->refused++;
    return;
  }
  relay__ingress(&r->link[RELAY_UP], &s->sock, (struct sockaddr *)&r->upstream,
                 (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- Statistics ---- */

static void relay__stats_json(const struct relay *r, FILE *f) {
  fprintf(f, "{\"elapsed_ms\":%lld,\"seed\":%llu,\"clients\":%zu,",
          (long long)(relay__now_us(r) / 1000), (unsigned long long)r->seed,
          r->nsessions);
  fprintf(f, "\"foreign\":%llu,\"refused\":%llu",
          (unsigned long long)r->foreign, (unsigned long long)r->refused);
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++) {
    const struct relay_link *l = &r->link[d];
    const struct relay_stats *s = &l->st;
    fprintf(f,
            ",\"%s\":{\"in\":%llu,\"out\":%llu,\"bytes_in\":%llu,"
            "\"bytes_out\":%llu,\"dropped_loss\":%llu,"
            "\"dropped_queue\":%llu,\"dropped_blackhole\":%llu,"
            "\"dropped_error\":%llu,\"duplicated\":%llu,"
            "\"reordered\":%llu,\"pending\":%zu}",
            relay__dir_names[d], (unsigned long long)s->in,
            (unsigned long long)s->out, (unsigned long long)s->bytes_in,
            (unsigned long long)s->bytes_out, (unsigned long long)s->drop_loss,
            (unsigned long long)s->drop_queue,
            (unsigned long long)s->drop_blackhole,
            (unsigned long long)s->drop_error,
            (unsigned long long)s->duplicated, (unsigned long long)s->reordered,
            l->pending);
  }
  fputs("}\n", f);
}

static void relay__stats_print(const struct relay *r) {
  printf("relay: stats after %.3f s, seed %llu, %zu client(s)\n",
         (double)relay__now_us(r) / 1e6, (unsigned long long)r->seed,
         r->nsessions);
  printf("relay: %-5s %9s %9s %8s %8s %9s %6s %8s %8s %7s %11s %11s\n", "dir",
         "in", "out", "loss", "queue", "blackhole", "error", "dup", "reorder",
         "pending", "bytes_in", "bytes_out");
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++) {
    const struct relay_link *l = &r->link[d];
    const struct relay_stats *s = &l->st;
    printf("relay: %-5s %9llu %9llu %8llu %8llu %9llu %6llu %8llu %8llu %7zu "
           "%11llu %11llu\n",
           relay__dir_names[d], (unsigned long long)s->in,
           (unsigned long long)s->out, (unsigned long long)s->drop_loss,
           (unsigned long long)s->drop_queue,
           (unsigned long long)s->drop_blackhole,
           (unsigned long long)s->drop_error, (unsigned long long)s->duplicated,
           (unsigned long long)s->reordered, l->pending,
           (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out);
  }
  if (r->foreign > 0 || r->refused > 0)
    printf("relay: ignored %llu datagram(s) not from upstream, refused %llu "
           "beyond %d clients\n",
           (unsigned long long)r->foreign, (unsigned long long)r->refused,
           RELAY_MAX_SESSIONS);
}

static int relay__stats_write(const struct relay *r, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -errno;
  relay__stats_json(r, f);
  if (fclose(f) != 0)
    return -errno;
  return 0;
}

/* ---- Control channel: one command per line on stdin ---- */

static void relay__show(const struct relay *r) {
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++) {
    printf("%s:", relay__dir_names[d]);
    for (size_t i = 0; i < ARRAY_SIZE(relay__knobs); i++) {
      double v = *(const double *)((const char *)&r->link[d].imp +
                                   relay__knobs[i].off);
      if (strcmp(relay__knobs[i].name, "jitter-dist") == 0)
        printf(" %s=%s", relay__knobs[i].name,
               v == RELAY_DIST_NORMAL ? "normal" : "uniform");
      else
        printf(" %s=%g", relay__knobs[i].name, v);
    }
    printf(d == RELAY_UP ? "; " : "\n");
  }
}

static void relay__command(struct relay *r, char *line) {
  char *argv[4];
  int argc = 0;
  for (char *tok = strtok(line, " \t\r"); tok != NULL && argc < 4;
       tok = strtok(NULL, " \t\r"))
    argv[argc++] = tok;
  if (argc == 0)
    return;

  char err[128] = "";
  if (strcmp(argv[0], "set") == 0 && argc == 3) {
    if (relay__set(r, argv[1], argv[2], err, sizeof(err)) == 0)
      LOG_INFO(RELAY_MOD, "set %s %s", argv[1], argv[2]);
  } else if (strcmp(argv[0], "blackhole") == 0 && argc == 2) {
    double ms;
    if (relay__parse_double(argv[1], &ms) < 0 || ms < 0 ||
        relay__add_blackhole(r, relay__now_us(r), (int64_t)(ms * 1000)) < 0)
      snprintf(err, sizeof(err), "bad or too many blackholes");
  } else if (strcmp(argv[0], "stats") == 0 && argc == 1) {
    relay__stats_json(r, stdout);
    return;
  } else if (strcmp(argv[0], "show") == 0 && argc == 1) {
    relay__show(r);
    return;
  } else if (strcmp(argv[0], "help") == 0 && argc == 1) {
    printf("commands: set KEY VALUE | blackhole MS | stats | show | quit\n");
    return;
  } else if (strcmp(argv[0], "quit") == 0 && argc == 1) {
    printf("ok\n");
    relay__stop(r);
    return;
  } else {
    snprintf(err, sizeof(err), "unknown command (try help)");
  }
  if (err[0] != '\0')
    printf("error: %s\n", err);
  else
    printf("ok\n");
}

static void relay__ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char storage[1024];
  *buf = uv_buf_init(storage, sizeof(storage));
}

static void relay__ctl_read(uv_stream_t *s, ssize_t nread,
                            const uv_buf_t *buf) {
  struct relay *r = s->data;
  if (nread < 0) {
    /* EOF: no more commands, but keep relaying. */
    if (r->ctl_open)
      uv_close((uv_handle_t *)s, NULL);
    r->ctl_open = false;
    return;
  }
  for (ssize_t i = 0; i < nread && !r->stopped; i++) {
    char c = buf->base[i];
    if (c != '\n') {
      if (r->ctl_len < sizeof(r->ctl_buf) - 1)
        r->ctl_buf[r->ctl_len++] = c; /* longer lines are cut, then fail */
      continue;
    }
    r->ctl_buf[r->ctl_len] = '\0';
    r->ctl_len = 0;
    relay__command(r, r->ctl_buf);
  }
}

/* Listens for commands on stdin if it is a pipe, socket or terminal. */
static void relay__ctl_start(struct relay *r) {
  uv_handle_type t = uv_guess_handle(0);
  uv_stream_t *s = (uv_stream_t *)&r->ctl;
  int rc;
  if (t == UV_NAMED_PIPE) {
    rc = uv_pipe_init(r->loop, &r->ctl.pipe, 0);
    if (rc == 0)
      rc = uv_pipe_open(&r->ctl.pipe, 0);
  } else if (t == UV_TTY) {
    rc = uv_tty_init(r->loop, &r->ctl.tty, 0, 1);
  } else {
    LOG_DEBUG(RELAY_MOD, "stdin is not a pipe or tty: no control channel");
    return;
  }
  r->ctl_open = true;
  s->data = r;
  if (rc == 0)
    rc = uv_read_start(s, relay__ctl_alloc, relay__ctl_read);
  if (rc != 0) {
    LOG_WARN(RELAY_MOD, "control channel: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)s, NULL);
    r->ctl_open = false;
  }
}

/* ---- Start, stop, command line ---- */

static void relay__on_signal(uv_signal_t *sig, int signum) {
  relay__stop(sig->data);
}

static void relay__link_init(struct relay *r, enum relay_dir d) {
  struct relay_link *l = &r->link[d];
  l->relay = r;
  l->dir = d;
  relay__imp_defaults(&l->imp);
  l->jit_seg = -2;
}

static int relay__start(struct relay *r) {
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++) {
    struct relay_link *l = &r->link[d];
    for (int i = 0; i < RELAY_RNG_COUNT; i++)
      relay__rng_seed(&l->rng[i], r->seed, (uint64_t)(d * RELAY_RNG_COUNT + i));
    uv_timer_init(r->loop, &l->timer);
    l->timer.data = l;
  }
  uv_signal_init(r->loop, &r->sigint);
  uv_signal_init(r->loop, &r->sigterm);
  r->sigint.data = r->sigterm.data = r;
  uv_signal_start(&r->sigint, relay__on_signal, SIGINT);
  uv_signal_start(&r->sigterm, relay__on_signal, SIGTERM);

  int rc = uv_udp_init(r->loop, &r->listen);
  r->listen.data = r;
  if (rc == 0)
    rc = uv_udp_bind(&r->listen, (struct sockaddr *)&r->listen_addr, 0);
  if (rc == 0)
    rc = uv_udp_recv_start(&r->listen, relay__alloc, relay__on_listen_recv);
  if (rc != 0) {
    LOG_ERROR(RELAY_MOD, "listen: %s", uv_strerror(rc));
    return rc;
  }
  relay__grow_buffers(&r->listen);

  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_udp_getsockname(&r->listen, (struct sockaddr *)&bound, &len);
  char name[64], up[64];
  relay__fmt_addr((struct sockaddr *)&bound, name, sizeof(name));
  relay__fmt_addr((struct sockaddr *)&r->upstream, up, sizeof(up));
  if (r->control)
    relay__ctl_start(r);
  /* Blackhole times and the jitter grid count from here. */
  r->t0_ns = uv_hrtime();
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++)
    relay__link_reset(&r->link[d]);
  LOG_INFO(RELAY_MOD, "forwarding to %s, seed %llu", up,
           (unsigned long long)r->seed);
  printf("relay: listening on %s\n", name);
  return 0;
}

/* Reports and stops the loop; main closes the handles afterwards. */
static void relay__stop(struct relay *r) {
  if (r->stopped)
    return;
  r->stopped = true;
  relay__stats_print(r);
  if (r->json_path != NULL) {
    int rc = relay__stats_write(r, r->json_path);
    if (rc < 0)
      LOG_ERROR(RELAY_MOD, "%s: %s", r->json_path, strerror(-rc));
  }
  uv_stop(r->loop);
}

static void relay__close_one(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void relay__close_all(struct relay *r) {
  uv_walk(r->loop, relay__close_one, NULL);
  uv_run(r->loop, UV_RUN_DEFAULT);
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++) {
    struct relay_link *l = &r->link[d];
    while (l->head != NULL) {
      struct relay_pkt *p = l->head;
      l->head = p->next;
      free(p);
    }
    l->tail = NULL;
  }
  for (size_t i = 0; i < r->nsessions; i++)
    free(r->sessions[i]);
  r->nsessions = 0;
}

static void relay__usage(FILE *f) {
  fprintf(f,
          "usage: parley-relay --upstream HOST:PORT [options]\n"
          "\n"
          "A UDP relay that impairs traffic, for tests (no tc netem here).\n"
          "Datagrams from clients to the listen port go upstream (\"up\"),\n"
          "each client through its own socket so upstream sees distinct\n"
          "sources, like a NAT; upstream's replies go back (\"down\").\n"
          "Client mappings last until exit (at most %d clients); datagrams\n"
          "reaching a client's socket from elsewhere than upstream are\n"
          "ignored and counted as \"foreign\".\n"
          "Prints \"relay: listening on HOST:PORT\" when ready, and counters\n"
          "per direction on SIGINT, SIGTERM or \"quit\".\n"
          "\n"
          "  --listen HOST:PORT    where clients send (127.0.0.1:0; port 0 "
          "picks one)\n"
          "  --upstream HOST:PORT  where to forward (required)\n"
          "  --seed N              PRNG seed (1); same seed, same loss,\n"
          "                        duplicate and reorder pattern\n"
          "  --blackhole START:DUR drop everything, both directions, from\n"
          "                        START ms after listening for DUR ms; also\n"
          "                        what is in flight then (repeatable)\n"
          "  --json-stats FILE     write the counters as one JSON line at "
          "exit\n"
          "  --no-control          ignore stdin\n"
          "  --log-level L         error, warn, info (default), debug\n"
          "  --help                this text\n"
          "\n"
          "Impairments: --KNOB applies to both directions, --up-KNOB and\n"
          "--down-KNOB to one; later options override earlier ones.\n",
          RELAY_MAX_SESSIONS);
  for (size_t i = 0; i < ARRAY_SIZE(relay__knobs); i++) {
    char opt[40];
    snprintf(opt, sizeof(opt), "--%s %s", relay__knobs[i].name,
             relay__knobs[i].arg);
    fprintf(f, "  %-21s %s\n", opt, relay__knobs[i].help);
  }
  fprintf(
      f,
      "\n"
      "Order per datagram: blackhole, loss, duplicate, rate shaper, then\n"
      "delay + jitter (+ reorder gap). Jitter never reorders: the offset is\n"
      "a process linear between random knots 2*MS ms apart (slope >= -1),\n"
      "so every delay lies in [delay-MS, delay+MS] and its mean is delay.\n"
      "A duplicate follows its original through the shaper and the delay.\n"
      "The rate counts UDP payload bytes; datagrams that would wait longer\n"
      "than the queue bound are dropped (counted as \"queue\"), as are\n"
      "any beyond %d held per direction. Datagrams leave within -0.5 to\n"
      "+1.5 ms of their due time. Per direction, the counters add up:\n"
      "in + duplicated = out + pending + loss + queue + blackhole + error.\n"
      "\n"
      "Control: if stdin is a pipe or terminal, one command per line, each\n"
      "answered by one line (\"ok\", \"error: ...\", or the data):\n"
      "  set KEY VALUE   KEY as above without \"--\": set up-rate 600,\n"
      "                  set rate 0 (unlimited), set loss 5\n"
      "  blackhole MS    drop everything from now for MS ms\n"
      "  stats           print the counters as one JSON line\n"
      "  show            print the current impairments\n"
      "  quit            print the counters and exit\n"
      "EOF on stdin closes the control channel; the relay keeps running.\n",
      RELAY_MAX_PENDING);
}

static int relay__parse_blackhole(struct relay *r, const char *s) {
  const char *colon = strchr(s, ':');
  if (colon == NULL)
    return -1;
  char start[32];
  size_t n = (size_t)(colon - s);
  if (n == 0 || n >= sizeof(start))
    return -1;
  memcpy(start, s, n);
  start[n] = '\0';
  double a, b;
  if (relay__parse_double(start, &a) < 0 ||
      relay__parse_double(colon + 1, &b) < 0)
    return -1;
  return relay__add_blackhole(r, (int64_t)(a * 1000), (int64_t)(b * 1000));
}

/* Handles one "--name value" pair. Returns 0, or -1 after printing why. */
static int relay__option(struct relay *r, const char *name, const char *val) {
  char err[128] = "";
  if (strcmp(name, "listen") == 0) {
    if (relay__parse_addr(val, &r->listen_addr) < 0)
      snprintf(err, sizeof(err), "bad address '%s'", val);
  } else if (strcmp(name, "upstream") == 0) {
    if (relay__parse_addr(val, &r->upstream) < 0)
      snprintf(err, sizeof(err), "bad address '%s'", val);
  } else if (strcmp(name, "seed") == 0) {
    if (relay__parse_u64(val, &r->seed) < 0)
      snprintf(err, sizeof(err), "bad seed '%s'", val);
  } else if (strcmp(name, "blackhole") == 0) {
    if (relay__parse_blackhole(r, val) < 0)
      snprintf(err, sizeof(err), "bad blackhole '%s' (START_MS:DUR_MS)", val);
  } else if (strcmp(name, "json-stats") == 0) {
    r->json_path = val;
  } else if (strcmp(name, "log-level") == 0) {
    enum log_level lvl;
    if (log_parse_level(val, &lvl) < 0)
      snprintf(err, sizeof(err), "bad log level '%s'", val);
    else
      log_set_level(lvl);
  } else {
    relay__set(r, name, val, err, sizeof(err));
  }
  if (err[0] == '\0')
    return 0;
  fprintf(stderr, "parley-relay: %s\n", err);
  return -1;
}

/* Returns 0 to run, 1 after --help, or -1 on a usage error. */
static int relay__parse_args(struct relay *r, int argc, char **argv) {
  bool have_upstream = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      relay__usage(stdout);
      return 1;
    }
    if (strcmp(a, "--no-control") == 0) {
      r->control = false;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "parley-relay: unexpected '%s' (see --help)\n", a);
      return -1;
    }
    char name[64];
    const char *val;
    const char *eq = strchr(a, '=');
    size_t n = eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (n >= sizeof(name)) {
      fprintf(stderr, "parley-relay: unknown option '%s'\n", a);
      return -1;
    }
    memcpy(name, a + 2, n);
    name[n] = '\0';
    if (eq != NULL) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      fprintf(stderr, "parley-relay: %s needs a value\n", a);
      return -1;
    }
    if (relay__option(r, name, val) < 0)
      return -1;
    have_upstream |= strcmp(name, "upstream") == 0;
  }
  if (!have_upstream) {
    fprintf(stderr, "parley-relay: --upstream is required (see --help)\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  static struct relay r; /* large (sessions, blackholes): not on the stack */
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN); /* a reader that went away is not fatal */
  r.loop = uv_default_loop();
  r.seed = 1;
  r.control = true;
  for (int d = RELAY_UP; d <= RELAY_DOWN; d++)
    relay__link_init(&r, (enum relay_dir)d);
  relay__parse_addr("127.0.0.1:0", &r.listen_addr);

  int rc = relay__parse_args(&r, argc, argv);
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  if (relay__start(&r) != 0) {
    relay__close_all(&r);
    return 1;
  }
  uv_run(r.loop, UV_RUN_DEFAULT);
  relay__close_all(&r);
  uv_loop_close(r.loop);
  return 0;
}

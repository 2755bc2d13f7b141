/* The QUIC endpoint: one UDP socket, client and server at once, mutually
 * authenticated by Ed25519 identity keys, dispatching by ALPN.
 *
 * Owns the UDP socket(s), every connection (ngtcp2 + wolfSSL state), their
 * streams, write queues and timers. Each side presents a self-signed
 * certificate holding its identity key; a dialer checks that the peer's key
 * is the one it dialed, an acceptor records the key the peer proved (TLS
 * CertificateVerify) as the connection's authenticated peer. A mismatch
 * closes the connection before any application data flows.
 *
 * Threads: everything here runs on the libuv loop thread that created the
 * endpoint. No function may be called from another thread; no callback is
 * ever invoked from another thread.
 *
 * Lifetimes: the endpoint owns its connections. A quic_conn_t pointer is
 * valid from quic_dial() (or on_connected for accepted connections) until
 * on_closed returns. Callbacks are never invoked from inside a quic_* call
 * made by the application, except quic_endpoint_free(), which reports
 * on_closed for every connection still open. Data passed to callbacks is
 * only valid during the callback. All writes copy their input.
 *
 * Errors: functions return 0 (or a non-negative value) on success and a
 * negative errno-style QUIC_ERR_* code on failure; quic_strerror() names it.
 */
#ifndef PARLEY_NET_QUIC_H
#define PARLEY_NET_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <errno.h>
#include <uv.h>

#include "crypto/identity.h"

#define QUIC_ALPN_DM "iroh-social/dm/1"
#define QUIC_ALPN_CALL "iroh-social/call/1"
#define QUIC_ALPN_MAX_LEN 64
#define QUIC_ALPN_MAX_COUNT 8

enum quic_err {
  QUIC_ERR_INVAL = -EINVAL,        /* bad argument */
  QUIC_ERR_NOMEM = -ENOMEM,        /* allocation failed */
  QUIC_ERR_AGAIN = -EAGAIN,        /* write queue full: wait for writable */
  QUIC_ERR_STREAM_LIMIT = -EMLINK, /* peer's stream limit reached */
  QUIC_ERR_NOT_FOUND = -ENOENT,    /* no such stream / ALPN */
  QUIC_ERR_CLOSED = -EPIPE,        /* stream side or connection closed */
  QUIC_ERR_TOO_BIG = -EMSGSIZE,    /* datagram larger than allowed */
  QUIC_ERR_NO_DATAGRAM = -ENOTSUP, /* peer did not enable DATAGRAM */
  QUIC_ERR_STATE = -ENOTCONN,      /* connection not established yet */
  QUIC_ERR_EXISTS = -EEXIST,       /* ALPN already registered */
  QUIC_ERR_AF = -EAFNOSUPPORT,     /* address family not usable */
  QUIC_ERR_TLS = -EPROTO,          /* TLS / certificate setup failed */
  QUIC_ERR_LIMIT = -EMFILE,        /* too many connections */
};

/* A readable name for a QUIC_ERR_* (or any negative errno) code. */
const char *quic_strerror(int err);

typedef struct quic_endpoint quic_endpoint_t;
typedef struct quic_conn quic_conn_t;

/* Why a connection ended; see quic_close_info_t. */
enum quic_close_kind {
  QUIC_CLOSE_LOCAL = 0, /* we called quic_conn_close / shutdown */
  QUIC_CLOSE_REMOTE,    /* peer closed with an application code */
  QUIC_CLOSE_AUTH,      /* peer key mismatch or bad certificate */
  QUIC_CLOSE_ALPN,      /* no application protocol in common */
  QUIC_CLOSE_IDLE,      /* idle timeout: peer vanished */
  QUIC_CLOSE_HANDSHAKE_TIMEOUT,
  QUIC_CLOSE_TRANSPORT,       /* protocol or TLS error (either side) */
  QUIC_CLOSE_STATELESS_RESET, /* peer lost its state */
  QUIC_CLOSE_ENDPOINT,        /* quic_endpoint_free() */
};

typedef struct quic_close_info {
  enum quic_close_kind kind;
  bool app;          /* code is an application code (else QUIC transport) */
  bool remote;       /* the peer ended it (else we did / timed out) */
  uint64_t code;     /* application or transport error code */
  const char *error; /* human-readable, never NULL, e.g. "peer key
                        mismatch: expected ab12cd34.. got 9f8e7d6c.." */
} quic_close_info_t;

/* Which side of a stream a reset concerns (on_stream_reset, shutdown). */
enum quic_stream_dir {
  QUIC_DIR_RECV = 1, /* peer reset its sending side (RESET_STREAM) / we stop
                        reading (STOP_SENDING) */
  QUIC_DIR_SEND = 2, /* peer asked us to stop sending (STOP_SENDING) / we
                        reset our sending side (RESET_STREAM) */
  QUIC_DIR_BOTH = 3,
};

/* Callbacks for one ALPN (accepted connections) or one dial. Any may be
 * NULL. `user` is the connection's user pointer (quic_conn_set_user),
 * initially the one given at registration or dial. */
typedef struct quic_handler {
  /* Handshake done, peer authenticated, ALPN agreed. Streams and datagrams
   * may be used from here on. */
  void (*on_connected)(quic_conn_t *c, void *user);
  /* The connection is gone; called once. For a dial that never connected
   * this is the failure report. The pointer dies when this returns. */
  void (*on_closed)(quic_conn_t *c, const quic_close_info_t *info, void *user);
  /* The peer opened a stream (bidirectional or unidirectional). */
  void (*on_stream_open)(quic_conn_t *c, int64_t sid, void *user);
  /* In-order bytes of a stream. Flow-control credit is returned to the
   * peer when this returns, so copy what you need to keep. */
  void (*on_stream_data)(quic_conn_t *c, int64_t sid, const uint8_t *data,
                         size_t len, void *user);
  /* The peer finished its side of the stream (after all data). */
  void (*on_stream_fin)(quic_conn_t *c, int64_t sid, void *user);
  /* The peer reset its sending side (dir QUIC_DIR_RECV; no more data will
   * come) or asked us to stop sending (QUIC_DIR_SEND; queued data is
   * dropped and further writes fail). ngtcp2 reports the latter only when
   * the stream closes, about one round trip after STOP_SENDING. */
  void (*on_stream_reset)(quic_conn_t *c, int64_t sid, uint64_t app_code,
                          enum quic_stream_dir dir, void *user);
  /* A write refused with QUIC_ERR_AGAIN may be retried: the stream's
   * unacknowledged bytes dropped to the low-water mark. */
  void (*on_stream_writable)(quic_conn_t *c, int64_t sid, void *user);
  /* Everything written so far on the stream (and its FIN, if sent) has
   * been acknowledged by the peer: the write queue drained. */
  void (*on_stream_acked)(quic_conn_t *c, int64_t sid, void *user);
  /* The stream is fully closed and forgotten; its user pointer may be
   * freed. */
  void (*on_stream_closed)(quic_conn_t *c, int64_t sid, void *user);
  /* An unreliable DATAGRAM frame (RFC 9221). */
  void (*on_datagram)(quic_conn_t *c, const uint8_t *data, size_t len,
                      void *user);
  /* The peer raised our stream limit after QUIC_ERR_STREAM_LIMIT. */
  void (*on_streams_available)(quic_conn_t *c, void *user);
} quic_handler_t;

/* Per-connection transport options. quic_conn_opts_default() fills
 * sensible values; 0 in a field means "default" as noted. */
typedef struct quic_conn_opts {
  uint32_t idle_timeout_ms;      /* default 30000; a silent peer is declared
                                    gone after this (min of both sides) */
  uint32_t keep_alive_ms;        /* PING after this much quiet; 0 = off */
  uint32_t handshake_timeout_ms; /* default 10000 */
  uint32_t max_datagram_frame;   /* DATAGRAM frames we accept; default
                                    65535, 0 keeps default, use
                                    QUIC_DATAGRAMS_OFF to disable */
  uint64_t stream_window;        /* initial per-stream receive window,
                                    default 1 MiB (auto-tuned up to 16x) */
  uint64_t conn_window;          /* initial connection window, default
                                    4 MiB (auto-tuned up to 8x) */
  uint32_t max_streams_bidi;     /* concurrent peer-opened streams, 100 */
  uint32_t max_streams_uni;      /* default 100 */
  size_t stream_high_water;      /* quic_stream_write returns QUIC_ERR_AGAIN
                                    once this many bytes are unacked,
                                    default 4 MiB */
  size_t stream_low_water;       /* on_stream_writable fires at or below,
                                    default 1 MiB */
  uint32_t datagram_queue;       /* datagrams waiting to be sent; the oldest
                                    is dropped when full; default 64 */
  int cc_algo;                   /* QUIC_CC_BBR (default), _CUBIC, _RENO;
                                    for accepted connections the endpoint's
                                    opts.conn decide (ngtcp2 fixes it
                                    before the ALPN is known) */
  uint32_t ack_hold_ms;          /* 0 (default): ACK as ngtcp2 times it
                                    (after RTT/8). Else, for a link that
                                    sends a packet of its own every few ms
                                    (a call's 20 ms audio frames): hold the
                                    ACK a single packet calls for up to this
                                    long after it arrived, so that our next
                                    packet carries it instead of an ACK-only
                                    packet of its own. At most 24 (we
                                    announce max_ack_delay 25 ms), for
                                    one or two packets. Not held: an ACK
                                    for three packets or more (as in a
                                    burst of video), and any ACK while we
                                    have data queued. Held too: ngtcp2's
                                    immediate ACK of a packet after a gap,
                                    so the peer may see a loss up to
                                    ack_hold_ms later. */
} quic_conn_opts_t;

#define QUIC_DATAGRAMS_OFF UINT32_MAX
/* BBR by default: at 10% random loss loss-based CUBIC collapses to a few
 * packets per RTT, too little even for audio (docs/benchmarks.md). */
enum { QUIC_CC_DEFAULT = 0, QUIC_CC_CUBIC, QUIC_CC_RENO, QUIC_CC_BBR };

/* How outgoing packets reach the kernel (measured in docs/benchmarks.md). */
enum quic_batch_mode {
  QUIC_BATCH_AUTO = 0, /* GSO if the kernel has it, else sendmmsg */
  QUIC_BATCH_GSO,      /* sendmmsg of UDP_SEGMENT (GSO) super-packets */
  QUIC_BATCH_SENDMMSG, /* one sendmmsg per burst, one packet per message */
  QUIC_BATCH_NONE,     /* one sendmsg per packet */
};

typedef struct quic_endpoint_opts {
  /* For accepted connections whose ALPN was registered without options,
   * and for everything decided before the ALPN is known (cc_algo,
   * handshake_timeout_ms). */
  quic_conn_opts_t conn;
  enum quic_batch_mode batch;
  /* Don't ask the kernel for UDP GRO (coalesced receive). */
  bool no_gro;
  /* Largest UDP payload we send: default 1452 (a 1500-byte MTU minus
   * headers). ngtcp2 starts at 1200 and probes upwards. */
  uint32_t max_udp_payload;
  /* Send max_udp_payload-sized packets from the start, without path MTU
   * discovery: for known paths such as loopback or jumbo-frame LANs. */
  bool fixed_udp_payload;
  /* Default 256; further Initials are dropped. */
  uint32_t max_connections;
  /* SO_SNDBUF / SO_RCVBUF, default 4 MiB (capped by the kernel). */
  uint32_t socket_buffer;
  /* Count lost packets from ngtcp2's qlog events (stats.packets_lost);
   * costs a few percent of CPU in bulk transfer (docs/benchmarks.md). */
  bool count_lost_packets;
} quic_endpoint_opts_t;

void quic_conn_opts_default(quic_conn_opts_t *o);
void quic_endpoint_opts_default(quic_endpoint_opts_t *o);

/* Creates an endpoint bound to listen_addr ("0.0.0.0:0", "127.0.0.1:4433",
 * "[::]:4433"; an IPv6 wildcard also serves IPv4 peers). The identity is
 * copied; its key goes into a fresh self-signed certificate. opts may be
 * NULL. Returns 0 with *out set, or QUIC_ERR_INVAL (bad address),
 * QUIC_ERR_TLS (certificate/context), QUIC_ERR_NOMEM, or -errno from
 * socket/bind. err (may be NULL) receives a reason. */
int quic_endpoint_new(uv_loop_t *loop, const identity_t *id,
                      const char *listen_addr, const quic_endpoint_opts_t *opts,
                      quic_endpoint_t **out, char *err, size_t err_size);

/* Closes every connection (on_closed with QUIC_CLOSE_ENDPOINT, after a
 * CONNECTION_CLOSE with application code 0 is sent) and the socket. The
 * memory is released once the loop has run the handles' close callbacks.
 * Must not be called from inside a quic callback. */
void quic_endpoint_free(quic_endpoint_t *ep);

/* Accept connections for alpn (1..64 printable characters, no ','),
 * handled by h (copied) with the given per-connection options (NULL =
 * endpoint defaults). Returns 0, QUIC_ERR_EXISTS, QUIC_ERR_INVAL or
 * QUIC_ERR_LIMIT (more than QUIC_ALPN_MAX_COUNT). */
int quic_endpoint_register_alpn(quic_endpoint_t *ep, const char *alpn,
                                const quic_handler_t *h,
                                const quic_conn_opts_t *opts, void *user);

/* The bound local address (port resolved if 0 was asked). */
int quic_endpoint_local_addr(const quic_endpoint_t *ep,
                             struct sockaddr_storage *out);

/* Moves the endpoint to a new local address (e.g. "0.0.0.0:0" for a fresh
 * port), for NAT rebinding or a network change. Connections we dialed
 * migrate at once (ngtcp2 validates the new path); connections we
 * accepted cannot migrate (QUIC lets only clients do so), so the old
 * socket stays open for them until they end. Returns 0 or a negative code;
 * on failure nothing changes. */
int quic_endpoint_rebind(quic_endpoint_t *ep, const char *local_addr);

typedef struct quic_endpoint_stats {
  uint64_t packets_sent, packets_received;
  uint64_t bytes_sent, bytes_received;
  uint64_t send_calls;  /* sendmsg/sendmmsg system calls */
  uint64_t recv_calls;  /* recvmmsg system calls that returned data */
  uint64_t dropped;     /* datagrams that matched no connection */
  uint64_t send_errors; /* packets the kernel refused */
  uint32_t connections; /* live (incl. handshaking and closing) */
  bool gso, gro;        /* in use */
} quic_endpoint_stats_t;

void quic_endpoint_stats(const quic_endpoint_t *ep, quic_endpoint_stats_t *s);

/* Dials peer (its 32-byte Ed25519 key) at addr for alpn. The handshake
 * fails with QUIC_CLOSE_AUTH unless the peer proves that key. h and opts
 * may be NULL: h then defaults to the handler registered for alpn, opts to
 * that registration's (or the endpoint's) options. user becomes the
 * connection's user pointer. Returns 0 with *out set (the result arrives
 * as on_connected or on_closed), or QUIC_ERR_INVAL, QUIC_ERR_AF,
 * QUIC_ERR_NOT_FOUND (no handler at all), QUIC_ERR_LIMIT, QUIC_ERR_NOMEM. */
int quic_dial(quic_endpoint_t *ep, const uint8_t peer[32],
              const struct sockaddr *addr, const char *alpn,
              const quic_conn_opts_t *opts, const quic_handler_t *h, void *user,
              quic_conn_t **out);

/* The peer's authenticated Ed25519 key (32 bytes) and its hex peer ID.
 * For a dial that has not connected yet, the expected key. */
const uint8_t *quic_conn_peer(const quic_conn_t *c);
const char *quic_conn_peer_id(const quic_conn_t *c);
const char *quic_conn_alpn(const quic_conn_t *c);
bool quic_conn_is_dialer(const quic_conn_t *c);
bool quic_conn_is_connected(const quic_conn_t *c);
/* The peer's current address (IPv4 shown as IPv4 even on a dual-stack
 * socket). */
int quic_conn_remote_addr(const quic_conn_t *c, struct sockaddr_storage *out);
void quic_conn_set_user(quic_conn_t *c, void *user);
void *quic_conn_user(const quic_conn_t *c);
/* Sets opts.ack_hold_ms for this connection from now on (clamped as
 * there), for an application that learns only after the handshake whether
 * it will send a packet every few ms. */
void quic_conn_set_ack_hold(quic_conn_t *c, uint32_t ms);
quic_endpoint_t *quic_conn_endpoint(const quic_conn_t *c);

/* Sends PING frames after ms of quiet (0 = off). Keeps NAT bindings and
 * lets idle-timeout detection run on both sides. */
void quic_conn_set_keep_alive(quic_conn_t *c, uint32_t ms);

typedef struct quic_conn_stats {
  uint64_t smoothed_rtt_us, rtt_var_us, min_rtt_us, latest_rtt_us;
  uint64_t cwnd, ssthresh, bytes_in_flight; /* bytes */
  uint64_t packets_sent, packets_received;  /* UDP packets */
  uint64_t bytes_sent, bytes_received;      /* UDP payload bytes */
  uint64_t packets_lost;  /* declared lost by ngtcp2's recovery (0 unless
                             opts.count_lost_packets) */
  uint64_t delivery_rate; /* bytes/s acknowledged by the peer (stream
                             and datagram payload), over ~1 RTT */
  uint64_t stream_bytes_acked;
  uint64_t datagrams_sent, datagrams_received;
  uint64_t datagrams_acked, datagrams_lost;
  uint64_t datagrams_dropped; /* send queue overflow or too big for path */
  size_t max_datagram;        /* quic_datagram_max_size() */
} quic_conn_stats_t;

/* Fills s from ngtcp2's connection info and our counters. */
int quic_conn_stats(const quic_conn_t *c, quic_conn_stats_t *s);

/* Closes the connection now with an application code and reason (sent to
 * the peer, truncated to 100 bytes). Queued stream data is abandoned.
 * on_closed (QUIC_CLOSE_LOCAL) follows from the loop. Returns 0 or
 * QUIC_ERR_CLOSED if already closing. */
int quic_conn_close(quic_conn_t *c, uint64_t app_code, const char *reason);

/* Like quic_conn_close, but first waits until every stream's queued data
 * has been acknowledged (bounded by the idle timeout), so a final message
 * written just before is delivered. No new streams may be opened. */
int quic_conn_shutdown(quic_conn_t *c, uint64_t app_code, const char *reason);

/* Opens a stream; *sid receives its ID. Returns 0, QUIC_ERR_STATE (not
 * connected), QUIC_ERR_CLOSED, QUIC_ERR_STREAM_LIMIT (wait for
 * on_streams_available) or QUIC_ERR_NOMEM. */
int quic_stream_open_bidi(quic_conn_t *c, int64_t *sid);
int quic_stream_open_uni(quic_conn_t *c, int64_t *sid);

/* Queues len bytes (copied) and, if fin, the end of the stream. The queue
 * is sent as flow and congestion control allow. Returns 0,
 * QUIC_ERR_AGAIN if the stream already holds stream_high_water
 * unacknowledged bytes (nothing queued; retry on on_stream_writable — a
 * single write larger than the mark is accepted when the queue is below
 * it), QUIC_ERR_NOT_FOUND (no such stream: never opened, or closed and
 * forgotten), QUIC_ERR_CLOSED (FIN already queued, reset, or a
 * receive-only stream) or QUIC_ERR_NOMEM. */
int quic_stream_write(quic_conn_t *c, int64_t sid, const void *data, size_t len,
                      bool fin);

/* Bytes written but not yet acknowledged. Negative code if no stream. */
int64_t quic_stream_unacked(const quic_conn_t *c, int64_t sid);

/* Resets the stream in both directions with app_code: RESET_STREAM for
 * our sending side (queued data is dropped) and STOP_SENDING for the
 * peer's. quic_stream_shutdown picks the directions. Returns 0 or
 * QUIC_ERR_NOT_FOUND. */
int quic_stream_reset(quic_conn_t *c, int64_t sid, uint64_t app_code);
int quic_stream_shutdown(quic_conn_t *c, int64_t sid, enum quic_stream_dir dir,
                         uint64_t app_code);

/* Lower numbers go first (0..7, default 3). Among equals, round robin. */
int quic_stream_set_priority(quic_conn_t *c, int64_t sid, uint8_t urgency);
int quic_stream_set_user(quic_conn_t *c, int64_t sid, void *user);
void *quic_stream_user(const quic_conn_t *c, int64_t sid);

/* True for streams the local side opened. */
bool quic_stream_is_local(const quic_conn_t *c, int64_t sid);
static inline bool quic_stream_is_uni(int64_t sid) {
  return (sid & 0x2) != 0;
}

/* Queues one DATAGRAM (copied). Datagrams go out before stream data. When
 * the queue is full the oldest waiting datagram is dropped (counted).
 * Returns 0, QUIC_ERR_STATE, QUIC_ERR_NO_DATAGRAM, QUIC_ERR_TOO_BIG (see
 * quic_datagram_max_size) or QUIC_ERR_NOMEM. */
int quic_datagram_send(quic_conn_t *c, const void *data, size_t len);

/* The largest datagram payload that fits a packet on the current path and
 * the peer's limit; 0 if the peer does not accept datagrams or the
 * connection is not established. */
size_t quic_datagram_max_size(const quic_conn_t *c);

#endif

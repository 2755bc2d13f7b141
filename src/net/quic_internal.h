/* Internal structures shared by the QUIC endpoint's files:
 * quic.c (endpoint, public API), quic_conn.c (connections, ngtcp2
 * callbacks), quic_stream.c (streams, write queues, datagrams) and
 * quic_io.c (UDP sockets, batching). Loop thread only, like quic.h.
 */
#ifndef PARLEY_NET_QUIC_INTERNAL_H
#define PARLEY_NET_QUIC_INTERNAL_H

#include "net/quic.h"
#include "net/quic_map.h"
#include "net/tls.h" /* wolfSSL, included first among third-party headers */

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#define QUIC_CID_LEN 16          /* all our connection IDs */
#define QUIC_TX_MAX_PKTS 64      /* packets per send burst */
#define QUIC_GSO_MAX_BYTES 65000 /* one UDP_SEGMENT super-packet */
#define QUIC_GSO_MAX_SEGS 64
#define QUIC_RX_BATCH 16    /* messages per recvmmsg */
#define QUIC_RX_BUF 65536   /* per message: a GRO train or one packet */
#define QUIC_RX_ROUNDS 8    /* recvmmsg calls per readable event */
#define QUIC_STREAM_IOV 16  /* chunks handed to ngtcp2 per packet */
#define QUIC_DGRAM_RING 256 /* sizes of in-flight datagrams */

/* opts.ack_hold_ms at most: under the max_ack_delay we announce (ngtcp2's
 * default, 25 ms). */
#define QUIC_ACK_HOLD_MAX_MS 24
/* ...and for at most this many packets (ngtcp2 acks two at once). */
#define QUIC_ACK_HOLD_PKTS 2

/* ---- sockets and send batches (quic_io.c) ---- */

typedef struct quic_sock {
  quic_endpoint_t *ep;
  int fd;
  uv_poll_t poll;
  int poll_events;
  struct sockaddr_storage local;
  socklen_t local_len;
  bool gso, gro;
  bool retired; /* replaced by quic_endpoint_rebind, kept for old conns */
} quic_sock_t;

/* Packets waiting to be handed to the kernel, all for one destination. */
typedef struct quic_txbatch {
  uint8_t *buf; /* QUIC_TX_MAX_PKTS * max_udp_payload */
  size_t used;
  size_t npkts, first; /* first: index of the first packet not yet sent */
  size_t off[QUIC_TX_MAX_PKTS];
  size_t len[QUIC_TX_MAX_PKTS];
  struct sockaddr_storage dst;
  socklen_t dst_len;
  quic_sock_t *sock;
} quic_txbatch_t;

/* ---- streams and datagrams (quic_stream.c) ---- */

typedef struct quic_chunk {
  struct quic_chunk *next;
  uint64_t off; /* stream offset of data[0] */
  size_t len;
  uint8_t data[];
} quic_chunk_t;

typedef struct quic_stream {
  int64_t id;
  void *user;
  uint8_t urgency;
  bool local; /* we opened it */
  /* Send side: chunks stay allocated until acknowledged, because ngtcp2
   * keeps pointers into them for retransmission. */
  quic_chunk_t *head, *tail;
  quic_chunk_t *send_chunk; /* first chunk with bytes not given to ngtcp2 */
  uint64_t write_off;       /* total bytes queued */
  uint64_t sent_off;        /* bytes given to ngtcp2 */
  uint64_t acked_off;       /* bytes acknowledged (contiguous) */
  bool fin_queued, fin_sent;
  bool send_shut;     /* reset by us, or STOP_SENDING from the peer */
  bool reset_local;   /* we reset the sending side */
  bool blocked;       /* stream flow control: wait for MAX_STREAM_DATA */
  bool want_writable; /* a write was refused with QUIC_ERR_AGAIN */
  bool acked_told;    /* on_stream_acked given for the current queue */
  bool in_sendq;
  struct quic_stream *sendq_prev, *sendq_next;
  bool recv_fin, recv_reset;
} quic_stream_t;

typedef struct quic_dgram {
  size_t len;
  uint8_t tries; /* packets written without room for it */
  uint8_t data[];
} quic_dgram_t;

/* ---- connections (quic_conn.c) ---- */

enum quic_conn_state {
  QC_HANDSHAKE = 0,
  QC_OPEN,
  QC_CLOSING, /* CONNECTION_CLOSE sent; answering stray packets briefly */
  QC_DEAD,    /* unlinked; memory goes when the timer handle closes */
};

struct quic_conn {
  quic_endpoint_t *ep;
  struct quic_conn *prev, *next; /* ep->conns */
  struct quic_conn *dirty_next;
  bool dirty;
  ngtcp2_conn *nc;
  ngtcp2_crypto_conn_ref ref;
  WOLFSSL *ssl;
  tls_peer_check_t check;
  uv_timer_t timer;
  enum quic_conn_state state;
  bool dialer;
  bool visible;      /* the application knows it: on_closed is owed */
  int depth;         /* > 0 while inside ngtcp2 (its callbacks may run) */
  bool close_req;    /* quic_conn_close: act once outside ngtcp2 */
  bool shutdown_req; /* quic_conn_shutdown: close once queues drain */
  bool stateless_reset;
  uint64_t close_code;
  char close_reason[101];
  /* A failure noticed inside a callback, reported when ngtcp2 returns. */
  bool fail_set;
  enum quic_close_kind fail_kind;
  uint8_t fail_alert;
  char fail_error[200];

  quic_handler_t h;
  void *user;
  quic_conn_opts_t opts;
  char alpn[QUIC_ALPN_MAX_LEN + 1];
  uint8_t peer[32];
  char peer_id[65];
  ngtcp2_cid scid;  /* our first connection ID */
  ngtcp2_cid odcid; /* acceptor: the dialer's first DCID, also mapped */
  bool has_odcid;

  qmap_t streams;
  quic_stream_t *sendq_head, *sendq_tail;
  bool want_streams; /* an open failed on the peer's stream limit */

  quic_dgram_t **dq; /* ring of datagrams waiting to be sent */
  uint32_t dq_cap, dq_head, dq_len;
  uint64_t dgram_id;
  uint32_t dgram_size[QUIC_DGRAM_RING];

  uint64_t last_rx; /* when ngtcp2 last accepted a packet (ns) */

  /* ACK hold (opts.ack_hold_ms): since when an ACK is owed for packets
   * with frames the application saw (0: none), and how many such packets
   * it covers; rx_app is set by those frames' callbacks during a read. */
  uint64_t ack_owed_since;
  uint32_t ack_owed_pkts;
  bool rx_app;

  /* counters for quic_conn_stats */
  uint64_t pkts_sent, pkts_recv, bytes_sent, bytes_recv, pkts_lost;
  uint64_t stream_acked, dgram_sent, dgram_recv, dgram_acked, dgram_lost;
  uint64_t dgram_dropped;
  uint64_t rate_start, rate_bytes, delivery_rate;

  /* closing period: the CONNECTION_CLOSE packet, resent on stray input */
  uint8_t *close_pkt;
  size_t close_len;
  struct sockaddr_storage close_dst;
  socklen_t close_dst_len;
  quic_sock_t *close_sock;
  uint32_t close_resends;
};

/* ---- the endpoint (quic.c) ---- */

typedef struct quic_alpn_reg {
  char name[QUIC_ALPN_MAX_LEN + 1];
  quic_handler_t h;
  quic_conn_opts_t opts;
  void *user;
} quic_alpn_reg_t;

struct quic_endpoint {
  uv_loop_t *loop;
  uint8_t public_key[32];
  char peer_id[65];
  tls_cred_t cred;
  WOLFSSL_CTX *client_ctx, *server_ctx;
  quic_endpoint_opts_t opts;
  quic_alpn_reg_t alpns[QUIC_ALPN_MAX_COUNT];
  size_t nalpns;
  char alpn_list[TLS_ALPN_LIST_MAX];
  uint8_t reset_secret[32]; /* stateless reset tokens */

  quic_sock_t *sock, *old_sock;
  qmap_t cids; /* connection ID -> quic_conn_t */
  quic_conn_t *conns;
  uint32_t nconns;
  quic_conn_t *dirty_head, *dirty_tail;
  uv_idle_t idle;
  bool idle_active;

  uint8_t *rxbuf;         /* QUIC_RX_BATCH * QUIC_RX_BUF */
  quic_txbatch_t tx, blk; /* blk: a batch the kernel refused (EAGAIN) */
  bool blocked;

  quic_endpoint_stats_t stats;
  int handles; /* open libuv handles; the last close frees the endpoint */
  bool freeing;
};

/* quic.c */
const quic_alpn_reg_t *quic__alpn_find(const quic_endpoint_t *ep,
                                       const char *alpn);
void quic__ep_mark_dirty(quic_endpoint_t *ep, quic_conn_t *c);
void quic__ep_flush(quic_endpoint_t *ep);
void quic__ep_handle_closed(quic_endpoint_t *ep);
uint64_t quic__now(void);

/* quic_io.c */
int quic__sock_open(quic_endpoint_t *ep, const struct sockaddr_storage *addr,
                    quic_sock_t **out);
void quic__sock_close(quic_sock_t *s);
int quic__tx_init(quic_endpoint_t *ep);
void quic__tx_free(quic_endpoint_t *ep);
/* Room for one packet at the end of the batch (max_udp_payload bytes). */
uint8_t *quic__tx_space(quic_endpoint_t *ep);
/* Adds the packet just written at quic__tx_space() for path. */
void quic__tx_commit(quic_endpoint_t *ep, const ngtcp2_path *path, size_t len);
/* Sends one packet outside the batch (close, version negotiation). */
void quic__tx_one(quic_endpoint_t *ep, quic_sock_t *sock,
                  const struct sockaddr *dst, socklen_t dst_len,
                  const uint8_t *pkt, size_t len);
/* Hands the batch to the kernel; on EAGAIN the rest waits for POLLOUT
 * and ep->blocked is set. */
void quic__tx_flush(quic_endpoint_t *ep);
quic_sock_t *quic__sock_for(quic_endpoint_t *ep, const ngtcp2_addr *local);
/* IPv4 addresses as v4-mapped IPv6 on an IPv6 socket, and back. */
int quic__addr_for_sock(const quic_sock_t *s, const struct sockaddr *in,
                        struct sockaddr_storage *out, socklen_t *out_len);
void quic__addr_unmap(const struct sockaddr *in, struct sockaddr_storage *out);

/* quic_conn.c */
void quic__dispatch(quic_endpoint_t *ep, quic_sock_t *sock,
                    const struct sockaddr *from, socklen_t from_len,
                    const uint8_t *pkt, size_t len);
int quic__conn_dial(quic_endpoint_t *ep, const uint8_t peer[32],
                    const struct sockaddr *addr, const char *alpn,
                    const quic_conn_opts_t *opts, const quic_handler_t *h,
                    void *user, quic_conn_t **out);
/* Writes what is pending (or applies a requested close). */
void quic__conn_flush(quic_conn_t *c);
/* Endpoint shutdown: close, report, free. */
void quic__conn_abort(quic_conn_t *c, const char *why);
void quic__conn_migrate(quic_conn_t *c, quic_sock_t *to);
bool quic__conn_uses_sock(const quic_conn_t *c, const quic_sock_t *s);

/* quic_stream.c */
quic_stream_t *quic__stream_get(const quic_conn_t *c, int64_t sid);
quic_stream_t *quic__stream_new(quic_conn_t *c, int64_t sid, bool local);
void quic__stream_free(quic_conn_t *c, quic_stream_t *s);
void quic__streams_free_all(quic_conn_t *c);
void quic__stream_acked(quic_conn_t *c, quic_stream_t *s, uint64_t offset,
                        uint64_t datalen);
void quic__sendq_add(quic_conn_t *c, quic_stream_t *s);
void quic__sendq_remove(quic_conn_t *c, quic_stream_t *s);
bool quic__streams_drained(const quic_conn_t *c);
/* Writes one packet: datagrams first, then stream data by urgency, else
 * whatever ngtcp2 has (ACKs, retransmissions). Returns its length, 0 when
 * nothing may be sent now, or an ngtcp2 error. */
ngtcp2_ssize quic__write_one(quic_conn_t *c, ngtcp2_path *path,
                             ngtcp2_pkt_info *pi, uint8_t *dst, size_t cap,
                             uint64_t ts);
void quic__dgrams_free(quic_conn_t *c);
void quic__rate_add(quic_conn_t *c, uint64_t bytes);

#endif

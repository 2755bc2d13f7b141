/* UDP sockets of the QUIC endpoint: receive with recvmmsg (+ UDP GRO),
 * send bursts with GSO super-packets or sendmmsg, back off on EAGAIN. */
#include "net/quic_internal.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

static void quic__on_poll(uv_poll_t *h, int status, int events);
static void quic__sock_closed(uv_handle_t *h);
static void quic__recv(quic_sock_t *s);
static void quic__tx_send(quic_endpoint_t *ep, quic_txbatch_t *b);
static void quic__tx_unblock(quic_endpoint_t *ep);
static void quic__poll_set(quic_sock_t *s, int events);

static void quic__setopt(int fd, int level, int name, int val) {
  (void)setsockopt(fd, level, name, &val, sizeof(val));
}

/* Socket options that matter for QUIC: big buffers for bursts, DF set so
 * ngtcp2's path MTU probes are honest, dual stack on IPv6. */
static void quic__sock_tune(quic_sock_t *s, const quic_endpoint_opts_t *o) {
  int fd = s->fd;
  quic__setopt(fd, SOL_SOCKET, SO_RCVBUF, (int)o->socket_buffer);
  quic__setopt(fd, SOL_SOCKET, SO_SNDBUF, (int)o->socket_buffer);
  if (s->local.ss_family == AF_INET6) {
    quic__setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    quic__setopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO);
  }
  quic__setopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO);

  /* GSO: probe by setting a segment size, then clear it so plain sends
   * stay plain; each GSO send passes its size in a cmsg. */
  if (o->batch == QUIC_BATCH_AUTO || o->batch == QUIC_BATCH_GSO) {
    int seg = 1200;
    if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0) {
      s->gso = true;
      quic__setopt(fd, SOL_UDP, UDP_SEGMENT, 0);
    }
  }
  if (!o->no_gro) {
    int one = 1;
    s->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  }
}

int quic__sock_open(quic_endpoint_t *ep, const struct sockaddr_storage *addr,
                    quic_sock_t **out) {
  quic_sock_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return QUIC_ERR_NOMEM;
  s->ep = ep;
  s->fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 IPPROTO_UDP);
  if (s->fd < 0) {
    int e = -errno;
    free(s);
    return e;
  }
  s->local = *addr;
  quic__sock_tune(s, &ep->opts);
  socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  if (bind(s->fd, (const struct sockaddr *)addr, len) != 0) {
    int e = -errno;
    close(s->fd);
    free(s);
    return e;
  }
  s->local_len = sizeof(s->local);
  getsockname(s->fd, (struct sockaddr *)&s->local, &s->local_len);

  int rc = uv_poll_init_socket(ep->loop, &s->poll, s->fd);
  if (rc != 0) {
    close(s->fd);
    free(s);
    return rc;
  }
  s->poll.data = s;
  ep->handles++;
  quic__poll_set(s, UV_READABLE);
  *out = s;
  return 0;
}

void quic__sock_close(quic_sock_t *s) {
  if (s == NULL)
    return;
  quic_endpoint_t *ep = s->ep;
  if (ep->sock == s)
    ep->sock = NULL;
  if (ep->old_sock == s)
    ep->old_sock = NULL;
  if (ep->tx.sock == s)
    ep->tx.npkts = ep->tx.first = ep->tx.used = 0;
  if (ep->blocked && ep->blk.sock == s) {
    ep->blocked = false;
    ep->blk.npkts = ep->blk.first = ep->blk.used = 0;
  }
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, quic__sock_closed);
}

static void quic__sock_closed(uv_handle_t *h) {
  quic_sock_t *s = h->data;
  quic_endpoint_t *ep = s->ep;
  close(s->fd);
  free(s);
  quic__ep_handle_closed(ep);
}

static void quic__poll_set(quic_sock_t *s, int events) {
  if (s->poll_events == events)
    return;
  s->poll_events = events;
  uv_poll_start(&s->poll, events, quic__on_poll);
}

static void quic__on_poll(uv_poll_t *h, int status, int events) {
  quic_sock_t *s = h->data;
  if (status < 0) {
    LOG_WARN("net", "UDP socket poll: %s", uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE)
    quic__tx_unblock(s->ep);
  if ((events & UV_READABLE) && !uv_is_closing((uv_handle_t *)&s->poll))
    quic__recv(s);
}

/* ---- receive ---- */

/* The GRO segment size of a coalesced message, or 0 if it is one packet. */
static size_t quic__gro_size(struct msghdr *m) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int seg;
      memcpy(&seg, CMSG_DATA(c), sizeof(seg));
      return seg > 0 ? (size_t)seg : 0;
    }
  }
  return 0;
}

/* Drains the socket: up to QUIC_RX_ROUNDS recvmmsg calls, each followed
 * by one flush so ACKs and replies for the whole batch leave together. */
static void quic__recv(quic_sock_t *s) {
  quic_endpoint_t *ep = s->ep;
  struct mmsghdr msgs[QUIC_RX_BATCH];
  struct iovec iov[QUIC_RX_BATCH];
  struct sockaddr_storage from[QUIC_RX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[QUIC_RX_BATCH];

  for (int round = 0; round < QUIC_RX_ROUNDS; round++) {
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < QUIC_RX_BATCH; i++) {
      iov[i].iov_base = ep->rxbuf + (size_t)i * QUIC_RX_BUF;
      iov[i].iov_len = QUIC_RX_BUF;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
    }
    int n = recvmmsg(s->fd, msgs, QUIC_RX_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        LOG_DEBUG("net", "recvmmsg: %s", strerror(errno));
      break;
    }
    ep->stats.recv_calls++;
    for (int i = 0; i < n; i++) {
      struct msghdr *m = &msgs[i].msg_hdr;
      size_t len = msgs[i].msg_len;
      if (m->msg_flags & MSG_TRUNC)
        continue;
      size_t seg = quic__gro_size(m);
      if (seg == 0)
        seg = len;
      const uint8_t *base = iov[i].iov_base;
      for (size_t off = 0; off < len && seg > 0; off += seg) {
        size_t plen = len - off < seg ? len - off : seg;
        ep->stats.packets_received++;
        ep->stats.bytes_received += plen;
        quic__dispatch(ep, s, (struct sockaddr *)&from[i], m->msg_namelen,
                       base + off, plen);
      }
    }
    quic__ep_flush(ep);
    if (n < QUIC_RX_BATCH || uv_is_closing((uv_handle_t *)&s->poll))
      break;
  }
}

/* ---- send ---- */

int quic__tx_init(quic_endpoint_t *ep) {
  size_t cap = (size_t)QUIC_TX_MAX_PKTS * ep->opts.max_udp_payload;
  ep->tx.buf = malloc(cap);
  ep->blk.buf = malloc(cap);
  return ep->tx.buf != NULL && ep->blk.buf != NULL ? 0 : QUIC_ERR_NOMEM;
}

void quic__tx_free(quic_endpoint_t *ep) {
  free(ep->tx.buf);
  free(ep->blk.buf);
  ep->tx.buf = ep->blk.buf = NULL;
}

static void quic__batch_reset(quic_txbatch_t *b) {
  b->used = b->npkts = b->first = 0;
  b->sock = NULL;
}

uint8_t *quic__tx_space(quic_endpoint_t *ep) {
  if (ep->tx.npkts == QUIC_TX_MAX_PKTS)
    quic__tx_flush(ep);
  return ep->tx.buf + ep->tx.used;
}

static bool quic__addr_eq(const struct sockaddr *a, socklen_t alen,
                          const struct sockaddr_storage *b, socklen_t blen) {
  return alen == blen && memcmp(a, b, alen) == 0;
}

quic_sock_t *quic__sock_for(quic_endpoint_t *ep, const ngtcp2_addr *local) {
  quic_sock_t *cand[2] = {ep->sock, ep->old_sock};
  for (int i = 0; i < 2; i++) {
    quic_sock_t *s = cand[i];
    if (s != NULL &&
        quic__addr_eq(local->addr, local->addrlen, &s->local, s->local_len))
      return s;
  }
  return NULL;
}

void quic__tx_commit(quic_endpoint_t *ep, const ngtcp2_path *path, size_t len) {
  quic_txbatch_t *b = &ep->tx;
  quic_sock_t *sock = quic__sock_for(ep, &path->local);
  if (sock == NULL || path->remote.addrlen > sizeof(b->dst)) {
    ep->stats.send_errors++; /* its socket is gone; ngtcp2 will see loss */
    return;
  }
  bool same =
      b->npkts == 0 ||
      (b->sock == sock && quic__addr_eq(path->remote.addr, path->remote.addrlen,
                                        &b->dst, b->dst_len));
  if (!same) {
    /* Another destination (path probe, other socket): send the batch
     * first, then start a new one with this packet. Rare, so a copy is
     * fine. */
    uint8_t *tmp = malloc(len);
    if (tmp == NULL)
      return;
    memcpy(tmp, b->buf + b->used, len);
    quic__tx_flush(ep);
    if (ep->blocked) {
      free(tmp);
      return; /* dropped: counts as loss for ngtcp2 */
    }
    memcpy(b->buf, tmp, len);
    free(tmp);
  }
  if (b->npkts == 0) {
    b->sock = sock;
    memcpy(&b->dst, path->remote.addr, path->remote.addrlen);
    b->dst_len = path->remote.addrlen;
  }
  b->off[b->npkts] = b->used;
  b->len[b->npkts] = len;
  b->npkts++;
  b->used += len;
}

void quic__tx_flush(quic_endpoint_t *ep) {
  quic_txbatch_t *b = &ep->tx;
  if (b->npkts == 0)
    return;
  if (ep->blocked || b->sock == NULL) {
    quic__batch_reset(b); /* writers should not get here while blocked */
    return;
  }
  quic__tx_send(ep, b);
  if (b->first < b->npkts) {
    /* The kernel queue is full: park the rest and wait for POLLOUT. */
    quic_txbatch_t tmp = ep->blk;
    ep->blk = *b;
    *b = tmp;
    ep->blocked = true;
    quic__poll_set(ep->blk.sock, UV_READABLE | UV_WRITABLE);
  }
  quic__batch_reset(b);
}

static void quic__tx_unblock(quic_endpoint_t *ep) {
  if (ep->blocked) {
    quic__tx_send(ep, &ep->blk);
    if (ep->blk.first < ep->blk.npkts)
      return;
    ep->blocked = false;
    quic_sock_t *s = ep->blk.sock;
    quic__batch_reset(&ep->blk);
    if (s != NULL)
      quic__poll_set(s, UV_READABLE);
  }
  if (ep->sock != NULL)
    quic__poll_set(ep->sock, UV_READABLE);
  if (ep->old_sock != NULL)
    quic__poll_set(ep->old_sock, UV_READABLE);
  /* Writers stopped while blocked: give every connection a turn. */
  for (quic_conn_t *c = ep->conns; c != NULL; c = c->next)
    quic__ep_mark_dirty(ep, c);
  quic__ep_flush(ep);
}

/* Groups packets [i, ...) into one message: with GSO, a run of equal-size
 * packets (the last may be shorter) up to the kernel's limits. Returns the
 * index after the last packet taken. */
static size_t quic__tx_group(const quic_txbatch_t *b, size_t i, bool gso,
                             size_t *seg) {
  *seg = b->len[i];
  size_t total = b->len[i], j = i + 1;
  if (!gso)
    return j;
  while (j < b->npkts && j - i < QUIC_GSO_MAX_SEGS && b->len[j] <= *seg &&
         total + b->len[j] <= QUIC_GSO_MAX_BYTES) {
    total += b->len[j];
    if (b->len[j++] < *seg)
      break;
  }
  return j;
}

/* Sends packets from b->first on; stops early on EAGAIN (b->first then
 * points at the first unsent packet). Other errors drop the packet: QUIC
 * treats it as lost. */
static void quic__tx_send(quic_endpoint_t *ep, quic_txbatch_t *b) {
  quic_sock_t *s = b->sock;
  struct mmsghdr mm[QUIC_TX_MAX_PKTS];
  struct iovec iov[QUIC_TX_MAX_PKTS];
  size_t end[QUIC_TX_MAX_PKTS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[QUIC_TX_MAX_PKTS];

  while (b->first < b->npkts) {
    bool gso = s->gso && ep->opts.batch != QUIC_BATCH_SENDMMSG &&
               ep->opts.batch != QUIC_BATCH_NONE;
    size_t nmsg = 0;
    memset(mm, 0, sizeof(mm));
    for (size_t i = b->first; i < b->npkts; nmsg++) {
      size_t seg, j = quic__tx_group(b, i, gso, &seg);
      struct msghdr *m = &mm[nmsg].msg_hdr;
      iov[nmsg].iov_base = b->buf + b->off[i];
      iov[nmsg].iov_len = b->off[j - 1] + b->len[j - 1] - b->off[i];
      m->msg_name = &b->dst;
      m->msg_namelen = b->dst_len;
      m->msg_iov = &iov[nmsg];
      m->msg_iovlen = 1;
      if (j - i > 1) {
        uint16_t seg16 = (uint16_t)seg;
        m->msg_control = ctl[nmsg].buf;
        m->msg_controllen = sizeof(ctl[nmsg].buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(m);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(seg16));
        memcpy(CMSG_DATA(c), &seg16, sizeof(seg16));
      }
      end[nmsg] = j;
      i = j;
    }

    int sent = 0;
    if (ep->opts.batch == QUIC_BATCH_NONE) {
      /* The baseline the benchmark compares against: one call a packet. */
      while ((size_t)sent < nmsg && sendmsg(s->fd, &mm[sent].msg_hdr, 0) >= 0) {
        ep->stats.send_calls++;
        sent++;
      }
      if (sent == 0)
        sent = -1;
    } else {
      sent = sendmmsg(s->fd, mm, (unsigned)nmsg, 0);
      ep->stats.send_calls++;
    }
    if (sent < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS)
        return;
      if (e == EINTR)
        continue;
      if (e == EIO && gso) {
        /* The device cannot checksum GSO trains: send them one by one. */
        LOG_WARN("net", "UDP GSO failed (EIO), disabling it");
        s->gso = false;
        continue;
      }
      LOG_DEBUG("net", "send: %s", strerror(e));
      ep->stats.send_errors += end[0] - b->first;
      b->first = end[0];
      continue;
    }
    size_t upto = end[sent - 1];
    for (size_t k = b->first; k < upto; k++)
      ep->stats.bytes_sent += b->len[k];
    ep->stats.packets_sent += upto - b->first;
    b->first = upto;
  }
}

void quic__tx_one(quic_endpoint_t *ep, quic_sock_t *sock,
                  const struct sockaddr *dst, socklen_t dst_len,
                  const uint8_t *pkt, size_t len) {
  if (sock == NULL)
    return;
  if (sendto(sock->fd, pkt, len, 0, dst, dst_len) < 0) {
    ep->stats.send_errors++;
    return;
  }
  ep->stats.send_calls++;
  ep->stats.packets_sent++;
  ep->stats.bytes_sent += len;
}

/* ---- addresses ---- */

int quic__addr_for_sock(const quic_sock_t *s, const struct sockaddr *in,
                        struct sockaddr_storage *out, socklen_t *out_len) {
  memset(out, 0, sizeof(*out));
  if (in->sa_family == s->local.ss_family) {
    *out_len = in->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in);
    if (in->sa_family != AF_INET && in->sa_family != AF_INET6)
      return QUIC_ERR_AF;
    memcpy(out, in, *out_len);
    return 0;
  }
  if (in->sa_family == AF_INET && s->local.ss_family == AF_INET6) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)in;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = v4->sin_port;
    v6->sin6_addr.s6_addr[10] = 0xff;
    v6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
    *out_len = sizeof(*v6);
    return 0;
  }
  if (in->sa_family == AF_INET6 && s->local.ss_family == AF_INET) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)in;
    if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
      return QUIC_ERR_AF;
    quic__addr_unmap(in, out);
    *out_len = sizeof(struct sockaddr_in);
    return 0;
  }
  return QUIC_ERR_AF;
}

void quic__addr_unmap(const struct sockaddr *in, struct sockaddr_storage *out) {
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)in;
  if (in->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof(v4));
    v4.sin_family = AF_INET;
    v4.sin_port = v6->sin6_port;
    memcpy(&v4.sin_addr, &v6->sin6_addr.s6_addr[12], 4);
    memset(out, 0, sizeof(*out));
    memcpy(out, &v4, sizeof(v4));
    return;
  }
  size_t n = in->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in);
  memset(out, 0, sizeof(*out));
  memcpy(out, in, n);
}

/* Tickets (peer ID + addresses in one string) and "ip:port" addresses;
 * see ticket.h for the grammar. */
#include "net/ticket.h"

#include "core/util.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ticket__port(const char *p, size_t len, uint16_t *out,
                        bool allow_zero) {
  if (len == 0 || len > 5 || (len > 1 && p[0] == '0'))
    return -1;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if ((v == 0 && !allow_zero) || v > 65535)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

static int addr__parse(const char *text, size_t len,
                       struct sockaddr_storage *out, bool allow_zero) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *colon;
  size_t host_len;
  uint16_t port;
  memset(out, 0, sizeof(*out));

  if (len > 0 && text[0] == '[') {
    const char *end = memchr(text, ']', len);
    if (!end || end + 1 >= text + len || end[1] != ':')
      return -1;
    host_len = (size_t)(end - text - 1);
    if (host_len == 0 || host_len >= sizeof(host))
      return -1;
    memcpy(host, text + 1, host_len);
    host[host_len] = '\0';
    colon = end + 1;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
      return -1;
    if (ticket__port(colon + 1, len - (size_t)(colon + 1 - text), &port,
                     allow_zero) != 0)
      return -1;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    return 0;
  }

  colon = memchr(text, ':', len);
  if (!colon)
    return -1;
  host_len = (size_t)(colon - text);
  if (host_len == 0 || host_len >= sizeof(host))
    return -1;
  memcpy(host, text, host_len);
  host[host_len] = '\0';
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;
  if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
    return -1;
  if (ticket__port(colon + 1, len - host_len - 1, &port, allow_zero) != 0)
    return -1;
  a4->sin_family = AF_INET;
  a4->sin_port = htons(port);
  return 0;
}

int addr_parse(const char *text, size_t len, struct sockaddr_storage *out) {
  return addr__parse(text, len, out, false);
}

int addr_parse_bind(const char *text, size_t len,
                    struct sockaddr_storage *out) {
  return addr__parse(text, len, out, true);
}

int addr_format(const struct sockaddr *sa, char *out, size_t out_size) {
  char host[INET6_ADDRSTRLEN];
  int n;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
    n = snprintf(out, out_size, "%s:%u", host, ntohs(a4->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
    n = snprintf(out, out_size, "[%s]:%u", host, ntohs(a6->sin6_port));
  } else {
    return -1;
  }
  return (n < 0 || (size_t)n >= out_size) ? -1 : 0;
}

static int ticket__err(char *err, size_t size, const char *msg) {
  if (err)
    snprintf(err, size, "invalid ticket: %s", msg);
  return -1;
}

int ticket_parse(const char *text, ticket_t *out, char *err, size_t err_size) {
  const size_t plen = strlen(TICKET_PREFIX);
  memset(out, 0, sizeof(*out));
  size_t len = strnlen(text, TICKET_MAX_LEN + 1);
  if (len > TICKET_MAX_LEN)
    return ticket__err(err, err_size, "too long");
  if (len < plen || memcmp(text, TICKET_PREFIX, plen) != 0)
    return ticket__err(err, err_size, "must start with \"" TICKET_PREFIX "\"");
  const char *p = text + plen;
  const char *end = text + len;
  const char *at = memchr(p, '@', (size_t)(end - p));
  const char *id_end = at ? at : end;
  if (hex_decode(out->peer, 32, p, (size_t)(id_end - p)) != 0)
    return ticket__err(err, err_size,
                       "peer ID must be 64 lowercase hex characters");
  if (!at)
    return 0;

  p = at + 1;
  for (;;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *a_end = comma ? comma : end;
    if (out->n_addrs == TICKET_ADDRS_MAX)
      return ticket__err(err, err_size, "too many addresses");
    if (addr_parse(p, (size_t)(a_end - p), &out->addrs[out->n_addrs]) != 0)
      return ticket__err(err, err_size,
                         "bad address (want ip:port or [ip6]:port)");
    out->n_addrs++;
    if (!comma)
      return 0;
    p = comma + 1;
  }
}

int ticket_format(const ticket_t *t, char *out, size_t out_size) {
  char id[65];
  hex_encode(id, t->peer, 32);
  int n = snprintf(out, out_size, "%s%s", TICKET_PREFIX, id);
  if (n < 0 || (size_t)n >= out_size)
    return -1;
  size_t len = (size_t)n;
  for (size_t i = 0; i < t->n_addrs; i++) {
    char a[INET6_ADDRSTRLEN + 10];
    if (addr_format((const struct sockaddr *)&t->addrs[i], a, sizeof(a)) != 0)
      return -1;
    n = snprintf(out + len, out_size - len, "%c%s", i == 0 ? '@' : ',', a);
    if (n < 0 || (size_t)n >= out_size - len)
      return -1;
    len += (size_t)n;
  }
  return (int)len;
}

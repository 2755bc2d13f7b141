/* Tickets: one copy-pasteable string carrying a peer ID and its UDP
 * addresses, so two people can add each other.
 *
 *   parley1:<64 lowercase hex peer ID>[@<addr>[,<addr>]...]
 *   addr = <IPv4>:<port> | [<IPv6>]:<port>      (port 1..65535)
 *
 * Parsing is strict: the prefix, the exact ID length, every address and the
 * count (at most TICKET_ADDRS_MAX) are checked; nothing trailing is allowed.
 * Pure functions; any thread.
 */
#ifndef PARLEY_NET_TICKET_H
#define PARLEY_NET_TICKET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TICKET_PREFIX "parley1:"
#define TICKET_ADDRS_MAX 8
#define TICKET_MAX_LEN 640

typedef struct ticket {
  uint8_t peer[32];
  size_t n_addrs;
  struct sockaddr_storage addrs[TICKET_ADDRS_MAX];
} ticket_t;

/* Returns 0 or -1 with a reason in err. */
int ticket_parse(const char *text, ticket_t *out, char *err, size_t err_size);
/* Writes the ticket (NUL-terminated) into out. Returns length or -1. */
int ticket_format(const ticket_t *t, char *out, size_t out_size);

/* "ip:port" / "[ip6]:port" <-> sockaddr. Return 0 or -1. */
int addr_parse(const char *text, size_t len, struct sockaddr_storage *out);
int addr_format(const struct sockaddr *sa, char *out, size_t out_size);
/* Like addr_parse, but port 0 ("any free port") is allowed: for binding. */
int addr_parse_bind(const char *text, size_t len, struct sockaddr_storage *out);

#endif

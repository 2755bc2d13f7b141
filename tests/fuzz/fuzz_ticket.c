/* Fuzzes the ticket parser: any bytes, as a NUL-terminated string. A ticket
 * that parses must format back to a ticket that parses to the same value. */
#include "net/ticket.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  ticket_t t, u;
  char out[TICKET_MAX_LEN * 2];
  if (ticket_parse(text, &t, NULL, 0) == 0) {
    if (ticket_format(&t, out, sizeof(out)) < 0 ||
        ticket_parse(out, &u, NULL, 0) != 0 ||
        memcmp(t.peer, u.peer, 32) != 0 || t.n_addrs != u.n_addrs)
      abort();
  }
  free(text);
  return 0;
}

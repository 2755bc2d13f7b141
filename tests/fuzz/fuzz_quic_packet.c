/* Fuzzes the endpoint's packet input: each input is one UDP datagram
 * from a fixed address, fed through the same dispatch as the socket
 * (connection ID lookup, Initial acceptance, version negotiation, then
 * ngtcp2's parser and decryption). The endpoint persists across inputs,
 * so connections that an input created see later inputs too. */
#include "net/quic_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/log.h"

static void fuzz_quiet(quic_conn_t *c, void *u) {
  (void)c;
  (void)u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uv_loop_t loop;
  static quic_endpoint_t *ep;
  if (ep == NULL) {
    identity_t id;
    if (sodium_init() < 0 || uv_loop_init(&loop) != 0)
      abort();
    log_set_level(LOG_LEVEL_ERROR);
    memset(&id, 0, sizeof(id));
    crypto_sign_keypair(id.public_key, id.secret_key);
    quic_handler_t h = {.on_connected = fuzz_quiet};
    if (quic_endpoint_new(&loop, &id, "127.0.0.1:0", NULL, &ep, NULL, 0) != 0 ||
        quic_endpoint_register_alpn(ep, QUIC_ALPN_DM, &h, NULL, NULL) != 0)
      abort();
  }
  struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(9)};
  from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (size > 0)
    quic__dispatch(ep, ep->sock, (struct sockaddr *)&from, sizeof(from), data,
                   size);
  quic__ep_flush(ep);
  uv_run(&loop, UV_RUN_NOWAIT);
  return 0;
}

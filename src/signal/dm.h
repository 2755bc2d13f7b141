/* The DM transport: CallSignals between peers over QUIC connections on the
 * DM ALPN ("iroh-social/dm/1"), end-to-end encrypted by signal/signal.h.
 *
 * Owns one record per peer: the connection in use (dialed by us or accepted
 * from the peer, reused while it is open), and the queue of envelopes to
 * that peer with their state (queued, on a stream waiting for the ack, held
 * for a session change). Each envelope travels on its own bidirectional
 * stream: [u32 length][envelope] FIN one way, the 6-byte ack FIN back
 * (signal/envelope.h). It retries what the ack says to retry, re-seals
 * after session changes, and reports every send exactly once through
 * on_send_done: delivered, or not (unreachable: no address answered the
 * QUIC handshake; or refused; or no ack within DM_SEND_DEADLINE_MS).
 *
 * Threads: loop thread only.
 */
#ifndef PARLEY_SIGNAL_DM_H
#define PARLEY_SIGNAL_DM_H

#include "crypto/identity.h"
#include "net/quic.h"
#include "signal/callsignal.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define DM_SEND_DEADLINE_MS 10000
#define DM_HANDSHAKE_TIMEOUT_MS 3000
#define DM_ADDRS_MAX 8

typedef struct dm dm_t;

typedef struct dm_ops {
  /* A CallSignal arrived from peer (authenticated by QUIC, decrypted). */
  void (*on_signal)(void *ctx, const uint8_t peer[32], const callsignal_t *cs);
  /* The outcome of dm_send(token). */
  void (*on_send_done)(void *ctx, uint64_t token, bool delivered);
  /* Where peer can be reached: fills up to max addresses, returns how many
   * (0: unknown). */
  size_t (*peer_addrs)(void *ctx, const uint8_t peer[32],
                       struct sockaddr_storage *out, size_t max);
} dm_ops_t;

/* Registers the DM ALPN on ep. Returns NULL on failure (logged). */
dm_t *dm_new(uv_loop_t *loop, quic_endpoint_t *ep, store_t *store,
             const identity_t *me, const dm_ops_t *ops, void *ctx);
/* Shutting down takes two steps around quic_endpoint_free(), which reports
 * every connection's close: dm_close() first fails every pending send
 * (on_send_done(false)) and makes the callbacks inert; dm_free() after it
 * releases the memory (the last part once the loop has run). */
void dm_close(dm_t *dm);
void dm_free(dm_t *dm);

/* Envelopes still waiting for their ack (for a graceful shutdown). */
size_t dm_pending(const dm_t *dm);

/* The address of the connection we have with peer (dialed or accepted),
 * for the media link to dial. Returns 0 or -ENOENT. */
int dm_peer_addr(dm_t *dm, const uint8_t peer[32],
                 struct sockaddr_storage *out);

/* Seals cs for peer and queues it; the outcome comes through on_send_done
 * with token. Returns 0, or a negative code if nothing will be tried (no
 * address known and no open connection: -EHOSTUNREACH; sealing failed). */
int dm_send(dm_t *dm, const uint8_t peer[32], const callsignal_t *cs,
            uint64_t token);

#endif

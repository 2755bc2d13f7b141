/* Test helpers for the QUIC endpoint: identities, endpoints on loopback,
 * running the loop until something happens, and a recorder handler that
 * notes every callback and can echo, hash and send back data. */
#ifndef PARLEY_TESTS_NET_QUIC_HARNESS_H
#define PARLEY_TESTS_NET_QUIC_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <uv.h>

#include "crypto/identity.h"
#include "net/quic.h"

/* Fresh Ed25519 identity straight from libsodium. */
void h_identity(identity_t *id);

/* An endpoint bound to 127.0.0.1:0 (or addr), aborting the test on error. */
quic_endpoint_t *h_endpoint(uv_loop_t *loop, const identity_t *id,
                            const char *addr, const quic_endpoint_opts_t *o);
/* The endpoint's address as 127.0.0.1:port (for dialing). */
void h_endpoint_addr(quic_endpoint_t *ep, struct sockaddr_storage *out);

/* Runs the loop until cond(arg) holds or timeout_ms passes. Returns
 * whether cond held. */
bool h_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg,
                 unsigned timeout_ms);
/* Runs the loop for ms milliseconds. */
void h_run_for(uv_loop_t *loop, unsigned ms);
/* Frees the endpoints (NULL allowed) and runs the loop until every handle
 * has closed, then closes the loop; asserts nothing leaked. */
void h_teardown(uv_loop_t *loop, quic_endpoint_t *a, quic_endpoint_t *b);

#define H_MAX_DGRAMS 256

/* Everything a connection did, as seen by one side. */
typedef struct rec {
  quic_conn_t *conn;
  int connected, closed;
  quic_close_info_t close;
  char close_error[256];
  int stream_opens, stream_fins, stream_resets, writables, acked;
  int64_t last_stream;
  uint64_t reset_code; /* of the latest reset, either direction */
  enum quic_stream_dir reset_dir;
  int resets_recv, resets_send; /* by direction */
  int64_t reset_sid_recv, reset_sid_send;
  uint64_t reset_code_recv, reset_code_send;
  /* stream data: counted, hashed, and the first bytes kept */
  uint64_t stream_bytes;
  crypto_generichash_state hash;
  uint8_t digest[32];
  bool digest_done;
  uint8_t head[64];
  size_t head_len;
  /* behaviours */
  bool echo_datagrams; /* send every datagram back */
  bool reply_digest;   /* on FIN: write the 32-byte hash back + FIN */
  /* datagrams received */
  int ndgrams;
  size_t dgram_len[H_MAX_DGRAMS];
  uint8_t dgram_first[H_MAX_DGRAMS][8];
  /* bulk sender (see h_send_start) */
  const uint8_t *send_data;
  size_t send_len, send_off, send_chunk;
  int64_t send_sid;
  int send_again; /* QUIC_ERR_AGAIN seen */
  bool send_done;
} rec_t;

void h_rec_init(rec_t *r);
/* A handler whose every callback records into the rec_t user pointer. */
extern const quic_handler_t h_recorder;

/* Writes r->send_data on stream sid in chunks, honouring back-pressure:
 * continues from on_stream_writable until all is queued with FIN. */
void h_send_start(rec_t *r, quic_conn_t *c, int64_t sid, const uint8_t *data,
                  size_t len, size_t chunk);

/* Common conditions for h_run_until. */
bool h_cond_connected(void *rec);
bool h_cond_closed(void *rec);
bool h_cond_digest(void *rec);

#endif

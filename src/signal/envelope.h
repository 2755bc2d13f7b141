/* The bytes of signaling on the DM ALPN: one encrypted envelope per QUIC
 * bidirectional stream, its u32 length prefix, and the receiver's ack.
 * docs/protocol.md describes every byte; this is the one place that parses
 * them.
 *
 * Envelope v1 (integers big-endian):
 *   off len
 *     0   1  version = 1
 *     1   1  type: 1 = initial (the session can be set up from it),
 *                  2 = normal
 *     2  32  sender's Ed25519 identity public key
 *    34   4  session epoch (>= 1)
 *    38   1  session initiator: 0 = the sender, 1 = the recipient
 *                               (an initial envelope always says 0)
 *    39  32  initiator's ephemeral X25519 public key (the session's EK)
 *    71  32  ratchet header: sender's ratchet X25519 public key
 *   103   4  ratchet header: PN, previous sending chain length (0 in an
 *                            initial envelope)
 *   107   4  ratchet header: N, message number
 *   111  24  XChaCha20-Poly1305 nonce
 *   135   4  ciphertext length L (16 .. ENVELOPE_MAX - 139)
 *   139   L  ciphertext (plaintext + 16-byte tag)
 * Nothing may follow the ciphertext. The AEAD's associated data is bytes
 * 0..138 followed by the recipient's Ed25519 public key.
 *
 * Stream: [u32 length (1 .. ENVELOPE_MAX)][envelope], then FIN. The receiver
 * answers with one ack and FIN:
 *   [u8 version = 1][u8 status (enum envelope_ack_status)][u32 reason]
 * where reason is the receiver's error code negated (0 when status is OK),
 * for logs only.
 *
 * Pure functions, no state: any thread may call them.
 */
#ifndef PARLEY_SIGNAL_ENVELOPE_H
#define PARLEY_SIGNAL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_VERSION 1
#define ENVELOPE_HEADER_LEN 139
#define ENVELOPE_TAG_LEN 16
#define ENVELOPE_NONCE_LEN 24
#define ENVELOPE_MAX 65536 /* whole envelope, = largest length prefix */
#define ENVELOPE_CT_MAX (ENVELOPE_MAX - ENVELOPE_HEADER_LEN)
#define ENVELOPE_PT_MAX (ENVELOPE_CT_MAX - ENVELOPE_TAG_LEN)
#define ENVELOPE_PREFIX_LEN 4
#define ENVELOPE_ACK_LEN 6
#define ENVELOPE_ACK_VERSION 1

enum envelope_type {
  ENVELOPE_INITIAL = 1,
  ENVELOPE_NORMAL = 2,
};

enum envelope_role {
  ENVELOPE_ROLE_SENDER = 0,    /* the sender initiated the session */
  ENVELOPE_ROLE_RECIPIENT = 1, /* the recipient did */
};

/* Errors, -1..-19; every one has its own reason string. */
enum envelope_err {
  ENVELOPE_ERR_EMPTY = -1,
  ENVELOPE_ERR_TOO_LONG = -2,
  ENVELOPE_ERR_VERSION = -3,
  ENVELOPE_ERR_TYPE = -4,
  ENVELOPE_ERR_SHORT_HEADER = -5,
  ENVELOPE_ERR_EPOCH = -6,
  ENVELOPE_ERR_ROLE = -7,
  ENVELOPE_ERR_INITIAL_ROLE = -8,
  ENVELOPE_ERR_INITIAL_PN = -9,
  ENVELOPE_ERR_CT_SHORT = -10,
  ENVELOPE_ERR_CT_LONG = -11,
  ENVELOPE_ERR_TRUNCATED = -12,
  ENVELOPE_ERR_TRAILING = -13,
  ENVELOPE_ERR_PREFIX_ZERO = -14,
  ENVELOPE_ERR_PREFIX_LONG = -15,
  ENVELOPE_ERR_ACK_LEN = -16,
  ENVELOPE_ERR_ACK_VERSION = -17,
  ENVELOPE_ERR_ACK_STATUS = -18,
};

/* What the sender of an envelope should do next. */
enum envelope_ack_status {
  /* Decrypted and accepted. */
  ENVELOPE_ACK_OK = 0,
  /* Malformed or not authentic: never re-send this envelope. */
  ENVELOPE_ACK_REJECTED = 1,
  /* Sealed under a session the receiver cannot use (an older one, or one
   * it does not have). The receiver is bringing the sender onto its own
   * session: re-seal the plaintext and send it again once the sender's
   * session differs from the one this envelope was sealed under. */
  ENVELOPE_ACK_RETRY = 2,
  /* The receiver failed locally (storage): send the same envelope later. */
  ENVELOPE_ACK_FAILED = 3,
};

/* A parsed envelope. Pointers point into the buffer given to the parser. */
typedef struct envelope {
  uint8_t type;              /* enum envelope_type */
  const uint8_t *sender;     /* 32 bytes */
  uint32_t epoch;            /* >= 1 */
  uint8_t role;              /* enum envelope_role */
  const uint8_t *ek;         /* 32 bytes */
  const uint8_t *dh;         /* 32 bytes */
  uint32_t pn, n;            /* ratchet header */
  const uint8_t *nonce;      /* ENVELOPE_NONCE_LEN bytes */
  const uint8_t *ciphertext; /* ct_len bytes */
  uint32_t ct_len;           /* >= ENVELOPE_TAG_LEN */
  const uint8_t *header;     /* ENVELOPE_HEADER_LEN bytes (the AD's start) */
} envelope_t;

/* Fields of an envelope to write; ct_len is the ciphertext's length. */
typedef struct envelope_fields {
  uint8_t type;
  const uint8_t *sender, *ek, *dh, *nonce;
  uint32_t epoch;
  uint8_t role;
  uint32_t pn, n;
  uint32_t ct_len;
} envelope_fields_t;

/* Parses and bounds-checks one whole envelope. Returns 0 or an
 * ENVELOPE_ERR_*; on error *e is unspecified. */
int envelope_parse(envelope_t *e, const uint8_t *buf, size_t len);

/* Writes the ENVELOPE_HEADER_LEN header bytes; the ciphertext goes after.
 * Returns 0, or the error the parser would give (invalid type, role, epoch,
 * pn of an initial envelope, ct_len out of range). */
int envelope_write_header(uint8_t out[ENVELOPE_HEADER_LEN],
                          const envelope_fields_t *f);

/* The stream's length prefix: encode checks 1 <= len <= ENVELOPE_MAX;
 * decode reads 4 bytes. Both return 0 or ENVELOPE_ERR_PREFIX_*. */
int envelope_prefix_encode(uint8_t out[ENVELOPE_PREFIX_LEN], size_t len);
int envelope_prefix_decode(const uint8_t in[ENVELOPE_PREFIX_LEN],
                           uint32_t *len);

/* The ack. encode: status must be a known status (else
 * ENVELOPE_ERR_ACK_STATUS). decode: exactly ENVELOPE_ACK_LEN bytes, known
 * version and status. Return 0 or ENVELOPE_ERR_ACK_*. */
int envelope_ack_encode(uint8_t out[ENVELOPE_ACK_LEN],
                        enum envelope_ack_status status, uint32_t reason);
int envelope_ack_decode(const uint8_t *in, size_t len,
                        enum envelope_ack_status *status, uint32_t *reason);

/* Static reason for an ENVELOPE_ERR_* ("unknown error" otherwise). */
const char *envelope_strerror(int err);

#endif

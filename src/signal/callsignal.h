/* CallSignal, the seed's call-signaling messages, as the bytes carried
 * inside an envelope's ciphertext. docs/protocol.md describes the encoding;
 * this is the one place that parses it.
 *
 * v1 (integers big-endian):
 *   u8 version = 1, u8 kind, u8 call_id length (1..64), call_id
 *   Offer (1):        u8 audio_codec, u8 video, u8 transport, 32-byte secret
 *   Answer (2):       u8 audio_codec, u8 video, u8 transport
 *   Reject (3):       u8 reason length (0..128), reason
 *   End (4):          nothing
 *   IceCandidate (5): u16 candidate length (1..512), candidate (reserved:
 *                     decoded, but nothing sends it)
 * call_id is printable ASCII without space (0x21..0x7e), reason and
 * candidate printable ASCII with space (0x20..0x7e). audio_codec: 1 Opus48k,
 * 2 Opus24k; video: 0 | 1; transport: 1 datagram, 2 stream. Nothing may
 * follow the last field.
 *
 * The Answer carries no secret: the caller's Offer secret is the call's one
 * secret (both ends hold it once the Offer is decrypted), and the media
 * connection proves knowledge of it.
 *
 * Pure functions, no state: any thread may call them.
 */
#ifndef PARLEY_SIGNAL_CALLSIGNAL_H
#define PARLEY_SIGNAL_CALLSIGNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CALLSIGNAL_VERSION 1
#define CALLSIGNAL_CALL_ID_MAX 64
#define CALLSIGNAL_REASON_MAX 128
#define CALLSIGNAL_CANDIDATE_MAX 512
#define CALLSIGNAL_SECRET_LEN 32
/* Longest encoding (an IceCandidate). */
#define CALLSIGNAL_ENCODED_MAX                                                 \
  (3 + CALLSIGNAL_CALL_ID_MAX + 2 + CALLSIGNAL_CANDIDATE_MAX)

enum callsignal_kind {
  CALLSIGNAL_OFFER = 1,
  CALLSIGNAL_ANSWER = 2,
  CALLSIGNAL_REJECT = 3,
  CALLSIGNAL_END = 4,
  CALLSIGNAL_ICE_CANDIDATE = 5,
};

enum audio_codec {
  AUDIO_CODEC_OPUS48K = 1,
  AUDIO_CODEC_OPUS24K = 2,
};

enum media_transport {
  MEDIA_TRANSPORT_DATAGRAM = 1,
  MEDIA_TRANSPORT_STREAM = 2,
};

/* Errors, -60..-79, each with its own reason string. */
enum callsignal_err {
  CALLSIGNAL_ERR_EMPTY = -60,
  CALLSIGNAL_ERR_VERSION = -61,
  CALLSIGNAL_ERR_KIND = -62,
  CALLSIGNAL_ERR_TRUNCATED = -63,
  CALLSIGNAL_ERR_CALL_ID_LEN = -64,
  CALLSIGNAL_ERR_CALL_ID_CHAR = -65,
  CALLSIGNAL_ERR_CODEC = -66,
  CALLSIGNAL_ERR_VIDEO = -67,
  CALLSIGNAL_ERR_TRANSPORT = -68,
  CALLSIGNAL_ERR_REASON_LEN = -69,
  CALLSIGNAL_ERR_REASON_CHAR = -70,
  CALLSIGNAL_ERR_CANDIDATE_LEN = -71,
  CALLSIGNAL_ERR_CANDIDATE_CHAR = -72,
  CALLSIGNAL_ERR_TRAILING = -73,
  CALLSIGNAL_ERR_BUFFER = -74,
};

/* Strings are NUL-terminated; fields a kind does not have are ignored by
 * the encoder and zeroed by the decoder. */
typedef struct callsignal {
  enum callsignal_kind kind;
  char call_id[CALLSIGNAL_CALL_ID_MAX + 1];
  enum audio_codec audio_codec;                 /* Offer, Answer */
  bool video;                                   /* Offer, Answer */
  enum media_transport transport;               /* Offer, Answer */
  uint8_t call_secret[CALLSIGNAL_SECRET_LEN];   /* Offer */
  char reason[CALLSIGNAL_REASON_MAX + 1];       /* Reject */
  char candidate[CALLSIGNAL_CANDIDATE_MAX + 1]; /* IceCandidate */
} callsignal_t;

/* Encodes cs into buf (cap bytes; CALLSIGNAL_ENCODED_MAX always suffices).
 * Returns 0 with *len set, CALLSIGNAL_ERR_BUFFER, or the error the decoder
 * would give for an invalid field (kind, call_id, codec, transport, reason,
 * candidate): nothing undecodable is ever written. */
int callsignal_encode(const callsignal_t *cs, uint8_t *buf, size_t cap,
                      size_t *len);

/* Decodes exactly len bytes. Returns 0 or a CALLSIGNAL_ERR_*; on error *cs
 * is zeroed. */
int callsignal_decode(callsignal_t *cs, const uint8_t *buf, size_t len);

/* Static reason for a CALLSIGNAL_ERR_* ("unknown error" otherwise). */
const char *callsignal_strerror(int err);

const char *callsignal_kind_name(enum callsignal_kind kind);

#endif

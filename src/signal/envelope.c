/* Envelope, length prefix and ack of the DM ALPN: the single parser of
 * these bytes and their writers; see envelope.h for the layout. */
#include "signal/envelope.h"

#include "core/util.h"

#include <string.h>

/* Offsets within the header. */
enum {
  ENV__VERSION = 0,
  ENV__TYPE = 1,
  ENV__SENDER = 2,
  ENV__EPOCH = 34,
  ENV__ROLE = 38,
  ENV__EK = 39,
  ENV__DH = 71,
  ENV__PN = 103,
  ENV__N = 107,
  ENV__NONCE = 111,
  ENV__CT_LEN = 135,
};

static int envelope__check_fields(uint8_t type, uint32_t epoch, uint8_t role,
                                  uint32_t pn);

int envelope_parse(envelope_t *e, const uint8_t *buf, size_t len) {
  if (len == 0)
    return ENVELOPE_ERR_EMPTY;
  if (len > ENVELOPE_MAX)
    return ENVELOPE_ERR_TOO_LONG;
  if (buf[ENV__VERSION] != ENVELOPE_VERSION)
    return ENVELOPE_ERR_VERSION;
  if (len < ENVELOPE_HEADER_LEN)
    return ENVELOPE_ERR_SHORT_HEADER;
  e->type = buf[ENV__TYPE];
  e->epoch = be32_get(buf + ENV__EPOCH);
  e->role = buf[ENV__ROLE];
  e->pn = be32_get(buf + ENV__PN);
  e->n = be32_get(buf + ENV__N);
  int rc = envelope__check_fields(e->type, e->epoch, e->role, e->pn);
  if (rc != 0)
    return rc;
  e->ct_len = be32_get(buf + ENV__CT_LEN);
  if (e->ct_len < ENVELOPE_TAG_LEN)
    return ENVELOPE_ERR_CT_SHORT;
  if (e->ct_len > ENVELOPE_CT_MAX)
    return ENVELOPE_ERR_CT_LONG;
  if (e->ct_len > len - ENVELOPE_HEADER_LEN)
    return ENVELOPE_ERR_TRUNCATED;
  if (e->ct_len < len - ENVELOPE_HEADER_LEN)
    return ENVELOPE_ERR_TRAILING;
  e->sender = buf + ENV__SENDER;
  e->ek = buf + ENV__EK;
  e->dh = buf + ENV__DH;
  e->nonce = buf + ENV__NONCE;
  e->ciphertext = buf + ENVELOPE_HEADER_LEN;
  e->header = buf;
  return 0;
}

int envelope_write_header(uint8_t out[ENVELOPE_HEADER_LEN],
                          const envelope_fields_t *f) {
  int rc = envelope__check_fields(f->type, f->epoch, f->role, f->pn);
  if (rc != 0)
    return rc;
  if (f->ct_len < ENVELOPE_TAG_LEN)
    return ENVELOPE_ERR_CT_SHORT;
  if (f->ct_len > ENVELOPE_CT_MAX)
    return ENVELOPE_ERR_CT_LONG;
  out[ENV__VERSION] = ENVELOPE_VERSION;
  out[ENV__TYPE] = f->type;
  memcpy(out + ENV__SENDER, f->sender, 32);
  be32_put(out + ENV__EPOCH, f->epoch);
  out[ENV__ROLE] = f->role;
  memcpy(out + ENV__EK, f->ek, 32);
  memcpy(out + ENV__DH, f->dh, 32);
  be32_put(out + ENV__PN, f->pn);
  be32_put(out + ENV__N, f->n);
  memcpy(out + ENV__NONCE, f->nonce, ENVELOPE_NONCE_LEN);
  be32_put(out + ENV__CT_LEN, f->ct_len);
  return 0;
}

/* The rules shared by the parser and the writer. */
static int envelope__check_fields(uint8_t type, uint32_t epoch, uint8_t role,
                                  uint32_t pn) {
  if (type != ENVELOPE_INITIAL && type != ENVELOPE_NORMAL)
    return ENVELOPE_ERR_TYPE;
  if (epoch == 0)
    return ENVELOPE_ERR_EPOCH;
  if (role != ENVELOPE_ROLE_SENDER && role != ENVELOPE_ROLE_RECIPIENT)
    return ENVELOPE_ERR_ROLE;
  /* Only the initiator sends initial envelopes, and only before its first
   * DH ratchet step, so its previous chain is empty. */
  if (type == ENVELOPE_INITIAL && role != ENVELOPE_ROLE_SENDER)
    return ENVELOPE_ERR_INITIAL_ROLE;
  if (type == ENVELOPE_INITIAL && pn != 0)
    return ENVELOPE_ERR_INITIAL_PN;
  return 0;
}

/* ---- stream framing ---- */

int envelope_prefix_encode(uint8_t out[ENVELOPE_PREFIX_LEN], size_t len) {
  if (len == 0)
    return ENVELOPE_ERR_PREFIX_ZERO;
  if (len > ENVELOPE_MAX)
    return ENVELOPE_ERR_PREFIX_LONG;
  be32_put(out, (uint32_t)len);
  return 0;
}

int envelope_prefix_decode(const uint8_t in[ENVELOPE_PREFIX_LEN],
                           uint32_t *len) {
  uint32_t v = be32_get(in);
  if (v == 0)
    return ENVELOPE_ERR_PREFIX_ZERO;
  if (v > ENVELOPE_MAX)
    return ENVELOPE_ERR_PREFIX_LONG;
  *len = v;
  return 0;
}

int envelope_ack_encode(uint8_t out[ENVELOPE_ACK_LEN],
                        enum envelope_ack_status status, uint32_t reason) {
  if ((unsigned)status > ENVELOPE_ACK_FAILED)
    return ENVELOPE_ERR_ACK_STATUS;
  out[0] = ENVELOPE_ACK_VERSION;
  out[1] = (uint8_t)status;
  be32_put(out + 2, reason);
  return 0;
}

int envelope_ack_decode(const uint8_t *in, size_t len,
                        enum envelope_ack_status *status, uint32_t *reason) {
  if (len != ENVELOPE_ACK_LEN)
    return ENVELOPE_ERR_ACK_LEN;
  if (in[0] != ENVELOPE_ACK_VERSION)
    return ENVELOPE_ERR_ACK_VERSION;
  if (in[1] > ENVELOPE_ACK_FAILED)
    return ENVELOPE_ERR_ACK_STATUS;
  *status = (enum envelope_ack_status)in[1];
  *reason = be32_get(in + 2);
  return 0;
}

const char *envelope_strerror(int err) {
  switch (err) {
  case ENVELOPE_ERR_EMPTY:
    return "empty envelope";
  case ENVELOPE_ERR_TOO_LONG:
    return "envelope longer than 65536 bytes";
  case ENVELOPE_ERR_VERSION:
    return "unsupported envelope version";
  case ENVELOPE_ERR_TYPE:
    return "unknown envelope type";
  case ENVELOPE_ERR_SHORT_HEADER:
    return "envelope header truncated";
  case ENVELOPE_ERR_EPOCH:
    return "session epoch 0";
  case ENVELOPE_ERR_ROLE:
    return "unknown session initiator role";
  case ENVELOPE_ERR_INITIAL_ROLE:
    return "initial envelope not sent by the session's initiator";
  case ENVELOPE_ERR_INITIAL_PN:
    return "initial envelope with a previous chain length";
  case ENVELOPE_ERR_CT_SHORT:
    return "ciphertext shorter than its tag";
  case ENVELOPE_ERR_CT_LONG:
    return "ciphertext length above the maximum";
  case ENVELOPE_ERR_TRUNCATED:
    return "ciphertext truncated";
  case ENVELOPE_ERR_TRAILING:
    return "trailing bytes after the ciphertext";
  case ENVELOPE_ERR_PREFIX_ZERO:
    return "zero length prefix";
  case ENVELOPE_ERR_PREFIX_LONG:
    return "length prefix above 65536";
  case ENVELOPE_ERR_ACK_LEN:
    return "ack is not 6 bytes";
  case ENVELOPE_ERR_ACK_VERSION:
    return "unsupported ack version";
  case ENVELOPE_ERR_ACK_STATUS:
    return "unknown ack status";
  default:
    return "unknown error";
  }
}

/* The LMDB store: one environment per data directory holding parley's tables.
 *
 *   call_history  key: [u64 BE timestamp][call_id bytes]  value: CallRecord v1
 *   contacts      key: peer ID (32 raw bytes)            value: Contact v1
 *   sessions      key: peer ID (32 raw bytes)            value: opaque blob
 *                 (ratchet state, encrypted by its owner before it gets here)
 *
 * Every value starts with a version byte so the encoding can evolve; decoders
 * reject unknown versions and any length that does not add up.
 *
 * Threads: only the event loop thread may call these functions (LMDB write
 * transactions and the single store handle belong to the loop). Every write
 * is one committed transaction: a crash loses at most the write in flight.
 */
#ifndef PARLEY_STORE_STORE_H
#define PARLEY_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_CALL_ID_MAX 64 /* bytes, without NUL */
#define STORE_PEER_ID_LEN 64 /* hex characters */
#define STORE_NAME_MAX 128   /* contact name, bytes without NUL */
#define STORE_ADDRS_MAX 8    /* addresses per contact */
#define STORE_ADDR_MAX 64    /* "ip:port" text, bytes without NUL */

typedef struct store store_t;

enum call_direction { CALL_DIR_INCOMING = 0, CALL_DIR_OUTGOING = 1 };

enum call_end_reason {
  CALL_END_COMPLETED = 0,
  CALL_END_REJECTED = 1,
  CALL_END_MISSED = 2,
  CALL_END_FAILED = 3,
};

/* The seed's CallRecord. timestamp is Unix seconds when the call started. */
typedef struct call_record {
  char call_id[STORE_CALL_ID_MAX + 1];
  char peer[STORE_PEER_ID_LEN + 1];
  enum call_direction direction;
  uint64_t duration_seconds;
  bool had_video;
  uint64_t timestamp;
  enum call_end_reason ended_reason;
} call_record_t;

typedef struct contact {
  char peer[STORE_PEER_ID_LEN + 1];
  char name[STORE_NAME_MAX + 1];
  size_t n_addrs;
  char addrs[STORE_ADDRS_MAX][STORE_ADDR_MAX + 1];
} contact_t;

/* A position in call_history: records strictly older than (timestamp,
 * call_id) in key order. call_id "" means "older than timestamp". */
typedef struct history_cursor {
  uint64_t timestamp;
  char call_id[STORE_CALL_ID_MAX + 1];
} history_cursor_t;

/* Opens (creating if needed) the environment in directory dir (which must
 * exist). Returns 0 or a negative errno / LMDB error mapped to -EIO; on
 * failure *out is NULL and a message has been logged. */
int store_open(store_t **out, const char *dir);
/* Closes the environment; NULL is a no-op. */
void store_close(store_t *s);

/* Inserts or replaces one record. Returns 0, -EINVAL for a record that
 * cannot be encoded (call_id empty, over 64 bytes or not printable ASCII
 * without spaces; bad peer), or -EIO. */
int store_history_put(store_t *s, const call_record_t *rec);

/* Newest first: up to limit records strictly older than *before (NULL: from
 * the newest); out must hold limit records. A cursor walk from the start
 * position, never a scan.
 * Returns the number of records written to out (0..limit), or -EIO. */
int store_history_page(store_t *s, const history_cursor_t *before, size_t limit,
                       call_record_t *out);

/* Number of records in call_history (O(1), from LMDB's stats). */
long store_history_count(store_t *s);

/* Contacts, keyed by peer ID. put replaces. get/remove return -ENOENT if the
 * peer is unknown; all three return -EINVAL for a peer that is not 64
 * lowercase hex. list calls fn for each contact in peer ID order and stops
 * early if fn returns non-zero; fn may call back into the store (even remove
 * the contact it was given). list returns 0 or -EIO. */
int store_contact_put(store_t *s, const contact_t *c);
int store_contact_get(store_t *s, const char *peer, contact_t *out);
int store_contact_remove(store_t *s, const char *peer);
int store_contact_list(store_t *s, int (*fn)(const contact_t *, void *),
                       void *arg);

/* Opaque per-peer blobs for the ratchet sessions of a later issue.
 * get returns the length (copied up to cap bytes into buf), or -ENOENT. */
int store_session_put(store_t *s, const uint8_t peer[32], const uint8_t *blob,
                      size_t len);
long store_session_get(store_t *s, const uint8_t peer[32], uint8_t *buf,
                       size_t cap);
int store_session_remove(store_t *s, const uint8_t peer[32]);

/* Encoders/decoders of the table values, exposed for tests and fuzzing.
 * encode returns the length written (buf must hold STORE_*_ENCODED_MAX) or
 * -EINVAL; decode returns 0 or -EINVAL for anything malformed. */
#define STORE_RECORD_ENCODED_MAX 256
#define STORE_CONTACT_ENCODED_MAX 1024
int store_record_encode(const call_record_t *rec, uint8_t *buf);
int store_record_decode(const uint8_t *key, size_t key_len, const uint8_t *val,
                        size_t val_len, call_record_t *out);
int store_contact_encode(const contact_t *c, uint8_t *buf);
int store_contact_decode(const uint8_t *val, size_t val_len, contact_t *out);

const char *call_direction_name(enum call_direction d);
const char *call_end_reason_name(enum call_end_reason r);
/* Parse the names above; return 0 or -1. */
int call_direction_parse(const char *name, enum call_direction *out);
int call_end_reason_parse(const char *name, enum call_end_reason *out);

#endif

/* A small hash map from short byte strings (QUIC connection IDs, stream
 * IDs) to pointers, for the QUIC endpoint.
 *
 * Keys are at most QMAP_KEY_MAX bytes and are hashed with a keyed
 * SipHash (libsodium crypto_shorthash), so a peer choosing connection IDs
 * cannot force collisions. Chained buckets; the table doubles as it fills.
 * Not thread-safe: the endpoint uses it on the loop thread only.
 */
#ifndef PARLEY_NET_QUIC_MAP_H
#define PARLEY_NET_QUIC_MAP_H

#include <stddef.h>
#include <stdint.h>

#define QMAP_KEY_MAX 20

typedef struct qmap_entry {
  struct qmap_entry *next;
  uint8_t keylen;
  uint8_t key[QMAP_KEY_MAX];
  void *val;
} qmap_entry_t;

typedef struct qmap {
  qmap_entry_t **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
  uint8_t hashkey[16];
} qmap_t;

/* Returns 0 or -ENOMEM. */
int qmap_init(qmap_t *m);
void qmap_free(qmap_t *m);
/* Returns the value or NULL. */
void *qmap_get(const qmap_t *m, const uint8_t *key, size_t keylen);
/* Inserts a new key. Returns 0, -EEXIST, -EINVAL (key too long), -ENOMEM. */
int qmap_put(qmap_t *m, const uint8_t *key, size_t keylen, void *val);
/* Removes key if it maps to val (val NULL: whatever it maps to). Returns
 * the removed value or NULL. */
void *qmap_del(qmap_t *m, const uint8_t *key, size_t keylen, const void *val);

/* Empties the map, calling fn(val, arg) for every entry (fn may be NULL).
 * fn must not touch the map. */
void qmap_drain(qmap_t *m, void (*fn)(void *val, void *arg), void *arg);

/* Convenience for 64-bit keys (stream IDs). */
static inline void *qmap_get_u64(const qmap_t *m, uint64_t k) {
  return qmap_get(m, (const uint8_t *)&k, sizeof(k));
}
static inline int qmap_put_u64(qmap_t *m, uint64_t k, void *val) {
  return qmap_put(m, (const uint8_t *)&k, sizeof(k), val);
}
static inline void *qmap_del_u64(qmap_t *m, uint64_t k) {
  return qmap_del(m, (const uint8_t *)&k, sizeof(k), NULL);
}

#endif

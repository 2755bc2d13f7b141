/* Hash map from short byte keys to pointers (see quic_map.h).
 * Chained buckets with a keyed SipHash; grows at load factor 1. */
#include "net/quic_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define QMAP_INITIAL_BUCKETS 16

static size_t qmap__slot(const qmap_t *m, const uint8_t *key, size_t len) {
  uint8_t h[crypto_shorthash_BYTES];
  uint64_t v;
  crypto_shorthash(h, key, len, m->hashkey);
  memcpy(&v, h, sizeof(v));
  return (size_t)(v & (m->nbuckets - 1));
}

int qmap_init(qmap_t *m) {
  memset(m, 0, sizeof(*m));
  m->buckets = calloc(QMAP_INITIAL_BUCKETS, sizeof(*m->buckets));
  if (m->buckets == NULL)
    return -ENOMEM;
  m->nbuckets = QMAP_INITIAL_BUCKETS;
  randombytes_buf(m->hashkey, sizeof(m->hashkey));
  return 0;
}

void qmap_free(qmap_t *m) {
  for (size_t i = 0; i < m->nbuckets; i++) {
    qmap_entry_t *e = m->buckets[i];
    while (e != NULL) {
      qmap_entry_t *next = e->next;
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  memset(m, 0, sizeof(*m));
}

static qmap_entry_t **qmap__find(const qmap_t *m, const uint8_t *key,
                                 size_t len) {
  qmap_entry_t **pp = &m->buckets[qmap__slot(m, key, len)];
  for (; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->keylen == len && memcmp((*pp)->key, key, len) == 0)
      return pp;
  }
  return pp;
}

void *qmap_get(const qmap_t *m, const uint8_t *key, size_t keylen) {
  if (keylen > QMAP_KEY_MAX || m->buckets == NULL)
    return NULL;
  qmap_entry_t *e = *qmap__find(m, key, keylen);
  return e != NULL ? e->val : NULL;
}

/* Doubles the bucket array; on allocation failure the map keeps working,
 * just with longer chains. */
static void qmap__grow(qmap_t *m) {
  size_t n = m->nbuckets * 2;
  qmap_entry_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return;
  qmap_entry_t **old = m->buckets;
  size_t oldn = m->nbuckets;
  m->buckets = b;
  m->nbuckets = n;
  for (size_t i = 0; i < oldn; i++) {
    qmap_entry_t *e = old[i];
    while (e != NULL) {
      qmap_entry_t *next = e->next;
      size_t s = qmap__slot(m, e->key, e->keylen);
      e->next = b[s];
      b[s] = e;
      e = next;
    }
  }
  free(old);
}

int qmap_put(qmap_t *m, const uint8_t *key, size_t keylen, void *val) {
  if (keylen > QMAP_KEY_MAX)
    return -EINVAL;
  qmap_entry_t **pp = qmap__find(m, key, keylen);
  if (*pp != NULL)
    return -EEXIST;
  qmap_entry_t *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return -ENOMEM;
  e->keylen = (uint8_t)keylen;
  memcpy(e->key, key, keylen);
  e->val = val;
  *pp = e;
  if (++m->count > m->nbuckets)
    qmap__grow(m);
  return 0;
}

void *qmap_del(qmap_t *m, const uint8_t *key, size_t keylen, const void *val) {
  if (keylen > QMAP_KEY_MAX || m->buckets == NULL)
    return NULL;
  qmap_entry_t **pp = qmap__find(m, key, keylen);
  qmap_entry_t *e = *pp;
  if (e == NULL || (val != NULL && e->val != val))
    return NULL;
  *pp = e->next;
  void *v = e->val;
  free(e);
  m->count--;
  return v;
}

void qmap_drain(qmap_t *m, void (*fn)(void *val, void *arg), void *arg) {
  for (size_t i = 0; i < m->nbuckets; i++) {
    qmap_entry_t *e = m->buckets[i];
    m->buckets[i] = NULL;
    while (e != NULL) {
      qmap_entry_t *next = e->next;
      if (fn != NULL)
        fn(e->val, arg);
      free(e);
      e = next;
    }
  }
  m->count = 0;
}

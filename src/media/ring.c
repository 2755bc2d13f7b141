/* The SPSC ring: monotonically increasing 64-bit indices (they never wrap
 * in practice), slot = index % nslots, with nslots = capacity + 1. */
#include "media/ring.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RING_IDLE UINT64_MAX /* `reading` when the consumer copies nothing */

struct ring {
  /* Written by the producer only. */
  _Alignas(64) _Atomic uint64_t tail; /* next index to write */
  _Atomic uint64_t pushed;
  _Atomic uint64_t overruns;
  /* Advanced by both sides with CAS (see ring.h). */
  _Alignas(64) _Atomic uint64_t head; /* oldest queued index */
  /* Written by the consumer only. */
  _Alignas(64) _Atomic uint64_t reading; /* index being copied, or IDLE */
  _Atomic uint64_t popped;
  _Alignas(64) size_t capacity, nslots, slot_size;
  enum ring_policy policy;
  unsigned char *slots;
};

static unsigned char *ring__slot(ring_t *r, uint64_t index);

ring_t *ring_new(size_t capacity, size_t slot_size, enum ring_policy policy) {
  if (capacity == 0 || slot_size == 0 || capacity > SIZE_MAX / slot_size - 1)
    return NULL;
  ring_t *r = aligned_alloc(64, (sizeof(*r) + 63) / 64 * 64);
  if (!r)
    return NULL;
  memset(r, 0, sizeof(*r));
  r->capacity = capacity;
  r->nslots = capacity + 1;
  r->slot_size = slot_size;
  r->policy = policy;
  r->slots = calloc(r->nslots, slot_size);
  if (!r->slots) {
    free(r);
    return NULL;
  }
  atomic_init(&r->tail, 0);
  atomic_init(&r->head, 0);
  atomic_init(&r->reading, RING_IDLE);
  atomic_init(&r->pushed, 0);
  atomic_init(&r->popped, 0);
  atomic_init(&r->overruns, 0);
  return r;
}

void ring_free(ring_t *r) {
  if (!r)
    return;
  free(r->slots);
  free(r);
}

bool ring_push(ring_t *r, const void *item) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint64_t h = atomic_load(&r->head);
  while (t - h >= r->capacity) {
    if (r->policy == RING_REFUSE_NEWEST) {
      atomic_fetch_add_explicit(&r->overruns, 1, memory_order_relaxed);
      return false;
    }
    /* Discard the oldest; if the consumer took it first, h is reloaded and
     * the ring may no longer be full. */
    if (atomic_compare_exchange_weak(&r->head, &h, h + 1))
      atomic_fetch_add_explicit(&r->overruns, 1, memory_order_relaxed);
  }
  /* Slot t was last used by index t - nslots, which is below head now; the
   * consumer may still be copying it only if it claimed it before we
   * lapped it. Its announcement (seq_cst, before its claim) is visible. */
  uint64_t rd = atomic_load(&r->reading);
  if (rd != RING_IDLE && rd % r->nslots == t % r->nslots) {
    atomic_fetch_add_explicit(&r->overruns, 1, memory_order_relaxed);
    return false;
  }
  memcpy(ring__slot(r, t), item, r->slot_size);
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  atomic_fetch_add_explicit(&r->pushed, 1, memory_order_relaxed);
  return true;
}

bool ring_pop(ring_t *r, void *out) {
  uint64_t h = atomic_load(&r->head);
  for (;;) {
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire)) {
      atomic_store(&r->reading, RING_IDLE);
      return false;
    }
    /* Announce, then claim: a producer that lapped us sees the
     * announcement and leaves the slot alone. */
    atomic_store(&r->reading, h);
    if (atomic_compare_exchange_strong(&r->head, &h, h + 1))
      break;
  }
  memcpy(out, ring__slot(r, h), r->slot_size);
  atomic_store(&r->reading, RING_IDLE);
  atomic_fetch_add_explicit(&r->popped, 1, memory_order_relaxed);
  return true;
}

size_t ring_count(const ring_t *r) {
  uint64_t h = atomic_load(&((ring_t *)r)->head);
  uint64_t t = atomic_load(&((ring_t *)r)->tail);
  return t > h ? (size_t)(t - h) : 0;
}

size_t ring_capacity(const ring_t *r) {
  return r->capacity;
}

size_t ring_slot_size(const ring_t *r) {
  return r->slot_size;
}

uint64_t ring_overruns(const ring_t *r) {
  return atomic_load_explicit(&((ring_t *)r)->overruns, memory_order_relaxed);
}

uint64_t ring_pushed(const ring_t *r) {
  return atomic_load_explicit(&((ring_t *)r)->pushed, memory_order_relaxed);
}

uint64_t ring_popped(const ring_t *r) {
  return atomic_load_explicit(&((ring_t *)r)->popped, memory_order_relaxed);
}

static unsigned char *ring__slot(ring_t *r, uint64_t index) {
  return r->slots + (size_t)(index % r->nslots) * r->slot_size;
}

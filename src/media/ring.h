/* A lock-free single-producer single-consumer ring of fixed-size slots.
 *
 * Owns its slots (capacity x slot_size bytes, allocated once by ring_new).
 * Exactly one thread may push and exactly one (other) thread may pop; the
 * counters may be read from any thread. Nothing blocks or allocates after
 * ring_new, so the producer may be a real-time audio callback.
 *
 * When the ring is full, the policy chosen at creation decides:
 *   RING_DROP_OLDEST   the oldest queued item is discarded to make room:
 *                      the consumer always gets the freshest items. The
 *                      voice pipeline uses this on every audio ring
 *                      (capture -> encoder, decoder -> playback): late
 *                      audio is worth less than current audio, and it
 *                      bounds latency to the ring's length.
 *   RING_REFUSE_NEWEST the push fails and the item is discarded: the queue
 *                      keeps what it has, in order. For queues whose items
 *                      must not be skipped silently by the consumer.
 * Either way the lost item is counted in `overruns`.
 *
 * How drop-oldest stays lock-free: both sides advance the read index with
 * compare-and-swap (the consumer to take an item, the producer to discard
 * one), and the consumer announces the index it is copying before taking
 * it. There is one spare slot, so the producer's next write never lands on
 * the slot being copied unless it laps the consumer during that copy; in
 * that rare case the push is refused instead (also an overrun).
 */
#ifndef PARLEY_MEDIA_RING_H
#define PARLEY_MEDIA_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ring_policy {
  RING_DROP_OLDEST = 0,
  RING_REFUSE_NEWEST = 1,
};

typedef struct ring ring_t;

/* A ring of `capacity` items of `slot_size` bytes each (both > 0).
 * Returns NULL if out of memory or an argument is 0. Any thread, before the
 * producer and consumer start. */
ring_t *ring_new(size_t capacity, size_t slot_size, enum ring_policy policy);
/* Frees the ring; neither side may use it any more. */
void ring_free(ring_t *r);

/* Producer thread only. Copies slot_size bytes from item into the ring.
 * Returns true if queued. With RING_DROP_OLDEST it returns true even when
 * an older item had to be dropped (counted); false only in the rare lapping
 * case above. With RING_REFUSE_NEWEST it returns false when full. */
bool ring_push(ring_t *r, const void *item);

/* Consumer thread only. Copies the oldest item into out (slot_size bytes)
 * and returns true, or returns false if the ring is empty. */
bool ring_pop(ring_t *r, void *out);

/* Items queued right now (a snapshot; any thread). */
size_t ring_count(const ring_t *r);
size_t ring_capacity(const ring_t *r);
size_t ring_slot_size(const ring_t *r);

/* Items lost to a full ring since creation (any thread). */
uint64_t ring_overruns(const ring_t *r);
/* Items pushed successfully / popped since creation (any thread). */
uint64_t ring_pushed(const ring_t *r);
uint64_t ring_popped(const ring_t *r);

#endif

/* Small helpers every module uses: hex, big-endian bytes, time, files.
 *
 * Pure functions with no shared state; any thread may call them.
 */
#ifndef PARLEY_CORE_UTIL_H
#define PARLEY_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hex_encode(char *out, const uint8_t *in, size_t n);
/* Decodes exactly 2n lowercase hex characters. Returns 0 or -1. */
int hex_decode(uint8_t *out, size_t n, const char *in, size_t in_len);

static inline void be16_put(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void be32_put(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void be64_put(uint8_t *p, uint64_t v) {
  be32_put(p, (uint32_t)(v >> 32));
  be32_put(p + 4, (uint32_t)v);
}
static inline uint16_t be16_get(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t be32_get(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64_get(const uint8_t *p) {
  return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}

/* Wall clock, microseconds and seconds since the Unix epoch. */
uint64_t time_now_us(void);
uint64_t time_now_s(void);
/* Monotonic clock in nanoseconds. */
uint64_t time_mono_ns(void);
/* Sleeps until the monotonic clock reads t_ns (at once if it has). */
void time_sleep_until_ns(uint64_t t_ns);

/* mkdir -p with the given mode for every directory it creates; an existing
 * final directory is chmod'ed to mode. Returns 0 or -errno. */
int path_mkdir_p(const char *path, unsigned mode);

/* snprintf that returns -1 instead of truncating. */
int path_join(char *out, size_t out_size, const char *dir, const char *name);

/* Reads a whole file of at most max bytes. Returns its length, -ENOENT,
 * -EFBIG if longer than max, or another -errno. Caller frees *out. */
long file_read_all(const char *path, size_t max, uint8_t **out);

/* Writes data to path atomically (temp file, fsync, rename) with mode.
 * Returns 0 or -errno. */
int file_write_atomic(const char *path, const void *data, size_t len,
                      unsigned mode);

#endif

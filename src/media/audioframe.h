/* AudioFrame: the seed's wire format for one Opus packet.
 *
 *   [u32 sequence][u64 timestamp_us][u16 length][length bytes of data]
 *
 * big-endian, 14 header bytes. `sequence` counts frames (one per 20 ms,
 * wrapping at 2^32); `timestamp_us` is the sender's capture time. On the
 * `datagram` transport a frame fills one QUIC DATAGRAM exactly, so
 * audioframe_decode() insists that `length` matches the bytes after the
 * header. On the `stream` transport frames follow each other back to back
 * and arrive in chunks cut anywhere; audioframe_parser_t reassembles them in
 * a fixed buffer. Both refuse a length above AUDIOFRAME_MAX_DATA (an Opus
 * packet is at most 1275 bytes; 1500 leaves room and still bounds memory).
 *
 * Owns nothing beyond a parser's own buffer. Pure functions; a parser
 * belongs to one thread at a time (the loop thread, which owns the stream).
 */
#ifndef PARLEY_MEDIA_AUDIOFRAME_H
#define PARLEY_MEDIA_AUDIOFRAME_H

#include <stddef.h>
#include <stdint.h>

#define AUDIOFRAME_HEADER_LEN 14
#define AUDIOFRAME_MAX_DATA 1500
#define AUDIOFRAME_MAX_LEN (AUDIOFRAME_HEADER_LEN + AUDIOFRAME_MAX_DATA)

/* Errors (negative, distinct). */
#define AUDIOFRAME_ERR_SHORT (-1)    /* fewer bytes than the header */
#define AUDIOFRAME_ERR_LENGTH (-2)   /* length disagrees with the bytes */
#define AUDIOFRAME_ERR_TOO_LONG (-3) /* length > AUDIOFRAME_MAX_DATA */
#define AUDIOFRAME_ERR_SPACE (-4)    /* encode: output buffer too small */

typedef struct audioframe {
  uint32_t sequence;
  uint64_t timestamp_us;
  uint16_t len;
  const uint8_t *data; /* decode: points into the caller's or parser's
                          bytes, valid as long as they are */
} audioframe_t;

/* Writes f (f->len bytes at f->data) to out. Returns the bytes written
 * (AUDIOFRAME_HEADER_LEN + f->len), AUDIOFRAME_ERR_TOO_LONG or
 * AUDIOFRAME_ERR_SPACE. */
int audioframe_encode(uint8_t *out, size_t out_size, const audioframe_t *f);

/* Decodes one whole datagram. Returns 0, AUDIOFRAME_ERR_SHORT,
 * AUDIOFRAME_ERR_TOO_LONG, or AUDIOFRAME_ERR_LENGTH when the length field is
 * not exactly the number of bytes after the header. */
int audioframe_decode(const uint8_t *buf, size_t len, audioframe_t *out);

/* Called once per complete frame; f->data is valid only during the call.
 * Return 0 to go on, or non-zero to stop: audioframe_parser_feed returns
 * that value at once and ignores the rest of its chunk. */
typedef int (*audioframe_cb)(const audioframe_t *f, void *user);

/* Reassembles frames from a byte stream. Holds at most one incomplete frame
 * (AUDIOFRAME_MAX_LEN bytes); no allocation. */
typedef struct audioframe_parser {
  uint8_t buf[AUDIOFRAME_MAX_LEN];
  size_t have;     /* bytes of the current frame gathered so far */
  int error;       /* sticky: once set, the stream's framing is lost */
  uint64_t frames; /* frames delivered */
} audioframe_parser_t;

void audioframe_parser_init(audioframe_parser_t *p);

/* Feeds len bytes (any split of the stream) and calls cb for each frame they
 * complete, in order. Returns 0; the callback's non-zero value; or
 * AUDIOFRAME_ERR_TOO_LONG, after which every call fails the same way -- a
 * stream with a bad length cannot be resynchronized and must be closed. */
int audioframe_parser_feed(audioframe_parser_t *p, const uint8_t *data,
                           size_t len, audioframe_cb cb, void *user);

/* Bytes of an incomplete frame held (0 at a frame boundary): a stream that
 * ends with this non-zero was cut mid-frame. */
size_t audioframe_parser_pending(const audioframe_parser_t *p);

#endif

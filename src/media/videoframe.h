/* VideoFrame: the wire format for one VP9 packet (the seed's fields with a
 * 32-bit length, since key frames can exceed 64 KiB).
 *
 *   [u32 sequence][u64 timestamp_us][u8 flags][u16 width][u16 height]
 *   [u32 length][length bytes of data]
 *
 * big-endian, 21 header bytes; flags bit 0 = key frame, the other bits are
 * zero (a frame with others set is refused). `sequence` counts encoded
 * frames; `timestamp_us` is the capture time on the sender's clock (the
 * same clock as AudioFrame's, so the receiver can synchronise the two).
 * On the `datagram` transport each frame is alone on its own
 * unidirectional stream, so videoframe_decode() insists the length matches
 * the stream's bytes; on the `stream` transport frames follow each other and
 * videoframe_parser_t reassembles them. Both refuse a length above
 * VIDEOFRAME_MAX_DATA and a width or height of 0 or above 4096.
 *
 * Owns nothing beyond a parser's own buffer. Pure functions; a parser
 * belongs to one thread at a time.
 */
#ifndef PARLEY_MEDIA_VIDEOFRAME_H
#define PARLEY_MEDIA_VIDEOFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIDEOFRAME_HEADER_LEN 21
#define VIDEOFRAME_MAX_DATA (2u << 20) /* 2 MiB: a 1080p key frame fits */
#define VIDEOFRAME_MAX_DIM 4096
#define VIDEOFRAME_FLAG_KEY 1u

#define VIDEOFRAME_ERR_SHORT (-1)    /* fewer bytes than the header */
#define VIDEOFRAME_ERR_LENGTH (-2)   /* length disagrees with the bytes */
#define VIDEOFRAME_ERR_TOO_LONG (-3) /* length > VIDEOFRAME_MAX_DATA */
#define VIDEOFRAME_ERR_SPACE (-4)    /* encode: output buffer too small */
#define VIDEOFRAME_ERR_FIELD (-5)    /* bad flags or size */

typedef struct videoframe {
  uint32_t sequence;
  uint64_t timestamp_us;
  bool key_frame;
  uint16_t width, height;
  uint32_t len;
  const uint8_t *data;
} videoframe_t;

/* Writes the 21-byte header of f to out (the data goes after it, or is sent
 * separately). Returns VIDEOFRAME_HEADER_LEN or VIDEOFRAME_ERR_TOO_LONG /
 * VIDEOFRAME_ERR_FIELD. */
int videoframe_encode_header(uint8_t out[VIDEOFRAME_HEADER_LEN],
                             const videoframe_t *f);

/* Decodes one whole frame (a datagram-transport stream's bytes). Returns 0
 * or an error above; out->data points into buf. */
int videoframe_decode(const uint8_t *buf, size_t len, videoframe_t *out);

typedef int (*videoframe_cb)(const videoframe_t *f, void *user);

/* Reassembles frames from a byte stream cut anywhere. The buffer grows to
 * the largest frame seen (at most VIDEOFRAME_MAX_DATA + header). */
typedef struct videoframe_parser {
  uint8_t *buf;
  size_t cap, have;
  int error; /* sticky */
  uint64_t frames;
} videoframe_parser_t;

void videoframe_parser_init(videoframe_parser_t *p);
void videoframe_parser_free(videoframe_parser_t *p);
/* Feeds bytes; calls cb for each completed frame. Returns 0, the
 * callback's non-zero value, or a sticky error (framing lost: close the
 * stream), or -ENOMEM. */
int videoframe_parser_feed(videoframe_parser_t *p, const uint8_t *data,
                           size_t len, videoframe_cb cb, void *user);
size_t videoframe_parser_pending(const videoframe_parser_t *p);

#endif

/* VP9 through libvpx in real-time mode: the encoder and decoder of the
 * video pipeline.
 *
 * Encoder: one packet per input picture (lag_in_frames 0, no alt-ref),
 * CBR at the configured bitrate, error resilient, row-mt, cpu-used for
 * real time, a key frame every `keyframe_interval` frames and whenever
 * asked. Resolution and bitrate change on the fly (the adaptive ladder).
 * Decoder: gives each decodable picture; an undecodable or corrupt packet
 * is reported (so the caller asks for a key frame) and never yields a
 * picture.
 *
 * Threads: an encoder or decoder belongs to one thread (the call's video
 * encode or decode thread), never the loop.
 */
#ifndef PARLEY_MEDIA_VP9_CODEC_H
#define PARLEY_MEDIA_VP9_CODEC_H

#include "media/video.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vp9_enc vp9_enc_t;
typedef struct vp9_dec vp9_dec_t;

typedef struct vp9_enc_config {
  int width, height;     /* default 640x480 */
  int fps;               /* default 24 */
  int bitrate_kbps;      /* default 1000 */
  int keyframe_interval; /* frames; default 48 */
  int threads;           /* 0: chosen for the machine and the size */
} vp9_enc_config_t;

vp9_enc_config_t vp9_enc_config_default(void);

/* Returns NULL on a bad config or a libvpx failure (logged). */
vp9_enc_t *vp9_enc_new(const vp9_enc_config_t *cfg);
void vp9_enc_free(vp9_enc_t *e);

/* Changes the bitrate, and the resolution if width/height differ (the next
 * frame is then a key frame). Returns 0 or -EINVAL. */
int vp9_enc_reconfigure(vp9_enc_t *e, int width, int height, int bitrate_kbps);
void vp9_enc_get_size(const vp9_enc_t *e, int *width, int *height);

/* Encodes one picture, which must have the encoder's size (scale first).
 * On success *out points to the packet (valid until the next call on e),
 * *len is its size (0 if libvpx dropped the frame to hold the rate) and
 * *key says whether it is a key frame. Returns 0 or -EINVAL / -EIO. */
int vp9_enc_encode(vp9_enc_t *e, const video_image_t *img, bool force_key,
                   const uint8_t **out, size_t *len, bool *key);

/* threads: 0 = one (see vp9_codec.c). NULL on failure (logged). */
vp9_dec_t *vp9_dec_new(int threads);
void vp9_dec_free(vp9_dec_t *d);

/* Decodes one packet into out (reallocated to the stream's size; seq and
 * ts_us untouched). Returns 1 with a picture, 0 if the packet gave none,
 * or -EIO if it is corrupt or cannot be decoded (out is then untouched and
 * the caller should ask for a key frame and drop inter frames until one
 * arrives). */
int vp9_dec_decode(vp9_dec_t *d, const uint8_t *data, size_t len,
                   video_image_t *out);

/* Whether a packet starts a VP9 key frame (from its uncompressed header),
 * without decoding it. */
bool vp9_is_key_frame(const uint8_t *data, size_t len);

#endif

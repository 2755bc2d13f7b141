/* Raw video: the I420 picture every video source produces, the VP9 codec
 * consumes and produces, and every video sink takes; plus the conversions
 * the pipeline needs (scaling, RGBA for API clients), done by libyuv.
 *
 * A video_image_t owns one buffer holding its three planes (Y full size,
 * U and V half size rounded up); `seq` and `ts_us` travel with the picture
 * through the pipeline (capture sequence and capture time, CLOCK_REALTIME
 * microseconds like AudioFrame's timestamp_us).
 *
 * Threads: pure functions; an image belongs to whoever holds it.
 */
#ifndef PARLEY_MEDIA_VIDEO_H
#define PARLEY_MEDIA_VIDEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIDEO_MAX_WIDTH 1920
#define VIDEO_MAX_HEIGHT 1080

typedef struct video_image {
  int width, height;
  uint8_t *planes[3]; /* Y, U, V */
  int strides[3];
  uint8_t *buf; /* owns the planes */
  size_t buf_size;
  uint32_t seq;
  uint64_t ts_us;
} video_image_t;

/* Bytes of a tightly packed I420 picture (the Y4M / API layout). */
size_t video_i420_size(int width, int height);

/* (Re)allocates im for width x height (even or odd, 2..VIDEO_MAX_*);
 * keeps the buffer when it is big enough. Returns 0 or -EINVAL / -ENOMEM.
 * A zeroed video_image_t is a valid empty image. */
int video_image_alloc(video_image_t *im, int width, int height);
void video_image_free(video_image_t *im);

/* Copies a tightly packed I420 buffer of exactly video_i420_size() bytes
 * into im (allocated for width x height). Returns 0 or -EINVAL. */
int video_image_from_i420(video_image_t *im, int width, int height,
                          const uint8_t *data, size_t len);
/* Writes im tightly packed (video_i420_size bytes) to out. */
void video_image_to_i420(const video_image_t *im, uint8_t *out);
/* Writes im as RGBA (R, G, B, A bytes per pixel, width*height*4 bytes). */
void video_image_to_rgba(const video_image_t *im, uint8_t *out);

/* Scales src into dst at dst's allocated size (box filter); copies seq and
 * ts_us. Returns 0 or -EINVAL. */
int video_image_scale(const video_image_t *src, video_image_t *dst);

#endif

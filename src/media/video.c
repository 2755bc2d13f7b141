/* I420 pictures: allocation, packing to and from the tight I420 layout, and
 * the conversions (RGBA, scaling) through libyuv. */
#include "media/video.h"

#include <errno.h>
#include <libyuv.h>
#include <stdlib.h>
#include <string.h>

static bool video__size_ok(int width, int height);

size_t video_i420_size(int width, int height) {
  size_t cw = (size_t)(width + 1) / 2, ch = (size_t)(height + 1) / 2;
  return (size_t)width * (size_t)height + 2 * cw * ch;
}

int video_image_alloc(video_image_t *im, int width, int height) {
  if (!video__size_ok(width, height))
    return -EINVAL;
  size_t need = video_i420_size(width, height);
  if (im->buf_size < need) {
    uint8_t *b = malloc(need);
    if (!b)
      return -ENOMEM;
    free(im->buf);
    im->buf = b;
    im->buf_size = need;
  }
  int cw = (width + 1) / 2, ch = (height + 1) / 2;
  im->width = width;
  im->height = height;
  im->strides[0] = width;
  im->strides[1] = im->strides[2] = cw;
  im->planes[0] = im->buf;
  im->planes[1] = im->buf + (size_t)width * (size_t)height;
  im->planes[2] = im->planes[1] + (size_t)cw * (size_t)ch;
  return 0;
}

void video_image_free(video_image_t *im) {
  if (!im)
    return;
  free(im->buf);
  memset(im, 0, sizeof(*im));
}

int video_image_from_i420(video_image_t *im, int width, int height,
                          const uint8_t *data, size_t len) {
  if (!video__size_ok(width, height) || len != video_i420_size(width, height))
    return -EINVAL;
  int r = video_image_alloc(im, width, height);
  if (r != 0)
    return r;
  /* video_image_alloc lays the planes out tightly: one copy does. */
  memcpy(im->buf, data, len);
  return 0;
}

void video_image_to_i420(const video_image_t *im, uint8_t *out) {
  int w = im->width, h = im->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  uint8_t *y = out, *u = out + (size_t)w * h, *v = u + (size_t)cw * ch;
  I420Copy(im->planes[0], im->strides[0], im->planes[1], im->strides[1],
           im->planes[2], im->strides[2], y, w, u, cw, v, cw, w, h);
}

void video_image_to_rgba(const video_image_t *im, uint8_t *out) {
  /* libyuv names formats by their order in a little-endian word: "ABGR"
   * is R, G, B, A in memory. BT.601 limited range, as libvpx produces. */
  I420ToABGR(im->planes[0], im->strides[0], im->planes[1], im->strides[1],
             im->planes[2], im->strides[2], out, im->width * 4, im->width,
             im->height);
}

int video_image_scale(const video_image_t *src, video_image_t *dst) {
  if (!src->buf || !dst->buf || !video__size_ok(src->width, src->height) ||
      !video__size_ok(dst->width, dst->height))
    return -EINVAL;
  if (I420Scale(src->planes[0], src->strides[0], src->planes[1],
                src->strides[1], src->planes[2], src->strides[2], src->width,
                src->height, dst->planes[0], dst->strides[0], dst->planes[1],
                dst->strides[1], dst->planes[2], dst->strides[2], dst->width,
                dst->height, kFilterBox) != 0)
    return -EINVAL;
  dst->seq = src->seq;
  dst->ts_us = src->ts_us;
  return 0;
}

static bool video__size_ok(int width, int height) {
  return width >= 2 && height >= 2 && width <= VIDEO_MAX_WIDTH &&
         height <= VIDEO_MAX_HEIGHT;
}

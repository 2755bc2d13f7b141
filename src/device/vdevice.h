/* Video sources and sinks: the one small interface every end of the video
 * pipeline implements, and the registry that lists and opens them by name
 * (the video half of device/device.h; same naming and pacing rules).
 *
 * A source produces I420 pictures (media/video.h) at its own size and
 * rate; the pipeline scales them to the encoder's size. A sink takes
 * pictures of any size (a file sink scales to the size of the first).
 *
 * Pacing: a paced source (V4L2) blocks in read until the camera delivers
 * (at most about one frame period, then -EAGAIN); an unpaced one (file,
 * pattern, API) returns at once and the caller reads once per 1/fps of its
 * own clock.
 *
 * Names: "scheme" or "scheme:argument". Built in:
 *   pattern[:WxH[@FPS]]  source, moving test pattern (default 640x480@24):
 *                        colour bars, a moving box and the frame number
 *   y4m:PATH             source: Y4M (4:2:0, 8-bit) file, played once;
 *                        sink: Y4M file at the first picture's size;
 *                        each FRAME line carries "Xseq=N" (the sender's
 *                        capture sequence) so frames can be matched later
 *   y4m-loop:PATH        source: the same file, looping
 *   v4l2[:DEV]           source: a camera by path (/dev/video0) or by name
 *                        (default: the first); YUYV, NV12 and MJPEG
 *                        through libv4lconvert, scaled by libyuv
 *   null                 sink that discards
 * Others are added with vdevice_register (the API's "api").
 *
 * Threads: a source or sink belongs to one thread between open and close;
 * the registry is guarded by a mutex.
 */
#ifndef PARLEY_DEVICE_VDEVICE_H
#define PARLEY_DEVICE_VDEVICE_H

#include "device/device.h"
#include "media/video.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct video_source video_source_t;
typedef struct video_sink video_sink_t;

typedef struct video_source_ops {
  /* Writes the next picture into img (allocated or reallocated to the
   * source's size; seq and ts_us are the caller's). Returns 1, 0 at the end
   * of a finite source, -EAGAIN if a paced device had no picture in time,
   * or another -errno. */
  int (*read)(video_source_t *s, video_image_t *img);
  void (*close)(video_source_t *s);
} video_source_ops_t;

typedef struct video_sink_ops {
  /* Consumes one picture. Returns 0 or -errno. */
  int (*write)(video_sink_t *s, const video_image_t *img);
  /* Finishes and frees s. Returns 0 or the first -errno met. */
  int (*close)(video_sink_t *s);
} video_sink_ops_t;

struct video_source {
  const video_source_ops_t *ops;
  bool paced;
  int width, height, fps; /* what it produces */
};

struct video_sink {
  const video_sink_ops_t *ops;
};

static inline int video_source_read(video_source_t *s, video_image_t *img) {
  return s->ops->read(s, img);
}
static inline void video_source_close(video_source_t *s) {
  if (s)
    s->ops->close(s);
}
static inline int video_sink_write(video_sink_t *s, const video_image_t *img) {
  return s->ops->write(s, img);
}
static inline int video_sink_close(video_sink_t *s) {
  return s ? s->ops->close(s) : 0;
}

/* ---- Registry (device_info_t from device/device.h; types below) ---- */

enum vdevice_type {
  VDEVICE_TYPE_FILE = 0,
  VDEVICE_TYPE_PATTERN = 1,
  VDEVICE_TYPE_NULL = 2,
  VDEVICE_TYPE_API = 3,
  VDEVICE_TYPE_V4L2 = 4,
};

typedef struct vdevice_driver {
  const char *scheme;
  enum vdevice_type type;
  size_t (*list)(device_info_t *out, size_t max); /* type: vdevice_type */
  int (*open_source)(const char *arg, video_source_t **out, char *err,
                     size_t err_size);
  int (*open_sink)(const char *arg, video_sink_t **out, char *err,
                   size_t err_size);
} vdevice_driver_t;

int vdevice_register(const vdevice_driver_t *drv);
size_t vdevice_list(device_info_t *out, size_t max);
int vdevice_open_source(const char *name, video_source_t **out, char *err,
                        size_t err_size);
int vdevice_open_sink(const char *name, video_sink_t **out, char *err,
                      size_t err_size);
const char *vdevice_type_name(enum vdevice_type type); /* "file", ... */

#endif

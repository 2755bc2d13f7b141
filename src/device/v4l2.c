/* The V4L2 camera source: device discovery, format negotiation through
 * libv4l2 (which converts to I420), and paced reads. */
#include "device/v4l2.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libv4l2.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct v4l2_source {
  video_source_t base;
  int fd; /* a libv4l2 descriptor */
  size_t size;
  int stride; /* luma bytes per line; chroma half */
  uint8_t *raw;
  int timeout_ms;
} v4l2_source_t;

static int v4l2__read(video_source_t *s, video_image_t *img);
static void v4l2__close(video_source_t *s);
static bool v4l2__card(const char *path, char *card, size_t size);
static int v4l2__find(const char *arg, char *path, size_t size);
static int v4l2__setup(v4l2_source_t *v, char *err, size_t err_size,
                       const char *path);

static const video_source_ops_t v4l2__ops = {v4l2__read, v4l2__close};

size_t v4l2_list(device_info_t *out, size_t max) {
  glob_t g;
  size_t n = 0;
  if (glob("/dev/video*", 0, NULL, &g) != 0)
    return 0;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    char card[64];
    if (!v4l2__card(g.gl_pathv[i], card, sizeof(card)))
      continue;
    if (n < max) {
      snprintf(out[n].name, sizeof(out[n].name), "v4l2:%s", g.gl_pathv[i]);
      snprintf(out[n].description, sizeof(out[n].description), "camera: %s",
               card);
      out[n].kind = DEVICE_SOURCE;
      out[n].type = (enum device_type)VDEVICE_TYPE_V4L2;
    }
    n++;
  }
  globfree(&g);
  return n;
}

int v4l2_source_open(const char *arg, video_source_t **out, char *err,
                     size_t err_size) {
  char path[256];
  int r = v4l2__find(arg, path, sizeof(path));
  if (r != 0) {
    if (*arg)
      snprintf(err, err_size, "v4l2: no capture device '%s'", arg);
    else
      snprintf(err, err_size,
               "v4l2: no camera (no capture device under "
               "/dev/video*)");
    return r;
  }
  v4l2_source_t *v = calloc(1, sizeof(*v));
  if (!v)
    return -ENOMEM;
  v->fd = v4l2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (v->fd < 0) {
    int e = errno;
    snprintf(err, err_size, "v4l2: %s: %s", path, strerror(e));
    free(v);
    return -e;
  }
  r = v4l2__setup(v, err, err_size, path);
  if (r != 0) {
    v4l2__close(&v->base);
    return r;
  }
  *out = &v->base;
  return 0;
}

/* Capture format (I420 through libv4lconvert), rate, buffer. */
static int v4l2__setup(v4l2_source_t *v, char *err, size_t err_size,
                       const char *path) {
  struct v4l2_format fmt = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
  fmt.fmt.pix.width = V4L2_WANT_WIDTH;
  fmt.fmt.pix.height = V4L2_WANT_HEIGHT;
  fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUV420;
  fmt.fmt.pix.field = V4L2_FIELD_NONE;
  if (v4l2_ioctl(v->fd, VIDIOC_S_FMT, &fmt) != 0 ||
      fmt.fmt.pix.pixelformat != V4L2_PIX_FMT_YUV420) {
    snprintf(err, err_size, "v4l2: %s: no format convertible to I420", path);
    return -ENOTSUP;
  }
  int w = (int)fmt.fmt.pix.width, h = (int)fmt.fmt.pix.height;
  int stride = (int)fmt.fmt.pix.bytesperline;
  if (stride < w)
    stride = w;
  if (w < 2 || h < 2 || w > VIDEO_MAX_WIDTH || h > VIDEO_MAX_HEIGHT) {
    snprintf(err, err_size, "v4l2: %s: camera size %dx%d not supported", path,
             w, h);
    return -ENOTSUP;
  }
  struct v4l2_streamparm parm = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
  parm.parm.capture.timeperframe.numerator = 1;
  parm.parm.capture.timeperframe.denominator = V4L2_WANT_FPS;
  int fps = V4L2_WANT_FPS;
  if (v4l2_ioctl(v->fd, VIDIOC_S_PARM, &parm) == 0 &&
      parm.parm.capture.timeperframe.numerator > 0) {
    fps = (int)(parm.parm.capture.timeperframe.denominator /
                parm.parm.capture.timeperframe.numerator);
    if (fps < 1)
      fps = 1;
  }
  /* libv4l2's YUV420 has chroma rows of stride / 2. */
  v->size = (size_t)stride * h + 2 * (size_t)(stride / 2) * ((h + 1) / 2);
  if (fmt.fmt.pix.sizeimage > v->size)
    v->size = fmt.fmt.pix.sizeimage;
  v->raw = malloc(v->size);
  if (!v->raw)
    return -ENOMEM;
  v->stride = stride;
  v->timeout_ms = 1000 / fps + 10;
  v->base.ops = &v4l2__ops;
  v->base.paced = true;
  v->base.width = w;
  v->base.height = h;
  v->base.fps = fps;
  LOG_INFO("v4l2", "%s: %dx%d at %d fps", path, w, h, fps);
  return 0;
}

static int v4l2__read(video_source_t *s, video_image_t *img) {
  v4l2_source_t *v = (v4l2_source_t *)s;
  struct pollfd p = {.fd = v->fd, .events = POLLIN};
  int r = poll(&p, 1, v->timeout_ms);
  if (r < 0)
    return errno == EINTR ? -EAGAIN : -errno;
  if (r == 0)
    return -EAGAIN;
  ssize_t got = v4l2_read(v->fd, v->raw, v->size);
  if (got < 0)
    return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
  int w = s->width, h = s->height, cs = v->stride / 2;
  size_t need = (size_t)v->stride * h + 2 * (size_t)cs * ((h + 1) / 2);
  if ((size_t)got < need)
    return -EAGAIN; /* a short picture: skip it */
  r = video_image_alloc(img, w, h);
  if (r != 0)
    return r;
  const uint8_t *y = v->raw, *u = y + (size_t)v->stride * h,
                *vv = u + (size_t)cs * ((h + 1) / 2);
  for (int row = 0; row < h; row++)
    memcpy(img->planes[0] + (size_t)row * img->strides[0],
           y + (size_t)row * v->stride, (size_t)w);
  for (int row = 0; row < (h + 1) / 2; row++) {
    memcpy(img->planes[1] + (size_t)row * img->strides[1], u + (size_t)row * cs,
           (size_t)(w + 1) / 2);
    memcpy(img->planes[2] + (size_t)row * img->strides[2],
           vv + (size_t)row * cs, (size_t)(w + 1) / 2);
  }
  return 1;
}

static void v4l2__close(video_source_t *s) {
  v4l2_source_t *v = (v4l2_source_t *)s;
  v4l2_close(v->fd);
  free(v->raw);
  free(v);
}

/* The card name of path if it is a video capture device. */
static bool v4l2__card(const char *path, char *card, size_t size) {
  int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return false;
  struct v4l2_capability cap;
  memset(&cap, 0, sizeof(cap));
  bool ok = ioctl(fd, VIDIOC_QUERYCAP, &cap) == 0;
  close(fd);
  if (!ok)
    return false;
  uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps
                                                          : cap.capabilities;
  if (!(caps & V4L2_CAP_VIDEO_CAPTURE))
    return false;
  snprintf(card, size, "%.*s", (int)sizeof(cap.card), (const char *)cap.card);
  return true;
}

/* The path of the camera arg names ("" = the first). */
static int v4l2__find(const char *arg, char *path, size_t size) {
  char card[64];
  if (arg[0] == '/') {
    snprintf(path, size, "%s", arg);
    return access(arg, F_OK) == 0 ? 0 : -ENOENT;
  }
  glob_t g;
  if (glob("/dev/video*", 0, NULL, &g) != 0)
    return -ENOENT;
  int r = -ENOENT;
  for (size_t i = 0; i < g.gl_pathc && r != 0; i++)
    if (v4l2__card(g.gl_pathv[i], card, sizeof(card)) &&
        (!*arg || strcmp(arg, card) == 0)) {
      snprintf(path, size, "%s", g.gl_pathv[i]);
      r = 0;
    }
  globfree(&g);
  return r;
}

/* The video device registry: built-in drivers (pattern, y4m, y4m-loop,
 * v4l2, null) and those other modules register, listing and opening by
 * "scheme[:argument]" name; and the null video sink. */
#include "device/vdevice.h"

#include "device/v4l2.h"
#include "device/vpattern.h"
#include "device/y4mfile.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t vdevice__pattern_list(device_info_t *out, size_t max);
static int vdevice__pattern_source(const char *arg, video_source_t **out,
                                   char *err, size_t err_size);
static size_t vdevice__y4m_list(device_info_t *out, size_t max);
static int vdevice__y4m_source(const char *arg, video_source_t **out, char *err,
                               size_t err_size);
static int vdevice__y4m_loop_source(const char *arg, video_source_t **out,
                                    char *err, size_t err_size);
static int vdevice__y4m_sink(const char *arg, video_sink_t **out, char *err,
                             size_t err_size);
static size_t vdevice__null_list(device_info_t *out, size_t max);
static int vdevice__null_sink(const char *arg, video_sink_t **out, char *err,
                              size_t err_size);
static int vdevice__null_write(video_sink_t *s, const video_image_t *img);
static int vdevice__null_close(video_sink_t *s);
static const vdevice_driver_t *vdevice__find(const char *name, const char **arg,
                                             char *err, size_t err_size);
static size_t vdevice__add(device_info_t *out, size_t max, size_t i,
                           const char *name, const char *desc,
                           enum device_kind kind, enum vdevice_type type);

static const vdevice_driver_t vdevice__builtin[] = {
    {"pattern", VDEVICE_TYPE_PATTERN, vdevice__pattern_list,
     vdevice__pattern_source, NULL},
    {"y4m", VDEVICE_TYPE_FILE, vdevice__y4m_list, vdevice__y4m_source,
     vdevice__y4m_sink},
    {"y4m-loop", VDEVICE_TYPE_FILE, NULL, vdevice__y4m_loop_source, NULL},
    {"v4l2", VDEVICE_TYPE_V4L2, v4l2_list, v4l2_source_open, NULL},
    {"null", VDEVICE_TYPE_NULL, vdevice__null_list, NULL, vdevice__null_sink},
};

static const video_sink_ops_t vdevice__null_ops = {vdevice__null_write,
                                                   vdevice__null_close};

static pthread_mutex_t vdevice__lock = PTHREAD_MUTEX_INITIALIZER;
static const vdevice_driver_t *vdevice__drivers[DEVICE_DRIVERS_MAX];
static size_t vdevice__n;

#define VDEVICE__NB (sizeof(vdevice__builtin) / sizeof(*vdevice__builtin))

int vdevice_register(const vdevice_driver_t *drv) {
  int r = 0;
  pthread_mutex_lock(&vdevice__lock);
  for (size_t i = 0; i < VDEVICE__NB + vdevice__n; i++) {
    const vdevice_driver_t *d = i < VDEVICE__NB
                                    ? &vdevice__builtin[i]
                                    : vdevice__drivers[i - VDEVICE__NB];
    if (strcmp(d->scheme, drv->scheme) == 0)
      r = -EEXIST;
  }
  if (r == 0 && vdevice__n == DEVICE_DRIVERS_MAX)
    r = -ENOSPC;
  if (r == 0)
    vdevice__drivers[vdevice__n++] = drv;
  pthread_mutex_unlock(&vdevice__lock);
  return r;
}

size_t vdevice_list(device_info_t *out, size_t max) {
  size_t total = 0;
  pthread_mutex_lock(&vdevice__lock);
  for (size_t i = 0; i < VDEVICE__NB + vdevice__n; i++) {
    const vdevice_driver_t *d = i < VDEVICE__NB
                                    ? &vdevice__builtin[i]
                                    : vdevice__drivers[i - VDEVICE__NB];
    if (!d->list)
      continue;
    size_t room = total < max ? max - total : 0;
    total += d->list(room ? out + total : NULL, room);
  }
  pthread_mutex_unlock(&vdevice__lock);
  return total;
}

int vdevice_open_source(const char *name, video_source_t **out, char *err,
                        size_t err_size) {
  const char *arg;
  pthread_mutex_lock(&vdevice__lock);
  const vdevice_driver_t *d = vdevice__find(name, &arg, err, err_size);
  pthread_mutex_unlock(&vdevice__lock);
  if (!d)
    return -ENOENT;
  if (!d->open_source) {
    snprintf(err, err_size, "%s: not a video source", name);
    return -ENOTSUP;
  }
  return d->open_source(arg, out, err, err_size);
}

int vdevice_open_sink(const char *name, video_sink_t **out, char *err,
                      size_t err_size) {
  const char *arg;
  pthread_mutex_lock(&vdevice__lock);
  const vdevice_driver_t *d = vdevice__find(name, &arg, err, err_size);
  pthread_mutex_unlock(&vdevice__lock);
  if (!d)
    return -ENOENT;
  if (!d->open_sink) {
    snprintf(err, err_size, "%s: not a video sink", name);
    return -ENOTSUP;
  }
  return d->open_sink(arg, out, err, err_size);
}

const char *vdevice_type_name(enum vdevice_type type) {
  switch (type) {
  case VDEVICE_TYPE_FILE:
    return "file";
  case VDEVICE_TYPE_PATTERN:
    return "pattern";
  case VDEVICE_TYPE_NULL:
    return "null";
  case VDEVICE_TYPE_API:
    return "api";
  case VDEVICE_TYPE_V4L2:
    return "v4l2";
  }
  return "unknown";
}

/* The driver whose scheme is name up to ':' (or all of it). Lock held. */
static const vdevice_driver_t *vdevice__find(const char *name, const char **arg,
                                             char *err, size_t err_size) {
  const char *colon = strchr(name, ':');
  size_t len = colon ? (size_t)(colon - name) : strlen(name);
  *arg = colon ? colon + 1 : "";
  for (size_t i = 0; i < VDEVICE__NB + vdevice__n; i++) {
    const vdevice_driver_t *d = i < VDEVICE__NB
                                    ? &vdevice__builtin[i]
                                    : vdevice__drivers[i - VDEVICE__NB];
    if (strlen(d->scheme) == len && strncmp(d->scheme, name, len) == 0)
      return d;
  }
  snprintf(err, err_size, "unknown video device '%.*s'",
           (int)(len > 64 ? 64 : len), name);
  return NULL;
}

static size_t vdevice__add(device_info_t *out, size_t max, size_t i,
                           const char *name, const char *desc,
                           enum device_kind kind, enum vdevice_type type) {
  if (i < max) {
    snprintf(out[i].name, sizeof(out[i].name), "%s", name);
    snprintf(out[i].description, sizeof(out[i].description), "%s", desc);
    out[i].kind = kind;
    out[i].type = (enum device_type)type; /* a vdevice_type here */
  }
  return i + 1;
}

static size_t vdevice__pattern_list(device_info_t *out, size_t max) {
  return vdevice__add(out, max, 0, "pattern",
                      "moving test pattern, 640x480 at 24 fps; "
                      "pattern:WxH[@FPS] for others",
                      DEVICE_SOURCE, VDEVICE_TYPE_PATTERN);
}

/* "" or "WxH" or "WxH@FPS". */
static int vdevice__pattern_source(const char *arg, video_source_t **out,
                                   char *err, size_t err_size) {
  int w = 640, h = 480, fps = 24;
  if (*arg) {
    char tail = 0;
    int n = sscanf(arg, "%5dx%5d%c", &w, &h, &tail);
    if (n == 3 && tail == '@')
      n = sscanf(arg, "%5dx%5d@%3d%c", &w, &h, &fps, &tail) == 3 ? 2 : 0;
    if (n != 2 || strspn(arg, "0123456789x@") != strlen(arg)) {
      snprintf(err, err_size,
               "pattern: expected pattern:WxH[@FPS], got 'pattern:%.64s'", arg);
      return -EINVAL;
    }
  }
  int r = vpattern_source_open(w, h, fps, out);
  if (r == -EINVAL)
    snprintf(err, err_size, "pattern: size must be 32x16..%dx%d and fps 1..120",
             VIDEO_MAX_WIDTH, VIDEO_MAX_HEIGHT);
  return r;
}

static size_t vdevice__y4m_list(device_info_t *out, size_t max) {
  size_t n = 0;
  n = vdevice__add(out, max, n, "y4m:PATH",
                   "Y4M file (8-bit 4:2:0) played once", DEVICE_SOURCE,
                   VDEVICE_TYPE_FILE);
  n = vdevice__add(out, max, n, "y4m-loop:PATH", "Y4M file played in a loop",
                   DEVICE_SOURCE, VDEVICE_TYPE_FILE);
  n = vdevice__add(out, max, n, "y4m:PATH",
                   "Y4M file at the first picture's size, 24 fps", DEVICE_SINK,
                   VDEVICE_TYPE_FILE);
  return n;
}

static int vdevice__y4m_open(const char *arg, bool loop, video_source_t **out,
                             char *err, size_t err_size) {
  if (!*arg) {
    snprintf(err, err_size, "y4m source needs a path (y4m:PATH)");
    return -EINVAL;
  }
  return y4m_source_open(arg, loop, out, err, err_size);
}

static int vdevice__y4m_source(const char *arg, video_source_t **out, char *err,
                               size_t err_size) {
  return vdevice__y4m_open(arg, false, out, err, err_size);
}

static int vdevice__y4m_loop_source(const char *arg, video_source_t **out,
                                    char *err, size_t err_size) {
  return vdevice__y4m_open(arg, true, out, err, err_size);
}

static int vdevice__y4m_sink(const char *arg, video_sink_t **out, char *err,
                             size_t err_size) {
  if (!*arg) {
    snprintf(err, err_size, "y4m sink needs a path (y4m:PATH)");
    return -EINVAL;
  }
  return y4m_sink_open(arg, out, err, err_size);
}

static size_t vdevice__null_list(device_info_t *out, size_t max) {
  return vdevice__add(out, max, 0, "null", "discards video", DEVICE_SINK,
                      VDEVICE_TYPE_NULL);
}

static int vdevice__null_sink(const char *arg, video_sink_t **out, char *err,
                              size_t err_size) {
  if (*arg) {
    snprintf(err, err_size, "null takes no argument");
    return -EINVAL;
  }
  video_sink_t *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->ops = &vdevice__null_ops;
  *out = s;
  return 0;
}

static int vdevice__null_write(video_sink_t *s, const video_image_t *img) {
  return 0;
}

static int vdevice__null_close(video_sink_t *s) {
  free(s);
  return 0;
}

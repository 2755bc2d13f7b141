/* The device registry: built-in drivers (file, tone, null) and those other
 * modules register, listing and opening by "scheme[:argument]" name. */
#include "device/device.h"

#include "device/null.h"
#include "device/tone.h"
#include "device/wavfile.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t device__file_list(device_info_t *out, size_t max);
static int device__file_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size);
static int device__file_loop_source(const char *arg, audio_source_t **out,
                                    char *err, size_t err_size);
static int device__file_sink(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size);
static size_t device__tone_list(device_info_t *out, size_t max);
static int device__tone_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size);
static size_t device__null_list(device_info_t *out, size_t max);
static int device__null_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size);
static int device__null_sink(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size);
static const device_driver_t *device__find(const char *name, const char **arg,
                                           char *err, size_t err_size);
static size_t device__add(device_info_t *out, size_t max, size_t i,
                          const char *name, const char *desc,
                          enum device_kind kind, enum device_type type);

static const device_driver_t device__builtin[] = {
    {"tone", DEVICE_TYPE_TONE, device__tone_list, device__tone_source, NULL},
    {"null", DEVICE_TYPE_NULL, device__null_list, device__null_source,
     device__null_sink},
    {"file", DEVICE_TYPE_FILE, device__file_list, device__file_source,
     device__file_sink},
    {"file-loop", DEVICE_TYPE_FILE, NULL, device__file_loop_source, NULL},
};

static pthread_mutex_t device__lock = PTHREAD_MUTEX_INITIALIZER;
static const device_driver_t *device__drivers[DEVICE_DRIVERS_MAX];
static size_t device__n;

int device_register(const device_driver_t *drv) {
  int r = 0;
  pthread_mutex_lock(&device__lock);
  for (size_t i = 0; i < sizeof(device__builtin) / sizeof(*device__builtin);
       i++)
    if (strcmp(device__builtin[i].scheme, drv->scheme) == 0)
      r = -EEXIST;
  for (size_t i = 0; i < device__n; i++)
    if (strcmp(device__drivers[i]->scheme, drv->scheme) == 0)
      r = -EEXIST;
  if (r == 0 && device__n == DEVICE_DRIVERS_MAX)
    r = -ENOSPC;
  if (r == 0)
    device__drivers[device__n++] = drv;
  pthread_mutex_unlock(&device__lock);
  return r;
}

size_t device_list(device_info_t *out, size_t max) {
  size_t total = 0;
  size_t nb = sizeof(device__builtin) / sizeof(*device__builtin);
  pthread_mutex_lock(&device__lock);
  for (size_t i = 0; i < nb + device__n; i++) {
    const device_driver_t *d =
        i < nb ? &device__builtin[i] : device__drivers[i - nb];
    if (!d->list)
      continue;
    size_t room = total < max ? max - total : 0;
    total += d->list(room ? out + total : NULL, room);
  }
  pthread_mutex_unlock(&device__lock);
  return total;
}

int device_open_source(const char *name, audio_source_t **out, char *err,
                       size_t err_size) {
  const char *arg;
  pthread_mutex_lock(&device__lock);
  const device_driver_t *d = device__find(name, &arg, err, err_size);
  pthread_mutex_unlock(&device__lock);
  if (!d)
    return -ENOENT;
  if (!d->open_source) {
    snprintf(err, err_size, "%s: not an audio source", name);
    return -ENOTSUP;
  }
  return d->open_source(arg, out, err, err_size);
}

int device_open_sink(const char *name, audio_sink_t **out, char *err,
                     size_t err_size) {
  const char *arg;
  pthread_mutex_lock(&device__lock);
  const device_driver_t *d = device__find(name, &arg, err, err_size);
  pthread_mutex_unlock(&device__lock);
  if (!d)
    return -ENOENT;
  if (!d->open_sink) {
    snprintf(err, err_size, "%s: not an audio sink", name);
    return -ENOTSUP;
  }
  return d->open_sink(arg, out, err, err_size);
}

const char *device_kind_name(enum device_kind kind) {
  return kind == DEVICE_SINK ? "sink" : "source";
}

const char *device_type_name(enum device_type type) {
  switch (type) {
  case DEVICE_TYPE_FILE:
    return "file";
  case DEVICE_TYPE_TONE:
    return "tone";
  case DEVICE_TYPE_NULL:
    return "null";
  case DEVICE_TYPE_API:
    return "api";
  case DEVICE_TYPE_PORTAUDIO:
    return "portaudio";
  }
  return "unknown";
}

/* The driver whose scheme is name up to ':' (or all of it). Lock held. */
static const device_driver_t *device__find(const char *name, const char **arg,
                                           char *err, size_t err_size) {
  const char *colon = strchr(name, ':');
  size_t len = colon ? (size_t)(colon - name) : strlen(name);
  *arg = colon ? colon + 1 : "";
  size_t nb = sizeof(device__builtin) / sizeof(*device__builtin);
  for (size_t i = 0; i < nb + device__n; i++) {
    const device_driver_t *d =
        i < nb ? &device__builtin[i] : device__drivers[i - nb];
    if (strlen(d->scheme) == len && strncmp(d->scheme, name, len) == 0)
      return d;
  }
  snprintf(err, err_size, "unknown device '%.*s'", (int)(len > 64 ? 64 : len),
           name);
  return NULL;
}

static size_t device__add(device_info_t *out, size_t max, size_t i,
                          const char *name, const char *desc,
                          enum device_kind kind, enum device_type type) {
  if (i < max) {
    snprintf(out[i].name, sizeof(out[i].name), "%s", name);
    snprintf(out[i].description, sizeof(out[i].description), "%s", desc);
    out[i].kind = kind;
    out[i].type = type;
  }
  return i + 1;
}

static size_t device__file_list(device_info_t *out, size_t max) {
  size_t n = 0;
  n = device__add(out, max, n, "file:PATH",
                  "WAV file played once (16-bit PCM, mono or stereo, any "
                  "rate)",
                  DEVICE_SOURCE, DEVICE_TYPE_FILE);
  n = device__add(out, max, n, "file-loop:PATH", "WAV file played in a loop",
                  DEVICE_SOURCE, DEVICE_TYPE_FILE);
  n = device__add(out, max, n, "file:PATH",
                  "WAV file written as 48 kHz mono 16-bit PCM", DEVICE_SINK,
                  DEVICE_TYPE_FILE);
  return n;
}

static int device__file_open(const char *arg, bool loop, audio_source_t **out,
                             char *err, size_t err_size) {
  if (!*arg) {
    snprintf(err, err_size, "file source needs a path (file:PATH)");
    return -EINVAL;
  }
  return wav_source_open(arg, loop, out, err, err_size);
}

static int device__file_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size) {
  return device__file_open(arg, false, out, err, err_size);
}

static int device__file_loop_source(const char *arg, audio_source_t **out,
                                    char *err, size_t err_size) {
  return device__file_open(arg, true, out, err, err_size);
}

static int device__file_sink(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size) {
  if (!*arg) {
    snprintf(err, err_size, "file sink needs a path (file:PATH)");
    return -EINVAL;
  }
  return wav_sink_open(arg, out, err, err_size);
}

static size_t device__tone_list(device_info_t *out, size_t max) {
  return device__add(out, max, 0, "tone",
                     "sine tone, 1000 Hz at -20 dBFS peak; "
                     "tone:HZ[:DBFS] for others",
                     DEVICE_SOURCE, DEVICE_TYPE_TONE);
}

/* A whole decimal number, nothing around it. */
static int device__number(const char *s, size_t len, double *out) {
  char buf[32];
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end;
  errno = 0;
  *out = strtod(buf, &end);
  return errno || *end || end == buf ? -1 : 0;
}

static int device__tone_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size) {
  double hz = TONE_DEFAULT_HZ, dbfs = TONE_DEFAULT_DBFS;
  if (*arg) {
    const char *colon = strchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
    if (device__number(arg, len, &hz) != 0 ||
        (colon && device__number(colon + 1, strlen(colon + 1), &dbfs) != 0)) {
      snprintf(err, err_size, "tone: expected tone:HZ[:DBFS], got 'tone:%s'",
               arg);
      return -EINVAL;
    }
  }
  int r = tone_source_open(hz, dbfs, out);
  if (r == -EINVAL)
    snprintf(err, err_size,
             "tone: frequency must be in (0, 24000) Hz and level in "
             "[-120, 0] dBFS");
  return r;
}

static size_t device__null_list(device_info_t *out, size_t max) {
  size_t n = device__add(out, max, 0, "null", "silence", DEVICE_SOURCE,
                         DEVICE_TYPE_NULL);
  return device__add(out, max, n, "null", "discards audio", DEVICE_SINK,
                     DEVICE_TYPE_NULL);
}

static int device__null_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size) {
  if (*arg) {
    snprintf(err, err_size, "null takes no argument");
    return -EINVAL;
  }
  return null_source_open(out);
}

static int device__null_sink(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size) {
  if (*arg) {
    snprintf(err, err_size, "null takes no argument");
    return -EINVAL;
  }
  return null_sink_open(out);
}

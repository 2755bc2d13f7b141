/* WAV file source (any rate, mono or stereo -> 48 kHz mono) and sink
 * (48 kHz mono, header kept valid while writing). */
#include "device/wavfile.h"

#include "device/resample.h"
#include "device/wav.h"
#include "media/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAVSRC_CHUNK 1024 /* input frames read at a time */

typedef struct wav_source {
  audio_source_t base;
  int fd;
  wav_info_t info;
  bool loop;
  uint64_t pos;   /* sample frames of the data chunk read so far */
  bool in_done;   /* played once: the whole file has been read */
  bool done;      /* nothing more to give */
  resample_t *rs; /* NULL at 48 kHz */
  int16_t mono[WAVSRC_CHUNK];
  float monof[WAVSRC_CHUNK]; /* the same, for the converter */
  size_t in_len, in_off;
  float outf[AUDIO_FRAME_SAMPLES];
  uint8_t raw[WAVSRC_CHUNK * 4];
} wav_source_t;

typedef struct wav_sink {
  audio_sink_t base;
  int fd;
  uint64_t data_len;
  unsigned since_header;
  int err; /* first write error, sticky */
} wav_sink_t;

static int wavsrc__read(audio_source_t *s, int16_t *pcm);
static void wavsrc__close(audio_source_t *s);
static int wavsrc__fill(wav_source_t *w);
static long wavsrc__pread(void *ctx, uint64_t offset, void *buf, size_t n);
static int wavsink__write(audio_sink_t *s, const int16_t *pcm);
static int wavsink__close(audio_sink_t *s);
static int wavsink__header(wav_sink_t *w);
static int wav__write_all(int fd, const void *buf, size_t n);

static const audio_source_ops_t wavsrc__ops = {wavsrc__read, wavsrc__close};
static const audio_sink_ops_t wavsink__ops = {wavsink__write, wavsink__close};

int wav_source_open(const char *path, bool loop, audio_source_t **out,
                    char *err, size_t err_size) {
  char why[200] = "";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, err_size, "%s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, err_size, "%s: not a regular file", path);
    close(fd);
    return -EINVAL;
  }
  wav_source_t *w = calloc(1, sizeof(*w));
  if (!w) {
    close(fd);
    return -ENOMEM;
  }
  w->fd = fd;
  int r = wav_parse(wavsrc__pread, w, (uint64_t)st.st_size, &w->info, why,
                    sizeof(why));
  int code = r == WAV_ERR_UNSUPPORTED ? -ENOTSUP
             : r == WAV_ERR_IO        ? -EIO
                                      : -EINVAL;
  if (r == 0 && loop && w->info.frames == 0) {
    r = -1;
    snprintf(why, sizeof(why), "no samples to loop");
  }
  if (r == 0 && w->info.rate != AUDIO_RATE) {
    w->rs = resample_new(w->info.rate, AUDIO_RATE, RESAMPLE_FAST);
    if (!w->rs) {
      r = -1;
      code = -ENOMEM;
      snprintf(why, sizeof(why), "cannot convert %u Hz", w->info.rate);
    }
  }
  if (r != 0) {
    snprintf(err, err_size, "%s: %s", path, why);
    close(fd);
    free(w);
    return code;
  }
  w->base.ops = &wavsrc__ops;
  w->base.paced = false;
  w->loop = loop;
  *out = &w->base;
  return 0;
}

int wav_sink_open(const char *path, audio_sink_t **out, char *err,
                  size_t err_size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    snprintf(err, err_size, "%s: %s", path, strerror(e));
    return -e;
  }
  wav_sink_t *w = calloc(1, sizeof(*w));
  if (!w) {
    close(fd);
    return -ENOMEM;
  }
  w->fd = fd;
  w->base.ops = &wavsink__ops;
  w->base.paced = false;
  /* Written, not pwritten: the samples follow it. */
  uint8_t h[WAV_HEADER_LEN];
  wav_header(h, AUDIO_RATE, 1, 0);
  int r = wav__write_all(fd, h, sizeof(h));
  if (r != 0) {
    snprintf(err, err_size, "%s: %s", path, strerror(-r));
    close(fd);
    free(w);
    return r;
  }
  *out = &w->base;
  return 0;
}

static int wavsrc__read(audio_source_t *s, int16_t *pcm) {
  wav_source_t *w = (wav_source_t *)s;
  size_t have = 0;
  if (w->done)
    return 0;
  while (have < AUDIO_FRAME_SAMPLES) {
    if (w->in_off == w->in_len && !w->in_done) {
      int r = wavsrc__fill(w);
      if (r < 0)
        return r;
    }
    size_t want = AUDIO_FRAME_SAMPLES - have;
    size_t avail = w->in_len - w->in_off;
    if (!w->rs) {
      if (avail == 0)
        break; /* in_done */
      size_t n = avail < want ? avail : want;
      memcpy(pcm + have, w->mono + w->in_off, n * sizeof(int16_t));
      w->in_off += n;
      have += n;
      continue;
    }
    size_t used;
    long got = resample_process(w->rs, w->monof + w->in_off, avail, &used,
                                w->outf + have, want, w->in_done);
    if (got < 0)
      return -EIO;
    w->in_off += used;
    resample_float_to_s16(w->outf + have, pcm + have, (size_t)got);
    have += (size_t)got;
    if (got == 0 && used == 0) {
      if (w->in_done)
        break; /* the converter's tail is out */
      if (avail > 0)
        return -EIO; /* no progress with input at hand: cannot happen */
    }
  }
  if (have == 0) {
    w->done = true;
    return 0;
  }
  if (have < AUDIO_FRAME_SAMPLES) {
    memset(pcm + have, 0, (AUDIO_FRAME_SAMPLES - have) * sizeof(int16_t));
    w->done = true;
  }
  return AUDIO_FRAME_SAMPLES;
}

static void wavsrc__close(audio_source_t *s) {
  wav_source_t *w = (wav_source_t *)s;
  resample_free(w->rs);
  close(w->fd);
  free(w);
}

/* Reads the next piece of the data chunk into mono[] (wrapping around when
 * looping). Sets in_done at the end of a file played once. */
static int wavsrc__fill(wav_source_t *w) {
  const wav_info_t *in = &w->info;
  w->in_off = w->in_len = 0;
  if (w->pos == in->frames) {
    if (!w->loop) {
      w->in_done = true;
      return 0;
    }
    w->pos = 0;
  }
  uint64_t left = in->frames - w->pos;
  size_t n = left < WAVSRC_CHUNK ? (size_t)left : WAVSRC_CHUNK;
  size_t bytes = n * in->block_align;
  long got = wavsrc__pread(w, in->data_offset + w->pos * in->block_align,
                           w->raw, bytes);
  if (got != (long)bytes)
    return -EIO; /* the file shrank under us */
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = w->raw + i * in->block_align;
    int32_t v = (int16_t)(p[0] | (p[1] << 8));
    if (in->channels == 2)
      v = (v + (int16_t)(p[2] | (p[3] << 8))) / 2;
    w->mono[i] = (int16_t)v;
  }
  if (w->rs)
    resample_s16_to_float(w->mono, w->monof, n);
  w->pos += n;
  w->in_len = n;
  return 0;
}

static long wavsrc__pread(void *ctx, uint64_t offset, void *buf, size_t n) {
  wav_source_t *w = ctx;
  size_t done = 0;
  while (done < n) {
    ssize_t r =
        pread(w->fd, (uint8_t *)buf + done, n - done, (off_t)(offset + done));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    done += (size_t)r;
  }
  return (long)done;
}

static int wavsink__write(audio_sink_t *s, const int16_t *pcm) {
  wav_sink_t *w = (wav_sink_t *)s;
  uint8_t buf[AUDIO_FRAME_SAMPLES * 2];
  if (w->err)
    return w->err;
  if (w->data_len + sizeof(buf) > UINT32_MAX - 36)
    return -EFBIG;
  for (size_t i = 0; i < AUDIO_FRAME_SAMPLES; i++) {
    buf[2 * i] = (uint8_t)pcm[i];
    buf[2 * i + 1] = (uint8_t)((uint16_t)pcm[i] >> 8);
  }
  int r = wav__write_all(w->fd, buf, sizeof(buf));
  if (r != 0)
    return w->err = r;
  w->data_len += sizeof(buf);
  if (++w->since_header >= WAV_SINK_HEADER_EVERY) {
    r = wavsink__header(w);
    if (r != 0)
      return w->err = r;
  }
  return 0;
}

static int wavsink__close(audio_sink_t *s) {
  wav_sink_t *w = (wav_sink_t *)s;
  int r = wavsink__header(w);
  if (close(w->fd) != 0 && r == 0)
    r = -errno;
  if (w->err)
    r = w->err;
  free(w);
  return r;
}

static int wavsink__header(wav_sink_t *w) {
  uint8_t h[WAV_HEADER_LEN];
  wav_header(h, AUDIO_RATE, 1, (uint32_t)w->data_len);
  w->since_header = 0;
  ssize_t r;
  do {
    r = pwrite(w->fd, h, sizeof(h), 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    return -errno;
  return r == (ssize_t)sizeof(h) ? 0 : -EIO;
}

static int wav__write_all(int fd, const void *buf, size_t n) {
  const uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

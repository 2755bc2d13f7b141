/* Y4M file source (once or looping) and sink (first picture's size,
 * Xseq on every FRAME line). */
#include "device/y4mfile.h"

#include "core/log.h"
#include "device/y4m.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct y4m_source {
  video_source_t base;
  FILE *f;
  y4m_info_t info;
  long data_off; /* where the first FRAME line starts */
  bool loop;
  bool done;
  bool warned;
  bool has_seq;
  uint32_t seq;
  uint64_t since_wrap; /* whole pictures read since the start or a wrap */
  char path[256];
} y4m_source_t;

typedef struct y4m_sink {
  video_sink_t base;
  FILE *f;
  int width, height; /* 0 until the first picture */
  video_image_t scaled;
  uint8_t *packed;
  int err; /* first error, sticky */
} y4m_sink_t;

enum { Y4M__PICTURE = 1, Y4M__END = 0 };

static int y4msrc__read(video_source_t *s, video_image_t *img);
static void y4msrc__close(video_source_t *s);
static int y4msrc__next(y4m_source_t *y, video_image_t *img);
static int y4msink__write(video_sink_t *s, const video_image_t *img);
static int y4msink__close(video_sink_t *s);
static int y4msink__start(y4m_sink_t *k, int width, int height);

static const video_source_ops_t y4msrc__ops = {y4msrc__read, y4msrc__close};
static const video_sink_ops_t y4msink__ops = {y4msink__write, y4msink__close};

int y4m_source_open(const char *path, bool loop, video_source_t **out,
                    char *err, size_t err_size) {
  FILE *f = fopen(path, "rbe");
  if (!f) {
    int e = errno;
    snprintf(err, err_size, "%s: %s", path, strerror(e));
    return -e;
  }
  y4m_source_t *y = calloc(1, sizeof(*y));
  if (!y) {
    fclose(f);
    return -ENOMEM;
  }
  y->f = f;
  y->loop = loop;
  snprintf(y->path, sizeof(y->path), "%s", path);
  uint8_t head[Y4M_LINE_MAX];
  size_t got = fread(head, 1, sizeof(head), f);
  char why[200] = "";
  long n = y4m_parse_header(head, got, &y->info, why, sizeof(why));
  int code = n == Y4M_ERR_UNSUPPORTED ? -ENOTSUP : -EINVAL;
  if (n < 0) {
    snprintf(err, err_size, "%s: %s", path, why);
    y4msrc__close(&y->base);
    return code;
  }
  y->data_off = n;
  if (fseek(f, n, SEEK_SET) != 0) {
    snprintf(err, err_size, "%s: %s", path, strerror(errno));
    y4msrc__close(&y->base);
    return -EIO;
  }
  if (loop) {
    /* A loop needs one whole picture, or it would spin. */
    video_image_t probe = {0};
    int r = y4msrc__next(y, &probe);
    video_image_free(&probe);
    if (r != Y4M__PICTURE || fseek(f, n, SEEK_SET) != 0) {
      snprintf(err, err_size, "%s: no whole picture to loop", path);
      y4msrc__close(&y->base);
      return r < 0 && r != -EINVAL ? r : -EINVAL;
    }
    y->since_wrap = 0;
    y->has_seq = false;
  }
  y->base.ops = &y4msrc__ops;
  y->base.paced = false;
  y->base.width = y->info.width;
  y->base.height = y->info.height;
  int fps = (y->info.fps_num + y->info.fps_den / 2) / y->info.fps_den;
  y->base.fps = fps < 1 ? 1 : fps;
  *out = &y->base;
  return 0;
}

bool y4m_source_last_seq(const video_source_t *s, uint32_t *seq) {
  const y4m_source_t *y = (const y4m_source_t *)s;
  if (y->has_seq)
    *seq = y->seq;
  return y->has_seq;
}

int y4m_sink_open(const char *path, video_sink_t **out, char *err,
                  size_t err_size) {
  FILE *f = fopen(path, "wbe");
  if (!f) {
    int e = errno;
    snprintf(err, err_size, "%s: %s", path, strerror(e));
    return -e;
  }
  y4m_sink_t *k = calloc(1, sizeof(*k));
  if (!k) {
    fclose(f);
    return -ENOMEM;
  }
  k->f = f;
  k->base.ops = &y4msink__ops;
  *out = &k->base;
  return 0;
}

static int y4msrc__read(video_source_t *s, video_image_t *img) {
  y4m_source_t *y = (y4m_source_t *)s;
  if (y->done)
    return 0;
  int r = y4msrc__next(y, img);
  if (r == Y4M__END && y->loop && y->since_wrap > 0) {
    if (fseek(y->f, y->data_off, SEEK_SET) != 0)
      return -EIO;
    y->since_wrap = 0;
    r = y4msrc__next(y, img);
  }
  if (r == Y4M__END)
    y->done = true;
  return r;
}

static void y4msrc__close(video_source_t *s) {
  y4m_source_t *y = (y4m_source_t *)s;
  fclose(y->f);
  free(y);
}

/* Reads the next FRAME line and picture. Returns Y4M__PICTURE, Y4M__END at
 * the end of the file or of its last whole picture, or -EINVAL / -EIO. */
static int y4msrc__next(y4m_source_t *y, video_image_t *img) {
  uint8_t line[Y4M_LINE_MAX];
  size_t n = 0;
  int c = 0;
  while (n < sizeof(line) && (c = getc(y->f)) != EOF) {
    line[n++] = (uint8_t)c;
    if (c == '\n')
      break;
  }
  if (ferror(y->f))
    return -EIO;
  if (n == 0)
    return Y4M__END;
  char why[200];
  bool has;
  uint32_t seq;
  long fl = y4m_parse_frame(line, n, &has, &seq, why, sizeof(why));
  if (fl == Y4M_ERR_TRUNCATED) {
    if (!y->warned)
      LOG_WARN("y4m", "%s: %s; ending at the last whole picture", y->path, why);
    y->warned = true;
    return Y4M__END;
  }
  if (fl < 0) {
    LOG_ERROR("y4m", "%s: %s", y->path, why);
    return -EINVAL;
  }
  int r = video_image_alloc(img, y->info.width, y->info.height);
  if (r != 0)
    return r;
  /* video_image_alloc lays the picture out tightly, as Y4M does. */
  size_t got = fread(img->buf, 1, y->info.frame_size, y->f);
  if (got != y->info.frame_size) {
    if (ferror(y->f))
      return -EIO;
    if (!y->warned)
      LOG_WARN("y4m",
               "%s: last picture has %zu of its %zu bytes; ending at the "
               "last whole picture",
               y->path, got, y->info.frame_size);
    y->warned = true;
    return Y4M__END;
  }
  y->has_seq = has;
  y->seq = seq;
  y->since_wrap++;
  return Y4M__PICTURE;
}

static int y4msink__write(video_sink_t *s, const video_image_t *img) {
  y4m_sink_t *k = (y4m_sink_t *)s;
  if (k->err)
    return k->err;
  if (!img->buf)
    return -EINVAL;
  if (k->width == 0) {
    int r = y4msink__start(k, img->width, img->height);
    if (r != 0)
      return k->err = r;
  }
  const video_image_t *pic = img;
  if (img->width != k->width || img->height != k->height) {
    if (video_image_scale(img, &k->scaled) != 0)
      return -EINVAL;
    pic = &k->scaled;
  }
  video_image_to_i420(pic, k->packed);
  size_t len = video_i420_size(k->width, k->height);
  if (fprintf(k->f, "FRAME Xseq=%u\n", (unsigned)img->seq) < 0 ||
      fwrite(k->packed, 1, len, k->f) != len)
    return k->err = -EIO;
  return 0;
}

static int y4msink__close(video_sink_t *s) {
  y4m_sink_t *k = (y4m_sink_t *)s;
  int r = k->err;
  if (fclose(k->f) != 0 && r == 0)
    r = -EIO;
  video_image_free(&k->scaled);
  free(k->packed);
  free(k);
  return r;
}

/* The header, the scratch picture and the packing buffer at the size of
 * the first picture. */
static int y4msink__start(y4m_sink_t *k, int width, int height) {
  char h[128];
  int r = video_image_alloc(&k->scaled, width, height);
  if (r != 0)
    return r;
  k->packed = malloc(video_i420_size(width, height));
  if (!k->packed)
    return -ENOMEM;
  int n = y4m_header(h, sizeof(h), width, height, Y4M_SINK_FPS);
  if (fwrite(h, 1, (size_t)n, k->f) != (size_t)n)
    return -EIO;
  k->width = width;
  k->height = height;
  return 0;
}

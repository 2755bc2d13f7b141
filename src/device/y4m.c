/* The Y4M header and FRAME line parser and the header writer (format and
 * rules in y4m.h). */
#include "device/y4m.h"

#include "media/video.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define Y4M__MAGIC "YUV4MPEG2"
#define Y4M__FRAME "FRAME"

static long y4m__line(const uint8_t *buf, size_t len, const char *what,
                      char *err, size_t err_size);
static bool y4m__uint(const uint8_t *s, size_t n, uint32_t max, uint32_t *out);
static bool y4m__ratio(const uint8_t *s, size_t n, uint32_t *num,
                       uint32_t *den);
static int y4m__param(const uint8_t *p, size_t n, y4m_info_t *out,
                      unsigned *seen, char *err, size_t err_size);
static void y4m__err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

long y4m_parse_header(const uint8_t *buf, size_t len, y4m_info_t *out,
                      char *err, size_t err_size) {
  size_t ml = strlen(Y4M__MAGIC);
  if (len < ml ? memcmp(buf, Y4M__MAGIC, len) != 0
               : memcmp(buf, Y4M__MAGIC, ml) != 0) {
    y4m__err(err, err_size, "not a Y4M file (no YUV4MPEG2 signature)");
    return Y4M_ERR_FORMAT;
  }
  long n = y4m__line(buf, len, "header", err, err_size);
  if (n < 0)
    return n;
  size_t end = (size_t)n - 1; /* the '\n' */
  if (end > ml && buf[ml] != ' ') {
    y4m__err(err, err_size, "not a Y4M file (no YUV4MPEG2 signature)");
    return Y4M_ERR_FORMAT;
  }
  memset(out, 0, sizeof(*out));
  unsigned seen = 0;
  size_t i = ml;
  while (i < end) {
    i++; /* the space */
    size_t j = i;
    while (j < end && buf[j] != ' ')
      j++;
    int r = y4m__param(buf + i, j - i, out, &seen, err, err_size);
    if (r != 0)
      return r;
    i = j;
  }
  static const char need[] = "WHF";
  for (int k = 0; k < 3; k++)
    if (!(seen & 1u << (need[k] - 'A'))) {
      y4m__err(err, err_size, "header lacks the %c parameter", need[k]);
      return Y4M_ERR_FORMAT;
    }
  out->frame_size = video_i420_size(out->width, out->height);
  return n;
}

long y4m_parse_frame(const uint8_t *buf, size_t len, bool *has_seq,
                     uint32_t *seq, char *err, size_t err_size) {
  size_t fl = strlen(Y4M__FRAME);
  *has_seq = false;
  if (memcmp(buf, Y4M__FRAME, len < fl ? len : fl) != 0) {
    y4m__err(err, err_size, "expected a FRAME line");
    return Y4M_ERR_FORMAT;
  }
  long n = y4m__line(buf, len, "FRAME line", err, err_size);
  if (n < 0)
    return n;
  size_t end = (size_t)n - 1;
  if (end > fl && buf[fl] != ' ') {
    y4m__err(err, err_size, "expected a FRAME line");
    return Y4M_ERR_FORMAT;
  }
  size_t i = fl;
  while (i < end) {
    i++;
    size_t j = i;
    while (j < end && buf[j] != ' ')
      j++;
    if (j - i > 5 && memcmp(buf + i, "Xseq=", 5) == 0 &&
        y4m__uint(buf + i + 5, j - i - 5, UINT32_MAX, seq))
      *has_seq = true;
    i = j;
  }
  return n;
}

long y4m_parse_buffer(const uint8_t *buf, size_t len, y4m_info_t *out,
                      char *err, size_t err_size) {
  long n = y4m_parse_header(buf, len, out, err, err_size);
  if (n < 0)
    return n;
  size_t off = (size_t)n;
  long frames = 0;
  while (off < len) {
    bool has;
    uint32_t seq;
    long f = y4m_parse_frame(buf + off, len - off, &has, &seq, err, err_size);
    if (f < 0)
      return f;
    off += (size_t)f;
    if (len - off < out->frame_size) {
      y4m__err(err, err_size,
               "picture %ld has %zu of its %zu bytes (file cut short)", frames,
               len - off, out->frame_size);
      return Y4M_ERR_TRUNCATED;
    }
    off += out->frame_size;
    frames++;
  }
  return frames;
}

int y4m_header(char *out, size_t size, int width, int height, int fps) {
  return snprintf(out, size, "YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C420jpeg\n",
                  width, height, fps);
}

const char *y4m_strerror(int err) {
  switch (err) {
  case 0:
    return "ok";
  case Y4M_ERR_FORMAT:
    return "not a valid Y4M file";
  case Y4M_ERR_UNSUPPORTED:
    return "unsupported Y4M format";
  case Y4M_ERR_TRUNCATED:
    return "truncated Y4M file";
  default:
    return "unknown error";
  }
}

/* Length of the line at buf with its '\n', or an error: no '\n' within
 * Y4M_LINE_MAX bytes is malformed, within the buffer's end truncated. */
static long y4m__line(const uint8_t *buf, size_t len, const char *what,
                      char *err, size_t err_size) {
  size_t lim = len < Y4M_LINE_MAX ? len : Y4M_LINE_MAX;
  const uint8_t *nl = memchr(buf, '\n', lim);
  if (nl)
    return (long)(nl - buf) + 1;
  if (len >= Y4M_LINE_MAX) {
    y4m__err(err, err_size, "%s longer than %d bytes", what, Y4M_LINE_MAX);
    return Y4M_ERR_FORMAT;
  }
  y4m__err(err, err_size, "file ends inside the %s", what);
  return Y4M_ERR_TRUNCATED;
}

/* One header parameter p (n bytes, without the separating space). */
static int y4m__param(const uint8_t *p, size_t n, y4m_info_t *out,
                      unsigned *seen, char *err, size_t err_size) {
  if (n == 0) {
    y4m__err(err, err_size, "empty header parameter (two spaces)");
    return Y4M_ERR_FORMAT;
  }
  char tag = (char)p[0];
  if (tag < 'A' || tag > 'Z' || (tag != 'X' && !strchr("WHFICA", tag))) {
    y4m__err(err, err_size, "unknown header parameter '%.*s'",
             (int)(n > 32 ? 32 : n), (const char *)p);
    return Y4M_ERR_FORMAT;
  }
  unsigned bit = 1u << (tag - 'A');
  if (tag != 'X' && (*seen & bit)) {
    y4m__err(err, err_size, "header parameter %c given twice", tag);
    return Y4M_ERR_FORMAT;
  }
  *seen |= bit;
  const uint8_t *v = p + 1;
  size_t vn = n - 1;
  uint32_t a, b;
  switch (tag) {
  case 'W':
  case 'H':
    if (!y4m__uint(v, vn, 1000000, &a) || a == 0) {
      y4m__err(err, err_size, "bad %s '%.*s'", tag == 'W' ? "width" : "height",
               (int)(n > 32 ? 32 : n), (const char *)p);
      return Y4M_ERR_FORMAT;
    }
    if (a < 2 || a > (tag == 'W' ? VIDEO_MAX_WIDTH : VIDEO_MAX_HEIGHT)) {
      y4m__err(err, err_size, "%s %u outside 2..%d",
               tag == 'W' ? "width" : "height", a,
               tag == 'W' ? VIDEO_MAX_WIDTH : VIDEO_MAX_HEIGHT);
      return Y4M_ERR_UNSUPPORTED;
    }
    if (tag == 'W')
      out->width = (int)a;
    else
      out->height = (int)a;
    return 0;
  case 'F':
    if (!y4m__ratio(v, vn, &a, &b) || a == 0 || b == 0 || a > INT32_MAX ||
        b > INT32_MAX) {
      y4m__err(err, err_size, "bad frame rate '%.*s' (expected Fn:d)",
               (int)(n > 32 ? 32 : n), (const char *)p);
      return Y4M_ERR_FORMAT;
    }
    out->fps_num = (int)a;
    out->fps_den = (int)b;
    return 0;
  case 'A':
    if (!y4m__ratio(v, vn, &a, &b)) {
      y4m__err(err, err_size, "bad pixel aspect '%.*s' (expected An:d)",
               (int)(n > 32 ? 32 : n), (const char *)p);
      return Y4M_ERR_FORMAT;
    }
    return 0;
  case 'I':
    if (vn != 1 || !strchr("ptbm?", v[0])) {
      y4m__err(err, err_size, "bad interlacing '%.*s'", (int)(n > 32 ? 32 : n),
               (const char *)p);
      return Y4M_ERR_FORMAT;
    }
    return 0;
  case 'C': {
    static const char *const ok[] = {"420", "420jpeg", "420paldv", "420mpeg2"};
    for (size_t k = 0; k < sizeof(ok) / sizeof(*ok); k++)
      if (strlen(ok[k]) == vn && memcmp(ok[k], v, vn) == 0)
        return 0;
    y4m__err(err, err_size,
             "colour space '%.*s' not supported (only 8-bit 4:2:0: C420, "
             "C420jpeg, C420paldv, C420mpeg2)",
             (int)(n > 32 ? 32 : n), (const char *)p);
    return Y4M_ERR_UNSUPPORTED;
  }
  default: /* X: an extension, ignored */
    return 0;
  }
}

/* A decimal number of n digits (no sign, no spaces) up to max. */
static bool y4m__uint(const uint8_t *s, size_t n, uint32_t max, uint32_t *out) {
  if (n == 0 || n > 10)
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  if (v > max)
    return false;
  *out = (uint32_t)v;
  return true;
}

/* "num:den", two decimal numbers. */
static bool y4m__ratio(const uint8_t *s, size_t n, uint32_t *num,
                       uint32_t *den) {
  const uint8_t *colon = memchr(s, ':', n);
  if (!colon)
    return false;
  size_t a = (size_t)(colon - s);
  return y4m__uint(s, a, UINT32_MAX, num) &&
         y4m__uint(colon + 1, n - a - 1, UINT32_MAX, den);
}

static void y4m__err(char *err, size_t err_size, const char *fmt, ...) {
  if (!err || err_size == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_size, fmt, ap);
  va_end(ap);
}

/* WAV parsing and header writing; the accepted subset is in wav.h. All
 * multi-byte fields are little-endian. */
#include "device/wav.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* KSDATAFORMAT_SUBTYPE_PCM without its first two bytes (the format tag). */
static const uint8_t wav__pcm_guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10,
                                               0x00, 0x80, 0x00, 0x00, 0xaa,
                                               0x00, 0x38, 0x9b, 0x71};

typedef struct wav__mem {
  const uint8_t *buf;
  size_t len;
} wav__mem_t;

static int wav__err(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int wav__read(wav_read_fn rd, void *ctx, uint64_t off, void *buf,
                     size_t n, char *err, size_t err_size);
static int wav__fmt(const uint8_t *b, uint32_t size, wav_info_t *out, char *err,
                    size_t err_size);
static long wav__mem_read(void *ctx, uint64_t offset, void *buf, size_t n);
static const char *wav__fourcc(const uint8_t *p, char out[5]);
static uint16_t le16(const uint8_t *p);
static uint32_t le32(const uint8_t *p);
static void le16_put(uint8_t *p, uint16_t v);
static void le32_put(uint8_t *p, uint32_t v);

int wav_parse(wav_read_fn rd, void *ctx, uint64_t file_size, wav_info_t *out,
              char *err, size_t err_size) {
  uint8_t h[12];
  memset(out, 0, sizeof(*out));
  if (file_size < 12)
    return wav__err(err, err_size, WAV_ERR_TRUNCATED,
                    "truncated: %" PRIu64 " bytes, a RIFF header needs 12",
                    file_size);
  int r = wav__read(rd, ctx, 0, h, 12, err, err_size);
  if (r)
    return r;
  if (memcmp(h, "RIFF", 4) != 0)
    return wav__err(err, err_size, WAV_ERR_FORMAT, "not a RIFF file");
  char id[5];
  if (memcmp(h + 8, "WAVE", 4) != 0)
    return wav__err(err, err_size, WAV_ERR_FORMAT,
                    "RIFF file of form '%s', not WAVE", wav__fourcc(h + 8, id));
  uint64_t riff_end = 8 + (uint64_t)le32(h + 4);
  if (riff_end < 12)
    return wav__err(err, err_size, WAV_ERR_FORMAT,
                    "RIFF size %" PRIu64 " too small", riff_end - 8);
  if (riff_end > file_size)
    return wav__err(err, err_size, WAV_ERR_TRUNCATED,
                    "truncated: the RIFF header says %" PRIu64
                    " bytes, the file has %" PRIu64,
                    riff_end, file_size);

  bool have_fmt = false;
  uint64_t off = 12;
  for (;;) {
    if (off + 8 > riff_end)
      return wav__err(err, err_size, WAV_ERR_FORMAT, "no %s chunk",
                      have_fmt ? "data" : "fmt");
    uint8_t c[8];
    r = wav__read(rd, ctx, off, c, 8, err, err_size);
    if (r)
      return r;
    uint32_t size = le32(c + 4);
    uint64_t body = off + 8, end = body + size;
    if (end > riff_end)
      return wav__err(
          err, err_size, end > file_size ? WAV_ERR_TRUNCATED : WAV_ERR_FORMAT,
          "%s: chunk '%.4s' declares %" PRIu32 " bytes, %" PRIu64 " remain",
          end > file_size ? "truncated" : "chunk overruns RIFF",
          wav__fourcc(c, id), size, riff_end - body);
    if (memcmp(c, "fmt ", 4) == 0) {
      if (have_fmt)
        return wav__err(err, err_size, WAV_ERR_FORMAT, "two fmt chunks");
      uint8_t f[40];
      uint32_t n = size < sizeof(f) ? size : (uint32_t)sizeof(f);
      if (n < 16)
        return wav__err(err, err_size, WAV_ERR_FORMAT,
                        "fmt chunk of %" PRIu32 " bytes, needs 16", size);
      r = wav__read(rd, ctx, body, f, n, err, err_size);
      if (r)
        return r;
      r = wav__fmt(f, n, out, err, err_size);
      if (r)
        return r;
      have_fmt = true;
    } else if (memcmp(c, "data", 4) == 0) {
      if (!have_fmt)
        return wav__err(err, err_size, WAV_ERR_FORMAT,
                        "data chunk before the fmt chunk");
      if (size % out->block_align)
        return wav__err(err, err_size, WAV_ERR_FORMAT,
                        "data chunk of %" PRIu32
                        " bytes is not whole %u-byte frames",
                        size, out->block_align);
      out->data_offset = body;
      out->data_len = size;
      out->frames = size / out->block_align;
      return 0;
    }
    off = end + (size & 1); /* chunks are padded to even sizes */
  }
}

int wav_parse_buffer(const uint8_t *buf, size_t len, wav_info_t *out, char *err,
                     size_t err_size) {
  wav__mem_t m = {buf, len};
  return wav_parse(wav__mem_read, &m, len, out, err, err_size);
}

void wav_header(uint8_t out[WAV_HEADER_LEN], unsigned rate, unsigned channels,
                uint32_t data_len) {
  unsigned align = 2 * channels;
  memcpy(out, "RIFF", 4);
  le32_put(out + 4, 36 + data_len);
  memcpy(out + 8, "WAVEfmt ", 8);
  le32_put(out + 16, 16);
  le16_put(out + 20, 1); /* PCM */
  le16_put(out + 22, (uint16_t)channels);
  le32_put(out + 24, rate);
  le32_put(out + 28, rate * align);
  le16_put(out + 32, (uint16_t)align);
  le16_put(out + 34, 16);
  memcpy(out + 36, "data", 4);
  le32_put(out + 40, data_len);
}

const char *wav_strerror(int err) {
  switch (err) {
  case 0:
    return "ok";
  case WAV_ERR_FORMAT:
    return "not a valid WAV file";
  case WAV_ERR_UNSUPPORTED:
    return "unsupported WAV format";
  case WAV_ERR_TRUNCATED:
    return "truncated WAV file";
  case WAV_ERR_IO:
    return "read error";
  default:
    return "unknown error";
  }
}

/* The fmt chunk's first n (16..40) bytes. */
static int wav__fmt(const uint8_t *b, uint32_t n, wav_info_t *out, char *err,
                    size_t err_size) {
  uint16_t tag = le16(b);
  unsigned ch = le16(b + 2);
  uint32_t rate = le32(b + 4);
  uint32_t byte_rate = le32(b + 8);
  unsigned align = le16(b + 12);
  unsigned bits = le16(b + 14);
  if (tag == 0xfffe) { /* WAVE_FORMAT_EXTENSIBLE */
    if (n < 40 || le16(b + 16) < 22)
      return wav__err(err, err_size, WAV_ERR_FORMAT,
                      "extensible fmt chunk too short");
    if (le16(b + 24) != 1 || memcmp(b + 26, wav__pcm_guid_tail, 14) != 0)
      return wav__err(err, err_size, WAV_ERR_UNSUPPORTED,
                      "extensible sub-format is not PCM");
    if (le16(b + 18) != bits)
      return wav__err(err, err_size, WAV_ERR_UNSUPPORTED,
                      "%u valid bits in %u-bit samples", le16(b + 18), bits);
  } else if (tag != 1) {
    return wav__err(err, err_size, WAV_ERR_UNSUPPORTED,
                    "format tag 0x%04x is not PCM", tag);
  }
  if (bits != 16)
    return wav__err(err, err_size, WAV_ERR_UNSUPPORTED,
                    "%u-bit samples, only 16-bit is supported", bits);
  if (ch != 1 && ch != 2)
    return wav__err(err, err_size, WAV_ERR_UNSUPPORTED,
                    "%u channels, only mono and stereo are supported", ch);
  if (rate < WAV_MIN_RATE || rate > WAV_MAX_RATE)
    return wav__err(err, err_size, WAV_ERR_UNSUPPORTED,
                    "sample rate %" PRIu32 " Hz outside %d..%d", rate,
                    WAV_MIN_RATE, WAV_MAX_RATE);
  if (align != 2 * ch || byte_rate != rate * align)
    return wav__err(err, err_size, WAV_ERR_FORMAT,
                    "inconsistent fmt: block align %u, byte rate %" PRIu32
                    " for %u channels at %" PRIu32 " Hz",
                    align, byte_rate, ch, rate);
  out->channels = ch;
  out->rate = rate;
  out->block_align = align;
  return 0;
}

static int wav__read(wav_read_fn rd, void *ctx, uint64_t off, void *buf,
                     size_t n, char *err, size_t err_size) {
  long got = rd(ctx, off, buf, n);
  if (got < 0)
    return wav__err(err, err_size, WAV_ERR_IO, "read error at offset %" PRIu64,
                    off);
  if ((size_t)got < n)
    return wav__err(err, err_size, WAV_ERR_TRUNCATED,
                    "truncated: file ends at %" PRIu64 ", inside a header",
                    off + (uint64_t)got);
  return 0;
}

static int wav__err(char *err, size_t err_size, int code, const char *fmt,
                    ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return code;
}

static long wav__mem_read(void *ctx, uint64_t offset, void *buf, size_t n) {
  const wav__mem_t *m = ctx;
  if (offset >= m->len)
    return 0;
  size_t avail = m->len - (size_t)offset;
  if (n > avail)
    n = avail;
  memcpy(buf, m->buf + offset, n);
  return (long)n;
}

/* A chunk ID fit to print: anything but printable ASCII becomes '?'. */
static const char *wav__fourcc(const uint8_t *p, char out[5]) {
  for (int i = 0; i < 4; i++)
    out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
  out[4] = '\0';
  return out;
}

static uint16_t le16(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

static void le16_put(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void le32_put(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

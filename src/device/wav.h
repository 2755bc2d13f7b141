/* The WAV (RIFF/WAVE) format: a strict parser of the header and chunk list,
 * and the canonical 44-byte header parley writes.
 *
 * Accepted: a RIFF container of form WAVE whose chunks fit in it and in the
 * file; one "fmt " chunk before the "data" chunk, describing 16-bit integer
 * PCM (format tag 1, or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format),
 * 1 or 2 channels, 8000..192000 Hz, with consistent block align and byte
 * rate; a data chunk holding whole sample frames. Other chunks (LIST, fact,
 * ...) are skipped, however large. Anything else is refused with a message
 * naming the problem, and a file cut short anywhere is reported as
 * truncated, with how many bytes were promised and how many are there.
 *
 * Owns nothing. Pure functions; any thread.
 */
#ifndef PARLEY_DEVICE_WAV_H
#define PARLEY_DEVICE_WAV_H

#include <stddef.h>
#include <stdint.h>

#define WAV_HEADER_LEN 44
#define WAV_MIN_RATE 8000
#define WAV_MAX_RATE 192000

/* Errors (negative). */
#define WAV_ERR_FORMAT (-1)      /* not a well-formed WAV file */
#define WAV_ERR_UNSUPPORTED (-2) /* well-formed, but not 16-bit PCM 1-2 ch */
#define WAV_ERR_TRUNCATED (-3)   /* the file ends before its chunks do */
#define WAV_ERR_IO (-4)          /* the read function failed */

typedef struct wav_info {
  unsigned channels;    /* 1 or 2 */
  unsigned rate;        /* samples per second */
  unsigned block_align; /* bytes per sample frame: 2 x channels */
  uint64_t data_offset; /* file offset of the first sample */
  uint64_t data_len;    /* bytes of samples, a multiple of block_align */
  uint64_t frames;      /* data_len / block_align */
} wav_info_t;

/* Reads up to n bytes at offset; returns the count (short only at the end
 * of the file) or a negative value on error. */
typedef long (*wav_read_fn)(void *ctx, uint64_t offset, void *buf, size_t n);

/* Parses the file of file_size bytes that rd reads. Returns 0 or a WAV_ERR_*
 * code with a message in err (which may be NULL). */
int wav_parse(wav_read_fn rd, void *ctx, uint64_t file_size, wav_info_t *out,
              char *err, size_t err_size);

/* The same over a file held in memory. */
int wav_parse_buffer(const uint8_t *buf, size_t len, wav_info_t *out, char *err,
                     size_t err_size);

/* A PCM 16-bit header for data_len bytes of samples. */
void wav_header(uint8_t out[WAV_HEADER_LEN], unsigned rate, unsigned channels,
                uint32_t data_len);

/* Human-readable name of a WAV_ERR_* code. */
const char *wav_strerror(int err);

#endif

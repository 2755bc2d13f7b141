/* The YUV4MPEG2 (Y4M) format: a strict parser of the stream header and of
 * FRAME lines, working on bytes in memory, and the header parley writes.
 *
 * Accepted: "YUV4MPEG2" followed by space-separated parameters up to a
 * '\n' within Y4M_LINE_MAX bytes: W and H (2..VIDEO_MAX_*), F (rate n:d,
 * both positive) are required; C may be absent or 420, 420jpeg, 420paldv,
 * 420mpeg2 (all 8-bit 4:2:0, the chroma siting is ignored); I (one of
 * p t b m ?), A (n:d) and X (anything) are accepted and ignored. Other
 * colour spaces (mono, 422, 444, 420p10, ...) are refused as unsupported;
 * unknown, repeated or malformed parameters as malformed. Each picture is a
 * "FRAME" line (its parameters ignored except parley's Xseq=N) and then
 * video_i420_size(W, H) bytes.
 *
 * Owns nothing. Pure functions; any thread.
 */
#ifndef PARLEY_DEVICE_Y4M_H
#define PARLEY_DEVICE_Y4M_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define Y4M_LINE_MAX 1024 /* longest header or FRAME line accepted */

/* Errors (negative). */
#define Y4M_ERR_FORMAT (-1)      /* not a well-formed Y4M stream */
#define Y4M_ERR_UNSUPPORTED (-2) /* well-formed, but not 8-bit 4:2:0 */
#define Y4M_ERR_TRUNCATED (-3)   /* the bytes end inside a line */

typedef struct y4m_info {
  int width, height;
  int fps_num, fps_den;
  size_t frame_size; /* bytes of one picture after its FRAME line */
} y4m_info_t;

/* Parses the stream header at the start of buf (len bytes). Returns its
 * length with the '\n', or a Y4M_ERR_* code with a message in err (which
 * may be NULL). */
long y4m_parse_header(const uint8_t *buf, size_t len, y4m_info_t *out,
                      char *err, size_t err_size);

/* Parses a FRAME line at the start of buf. Returns its length with the
 * '\n', or a Y4M_ERR_* code with err. *seq is set and *has_seq true when
 * the line carries a valid Xseq=N (N a 32-bit decimal). */
long y4m_parse_frame(const uint8_t *buf, size_t len, bool *has_seq,
                     uint32_t *seq, char *err, size_t err_size);

/* Walks a whole stream in memory: the header and every picture. Returns
 * the number of whole pictures, or a Y4M_ERR_* code; a stream cut inside a
 * picture's bytes gives Y4M_ERR_TRUNCATED. */
long y4m_parse_buffer(const uint8_t *buf, size_t len, y4m_info_t *out,
                      char *err, size_t err_size);

/* Writes the header parley's sink uses ("YUV4MPEG2 W.. H.. F24:1 Ip A1:1
 * C420jpeg\n") for fps/1; returns its length (snprintf's). */
int y4m_header(char *out, size_t size, int width, int height, int fps);

/* Human-readable name of a Y4M_ERR_* code. */
const char *y4m_strerror(int err);

#endif

/* Small helpers: hex, time, paths and files; see util.h. */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void hex_encode(char *out, const uint8_t *in, size_t n) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex__nibble(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

int hex_decode(uint8_t *out, size_t n, const char *in, size_t in_len) {
  if (in_len != 2 * n)
    return -1;
  for (size_t i = 0; i < n; i++) {
    int hi = hex__nibble(in[2 * i]);
    int lo = hex__nibble(in[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

uint64_t time_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t time_now_s(void) {
  return time_now_us() / 1000000u;
}

uint64_t time_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void time_sleep_until_ns(uint64_t t_ns) {
  struct timespec ts = {(time_t)(t_ns / 1000000000u),
                        (long)(t_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

int path_mkdir_p(const char *path, unsigned mode) {
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof(buf))
    return -ENAMETOOLONG;
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(buf, mode) != 0) {
    if (errno != EEXIST)
      return -errno;
    struct stat st;
    if (stat(buf, &st) != 0)
      return -errno;
    if (!S_ISDIR(st.st_mode))
      return -ENOTDIR;
  }
  if (chmod(buf, mode) != 0)
    return -errno;
  return 0;
}

int path_join(char *out, size_t out_size, const char *dir, const char *name) {
  int n = snprintf(out, out_size, "%s/%s", dir, name);
  return (n < 0 || (size_t)n >= out_size) ? -1 : 0;
}

long file_read_all(const char *path, size_t max, uint8_t **out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  uint8_t *buf = malloc(max + 1);
  if (!buf) {
    close(fd);
    return -ENOMEM;
  }
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, max + 1 - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return -e;
    }
    if (r == 0)
      break;
    len += (size_t)r;
    if (len > max) {
      free(buf);
      close(fd);
      return -EFBIG;
    }
  }
  close(fd);
  *out = buf;
  return (long)len;
}

int file_write_atomic(const char *path, const void *data, size_t len,
                      unsigned mode) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
      (int)sizeof(tmp))
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return -errno;
  const uint8_t *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return -e;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return -e;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return -e;
  }
  return 0;
}

/* Leveled logging to stderr; see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log__level = LOG_LEVEL_INFO;

static const char *const log__names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level) {
  atomic_store(&log__level, (int)level);
}

enum log_level log_get_level(void) {
  return (enum log_level)atomic_load(&log__level);
}

int log_parse_level(const char *name, enum log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, log__names[i]) == 0) {
      *out = (enum log_level)i;
      return 0;
    }
  }
  return -1;
}

void log_write(enum log_level level, const char *module, const char *fmt, ...) {
  if ((int)level > atomic_load(&log__level))
    return;

  char buf[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(buf, sizeof(buf),
                   "%02d:%02d:%02d.%03ld %-5s %s: ", tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, log__names[level], module);
  if (n < 0)
    return;

  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    m = 0;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof(buf) - 2)
    len = sizeof(buf) - 2; /* truncated: keep the newline */
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}

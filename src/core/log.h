/* Leveled logging to stderr.
 *
 * Owns the process-wide log level. Any thread may log: each message is
 * formatted into one buffer and written with a single write(2), so lines
 * from different threads never interleave.
 */
#ifndef PARLEY_CORE_LOG_H
#define PARLEY_CORE_LOG_H

enum log_level {
  LOG_LEVEL_ERROR = 0,
  LOG_LEVEL_WARN = 1,
  LOG_LEVEL_INFO = 2,
  LOG_LEVEL_DEBUG = 3,
};

/* Sets the level; messages above it are dropped. Default: LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "error", "warn", "info" or "debug". Returns 0 or -1 if unknown. */
int log_parse_level(const char *name, enum log_level *out);

/* Writes "<time> <level> <module>: <message>\n" to stderr. */
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_ERROR(mod, ...) log_write(LOG_LEVEL_ERROR, mod, __VA_ARGS__)
#define LOG_WARN(mod, ...) log_write(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define LOG_INFO(mod, ...) log_write(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define LOG_DEBUG(mod, ...)                                                    \
  do {                                                                         \
    if (log_get_level() >= LOG_LEVEL_DEBUG)                                    \
      log_write(LOG_LEVEL_DEBUG, mod, __VA_ARGS__);                            \
  } while (0)

#endif

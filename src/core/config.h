/* parleyd's configuration: defaults, the config file, then command-line
 * flags, in that order of precedence (later wins).
 *
 * The file is "key = value" lines; '#' starts a comment. Unknown keys and
 * bad values are errors with the file name and line number: a typo never
 * silently falls back to a default. Default path:
 * $XDG_CONFIG_HOME/parley/parleyd.conf (~/.config/parley/parleyd.conf).
 *
 * Threads: filled on the loop thread at start-up, read-only afterwards.
 */
#ifndef PARLEY_CORE_CONFIG_H
#define PARLEY_CORE_CONFIG_H

#include "core/log.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_PATH_MAX 1024
#define CONFIG_DEFAULT_PORT 7760

/* A setting that may also be left to the daemon's judgement. */
enum config_switch {
  CONFIG_AUTO = 0,
  CONFIG_OFF = 1,
  CONFIG_ON = 2,
};

typedef struct parley_config {
  char config_path[CONFIG_PATH_MAX];
  char data_dir[CONFIG_PATH_MAX];
  char socket_path[CONFIG_PATH_MAX]; /* "" until resolved by the API */
  char listen[64]; /* "ip:port" / "[ip6]:port"; one UDP socket */
  enum log_level log_level;
  int accept_calls_from_anyone; /* accept_calls_from = contacts | anyone */
  unsigned ring_timeout_ms;     /* ring_timeout = seconds (decimals ok) */
  unsigned offers_per_minute;   /* per peer, before offers are dropped */
  /* Audio processing defaults for new calls: aec, ns, agc = auto | on |
   * off (auto: on when capturing from a microphone). */
  enum config_switch audio_aec, audio_ns, audio_agc;
  int dtx; /* dtx = on | off: Opus DTX in new calls (default on) */
} parley_config_t;

/* Fills defaults from the environment (XDG_CONFIG_HOME, XDG_DATA_HOME, HOME).
 * Returns 0 or -1 with err set (no HOME and no XDG variables). */
int config_defaults(parley_config_t *cfg, char *err, size_t err_size);

/* Reads the file at cfg->config_path over cfg. A missing file is created
 * with commented defaults when create_missing is set, else ignored.
 * Returns 0 or -1 with err set ("file:line: reason"). */
int config_load_file(parley_config_t *cfg, int create_missing, char *err,
                     size_t err_size);

/* Reads settings from an open stream; name is used in error messages.
 * Exposed for tests and fuzzing. Returns 0 or -1 with err set. */
int config_load_stream(parley_config_t *cfg, FILE *f, const char *name,
                       char *err, size_t err_size);

/* Applies one setting by name, as from the file or a flag.
 * Returns 0 or -1 with err set. */
int config_set(parley_config_t *cfg, const char *key, const char *value,
               char *err, size_t err_size);

#endif

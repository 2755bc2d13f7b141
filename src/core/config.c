/* Configuration defaults, file parsing and settings; see config.h. */
#include "core/config.h"

#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char config__template[] =
    "# parleyd configuration. Lines are \"key = value\"; '#' comments.\n"
    "# Command-line flags override these.\n"
    "#\n"
    "# UDP address for QUIC (one socket; [::]:PORT serves IPv4 too):\n"
    "# listen = 0.0.0.0:7760\n"
    "# Where identity, contacts and call history live:\n"
    "# data_dir = ~/.local/share/parley\n"
    "# The JSON-RPC socket:\n"
    "# socket = $XDG_RUNTIME_DIR/parley/parleyd.sock\n"
    "# error | warn | info | debug:\n"
    "# log_level = info\n"
    "# Who may call: contacts | anyone\n"
    "# accept_calls_from = contacts\n"
    "# Seconds an unanswered call rings before it ends as missed:\n"
    "# ring_timeout = 45\n"
    "# Offers one peer may send per minute before they are dropped:\n"
    "# offers_per_minute = 6\n"
    "# Echo cancellation, noise suppression, gain control on what calls\n"
    "# capture: auto (on for a microphone, off for files, tones and\n"
    "# frames from the API) | on | off:\n"
    "# aec = auto\n"
    "# ns = auto\n"
    "# agc = auto\n"
    "# Opus DTX: silence in calls sends next to nothing: on | off\n"
    "# dtx = on\n";

static int config__err(char *err, size_t size, const char *fmt, const char *a) {
  if (err)
    snprintf(err, size, fmt, a);
  return -1;
}

/* Picks $var/sub, else $HOME/fallback/sub. */
static int config__xdg(char *out, const char *var, const char *fallback,
                       const char *sub) {
  const char *base = getenv(var);
  int n;
  if (base && base[0] == '/') {
    n = snprintf(out, CONFIG_PATH_MAX, "%s/%s", base, sub);
  } else {
    const char *home = getenv("HOME");
    if (!home || home[0] != '/')
      return -1;
    n = snprintf(out, CONFIG_PATH_MAX, "%s/%s/%s", home, fallback, sub);
  }
  return (n < 0 || n >= CONFIG_PATH_MAX) ? -1 : 0;
}

int config_defaults(parley_config_t *cfg, char *err, size_t err_size) {
  memset(cfg, 0, sizeof(*cfg));
  if (config__xdg(cfg->config_path, "XDG_CONFIG_HOME", ".config",
                  "parley/parleyd.conf") != 0 ||
      config__xdg(cfg->data_dir, "XDG_DATA_HOME", ".local/share", "parley") !=
          0)
    return config__err(err, err_size,
                       "cannot find a home: set HOME or XDG_CONFIG_HOME and "
                       "XDG_DATA_HOME%s",
                       "");
  snprintf(cfg->listen, sizeof(cfg->listen), "0.0.0.0:%d", CONFIG_DEFAULT_PORT);
  cfg->log_level = LOG_LEVEL_INFO;
  cfg->ring_timeout_ms = 45000;
  cfg->offers_per_minute = 6;
  cfg->dtx = 1;
  return 0;
}

static int config__copy_path(char *dst, const char *value, char *err,
                             size_t err_size) {
  if (value[0] != '/')
    return config__err(err, err_size, "path must be absolute: %s", value);
  if (strlen(value) >= CONFIG_PATH_MAX)
    return config__err(err, err_size, "path too long: %s", value);
  strcpy(dst, value);
  return 0;
}

/* The shape only ("host:port"); the endpoint parses it when it binds. */
static int config__set_listen(parley_config_t *cfg, const char *value,
                              char *err, size_t err_size) {
  if (strchr(value, ',') || strchr(value, ' '))
    return config__err(err, err_size,
                       "only one listen address ([::]:PORT serves IPv4 and "
                       "IPv6): %s",
                       value);
  if (strlen(value) >= sizeof(cfg->listen) || !strchr(value, ':'))
    return config__err(err, err_size, "bad listen address (want ip:port): %s",
                       value);
  strcpy(cfg->listen, value);
  return 0;
}

/* aec, ns, agc: auto | on | off. */
static enum config_switch *config__switch(parley_config_t *cfg,
                                          const char *key) {
  if (strcmp(key, "aec") == 0)
    return &cfg->audio_aec;
  if (strcmp(key, "ns") == 0)
    return &cfg->audio_ns;
  if (strcmp(key, "agc") == 0)
    return &cfg->audio_agc;
  return NULL;
}

static int config__set_switch(enum config_switch *to, const char *key,
                              const char *value, char *err, size_t err_size) {
  if (strcmp(value, "auto") == 0)
    *to = CONFIG_AUTO;
  else if (strcmp(value, "on") == 0)
    *to = CONFIG_ON;
  else if (strcmp(value, "off") == 0)
    *to = CONFIG_OFF;
  else if (err)
    snprintf(err, err_size, "%s must be auto, on or off, not '%s'", key, value);
  return strcmp(value, "auto") && strcmp(value, "on") && strcmp(value, "off")
             ? -1
             : 0;
}

int config_set(parley_config_t *cfg, const char *key, const char *value,
               char *err, size_t err_size) {
  enum config_switch *sw = config__switch(cfg, key);
  if (sw)
    return config__set_switch(sw, key, value, err, err_size);
  if (strcmp(key, "listen") == 0)
    return config__set_listen(cfg, value, err, err_size);
  if (strcmp(key, "data_dir") == 0)
    return config__copy_path(cfg->data_dir, value, err, err_size);
  if (strcmp(key, "socket") == 0)
    return config__copy_path(cfg->socket_path, value, err, err_size);
  if (strcmp(key, "log_level") == 0) {
    if (log_parse_level(value, &cfg->log_level) != 0)
      return config__err(err, err_size,
                         "log_level must be error, warn, info or debug, not "
                         "'%s'",
                         value);
    return 0;
  }
  if (strcmp(key, "accept_calls_from") == 0) {
    if (strcmp(value, "contacts") && strcmp(value, "anyone"))
      return config__err(err, err_size,
                         "accept_calls_from must be contacts or anyone, not "
                         "'%s'",
                         value);
    cfg->accept_calls_from_anyone = strcmp(value, "anyone") == 0;
    return 0;
  }
  if (strcmp(key, "ring_timeout") == 0) {
    char *end;
    double v = strtod(value, &end);
    if (end == value || *end || !(v >= 0.1 && v <= 3600))
      return config__err(err, err_size,
                         "ring_timeout must be seconds in 0.1..3600, not "
                         "'%s'",
                         value);
    cfg->ring_timeout_ms = (unsigned)(v * 1000);
    return 0;
  }
  if (strcmp(key, "dtx") == 0) {
    if (strcmp(value, "on") && strcmp(value, "off"))
      return config__err(err, err_size, "dtx must be on or off, not '%s'",
                         value);
    cfg->dtx = strcmp(value, "on") == 0;
    return 0;
  }
  if (strcmp(key, "offers_per_minute") == 0) {
    char *end;
    long v = strtol(value, &end, 10);
    if (end == value || *end || v < 1 || v > 10000)
      return config__err(err, err_size,
                         "offers_per_minute must be 1..10000, not '%s'", value);
    cfg->offers_per_minute = (unsigned)v;
    return 0;
  }
  return config__err(err, err_size, "unknown setting '%s'", key);
}

static char *config__trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                   s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

static int config__create(const char *path, char *err, size_t err_size) {
  char dir[CONFIG_PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  int r = path_mkdir_p(dir, 0700);
  if (r == 0)
    r = file_write_atomic(path, config__template, strlen(config__template),
                          0600);
  if (r != 0)
    return config__err(err, err_size, "cannot create %s", path);
  return 0;
}

int config_load_file(parley_config_t *cfg, int create_missing, char *err,
                     size_t err_size) {
  FILE *f = fopen(cfg->config_path, "r");
  if (!f) {
    if (errno != ENOENT)
      return config__err(err, err_size, "cannot read %s", cfg->config_path);
    return create_missing ? config__create(cfg->config_path, err, err_size) : 0;
  }
  int rc = config_load_stream(cfg, f, cfg->config_path, err, err_size);
  fclose(f);
  return rc;
}

int config_load_stream(parley_config_t *cfg, FILE *f, const char *name,
                       char *err, size_t err_size) {
  char line[2048], why[512];
  int lineno = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof(line), f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      snprintf(why, sizeof(why), "line too long");
      rc = -1;
      break;
    }
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char *s = config__trim(line);
    if (!*s)
      continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      snprintf(why, sizeof(why), "expected \"key = value\"");
      rc = -1;
      break;
    }
    *eq = '\0';
    rc = config_set(cfg, config__trim(s), config__trim(eq + 1), why,
                    sizeof(why));
  }
  if (rc != 0 && err)
    snprintf(err, err_size, "%s:%d: %s", name, lineno, why);
  return rc;
}

/* Fuzzes the config file parser. */
#include "core/config.h"

#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int once;
  if (!once) {
    setenv("HOME", "/nonexistent", 1);
    once = 1;
  }
  parley_config_t cfg;
  char err[256];
  if (size == 0 || config_defaults(&cfg, err, sizeof(err)) != 0)
    return 0;
  FILE *f = fmemopen((void *)data, size, "r");
  if (!f)
    return 0;
  config_load_stream(&cfg, f, "fuzz", err, sizeof(err));
  fclose(f);
  return 0;
}

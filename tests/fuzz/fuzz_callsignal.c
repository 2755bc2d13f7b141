/* Fuzzes the CallSignal decoder: every rejection has a reason, and whatever
 * decodes re-encodes to exactly the same bytes (the encoding is
 * canonical). */
#include "signal/callsignal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  callsignal_t cs;
  uint8_t again[CALLSIGNAL_ENCODED_MAX];
  size_t len;
  int rc = callsignal_decode(&cs, data, size);
  if (rc != 0) {
    if (strcmp(callsignal_strerror(rc), "unknown error") == 0)
      __builtin_trap();
    return 0;
  }
  if (callsignal_encode(&cs, again, sizeof(again), &len) != 0 || len != size ||
      memcmp(again, data, size) != 0)
    __builtin_trap();
  return 0;
}

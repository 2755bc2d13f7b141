/* Fuzzes the identity key file decoder. */
#include "crypto/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  identity_t id;
  const char *why = NULL;
  if (identity_decode(&id, data, size, &why) != 0 && !why)
    __builtin_trap(); /* every rejection says why */
  return 0;
}

/* Fuzzes the contact value decoder. What decodes must re-encode to the
 * same bytes. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  contact_t c;
  if (store_contact_decode(data, size, &c) != 0)
    return 0;
  uint8_t buf[STORE_CONTACT_ENCODED_MAX];
  int len = store_contact_encode(&c, buf);
  if (len < 0 || (size_t)len != size || memcmp(buf, data, size) != 0)
    abort();
  return 0;
}

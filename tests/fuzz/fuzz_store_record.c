/* Fuzzes the call_history record decoder: the first input byte is the key
 * length, then the key, then the value. What decodes must re-encode to the
 * same bytes. */
#include "core/util.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t key_len = data[0];
  if (key_len > size - 1)
    key_len = size - 1;
  const uint8_t *key = data + 1, *val = key + key_len;
  size_t val_len = size - 1 - key_len;
  call_record_t rec;
  if (store_record_decode(key, key_len, val, val_len, &rec) != 0)
    return 0;

  uint8_t buf[STORE_RECORD_ENCODED_MAX];
  int len = store_record_encode(&rec, buf);
  if (len < 0 || (size_t)len != val_len || memcmp(buf, val, val_len) != 0)
    abort();
  uint8_t ts[8];
  be64_put(ts, rec.timestamp);
  if (memcmp(ts, key, 8) != 0 || strlen(rec.call_id) != key_len - 8 ||
      memcmp(rec.call_id, key + 8, key_len - 8) != 0)
    abort();
  return 0;
}

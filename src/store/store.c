/* The LMDB environment and its three tables: call history (paged newest
 * first), contacts and ratchet session blobs. Value encodings: codec.c. */
#include "store/store.h"

#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

/* The map is only reserved address space; the file grows as data is written.
 * 1 GiB holds millions of call records. */
#define STORE__MAP_SIZE ((size_t)1 << 30)
/* Our three tables plus room for the ones later issues add (identity). */
#define STORE__MAX_DBS 8
#define STORE__KEY_MAX (8 + STORE_CALL_ID_MAX)

struct store {
  MDB_env *env;
  MDB_dbi history;
  MDB_dbi contacts;
  MDB_dbi sessions;
};

static int store__err(const char *what, int rc);
static int store__open_dbs(store_t *s);
static int store__put(store_t *s, MDB_dbi dbi, const void *key, size_t klen,
                      const void *val, size_t vlen);
static int store__del(store_t *s, MDB_dbi dbi, const void *key, size_t klen);
static int store__history_start(MDB_cursor *cur, const history_cursor_t *before,
                                MDB_val *k, MDB_val *v);
static int store__history_walk(MDB_cursor *cur, size_t limit,
                               const history_cursor_t *before,
                               call_record_t *out);
enum store__seek { STORE__FIRST, STORE__AT, STORE__AFTER };
static int store__contact_read(store_t *s, uint8_t key[32],
                               enum store__seek how, contact_t *out);

/* ---- environment ---- */

int store_open(store_t **out, const char *dir) {
  *out = NULL;
  store_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  int rc = mdb_env_create(&s->env);
  if (rc == 0)
    rc = mdb_env_set_mapsize(s->env, STORE__MAP_SIZE);
  if (rc == 0)
    rc = mdb_env_set_maxdbs(s->env, STORE__MAX_DBS);
  /* Default flags: every commit is fsync'ed, so a killed process loses at
   * most the transaction in flight. */
  if (rc == 0)
    rc = mdb_env_open(s->env, dir, 0, 0600);
  if (rc != 0) {
    LOG_ERROR("store", "cannot open %s: %s", dir, mdb_strerror(rc));
    mdb_env_close(s->env);
    free(s);
    return rc > 0 ? -rc : -EIO;
  }
  rc = store__open_dbs(s);
  if (rc != 0) {
    store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void store_close(store_t *s) {
  if (s == NULL)
    return;
  mdb_env_close(s->env);
  free(s);
}

/* Creates the tables on first use; the handles stay valid until close. */
static int store__open_dbs(store_t *s) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_dbi_open(txn, "call_history", MDB_CREATE, &s->history);
  if (rc == 0)
    rc = mdb_dbi_open(txn, "contacts", MDB_CREATE, &s->contacts);
  if (rc == 0)
    rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &s->sessions);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return store__err("open tables", rc);
  }
  rc = mdb_txn_commit(txn);
  return rc == 0 ? 0 : store__err("commit", rc);
}

/* ---- call history ---- */

int store_history_put(store_t *s, const call_record_t *rec) {
  uint8_t key[STORE__KEY_MAX], val[STORE_RECORD_ENCODED_MAX];
  size_t id_len = strnlen(rec->call_id, sizeof(rec->call_id));
  if (id_len > STORE_CALL_ID_MAX)
    return -EINVAL;
  be64_put(key, rec->timestamp);
  memcpy(key + 8, rec->call_id, id_len);
  int vlen = store_record_encode(rec, val);
  /* Never write what the decoder would refuse to read back (this is also
   * where an empty or non-printable call_id is rejected). */
  call_record_t check;
  if (vlen < 0 ||
      store_record_decode(key, 8 + id_len, val, (size_t)vlen, &check) != 0)
    return -EINVAL;
  return store__put(s, s->history, key, 8 + id_len, val, (size_t)vlen);
}

int store_history_page(store_t *s, const history_cursor_t *before, size_t limit,
                       call_record_t *out) {
  if (limit == 0)
    return 0;
  if (limit > INT_MAX)
    limit = INT_MAX;
  MDB_txn *txn;
  MDB_cursor *cur;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_cursor_open(txn, s->history, &cur);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return store__err("cursor", rc);
  }
  int n = store__history_walk(cur, limit, before, out);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return n;
}

/* Steps backwards from the start position, decoding up to limit records. */
static int store__history_walk(MDB_cursor *cur, size_t limit,
                               const history_cursor_t *before,
                               call_record_t *out) {
  MDB_val k, v;
  int rc = store__history_start(cur, before, &k, &v);
  size_t n = 0;
  while (rc == 0 && n < limit) {
    if (store_record_decode(k.mv_data, k.mv_size, v.mv_data, v.mv_size,
                            &out[n]) != 0) {
      LOG_ERROR("store", "undecodable call_history record");
      return -EIO;
    }
    n++;
    rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
  }
  if (rc != 0 && rc != MDB_NOTFOUND)
    return store__err("history walk", rc);
  return (int)n;
}

/* Positions cur on the newest record strictly older than *before: the first
 * key >= the cursor key (MDB_SET_RANGE), then one step back. If no key is
 * >= it, every record is older and the walk starts at the last one. With an
 * empty call_id the cursor key is the bare 8-byte timestamp, which sorts
 * before every record of that second, so they are all skipped. */
static int store__history_start(MDB_cursor *cur, const history_cursor_t *before,
                                MDB_val *k, MDB_val *v) {
  if (before == NULL)
    return mdb_cursor_get(cur, k, v, MDB_LAST);
  uint8_t key[STORE__KEY_MAX];
  size_t id_len = strnlen(before->call_id, STORE_CALL_ID_MAX);
  be64_put(key, before->timestamp);
  memcpy(key + 8, before->call_id, id_len);
  k->mv_data = key;
  k->mv_size = 8 + id_len;
  int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
  if (rc == MDB_NOTFOUND)
    return mdb_cursor_get(cur, k, v, MDB_LAST);
  if (rc != 0)
    return rc;
  return mdb_cursor_get(cur, k, v, MDB_PREV);
}

long store_history_count(store_t *s) {
  MDB_txn *txn;
  MDB_stat st;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_stat(txn, s->history, &st);
  mdb_txn_abort(txn);
  if (rc != 0)
    return store__err("stat", rc);
  return (long)st.ms_entries;
}

/* ---- contacts ---- */

int store_contact_put(store_t *s, const contact_t *c) {
  uint8_t val[STORE_CONTACT_ENCODED_MAX];
  int len = store_contact_encode(c, val);
  if (len < 0)
    return len;
  /* The value starts [version][32-byte peer ID]: the key is inside it. */
  return store__put(s, s->contacts, val + 1, 32, val, (size_t)len);
}

int store_contact_get(store_t *s, const char *peer, contact_t *out) {
  uint8_t key[32];
  if (hex_decode(key, 32, peer, strlen(peer)) != 0)
    return -EINVAL;
  int rc = store__contact_read(s, key, STORE__AT, out);
  return rc == 1 ? -ENOENT : rc;
}

int store_contact_remove(store_t *s, const char *peer) {
  uint8_t key[32];
  if (hex_decode(key, 32, peer, strlen(peer)) != 0)
    return -EINVAL;
  return store__del(s, s->contacts, key, 32);
}

/* Each step is its own read transaction resuming after the last key seen,
 * so fn may call back into the store (even remove the contact it got). */
int store_contact_list(store_t *s, int (*fn)(const contact_t *, void *),
                       void *arg) {
  uint8_t key[32];
  contact_t c;
  int rc = store__contact_read(s, key, STORE__FIRST, &c);
  while (rc == 0) {
    if (fn(&c, arg) != 0)
      return 0;
    rc = store__contact_read(s, key, STORE__AFTER, &c);
  }
  return rc == 1 ? 0 : rc;
}

/* Positions cur for store__contact_read; returns an LMDB code. */
static int store__contact_seek(MDB_cursor *cur, MDB_val *k, MDB_val *v,
                               enum store__seek how) {
  if (how == STORE__FIRST)
    return mdb_cursor_get(cur, k, v, MDB_FIRST);
  if (how == STORE__AT)
    return mdb_cursor_get(cur, k, v, MDB_SET_KEY);
  MDB_val want = *k;
  int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
  if (rc == 0 && k->mv_size == want.mv_size &&
      memcmp(k->mv_data, want.mv_data, want.mv_size) == 0)
    rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
  return rc;
}

/* Reads the first contact, the one at key, or the first after key into out
 * and copies its key back to key. Returns 0, 1 if there is none, or -EIO
 * (also for a value that does not decode or disagrees with its key). */
static int store__contact_read(store_t *s, uint8_t key[32],
                               enum store__seek how, contact_t *out) {
  MDB_txn *txn;
  MDB_cursor *cur;
  MDB_val k = {.mv_size = 32, .mv_data = key}, v;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_cursor_open(txn, s->contacts, &cur);
  if (rc == 0) {
    rc = store__contact_seek(cur, &k, &v, how);
    mdb_cursor_close(cur);
  }
  if (rc == MDB_NOTFOUND) {
    rc = 1;
  } else if (rc != 0) {
    rc = store__err("contacts", rc);
  } else if (k.mv_size != 32 ||
             store_contact_decode(v.mv_data, v.mv_size, out) != 0 ||
             memcmp((const uint8_t *)v.mv_data + 1, k.mv_data, 32) != 0) {
    LOG_ERROR("store", "undecodable contact");
    rc = -EIO;
  } else {
    memcpy(key, k.mv_data, 32);
  }
  mdb_txn_abort(txn);
  return rc;
}

/* ---- sessions ---- */

int store_session_put(store_t *s, const uint8_t peer[32], const uint8_t *blob,
                      size_t len) {
  return store__put(s, s->sessions, peer, 32, blob, len);
}

long store_session_get(store_t *s, const uint8_t peer[32], uint8_t *buf,
                       size_t cap) {
  MDB_txn *txn;
  MDB_val k = {.mv_size = 32, .mv_data = (void *)peer}, v;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_get(txn, s->sessions, &k, &v);
  if (rc == 0 && cap > 0 && v.mv_size > 0)
    memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
  mdb_txn_abort(txn);
  if (rc == MDB_NOTFOUND)
    return -ENOENT;
  return rc == 0 ? (long)v.mv_size : store__err("session get", rc);
}

int store_session_remove(store_t *s, const uint8_t peer[32]) {
  return store__del(s, s->sessions, peer, 32);
}

/* ---- helpers ---- */

/* Logs an LMDB failure and maps it to -EIO. */
static int store__err(const char *what, int rc) {
  LOG_ERROR("store", "%s: %s", what, mdb_strerror(rc));
  return -EIO;
}

/* One put, one committed (fsync'ed) transaction. */
static int store__put(store_t *s, MDB_dbi dbi, const void *key, size_t klen,
                      const void *val, size_t vlen) {
  MDB_txn *txn;
  MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
  MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_put(txn, dbi, &k, &v, 0);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return store__err("put", rc);
  }
  rc = mdb_txn_commit(txn);
  return rc == 0 ? 0 : store__err("commit", rc);
}

/* One delete, one committed transaction; -ENOENT if the key is absent. */
static int store__del(store_t *s, MDB_dbi dbi, const void *key, size_t klen) {
  MDB_txn *txn;
  MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return store__err("begin", rc);
  rc = mdb_del(txn, dbi, &k, NULL);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? -ENOENT : store__err("del", rc);
  }
  rc = mdb_txn_commit(txn);
  return rc == 0 ? 0 : store__err("commit", rc);
}

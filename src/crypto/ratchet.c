/* The Double Ratchet: KDF chains, DH ratchet steps, skipped message keys and
 * the message AEAD; see ratchet.h for the constructions. */
#include "crypto/ratchet.h"

#include "core/util.h"
#include "crypto/hkdf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char ratchet__rk_info[] = "parley/ratchet/rk/1";
static const char ratchet__mk_info[] = "parley/ratchet/mk/1";

static void ratchet__kdf_rk(uint8_t rk[32], uint8_t ck[32],
                            const uint8_t dh[32]);
static void ratchet__kdf_ck(uint8_t ck[32], uint8_t mk[32]);
static int ratchet__find_skipped(ratchet_t *r, const ratchet_header_t *h,
                                 uint8_t mk[32]);
static int ratchet__reserve(ratchet_t *r, uint32_t add);
static void ratchet__skip(ratchet_t *r, uint32_t until);
static int ratchet__dh_step(ratchet_t *r, const uint8_t dh[32],
                            const crypto_rng_t *rng);
static void ratchet__wipe_skipped(ratchet_skipped_t *s, size_t n);
static bool ratchet__is_zero(const uint8_t *p, size_t n);

/* ---- set-up ---- */

int ratchet_init_initiator(ratchet_t *r, const uint8_t sk[32],
                           const uint8_t their_pk[32],
                           const crypto_rng_t *rng) {
  uint8_t dh[32];
  memset(r, 0, sizeof(*r));
  ratchet_keypair(r->dhs_sk, r->dhs_pk, rng);
  memcpy(r->dhr, their_pk, 32);
  if (ratchet_dh(dh, r->dhs_sk, r->dhr) != 0) {
    ratchet_wipe(r);
    return RATCHET_ERR_BAD_KEY;
  }
  memcpy(r->rk, sk, 32);
  ratchet__kdf_rk(r->rk, r->cks, dh);
  sodium_memzero(dh, sizeof(dh));
  r->flags = RATCHET_HAS_DHR | RATCHET_HAS_CKS;
  return 0;
}

void ratchet_init_responder(ratchet_t *r, const uint8_t sk[32],
                            const uint8_t my_sk[32], const uint8_t my_pk[32]) {
  memset(r, 0, sizeof(*r));
  memcpy(r->dhs_sk, my_sk, 32);
  memcpy(r->dhs_pk, my_pk, 32);
  memcpy(r->rk, sk, 32);
}

int ratchet_copy(ratchet_t *dst, const ratchet_t *src) {
  *dst = *src;
  dst->skipped = NULL;
  dst->cap_skipped = 0;
  if (src->n_skipped == 0)
    return 0;
  dst->skipped = malloc(src->n_skipped * sizeof(*dst->skipped));
  if (dst->skipped == NULL) {
    sodium_memzero(dst, sizeof(*dst));
    return RATCHET_ERR_NOMEM;
  }
  memcpy(dst->skipped, src->skipped, src->n_skipped * sizeof(*dst->skipped));
  dst->cap_skipped = src->n_skipped;
  return 0;
}

void ratchet_wipe(ratchet_t *r) {
  if (r->skipped) {
    ratchet__wipe_skipped(r->skipped, r->cap_skipped);
    free(r->skipped);
  }
  sodium_memzero(r, sizeof(*r));
}

/* ---- sending and receiving ---- */

int ratchet_send_key(ratchet_t *r, ratchet_header_t *h, uint8_t mk[32]) {
  if (!(r->flags & RATCHET_HAS_CKS))
    return RATCHET_ERR_NO_SEND_CHAIN;
  if (r->ns == UINT32_MAX)
    return RATCHET_ERR_COUNTER;
  memcpy(h->dh, r->dhs_pk, 32);
  h->pn = r->pn;
  h->n = r->ns;
  ratchet__kdf_ck(r->cks, mk);
  r->ns++;
  return 0;
}

/* Signal's RatchetDecrypt without the decryption: skipped key, or skip
 * ahead in the current chain, or finish the current chain, DH-ratchet and
 * skip ahead in the new one. Every bound is checked before anything moves,
 * so the skipped-key list can be sized once. */
int ratchet_recv_key(ratchet_t *r, const ratchet_header_t *h, uint8_t mk[32],
                     const crypto_rng_t *rng) {
  if (ratchet__find_skipped(r, h, mk) == 0)
    return 0;
  /* n + 1 and pn must stay representable as the next nr. */
  if (h->n == UINT32_MAX || h->pn == UINT32_MAX)
    return RATCHET_ERR_COUNTER;
  bool same_chain =
      (r->flags & RATCHET_HAS_DHR) && sodium_memcmp(h->dh, r->dhr, 32) == 0;
  uint32_t add;
  if (same_chain) {
    /* The initiator knows the responder's first public key but has no
     * receiving chain for it: the responder always ratchets first. */
    if (!(r->flags & RATCHET_HAS_CKR))
      return RATCHET_ERR_NO_RECV_CHAIN;
    if (h->n < r->nr)
      return RATCHET_ERR_DUPLICATE;
    if (h->n - r->nr > RATCHET_MAX_SKIP)
      return RATCHET_ERR_TOO_MANY_SKIPPED;
    add = h->n - r->nr;
  } else {
    uint32_t old = 0;
    if ((r->flags & RATCHET_HAS_CKR) && h->pn > r->nr)
      old = h->pn - r->nr;
    if (old > RATCHET_MAX_SKIP || h->n > RATCHET_MAX_SKIP)
      return RATCHET_ERR_TOO_MANY_SKIPPED;
    add = old + h->n;
  }
  if (ratchet__reserve(r, add) != 0)
    return RATCHET_ERR_NOMEM;
  if (!same_chain) {
    ratchet__skip(r, h->pn);
    int rc = ratchet__dh_step(r, h->dh, rng);
    if (rc != 0)
      return rc;
  }
  ratchet__skip(r, h->n);
  ratchet__kdf_ck(r->ckr, mk);
  r->nr++;
  return 0;
}

static void ratchet__aead_key(uint8_t key[32], const uint8_t mk[32]) {
  hkdf_sha256(key, 32, NULL, 0, mk, 32, (const uint8_t *)ratchet__mk_info,
              sizeof(ratchet__mk_info) - 1);
}

void ratchet_seal(const uint8_t mk[32], const uint8_t nonce[RATCHET_NONCE_LEN],
                  const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                  size_t pt_len, uint8_t *out) {
  uint8_t key[32];
  ratchet__aead_key(key, mk);
  crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, pt, pt_len, ad, ad_len,
                                             NULL, nonce, key);
  sodium_memzero(key, sizeof(key));
}

int ratchet_open(const uint8_t mk[32], const uint8_t nonce[RATCHET_NONCE_LEN],
                 const uint8_t *ad, size_t ad_len, const uint8_t *ct,
                 size_t ct_len, uint8_t *out) {
  uint8_t key[32];
  if (ct_len < RATCHET_TAG_LEN)
    return RATCHET_ERR_AUTH;
  ratchet__aead_key(key, mk);
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      out, NULL, NULL, ct, ct_len, ad, ad_len, nonce, key);
  sodium_memzero(key, sizeof(key));
  return rc == 0 ? 0 : RATCHET_ERR_AUTH;
}

/* ---- X25519 ---- */

void ratchet_keypair(uint8_t sk[32], uint8_t pk[32], const crypto_rng_t *rng) {
  crypto_rng_fill(rng, sk, 32);
  crypto_scalarmult_base(pk, sk);
}

int ratchet_dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32]) {
  /* libsodium refuses (returns -1) when the shared point is all zeros. */
  if (crypto_scalarmult(out, sk, pk) != 0) {
    sodium_memzero(out, 32);
    return RATCHET_ERR_BAD_KEY;
  }
  return 0;
}

/* ---- serialization ---- */

size_t ratchet_serialized_len(const ratchet_t *r) {
  return RATCHET_STATE_FIXED_LEN + (size_t)r->n_skipped * RATCHET_SKIPPED_LEN;
}

void ratchet_serialize(const ratchet_t *r, uint8_t *out) {
  uint8_t *p = out;
  *p++ = r->flags;
  const uint8_t *keys[6] = {r->dhs_sk, r->dhs_pk, r->dhr,
                            r->rk,     r->cks,    r->ckr};
  for (size_t i = 0; i < 6; i++, p += 32)
    memcpy(p, keys[i], 32);
  be32_put(p, r->ns);
  be32_put(p + 4, r->nr);
  be32_put(p + 8, r->pn);
  be32_put(p + 12, r->n_skipped);
  p += 16;
  for (uint32_t i = 0; i < r->n_skipped; i++) {
    memcpy(p, r->skipped[i].dh, 32);
    be32_put(p + 32, r->skipped[i].n);
    memcpy(p + 36, r->skipped[i].mk, 32);
    p += RATCHET_SKIPPED_LEN;
  }
}

static int ratchet__check(const ratchet_t *r) {
  uint8_t pk[32];
  if (r->flags & ~(RATCHET_HAS_DHR | RATCHET_HAS_CKS | RATCHET_HAS_CKR))
    return -1;
  /* A receiving chain only exists after a DH step, which sets DHr. */
  if ((r->flags & RATCHET_HAS_CKR) && !(r->flags & RATCHET_HAS_DHR))
    return -1;
  if (!(r->flags & RATCHET_HAS_DHR) && !ratchet__is_zero(r->dhr, 32))
    return -1;
  if (!(r->flags & RATCHET_HAS_CKS) &&
      (!ratchet__is_zero(r->cks, 32) || r->ns != 0))
    return -1;
  if (!(r->flags & RATCHET_HAS_CKR) &&
      (!ratchet__is_zero(r->ckr, 32) || r->nr != 0))
    return -1;
  crypto_scalarmult_base(pk, r->dhs_sk);
  return sodium_memcmp(pk, r->dhs_pk, 32) == 0 ? 0 : -1;
}

int ratchet_deserialize(ratchet_t *r, const uint8_t *in, size_t len,
                        size_t *used) {
  memset(r, 0, sizeof(*r));
  if (len < RATCHET_STATE_FIXED_LEN)
    return RATCHET_ERR_STATE;
  const uint8_t *p = in;
  r->flags = *p++;
  uint8_t *keys[6] = {r->dhs_sk, r->dhs_pk, r->dhr, r->rk, r->cks, r->ckr};
  for (size_t i = 0; i < 6; i++, p += 32)
    memcpy(keys[i], p, 32);
  r->ns = be32_get(p);
  r->nr = be32_get(p + 4);
  r->pn = be32_get(p + 8);
  uint32_t n = be32_get(p + 12);
  p += 16;
  if (n > RATCHET_MAX_SKIPPED ||
      (size_t)n * RATCHET_SKIPPED_LEN > len - RATCHET_STATE_FIXED_LEN ||
      ratchet__check(r) != 0) {
    ratchet_wipe(r);
    return RATCHET_ERR_STATE;
  }
  if (n > 0) {
    r->skipped = malloc(n * sizeof(*r->skipped));
    if (r->skipped == NULL) {
      ratchet_wipe(r);
      return RATCHET_ERR_NOMEM;
    }
    r->cap_skipped = n;
  }
  for (uint32_t i = 0; i < n; i++, p += RATCHET_SKIPPED_LEN) {
    memcpy(r->skipped[i].dh, p, 32);
    r->skipped[i].n = be32_get(p + 32);
    memcpy(r->skipped[i].mk, p + 36, 32);
  }
  r->n_skipped = n;
  *used = (size_t)(p - in);
  return 0;
}

/* ---- helpers ---- */

static void ratchet__kdf_rk(uint8_t rk[32], uint8_t ck[32],
                            const uint8_t dh[32]) {
  uint8_t out[64];
  hkdf_sha256(out, sizeof(out), rk, 32, dh, 32,
              (const uint8_t *)ratchet__rk_info, sizeof(ratchet__rk_info) - 1);
  memcpy(rk, out, 32);
  memcpy(ck, out + 32, 32);
  sodium_memzero(out, sizeof(out));
}

static void ratchet__kdf_ck(uint8_t ck[32], uint8_t mk[32]) {
  static const uint8_t msg = 0x01, chain = 0x02;
  uint8_t next[32];
  hmac_sha256(mk, ck, 32, &msg, 1);
  hmac_sha256(next, ck, 32, &chain, 1);
  memcpy(ck, next, 32);
  sodium_memzero(next, sizeof(next));
}

/* Takes the key out of the list if present (keeping the order). */
static int ratchet__find_skipped(ratchet_t *r, const ratchet_header_t *h,
                                 uint8_t mk[32]) {
  for (uint32_t i = 0; i < r->n_skipped; i++) {
    ratchet_skipped_t *s = &r->skipped[i];
    if (s->n != h->n || sodium_memcmp(s->dh, h->dh, 32) != 0)
      continue;
    memcpy(mk, s->mk, 32);
    memmove(s, s + 1, (r->n_skipped - i - 1) * sizeof(*s));
    r->n_skipped--;
    ratchet__wipe_skipped(&r->skipped[r->n_skipped], 1);
    return 0;
  }
  return -1;
}

/* Makes room for add more keys: evicts the oldest beyond the total bound,
 * then grows the array (copying by hand so no old copy is left unwiped the
 * way realloc could). */
static int ratchet__reserve(ratchet_t *r, uint32_t add) {
  if (add > RATCHET_MAX_SKIPPED)
    abort(); /* ratchet_recv_key's bounds make this impossible */
  uint32_t total = r->n_skipped + add;
  if (total > RATCHET_MAX_SKIPPED) {
    uint32_t drop = total - RATCHET_MAX_SKIPPED;
    ratchet__wipe_skipped(r->skipped, drop);
    memmove(r->skipped, r->skipped + drop,
            (r->n_skipped - drop) * sizeof(*r->skipped));
    r->n_skipped -= drop;
    ratchet__wipe_skipped(r->skipped + r->n_skipped, drop);
    total = RATCHET_MAX_SKIPPED;
  }
  if (total <= r->cap_skipped)
    return 0;
  ratchet_skipped_t *grown = malloc(total * sizeof(*grown));
  if (grown == NULL)
    return -1;
  if (r->n_skipped)
    memcpy(grown, r->skipped, r->n_skipped * sizeof(*grown));
  if (r->skipped) {
    ratchet__wipe_skipped(r->skipped, r->cap_skipped);
    free(r->skipped);
  }
  r->skipped = grown;
  r->cap_skipped = total;
  return 0;
}

/* Stores the keys of the current receiving chain up to (not including)
 * message number until. Room was reserved by the caller. */
static void ratchet__skip(ratchet_t *r, uint32_t until) {
  if (!(r->flags & RATCHET_HAS_CKR))
    return;
  while (r->nr < until) {
    ratchet_skipped_t *s = &r->skipped[r->n_skipped++];
    memcpy(s->dh, r->dhr, 32);
    s->n = r->nr;
    ratchet__kdf_ck(r->ckr, s->mk);
    r->nr++;
  }
}

static int ratchet__dh_step(ratchet_t *r, const uint8_t dh_pub[32],
                            const crypto_rng_t *rng) {
  uint8_t dh[32];
  r->pn = r->ns;
  r->ns = 0;
  r->nr = 0;
  memcpy(r->dhr, dh_pub, 32);
  if (ratchet_dh(dh, r->dhs_sk, r->dhr) != 0)
    return RATCHET_ERR_BAD_KEY;
  ratchet__kdf_rk(r->rk, r->ckr, dh);
  sodium_memzero(r->dhs_sk, 32);
  ratchet_keypair(r->dhs_sk, r->dhs_pk, rng);
  int rc = ratchet_dh(dh, r->dhs_sk, r->dhr);
  if (rc == 0)
    ratchet__kdf_rk(r->rk, r->cks, dh);
  sodium_memzero(dh, sizeof(dh));
  r->flags |= RATCHET_HAS_DHR | RATCHET_HAS_CKR | RATCHET_HAS_CKS;
  return rc;
}

static void ratchet__wipe_skipped(ratchet_skipped_t *s, size_t n) {
  if (n)
    sodium_memzero(s, n * sizeof(*s));
}

static bool ratchet__is_zero(const uint8_t *p, size_t n) {
  return sodium_is_zero(p, n) == 1;
}

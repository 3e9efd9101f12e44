/*
 * hash.c - slot and port hashes (spec 8.1) and slot names (spec 8.2).
 *
 * The reference computes, over the Unicode code points c of a name of n code points,
 *     v = 0;  v += v/8 + c*F for each c;  v += v/8 + n*F        (F = 0xD2D84A61)
 * on unbounded Python integers, then slot_hash = 8 + v mod (2^64 - 8) and
 * port_hash = 49152 + v mod 2^14. Because v/8 feeds high bits back down, every bit of v matters
 * for both results, so v must be kept exactly. v grows by log2(9/8) ~ 0.17 bits per code point:
 * it stays in a plain uint64 while below 2^62 (the fast path: any name of up to 42 code points,
 * ASCII names up to about 120), after which it moves to an array of 32-bit limbs sized once from
 * the input length (about len/40 bytes, on the stack for names up to ~9 KB). Each step costs one
 * pass over the limbs in use, so a name of n code points costs about n^2/380 limb operations:
 * 100,000 code points take a few tens of ms.
 * The final mod 2^64 - 8 folds the limbs from the top using 2^64 = 8 (mod 2^64 - 8), which needs
 * no 128-bit type.
 *
 * Slot names: base + "." + type + "." + pattern, stripped of leading and trailing characters for
 * which Python's str.isspace() is true (exactly as the reference), then lower-cased. DIVERGENCE:
 * the reference uses Python's full Unicode str.lower(); we lower-case only ASCII A-Z and the
 * Latin-1 capitals U+00C0..U+00DE except U+00D7 (MULTIPLICATION SIGN), each by adding 0x20, and
 * keep every other code point as it is. Names whose other characters str.lower() would change
 * (for example U+0130 -> "i" U+0307, Greek and Cyrillic capitals, the Final_Sigma rule that turns
 * a word-final capital sigma into U+03C2) therefore get a different slot id than in Python, and
 * such channels do not talk to Python peers. Full lower() would need the Unicode case tables and
 * context rules; ASCII and Latin-1 cover the slot names used in practice.
 *
 * Threads: no shared state; every function is safe from any thread. Errors set the calling
 * thread's detail through yti_error(). Invalid UTF-8 is rejected (YT_EINVAL), never hashed.
 */
#include "hash.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define HASH_F 0xD2D84A61u
/* 2^64 - 8, the slot modulus. */
#define SLOT_MOD (UINT64_MAX - 7u)
/* While v < 2^62 and the multiplier k <= 0x10FFFF, v + v/8 + k*F < 1.125 * 2^62 + 2^52 < 2^63,
 * so the step cannot wrap a uint64. */
#define FAST_LIMIT ((uint64_t)1 << 62)
#define FAST_KMAX 0x10FFFFu
/* Limbs kept on the stack; enough for names up to (STACK_LIMBS - 8) * 160 bytes. */
#define STACK_LIMBS 64

typedef struct bignum {
    uint32_t *limb; /* little-endian; limb[used..cap) are zero */
    size_t used;    /* limbs up to the highest non-zero one */
    size_t cap;
} bignum;

/*
 * v <- v + floor(v/8) + k*F in place. Limb i of v>>3 is made of limbs i and i+1 of the old v, so
 * going from low to high limb reads limb i+1 before it is overwritten. The sum of three 32-bit
 * values and a carry below 4 fits a uint64 with room to spare.
 */
static void big_step(bignum *b, uint64_t k)
{
    /* k*F as three limbs: k = khi*2^32 + klo. */
    uint64_t p0 = (k & 0xFFFFFFFFu) * HASH_F;
    uint64_t p1 = (k >> 32) * HASH_F;
    uint64_t mid = (p0 >> 32) + (p1 & 0xFFFFFFFFu);
    uint32_t add[3] = {(uint32_t)p0, (uint32_t)mid, (uint32_t)((mid >> 32) + (p1 >> 32))};

    /* The result is below 2 * max(v, k*F), so it needs at most one limb more than the larger. */
    size_t n = (b->used > 3 ? b->used : 3) + 1;
    uint32_t *l = b->limb;
    uint64_t carry = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cur = l[i];
        uint32_t next = i + 1 < b->cap ? l[i + 1] : 0;
        uint32_t shifted = (uint32_t)((cur >> 3) | ((uint64_t)next << 29));
        uint64_t s = (uint64_t)cur + shifted + (i < 3 ? add[i] : 0u) + carry;
        l[i] = (uint32_t)s;
        carry = s >> 32;
    }
    size_t used = n;
    while (used > 0 && l[used - 1] == 0)
        used--;
    b->used = used;
}

/* (a + b) mod SLOT_MOD for a, b < SLOT_MOD. A wrapped sum lost 2^64 = SLOT_MOD + 8. */
static uint64_t add_mod(uint64_t a, uint64_t b)
{
    uint64_t s = a + b;
    if (s < a)
        return s + 8u; /* the true sum is below 2 * SLOT_MOD, so this is already reduced */
    return s >= SLOT_MOD ? s - SLOT_MOD : s;
}

/* v mod (2^64 - 8), folding 32 bits at a time from the top: r <- r*2^32 + limb. With
 * r = hi*2^32 + lo, r*2^32 = hi*2^64 + lo*2^32 = hi*8 + lo*2^32 (mod 2^64 - 8), and each of
 * the three terms is already below the modulus. */
static uint64_t big_mod_slot(const bignum *b)
{
    uint64_t r = 0;
    for (size_t i = b->used; i-- > 0;) {
        uint64_t hi = r >> 32;
        uint64_t lo = r & 0xFFFFFFFFu;
        r = add_mod(add_mod(lo << 32, hi * 8u), b->limb[i]);
    }
    return r;
}

static int invalid_utf8(size_t at)
{
    return yti_error(YT_EINVAL, "Name is not valid UTF-8 (byte %zu)", at);
}

/* Computes the hash value of the name and stores the requested reductions (either may be NULL). */
static int hash_name(const char *name, size_t len, uint64_t *slot, uint32_t *port)
{
    const unsigned char *s = (const unsigned char *)name;
    if (s == NULL && len > 0)
        return yti_error(YT_EINVAL, "Name is NULL");

    size_t pos = 0;
    uint64_t n = 0;
    uint64_t v = 0;
    while (pos < len && v < FAST_LIMIT) {
        uint32_t cp;
        size_t at = pos;
        if (!yti_utf8_next(s, len, &pos, &cp))
            return invalid_utf8(at);
        v += (v >> 3) + (uint64_t)cp * HASH_F;
        n++;
    }
    if (pos == len && v < FAST_LIMIT && n <= FAST_KMAX) {
        v += (v >> 3) + n * HASH_F;
        /* v < 2^63 < 2^64 - 8, so the slot reduction is the identity here. */
        if (slot)
            *slot = 8u + v;
        if (port)
            *port = 49152u + (uint32_t)(v & 0x3FFFu);
        return YT_OK;
    }

    /* Limbs needed: every step adds at most B = 0x10FFFF*F < 2^52 (the final one n*F < 2^96), so
     * after n code points v < 8B(9/8)^n < 2^(55 + 0.17n), and finally v < 2^(56 + 0.17n) + 2^96:
     * at most max(2.8 + 0.0054n, 4.1) limbs, plus the spare limb big_step writes above the top.
     * len/160 + 8 covers that since n <= len (0.2 bits per byte, with 8 limbs to start). */
    uint32_t stack_limbs[STACK_LIMBS];
    bignum b;
    b.cap = len / 160 + 8;
    if (b.cap <= STACK_LIMBS) {
        b.limb = stack_limbs;
        b.cap = STACK_LIMBS;
        memset(stack_limbs, 0, sizeof stack_limbs);
    } else {
        b.limb = calloc(b.cap, sizeof *b.limb);
        if (b.limb == NULL)
            return yti_error(YT_ENOMEM, "Out of memory hashing a name of %zu bytes", len);
    }
    b.limb[0] = (uint32_t)v;
    b.limb[1] = (uint32_t)(v >> 32);
    b.used = v >> 32 ? 2 : (v ? 1 : 0);

    int rc = YT_OK;
    while (pos < len) {
        uint32_t cp;
        size_t at = pos;
        if (!yti_utf8_next(s, len, &pos, &cp)) {
            rc = invalid_utf8(at);
            goto out;
        }
        big_step(&b, cp);
        n++;
    }
    big_step(&b, n);
    if (slot)
        *slot = 8u + big_mod_slot(&b);
    if (port)
        *port = 49152u + (b.limb[0] & 0x3FFFu);
out:
    if (b.limb != stack_limbs)
        free(b.limb);
    return rc;
}

int yti_slot_hash(const char *name, size_t len, uint64_t *out)
{
    return hash_name(name, len, out, NULL);
}

int yti_port_hash(const char *name, size_t len, uint32_t *out)
{
    return hash_name(name, len, NULL, out);
}

static int check_part(const char *part, const char *what, size_t *len)
{
    if (part == NULL)
        return yti_error(YT_EINVAL, "Slot %s is NULL", what);
    *len = strlen(part);
    if (!yti_utf8_valid(part, *len))
        return yti_error(YT_EINVAL, "Slot %s is not valid UTF-8", what);
    return YT_OK;
}

int yti_slot_name(const char *base, const char *type, const char *pattern, char **out)
{
    size_t lb, lt, lp;
    int rc;
    if ((rc = check_part(base, "base", &lb)) != YT_OK ||
        (rc = check_part(type, "type", &lt)) != YT_OK ||
        (rc = check_part(pattern, "pattern", &lp)) != YT_OK)
        return rc;
    if (lt > SIZE_MAX - 3 - lp || lb > SIZE_MAX - 3 - lp - lt)
        return yti_error(YT_ENOMEM, "Slot name too long");
    size_t total = lb + 1 + lt + 1 + lp;
    unsigned char *buf = malloc(total + 1);
    if (buf == NULL)
        return yti_error(YT_ENOMEM, "Out of memory building a slot name");
    memcpy(buf, base, lb);
    buf[lb] = '.';
    memcpy(buf + lb + 1, type, lt);
    buf[lb + 1 + lt] = '.';
    memcpy(buf + lb + 2 + lt, pattern, lp);

    /* Strip as str.strip(): the parts are valid UTF-8 and '.' keeps sequences apart, so the
     * whole buffer decodes. start = first non-space code point, end = just after the last one. */
    size_t start = total, end = 0, pos = 0;
    while (pos < total) {
        size_t at = pos;
        uint32_t cp = 0;
        (void)yti_utf8_next(buf, total, &pos, &cp);
        if (!yti_unicode_isspace(cp)) {
            if (start == total)
                start = at;
            end = pos;
        }
    }
    size_t len = start < end ? end - start : 0;
    memmove(buf, buf + start, len);
    buf[len] = '\0';

    /* Lower-case ASCII and Latin-1 capitals. U+00C0..U+00DE are C3 80..C3 9E in UTF-8 and their
     * small letters U+00E0..U+00FE are C3 A0..C3 BE; in valid UTF-8 a C3 byte is always a lead
     * byte, so its continuation byte can be adjusted in place. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];
        if (c >= 'A' && c <= 'Z') {
            buf[i] = (unsigned char)(c + 0x20);
        } else if (c == 0xC3 && i + 1 < len) {
            unsigned char d = buf[i + 1];
            if (d >= 0x80 && d <= 0x9E && d != 0x97) /* 0x97: U+00D7 MULTIPLICATION SIGN */
                buf[i + 1] = (unsigned char)(d + 0x20);
            i++;
        }
    }
    *out = (char *)buf;
    return YT_OK;
}

int yti_slot_id(const char *base, const char *type, const char *pattern, uint64_t *out)
{
    char *name;
    int rc = yti_slot_name(base, type, pattern, &name);
    if (rc != YT_OK)
        return rc;
    rc = yti_slot_hash(name, strlen(name), out);
    free(name);
    return rc;
}

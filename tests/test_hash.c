/*
 * Tests for hash.c: slot_hash / port_hash against the reference's vectors and against an
 * independent, deliberately simple big-integer model of spec 8.1 written here; slot names
 * (strip, lower-case, the documented lower-case divergence); invalid UTF-8; long names.
 */
#include "hash.h"
#include "platform.h"
#include "testutil.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define F_HASH 0xD2D84A61u

/* ---- an independent model of the hash, written differently from hash.c on purpose ----
 * v is a little-endian array of 32-bit limbs. A step first builds v >> 3 in a separate array,
 * then adds it and k*F with a second pass (hash.c does this in one in-place pass). The slot
 * reduction folds v = hi*2^64 + lo into hi*8 + lo until v < 2^64 (hash.c folds 32 bits at a time
 * from the top), then subtracts 2^64 - 8 once if needed. */
typedef struct ref_num {
    uint32_t *d;
    uint32_t *tmp;
    size_t n; /* limbs in use */
    size_t cap;
} ref_num;

static void ref_init(ref_num *r, size_t ncp)
{
    r->cap = ncp / 150 + 8; /* 0.17 bits per code point + 97 bits, with room */
    r->d = calloc(r->cap, sizeof *r->d);
    r->tmp = calloc(r->cap, sizeof *r->tmp);
    r->n = 0;
    CU_ASSERT_FATAL(r->d != NULL && r->tmp != NULL);
}

static void ref_free(ref_num *r)
{
    free(r->d);
    free(r->tmp);
}

static void ref_step(ref_num *r, uint32_t k)
{
    for (size_t i = 0; i < r->n; i++) {
        uint32_t next = i + 1 < r->n ? r->d[i + 1] : 0;
        r->tmp[i] = (r->d[i] >> 3) | (uint32_t)(next << 29);
    }
    uint64_t kf = (uint64_t)k * F_HASH;
    uint64_t carry = 0;
    size_t top = (r->n > 2 ? r->n : 2) + 1;
    CU_ASSERT_FATAL(top <= r->cap);
    for (size_t i = 0; i < top; i++) {
        uint64_t s = carry + r->d[i];
        if (i < r->n)
            s += r->tmp[i];
        if (i == 0)
            s += kf & 0xFFFFFFFFu;
        if (i == 1)
            s += kf >> 32;
        r->d[i] = (uint32_t)s;
        carry = s >> 32;
    }
    CU_ASSERT_FATAL(carry == 0);
    r->n = top;
    while (r->n > 0 && r->d[r->n - 1] == 0)
        r->n--;
}

/* v for a list of code points (the count k is the final multiplier). */
static void ref_value(const uint32_t *cps, size_t ncp, ref_num *r)
{
    ref_init(r, ncp);
    for (size_t i = 0; i < ncp; i++)
        ref_step(r, cps[i]);
    CU_ASSERT_FATAL(ncp <= UINT32_MAX);
    ref_step(r, (uint32_t)ncp);
}

static size_t ref_bits(const ref_num *r)
{
    if (r->n == 0)
        return 0;
    size_t bits = (r->n - 1) * 32;
    for (uint32_t top = r->d[r->n - 1]; top; top >>= 1)
        bits++;
    return bits;
}

static uint64_t ref_slot(const ref_num *r)
{
    size_t n = r->n;
    const size_t cap = n + 4;
    uint32_t *w = calloc(cap, sizeof *w);
    CU_ASSERT_FATAL(w != NULL);
    if (n)
        memcpy(w, r->d, n * sizeof *w);
    while (n > 2) {
        /* w = (w >> 64) * 8 + (w mod 2^64) */
        uint32_t lo0 = w[0], lo1 = w[1];
        size_t hn = n - 2;
        uint64_t carry = 0;
        for (size_t i = 0; i < hn; i++) {
            uint64_t s = ((uint64_t)w[i + 2] << 3) + carry;
            w[i] = (uint32_t)s;
            carry = s >> 32;
        }
        w[hn] = (uint32_t)carry;
        for (size_t i = hn + 1; i < n; i++)
            w[i] = 0;
        uint64_t s = (uint64_t)w[0] + lo0;
        w[0] = (uint32_t)s;
        s = (s >> 32) + w[1] + lo1;
        w[1] = (uint32_t)s;
        carry = s >> 32;
        for (size_t i = 2; carry && i < cap; i++) {
            s = (uint64_t)w[i] + carry;
            w[i] = (uint32_t)s;
            carry = s >> 32;
        }
        CU_ASSERT_FATAL(carry == 0);
        n = hn + 3 < cap ? hn + 3 : cap; /* hi*8 + lo has at most max(hn + 1, 2) + 1 limbs */
        while (n > 0 && w[n - 1] == 0)
            n--;
    }
    uint64_t v = (uint64_t)w[0] | ((uint64_t)w[1] << 32);
    free(w);
    const uint64_t m = UINT64_MAX - 7; /* 2^64 - 8 */
    return 8 + (v >= m ? v - m : v);
}

static uint32_t ref_port(const ref_num *r)
{
    return 49152u + (r->n ? r->d[0] & 0x3FFFu : 0);
}

/* Decodes UTF-8 into a malloc'd code point array (the test's input is known to be valid). */
static uint32_t *decode(const char *s, size_t len, size_t *ncp)
{
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    CU_ASSERT_FATAL(cps != NULL);
    size_t pos = 0, n = 0;
    while (pos < len)
        CU_ASSERT_FATAL(yti_utf8_next((const unsigned char *)s, len, &pos, &cps[n++]));
    *ncp = n;
    return cps;
}

/* Checks yti_slot_hash and yti_port_hash of a UTF-8 name against the model. */
static void check_against_model(const char *name, size_t len)
{
    size_t ncp;
    uint32_t *cps = decode(name, len, &ncp);
    ref_num r;
    ref_value(cps, ncp, &r);
    uint64_t slot = 0;
    uint32_t port = 0;
    CU_ASSERT_EQUAL(yti_slot_hash(name, len, &slot), YT_OK);
    CU_ASSERT_EQUAL(yti_port_hash(name, len, &port), YT_OK);
    CU_ASSERT_EQUAL(slot, ref_slot(&r));
    CU_ASSERT_EQUAL(port, ref_port(&r));
    ref_free(&r);
    free(cps);
}

/* Appends code point cp, count times, to buf at *len (buf is large enough). */
static void put_cp(char *buf, size_t *len, uint32_t cp, size_t count)
{
    for (size_t i = 0; i < count; i++)
        *len += yti_utf8_encode(cp, (unsigned char *)buf + *len);
}

/* ---- vectors ---- */

/* Every line of slot_hash.txt: hash<TAB>name, the name hashed exactly as written. The model
 * must agree too, which keeps it honest for the other tests. */
static void test_vectors_slot_hash(void)
{
    yt_vec_file *f = yt_vec_open("slot_hash.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int lines = 0, non_ascii = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 2);
        uint64_t want = strtoull(l->field[0], NULL, 10);
        const char *name = l->field[1];
        size_t len = strlen(name);
        uint64_t got = 0;
        CU_ASSERT_EQUAL(yti_slot_hash(name, len, &got), YT_OK);
        CU_ASSERT_EQUAL(got, want);
        check_against_model(name, len);
        if (strncmp(l->comment, "non-ASCII", 9) == 0)
            non_ascii++;
        lines++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, 267);
    CU_ASSERT_EQUAL(non_ascii, 20);
}

/* Every line of port_hash.txt: port<TAB>name. */
static void test_vectors_port_hash(void)
{
    yt_vec_file *f = yt_vec_open("port_hash.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int lines = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 2);
        unsigned long want = strtoul(l->field[0], NULL, 10);
        uint32_t got = 0;
        CU_ASSERT_EQUAL(yti_port_hash(l->field[1], strlen(l->field[1]), &got), YT_OK);
        CU_ASSERT_EQUAL(got, want);
        CU_ASSERT(got >= 49152 && got <= 65535);
        lines++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, 100);
}

/*
 * Slot bases that Python's str.lower() changes beyond ASCII/Latin-1, so our ids differ from the
 * reference's on purpose (see hash.c). python_lower is what str.lower() makes of the base in
 * these names; hashing the name built from it must give the reference's id, which shows that
 * the lower-casing is the only difference.
 */
static const struct {
    const char *base;
    const char *python_lower;
    const char *why;
} divergent_bases[] = {
    /* U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE lowers to "i" U+0307 (two code points). */
    {"\xc4\xb0stanbul", "i\xcc\x87stanbul", "U+0130 -> i + U+0307"},
    /* Greek capitals: U+0391 -> U+03B1; U+03A3 -> U+03C3 because "." then a letter follows. */
    {"\xce\x91\xce\xa3", "\xce\xb1\xcf\x83", "Greek capitals"},
    /* Final_Sigma: followed by a space, U+03A3 is word-final and lowers to U+03C2. */
    {"\xce\x91\xce\xa3 ", "\xce\xb1\xcf\x82 ", "Greek capitals, Final_Sigma"},
};

/* Every line of slot_names.txt through yti_slot_id: exact, except the documented divergence. */
static void test_vectors_slot_names(void)
{
    yt_vec_file *f = yt_vec_open("slot_names.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int lines = 0, exact = 0, divergent = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 4);
        uint64_t want = strtoull(l->field[0], NULL, 10);
        const char *base = l->field[1], *type = l->field[2], *pattern = l->field[3];
        uint64_t got = 0;
        CU_ASSERT_EQUAL(yti_slot_id(base, type, pattern, &got), YT_OK);
        lines++;
        size_t d = 0;
        while (d < sizeof divergent_bases / sizeof divergent_bases[0] &&
               strcmp(divergent_bases[d].base, base) != 0)
            d++;
        if (d == sizeof divergent_bases / sizeof divergent_bases[0]) {
            CU_ASSERT_EQUAL(got, want);
            exact += got == want;
            continue;
        }
        /* Documented divergence: we keep these characters as they are, so our id is the hash of
         * the name with only ASCII lower-cased (the type and pattern are lower-case already and
         * the bases have no leading whitespace), which is not the reference's id. */
        char ours[128], python[128];
        snprintf(ours, sizeof ours, "%s.%s.%s", base, type, pattern);
        snprintf(python, sizeof python, "%s.%s.%s", divergent_bases[d].python_lower, type, pattern);
        char *name = NULL;
        CU_ASSERT_EQUAL(yti_slot_name(base, type, pattern, &name), YT_OK);
        CU_ASSERT_STRING_EQUAL(name, ours);
        free(name);
        uint64_t h_ours = 0, h_python = 0;
        CU_ASSERT_EQUAL(yti_slot_hash(ours, strlen(ours), &h_ours), YT_OK);
        CU_ASSERT_EQUAL(yti_slot_hash(python, strlen(python), &h_python), YT_OK);
        CU_ASSERT_EQUAL(got, h_ours);
        CU_ASSERT_NOT_EQUAL(got, want);
        CU_ASSERT_EQUAL(h_python, want); /* the reference's id is the hash of its lower() */
        divergent += got == h_ours && got != want && h_python == want;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, 220);
    CU_ASSERT_EQUAL(exact, 187);
    CU_ASSERT_EQUAL(divergent, 33); /* 11 lines each for the three bases above */
}

/* ---- fixed cases ---- */

static void test_basics(void)
{
    uint64_t slot = 0;
    uint32_t port = 0;
    CU_ASSERT_EQUAL(yti_slot_hash("", 0, &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, 8);
    CU_ASSERT_EQUAL(yti_port_hash("", 0, &port), YT_OK);
    CU_ASSERT_EQUAL(port, 49152);
    CU_ASSERT_EQUAL(yti_slot_hash(NULL, 0, &slot), YT_OK); /* no bytes: nothing is read */
    CU_ASSERT_EQUAL(slot, 8);

    /* Spec 8.2: PubChannel("chat", TEXT) sends on slot_hash("chat.txt.pub-sub"). */
    CU_ASSERT_EQUAL(yti_slot_hash("chat.txt.pub-sub", 16, &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, UINT64_C(17460451874447));
    CU_ASSERT_EQUAL(yti_slot_id("chat", "txt", "pub-sub", &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, UINT64_C(17460451874447));
    CU_ASSERT_EQUAL(yti_slot_id(" \tCHAT", "TXT", "Pub-Sub", &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, UINT64_C(17460451874447));

    /* "a": v = 97F + floor(97F/8) + F; the slot is v + 8 and the port v mod 2^14 + 49152. */
    uint64_t v = 97ull * F_HASH;
    v += v / 8 + F_HASH;
    CU_ASSERT_EQUAL(yti_slot_hash("a", 1, &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, v + 8);
    CU_ASSERT_EQUAL(yti_port_hash("a", 1, &port), YT_OK);
    CU_ASSERT_EQUAL(port, 49152 + v % 16384);

    /* Code points, not bytes: U+00E9 (2 bytes) hashes as one code point 0xE9. */
    v = 0xE9ull * F_HASH;
    v += v / 8 + F_HASH;
    CU_ASSERT_EQUAL(yti_slot_hash("\xc3\xa9", 2, &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, v + 8);

    /* NUL is a code point like any other when the length is given. */
    v = 0;
    v += v / 8 + 2ull * F_HASH;
    CU_ASSERT_EQUAL(yti_slot_hash("\0\0", 2, &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, v + 8);
}

static void test_invalid_utf8(void)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"\xff", 1},
        {"abc\xc3", 4},              /* truncated */
        {"a\xc3(b", 4},              /* bad continuation */
        {"\xc0\xaf", 2},             /* overlong */
        {"\xed\xa0\x80", 3},         /* surrogate */
        {"\xf4\x90\x80\x80", 4},     /* above U+10FFFF */
        {"x\x80", 2},                /* lone continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t slot = 77;
        uint32_t port = 77;
        yti_error_clear();
        CU_ASSERT_EQUAL(yti_slot_hash(bad[i].s, bad[i].len, &slot), YT_EINVAL);
        CU_ASSERT_EQUAL(slot, 77);
        CU_ASSERT_STRING_NOT_EQUAL(yt_last_error(), "");
        CU_ASSERT_EQUAL(yti_port_hash(bad[i].s, bad[i].len, &port), YT_EINVAL);
        CU_ASSERT_EQUAL(port, 77);
    }
    CU_ASSERT_EQUAL(yti_slot_hash(NULL, 3, &(uint64_t){0}), YT_EINVAL);

    /* Invalid after the fast path has ended (v >= 2^62 after ~55 code points): the limb path
     * must reject it too, and free its buffer (heap-sized name). */
    size_t n = 20000;
    char *big = malloc(n + 2);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'q', n);
    big[n] = (char)0xC3;
    CU_ASSERT_EQUAL(yti_slot_hash(big, n + 1, &(uint64_t){0}), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "20000"));
    CU_ASSERT_EQUAL(yti_slot_hash(big, 200 + 1, &(uint64_t){0}), YT_OK); /* 201 'q's */
    big[200] = (char)0xC3;
    CU_ASSERT_EQUAL(yti_slot_hash(big, 200 + 1, &(uint64_t){0}), YT_EINVAL); /* stack limbs */
    free(big);

    char *name = (char *)"untouched";
    yti_error_clear();
    CU_ASSERT_EQUAL(yti_slot_name("ba\xffse", "txt", "pub-sub", &name), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "base"));
    CU_ASSERT_EQUAL(yti_slot_name("base", "t\xc3", "pub-sub", &name), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "type"));
    CU_ASSERT_EQUAL(yti_slot_name("base", "txt", "\xed\xbf\xbf", &name), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "pattern"));
    CU_ASSERT_STRING_EQUAL(name, "untouched");
    CU_ASSERT_EQUAL(yti_slot_name(NULL, "txt", "pub-sub", &name), YT_EINVAL);
    uint64_t id = 5;
    CU_ASSERT_EQUAL(yti_slot_id("\xc3", "txt", "state", &id), YT_EINVAL);
    CU_ASSERT_EQUAL(id, 5);
}

static void test_slot_name(void)
{
    static const struct {
        const char *base, *type, *pattern, *want;
    } cases[] = {
        {"chat", "txt", "pub-sub", "chat.txt.pub-sub"},
        /* Spec 8.2: trailing whitespace of the base is inside the name and stays. */
        {" Chat ", "txt", "pub-sub", "chat .txt.pub-sub"},
        {"", "bin", "state", ".bin.state"},
        {"   ", "obj", "req-rep", ".obj.req-rep"},
        /* Trailing whitespace of the pattern is stripped. */
        {"x", "txt", "state \t\n", "x.txt.state"},
        /* Every str.isspace() kind at the start: U+001C..U+001F, U+0085, U+00A0, U+1680,
         * U+2000, U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, \v, \f, \r. */
        {"\x1c\x1d\x1e\x1f\xc2\x85\xc2\xa0\xe1\x9a\x80\xe2\x80\x80\xe2\x80\x8a\xe2\x80\xa8"
         "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f\xe3\x80\x80\v\f\rA",
         "txt", "pub-sub\xe3\x80\x80", "a.txt.pub-sub"},
        /* U+200B ZERO WIDTH SPACE is not isspace(), so it stays. */
        {"\xe2\x80\x8b" "a", "txt", "x", "\xe2\x80\x8b" "a.txt.x"},
        /* Latin-1 capitals U+00C0..U+00DE lower-case, except U+00D7; lower-case letters, U+00DF,
         * U+00F7 and U+00FF are unchanged. */
        {"\xc3\x80\xc3\x89\xc3\x8e\xc3\x95\xc3\x96\xc3\x97\xc3\x98\xc3\x9c\xc3\x9e\xc3\x9f",
         "TXT", "PUB-SUB",
         "\xc3\xa0\xc3\xa9\xc3\xae\xc3\xb5\xc3\xb6\xc3\x97\xc3\xb8\xc3\xbc\xc3\xbe\xc3\x9f"
         ".txt.pub-sub"},
        {"\xc3\xa0\xc3\xbf\xc3\xb7", "txt", "state", "\xc3\xa0\xc3\xbf\xc3\xb7.txt.state"},
        /* Documented divergence: other capitals (U+0130, Greek, Cyrillic, fullwidth) are kept. */
        {"\xc4\xb0\xce\x91\xce\xa3\xd0\x96\xef\xbc\xa1Z", "txt", "state",
         "\xc4\xb0\xce\x91\xce\xa3\xd0\x96\xef\xbc\xa1z.txt.state"},
        /* Bytes like 0x80..0x9E after a lead byte other than C3 are not touched. */
        {"\xc4\x80\xe3\x83\x81", "txt", "x", "\xc4\x80\xe3\x83\x81.txt.x"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{", "Bin", "Sub-Pub",
         "abcdefghijklmnopqrstuvwxyz@[`{.bin.sub-pub"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *name = NULL;
        int rc = yti_slot_name(cases[i].base, cases[i].type, cases[i].pattern, &name);
        CU_ASSERT_EQUAL(rc, YT_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_STRING_EQUAL(name, cases[i].want);
        free(name);
        uint64_t id = 0, direct = 1;
        CU_ASSERT_EQUAL(yti_slot_id(cases[i].base, cases[i].type, cases[i].pattern, &id), YT_OK);
        CU_ASSERT_EQUAL(yti_slot_hash(cases[i].want, strlen(cases[i].want), &direct), YT_OK);
        CU_ASSERT_EQUAL(id, direct);
    }
}

/* ---- where the arithmetic changes representation ---- */

/* Names of 1..200 code points of several kinds, against the model: covers the uint64 fast path,
 * the switch to limbs at v >= 2^62, v crossing 2^64, 2^96 and 2^128, and NUL code points (which
 * keep v at 0 until the final step). */
static void test_length_sweep(void)
{
    static const uint32_t kinds[] = {'a', '~', ' ', 0, 0xE9, 0x65E5, 0x10FFFF};
    char *buf = malloc(200 * 4 + 1);
    CU_ASSERT_FATAL(buf != NULL);
    size_t max_bits = 0, crossed_64 = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t n = 1; n <= 200; n++) {
            size_t len = 0;
            put_cp(buf, &len, kinds[k], n);
            check_against_model(buf, len);
            if (kinds[k] == 'a') {
                /* Spec 8.1: for 'a', v first reaches 2^64 at 133 code points. */
                uint32_t *cps = decode(buf, len, &(size_t){0});
                ref_num r;
                ref_value(cps, n, &r);
                CU_ASSERT_EQUAL(ref_bits(&r) > 64, n >= 133);
                crossed_64 += ref_bits(&r) > 64;
                ref_free(&r);
                free(cps);
            }
        }
    }
    /* 200 x U+10FFFF: about 52 + 0.17*200 bits. */
    size_t len = 0;
    put_cp(buf, &len, 0x10FFFF, 200);
    size_t ncp;
    uint32_t *cps = decode(buf, len, &ncp);
    ref_num r;
    ref_value(cps, ncp, &r);
    max_bits = ref_bits(&r);
    ref_free(&r);
    free(cps);
    free(buf);
    CU_ASSERT(max_bits > 64 + 20);
    CU_ASSERT_EQUAL(crossed_64, 200 - 132);
}

/* The ASCII names of 125..175 characters in slot_hash.txt straddle v = 2^64 (spec 8.1: no ASCII
 * name of at most 130 characters overflows, some of 131..145 do); check that the file really has
 * names on both sides, so the vector test covers the crossing, and that we match them. */
static void test_vectors_cross_2_64(void)
{
    yt_vec_file *f = yt_vec_open("slot_hash.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int below = 0, above = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        const char *name = l->field[1];
        size_t len = strlen(name);
        if (len < 125 || len > 175 || !yti_utf8_valid(name, len))
            continue;
        bool ascii = true;
        for (size_t i = 0; i < len; i++)
            ascii = ascii && (unsigned char)name[i] < 0x80;
        if (!ascii)
            continue;
        size_t ncp;
        uint32_t *cps = decode(name, len, &ncp);
        ref_num r;
        ref_value(cps, ncp, &r);
        if (ref_bits(&r) > 64)
            above++;
        else
            below++;
        CU_ASSERT(len > 130 || ref_bits(&r) <= 64);
        uint64_t got = 0;
        CU_ASSERT_EQUAL(yti_slot_hash(name, len, &got), YT_OK);
        CU_ASSERT_EQUAL(got, strtoull(l->field[0], NULL, 10));
        ref_free(&r);
        free(cps);
    }
    yt_vec_close(f);
    CU_ASSERT(below >= 5);
    CU_ASSERT(above >= 5);
}

/* A name as pieces: literal text, or a code point repeated. */
typedef struct piece {
    const char *text;
    uint32_t cp;
    uint32_t count;
} piece;

#define RUN(c, n) {NULL, (c), (n)}
#define TEXT(t) {(t), 0, 0}
#define END {NULL, 0, 0}

/*
 * Names built to hit the rare paths of the final reduction mod 2^64 - 8. All were found offline
 * (a search over the free code points, see below) and their slot_hash/port_hash computed with
 * the reference's own functions in Python; the model here confirms v, limb by limb, so the test
 * keeps checking the case it was built for.
 *
 * - v = 2^64 - 1 and v = 2^64 - 7: spec 8.1, "v mod (2^64 - 8) is v - (2^64 - 8) for
 *   v >= 2^64 - 8", so slot_hash is 15 and 9 (port 65535 is the top of the range). Found by a
 *   meet-in-the-middle search over the three non-ASCII code points.
 * - v = L2*2^64 + 0xFFFFFFFF*2^32 + L0 (three limbs): folding from the top, the last step
 *   computes (L1*2^32 + 8*L2 + L0) mod (2^64 - 8), which wraps 2^64 when L2 >= 2^29 (first
 *   addition) or, for smaller L2, when L0 >= 2^32 - 8*L2 (second addition). Found by choosing
 *   the letters greedily and then the last code point.
 */
static const struct {
    const char *what;
    piece name[32];
    uint32_t limbs[3]; /* v, little-endian */
    uint64_t slot;
    uint32_t port;
} reduction_cases[] = {
    {"v = 2^64 - 1",
     {RUN('z', 11), RUN('a', 6), RUN('b', 1), RUN('a', 20), RUN('b', 1), RUN('a', 33), RUN('b', 1),
      RUN('a', 18), RUN('b', 1), RUN('a', 18), RUN('b', 1), RUN(0xA8D63, 1), TEXT("yoton.test"),
      RUN(0x4761, 1), TEXT(".txt.pu"), RUN(0x8487F, 1), END},
     {0xFFFFFFFFu, 0xFFFFFFFFu, 0},
     15,
     65535},
    {"v = 2^64 - 7",
     {RUN('z', 11), RUN('a', 6), RUN('b', 1), RUN('a', 20), RUN('b', 1), RUN('a', 33), RUN('b', 1),
      RUN('a', 18), RUN('b', 1), RUN('a', 18), RUN('b', 1), RUN(0x8E8E8, 1), TEXT("yoton.test"),
      RUN(0x96C12, 1), TEXT(".txt.pu"), RUN(0x3820, 1), END},
     {0xFFFFFFF9u, 0xFFFFFFFFu, 0},
     9,
     65529},
    {"L1 = 0xFFFFFFFF, L2 = 2^29: L1*2^32 + 8*L2 wraps",
     {RUN('z', 6),  RUN('v', 1), RUN('a', 1),  RUN('b', 1), RUN('a', 19), RUN('b', 1),
      RUN('a', 19), RUN('b', 1), RUN('a', 44), RUN('b', 1), RUN('a', 31), RUN('b', 1),
      RUN('a', 26), RUN('b', 1), RUN('a', 24), RUN('b', 1), RUN('a', 19), RUN('b', 1),
      RUN('a', 21), RUN('b', 1), RUN('a', 17), RUN('b', 1), RUN('a', 30), RUN('b', 1),
      RUN('a', 26), RUN('b', 1), RUN('a', 5),  RUN(0x88000, 1), END},
     {0x54F2398Bu, 0xFFFFFFFFu, 0x20000000u},
     UINT64_C(1425160603),
     63883},
    {"L1 = 0xFFFFFFFF, L2 = 2^28, L0 >= 2^31: adding L0 wraps",
     {RUN('z', 8),  RUN('c', 1), RUN('a', 1),  RUN('b', 1), RUN('a', 22), RUN('b', 1),
      RUN('a', 26), RUN('b', 1), RUN('a', 19), RUN('b', 1), RUN('a', 31), RUN('b', 1),
      RUN('a', 32), RUN('b', 1), RUN('a', 22), RUN('b', 1), RUN('a', 40), RUN('b', 1),
      RUN('a', 22), RUN('b', 1), RUN('a', 34), RUN('b', 1), RUN('a', 24), RUN('b', 1),
      RUN('a', 2),  RUN(0x88000, 1), END},
     {0xBA10070Au, 0xFFFFFFFFu, 0x10000000u},
     UINT64_C(974128922),
     50954},
};

static void test_reduction_edges(void)
{
    for (size_t i = 0; i < sizeof reduction_cases / sizeof reduction_cases[0]; i++) {
        char buf[1024];
        size_t len = 0;
        for (const piece *p = reduction_cases[i].name; p->text || p->count; p++) {
            if (p->text) {
                memcpy(buf + len, p->text, strlen(p->text));
                len += strlen(p->text);
            } else {
                put_cp(buf, &len, p->cp, p->count);
            }
        }
        size_t ncp;
        uint32_t *cps = decode(buf, len, &ncp);
        ref_num r;
        ref_value(cps, ncp, &r);
        const uint32_t *want = reduction_cases[i].limbs;
        CU_ASSERT_EQUAL(r.n, want[2] ? 3u : 2u);
        CU_ASSERT(r.d[0] == want[0] && r.d[1] == want[1] && r.d[2] == want[2]);
        CU_ASSERT_EQUAL(ref_slot(&r), reduction_cases[i].slot);
        ref_free(&r);
        free(cps);

        uint64_t slot = 0;
        uint32_t port = 0;
        CU_ASSERT_EQUAL(yti_slot_hash(buf, len, &slot), YT_OK);
        CU_ASSERT_EQUAL(slot, reduction_cases[i].slot);
        CU_ASSERT_EQUAL(yti_port_hash(buf, len, &port), YT_OK);
        CU_ASSERT_EQUAL(port, reduction_cases[i].port);
    }
}

/* More than 0x10FFFF NUL code points: v stays 0 until the final step, v = n*F, and the final
 * multiplier is too large for the uint64 fast path's bound, so the limb path does the step. */
static void test_many_nuls(void)
{
    size_t n = 0x110000 + 5;
    char *buf = calloc(n, 1);
    CU_ASSERT_FATAL(buf != NULL);
    uint64_t v = (uint64_t)n * F_HASH; /* < 2^53 */
    uint64_t slot = 0;
    uint32_t port = 0;
    CU_ASSERT_EQUAL(yti_slot_hash(buf, n, &slot), YT_OK);
    CU_ASSERT_EQUAL(slot, 8 + v);
    CU_ASSERT_EQUAL(yti_port_hash(buf, n, &port), YT_OK);
    CU_ASSERT_EQUAL(port, 49152 + v % 16384);
    free(buf);
}

/* Names whose limb count needs the heap (len >= 9120 bytes) and just below, against the model. */
static void test_stack_heap_boundary(void)
{
    static const size_t lens[] = {9119, 9120, 9121};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *buf = malloc(lens[i]);
        CU_ASSERT_FATAL(buf != NULL);
        for (size_t j = 0; j < lens[i]; j++)
            buf[j] = (char)('!' + (j * 7) % 94);
        check_against_model(buf, lens[i]);
        free(buf);
    }
}

/* A 100,000-code-point name of mixed widths (1..4 UTF-8 bytes, including NUL and U+10FFFF),
 * against the model; v reaches about 17,000 bits. */
static void test_long_name(void)
{
    static const uint32_t pool[] = {'a', 'Z', '.', ' ', 0, 0x7F, 0xE9, 0xFF, 0x3A9,
                                    0x65E5, 0xFFFD, 0x1F600, 0x10FFFF, '-', '_', '~'};
    size_t ncp = 100000;
    uint32_t *cps = malloc(ncp * sizeof *cps);
    char *buf = malloc(ncp * 4);
    CU_ASSERT_FATAL(cps != NULL && buf != NULL);
    uint32_t x = 12345;
    size_t len = 0;
    for (size_t i = 0; i < ncp; i++) {
        x = x * 1103515245u + 12345u;
        cps[i] = pool[(x >> 16) % (sizeof pool / sizeof pool[0])];
        put_cp(buf, &len, cps[i], 1);
    }

    uint64_t t0 = yti_now();
    uint64_t slot = 0;
    uint32_t port = 0;
    CU_ASSERT_EQUAL(yti_slot_hash(buf, len, &slot), YT_OK);
    CU_ASSERT_EQUAL(yti_port_hash(buf, len, &port), YT_OK);
    double secs = (double)(yti_now() - t0) / 1e9;
    /* Typically tens of ms; the loose bound allows valgrind while catching a runaway algorithm. */
    CU_ASSERT(secs < 5.0);

    ref_num r;
    ref_value(cps, ncp, &r);
    CU_ASSERT(ref_bits(&r) > 16000);
    CU_ASSERT_EQUAL(slot, ref_slot(&r));
    CU_ASSERT_EQUAL(port, ref_port(&r));
    ref_free(&r);
    free(cps);
    free(buf);
}

void yt_suite_hash(void)
{
    static const yt_test_def t[] = {{"vectors_slot_hash", test_vectors_slot_hash},
                                    {"vectors_port_hash", test_vectors_port_hash},
                                    {"vectors_slot_names", test_vectors_slot_names},
                                    {"basics", test_basics},
                                    {"invalid_utf8", test_invalid_utf8},
                                    {"slot_name", test_slot_name},
                                    {"length_sweep", test_length_sweep},
                                    {"vectors_cross_2_64", test_vectors_cross_2_64},
                                    {"reduction_edges", test_reduction_edges},
                                    {"many_nuls", test_many_nuls},
                                    {"stack_heap_boundary", test_stack_heap_boundary},
                                    {"long_name", test_long_name},
                                    {NULL, NULL}};
    yt_add_suite("hash", t);
}

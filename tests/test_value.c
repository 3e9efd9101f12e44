/*
 * Tests of the object model and the OBJECT codec (src/value.c, spec 13): the reference's vector
 * files line by line, dict semantics, limits on untrusted input, and a fixed-seed fuzz loop.
 */
#include "testutil.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Data lines the vector files hold; a reader bug that skips lines fails the count checks. */
#define N_CODEC 67
#define N_INVALID 22
#define N_NONCANONICAL 9

/* ---- helpers ----------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A growable byte buffer for building encodings by hand. */
typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_byte(buf *b, unsigned char c)
{
    put(b, &c, 1);
}

static void put_u64(buf *b, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        put_byte(b, (unsigned char)(x >> (8 * i)));
}

static void put_long_num(buf *b, uint64_t n)
{
    put_byte(b, 0xff);
    put_u64(b, n);
}

static void put_int(buf *b, int64_t i)
{
    put_byte(b, 'i');
    put_u64(b, (uint64_t)i);
}

static void put_float(buf *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    put_byte(b, 'f');
    put_u64(b, bits);
}

static int decode_hex(const char *hex, yt_value **out)
{
    size_t n;
    unsigned char *bytes = yt_hex_decode(hex, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    int rc = yt_value_decode(bytes, n, out);
    free(bytes);
    return rc;
}

/* Encodes v and returns lower-case hex (malloc'd), or NULL on failure. */
static char *encode_hex(const yt_value *v)
{
    void *data = NULL;
    size_t n = 0;
    if (yt_value_encode(v, &data, &n) != YT_OK)
        return NULL;
    char *hex = yt_hex_encode(data, n);
    yt_free(data);
    return hex;
}

/* Bit-exact structural comparison (NaN equals NaN, 0.0 differs from -0.0), through the public
 * accessors only: checks that the decoder produced exactly the value, beyond yt_value_equal. */
static bool same(const yt_value *a, const yt_value *b)
{
    if (yt_value_type_of(a) != yt_value_type_of(b))
        return false;
    switch (yt_value_type_of(a)) {
    case YT_NONE:
        return true;
    case YT_BOOL: {
        bool x, y;
        return yt_value_as_bool(a, &x) == YT_OK && yt_value_as_bool(b, &y) == YT_OK && x == y;
    }
    case YT_INT: {
        int64_t x, y;
        return yt_value_as_int(a, &x) == YT_OK && yt_value_as_int(b, &y) == YT_OK && x == y;
    }
    case YT_FLOAT: {
        double x, y;
        if (yt_value_as_float(a, &x) != YT_OK || yt_value_as_float(b, &y) != YT_OK)
            return false;
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case YT_STRING: {
        size_t la, lb;
        const char *sa = yt_value_as_string(a, &la), *sb = yt_value_as_string(b, &lb);
        return sa && sb && la == lb && memcmp(sa, sb, la) == 0 && sa[la] == '\0';
    }
    case YT_LIST:
    case YT_TUPLE:
        if (yt_value_len(a) != yt_value_len(b))
            return false;
        for (size_t i = 0; i < yt_value_len(a); i++)
            if (!same(yt_value_item(a, i), yt_value_item(b, i)))
                return false;
        return true;
    case YT_DICT:
        if (yt_value_len(a) != yt_value_len(b))
            return false;
        for (size_t i = 0; i < yt_value_len(a); i++) {
            const yt_value *ka, *va, *kb, *vb;
            if (yt_value_dict_entry(a, i, &ka, &va) != YT_OK ||
                yt_value_dict_entry(b, i, &kb, &vb) != YT_OK || !same(ka, kb) || !same(va, vb))
                return false;
        }
        return true;
    }
    return false;
}

static bool contains_nan(const yt_value *v)
{
    double d;
    switch (yt_value_type_of(v)) {
    case YT_FLOAT:
        return yt_value_as_float(v, &d) == YT_OK && d != d;
    case YT_LIST:
    case YT_TUPLE:
        for (size_t i = 0; i < yt_value_len(v); i++)
            if (contains_nan(yt_value_item(v, i)))
                return true;
        return false;
    case YT_DICT:
        for (size_t i = 0; i < yt_value_len(v); i++) {
            const yt_value *k, *x;
            yt_value_dict_entry(v, i, &k, &x);
            if (contains_nan(k) || contains_nan(x))
                return true;
        }
        return false;
    default:
        return false;
    }
}

/* ---- the typed prefix notation of object_codec_typed.txt --------------------------------- */

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses one value at *p (advancing past it and one separating space); NULL on a syntax error. */
static yt_value *parse_typed(const char **p)
{
    const char *tok = *p;
    const char *end = strchr(tok, ' ');
    if (!end)
        end = tok + strlen(tok);
    size_t n = (size_t)(end - tok);
    *p = *end ? end + 1 : end;
    if (n == 0)
        return NULL;
    char body[4096];
    if (n - 1 >= sizeof body)
        return NULL;
    memcpy(body, tok + 1, n - 1);
    body[n - 1] = '\0';
    switch (tok[0]) {
    case 'N':
        return n == 1 ? yt_value_none() : NULL;
    case 'T':
    case 'F':
        return n == 1 ? yt_value_bool(tok[0] == 'T') : NULL;
    case 'i': {
        char *e;
        errno = 0;
        long long i = strtoll(body, &e, 10);
        return (*body && !*e && errno == 0) ? yt_value_int(i) : NULL;
    }
    case 'f': {
        if (n != 17)
            return NULL;
        uint64_t bits = 0;
        for (int k = 0; k < 16; k++) {
            int h = hexdigit(body[k]);
            if (h < 0)
                return NULL;
            bits = bits << 4 | (uint64_t)h;
        }
        double d;
        memcpy(&d, &bits, sizeof d);
        return yt_value_float(d);
    }
    case 's': {
        size_t len;
        unsigned char *bytes = yt_hex_decode(body, &len);
        if (!bytes)
            return NULL;
        yt_value *v = yt_value_stringn((const char *)bytes, len);
        free(bytes);
        return v;
    }
    case 'l':
    case 't':
    case 'd': {
        char *e;
        unsigned long count = strtoul(body, &e, 10);
        if (!*body || *e)
            return NULL;
        yt_value *c = tok[0] == 'l' ? yt_value_list() : tok[0] == 't' ? yt_value_tuple()
                                                                        : yt_value_dict();
        for (unsigned long k = 0; k < count; k++) {
            yt_value *item = parse_typed(p);
            int rc;
            if (tok[0] == 'd') {
                yt_value *val = item ? parse_typed(p) : NULL;
                rc = (item && val) ? yt_value_dict_set(c, item, val) : YT_EINVAL;
                if (!(item && val)) {
                    yt_value_free(item);
                    yt_value_free(val);
                }
            } else {
                rc = item ? yt_value_append(c, item) : YT_EINVAL;
            }
            if (rc != YT_OK) {
                yt_value_free(c);
                return NULL;
            }
        }
        return c;
    }
    default:
        return NULL;
    }
}

/* ---- vector files ------------------------------------------------------------------------ */

/* Typed value -> encode: exact hex; hex -> decode: exactly the typed value. */
static void test_codec_typed(void)
{
    yt_vec_file *f = yt_vec_open("object_codec_typed.txt");
    int checked = 0;
    for (const yt_vec_line *l; f && (l = yt_vec_next(f));) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 2);
        const char *p = l->field[1];
        yt_value *v = parse_typed(&p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(*p, '\0'); /* the notation was consumed entirely */
        char *hex = encode_hex(v);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hex);
        if (strcmp(hex, l->field[0]) != 0)
            fprintf(stderr, "\nline %d: encoded %s, want %s\n", l->lineno, hex, l->field[0]);
        CU_ASSERT_STRING_EQUAL(hex, l->field[0]);
        free(hex);

        yt_value *d = NULL;
        CU_ASSERT_EQUAL_FATAL(decode_hex(l->field[0], &d), YT_OK);
        CU_ASSERT_TRUE(same(v, d));
        /* yt_value_equal compares floats by value, so a NaN is unequal even to itself. */
        if (contains_nan(v)) {
            CU_ASSERT_FALSE(yt_value_equal(v, d));
        } else {
            CU_ASSERT_TRUE(yt_value_equal(v, d));
        }
        yt_value_free(v);
        yt_value_free(d);
        checked++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(checked, N_CODEC);
}

/* Decode + re-encode is exact for every line, and the file lists the same encodings, in the
 * same order, as the typed file. */
static void test_codec_roundtrip(void)
{
    yt_vec_file *f = yt_vec_open("object_codec.txt");
    yt_vec_file *t = yt_vec_open("object_codec_typed.txt");
    int checked = 0;
    for (const yt_vec_line *l; f && t && (l = yt_vec_next(f));) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 2);
        char *hex_in = strdup(l->field[0]);
        const yt_vec_line *tl = yt_vec_next(t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
        CU_ASSERT_STRING_EQUAL(tl->field[0], hex_in);

        yt_value *v = NULL;
        CU_ASSERT_EQUAL_FATAL(decode_hex(hex_in, &v), YT_OK);
        char *hex = encode_hex(v);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hex);
        CU_ASSERT_STRING_EQUAL(hex, hex_in);
        free(hex);
        free(hex_in);
        yt_value_free(v);
        checked++;
    }
    CU_ASSERT_PTR_NULL(t ? yt_vec_next(t) : NULL); /* no typed line left over */
    yt_vec_close(f);
    yt_vec_close(t);
    CU_ASSERT_EQUAL(checked, N_CODEC);
}

static void test_invalid_vectors(void)
{
    yt_vec_file *f = yt_vec_open("object_invalid.txt");
    int checked = 0;
    for (const yt_vec_line *l; f && (l = yt_vec_next(f));) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 2);
        yt_value *sentinel = (yt_value *)&checked, *v = sentinel;
        yti_error_clear();
        int rc = decode_hex(l->field[0], &v);
        if (rc != YT_EDECODE)
            fprintf(stderr, "\nline %d (%s): rc %d\n", l->lineno, l->comment, rc);
        CU_ASSERT_EQUAL(rc, YT_EDECODE);
        CU_ASSERT_PTR_EQUAL(v, sentinel); /* untouched on failure */
        CU_ASSERT_NOT_EQUAL(yt_last_error()[0], '\0');
        checked++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(checked, N_INVALID);
}

static void test_noncanonical_vectors(void)
{
    yt_vec_file *f = yt_vec_open("object_noncanonical.txt");
    int checked = 0;
    for (const yt_vec_line *l; f && (l = yt_vec_next(f));) {
        CU_ASSERT_EQUAL_FATAL(l->nfields, 3);
        yt_value *v = NULL;
        CU_ASSERT_EQUAL_FATAL(decode_hex(l->field[0], &v), YT_OK);
        char *hex = encode_hex(v);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hex);
        CU_ASSERT_STRING_EQUAL(hex, l->field[2]);
        free(hex);
        yt_value_free(v);
        checked++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(checked, N_NONCANONICAL);

    /* The duplicate-key line, looked at closely: the first position, the last value. */
    yt_value *v = NULL;
    CU_ASSERT_EQUAL_FATAL(
        decode_hex("6402730161690100000000000000730161690200000000000000", &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(v), 1);
    int64_t i = 0;
    CU_ASSERT_EQUAL(yt_value_as_int(yt_value_dict_get_str(v, "a"), &i), YT_OK);
    CU_ASSERT_EQUAL(i, 2);
    yt_value_free(v);
}

/* ---- constructors and accessors ---------------------------------------------------------- */

static void test_scalars(void)
{
    yt_value *n = yt_value_none(), *b = yt_value_bool(true), *i = yt_value_int(INT64_MIN),
             *f = yt_value_float(-2.5), *s = yt_value_string("h\xc3\xa9");
    CU_ASSERT_EQUAL(yt_value_type_of(n), YT_NONE);
    CU_ASSERT_EQUAL(yt_value_type_of(b), YT_BOOL);
    CU_ASSERT_EQUAL(yt_value_type_of(i), YT_INT);
    CU_ASSERT_EQUAL(yt_value_type_of(f), YT_FLOAT);
    CU_ASSERT_EQUAL(yt_value_type_of(s), YT_STRING);

    bool bv = false;
    int64_t iv = 0;
    double dv = 0;
    size_t len = 0;
    CU_ASSERT_EQUAL(yt_value_as_bool(b, &bv), YT_OK);
    CU_ASSERT_TRUE(bv);
    CU_ASSERT_EQUAL(yt_value_as_int(i, &iv), YT_OK);
    CU_ASSERT_EQUAL(iv, INT64_MIN);
    CU_ASSERT_EQUAL(yt_value_as_float(f, &dv), YT_OK);
    CU_ASSERT_EQUAL(dv, -2.5);
    CU_ASSERT_EQUAL(yt_value_as_float(i, &dv), YT_OK); /* ints read as floats */
    CU_ASSERT_EQUAL(dv, (double)INT64_MIN);
    CU_ASSERT_STRING_EQUAL(yt_value_as_string(s, &len), "h\xc3\xa9");
    CU_ASSERT_EQUAL(len, 3);

    /* Type errors leave the output alone; no other conversions. */
    iv = 7;
    CU_ASSERT_EQUAL(yt_value_as_int(b, &iv), YT_EINVAL); /* a bool is not an int here */
    CU_ASSERT_EQUAL(yt_value_as_int(f, &iv), YT_EINVAL);
    CU_ASSERT_EQUAL(iv, 7);
    bv = false;
    CU_ASSERT_EQUAL(yt_value_as_bool(i, &bv), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_as_bool(n, &bv), YT_EINVAL);
    CU_ASSERT_FALSE(bv);
    dv = 1;
    CU_ASSERT_EQUAL(yt_value_as_float(b, &dv), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_as_float(s, &dv), YT_EINVAL);
    CU_ASSERT_EQUAL(dv, 1);
    CU_ASSERT_PTR_NULL(yt_value_as_string(i, &len));
    CU_ASSERT_EQUAL(yt_value_as_int(NULL, &iv), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_as_int(i, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_len(s), 0); /* len counts items, not bytes */
    CU_ASSERT_EQUAL(yt_value_len(i), 0);
    CU_ASSERT_PTR_NULL(yt_value_item(s, 0));

    /* Strings: embedded NUL kept with the length, trailing NUL added, UTF-8 checked. */
    yt_value *z = yt_value_stringn("a\0b", 3);
    const char *zs = yt_value_as_string(z, &len);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_EQUAL(memcmp(zs, "a\0b", 4), 0);
    yt_value *e = yt_value_stringn(NULL, 0);
    CU_ASSERT_STRING_EQUAL(yt_value_as_string(e, NULL), "");
    yti_error_clear();
    CU_ASSERT_PTR_NULL(yt_value_string("\xc3\x28"));
    CU_ASSERT_NOT_EQUAL(yt_last_error()[0], '\0');
    CU_ASSERT_PTR_NULL(yt_value_stringn("\xed\xa0\x80", 3)); /* surrogate */
    CU_ASSERT_PTR_NULL(yt_value_string(NULL));
    CU_ASSERT_PTR_NULL(yt_value_stringn(NULL, 2));
    CU_ASSERT_EQUAL(yt_value_type_of(NULL), YT_NONE);

    yt_value *all[] = {n, b, i, f, s, z, e};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        yt_value_free(all[k]);
    yt_value_free(NULL);
}

static void test_sequences(void)
{
    yt_value *l = yt_value_list(), *t = yt_value_tuple();
    for (int k = 0; k < 100; k++)
        CU_ASSERT_EQUAL(yt_value_append(l, yt_value_int(k)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_append(t, yt_value_string("x")), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(l), 100);
    CU_ASSERT_EQUAL(yt_value_len(t), 1);
    int64_t iv;
    CU_ASSERT_EQUAL(yt_value_as_int(yt_value_item(l, 99), &iv), YT_OK);
    CU_ASSERT_EQUAL(iv, 99);
    CU_ASSERT_PTR_NULL(yt_value_item(l, 100));
    CU_ASSERT_EQUAL(yt_value_type_of(t), YT_TUPLE);

    /* Failures consume the item (valgrind would report a leak otherwise). */
    yt_value *notseq = yt_value_int(1);
    CU_ASSERT_EQUAL(yt_value_append(notseq, yt_value_int(2)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_append(NULL, yt_value_int(2)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_append(l, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_len(l), 100);
    yt_value_free(notseq);
    yt_value_free(l);
    yt_value_free(t);
}

/* ---- dicts ----------------------------------------------------------------------------- */

static const yt_value *get_int_key(const yt_value *d, int64_t k)
{
    yt_value *key = yt_value_int(k);
    const yt_value *v = yt_value_dict_get(d, key);
    yt_value_free(key);
    return v;
}

static int64_t int_of(const yt_value *v)
{
    int64_t i = -12345;
    CU_ASSERT_EQUAL(yt_value_as_int(v, &i), YT_OK);
    return i;
}

/* Python key semantics, checked on a dict that first gets `filler` string keys, so that both
 * the linear (small) and the indexed (large) lookups are exercised. */
static void check_key_semantics(int filler)
{
    yt_value *d = yt_value_dict();
    char name[32];
    for (int k = 0; k < filler; k++) {
        snprintf(name, sizeof name, "filler%d", k);
        CU_ASSERT_EQUAL(yt_value_dict_set_str(d, name, yt_value_int(k)), YT_OK);
    }
    size_t base = yt_value_len(d);

    /* 1, 1.0 and True are one key: the first key stays, the last value wins. */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(1), yt_value_int(10)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_float(1.0), yt_value_int(11)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_bool(true), yt_value_int(12)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(d), base + 1);
    const yt_value *k, *v;
    CU_ASSERT_EQUAL(yt_value_dict_entry(d, base, &k, &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_type_of(k), YT_INT);
    CU_ASSERT_EQUAL(int_of(v), 12);

    /* 0, -0.0 and False too; a float with a fraction is its own key. */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_bool(false), yt_value_int(20)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_float(-0.0), yt_value_int(21)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(0), yt_value_int(22)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_float(1.5), yt_value_int(30)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(d), base + 3);
    CU_ASSERT_EQUAL(yt_value_dict_entry(d, base + 1, &k, &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_type_of(k), YT_BOOL);
    CU_ASSERT_EQUAL(int_of(v), 22);

    /* Exact comparison of int64 and double, also beyond 2^53 and at the int64 edges. */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(9007199254740993), yt_value_int(40)),
                    YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_float(9007199254740992.0), yt_value_int(41)),
                    YT_OK); /* 2^53: a different key from 2^53 + 1 */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(9007199254740992), yt_value_int(42)),
                    YT_OK); /* == 2^53 as a float */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(INT64_MAX), yt_value_int(50)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_float(0x1p63), yt_value_int(51)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(INT64_MIN), yt_value_int(52)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_float(-0x1p63), yt_value_int(53)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(d), base + 8);
    CU_ASSERT_EQUAL(int_of(get_int_key(d, 9007199254740993)), 40);
    CU_ASSERT_EQUAL(int_of(get_int_key(d, 9007199254740992)), 42);
    CU_ASSERT_EQUAL(int_of(get_int_key(d, INT64_MAX)), 50);
    CU_ASSERT_EQUAL(int_of(get_int_key(d, INT64_MIN)), 53);
    yt_value *fk = yt_value_float(0x1p63);
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get(d, fk)), 51);
    yt_value_free(fk);

    /* Lookups find equal keys of other numeric types. */
    yt_value *q = yt_value_float(1.0);
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get(d, q)), 12);
    yt_value_free(q);
    q = yt_value_bool(false);
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get(d, q)), 22);
    yt_value_free(q);
    CU_ASSERT_PTR_NULL(get_int_key(d, 2));

    /* Strings by bytes; None; tuples item by item with the same numeric rules. */
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "1", yt_value_int(60)), YT_OK); /* not the int 1 */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_none(), yt_value_int(61)), YT_OK);
    yt_value *t1 = yt_value_tuple();
    yt_value_append(t1, yt_value_int(1));
    yt_value_append(t1, yt_value_string("a"));
    CU_ASSERT_EQUAL(yt_value_dict_set(d, t1, yt_value_int(62)), YT_OK);
    yt_value *t2 = yt_value_tuple();
    yt_value_append(t2, yt_value_float(1.0));
    yt_value_append(t2, yt_value_string("a"));
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get(d, t2)), 62);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, t2, yt_value_int(63)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(d), base + 11);
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get_str(d, "1")), 60);
    q = yt_value_none();
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get(d, q)), 61);
    yt_value_free(q);
    CU_ASSERT_EQUAL(yt_value_dict_entry(d, base + 10, &k, &v), YT_OK);
    CU_ASSERT_EQUAL(int_of(v), 63);

    /* Replacing keeps positions: the order is still that of the first insertions. */
    if (filler > 0) {
        CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "filler0", yt_value_int(-1)), YT_OK);
        CU_ASSERT_EQUAL(yt_value_dict_entry(d, 0, &k, &v), YT_OK);
        CU_ASSERT_STRING_EQUAL(yt_value_as_string(k, NULL), "filler0");
        CU_ASSERT_EQUAL(int_of(v), -1);
    }
    CU_ASSERT_EQUAL(yt_value_len(d), base + 11);

    /* Unhashable keys are refused; key and value are consumed anyway. */
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_list(), yt_value_int(1)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_dict(), yt_value_int(1)), YT_EINVAL);
    yt_value *bad = yt_value_tuple();
    yt_value_append(bad, yt_value_int(1));
    yt_value_append(bad, yt_value_list());
    CU_ASSERT_EQUAL(yt_value_dict_set(d, bad, yt_value_int(1)), YT_EINVAL);
    q = yt_value_list();
    CU_ASSERT_PTR_NULL(yt_value_dict_get(d, q));
    yt_value_free(q);
    CU_ASSERT_EQUAL(yt_value_len(d), base + 11);
    yt_value_free(d);
}

static void test_dict_keys_small(void)
{
    check_key_semantics(0);
}

static void test_dict_keys_indexed(void)
{
    check_key_semantics(40);
}

static void test_dict_api(void)
{
    yt_value *d = yt_value_dict();
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "b", yt_value_int(1)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "a", yt_value_int(2)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "c", yt_value_int(3)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "a", yt_value_int(4)), YT_OK);
    const yt_value *k, *v;
    static const char *const order[] = {"b", "a", "c"};
    static const int64_t vals[] = {1, 4, 3};
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(yt_value_dict_entry(d, i, &k, &v), YT_OK);
        CU_ASSERT_STRING_EQUAL(yt_value_as_string(k, NULL), order[i]);
        CU_ASSERT_EQUAL(int_of(v), vals[i]);
    }
    k = v = NULL;
    CU_ASSERT_EQUAL(yt_value_dict_entry(d, 3, &k, &v), YT_EINVAL);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_PTR_NULL(yt_value_dict_get_str(d, "z"));
    CU_ASSERT_PTR_NULL(yt_value_dict_get_str(d, NULL));
    CU_ASSERT_PTR_NULL(yt_value_item(d, 0)); /* a dict is not a sequence */
    CU_ASSERT_EQUAL(yt_value_append(d, yt_value_int(1)), YT_EINVAL);

    /* Errors consume what they were given. */
    yt_value *l = yt_value_list();
    CU_ASSERT_EQUAL(yt_value_dict_set(l, yt_value_int(1), yt_value_int(1)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_set(NULL, yt_value_int(1), yt_value_int(1)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, NULL, yt_value_int(1)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, yt_value_int(1), NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, "\xff", yt_value_int(1)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_set_str(d, NULL, yt_value_int(1)), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_dict_entry(l, 0, &k, &v), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_len(d), 3);
    yt_value_free(l);
    yt_value_free(d);
}

/* NaN: unequal to itself, so every NaN key is a new key and none can be looked up. */
static void test_nan(void)
{
    yt_value *a = yt_value_float(NAN), *b = yt_value_float(NAN);
    CU_ASSERT_FALSE(yt_value_equal(a, a));
    CU_ASSERT_FALSE(yt_value_equal(a, b));
    yt_value *d = yt_value_dict();
    CU_ASSERT_EQUAL(yt_value_dict_set(d, a, yt_value_int(1)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_dict_set(d, b, yt_value_int(2)), YT_OK);
    yt_value *t = yt_value_tuple();
    yt_value_append(t, yt_value_float(NAN));
    CU_ASSERT_EQUAL(yt_value_dict_set(d, t, yt_value_int(3)), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(d), 3);
    yt_value *q = yt_value_float(NAN);
    CU_ASSERT_PTR_NULL(yt_value_dict_get(d, q));
    yt_value_free(q);

    /* Decoded: a dict of 3 NaN keys keeps 3 entries and re-encodes to the same bytes. */
    buf in = {0};
    put_byte(&in, 'd');
    put_byte(&in, 3);
    for (int k = 0; k < 3; k++) {
        put_float(&in, NAN);
        put_int(&in, k);
    }
    yt_value *v = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_value_decode(in.p, in.len, &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(v), 3);
    void *out;
    size_t n;
    CU_ASSERT_EQUAL(yt_value_encode(v, &out, &n), YT_OK);
    CU_ASSERT_EQUAL(n, in.len);
    CU_ASSERT_EQUAL(memcmp(out, in.p, n), 0);
    yt_free(out);
    yt_value_free(v);
    free(in.p);
    yt_value_free(d);
}

/* Builds {"k<i>": [i, (i, "x"), {"n": None}], ...} with n entries (indexed when n > 8). */
static yt_value *sample(int n)
{
    yt_value *d = yt_value_dict();
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        yt_value *l = yt_value_list(), *t = yt_value_tuple(), *inner = yt_value_dict();
        yt_value_append(t, yt_value_int(i));
        yt_value_append(t, yt_value_string("x"));
        yt_value_dict_set_str(inner, "n", yt_value_none());
        yt_value_append(l, yt_value_int(i));
        yt_value_append(l, t);
        yt_value_append(l, inner);
        yt_value_dict_set_str(d, key, l);
    }
    return d;
}

static void test_copy_equal(void)
{
    for (int n = 0; n <= 30; n += 6) {
        yt_value *a = sample(n), *b = yt_value_copy(a);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_PTR_NOT_EQUAL(a, b);
        CU_ASSERT_TRUE(yt_value_equal(a, b));
        CU_ASSERT_TRUE(same(a, b));
        /* The copy is independent and its own lookups work (the index came along). */
        CU_ASSERT_EQUAL(yt_value_dict_set_str(b, "extra", yt_value_int(1)), YT_OK);
        CU_ASSERT_EQUAL(yt_value_len(b), (size_t)n + 1);
        CU_ASSERT_EQUAL(yt_value_len(a), (size_t)n);
        CU_ASSERT_FALSE(yt_value_equal(a, b));
        for (int i = 0; i < n; i++) {
            char key[32];
            snprintf(key, sizeof key, "k%d", i);
            CU_ASSERT_TRUE(yt_value_equal(yt_value_dict_get_str(a, key),
                                          yt_value_dict_get_str(b, key)));
            CU_ASSERT_EQUAL(yt_value_dict_set_str(b, key, yt_value_int(i)), YT_OK);
        }
        CU_ASSERT_EQUAL(yt_value_len(b), (size_t)n + 1); /* replaced in place */
        yt_value_free(a);
        yt_value_free(b);
    }

    /* Strict types: no numeric cross-type equality, lists are not tuples. */
    yt_value *i1 = yt_value_int(1), *f1 = yt_value_float(1.0), *t = yt_value_bool(true),
             *l = yt_value_list(), *tu = yt_value_tuple(), *z = yt_value_float(0.0),
             *nz = yt_value_float(-0.0);
    CU_ASSERT_FALSE(yt_value_equal(i1, f1));
    CU_ASSERT_FALSE(yt_value_equal(i1, t));
    CU_ASSERT_FALSE(yt_value_equal(l, tu));
    CU_ASSERT_TRUE(yt_value_equal(z, nz)); /* floats by value */
    CU_ASSERT_TRUE(yt_value_equal(NULL, NULL));
    CU_ASSERT_FALSE(yt_value_equal(i1, NULL));
    yt_value *all[] = {i1, f1, t, l, tu, z, nz};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        yt_value_free(all[k]);

    /* Dicts compare pair by pair in order. */
    yt_value *d1 = yt_value_dict(), *d2 = yt_value_dict();
    yt_value_dict_set_str(d1, "a", yt_value_int(1));
    yt_value_dict_set_str(d1, "b", yt_value_int(2));
    yt_value_dict_set_str(d2, "b", yt_value_int(2));
    yt_value_dict_set_str(d2, "a", yt_value_int(1));
    CU_ASSERT_FALSE(yt_value_equal(d1, d2));
    yt_value_free(d1);
    yt_value_free(d2);

    /* A difference deep inside is found. */
    yt_value *a = sample(12), *b = sample(12);
    yt_value *inner = (yt_value *)yt_value_item(yt_value_dict_get_str(b, "k11"), 2);
    yt_value_dict_set_str(inner, "n", yt_value_bool(false));
    CU_ASSERT_FALSE(yt_value_equal(a, b));
    yt_value_free(a);
    yt_value_free(b);

    CU_ASSERT_PTR_NULL(yt_value_copy(NULL));
}

/* ---- encoder and decoder details ---------------------------------------------------------- */

static void test_encode_details(void)
{
    /* NUM switches to the long form at 255, counting bytes of UTF-8, not characters. */
    char s[300];
    memset(s, 'x', sizeof s);
    yt_value *v = yt_value_stringn(s, 254);
    char *hex = encode_hex(v);
    CU_ASSERT_EQUAL(strncmp(hex, "73fe78", 6), 0);
    free(hex);
    yt_value_free(v);
    v = yt_value_stringn(s, 255);
    hex = encode_hex(v);
    CU_ASSERT_EQUAL(strncmp(hex, "73ffff0000000000000078", 22), 0);
    free(hex);
    yt_value_free(v);

    void *out = NULL;
    size_t n = 0;
    v = yt_value_none();
    CU_ASSERT_EQUAL(yt_value_encode(NULL, &out, &n), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_encode(v, NULL, &n), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_encode(v, &out, NULL), YT_EINVAL);
    yt_value_free(v);

    /* Decoder arguments; an empty payload (even with a NULL pointer) is None. */
    CU_ASSERT_EQUAL(yt_value_decode("n", 1, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_value_decode(NULL, 1, &v), YT_EINVAL);
    v = NULL;
    CU_ASSERT_EQUAL(yt_value_decode(NULL, 0, &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_type_of(v), YT_NONE);
    CU_ASSERT_PTR_NOT_NULL(v);
    yt_value_free(v);
}

/* Every strict prefix of a canonical encoding is truncated and must fail cleanly. */
static void check_prefixes(const unsigned char *data, size_t len)
{
    for (size_t k = 1; k < len; k++) {
        /* A copy of exactly k bytes, so ASan sees any read past the end. */
        unsigned char *p = malloc(k);
        memcpy(p, data, k);
        yt_value *v = NULL;
        int rc = yt_value_decode(p, k, &v);
        CU_ASSERT_EQUAL(rc, YT_EDECODE);
        CU_ASSERT_PTR_NULL(v);
        if (rc == YT_OK)
            yt_value_free(v);
        free(p);
    }
}

static void test_truncation(void)
{
    yt_vec_file *f = yt_vec_open("object_codec_typed.txt");
    int checked = 0;
    for (const yt_vec_line *l; f && (l = yt_vec_next(f));) {
        size_t n;
        unsigned char *bytes = yt_hex_decode(l->field[0], &n);
        check_prefixes(bytes, n);
        free(bytes);
        checked++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(checked, N_CODEC);
    for (int n = 0; n <= 12; n += 12) {
        yt_value *v = sample(n);
        void *out;
        size_t len;
        CU_ASSERT_EQUAL_FATAL(yt_value_encode(v, &out, &len), YT_OK);
        check_prefixes(out, len);
        yt_free(out);
        yt_value_free(v);
    }
}

/* Counts are checked against the bytes left before anything is allocated for them. */
static void test_absurd_counts(void)
{
    static const uint64_t counts[] = {UINT64_MAX, (uint64_t)1 << 63, (uint64_t)1 << 40,
                                      (uint64_t)1 << 32, 1000};
    static const unsigned char tags[] = {'l', 't', 'd', 's'};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (size_t t = 0; t < sizeof tags; t++) {
            buf b = {0};
            put_byte(&b, tags[t]);
            put_long_num(&b, counts[c]);
            for (int k = 0; k < 20; k++)
                put_byte(&b, 'n');
            yt_value *v = NULL;
            /* ENOMEM (or an ASan report) would mean the count was trusted; the detail shows
             * that the count itself was refused, before any item was decoded. */
            CU_ASSERT_EQUAL(yt_value_decode(b.p, b.len, &v), YT_EDECODE);
            CU_ASSERT_PTR_NULL(v);
            CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "claims"));
            free(b.p);
        }
    }

    /* The bound is exact: each item needs one byte, each dict pair two. */
    yt_value *v = NULL;
    CU_ASSERT_EQUAL(yt_value_decode("l\x03nnn", 5, &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(v), 3);
    yt_value_free(v);
    v = NULL;
    CU_ASSERT_EQUAL(yt_value_decode("l\x04nnn", 5, &v), YT_EDECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "claims"));
    CU_ASSERT_EQUAL(yt_value_decode("d\x02nnnn", 6, &v), YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(v), 1); /* two None keys: one entry */
    yt_value_free(v);
    v = NULL;
    CU_ASSERT_EQUAL(yt_value_decode("d\x02nnn", 5, &v), YT_EDECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "claims"));

    /* Nested lists that each claim as many items as there are bytes left, then stop: every
     * level is plausible on its own, so only the geometric growth keeps memory small. */
    buf b = {0};
    const uint64_t total = 400 * 10 + 1;
    for (uint64_t k = 0; k < 400; k++) {
        put_byte(&b, 'l');
        put_long_num(&b, total - 10 * (k + 1)); /* exactly the bytes left */
    }
    put_byte(&b, 'n');
    CU_ASSERT_EQUAL(yt_value_decode(b.p, b.len, &v), YT_EDECODE);
    free(b.p);
}

/* Nesting of exactly YT_VALUE_MAX_DEPTH containers is fine; one more is refused both ways. */
static void test_depth(void)
{
    static const unsigned char tags[] = {'l', 't', 'd'};
    for (size_t t = 0; t < sizeof tags; t++) {
        for (int depth = YT_VALUE_MAX_DEPTH - 1; depth <= YT_VALUE_MAX_DEPTH + 1; depth++) {
            buf b = {0};
            for (int k = 0; k < depth; k++) {
                put_byte(&b, tags[t]);
                put_byte(&b, 1);
                if (tags[t] == 'd')
                    put_int(&b, k); /* key */
            }
            put_byte(&b, 'n');
            yt_value *v = NULL;
            int rc = yt_value_decode(b.p, b.len, &v);
            if (depth <= YT_VALUE_MAX_DEPTH) {
                CU_ASSERT_EQUAL(rc, YT_OK);
                void *out;
                size_t n;
                CU_ASSERT_EQUAL(yt_value_encode(v, &out, &n), YT_OK);
                CU_ASSERT_EQUAL(n, b.len);
                CU_ASSERT_EQUAL(memcmp(out, b.p, n), 0);
                yt_free(out);
                /* Wrapped once more, the encoder refuses it. */
                yt_value *w = tags[t] == 'l' ? yt_value_list() : yt_value_tuple();
                yt_value_append(w, v);
                int erc = yt_value_encode(w, &out, &n);
                CU_ASSERT_EQUAL(erc, depth == YT_VALUE_MAX_DEPTH ? YT_EENCODE : YT_OK);
                if (erc == YT_OK)
                    yt_free(out);
                yt_value_free(w);
            } else {
                CU_ASSERT_EQUAL(rc, YT_EDECODE);
                CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "Nesting"));
            }
            free(b.p);
        }
    }

    /* Tuple keys: as deep as the limit, fine; deeper, refused (bounds hashing recursion). */
    for (int depth = YT_VALUE_MAX_DEPTH; depth <= YT_VALUE_MAX_DEPTH + 1; depth++) {
        yt_value *key = yt_value_none();
        for (int k = 0; k < depth; k++) {
            yt_value *t = yt_value_tuple();
            yt_value_append(t, key);
            key = t;
        }
        yt_value *d = yt_value_dict();
        yt_value *q = yt_value_copy(key);
        int rc = yt_value_dict_set(d, key, yt_value_int(1));
        CU_ASSERT_EQUAL(rc, depth <= YT_VALUE_MAX_DEPTH ? YT_OK : YT_EINVAL);
        CU_ASSERT_EQUAL(yt_value_dict_get(d, q) != NULL, depth <= YT_VALUE_MAX_DEPTH);
        yt_value_free(q);
        yt_value_free(d);
    }
}

/* Values nested far deeper than the codec allows, built through the API: free, copy and
 * equal must not recurse on the C stack. */
static void test_very_deep_api_values(void)
{
    const int depth = 200000;
    yt_value *v = yt_value_int(7);
    for (int k = 0; k < depth; k++) {
        yt_value *c;
        if (k % 3 == 0) {
            c = yt_value_list();
            yt_value_append(c, v);
        } else if (k % 3 == 1) {
            c = yt_value_tuple();
            yt_value_append(c, yt_value_none());
            yt_value_append(c, v);
        } else {
            c = yt_value_dict();
            yt_value_dict_set_str(c, "k", v);
        }
        v = c;
    }
    yt_value *w = yt_value_copy(v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_TRUE(yt_value_equal(v, w));
    void *out = NULL;
    size_t n;
    CU_ASSERT_EQUAL(yt_value_encode(v, &out, &n), YT_EENCODE);
    CU_ASSERT_PTR_NULL(out);
    yt_value_free(v);
    yt_value_free(w);
}

/* ---- big dicts stay linear ---------------------------------------------------------------- */

static void decode_timed(const buf *b, size_t want_len, double limit, const char *what)
{
    yt_value *v = NULL;
    double t0 = now_s();
    int rc = yt_value_decode(b->p, b->len, &v);
    double dt = now_s() - t0;
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    CU_ASSERT_EQUAL(yt_value_len(v), want_len);
    if (dt >= limit)
        fprintf(stderr, "\n%s: decode took %.3f s\n", what, dt);
    CU_ASSERT(dt < limit);
    /* The re-encoding has the surviving entries in first-insertion order. */
    void *out;
    size_t n;
    CU_ASSERT_EQUAL(yt_value_encode(v, &out, &n), YT_OK);
    yt_free(out);
    yt_value_free(v);
}

static void test_big_dicts(void)
{
    /* With a linear scan per insert, 200,000 entries take minutes; with the index, tens of ms
     * (the bound is loose so that it also holds under valgrind, where it is about 1 s). */
    const double limit = 10.0;
    const uint64_t n = 200000;

    buf ints = {0};
    put_byte(&ints, 'd');
    put_long_num(&ints, n);
    for (uint64_t k = 0; k < n; k++) {
        put_int(&ints, (int64_t)(k * 7919));
        put_int(&ints, (int64_t)k);
    }
    yt_value *v = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_value_decode(ints.p, ints.len, &v), YT_OK);
    for (uint64_t k = 0; k < n; k += 997) {
        CU_ASSERT_EQUAL(int_of(get_int_key(v, (int64_t)(k * 7919))), (int64_t)k);
        yt_value *fk = yt_value_float((double)(k * 7919));
        CU_ASSERT_EQUAL(int_of(yt_value_dict_get(v, fk)), (int64_t)k);
        yt_value_free(fk);
        const yt_value *key, *val;
        CU_ASSERT_EQUAL(yt_value_dict_entry(v, (size_t)k, &key, &val), YT_OK);
        CU_ASSERT_EQUAL(int_of(key), (int64_t)(k * 7919));
    }
    CU_ASSERT_PTR_NULL(get_int_key(v, 1));
    yt_value_free(v);
    decode_timed(&ints, n, limit, "int keys");
    free(ints.p);

    /* Distinct string keys, then every key again: duplicates replace in place. */
    buf strs = {0};
    put_byte(&strs, 'd');
    put_long_num(&strs, 2 * n);
    for (int round = 0; round < 2; round++) {
        for (uint64_t k = 0; k < n; k++) {
            char key[32];
            int len = snprintf(key, sizeof key, "key-%llu", (unsigned long long)k);
            put_byte(&strs, 's');
            put_byte(&strs, (unsigned char)len);
            put(&strs, key, (size_t)len);
            put_int(&strs, round);
        }
    }
    decode_timed(&strs, n, limit, "string keys");
    CU_ASSERT_EQUAL_FATAL(yt_value_decode(strs.p, strs.len, &v), YT_OK);
    CU_ASSERT_EQUAL(int_of(yt_value_dict_get_str(v, "key-12345")), 1);
    const yt_value *key, *val;
    CU_ASSERT_EQUAL(yt_value_dict_entry(v, 12345, &key, &val), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_value_as_string(key, NULL), "key-12345");
    yt_value_free(v);
    free(strs.p);

    /* One key 300,000 times, as 1, 1.0 and True in turn. */
    buf dup = {0};
    put_byte(&dup, 'd');
    put_long_num(&dup, 3 * (n / 2));
    for (uint64_t k = 0; k < n / 2; k++) {
        put_int(&dup, 1);
        put_byte(&dup, 'n');
        put_float(&dup, 1.0);
        put_byte(&dup, 'n');
        put_byte(&dup, 'b');
        put_byte(&dup, 1);
        put_int(&dup, (int64_t)k);
    }
    decode_timed(&dup, 1, limit, "duplicate keys");
    free(dup.p);

    /* NaN keys never match, so none of them may cost a probe chain. */
    buf nans = {0};
    put_byte(&nans, 'd');
    put_long_num(&nans, n);
    for (uint64_t k = 0; k < n; k++) {
        put_float(&nans, NAN);
        put_byte(&nans, 'n');
    }
    decode_timed(&nans, n, limit, "NaN keys");
    free(nans.p);
}

/* ---- fuzz ------------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, so every run feeds the same inputs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Decodes data; when it is accepted, the value must survive encode -> decode unchanged and
 * its encoding must be a fixed point. Returns whether it was accepted. */
static bool fuzz_one(const unsigned char *data, size_t len)
{
    unsigned char *p = malloc(len ? len : 1); /* exact size, so ASan sees overreads */
    if (len)
        memcpy(p, data, len);
    yt_value *v = NULL;
    int rc = yt_value_decode(p, len, &v);
    free(p);
    if (rc != YT_OK) {
        CU_ASSERT_EQUAL(rc, YT_EDECODE);
        return false;
    }
    void *e1, *e2;
    size_t n1, n2;
    CU_ASSERT_EQUAL_FATAL(yt_value_encode(v, &e1, &n1), YT_OK);
    CU_ASSERT(n1 <= (len ? len : 1)); /* canonical is never longer (empty input: "n") */
    yt_value *w = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_value_decode(e1, n1, &w), YT_OK);
    CU_ASSERT_TRUE(same(v, w));
    CU_ASSERT_EQUAL_FATAL(yt_value_encode(w, &e2, &n2), YT_OK);
    CU_ASSERT_TRUE(n1 == n2 && memcmp(e1, e2, n1) == 0);
    yt_value *c = yt_value_copy(v);
    CU_ASSERT_TRUE(same(v, c));
    yt_free(e1);
    yt_free(e2);
    yt_value_free(v);
    yt_value_free(w);
    yt_value_free(c);
    return true;
}

static void test_fuzz(void)
{
    static const unsigned char alphabet[] = "nbifsltd\x00\x01\x02\x03\xff\x80\xc3\xa9";
    rng_state = 0x9e3779b97f4a7c15ULL;
    unsigned char data[96];
    int accepted = 0;

    /* Random strings over bytes that mean something to the decoder, plus any byte. */
    for (int iter = 0; iter < 4000; iter++) {
        size_t len = (size_t)(rng() % sizeof data);
        for (size_t k = 0; k < len; k++) {
            uint64_t r = rng();
            data[k] = (r & 3) ? alphabet[(r >> 8) % (sizeof alphabet - 1)]
                              : (unsigned char)(r >> 16);
        }
        accepted += fuzz_one(data, len);
    }

    /* Mutations of valid encodings: overwrite, insert, delete, truncate, small counts. */
    yt_vec_file *f = yt_vec_open("object_codec_typed.txt");
    unsigned char *seeds[N_CODEC + 1];
    size_t seed_len[N_CODEC + 1];
    size_t nseeds = 0;
    for (const yt_vec_line *l; f && (l = yt_vec_next(f)) && nseeds < N_CODEC;) {
        seeds[nseeds] = yt_hex_decode(l->field[0], &seed_len[nseeds]);
        nseeds++;
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL_FATAL(nseeds, N_CODEC);
    for (int iter = 0; iter < 4000; iter++) {
        size_t s = (size_t)(rng() % nseeds);
        size_t len = seed_len[s];
        unsigned char *m = malloc(len + 16);
        memcpy(m, seeds[s], len);
        int edits = 1 + (int)(rng() % 3);
        for (int e = 0; e < edits; e++) {
            uint64_t r = rng();
            size_t at = len ? (size_t)((r >> 8) % len) : 0;
            switch (r % 5) {
            case 0: /* overwrite */
                if (len)
                    m[at] = (r & 0x10000) ? alphabet[(r >> 20) % (sizeof alphabet - 1)]
                                          : (unsigned char)(r >> 24);
                break;
            case 1: /* insert */
                if (len < seed_len[s] + 15) {
                    memmove(m + at + 1, m + at, len - at);
                    m[at] = (unsigned char)(r >> 32);
                    len++;
                }
                break;
            case 2: /* delete */
                if (len) {
                    memmove(m + at, m + at + 1, len - at - 1);
                    len--;
                }
                break;
            case 3: /* truncate */
                len = at;
                break;
            default: /* a small count or length byte */
                if (len)
                    m[at] = (unsigned char)(r >> 32) % 5;
                break;
            }
        }
        accepted += fuzz_one(m, len);
        free(m);
    }
    for (size_t s = 0; s < nseeds; s++)
        free(seeds[s]);
    /* Not a tautology: both kinds of input occurred. */
    CU_ASSERT(accepted > 100);
    CU_ASSERT(accepted < 8000);
}

void yt_suite_value(void)
{
    static const yt_test_def t[] = {{"codec_typed", test_codec_typed},
                                    {"codec_roundtrip", test_codec_roundtrip},
                                    {"invalid_vectors", test_invalid_vectors},
                                    {"noncanonical_vectors", test_noncanonical_vectors},
                                    {"scalars", test_scalars},
                                    {"sequences", test_sequences},
                                    {"dict_keys_small", test_dict_keys_small},
                                    {"dict_keys_indexed", test_dict_keys_indexed},
                                    {"dict_api", test_dict_api},
                                    {"nan", test_nan},
                                    {"copy_equal", test_copy_equal},
                                    {"encode_details", test_encode_details},
                                    {"truncation", test_truncation},
                                    {"absurd_counts", test_absurd_counts},
                                    {"depth", test_depth},
                                    {"very_deep_api_values", test_very_deep_api_values},
                                    {"big_dicts", test_big_dicts},
                                    {"fuzz", test_fuzz},
                                    {NULL, NULL}};
    yt_add_suite("value", t);
}

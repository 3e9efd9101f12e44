/*
 * value.c - the object model of OBJECT messages (yt_value) and its codec (spec 13).
 *
 * Model: a yt_value is a tagged union. A string lives in the same allocation as its value, with
 * its byte length and a trailing NUL. Lists and tuples hold an array of owned item pointers.
 * A dict holds its entries (key, value, hash) in insertion order; once it has more than
 * DICT_LINEAR_MAX entries it also keeps an open-addressing index (linear probing, load at most
 * 1/2) of entry positions, so an insert or lookup costs O(1) expected instead of a scan. The
 * index hashes with SipHash-1-3 under a key drawn per dict from its address and the monotonic
 * clock, so a peer cannot craft keys that all land in one probe chain. Dicts never shrink (the
 * API has no delete), so the index needs no tombstones.
 *
 * Dict keys follow Python: bool, int and float compare by numeric value (1, 1.0 and true are
 * one key, and hash alike because an integral float in int64 range is hashed as that int),
 * strings by bytes, tuples item by item; lists and dicts are unhashable. A key that contains a
 * NaN never equals anything (decoded NaNs are distinct objects in the reference too), so it is
 * appended without a lookup and never entered in the index: a million NaN keys stay linear.
 * Setting an existing key keeps the first key and its position and replaces the value.
 * yt_value_equal, by contrast, is strict about types (see yoton.h).
 *
 * Threads: no shared state. Reads (get, entry, item, equal, copy, encode) never modify a value,
 * so one value may be read from several threads at once; the index is only built on insert.
 *
 * Depth: the nesting depth of a value is the number of containers on the longest path from it
 * down (a scalar has depth 0, [[]] has depth 2). The decoder and the encoder refuse depths over
 * YT_VALUE_MAX_DEPTH, which bounds their recursion (the decoder's to about 260 bytes of stack
 * per level with -O2, so some 130 KB at the limit). Dict keys deeper than that are refused too,
 * which bounds the recursion of key hashing and comparison. yt_value_free, yt_value_copy and
 * yt_value_equal are iterative, so values nested arbitrarily deep through the API are safe.
 *
 * Decoder limits: it never trusts a count: a list or tuple count larger than the bytes left, or
 * a dict count larger than half of them (every item takes at least one byte), fails before
 * anything is allocated for it. Arrays are never sized from a count; they start at most 16
 * slots wide and double as items actually decode, so memory stays proportional to the input:
 * at worst about 50 bytes of heap per input byte (measured: 48 for a list of None, where every
 * one-byte item becomes a value of its own; 28-36 for lists of empty strings or containers).
 */
#include "platform.h"
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Dicts up to this size are searched linearly; beyond it they get a hash index. */
#define DICT_LINEAR_MAX 8
/* Set in an entry's hash when its key contains a NaN: never looked up, never indexed. */
#define HASH_UNFINDABLE ((uint64_t)1 << 63)
#define NOT_FOUND SIZE_MAX
/* Initial array size of decoded containers (at most the declared count). */
#define DECODE_INITIAL_CAP 16

typedef struct dict_entry {
    yt_value *key;
    yt_value *val;
    uint64_t hash; /* valid once the dict has an index; else 0 or HASH_UNFINDABLE */
} dict_entry;

typedef struct dict_index {
    uint64_t k0, k1; /* SipHash key, kept across rebuilds and shared by copies */
    size_t mask;     /* slot count - 1; the slot count is a power of two */
    size_t slot[];   /* entry position + 1; 0 is an empty slot */
} dict_index;

struct yt_value {
    yt_value_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *bytes; /* points just past the struct, in the same allocation */
            size_t len;
        } str;
        struct {
            yt_value **items;
            size_t len, cap;
            yt_value *up; /* only while yt_value_free runs: the container below on its stack */
        } seq;
        struct {
            dict_entry *entries;
            size_t len, cap;
            union {
                dict_index *index; /* NULL while len <= DICT_LINEAR_MAX */
                yt_value *up;      /* only while yt_value_free runs (the index is gone then) */
            } x;
        } dict;
    } u;
};

static const char *type_name(yt_value_type t)
{
    static const char *const names[] = {"None", "bool", "int", "float",
                                        "string", "list", "tuple", "dict"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static bool is_container(const yt_value *v)
{
    return v->type == YT_LIST || v->type == YT_TUPLE || v->type == YT_DICT;
}

static bool is_number(const yt_value *v)
{
    return v->type == YT_BOOL || v->type == YT_INT || v->type == YT_FLOAT;
}

/* ---- construction ---------------------------------------------------------------------- */

static yt_value *new_value(yt_value_type type)
{
    yt_value *v = calloc(1, sizeof *v);
    if (!v) {
        yti_error(YT_ENOMEM, "Out of memory allocating a %s value", type_name(type));
        return NULL;
    }
    v->type = type;
    return v;
}

/* A string value holding a copy of s[0..len) (not validated here). */
static yt_value *new_string(const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(yt_value) - 1) {
        yti_error(YT_ENOMEM, "String of %zu bytes is too large", len);
        return NULL;
    }
    yt_value *v = malloc(sizeof *v + len + 1);
    if (!v) {
        yti_error(YT_ENOMEM, "Out of memory allocating a string of %zu bytes", len);
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->type = YT_STRING;
    v->u.str.bytes = (char *)(v + 1);
    v->u.str.len = len;
    if (len)
        memcpy(v->u.str.bytes, s, len);
    v->u.str.bytes[len] = '\0';
    return v;
}

static int make_string(const char *s, size_t len, yt_value **out)
{
    if (!s && len)
        return yti_error(YT_EINVAL, "NULL string with a non-zero length");
    if (!yti_utf8_valid(s ? s : "", len))
        return yti_error(YT_EINVAL, "String is not valid UTF-8");
    *out = new_string(s, len);
    return *out ? YT_OK : YT_ENOMEM;
}

yt_value *yt_value_none(void)
{
    return new_value(YT_NONE);
}

yt_value *yt_value_bool(bool b)
{
    yt_value *v = new_value(YT_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

yt_value *yt_value_int(int64_t i)
{
    yt_value *v = new_value(YT_INT);
    if (v)
        v->u.i = i;
    return v;
}

yt_value *yt_value_float(double d)
{
    yt_value *v = new_value(YT_FLOAT);
    if (v)
        v->u.f = d;
    return v;
}

yt_value *yt_value_string(const char *s)
{
    if (!s) {
        yti_error(YT_EINVAL, "NULL string");
        return NULL;
    }
    return yt_value_stringn(s, strlen(s));
}

yt_value *yt_value_stringn(const char *s, size_t len)
{
    yt_value *v = NULL;
    return make_string(s, len, &v) == YT_OK ? v : NULL;
}

yt_value *yt_value_list(void)
{
    return new_value(YT_LIST);
}

yt_value *yt_value_tuple(void)
{
    return new_value(YT_TUPLE);
}

yt_value *yt_value_dict(void)
{
    return new_value(YT_DICT);
}

/* ---- freeing (iterative) ----------------------------------------------------------------- */

/* Takes one child out of container c, clearing its slot; false when none is left. */
static bool take_child(yt_value *c, yt_value **child)
{
    if (c->type == YT_DICT) {
        while (c->u.dict.len > 0) {
            dict_entry *e = &c->u.dict.entries[c->u.dict.len - 1];
            if (e->val) {
                *child = e->val;
                e->val = NULL;
                return true;
            }
            if (e->key) {
                *child = e->key;
                e->key = NULL;
                return true;
            }
            c->u.dict.len--;
        }
        return false;
    }
    while (c->u.seq.len > 0) {
        yt_value *item = c->u.seq.items[--c->u.seq.len];
        if (item) {
            *child = item;
            return true;
        }
    }
    return false;
}

/* Puts container c on the free stack whose top is `below`; returns the new top. */
static yt_value *free_push(yt_value *c, yt_value *below)
{
    if (c->type == YT_DICT) {
        free(c->u.dict.x.index);
        c->u.dict.x.up = below;
    } else {
        c->u.seq.up = below;
    }
    return c;
}

/*
 * The containers waiting to be emptied form a stack linked through their own `up` fields, so
 * freeing needs no memory and no recursion however deep the value is.
 */
void yt_value_free(yt_value *v)
{
    if (!v)
        return;
    if (!is_container(v)) {
        free(v); /* a string's bytes share its allocation */
        return;
    }
    yt_value *top = free_push(v, NULL);
    while (top) {
        yt_value *child;
        if (take_child(top, &child)) {
            if (is_container(child))
                top = free_push(child, top);
            else
                free(child);
            continue;
        }
        yt_value *below;
        if (top->type == YT_DICT) {
            below = top->u.dict.x.up;
            free(top->u.dict.entries);
        } else {
            below = top->u.seq.up;
            free(top->u.seq.items);
        }
        free(top);
        top = below;
    }
}

/* ---- accessors ------------------------------------------------------------------------- */

yt_value_type yt_value_type_of(const yt_value *v)
{
    return v ? v->type : YT_NONE;
}

static int wrong_type(const yt_value *v, const char *wanted)
{
    if (!v)
        return yti_error(YT_EINVAL, "NULL value where a %s was expected", wanted);
    return yti_error(YT_EINVAL, "Value is a %s, not a %s", type_name(v->type), wanted);
}

int yt_value_as_bool(const yt_value *v, bool *out)
{
    if (!out)
        return yti_error(YT_EINVAL, "NULL out pointer");
    if (!v || v->type != YT_BOOL)
        return wrong_type(v, "bool");
    *out = v->u.b;
    return YT_OK;
}

int yt_value_as_int(const yt_value *v, int64_t *out)
{
    if (!out)
        return yti_error(YT_EINVAL, "NULL out pointer");
    if (!v || v->type != YT_INT)
        return wrong_type(v, "int");
    *out = v->u.i;
    return YT_OK;
}

int yt_value_as_float(const yt_value *v, double *out)
{
    if (!out)
        return yti_error(YT_EINVAL, "NULL out pointer");
    if (!v || (v->type != YT_FLOAT && v->type != YT_INT))
        return wrong_type(v, "float or int");
    *out = v->type == YT_FLOAT ? v->u.f : (double)v->u.i;
    return YT_OK;
}

const char *yt_value_as_string(const yt_value *v, size_t *len)
{
    if (!v || v->type != YT_STRING) {
        wrong_type(v, "string");
        return NULL;
    }
    if (len)
        *len = v->u.str.len;
    return v->u.str.bytes;
}

size_t yt_value_len(const yt_value *v)
{
    if (!v)
        return 0;
    if (v->type == YT_LIST || v->type == YT_TUPLE)
        return v->u.seq.len;
    if (v->type == YT_DICT)
        return v->u.dict.len;
    return 0;
}

const yt_value *yt_value_item(const yt_value *seq, size_t i)
{
    if (!seq || (seq->type != YT_LIST && seq->type != YT_TUPLE) || i >= seq->u.seq.len)
        return NULL;
    return seq->u.seq.items[i];
}

/* Grows a list/tuple array for one more item; `limit` caps the growth (the decoder passes the
 * declared count, so the array never ends up wider than it needs). */
static int seq_reserve(yt_value *seq, size_t limit)
{
    if (seq->u.seq.len < seq->u.seq.cap)
        return YT_OK;
    size_t cap = seq->u.seq.cap;
    size_t want = cap ? (cap <= SIZE_MAX / 2 ? cap * 2 : SIZE_MAX) : DECODE_INITIAL_CAP;
    if (want > limit)
        want = limit;
    if (want <= cap || want > SIZE_MAX / sizeof(yt_value *))
        return yti_error(YT_ENOMEM, "Sequence too large");
    yt_value **items = realloc(seq->u.seq.items, want * sizeof *items);
    if (!items)
        return yti_error(YT_ENOMEM, "Out of memory growing a %s to %zu items",
                         type_name(seq->type), want);
    seq->u.seq.items = items;
    seq->u.seq.cap = want;
    return YT_OK;
}

/* Appends item (consumed, also on failure). */
static int seq_push(yt_value *seq, yt_value *item, size_t limit)
{
    int rc = seq_reserve(seq, limit);
    if (rc != YT_OK) {
        yt_value_free(item);
        return rc;
    }
    seq->u.seq.items[seq->u.seq.len++] = item;
    return YT_OK;
}

int yt_value_append(yt_value *seq, yt_value *item)
{
    if (!seq || (seq->type != YT_LIST && seq->type != YT_TUPLE)) {
        yt_value_free(item);
        return wrong_type(seq, "list or tuple");
    }
    if (!item)
        return yti_error(YT_EINVAL, "NULL item");
    return seq_push(seq, item, SIZE_MAX);
}

/* ---- dict keys: validation, Python equality, hashing -------------------------------------- */

/*
 * Checks that v may be a dict key: no list or dict in it, and tuples nested at most
 * YT_VALUE_MAX_DEPTH - depth deep. Sets *nan when it contains a NaN. Returns NULL when it is
 * fine, else why not.
 */
static const char *check_key(const yt_value *v, int depth, bool *nan)
{
    switch (v->type) {
    case YT_FLOAT:
        if (v->u.f != v->u.f)
            *nan = true;
        return NULL;
    case YT_LIST:
        return "unhashable type: list";
    case YT_DICT:
        return "unhashable type: dict";
    case YT_TUPLE:
        if (depth >= YT_VALUE_MAX_DEPTH)
            return "key nests too deep";
        for (size_t i = 0; i < v->u.seq.len; i++) {
            const char *why = check_key(v->u.seq.items[i], depth + 1, nan);
            if (why)
                return why;
        }
        return NULL;
    default:
        return NULL;
    }
}

/* True when the bool, int or float v has an integral value that fits int64 (then *out). */
static bool num_as_int(const yt_value *v, int64_t *out)
{
    if (v->type == YT_BOOL) {
        *out = v->u.b;
        return true;
    }
    if (v->type == YT_INT) {
        *out = v->u.i;
        return true;
    }
    double d = v->u.f;
    /* Both bounds are exact doubles; NaN fails both tests. */
    if (d >= -0x1p63 && d < 0x1p63) {
        int64_t t = (int64_t)d;
        if ((double)t == d) {
            *out = t;
            return true;
        }
    }
    return false;
}

/* Python's == for two validated keys. Recursion is bounded by the key depth check. */
static bool key_eq(const yt_value *a, const yt_value *b)
{
    if (is_number(a) && is_number(b)) {
        int64_t ia = 0, ib = 0;
        bool inta = num_as_int(a, &ia), intb = num_as_int(b, &ib);
        if (inta || intb)
            return inta && intb && ia == ib;
        return a->u.f == b->u.f; /* both floats, neither integral in range */
    }
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case YT_NONE:
        return true;
    case YT_STRING:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.bytes, b->u.str.bytes, a->u.str.len) == 0;
    case YT_TUPLE:
        if (a->u.seq.len != b->u.seq.len)
            return false;
        for (size_t i = 0; i < a->u.seq.len; i++)
            if (!key_eq(a->u.seq.items[i], b->u.seq.items[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* Streaming SipHash-1-3 (the variant CPython uses for str). */
typedef struct sip {
    uint64_t v0, v1, v2, v3;
    uint64_t m; /* pending bytes of the current word */
    uint64_t n; /* bytes fed so far */
} sip;

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(sip *s)
{
    s->v0 += s->v1;
    s->v1 = SIP_ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = SIP_ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = SIP_ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = SIP_ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = SIP_ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = SIP_ROTL(s->v2, 32);
}

static void sip_init(sip *s, uint64_t k0, uint64_t k1)
{
    s->v0 = k0 ^ 0x736f6d6570736575u;
    s->v1 = k1 ^ 0x646f72616e646f6du;
    s->v2 = k0 ^ 0x6c7967656e657261u;
    s->v3 = k1 ^ 0x7465646279746573u;
    s->m = 0;
    s->n = 0;
}

static void sip_byte(sip *s, unsigned char c)
{
    s->m |= (uint64_t)c << (8 * (s->n & 7));
    if ((++s->n & 7) == 0) {
        s->v3 ^= s->m;
        sip_round(s);
        s->v0 ^= s->m;
        s->m = 0;
    }
}

static void sip_bytes(sip *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        sip_byte(s, p[i]);
}

static void sip_u64(sip *s, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        sip_byte(s, (unsigned char)(x >> (8 * i)));
}

static uint64_t sip_final(sip *s)
{
    uint64_t b = (s->n << 56) | s->m;
    s->v3 ^= b;
    sip_round(s);
    s->v0 ^= b;
    s->v2 ^= 0xff;
    sip_round(s);
    sip_round(s);
    sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* Feeds a canonical form of a validated key: keys that are == feed the same bytes. */
static void hash_feed(sip *s, const yt_value *v)
{
    int64_t i;
    switch (v->type) {
    case YT_NONE:
        sip_byte(s, 'n');
        break;
    case YT_BOOL:
    case YT_INT:
    case YT_FLOAT:
        if (num_as_int(v, &i)) {
            sip_byte(s, 'i');
            sip_u64(s, (uint64_t)i);
        } else {
            uint64_t bits;
            memcpy(&bits, &v->u.f, sizeof bits);
            sip_byte(s, 'f');
            sip_u64(s, bits);
        }
        break;
    case YT_STRING:
        sip_byte(s, 's');
        sip_u64(s, v->u.str.len);
        sip_bytes(s, v->u.str.bytes, v->u.str.len);
        break;
    case YT_TUPLE:
        sip_byte(s, 't');
        sip_u64(s, v->u.seq.len);
        for (size_t k = 0; k < v->u.seq.len; k++)
            hash_feed(s, v->u.seq.items[k]);
        break;
    default:
        break; /* unhashable: excluded by check_key */
    }
}

static uint64_t key_hash(const dict_index *ix, const yt_value *key)
{
    sip s;
    sip_init(&s, ix->k0, ix->k1);
    hash_feed(&s, key);
    return sip_final(&s) & ~HASH_UNFINDABLE;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

static dict_index *index_new(size_t slots, uint64_t k0, uint64_t k1)
{
    if (slots > (SIZE_MAX - sizeof(dict_index)) / sizeof(size_t))
        return NULL;
    dict_index *ix = calloc(1, sizeof *ix + slots * sizeof(size_t));
    if (!ix)
        return NULL;
    ix->k0 = k0;
    ix->k1 = k1;
    ix->mask = slots - 1;
    return ix;
}

static void index_put(dict_index *ix, uint64_t hash, size_t pos)
{
    size_t j = (size_t)hash & ix->mask;
    while (ix->slot[j])
        j = (j + 1) & ix->mask;
    ix->slot[j] = pos + 1;
}

/* Position of key in dict d, or NOT_FOUND. hash is only used when d has an index. */
static size_t dict_find(const yt_value *d, const yt_value *key, uint64_t hash)
{
    const dict_entry *e = d->u.dict.entries;
    const dict_index *ix = d->u.dict.x.index;
    if (ix) {
        for (size_t j = (size_t)hash & ix->mask; ix->slot[j]; j = (j + 1) & ix->mask) {
            size_t pos = ix->slot[j] - 1;
            if (e[pos].hash == hash && key_eq(e[pos].key, key))
                return pos;
        }
        return NOT_FOUND;
    }
    for (size_t pos = 0; pos < d->u.dict.len; pos++)
        if (!(e[pos].hash & HASH_UNFINDABLE) && key_eq(e[pos].key, key))
            return pos;
    return NOT_FOUND;
}

/* Makes the index ready for n entries: built when n first exceeds DICT_LINEAR_MAX, doubled
 * when the load would pass 1/2. */
static int index_reserve(yt_value *d, size_t n)
{
    dict_index *ix = d->u.dict.x.index;
    if (n <= DICT_LINEAR_MAX)
        return YT_OK;
    size_t slots = ix ? ix->mask + 1 : 0;
    if (ix && n <= slots / 2)
        return YT_OK;
    size_t want = slots ? slots : 16;
    while (want / 2 < n) {
        if (want > SIZE_MAX / 2)
            return yti_error(YT_ENOMEM, "Dict too large");
        want *= 2;
    }
    uint64_t k0, k1;
    if (ix) {
        k0 = ix->k0;
        k1 = ix->k1;
    } else {
        /* Unpredictable to a peer (ASLR, nanosecond clock) without needing any global state. */
        uint64_t t = yti_now();
        k0 = mix64(t ^ (uint64_t)(uintptr_t)d);
        k1 = mix64(k0 ^ (uint64_t)(uintptr_t)&t ^ 0x9e3779b97f4a7c15u);
    }
    dict_index *nix = index_new(want, k0, k1);
    if (!nix)
        return yti_error(YT_ENOMEM, "Out of memory indexing a dict of %zu entries", n);
    dict_entry *e = d->u.dict.entries;
    for (size_t pos = 0; pos < d->u.dict.len; pos++) {
        if (e[pos].hash & HASH_UNFINDABLE)
            continue;
        if (!ix)
            e[pos].hash = key_hash(nix, e[pos].key);
        index_put(nix, e[pos].hash, pos);
    }
    free(ix);
    d->u.dict.x.index = nix;
    return YT_OK;
}

/* d[key] = val for a key that passed check_key; key and val are consumed, also on failure. */
static int dict_put(yt_value *d, yt_value *key, yt_value *val, bool nan)
{
    uint64_t hash = HASH_UNFINDABLE;
    if (!nan) {
        hash = d->u.dict.x.index ? key_hash(d->u.dict.x.index, key) : 0;
        size_t pos = dict_find(d, key, hash);
        if (pos != NOT_FOUND) {
            /* As in Python, the first key stays (1 stays 1 after d[1.0] = x). */
            dict_entry *e = &d->u.dict.entries[pos];
            yt_value_free(e->val);
            e->val = val;
            yt_value_free(key);
            return YT_OK;
        }
    }
    int rc = YT_OK;
    size_t len = d->u.dict.len;
    if (len == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 4;
        dict_entry *entries = NULL;
        if (cap > d->u.dict.cap && cap <= SIZE_MAX / sizeof *entries)
            entries = realloc(d->u.dict.entries, cap * sizeof *entries);
        if (!entries) {
            rc = yti_error(YT_ENOMEM, "Out of memory growing a dict to %zu entries", cap);
            goto fail;
        }
        d->u.dict.entries = entries;
        d->u.dict.cap = cap;
    }
    bool had_index = d->u.dict.x.index != NULL;
    rc = index_reserve(d, len + 1);
    if (rc != YT_OK)
        goto fail;
    dict_index *ix = d->u.dict.x.index;
    if (ix && !had_index && !nan)
        hash = key_hash(ix, key); /* the index (and its hash key) was just created */
    d->u.dict.entries[len] = (dict_entry){key, val, hash};
    if (ix && !nan)
        index_put(ix, hash, len);
    d->u.dict.len = len + 1;
    return YT_OK;
fail:
    yt_value_free(key);
    yt_value_free(val);
    return rc;
}

int yt_value_dict_set(yt_value *d, yt_value *key, yt_value *val)
{
    if (!d || d->type != YT_DICT || !key || !val) {
        yt_value_free(key);
        yt_value_free(val);
        if (!d || d->type != YT_DICT)
            return wrong_type(d, "dict");
        return yti_error(YT_EINVAL, "NULL dict %s", key ? "value" : "key");
    }
    bool nan = false;
    const char *why = check_key(key, 0, &nan);
    if (why) {
        yt_value_free(key);
        yt_value_free(val);
        return yti_error(YT_EINVAL, "Invalid dict key: %s", why);
    }
    return dict_put(d, key, val, nan);
}

int yt_value_dict_set_str(yt_value *d, const char *key, yt_value *val)
{
    yt_value *k = NULL;
    int rc = key ? make_string(key, strlen(key), &k) : yti_error(YT_EINVAL, "NULL dict key");
    if (rc != YT_OK) {
        yt_value_free(val);
        return rc;
    }
    return yt_value_dict_set(d, k, val);
}

const yt_value *yt_value_dict_get(const yt_value *d, const yt_value *key)
{
    if (!d || d->type != YT_DICT || !key)
        return NULL;
    bool nan = false;
    if (check_key(key, 0, &nan) || nan)
        return NULL;
    const dict_index *ix = d->u.dict.x.index;
    size_t pos = dict_find(d, key, ix ? key_hash(ix, key) : 0);
    return pos == NOT_FOUND ? NULL : d->u.dict.entries[pos].val;
}

const yt_value *yt_value_dict_get_str(const yt_value *d, const char *key)
{
    if (!key)
        return NULL;
    /* A borrowed view: no allocation, and no UTF-8 check needed since stored keys are valid
     * and only identical bytes match. */
    yt_value view;
    memset(&view, 0, sizeof view);
    view.type = YT_STRING;
    view.u.str.bytes = (char *)(uintptr_t)key;
    view.u.str.len = strlen(key);
    return yt_value_dict_get(d, &view);
}

int yt_value_dict_entry(const yt_value *d, size_t i, const yt_value **key, const yt_value **val)
{
    if (!d || d->type != YT_DICT)
        return wrong_type(d, "dict");
    if (i >= d->u.dict.len)
        return yti_error(YT_EINVAL, "Dict entry %zu out of range (dict has %zu)", i,
                         d->u.dict.len);
    if (key)
        *key = d->u.dict.entries[i].key;
    if (val)
        *val = d->u.dict.entries[i].val;
    return YT_OK;
}

/* ---- iterative walks for copy and equal ------------------------------------------------- */

/* Containers are walked as a flat row of children; a dict's are key0, val0, key1, val1, ... */
static size_t child_count(const yt_value *v)
{
    if (v->type == YT_DICT)
        return v->u.dict.len * 2;
    if (v->type == YT_LIST || v->type == YT_TUPLE)
        return v->u.seq.len;
    return 0;
}

static const yt_value *child_at(const yt_value *v, size_t i)
{
    if (v->type == YT_DICT) {
        const dict_entry *e = &v->u.dict.entries[i / 2];
        return (i & 1) ? e->val : e->key;
    }
    return v->u.seq.items[i];
}

typedef struct walk_frame {
    const yt_value *a;
    const yt_value *b; /* equal: the other value */
    yt_value *dst;     /* copy: the container being filled */
    size_t next;       /* next child */
} walk_frame;

/* An explicit stack; the first frames live inside it, deeper ones on the heap. */
typedef struct walk {
    walk_frame *f;
    size_t n, cap;
    walk_frame local[32];
} walk;

static void walk_init(walk *w)
{
    w->f = w->local;
    w->n = 0;
    w->cap = sizeof w->local / sizeof w->local[0];
}

static bool walk_push(walk *w, walk_frame fr)
{
    if (w->n == w->cap) {
        if (w->cap > SIZE_MAX / 2 / sizeof(walk_frame))
            return false;
        size_t cap = w->cap * 2;
        walk_frame *f = w->f == w->local ? malloc(cap * sizeof *f)
                                         : realloc(w->f, cap * sizeof *f);
        if (!f)
            return false;
        if (w->f == w->local)
            memcpy(f, w->local, sizeof w->local);
        w->f = f;
        w->cap = cap;
    }
    w->f[w->n++] = fr;
    return true;
}

static void walk_done(walk *w)
{
    if (w->f != w->local)
        free(w->f);
}

/* A copy of v without its children: containers get room for all of them, as NULLs (which
 * yt_value_free skips, so a half-filled copy can always be freed). */
static yt_value *copy_shell(const yt_value *v)
{
    if (v->type == YT_STRING)
        return new_string(v->u.str.bytes, v->u.str.len);
    yt_value *c = new_value(v->type);
    if (!c)
        return NULL;
    if (v->type == YT_LIST || v->type == YT_TUPLE) {
        size_t n = v->u.seq.len;
        if (n) {
            c->u.seq.items = calloc(n, sizeof *c->u.seq.items);
            if (!c->u.seq.items)
                goto oom;
            c->u.seq.len = c->u.seq.cap = n;
        }
    } else if (v->type == YT_DICT) {
        size_t n = v->u.dict.len;
        if (n) {
            c->u.dict.entries = calloc(n, sizeof *c->u.dict.entries);
            if (!c->u.dict.entries)
                goto oom;
            c->u.dict.len = c->u.dict.cap = n;
            for (size_t i = 0; i < n; i++)
                c->u.dict.entries[i].hash = v->u.dict.entries[i].hash;
        }
        const dict_index *ix = v->u.dict.x.index;
        if (ix) {
            /* Same hash key, so the hashes and the index carry over unchanged. */
            size_t size = sizeof *ix + (ix->mask + 1) * sizeof(size_t);
            c->u.dict.x.index = malloc(size);
            if (!c->u.dict.x.index)
                goto oom;
            memcpy(c->u.dict.x.index, ix, size);
        }
    } else {
        c->u = v->u;
    }
    return c;
oom:
    yt_value_free(c);
    yti_error(YT_ENOMEM, "Out of memory copying a %s", type_name(v->type));
    return NULL;
}

static void put_child(yt_value *c, size_t i, yt_value *child)
{
    if (c->type == YT_DICT) {
        dict_entry *e = &c->u.dict.entries[i / 2];
        if (i & 1)
            e->val = child;
        else
            e->key = child;
    } else {
        c->u.seq.items[i] = child;
    }
}

yt_value *yt_value_copy(const yt_value *v)
{
    if (!v) {
        yti_error(YT_EINVAL, "NULL value");
        return NULL;
    }
    yt_value *root = copy_shell(v);
    if (!root || child_count(v) == 0)
        return root;
    walk w;
    walk_init(&w);
    if (!walk_push(&w, (walk_frame){v, NULL, root, 0}))
        goto oom;
    while (w.n > 0) {
        walk_frame *f = &w.f[w.n - 1];
        if (f->next == child_count(f->a)) {
            w.n--;
            continue;
        }
        size_t i = f->next++;
        yt_value *dst = f->dst;
        const yt_value *src = child_at(f->a, i);
        yt_value *c = copy_shell(src);
        if (!c)
            goto fail;
        put_child(dst, i, c);
        if (child_count(src) > 0 && !walk_push(&w, (walk_frame){src, NULL, c, 0}))
            goto oom;
    }
    walk_done(&w);
    return root;
oom:
    yti_error(YT_ENOMEM, "Out of memory copying a value");
fail:
    walk_done(&w);
    yt_value_free(root);
    return NULL;
}

/* Strict equality of a and b ignoring their children (containers: type and length). */
static bool shallow_equal(const yt_value *a, const yt_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case YT_NONE:
        return true;
    case YT_BOOL:
        return a->u.b == b->u.b;
    case YT_INT:
        return a->u.i == b->u.i;
    case YT_FLOAT:
        return a->u.f == b->u.f;
    case YT_STRING:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.bytes, b->u.str.bytes, a->u.str.len) == 0;
    default:
        return child_count(a) == child_count(b);
    }
}

bool yt_value_equal(const yt_value *a, const yt_value *b)
{
    if (!a || !b)
        return a == b;
    if (!shallow_equal(a, b))
        return false;
    if (child_count(a) == 0)
        return true;
    walk w;
    walk_init(&w);
    bool equal = walk_push(&w, (walk_frame){a, b, NULL, 0});
    while (equal && w.n > 0) {
        walk_frame *f = &w.f[w.n - 1];
        if (f->next == child_count(f->a)) {
            w.n--;
            continue;
        }
        size_t i = f->next++;
        const yt_value *ca = child_at(f->a, i), *cb = child_at(f->b, i);
        if (!shallow_equal(ca, cb))
            equal = false;
        else if (child_count(ca) > 0)
            equal = walk_push(&w, (walk_frame){ca, cb, NULL, 0});
    }
    /* Running out of memory for the stack (only for values nested thousands deep) gives false. */
    walk_done(&w);
    return equal;
}

/* ---- encoder ------------------------------------------------------------------------------ */

static size_t num_size(size_t n)
{
    return n < 255 ? 1 : 9;
}

static int add_size(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total)
        return yti_error(YT_ENOMEM, "Encoded value too large");
    *total += n;
    return YT_OK;
}

/* Adds the encoded size of v (nested in `depth` containers) to *total. */
static int encoded_size(const yt_value *v, int depth, size_t *total)
{
    switch (v->type) {
    case YT_NONE:
        return add_size(total, 1);
    case YT_BOOL:
        return add_size(total, 2);
    case YT_INT:
    case YT_FLOAT:
        return add_size(total, 9);
    case YT_STRING: {
        int rc = add_size(total, 1 + num_size(v->u.str.len));
        return rc ? rc : add_size(total, v->u.str.len);
    }
    case YT_LIST:
    case YT_TUPLE:
    case YT_DICT: {
        if (depth >= YT_VALUE_MAX_DEPTH)
            return yti_error(YT_EENCODE, "Value nests deeper than %d levels",
                             YT_VALUE_MAX_DEPTH);
        int rc = add_size(total, 1 + num_size(yt_value_len(v)));
        size_t n = child_count(v);
        for (size_t i = 0; rc == YT_OK && i < n; i++)
            rc = encoded_size(child_at(v, i), depth + 1, total);
        return rc;
    }
    }
    return yti_error(YT_EENCODE, "Unsupported value type %d", (int)v->type);
}

static unsigned char *put_u64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(x >> (8 * i));
    return p;
}

static unsigned char *put_num(unsigned char *p, size_t n)
{
    if (n < 255) {
        *p++ = (unsigned char)n;
        return p;
    }
    *p++ = 0xff;
    return put_u64(p, (uint64_t)n);
}

/* Writes v; encoded_size has already checked the depth and measured the room. */
static unsigned char *encode_into(const yt_value *v, unsigned char *p)
{
    uint64_t bits;
    switch (v->type) {
    case YT_NONE:
        *p++ = 'n';
        break;
    case YT_BOOL:
        *p++ = 'b';
        *p++ = v->u.b ? 1 : 0;
        break;
    case YT_INT:
        *p++ = 'i';
        memcpy(&bits, &v->u.i, sizeof bits);
        p = put_u64(p, bits);
        break;
    case YT_FLOAT:
        *p++ = 'f';
        memcpy(&bits, &v->u.f, sizeof bits);
        p = put_u64(p, bits);
        break;
    case YT_STRING:
        *p++ = 's';
        p = put_num(p, v->u.str.len);
        if (v->u.str.len)
            memcpy(p, v->u.str.bytes, v->u.str.len);
        p += v->u.str.len;
        break;
    case YT_LIST:
    case YT_TUPLE:
    case YT_DICT: {
        *p++ = v->type == YT_LIST ? 'l' : v->type == YT_TUPLE ? 't' : 'd';
        p = put_num(p, yt_value_len(v));
        size_t n = child_count(v);
        for (size_t i = 0; i < n; i++)
            p = encode_into(child_at(v, i), p);
        break;
    }
    }
    return p;
}

int yt_value_encode(const yt_value *v, void **out, size_t *len)
{
    if (!v || !out || !len)
        return yti_error(YT_EINVAL, "NULL argument to yt_value_encode");
    size_t size = 0;
    int rc = encoded_size(v, 0, &size);
    if (rc != YT_OK)
        return rc;
    unsigned char *buf = malloc(size);
    if (!buf)
        return yti_error(YT_ENOMEM, "Out of memory for %zu encoded bytes", size);
    encode_into(v, buf);
    *out = buf;
    *len = size;
    return YT_OK;
}

/* ---- decoder ------------------------------------------------------------------------------ */

typedef struct decoder {
    const unsigned char *p;
    size_t len;
    size_t pos;
} decoder;

static size_t remaining(const decoder *dec)
{
    return dec->len - dec->pos;
}

static int need(const decoder *dec, size_t n, const char *what)
{
    if (remaining(dec) >= n)
        return YT_OK;
    return yti_error(YT_EDECODE, "Truncated input: %s at offset %zu needs %zu byte%s, %zu left",
                     what, dec->pos, n, n == 1 ? "" : "s", remaining(dec));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static int read_num(decoder *dec, const char *what, uint64_t *n)
{
    int rc = need(dec, 1, what);
    if (rc != YT_OK)
        return rc;
    unsigned char b = dec->p[dec->pos++];
    if (b < 255) {
        *n = b;
        return YT_OK;
    }
    rc = need(dec, 8, what);
    if (rc != YT_OK)
        return rc;
    *n = get_u64(dec->p + dec->pos);
    dec->pos += 8;
    return YT_OK;
}

static int decode_value(decoder *dec, int depth, yt_value **out);

static int decode_seq(decoder *dec, yt_value_type type, int depth, size_t at, yt_value **out)
{
    const char *name = type_name(type);
    uint64_t count;
    int rc = read_num(dec, type == YT_LIST ? "list count" : "tuple count", &count);
    if (rc != YT_OK)
        return rc;
    if (count > remaining(dec))
        return yti_error(YT_EDECODE,
                         "The %s at offset %zu claims %" PRIu64 " items; only %zu bytes follow",
                         name, at, count, remaining(dec));
    if (depth >= YT_VALUE_MAX_DEPTH)
        return yti_error(YT_EDECODE, "Nesting deeper than %d levels at offset %zu",
                         YT_VALUE_MAX_DEPTH, at);
    yt_value *seq = new_value(type);
    if (!seq)
        return YT_ENOMEM;
    for (uint64_t k = 0; k < count; k++) {
        yt_value *item;
        rc = decode_value(dec, depth + 1, &item);
        if (rc == YT_OK)
            rc = seq_push(seq, item, (size_t)count);
        if (rc != YT_OK) {
            yt_value_free(seq);
            return rc;
        }
    }
    *out = seq;
    return YT_OK;
}

static int decode_dict(decoder *dec, int depth, size_t at, yt_value **out)
{
    uint64_t count;
    int rc = read_num(dec, "dict count", &count);
    if (rc != YT_OK)
        return rc;
    if (count > remaining(dec) / 2)
        return yti_error(YT_EDECODE,
                         "The dict at offset %zu claims %" PRIu64 " pairs; only %zu bytes follow",
                         at, count, remaining(dec));
    if (depth >= YT_VALUE_MAX_DEPTH)
        return yti_error(YT_EDECODE, "Nesting deeper than %d levels at offset %zu",
                         YT_VALUE_MAX_DEPTH, at);
    yt_value *d = new_value(YT_DICT);
    if (!d)
        return YT_ENOMEM;
    for (uint64_t k = 0; k < count; k++) {
        yt_value *key, *val;
        size_t key_at = dec->pos;
        rc = decode_value(dec, depth + 1, &key);
        if (rc != YT_OK)
            break;
        bool nan = false;
        const char *why = check_key(key, 0, &nan);
        if (why) {
            yt_value_free(key);
            rc = yti_error(YT_EDECODE, "Invalid dict key at offset %zu: %s", key_at, why);
            break;
        }
        rc = decode_value(dec, depth + 1, &val);
        if (rc != YT_OK) {
            yt_value_free(key);
            break;
        }
        rc = dict_put(d, key, val, nan);
        if (rc != YT_OK)
            break;
    }
    if (rc != YT_OK) {
        yt_value_free(d);
        return rc;
    }
    *out = d;
    return YT_OK;
}

/* Decodes one value nested in `depth` containers; recursion is bounded by the depth limit. */
static int decode_value(decoder *dec, int depth, yt_value **out)
{
    int rc = need(dec, 1, "type tag");
    if (rc != YT_OK)
        return rc;
    size_t at = dec->pos;
    unsigned char tag = dec->p[dec->pos++];
    yt_value *v = NULL;
    switch (tag) {
    case 'n':
        v = new_value(YT_NONE);
        break;
    case 'b':
        if ((rc = need(dec, 1, "bool")) != YT_OK)
            return rc;
        /* As struct.unpack + bool() in the reference: any non-zero byte is true. */
        v = yt_value_bool(dec->p[dec->pos++] != 0);
        break;
    case 'i': {
        if ((rc = need(dec, 8, "int")) != YT_OK)
            return rc;
        uint64_t bits = get_u64(dec->p + dec->pos);
        int64_t i;
        memcpy(&i, &bits, sizeof i);
        dec->pos += 8;
        v = yt_value_int(i);
        break;
    }
    case 'f': {
        if ((rc = need(dec, 8, "float")) != YT_OK)
            return rc;
        uint64_t bits = get_u64(dec->p + dec->pos);
        double f;
        memcpy(&f, &bits, sizeof f);
        dec->pos += 8;
        v = yt_value_float(f);
        break;
    }
    case 's': {
        uint64_t n;
        if ((rc = read_num(dec, "string length", &n)) != YT_OK)
            return rc;
        if (n > remaining(dec))
            return yti_error(YT_EDECODE,
                             "Truncated input: the string at offset %zu claims %" PRIu64
                             " bytes; only %zu follow",
                             at, n, remaining(dec));
        const char *s = (const char *)dec->p + dec->pos;
        if (!yti_utf8_valid(s, (size_t)n))
            return yti_error(YT_EDECODE, "Invalid UTF-8 in the string at offset %zu", at);
        dec->pos += (size_t)n;
        v = new_string(s, (size_t)n);
        break;
    }
    case 'l':
        return decode_seq(dec, YT_LIST, depth, at, out);
    case 't':
        return decode_seq(dec, YT_TUPLE, depth, at, out);
    case 'd':
        return decode_dict(dec, depth, at, out);
    default:
        return yti_error(YT_EDECODE, "Unsupported type tag %u at offset %zu", (unsigned)tag, at);
    }
    if (!v)
        return YT_ENOMEM;
    *out = v;
    return YT_OK;
}

int yt_value_decode(const void *data, size_t len, yt_value **out)
{
    if (!out || (!data && len))
        return yti_error(YT_EINVAL, "NULL argument to yt_value_decode");
    yt_value *v;
    if (len == 0) {
        /* The reference decodes an empty payload as None. */
        v = new_value(YT_NONE);
        if (!v)
            return YT_ENOMEM;
    } else {
        decoder dec = {data, len, 0};
        int rc = decode_value(&dec, 0, &v);
        if (rc != YT_OK)
            return rc;
        /* Bytes after the value are ignored, as the reference does. */
    }
    *out = v;
    return YT_OK;
}

/*
 * zlib message types and user-defined type names: the codec itself (round trips, exact bytes
 * as Python's zlib.compress writes them, refusal of bad and oversized streams without
 * over-allocating), and the channels that use it, over loopback contexts and raw socket peers.
 */
#include "channels/channel.h"
#include "hash.h"
#include "netutil.h"
#include "package.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
static void fill_random(unsigned char *b, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)(x >> 24);
    }
}

static yti_pkg *pkg_of(const void *data, size_t len)
{
    return yti_pkg_from(data, len, 0, 0, 0);
}

static void round_trip(const unsigned char *data, size_t len, size_t *zlen)
{
    yti_pkg *z = NULL, *back = NULL;
    CU_ASSERT_EQUAL_FATAL(yti_zlib_compress(data, len, &z), YT_OK);
    /* Python's zlib.decompress() must read it: a zlib header (CM 8, 32K window, check bits)
     * and what zlib's own uncompress() accepts. */
    CU_ASSERT_EQUAL(z->data[0], 0x78);
    CU_ASSERT_EQUAL(((unsigned)z->data[0] << 8 | z->data[1]) % 31, 0);
    uLongf ulen = (uLongf)len;
    unsigned char *check = malloc(len ? len : 1);
    CU_ASSERT_EQUAL(uncompress(check, &ulen, z->data, (uLong)z->len), Z_OK);
    CU_ASSERT_EQUAL(ulen, len);
    CU_ASSERT(len == 0 || memcmp(check, data, len) == 0);
    free(check);
    CU_ASSERT_EQUAL_FATAL(yti_zlib_inflate(z, len, &back), YT_OK);
    CU_ASSERT_EQUAL(back->len, len);
    CU_ASSERT(len == 0 || memcmp(back->data, data, len) == 0);
    CU_ASSERT_EQUAL(back->data[len], 0); /* packages are NUL-terminated */
    if (zlen)
        *zlen = z->len;
    yti_pkg_unref(z);
    yti_pkg_unref(back);
}

static void test_round_trips(void)
{
    round_trip(NULL, 0, NULL);
    round_trip((const unsigned char *)"hello", 5, NULL);
    size_t n = (size_t)1 << 20, zlen = 0;
    unsigned char *b = malloc(n);
    fill_random(b, n, 42);
    round_trip(b, n, &zlen);
    CU_ASSERT(zlen > n && zlen < n + n / 100); /* incompressible: stored blocks */
    memset(b, 'a', n);
    round_trip(b, n, &zlen);
    CU_ASSERT(zlen < n / 500); /* highly compressible */
    /* Mixed: compressible text with random bits, longer than the single-pass size. */
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)("abcdefgh"[b[i] % 8] + (i % 97 == 0));
    round_trip(b, n, NULL);
    free(b);
}

static void test_bytes_as_python_writes_them(void)
{
    /* zlib.compress(b"hello").hex() and zlib.compress(b"").hex() in Python (zlib 1.2.13). */
    static const unsigned char hello[] = {0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
                                          0x07, 0x00, 0x06, 0x2c, 0x02, 0x15};
    static const unsigned char empty[] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    yti_pkg *z = NULL;
    CU_ASSERT_EQUAL_FATAL(yti_zlib_compress("hello", 5, &z), YT_OK);
    CU_ASSERT_EQUAL(z->len, sizeof hello);
    CU_ASSERT(z->len == sizeof hello && memcmp(z->data, hello, sizeof hello) == 0);
    CU_ASSERT_EQUAL(z->slot, 0);
    yti_pkg_unref(z);
    CU_ASSERT_EQUAL_FATAL(yti_zlib_compress("", 0, &z), YT_OK);
    CU_ASSERT(z->len == sizeof empty && memcmp(z->data, empty, sizeof empty) == 0);
    yti_pkg_unref(z);
    CU_ASSERT_EQUAL(yti_zlib_compress(NULL, 3, &z), YT_EINVAL);
}

static void test_inflate_copies_header_fields(void)
{
    yti_pkg *z = NULL, *out = NULL;
    CU_ASSERT_EQUAL_FATAL(yti_zlib_compress("header", 6, &z), YT_OK);
    z->slot = 11;
    z->source_id = 22;
    z->source_seq = 33;
    z->dest_id = 44;
    z->dest_seq = 55;
    z->recv_seq = 66;
    z->via = 77;
    CU_ASSERT_EQUAL_FATAL(yti_zlib_inflate(z, 100, &out), YT_OK);
    CU_ASSERT_EQUAL(out->slot, 11);
    CU_ASSERT_EQUAL(out->source_id, 22);
    CU_ASSERT_EQUAL(out->source_seq, 33);
    CU_ASSERT_EQUAL(out->dest_id, 44);
    CU_ASSERT_EQUAL(out->dest_seq, 55);
    CU_ASSERT_EQUAL(out->recv_seq, 66);
    CU_ASSERT_EQUAL(out->via, 77);
    CU_ASSERT_EQUAL(atomic_load(&out->refs), 1);
    yti_pkg_unref(out);
    yti_pkg_unref(z);
}

static void test_type_names(void)
{
    CU_ASSERT_TRUE(yti_type_is_zlib("zlib-txt"));
    CU_ASSERT_TRUE(yti_type_is_zlib("zlib-mytype"));
    CU_ASSERT_FALSE(yti_type_is_zlib("zlib-"));
    CU_ASSERT_FALSE(yti_type_is_zlib("zlib"));
    CU_ASSERT_FALSE(yti_type_is_zlib("txt"));
    CU_ASSERT_FALSE(yti_type_is_zlib("ZLIB-txt")); /* type names are case-sensitive here */
    CU_ASSERT_STRING_EQUAL(yti_type_inner("zlib-bin"), "bin");
    CU_ASSERT_STRING_EQUAL(yti_type_inner("bin"), "bin");
    CU_ASSERT_STRING_EQUAL(yti_type_inner("zlib-"), "zlib-");
    CU_ASSERT_STRING_EQUAL(YT_ZLIB(YT_TEXT), "zlib-txt");
    CU_ASSERT_STRING_EQUAL(YT_ZLIB(YT_BINARY), "zlib-bin");
    CU_ASSERT_STRING_EQUAL(YT_ZLIB(YT_OBJECT), "zlib-obj");
}

/* Streams that must be refused. */
static void test_bad_streams_refused(void)
{
    static const char text[] = "some text that compresses, some text that compresses";
    yti_pkg *z = NULL, *out = NULL;
    CU_ASSERT_EQUAL_FATAL(yti_zlib_compress(text, sizeof text - 1, &z), YT_OK);
    /* Every truncation, including to nothing. */
    for (size_t cut = 0; cut < z->len; cut++) {
        yti_pkg *t = pkg_of(z->data, cut);
        out = NULL;
        CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
        CU_ASSERT_PTR_NULL(out);
        yti_pkg_unref(t);
    }
    /* Bytes after the end of the stream. */
    unsigned char buf[256];
    memcpy(buf, z->data, z->len);
    buf[z->len] = 0;
    yti_pkg *t = pkg_of(buf, z->len + 1);
    CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
    yti_pkg_unref(t);
    /* A second stream appended. */
    memcpy(buf + z->len, z->data, z->len);
    t = pkg_of(buf, 2 * z->len);
    CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
    yti_pkg_unref(t);
    /* A corrupted Adler-32, a corrupted header, raw deflate without header, plain text. */
    memcpy(buf, z->data, z->len);
    buf[z->len - 1] ^= 1;
    t = pkg_of(buf, z->len);
    CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
    yti_pkg_unref(t);
    buf[z->len - 1] ^= 1;
    /* FDICT (a preset dictionary, which nobody can supply), with valid check bits. */
    buf[1] = (unsigned char)((buf[1] | 0x20) & ~0x1f);
    buf[1] = (unsigned char)(buf[1] + (31 - ((unsigned)buf[0] << 8 | buf[1]) % 31) % 31);
    CU_ASSERT_EQUAL(((unsigned)buf[0] << 8 | buf[1]) % 31, 0);
    t = pkg_of(buf, z->len);
    CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
    yti_pkg_unref(t);
    t = pkg_of(z->data + 2, z->len - 2);
    CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
    yti_pkg_unref(t);
    t = pkg_of(text, sizeof text - 1);
    CU_ASSERT_EQUAL(yti_zlib_inflate(t, 1 << 20, &out), YT_EDECODE);
    yti_pkg_unref(t);
    /* Random garbage of many lengths never crashes and never decodes to something. */
    for (size_t len = 1; len < 200; len += 7) {
        fill_random(buf, len, len);
        buf[0] = 0x78;
        buf[1] = 0x9c;
        t = pkg_of(buf, len);
        out = NULL;
        int rc = yti_zlib_inflate(t, 1 << 20, &out);
        CU_ASSERT(rc == YT_EDECODE || rc == YT_OK);
        yti_pkg_unref(out);
        yti_pkg_unref(t);
    }
    /* The limit is inclusive. */
    CU_ASSERT_EQUAL(yti_zlib_inflate(z, sizeof text - 1, &out), YT_OK);
    yti_pkg_unref(out);
    CU_ASSERT_EQUAL(yti_zlib_inflate(z, sizeof text - 2, &out), YT_EDECODE);
    CU_ASSERT_EQUAL(yti_zlib_inflate(z, 0, &out), YT_EDECODE);
    yti_pkg_unref(z);
    /* Nothing inflates to nothing, within any limit. */
    CU_ASSERT_EQUAL(yti_zlib_compress("", 0, &z), YT_OK);
    CU_ASSERT_EQUAL(yti_zlib_inflate(z, 0, &out), YT_OK);
    CU_ASSERT_EQUAL(out->len, 0);
    yti_pkg_unref(out);
    yti_pkg_unref(z);
}

/* The process's peak resident size in KiB (VmHWM). */
static long peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void reset_peak(void)
{
    /* Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0). */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("5", f);
    fclose(f);
}

/* A zlib stream of n zeros, made without ever holding n bytes (so that no large block was
 * freed just before the measurements below: some allocators keep freed memory resident). */
static yti_pkg *zlib_of_zeros(size_t n)
{
    static const unsigned char zeros[1 << 16];
    yti_pkg *p = yti_pkg_new(n / 500 + 1024);
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit(&s, Z_DEFAULT_COMPRESSION);
    s.next_out = p->payload;
    s.avail_out = (uInt)p->len;
    int zr = Z_OK;
    for (size_t left = n; zr == Z_OK;) {
        size_t chunk = left < sizeof zeros ? left : sizeof zeros;
        s.next_in = (Bytef *)(uintptr_t)zeros;
        s.avail_in = (uInt)chunk;
        zr = deflate(&s, left == chunk ? Z_FINISH : Z_NO_FLUSH);
        left -= chunk - s.avail_in;
    }
    deflateEnd(&s);
    if (zr != Z_STREAM_END) {
        yti_pkg_unref(p);
        return NULL;
    }
    p->len = s.total_out;
    return p;
}

static void test_bomb_refused_without_allocating_max(void)
{
    /* 48 MiB of zeros compress to about 48 KiB; with a 32 MiB limit the stream must be refused
     * while the memory in use stays far below the limit. (A decoder that grows its buffer
     * until the limit touches all 32 MiB.) */
    size_t big = (size_t)48 << 20, max = (size_t)32 << 20;
    yti_pkg *z = zlib_of_zeros(big), *out = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    CU_ASSERT(z->len < big / 500);
    reset_peak();
    long before = peak_kib();
    CU_ASSERT(before > 0);
    CU_ASSERT_EQUAL(yti_zlib_inflate(z, max, &out), YT_EDECODE);
    CU_ASSERT_PTR_NULL(out);
    long grew = peak_kib() - before;
    CU_ASSERT(grew < 8 * 1024);
    /* Within the limit the output is held once (48 MiB; tools such as valgrind add their own
     * bookkeeping on top). This also shows that the measurement above sees allocations. */
    reset_peak();
    before = peak_kib();
    CU_ASSERT_EQUAL(yti_zlib_inflate(z, big, &out), YT_OK);
    CU_ASSERT_EQUAL_FATAL(out->len, big);
    grew = peak_kib() - before;
    CU_ASSERT(grew >= 40 * 1024 && grew < 72 * 1024);
    CU_ASSERT_EQUAL(out->data[0], 0);
    CU_ASSERT_EQUAL(out->data[big - 1], 0);
    yti_pkg_unref(out);
    yti_pkg_unref(z);
}

/* ------------------------------------------------------------------------------------------ */
/* Channels                                                                                    */

typedef struct pair {
    yt_loop *loop;
    yt_context *a, *b;
    yt_connection *ca, *cb;
} pair;

static void pair_up(pair *p, size_t max_package)
{
    memset(p, 0, sizeof *p);
    yt_loop_new(&p->loop);
    yt_context_options o;
    yt_context_options_init(&o);
    o.loop = p->loop;
    if (max_package)
        o.max_package_size = max_package;
    CU_ASSERT_EQUAL_FATAL(yt_context_new(&o, &p->a), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_context_new(&o, &p->b), YT_OK);
    int port = 0;
    p->ca = bind_any(p->a, &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ca);
    p->cb = connect_port(p->b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->cb);
}

static void pair_down(pair *p)
{
    yt_connection_release(p->ca);
    yt_connection_release(p->cb);
    yt_context_free(p->a);
    yt_context_free(p->b);
    yt_loop_free(p->loop);
}

static void test_zlib_text_between_contexts(void)
{
    pair p;
    pair_up(&p, 0);
    yt_channel *pub, *sub, *plain;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(p.a, "news", YT_ZLIB(YT_TEXT), &pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "news", YT_ZLIB(YT_TEXT), &sub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "news", YT_TEXT, &plain), YT_OK);
    uint64_t s = 0;
    yti_slot_id("news", "zlib-txt", "pub-sub", &s);
    CU_ASSERT_EQUAL(yt_channel_slot_out(pub), s);
    CU_ASSERT_NOT_EQUAL(yt_channel_slot_in(plain), s);
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "h\xc3\xa9llo"), YT_OK);
    /* Text is validated before compression. */
    CU_ASSERT_EQUAL(yt_channel_send(pub, "bad \xff", 5), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_channel_send(pub, "cut \xc3", 5), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_channel_send(pub, "", 0), YT_OK); /* empty: nothing sent */
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "second"), YT_OK);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "h\xc3\xa9llo");
    CU_ASSERT_EQUAL(yt_msg_size(m), 6);
    CU_ASSERT_EQUAL(yt_msg_source(m), yt_context_id(p.a));
    yt_msg_free(m);
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "second");
    yt_msg_free(m);
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 0.2, &m), YT_ETIMEDOUT);
    /* The plain "txt" subscriber of the same base heard none of it. */
    CU_ASSERT_EQUAL(yt_channel_pending(plain), 0);
    CU_ASSERT_EQUAL(yt_channel_discarded(sub), 0);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_channel_free(plain);
    pair_down(&p);
}

static void test_zlib_obj_values(void)
{
    pair p;
    pair_up(&p, 0);
    yt_channel *pub, *sub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(p.a, "vals", YT_ZLIB(YT_OBJECT), &pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "vals", YT_ZLIB(YT_OBJECT), &sub), YT_OK);
    yt_value *v = yt_value_dict();
    yt_value_dict_set_str(v, "name", yt_value_string("pyzo"));
    yt_value *l = yt_value_list();
    for (int i = 0; i < 100; i++)
        yt_value_append(l, yt_value_int(i));
    yt_value_dict_set_str(v, "list", l);
    CU_ASSERT_EQUAL(yt_channel_send_value(pub, v), YT_OK);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    yt_value *got = NULL;
    CU_ASSERT_EQUAL(yt_msg_value(m, &got), YT_OK);
    CU_ASSERT_TRUE(yt_value_equal(v, got));
    yt_value_free(got);
    yt_value_free(v);
    yt_msg_free(m);
    yt_channel_free(pub);
    yt_channel_free(sub);
    pair_down(&p);
}

static void test_user_types_meet_only_their_kind(void)
{
    pair p;
    pair_up(&p, 0);
    yt_channel *mine, *bin, *zbin, *mysub, *binsub, *zsub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(p.a, "base", "mytype", &mine), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(p.a, "base", YT_BINARY, &bin), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(p.a, "base", YT_ZLIB("mytype"), &zbin), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "base", "mytype", &mysub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "base", YT_BINARY, &binsub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "base", YT_ZLIB("mytype"), &zsub), YT_OK);
    /* User-defined types carry bytes: no UTF-8 check. */
    CU_ASSERT_EQUAL(yt_channel_send(mine, "m\xff", 2), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send(bin, "b\xff", 2), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send(zbin, "z\xff", 2), YT_OK);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(mysub, 3.0, &m), YT_OK);
    CU_ASSERT(yt_msg_size(m) == 2 && memcmp(yt_msg_data(m), "m\xff", 2) == 0);
    yt_msg_free(m);
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(binsub, 3.0, &m), YT_OK);
    CU_ASSERT(yt_msg_size(m) == 2 && memcmp(yt_msg_data(m), "b\xff", 2) == 0);
    yt_msg_free(m);
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(zsub, 3.0, &m), YT_OK);
    CU_ASSERT(yt_msg_size(m) == 2 && memcmp(yt_msg_data(m), "z\xff", 2) == 0);
    yt_msg_free(m);
    /* Nothing crossed over. */
    usleep(100000);
    CU_ASSERT_EQUAL(yt_channel_pending(mysub), 0);
    CU_ASSERT_EQUAL(yt_channel_pending(binsub), 0);
    CU_ASSERT_EQUAL(yt_channel_pending(zsub), 0);
    /* Type names are part of the slot, so one context may hold them all at once. */
    CU_ASSERT_NOT_EQUAL(yt_channel_slot_out(mine), yt_channel_slot_out(bin));
    CU_ASSERT_NOT_EQUAL(yt_channel_slot_out(mine), yt_channel_slot_out(zbin));
    yt_channel_free(mine);
    yt_channel_free(bin);
    yt_channel_free(zbin);
    yt_channel_free(mysub);
    yt_channel_free(binsub);
    yt_channel_free(zsub);
    pair_down(&p);
}

typedef struct big_send {
    yt_channel *pub;
    const unsigned char *data;
    size_t len;
    int rc;
} big_send;

static void *send_big(void *arg)
{
    big_send *bs = arg;
    bs->rc = yt_channel_send(bs->pub, bs->data, bs->len);
    return NULL;
}

static void test_50mb_zlib_bin_between_contexts(void)
{
    pair p;
    pair_up(&p, 0);
    yt_channel *pub, *sub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(p.a, "big", YT_ZLIB(YT_BINARY), &pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(p.b, "big", YT_ZLIB(YT_BINARY), &sub), YT_OK);
    /* Three quarters random (stored blocks: ~38 MB on the wire, one huge package), one
     * quarter a slowly changing 16 KiB pattern (long matches). Random and repetitive data
     * are also what deflate compresses fastest, which keeps the test quick. */
    size_t n = (size_t)50 << 20;
    unsigned char *data = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    fill_random(data, n, 7);
    for (size_t i = n / 4 * 3; i < n; i++)
        data[i] = (unsigned char)(data[i - 16384] ^ (i % 1000 == 0));
    double t0 = mono_now();
    big_send bs = {pub, data, n, -99};
    pthread_t th;
    pthread_create(&th, NULL, send_big, &bs);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 60.0, &m), YT_OK);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(bs.rc, YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_msg_size(m), n);
    CU_ASSERT(memcmp(yt_msg_data(m), data, n) == 0);
    CU_ASSERT_EQUAL(yt_channel_discarded(sub), 0);
    yt_msg_free(m);
    /* And the channel goes on with small ones. */
    CU_ASSERT_EQUAL(yt_channel_send(pub, "after", 5), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 5.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "after");
    yt_msg_free(m);
    printf("\n    50 MB zlib-bin round trip: %.2f s ", mono_now() - t0);
    free(data);
    yt_channel_free(pub);
    yt_channel_free(sub);
    pair_down(&p);
}

/* A raw socket peer speaking to a context bound at an ephemeral port. */
static void raw_send(int fd, uint64_t slot, uint64_t seq, const void *data, size_t len)
{
    yti_header h = {YTI_CONTROL, slot, 900, seq, 0, 0, len};
    unsigned char b[YTI_HEADER_SIZE];
    yti_header_encode(&h, b);
    CU_ASSERT_EQUAL(send(fd, b, sizeof b, MSG_NOSIGNAL), (ssize_t)sizeof b);
    size_t off = 0;
    while (off < len) {
        ssize_t r = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    CU_ASSERT_EQUAL(off, len);
}

static void test_exact_bytes_on_the_wire(void)
{
    wire w;
    wire_up(&w, NULL, UINT64_C(0x1234567890abcdef));
    yt_channel *pub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(w.ctx, "chat", YT_ZLIB(YT_TEXT), &pub), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "hello zlib state"), YT_OK);
    /* zlib.compress(b"hello zlib state") in Python. */
    static const unsigned char want[] = {0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57,
                                         0xa8, 0xca, 0xc9, 0x4c, 0x52, 0x28, 0x2e, 0x49,
                                         0x2c, 0x49, 0x05, 0x00, 0x34, 0x38, 0x06, 0x27};
    yti_header h;
    unsigned char data[128];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 3.0));
    uint64_t slot = 0;
    yti_slot_hash("chat.zlib-txt.pub-sub", strlen("chat.zlib-txt.pub-sub"), &slot);
    CU_ASSERT_EQUAL(h.slot, slot);
    CU_ASSERT_EQUAL(h.source_id, yt_context_id(w.ctx));
    CU_ASSERT_EQUAL(h.dest_id, 0);
    CU_ASSERT_EQUAL(h.len, sizeof want);
    CU_ASSERT(h.len == sizeof want && memcmp(data, want, sizeof want) == 0);
    yt_channel_free(pub);
    wire_down(&w);
}

static void test_bad_payloads_from_the_network(void)
{
    /* A 64 KiB package limit: a payload that inflates beyond it is refused like garbage. */
    size_t limit = (size_t)64 << 10;
    wire w;
    yt_context_options o;
    yt_context_options_init(&o);
    o.max_package_size = limit;
    wire_up(&w, &o, UINT64_C(0x1234567890abcdef));
    yt_channel *sub;
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(w.ctx, "feed", YT_ZLIB(YT_TEXT), &sub), YT_OK);
    uint64_t slot = yt_channel_slot_in(sub);
    yti_pkg *good = NULL, *over = NULL, *edge = NULL;
    yti_zlib_compress("fine", 4, &good);
    char *a = malloc(limit + 1);
    memset(a, 'a', limit + 1);
    yti_zlib_compress(a, limit + 1, &over);
    yti_zlib_compress(a, limit, &edge);
    free(a);
    unsigned char junk[64];
    memcpy(junk, good->data, good->len);
    junk[good->len] = 'x';
    uint64_t seq = 1;
    raw_send(w.fd, slot, seq++, "plain text, not zlib", 20);        /* garbage */
    raw_send(w.fd, slot, seq++, good->data, good->len - 3);          /* truncated */
    raw_send(w.fd, slot, seq++, junk, good->len + 1);                /* trailing garbage */
    raw_send(w.fd, slot, seq++, over->data, over->len);              /* too big inflated */
    raw_send(w.fd, slot, seq++, good->data, good->len);              /* fine */
    raw_send(w.fd, slot, seq++, edge->data, edge->len);              /* exactly the limit */
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "fine");
    yt_msg_free(m);
    CU_ASSERT_EQUAL(yt_channel_discarded(sub), 4);
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_EQUAL(yt_msg_size(m), limit);
    yt_msg_free(m);
    /* recv_all drops and counts the same way. */
    raw_send(w.fd, slot, seq++, "garbage", 7);
    raw_send(w.fd, slot, seq++, good->data, good->len);
    double end = mono_now() + 3;
    while (yt_channel_pending(sub) < 2 && mono_now() < end)
        usleep(2000);
    yt_msg **all = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(yt_channel_recv_all(sub, &all, &n), YT_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(all[0]), "fine");
    yt_msg_free(all[0]);
    yt_free(all);
    CU_ASSERT_EQUAL(yt_channel_discarded(sub), 5);
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 0, &m), YT_EAGAIN);
    /* The connection stayed up through all of it. */
    CU_ASSERT_TRUE(yt_connection_is_connected(w.c));
    yti_pkg_unref(good);
    yti_pkg_unref(over);
    yti_pkg_unref(edge);
    yt_channel_free(sub);
    wire_down(&w);
}

void yt_suite_msgtypes(void)
{
    static const yt_test_def t[] = {
        {"round trips", test_round_trips},
        {"bytes as Python's zlib.compress writes them", test_bytes_as_python_writes_them},
        {"inflate copies the header fields", test_inflate_copies_header_fields},
        {"type names", test_type_names},
        {"bad streams refused", test_bad_streams_refused},
        {"bomb refused without allocating the maximum", test_bomb_refused_without_allocating_max},
        {"zlib-txt between contexts, text validated", test_zlib_text_between_contexts},
        {"zlib-obj values", test_zlib_obj_values},
        {"user-defined types meet only their own kind", test_user_types_meet_only_their_kind},
        {"exact bytes on the wire", test_exact_bytes_on_the_wire},
        {"bad payloads from the network dropped and counted", test_bad_payloads_from_the_network},
        {"50 MB zlib-bin message between contexts", test_50mb_zlib_bin_between_contexts},
        {NULL, NULL}};
    yt_add_suite("msgtypes", t);
}

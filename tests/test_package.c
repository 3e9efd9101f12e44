/*
 * Suite "package": the 56-byte header against the reference's vectors, the two link packages,
 * and the reference-counted package (allocation layout, fan-out, concurrent ref/unref).
 */
#include "package.h"
#include "platform.h"
#include "queue.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Data lines in tests/vectors/header.txt; a reader bug must not skip any silently. */
#define HEADER_VECTOR_LINES 11

static uint64_t parse_u64(const char *s)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    CU_ASSERT(end != s && *end == '\0');
    return (uint64_t)v;
}

/* Every line: encoding the fields gives the reference's header bytes, decoding them gives the
 * fields back, and the zero-length lines are exactly the heartbeat / close constants. */
static void test_header_vectors(void)
{
    yt_vec_file *f = yt_vec_open("header.txt");
    if (!f)
        return;
    int lines = 0, heartbeats = 0, closes = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        lines++;
        CU_ASSERT_EQUAL_FATAL(l->nfields, 7);
        size_t dlen = 0, hlen = 0;
        unsigned char *data = yt_hex_decode(l->field[0], &dlen);
        unsigned char *hdr = yt_hex_decode(l->field[6], &hlen);
        CU_ASSERT_PTR_NOT_NULL_FATAL(data);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hdr);
        CU_ASSERT_EQUAL_FATAL(hlen, YTI_HEADER_SIZE);
        uint64_t slot = parse_u64(l->field[1]), sid = parse_u64(l->field[2]),
                 sseq = parse_u64(l->field[3]), did = parse_u64(l->field[4]),
                 dseq = parse_u64(l->field[5]);

        /* Encode from a package built as a sender would. */
        yti_pkg *p = yti_pkg_from(data, dlen, slot, did, dseq);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        p->source_id = sid;
        p->source_seq = sseq;
        unsigned char out[YTI_HEADER_SIZE];
        memset(out, 0xAA, sizeof out);
        yti_header_encode_pkg(p, out);
        CU_ASSERT_EQUAL(memcmp(out, hdr, YTI_HEADER_SIZE), 0);
        CU_ASSERT_EQUAL(memcmp(p->data, data, dlen), 0);

        /* Encode from a header struct. */
        yti_header h = {YTI_CONTROL, slot, sid, sseq, did, dseq, (uint64_t)dlen};
        memset(out, 0x55, sizeof out);
        yti_header_encode(&h, out);
        CU_ASSERT_EQUAL(memcmp(out, hdr, YTI_HEADER_SIZE), 0);

        /* Decode. */
        yti_header d;
        memset(&d, 0xEE, sizeof d);
        CU_ASSERT_EQUAL(yti_header_decode(hdr, &d), YT_OK);
        CU_ASSERT_EQUAL(d.control, YTI_CONTROL);
        CU_ASSERT_EQUAL(d.slot, slot);
        CU_ASSERT_EQUAL(d.source_id, sid);
        CU_ASSERT_EQUAL(d.source_seq, sseq);
        CU_ASSERT_EQUAL(d.dest_id, did);
        CU_ASSERT_EQUAL(d.dest_seq, dseq);
        CU_ASSERT_EQUAL(d.len, (uint64_t)dlen);

        if (dlen == 0) {
            /* Spec 2.2: the only zero-length packages are the link signals, told apart by
             * source_seq. */
            CU_ASSERT_EQUAL(slot, YTI_SLOT_DUMMY);
            if (sseq == 0) {
                heartbeats++;
                CU_ASSERT_EQUAL(memcmp(hdr, yti_heartbeat_bytes, YTI_HEADER_SIZE), 0);
            } else {
                closes++;
                CU_ASSERT_EQUAL(sseq, 1);
                CU_ASSERT_EQUAL(memcmp(hdr, yti_close_bytes, YTI_HEADER_SIZE), 0);
            }
        }
        yti_pkg_unref(p);
        free(data);
        free(hdr);
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, HEADER_VECTOR_LINES);
    CU_ASSERT_EQUAL(heartbeats, 1);
    CU_ASSERT_EQUAL(closes, 1);
}

/* The control word is the ASCII "YOTON   " and the constants of the header are what spec 2 and
 * 8.3 say. */
static void test_constants(void)
{
    CU_ASSERT_EQUAL(YTI_HEADER_SIZE, 56);
    unsigned char b[8];
    yti_le64_write(b, YTI_CONTROL);
    CU_ASSERT_EQUAL(memcmp(b, "YOTON   ", 8), 0);
    CU_ASSERT_EQUAL(yti_le64_read((const unsigned char *)"YOTON   "), YTI_CONTROL);
    CU_ASSERT_EQUAL(YTI_CONTROL, UINT64_C(2314885729178898265));
    CU_ASSERT_EQUAL(YTI_SLOT_DUMMY, 1u);
    CU_ASSERT_EQUAL(YTI_SLOT_CONTEXT, 2u);
    CU_ASSERT_EQUAL(YTI_REF, UINT64_C(1) << 63);
    /* Heartbeat and close differ only in source_seq (offset 24). */
    CU_ASSERT_EQUAL(memcmp(yti_heartbeat_bytes, yti_close_bytes, 24), 0);
    CU_ASSERT_EQUAL(yti_le64_read(yti_heartbeat_bytes + 24), 0);
    CU_ASSERT_EQUAL(yti_le64_read(yti_close_bytes + 24), 1);
    CU_ASSERT_EQUAL(memcmp(yti_heartbeat_bytes + 32, yti_close_bytes + 32, 24), 0);
}

/* A wrong control word is reported (the connection then closes: "Lost track of the stream."),
 * while every field is still filled in for diagnostics. */
static void test_bad_control(void)
{
    static const size_t flips[] = {0, 3, 7};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        unsigned char b[YTI_HEADER_SIZE];
        memcpy(b, yti_close_bytes, sizeof b);
        b[flips[i]] ^= 0x01;
        yti_header h;
        memset(&h, 0, sizeof h);
        CU_ASSERT_EQUAL(yti_header_decode(b, &h), YT_EPROTO);
        CU_ASSERT_NOT_EQUAL(h.control, YTI_CONTROL);
        CU_ASSERT_EQUAL(h.slot, 1);
        CU_ASSERT_EQUAL(h.source_seq, 1);
        CU_ASSERT_EQUAL(h.len, 0);
    }
    unsigned char zero[YTI_HEADER_SIZE] = {0};
    yti_header h;
    CU_ASSERT_EQUAL(yti_header_decode(zero, &h), YT_EPROTO);
    CU_ASSERT_EQUAL(h.control, 0);
    /* A huge declared length is not this layer's business: it decodes fine. */
    unsigned char big[YTI_HEADER_SIZE];
    memcpy(big, yti_heartbeat_bytes, sizeof big);
    yti_le64_write(big + 48, UINT64_MAX);
    CU_ASSERT_EQUAL(yti_header_decode(big, &h), YT_OK);
    CU_ASSERT_EQUAL(h.len, UINT64_MAX);
}

/* One allocation: fields zeroed, data points into it, a NUL follows the payload. */
static void test_new_layout(void)
{
    static const size_t lens[] = {0, 1, 5, 300, 4096};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        yti_pkg *p = yti_pkg_new(lens[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(atomic_load(&p->refs), 1u);
        CU_ASSERT_EQUAL(p->len, lens[i]);
        CU_ASSERT_PTR_EQUAL(p->data, p->payload);
        CU_ASSERT_EQUAL(p->data[lens[i]], 0);
        CU_ASSERT_EQUAL(p->slot, 0);
        CU_ASSERT_EQUAL(p->source_id, 0);
        CU_ASSERT_EQUAL(p->source_seq, 0);
        CU_ASSERT_EQUAL(p->dest_id, 0);
        CU_ASSERT_EQUAL(p->dest_seq, 0);
        CU_ASSERT_EQUAL(p->recv_seq, 0);
        /* The whole payload is writable (ASan/valgrind check the bound). */
        memset(p->data, 'x', lens[i]);
        CU_ASSERT_EQUAL(p->data[lens[i]], 0);
        yti_pkg_unref(p);
    }

    yti_pkg *p = yti_pkg_from("hello", 5, 17460451874447u, 7, YTI_REF + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL((const char *)p->data, "hello");
    CU_ASSERT_EQUAL(p->len, 5);
    CU_ASSERT_EQUAL(p->slot, 17460451874447u);
    CU_ASSERT_EQUAL(p->dest_id, 7);
    CU_ASSERT_EQUAL(p->dest_seq, YTI_REF + 1);
    CU_ASSERT_EQUAL(p->source_id, 0);
    CU_ASSERT_EQUAL(p->source_seq, 0);
    yti_pkg_unref(p);

    /* Zero bytes from a NULL pointer is fine. */
    p = yti_pkg_from(NULL, 0, 1, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->len, 0);
    CU_ASSERT_EQUAL(p->data[0], 0);
    yti_pkg_unref(p);
}

/* Large packages freed are kept (at most 4, 32..256 KiB of payload) and taken again by a
 * package of the same size or up to a quarter smaller, which then looks like a new one. */
static void test_spares(void)
{
    const size_t big = 65536;
    size_t keep = yti_pkg_spares_enabled() ? 4 : 0; /* none under AddressSanitizer */
    yti_pkg_spares_clear();
    CU_ASSERT_EQUAL(yti_pkg_spares(), 0);
    yti_pkg *v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = yti_pkg_new(big);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v[i]);
        memset(v[i]->data, 'x', big);
        v[i]->slot = v[i]->source_id = v[i]->source_seq = v[i]->dest_id = 9;
        v[i]->dest_seq = v[i]->recv_seq = v[i]->via = 9;
        v[i]->writable = true;
    }
    for (int i = 0; i < 6; i++)
        yti_pkg_unref(v[i]);
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep); /* bounded */

    yti_pkg *p = yti_pkg_new(60000); /* a quarter smaller at most: takes one */
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep ? keep - 1 : 0);
    CU_ASSERT_EQUAL(atomic_load(&p->refs), 1u);
    CU_ASSERT_EQUAL(p->len, 60000);
    CU_ASSERT_PTR_EQUAL(p->data, p->payload);
    CU_ASSERT_EQUAL(p->data[60000], 0);
    CU_ASSERT(p->slot == 0 && p->source_id == 0 && p->source_seq == 0 && p->dest_id == 0 &&
              p->dest_seq == 0 && p->recv_seq == 0 && p->via == 0 && !p->writable);
    yti_pkg *q = yti_pkg_new(40000); /* much smaller: a new allocation */
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep ? keep - 1 : 0);
    yti_pkg *r = yti_pkg_new(300000); /* too large to be kept */
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    yti_pkg *t = yti_pkg_new(4096); /* too small to be kept */
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    yti_pkg_unref(r);
    yti_pkg_unref(t);
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep ? keep - 1 : 0);
    yti_pkg_unref(p);
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep); /* kept again */
    yti_pkg_unref(q); /* no room: freed */
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep);

    /* A resized package counts by its new size. */
    p = yti_pkg_new(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    yti_pkg *s = yti_pkg_resize(p, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->len, 100);
    CU_ASSERT_EQUAL(s->data[100], 0);
    yti_pkg_unref(s);
    CU_ASSERT_EQUAL(yti_pkg_spares(), keep ? keep - 1 : 0);
    yti_pkg_spares_clear();
    CU_ASSERT_EQUAL(yti_pkg_spares(), 0);
}

/* What a pooled package would be made of: the struct, the room, the NUL. */
static size_t pooled_bytes(size_t cap)
{
    return sizeof(yti_pkg) + cap + 1;
}

/* Small packages get the room of their size class (16, then four steps per doubling up to
 * 4096), are kept when freed, bounded, and taken again by a new package of that class, which
 * then looks new. */
static void test_pool(void)
{
    bool on = yti_pkg_pool_enabled(); /* off under AddressSanitizer */
    yti_pkg_pool_clear();
    static const size_t lens[][2] = {{0, 16},      {1, 16},      {16, 16},     {17, 20},
                                     {21, 24},     {33, 40},     {100, 112},   {1024, 1024},
                                     {1025, 1280}, {3000, 3072}, {4096, 4096}, {4097, 4097},
                                     {65536, 65536}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t want = on ? lens[i][1] : lens[i][0];
        CU_ASSERT_EQUAL(yti_pkg_pool_cap(lens[i][0]), want);
        yti_pkg *p = yti_pkg_new(lens[i][0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(p->len, lens[i][0]);
        CU_ASSERT_EQUAL(p->cap, want);
        memset(p->data, 'r', p->cap); /* the whole room is there (valgrind checks the bound) */
        yti_pkg_unref(p);
    }
    /* Every length: room enough, at most a quarter more (or 16), and a room is its own class. */
    for (size_t len = 0; on && len <= 5000; len++) {
        size_t cap = yti_pkg_pool_cap(len);
        CU_ASSERT(cap >= len && (cap <= 16 || cap * 4 <= len * 5 || cap == len));
        CU_ASSERT_EQUAL(yti_pkg_pool_cap(cap), cap);
        if (cap < len || (cap > 16 && cap * 4 > len * 5 && cap != len))
            printf("\n    room %zu for %zu bytes ", cap, len);
    }
    yti_pkg_pool_clear();

    /* Freed, kept, taken again by the next package of that class, looking new. */
    size_t shared = 9, mine = 9;
    CU_ASSERT_EQUAL(yti_pkg_pooled(112, &shared, &mine), 0);
    CU_ASSERT(shared == 0 && mine == 0);
    yti_pkg *p = yti_pkg_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(p->data, 'x', 100);
    p->slot = p->source_id = p->source_seq = p->dest_id = p->dest_seq = p->recv_seq = 9;
    p->via = 9;
    p->writable = true;
    yti_pkg *was = p;
    yti_pkg_unref(p);
    /* Freed alone: collected by this thread, not yet shared. */
    CU_ASSERT_EQUAL(yti_pkg_pooled(112, &shared, &mine), on ? 1 : 0);
    CU_ASSERT_EQUAL(shared, 0);
    CU_ASSERT_EQUAL(mine, on ? 1 : 0);
    p = yti_pkg_new(98); /* same class (112) */
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    if (on)
        CU_ASSERT_PTR_EQUAL(p, was);
    CU_ASSERT_EQUAL(yti_pkg_pooled(112, NULL, NULL), 0);
    CU_ASSERT_EQUAL(atomic_load(&p->refs), 1u);
    CU_ASSERT_EQUAL(p->len, 98);
    CU_ASSERT_PTR_EQUAL(p->data, p->payload);
    CU_ASSERT_EQUAL(p->data[98], 0);
    CU_ASSERT(p->slot == 0 && p->source_id == 0 && p->source_seq == 0 && p->dest_id == 0 &&
              p->dest_seq == 0 && p->recv_seq == 0 && p->via == 0 && !p->writable);
    /* A resize leaves the classes (its room is its new length) unless it lands on one. */
    yti_pkg *q = yti_pkg_resize(p, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(q->cap, 200);
    yti_pkg_unref(q);
    CU_ASSERT_EQUAL(yti_pkg_pooled(112, NULL, NULL) + yti_pkg_pooled(200, NULL, NULL), 0);
    q = yti_pkg_resize(yti_pkg_new(10), 256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_pkg_unref(q);
    CU_ASSERT_EQUAL(yti_pkg_pooled(256, NULL, NULL), on ? 1 : 0);

    /* Bounded: about YTI_POOL_BYTES of packages per class. */
    enum { MANY = 8000 };
    yti_pkg **v = malloc(MANY * sizeof *v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    for (int i = 0; i < MANY; i++) {
        v[i] = yti_pkg_new(16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v[i]);
    }
    for (int i = 0; i < MANY; i++)
        yti_pkg_unref(v[i]);
    /* Shared: about YTI_POOL_BYTES; this thread's: fewer than a magazine. */
    size_t kept = yti_pkg_pooled(16, &shared, &mine);
    CU_ASSERT(on ? kept >= 64 : kept == 0);
    CU_ASSERT(shared * pooled_bytes(16) <= YTI_POOL_BYTES);
    CU_ASSERT(mine < YTI_POOL_MAG);
    CU_ASSERT(!on || kept < MANY);
    yti_pkg_pool_clear();
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, NULL, NULL), 0);

    /* Packages freed one at a time go to the shared list once a magazine is full; taking
     * takes this thread's own first, then the shared list whole. */
    for (int i = 0; i < YTI_POOL_MAG + 1; i++) {
        v[i] = yti_pkg_new(16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v[i]);
    }
    for (int i = 0; i < YTI_POOL_MAG + 1; i++)
        yti_pkg_unref(v[i]);
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, &shared, &mine), on ? YTI_POOL_MAG + 1 : 0);
    CU_ASSERT_EQUAL(shared, on ? YTI_POOL_MAG : 0);
    CU_ASSERT_EQUAL(mine, on ? 1 : 0);
    for (int i = 0; i < YTI_POOL_MAG + 1; i++) {
        v[i] = yti_pkg_new(16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v[i]);
        memset(v[i]->data, i, 16);
    }
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, NULL, NULL), 0); /* every one taken again */
    for (int i = 0; on && i < YTI_POOL_MAG + 1; i++) /* and each once */
        for (int j = 0; j < i; j++)
            if (v[i] == v[j])
                CU_FAIL("a pooled package was handed out twice");
    for (int i = 0; i < YTI_POOL_MAG + 1; i++)
        CU_ASSERT_EQUAL(v[i]->data[15], (unsigned char)i);
    yti_pkg_unref_many(v, YTI_POOL_MAG + 1); /* a batch: shared at once, in two magazines */
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, &shared, &mine), on ? YTI_POOL_MAG + 1 : 0);
    CU_ASSERT_EQUAL(mine, 0);
    yti_pkg_pool_clear();
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, NULL, NULL), 0);
    free(v);
}

/* yti_pkg_unref_many: every reference dropped once, NULL skipped, shared packages left alone,
 * the freed ones pooled by class (or freed: large ones, a full class). */
static void test_unref_many(void)
{
    bool on = yti_pkg_pool_enabled();
    yti_pkg_pool_clear();
    yti_pkg *v[8] = {yti_pkg_new(16), yti_pkg_new(20), NULL,
                     yti_pkg_new(30), yti_pkg_new(16), yti_pkg_new(100000),
                     yti_pkg_new(3000), yti_pkg_from("shared", 6, 0, 0, 0)};
    for (int i = 0; i < 8; i++)
        CU_ASSERT(i == 2 || v[i] != NULL);
    yti_pkg *keep = yti_pkg_ref(v[7]);
    yti_pkg_unref_many(v, 8);
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, NULL, NULL), on ? 2 : 0); /* "shared" still held */
    CU_ASSERT_EQUAL(yti_pkg_pooled(20, NULL, NULL), on ? 1 : 0);
    CU_ASSERT_EQUAL(yti_pkg_pooled(32, NULL, NULL), on ? 1 : 0);
    CU_ASSERT_EQUAL(yti_pkg_pooled(3072, NULL, NULL), on ? 1 : 0);
    CU_ASSERT_EQUAL(atomic_load(&keep->refs), 1u);
    CU_ASSERT_STRING_EQUAL((const char *)keep->data, "shared");
    yti_pkg_unref(keep);
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, NULL, NULL), on ? 3 : 0); /* now it went too */
    yti_pkg_unref_many(NULL, 0);
    yti_pkg_pool_clear();

    /* A batch larger than the room left: the list keeps what fits (about YTI_POOL_BYTES). */
    enum { BATCH = 200 };
    yti_pkg *b[BATCH];
    for (int i = 0; i < BATCH; i++) {
        b[i] = yti_pkg_new(4000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b[i]);
    }
    yti_pkg_unref_many(b, BATCH);
    size_t kept = yti_pkg_pooled(4096, NULL, NULL);
    CU_ASSERT(on ? kept >= 16 : kept == 0);
    CU_ASSERT(kept * pooled_bytes(4096) <= YTI_POOL_BYTES);
    CU_ASSERT(!on || kept < BATCH);
    yti_pkg_pool_clear();
}

/* The pool across threads: producers make packages (with a pattern) that consumers check and
 * free, one by one and in batches, so every package is made on one thread and freed on
 * another, and taken again from the pool (TSan checks the hand-over). Then a thread ends with
 * packages on its own list, which its exit frees (a leak would show under valgrind). */
#define POOL_THREADS 2
#define POOL_ROUNDS 50000

typedef struct pool_job {
    yti_queue *q;
    int id;
    int bad;
    long got;
} pool_job;

static void *pool_producer(void *arg)
{
    pool_job *job = arg;
    for (int i = 0; i < POOL_ROUNDS; i++) {
        size_t len = 1 + (size_t)(i * 7 + job->id) % 1500;
        yti_pkg *p = yti_pkg_new(len);
        if (!p) {
            job->bad++;
            continue;
        }
        memset(p->data, (unsigned char)(i + job->id), len);
        p->source_seq = (uint64_t)i;
        p->source_id = (uint64_t)job->id;
        while (yti_queue_len_hint(job->q) >= 900) /* the queue must not discard */
            yti_sleep(0.0001);
        if (yti_queue_push(job->q, p) != YT_OK)
            job->bad++;
    }
    return NULL;
}

static void *pool_consumer(void *arg)
{
    pool_job *job = arg;
    yti_pkg *v[64];
    size_t n = 0;
    while (yti_queue_pop_many(job->q, yti_deadline(5.0), v, 64, &n) == YT_OK) {
        for (size_t k = 0; k < n; k++) {
            yti_pkg *p = v[k];
            int i = (int)p->source_seq, id = (int)p->source_id;
            size_t len = 1 + (size_t)(i * 7 + id) % 1500;
            bool ok = p->len == len && p->cap >= len && p->data[len] == 0;
            for (size_t b = 0; ok && b < len; b++)
                ok = p->data[b] == (unsigned char)(i + id);
            job->bad += !ok;
        }
        job->got += (long)n;
        if (job->got & 1)
            yti_pkg_unref_many(v, n);
        else
            for (size_t k = 0; k < n; k++)
                yti_pkg_unref(v[k]);
    }
    return NULL;
}

/* Leaves three packages with this thread (and magazines); *mine: how many it held before
 * freeing the last one. */
static void *pool_leaver(void *arg)
{
    size_t *mine = arg;
    yti_pkg_pool_clear(); /* nothing shared or of this thread's before */
    yti_pkg *a = yti_pkg_new(16), *b = yti_pkg_new(16), *c = yti_pkg_new(16);
    yti_pkg_unref(a);
    yti_pkg_unref(b);
    yti_pkg_unref(c);
    a = yti_pkg_new(16); /* takes one of the three this thread collected; two stay */
    yti_pkg_pooled(16, NULL, mine);
    yti_pkg_unref(a);
    return NULL;
}

static void test_pool_threads(void)
{
    yti_pkg_pool_clear();
    yti_queue *q = yti_queue_new(1000, YT_DISCARD_NEW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_thread t[2 * POOL_THREADS];
    pool_job jobs[2 * POOL_THREADS];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 2 * POOL_THREADS; i++) {
        jobs[i] = (pool_job){q, i, 0, 0};
        CU_ASSERT_EQUAL(yti_thread_start(&t[i], i < POOL_THREADS ? pool_producer : pool_consumer,
                                         &jobs[i], "yt-pool", 0),
                        YT_OK);
    }
    for (int i = 0; i < POOL_THREADS; i++)
        yti_thread_join(&t[i]);
    uint64_t until = yti_deadline(30.0); /* consumers empty the queue, then it closes */
    while (yti_queue_len_hint(q) > 0 && yti_now() < until)
        yti_sleep(0.001);
    yti_queue_close(q);
    long got = 0;
    for (int i = POOL_THREADS; i < 2 * POOL_THREADS; i++) {
        yti_thread_join(&t[i]);
        got += jobs[i].got;
    }
    for (int i = 0; i < 2 * POOL_THREADS; i++)
        CU_ASSERT_EQUAL(jobs[i].bad, 0);
    CU_ASSERT_EQUAL(got, (long)POOL_THREADS * POOL_ROUNDS);
    yti_queue_free(q);

    size_t mine = 9;
    yti_thread leaver;
    memset(&leaver, 0, sizeof leaver);
    CU_ASSERT_EQUAL_FATAL(yti_thread_start(&leaver, pool_leaver, &mine, "yt-pool", 0), YT_OK);
    yti_thread_join(&leaver);
    CU_ASSERT_EQUAL(mine, yti_pkg_pool_enabled() ? 2 : 0);
    /* Its exit freed what it held (valgrind would see a leak otherwise); nothing was shared. */
    CU_ASSERT_EQUAL(yti_pkg_pooled(16, NULL, NULL), 0);
    yti_pkg_pool_clear();
}

/* Lengths whose allocation size would wrap around size_t are refused instead of turning into a
 * tiny allocation. (Lengths just below the limit would reach malloc and are not tried: ASan
 * aborts on such requests by default.) */
static void test_huge_len(void)
{
    CU_ASSERT_PTR_NULL(yti_pkg_new(SIZE_MAX));
    CU_ASSERT_PTR_NULL(yti_pkg_new(SIZE_MAX - sizeof(yti_pkg)));
    CU_ASSERT_PTR_NULL(yti_pkg_new(SIZE_MAX - sizeof(yti_pkg) + 1));
    CU_ASSERT_PTR_NULL(yti_pkg_from("x", SIZE_MAX, 1, 0, 0));
}

/* Fan-out: three more references, four releases; the last frees (a leak or a double free shows
 * under ASan/valgrind). */
static void test_refcount(void)
{
    yti_pkg *p = yti_pkg_from("abc", 3, 5, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_EQUAL(yti_pkg_ref(p), p);
    CU_ASSERT_PTR_EQUAL(yti_pkg_ref(p), p);
    CU_ASSERT_PTR_EQUAL(yti_pkg_ref(p), p);
    CU_ASSERT_EQUAL(atomic_load(&p->refs), 4u);
    yti_pkg_unref(p);
    yti_pkg_unref(p);
    yti_pkg_unref(p);
    CU_ASSERT_EQUAL(atomic_load(&p->refs), 1u);
    CU_ASSERT_STRING_EQUAL((const char *)p->data, "abc");
    yti_pkg_unref(p);
    /* NULL is accepted. */
    yti_pkg_unref(NULL);
    CU_ASSERT_PTR_NULL(yti_pkg_ref(NULL));
}

#define RC_THREADS 4
#define RC_ROUNDS 20000

typedef struct ref_job {
    yti_pkg *p;
    int bad; /* payload reads that did not see the payload */
} ref_job;

static void *ref_worker(void *arg)
{
    ref_job *job = arg;
    for (int i = 0; i < RC_ROUNDS; i++) {
        yti_pkg_ref(job->p);
        yti_pkg_ref(job->p);
        /* Read the payload while holding a reference (TSan checks it against the free). */
        if (job->p->data[0] != 'z')
            job->bad++;
        yti_pkg_unref(job->p);
        yti_pkg_unref(job->p);
    }
    return NULL;
}

/* Each thread owns one reference handed to it and drops it at the end, as connections do with a
 * fanned-out package; the count never goes wrong and the last release frees. */
static void *fanout_worker(void *arg)
{
    yti_pkg *p = arg;
    for (int i = 0; i < RC_ROUNDS; i++)
        yti_pkg_unref(yti_pkg_ref(p));
    yti_pkg_unref(p);
    return NULL;
}

static void test_refcount_threads(void)
{
    yti_pkg *p = yti_pkg_from("z", 1, 0, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    yti_thread t[RC_THREADS];
    ref_job jobs[RC_THREADS];
    memset(t, 0, sizeof t);
    for (int i = 0; i < RC_THREADS; i++) {
        jobs[i] = (ref_job){p, 0};
        CU_ASSERT_EQUAL(yti_thread_start(&t[i], ref_worker, &jobs[i], "yt-ref", 0), YT_OK);
    }
    for (int i = 0; i < RC_THREADS; i++) {
        yti_thread_join(&t[i]);
        CU_ASSERT_EQUAL(jobs[i].bad, 0);
    }
    CU_ASSERT_EQUAL(atomic_load(&p->refs), 1u);

    /* Now hand one reference to each thread and drop ours first. */
    for (int i = 0; i < RC_THREADS; i++)
        yti_pkg_ref(p);
    yti_pkg_unref(p);
    for (int i = 0; i < RC_THREADS; i++)
        CU_ASSERT_EQUAL(yti_thread_start(&t[i], fanout_worker, p, "yt-ref", 0), YT_OK);
    for (int i = 0; i < RC_THREADS; i++)
        yti_thread_join(&t[i]);
    /* p is freed here; a missed free is a leak under ASan/valgrind. */
}

void yt_suite_package(void)
{
    static const yt_test_def t[] = {{"header_vectors", test_header_vectors},
                                    {"constants", test_constants},
                                    {"bad_control", test_bad_control},
                                    {"new_layout", test_new_layout},
                                    {"huge_len", test_huge_len},
                                    {"spares", test_spares},
                                    {"pool", test_pool},
                                    {"unref_many", test_unref_many},
                                    {"pool_threads", test_pool_threads},
                                    {"refcount", test_refcount},
                                    {"refcount_threads", test_refcount_threads},
                                    {NULL, NULL}};
    yt_add_suite("package", t);
}

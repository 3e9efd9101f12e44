/*
 * Pub/sub beyond plain delivery: sync mode on both sides (exact status bytes on the wire, a
 * publisher held back, 100,000 messages without loss), ordered reading across subscribers,
 * refusing instead of discarding, iteration.
 */
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

static void test_sync_status_on_the_wire(void)
{
    wire r;
    wire_up(&r, NULL, UINT64_C(0xabcdef0123456789));
    yt_channel *sub;
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(r.ctx, "feed", YT_OBJECT, &sub), YT_OK);
    uint64_t status_slot = slot_of("feed", "obj", "sub-pub");
    uint64_t data_slot = slot_of("feed", "obj", "pub-sub");
    CU_ASSERT_EQUAL(yt_channel_slot_out(sub), status_slot);
    yti_header h;
    char data[64];
    /* Turning it on sends the status at once: raw "ok" even on an obj channel (Q13). */
    CU_ASSERT_EQUAL(yt_sub_set_sync_mode(sub, true), YT_OK);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(r.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.slot, status_slot);
    CU_ASSERT_STRING_EQUAL(data, "ok");
    CU_ASSERT_EQUAL(h.dest_id, 0);
    /* 33 queued messages (> 32): "full", sent from the receive path, nobody calling recv. */
    for (int i = 1; i <= 33; i++)
        raw_send_pkg(r.fd, data_slot, 900, (uint64_t)i, 0, 0, "n", 1);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(r.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL(data, "full");
    CU_ASSERT_EQUAL(yt_channel_pending(sub), 33);
    /* Reading below 16 sends "ok". */
    for (int i = 0; i < 18; i++)
        yt_msg_free(yt_channel_next(sub));
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(r.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL(data, "ok");
    /* Off while OK: nothing more is sent. */
    CU_ASSERT_EQUAL(yt_sub_set_sync_mode(sub, false), YT_OK);
    CU_ASSERT_FALSE(raw_read_pkg(r.fd, &h, data, sizeof data, 0.3));
    yt_msg_free(yt_channel_next(sub));
    CU_ASSERT_EQUAL(yt_sub_set_sync_mode(sub, true), YT_OK);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(r.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL(data, "ok");
    yt_channel *pub;
    yt_pub_new(r.ctx, "x", YT_TEXT, &pub);
    CU_ASSERT_EQUAL(yt_sub_set_sync_mode(pub, true), YT_EINVAL);
    yt_channel_free(pub);
    yt_channel_free(sub);
    wire_down(&r);
}

static void test_publisher_held_back(void)
{
    wire r;
    wire_up(&r, NULL, UINT64_C(0xabcdef0123456789));
    yt_channel *pub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(r.ctx, "feed", YT_TEXT, &pub), YT_OK);
    uint64_t status_slot = slot_of("feed", "txt", "sub-pub");
    /* A subscriber (the raw peer) says it is full: each send waits 1 s, then goes anyway. */
    raw_send_pkg(r.fd, status_slot, 901, 1, 0, 0, "full", 4);
    usleep(100000);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "one"), YT_OK);
    double el = mono_now() - t0;
    CU_ASSERT(el >= 0.95);
    CU_ASSERT(el < 2.0);
    /* Another subscriber's "ok" does not release the first one's hold... */
    raw_send_pkg(r.fd, status_slot, 902, 1, 0, 0, "ok", 2);
    usleep(100000);
    t0 = mono_now();
    yt_channel_send_text(pub, "two");
    CU_ASSERT(mono_now() - t0 >= 0.95);
    /* ...its own "ok" does, also for a send already waiting. */
    t0 = mono_now();
    raw_send_pkg(r.fd, status_slot, 901, 2, 0, 0, "ok", 2);
    yt_channel_send_text(pub, "three");
    CU_ASSERT(mono_now() - t0 < 0.9);
    t0 = mono_now();
    for (int i = 0; i < 100; i++)
        yt_channel_send_text(pub, "free");
    CU_ASSERT(mono_now() - t0 < 0.5);
    /* Undecodable status bytes count as "not full" (Q23). */
    raw_send_pkg(r.fd, status_slot, 903, 1, 0, 0, "\xff\xfe", 2);
    usleep(100000);
    t0 = mono_now();
    yt_channel_send_text(pub, "four");
    CU_ASSERT(mono_now() - t0 < 0.5);
    yt_channel_free(pub);
    wire_down(&r);
}

typedef struct slow_reader {
    yt_channel *sub;
    int expect;
    int got;
    bool in_order;
} slow_reader;

static void *slow_read(void *arg)
{
    slow_reader *sr = arg;
    sr->in_order = true;
    while (sr->got < sr->expect) {
        yt_msg *m = NULL;
        if (yt_channel_recv(sr->sub, 5.0, &m) != YT_OK)
            break;
        if (atoi(yt_msg_text(m)) != sr->got)
            sr->in_order = false;
        sr->got++;
        yt_msg_free(m);
        if (sr->got % 2000 == 0)
            usleep(2000); /* slower than the publisher */
    }
    return NULL;
}

/* A fast publisher and a slow subscriber; returns what arrived. */
static void run_flood(bool sync, size_t queue, int count, slow_reader *sr, uint64_t *lost_pub,
                      uint64_t *lost_sub)
{
    yt_context_options o;
    yt_context_options_init(&o);
    o.queue_size = queue;
    yt_context *a, *b;
    yt_context_new(&o, &a);
    yt_context_new(&o, &b);
    int port;
    yt_connection *ca = bind_any(a, &port);
    yt_connection *cb = connect_port(b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    yt_channel *pub, *sub;
    yt_pub_new(a, "flood", YT_TEXT, &pub);
    yt_sub_new(b, "flood", YT_TEXT, &sub);
    if (sync)
        yt_sub_set_sync_mode(sub, true);
    usleep(100000); /* let the first status arrive */
    *sr = (slow_reader){.sub = sub, .expect = count};
    pthread_t t;
    pthread_create(&t, NULL, slow_read, sr);
    char buf[16];
    for (int i = 0; i < count; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        yt_channel_send_text(pub, buf);
    }
    yt_context_flush(a, 10.0);
    if (!sync) {
        /* Everything not dropped has arrived once the queue stops growing. */
        size_t last = (size_t)-1;
        while (yt_channel_pending(sub) != last) {
            last = yt_channel_pending(sub);
            usleep(200000);
        }
        sr->expect = sr->got + (int)yt_channel_pending(sub);
    }
    pthread_join(t, NULL);
    *lost_pub = yt_context_discarded(a);
    *lost_sub = yt_channel_discarded(sub);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
}

static void test_sync_mode_loses_nothing(void)
{
    slow_reader sr;
    uint64_t lost_pub, lost_sub;
    run_flood(true, 10000, 100000, &sr, &lost_pub, &lost_sub);
    CU_ASSERT_EQUAL(sr.got, 100000);
    CU_ASSERT_TRUE(sr.in_order);
    CU_ASSERT_EQUAL(lost_pub, 0);
    CU_ASSERT_EQUAL(lost_sub, 0);
}

static void test_without_sync_mode_discards_and_counts(void)
{
    slow_reader sr;
    uint64_t lost_pub, lost_sub;
    /* A small queue and no sync mode: the subscriber's queue discards (the oldest), and every
     * message is either delivered or counted as discarded somewhere. */
    run_flood(false, 200, 20000, &sr, &lost_pub, &lost_sub);
    CU_ASSERT(lost_sub > 0);
    CU_ASSERT_EQUAL((uint64_t)sr.got + lost_sub + lost_pub, 20000);
}

static void test_ordered_reading_across_subscribers(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *a = make_ctx(loop), *b = make_ctx(loop);
    int port;
    yt_connection *ca = bind_any(a, &port);
    yt_connection *cb = connect_port(b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    const char *names[3] = {"red", "green", "blue"};
    yt_channel *pubs[3], *subs[3];
    for (int i = 0; i < 3; i++) {
        yt_pub_new(a, names[i], YT_TEXT, &pubs[i]);
        yt_sub_new(b, names[i], YT_TEXT, &subs[i]);
    }
    /* A global counter spread over the three channels in a pseudo-random pattern. */
    int pattern[300];
    unsigned x = 12345;
    for (int n = 0; n < 300; n++) {
        x = x * 1103515245u + 12345u;
        pattern[n] = (int)((x >> 16) % 3);
        char t[16];
        snprintf(t, sizeof t, "%d", n);
        yt_channel_send_text(pubs[pattern[n]], t);
    }
    yt_context_flush(a, 5.0);
    /* One by one, in arrival order. */
    for (int n = 0; n < 150; n++) {
        size_t idx = 99;
        yt_msg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_sub_recv_any(subs, 3, 5.0, &idx, &m), YT_OK);
        CU_ASSERT_EQUAL(atoi(yt_msg_text(m)), n);
        CU_ASSERT_EQUAL(idx, (size_t)pattern[n]);
        yt_msg_free(m);
    }
    /* The reference's way: select, then take the run that is older than the others. */
    int next = 150;
    while (next < 300) {
        yt_channel *which = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_sub_select(subs, 3, 5.0, &which), YT_OK);
        yt_msg **msgs = NULL;
        size_t k = 0;
        CU_ASSERT_EQUAL(yt_sub_recv_selected(which, &msgs, &k), YT_OK);
        CU_ASSERT(k >= 1);
        for (size_t i = 0; i < k; i++) {
            CU_ASSERT_EQUAL(atoi(yt_msg_text(msgs[i])), next);
            CU_ASSERT_PTR_EQUAL(which, subs[pattern[next]]);
            next++;
            yt_msg_free(msgs[i]);
        }
        yt_free(msgs);
        if (k == 0)
            break;
    }
    CU_ASSERT_EQUAL(next, 300);
    /* Nothing left: EAGAIN at once, ETIMEDOUT after the timeout. */
    yt_channel *which = NULL;
    CU_ASSERT_EQUAL(yt_sub_select(subs, 3, 0, &which), YT_EAGAIN);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_sub_select(subs, 3, 0.2, &which), YT_ETIMEDOUT);
    CU_ASSERT(mono_now() - t0 >= 0.2);
    CU_ASSERT(mono_now() - t0 < 1.5);
    CU_ASSERT_EQUAL(yt_sub_select(pubs, 3, 0, &which), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_sub_select(subs, 0, 0, &which), YT_EINVAL);
    for (int i = 0; i < 3; i++) {
        yt_channel_free(pubs[i]);
        yt_channel_free(subs[i]);
    }
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
    yt_loop_free(loop);
}

typedef struct wake_arg {
    yt_channel **subs;
    int n;
    yt_channel *pub;
} wake_arg;

static void *close_subs_later(void *arg)
{
    wake_arg *w = arg;
    usleep(150000);
    for (int i = 0; i < w->n; i++)
        yt_channel_close(w->subs[i]);
    return NULL;
}

static void *send_later(void *arg)
{
    wake_arg *w = arg;
    usleep(150000);
    yt_channel_send_text(w->pub, "late");
    return NULL;
}

static void test_select_wakes(void)
{
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    int port;
    yt_connection *ca = bind_any(a, &port);
    yt_connection *cb = connect_port(b, port);
    yt_channel *pub, *subs[2];
    yt_pub_new(a, "second", YT_TEXT, &pub);
    yt_sub_new(b, "first", YT_TEXT, &subs[0]);
    yt_sub_new(b, "second", YT_TEXT, &subs[1]);
    /* An arrival on any watched channel wakes a waiting select. */
    wake_arg w = {subs, 2, pub};
    pthread_t t;
    pthread_create(&t, NULL, send_later, &w);
    double t0 = mono_now();
    size_t idx = 9;
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_sub_recv_any(subs, 2, 5.0, &idx, &m), YT_OK);
    CU_ASSERT(mono_now() - t0 < 2.0);
    CU_ASSERT_EQUAL(idx, 1);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "late");
    yt_msg_free(m);
    pthread_join(t, NULL);
    /* Closing every channel wakes it with YT_ECLOSED. */
    pthread_create(&t, NULL, close_subs_later, &w);
    t0 = mono_now();
    CU_ASSERT_EQUAL(yt_sub_recv_any(subs, 2, -1, &idx, &m), YT_ECLOSED);
    CU_ASSERT(mono_now() - t0 < 2.0);
    pthread_join(t, NULL);
    yt_channel_free(pub);
    yt_channel_free(subs[0]);
    yt_channel_free(subs[1]);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
}

static void test_refuse_when_full_and_next(void)
{
    yt_context_options o;
    yt_context_options_init(&o);
    o.queue_size = 5;
    yt_context *ctx;
    yt_context_new(&o, &ctx);
    yt_channel *pub;
    yt_pub_new(ctx, "bounded", YT_TEXT, &pub);
    CU_ASSERT_EQUAL(yt_channel_set_refuse_when_full(pub, true), YT_OK);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(yt_channel_send_text(pub, "m"), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "m"), YT_EFULL);
    CU_ASSERT_EQUAL(yt_context_discarded(ctx), 0);
    /* Off again: the startup queue discards the oldest, and counts it. */
    yt_channel_set_refuse_when_full(pub, false);
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "m"), YT_OK);
    CU_ASSERT_EQUAL(yt_context_discarded(ctx), 1);

    /* Iteration over a local loopback pair. */
    yt_context *b = make_ctx(NULL);
    int port;
    yt_connection *ca = bind_any(ctx, &port);
    yt_channel *sub;
    yt_sub_new(b, "bounded", YT_TEXT, &sub);
    yt_connection *cb = connect_port(b, port);
    double end = mono_now() + 3;
    while (yt_channel_pending(sub) < 5 && mono_now() < end)
        usleep(5000);
    int n = 0;
    for (yt_msg *m; (m = yt_channel_next(sub)) != NULL; n++)
        yt_msg_free(m);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_PTR_NULL(yt_channel_next(sub));
    yt_channel_free(sub);
    yt_channel_free(pub);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(b);
    yt_context_free(ctx);
}

/* Waits up to 3 s for one message on sub. */
static yt_msg *next_msg(yt_channel *sub)
{
    yt_msg *m = NULL;
    yt_channel_recv(sub, 3.0, &m);
    return m;
}

static void test_send_msg_without_copy(void)
{
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    int port;
    yt_connection *ca = bind_any(a, &port);
    yt_channel *pub, *sub, *tpub, *tsub, *zpub, *zsub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(a, "nocopy", YT_BINARY, &pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(b, "nocopy", YT_BINARY, &sub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(a, "nocopy", YT_TEXT, &tpub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(b, "nocopy", YT_TEXT, &tsub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(a, "nocopy", YT_ZLIB(YT_TEXT), &zpub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(b, "nocopy", YT_ZLIB(YT_TEXT), &zsub), YT_OK);
    yt_connection *cb = connect_port(b, port);
    CU_ASSERT_TRUE_FATAL(wait_until(NULL, is_connected, ca, 3.0));

    /* A large payload written in place, then sent: the subscriber gets exactly those bytes. */
    size_t big = (size_t)5 << 20;
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_msg_new(big, &m), YT_OK);
    unsigned char *w = yt_msg_buffer(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(yt_msg_size(m), big);
    for (size_t i = 0; i < big; i++)
        w[i] = (unsigned char)(i * 31 + 7);
    CU_ASSERT_EQUAL(yt_channel_send_msg(pub, m), YT_OK);
    yt_msg *r = next_msg(sub);
    CU_ASSERT_EQUAL_FATAL(yt_msg_size(r), big);
    const unsigned char *d = yt_msg_data(r);
    size_t bad = 0;
    for (size_t i = 0; i < big; i++)
        bad += d[i] != (unsigned char)(i * 31 + 7);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(yt_msg_source(r), yt_context_id(a));
    /* A received message is read-only and cannot be sent as is (it is taken anyway). */
    CU_ASSERT_PTR_NULL(yt_msg_buffer(r));
    CU_ASSERT_EQUAL(yt_channel_send_msg(pub, r), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_channel_send_msg(pub, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_msg_new(4, NULL), YT_EINVAL);

    /* Text rules hold: invalid UTF-8 refused (and the message taken), valid text arrives. */
    CU_ASSERT_EQUAL_FATAL(yt_msg_new(2, &m), YT_OK);
    memcpy(yt_msg_buffer(m), "\xff\xfe", 2);
    CU_ASSERT_EQUAL(yt_channel_send_msg(tpub, m), YT_EINVAL);
    CU_ASSERT_EQUAL_FATAL(yt_msg_new(5, &m), YT_OK);
    memcpy(yt_msg_buffer(m), "hello", 5);
    CU_ASSERT_EQUAL(yt_channel_send_msg(tpub, m), YT_OK);
    r = next_msg(tsub);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(r), "hello");
    yt_msg_free(r);
    /* Empty: not sent, as yt_channel_send. Then zlib: compressed on the way, inflated back. */
    CU_ASSERT_EQUAL_FATAL(yt_msg_new(0, &m), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_msg(tpub, m), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_msg_new(6, &m), YT_OK);
    memcpy(yt_msg_buffer(m), "zipped", 6);
    CU_ASSERT_EQUAL(yt_channel_send_msg(zpub, m), YT_OK);
    r = next_msg(zsub);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(r), "zipped");
    yt_msg_free(r);
    CU_ASSERT_EQUAL(yt_channel_recv(tsub, 0.2, &r), YT_ETIMEDOUT); /* the empty one never came */
    /* Closed channel: refused, message taken. */
    yt_channel_close(pub);
    CU_ASSERT_EQUAL_FATAL(yt_msg_new(3, &m), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_msg(pub, m), YT_ECLOSED);

    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_channel_free(tpub);
    yt_channel_free(tsub);
    yt_channel_free(zpub);
    yt_channel_free(zsub);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
}

void yt_suite_pubsub(void)
{
    static const yt_test_def t[] = {
        {"sync_status_on_the_wire", test_sync_status_on_the_wire},
        {"publisher_held_back", test_publisher_held_back},
        {"sync_mode_loses_nothing", test_sync_mode_loses_nothing},
        {"without_sync_mode_discards_and_counts", test_without_sync_mode_discards_and_counts},
        {"ordered_reading_across_subscribers", test_ordered_reading_across_subscribers},
        {"select_wakes", test_select_wakes},
        {"refuse_when_full_and_next", test_refuse_when_full_and_next},
        {"send_msg_without_copy", test_send_msg_without_copy},
        {NULL, NULL}};
    yt_add_suite("pubsub", t);
}

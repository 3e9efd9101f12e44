/*
 * A thread blocked in a receive reads the socket itself ("leads", connection.c, "Who reads the
 * socket"): that it does, and that nothing is lost, reordered or left waiting because of it:
 * packages for other channels, large packages (handed back to the receiver thread), closes,
 * and futures completed from elsewhere.
 */
#include "core.h"
#include "netutil.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct link2 {
    yt_context *a, *b;
    yt_connection *ca, *cb;
} link2;

static void link_up(link2 *l)
{
    int port;
    l->a = make_ctx(NULL);
    l->b = make_ctx(NULL);
    l->ca = bind_any(l->a, &port);
    l->cb = connect_port(l->b, port);
    CU_ASSERT_FATAL(wait_until(NULL, is_connected, l->ca, 5.0));
}

static void link_down(link2 *l)
{
    yt_connection_release(l->ca);
    yt_connection_release(l->cb);
    yt_context_free(l->a);
    yt_context_free(l->b);
}

/* A receive on another thread: what it got and when. */
typedef struct receiver {
    yt_channel *sub;
    double timeout;
    int rc;
    char text[64];
    size_t len;
    double done_at;
    pthread_t t;
} receiver;

static void *receive_one(void *arg)
{
    receiver *r = arg;
    yt_msg *m = NULL;
    r->rc = yt_channel_recv(r->sub, r->timeout, &m);
    if (r->rc == YT_OK) {
        r->len = yt_msg_size(m);
        snprintf(r->text, sizeof r->text, "%.*s", (int)(r->len < 63 ? r->len : 63),
                 (const char *)yt_msg_data(m));
        yt_msg_free(m);
    }
    r->done_at = mono_now();
    return NULL;
}

/* Ping-pong between two threads, each blocked in a receive between hops: their own reads
 * carry the traffic (the counters move), and every message arrives, in order. */
typedef struct bouncer {
    yt_channel *in, *out;
    int rounds, got;
    bool ordered;
} bouncer;

/* Receives message number i ("0", "1", ...): 1 when it came and was i, 0 when it came out of
 * order, -1 when nothing came. */
static int recv_number(yt_channel *ch, int i)
{
    yt_msg *m = NULL;
    if (yt_channel_recv(ch, 5.0, &m) != YT_OK)
        return -1;
    char want[32];
    snprintf(want, sizeof want, "%d", i);
    int ok = yt_msg_size(m) == strlen(want) && memcmp(yt_msg_data(m), want, strlen(want)) == 0;
    yt_msg_free(m);
    return ok;
}

static void *bounce(void *arg)
{
    bouncer *b = arg;
    for (int i = 0; i < b->rounds; i++) {
        int r = recv_number(b->in, i);
        if (r < 0)
            break;
        b->ordered = b->ordered && r;
        b->got++;
        char text[32];
        snprintf(text, sizeof text, "%d", i);
        yt_channel_send_text(b->out, text);
    }
    return NULL;
}

static void test_waiting_threads_read(void)
{
    link2 l;
    link_up(&l);
    yt_channel *pa, *sa, *pb, *sb;
    yt_pub_new(l.a, "ping", YT_TEXT, &pa);
    yt_sub_new(l.b, "ping", YT_TEXT, &sb);
    yt_pub_new(l.b, "pong", YT_TEXT, &pb);
    yt_sub_new(l.a, "pong", YT_TEXT, &sa);
    yti_sleep(0.1); /* the slots are known on both sides */
    uint64_t led_a = yti_conn_led(l.ca), led_b = yti_conn_led(l.cb);
    bouncer b = {sb, pb, 300, 0, true};
    pthread_t t;
    pthread_create(&t, NULL, bounce, &b);
    int got = 0;
    bool ordered = true;
    for (int i = 0; i < 300; i++) {
        char text[32];
        snprintf(text, sizeof text, "%d", i);
        yt_channel_send_text(pa, text);
        int r = recv_number(sa, i);
        if (r < 0)
            break;
        ordered = ordered && r;
        got++;
    }
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(got, 300);
    CU_ASSERT_EQUAL(b.got, 300);
    CU_ASSERT_TRUE(ordered);
    CU_ASSERT_TRUE(b.ordered);
    /* Most hops are read by the waiting thread; some may go to the receiver thread (a reply
     * that came before its reader was waiting), so only "some" is asserted. */
    printf("\n  leader reads: a %llu, b %llu of 300 each\n",
           (unsigned long long)(yti_conn_led(l.ca) - led_a),
           (unsigned long long)(yti_conn_led(l.cb) - led_b));
    CU_ASSERT(yti_conn_led(l.ca) > led_a);
    CU_ASSERT(yti_conn_led(l.cb) > led_b);
    yt_channel_free(pa);
    yt_channel_free(sa);
    yt_channel_free(pb);
    yt_channel_free(sb);
    link_down(&l);
}

/* While one thread leads waiting on channel "one", a package for channel "two" is delivered to
 * its own waiter at once, and "one" still gets its own later. */
static void test_other_channel_while_leading(void)
{
    link2 l;
    link_up(&l);
    yt_channel *p1, *p2, *s1, *s2;
    yt_pub_new(l.a, "one", YT_TEXT, &p1);
    yt_pub_new(l.a, "two", YT_TEXT, &p2);
    yt_sub_new(l.b, "one", YT_TEXT, &s1);
    yt_sub_new(l.b, "two", YT_TEXT, &s2);
    yti_sleep(0.1);
    receiver r1 = {.sub = s1, .timeout = 10.0};
    pthread_create(&r1.t, NULL, receive_one, &r1);
    receiver r2 = {.sub = s2, .timeout = 10.0};
    pthread_create(&r2.t, NULL, receive_one, &r2);
    yti_sleep(0.1); /* both wait; one of them leads */
    double t0 = mono_now();
    yt_channel_send_text(p2, "for two");
    pthread_join(r2.t, NULL);
    CU_ASSERT_EQUAL(r2.rc, YT_OK);
    CU_ASSERT_STRING_EQUAL(r2.text, "for two");
    CU_ASSERT(r2.done_at - t0 < 1.0);
    yti_sleep(0.05);
    t0 = mono_now();
    yt_channel_send_text(p1, "for one");
    pthread_join(r1.t, NULL);
    CU_ASSERT_EQUAL(r1.rc, YT_OK);
    CU_ASSERT_STRING_EQUAL(r1.text, "for one");
    CU_ASSERT(r1.done_at - t0 < 1.0);
    yt_channel_free(p1);
    yt_channel_free(p2);
    yt_channel_free(s1);
    yt_channel_free(s2);
    link_down(&l);
}

/* A large package (read by the receiver thread, into its own buffer) between small ones that
 * a leader reads: all arrive whole and in order. */
static void test_large_between_small(void)
{
    link2 l;
    link_up(&l);
    yt_channel *p, *s;
    yt_pub_new(l.a, "mix", YT_BINARY, &p);
    yt_sub_new(l.b, "mix", YT_BINARY, &s);
    yti_sleep(0.1);
    size_t big = 3u << 20;
    unsigned char *data = malloc(big);
    CU_ASSERT_FATAL(data != NULL);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    for (int round = 0; round < 3; round++) {
        receiver r = {.sub = s, .timeout = 10.0};
        pthread_create(&r.t, NULL, receive_one, &r);
        yti_sleep(0.05); /* it leads */
        yt_channel_send(p, "first", 5);
        pthread_join(r.t, NULL);
        CU_ASSERT_STRING_EQUAL(r.text, "first");
        yt_channel_send(p, data, big);
        yt_channel_send(p, "after", 5);
        yt_msg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_channel_recv(s, 10.0, &m), YT_OK);
        CU_ASSERT_EQUAL(yt_msg_size(m), big);
        CU_ASSERT(yt_msg_size(m) == big && memcmp(yt_msg_data(m), data, big) == 0);
        yt_msg_free(m);
        CU_ASSERT_EQUAL_FATAL(yt_channel_recv(s, 10.0, &m), YT_OK);
        CU_ASSERT(yt_msg_size(m) == 5 && memcmp(yt_msg_data(m), "after", 5) == 0);
        yt_msg_free(m);
    }
    free(data);
    yt_channel_free(p);
    yt_channel_free(s);
    link_down(&l);
}

/* Fills m with the pattern of message number i. */
static void fill(unsigned char *m, size_t len, int i)
{
    for (size_t k = 0; k < len; k++)
        m[k] = (unsigned char)(k * 13 + (size_t)i * 7 + 1);
}

/* Sends n messages of sizes[i % 10] bytes (pattern i + seed) from p, then receives them on s:
 * how many arrived whole and in order. buf and want hold the largest size. */
static int stream_sizes(yt_channel *p, yt_channel *s, const size_t sizes[10], int n, int seed,
                        unsigned char *buf, unsigned char *want)
{
    for (int i = 0; i < n; i++) {
        size_t len = sizes[i % 10];
        fill(buf, len, i + seed);
        CU_ASSERT_EQUAL(yt_channel_send(p, buf, len), YT_OK);
    }
    int good = 0;
    for (int i = 0; i < n; i++) {
        yt_msg *m = NULL;
        if (yt_channel_recv(s, 10.0, &m) != YT_OK)
            break;
        size_t len = sizes[i % 10];
        fill(want, len, i + seed);
        good += yt_msg_size(m) == len && memcmp(yt_msg_data(m), want, len) == 0;
        yt_msg_free(m);
    }
    return good;
}

/* A stream of large packages with small ones in between: those of 256 KiB or more have their
 * header read alone and the payload read straight into their package while leaders stand aside;
 * the others are parsed from the grown read buffer. Every message arrives whole and in order,
 * and once small packages flow again, waiting threads lead again. */
static void test_large_stream(void)
{
    static const size_t sizes[] = {40000, 300000, 100000, 7, 270000, 40000, 3, 33000, 250000, 1};
    const int n = 60;
    link2 l;
    link_up(&l);
    yt_channel *p, *s;
    yt_pub_new(l.a, "big", YT_BINARY, &p);
    yt_sub_new(l.b, "big", YT_BINARY, &s);
    yti_sleep(0.1);
    unsigned char *buf = malloc(300000), *want = malloc(300000);
    CU_ASSERT_FATAL(buf != NULL && want != NULL);
    CU_ASSERT_EQUAL(stream_sizes(p, s, sizes, n, 0, buf, want), n);
    /* The first small package after a large one is the receiver's; from then on a waiting
     * thread reads again. */
    CU_ASSERT_EQUAL(yt_channel_send(p, "s1", 2), YT_OK);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(s, 10.0, &m), YT_OK);
    CU_ASSERT(yt_msg_size(m) == 2 && memcmp(yt_msg_data(m), "s1", 2) == 0);
    yt_msg_free(m);
    uint64_t led = yti_conn_led(l.cb);
    receiver r = {.sub = s, .timeout = 10.0};
    pthread_create(&r.t, NULL, receive_one, &r);
    yti_sleep(0.05);
    yt_channel_send(p, "s2", 2);
    pthread_join(r.t, NULL);
    CU_ASSERT_STRING_EQUAL(r.text, "s2");
    CU_ASSERT(yti_conn_led(l.cb) > led);
    free(buf);
    free(want);
    yt_channel_free(p);
    yt_channel_free(s);
    link_down(&l);
}

static bool rbuf_back_to_small(void *conn)
{
    return yti_conn_rbuf_size(conn, NULL) == 64 * 1024;
}

/* The read buffer grows for packages from 32 KiB up to 256 KiB, which it then reads several per
 * read and parses in place, and shrinks back a moment after the last of them, even while small
 * packages keep coming; larger packages are read by themselves. Packages on both sides of each
 * threshold arrive whole and in order, twice (grown, shrunk, grown again). */
static void test_read_buffer_grows_and_shrinks(void)
{
    static const size_t sizes[] = {32767, 32768, 65536, 100, 262143, 262144, 300000, 7, 65536, 1};
    const int n = 40;
    link2 l;
    link_up(&l);
    yt_channel *p, *s;
    yt_pub_new(l.a, "buf", YT_BINARY, &p);
    yt_sub_new(l.b, "buf", YT_BINARY, &s);
    yti_sleep(0.1);
    uint64_t grown = 99;
    CU_ASSERT_EQUAL(yti_conn_rbuf_size(l.cb, &grown), 64 * 1024);
    CU_ASSERT_EQUAL(grown, 0);
    unsigned char *buf = malloc(300000), *want = malloc(300000);
    CU_ASSERT_FATAL(buf != NULL && want != NULL);
    for (int round = 0; round < 2; round++) {
        CU_ASSERT_EQUAL(stream_sizes(p, s, sizes, n, 100 * round, buf, want), n);
        uint64_t before = grown;
        yti_conn_rbuf_size(l.cb, &grown);
        CU_ASSERT(grown > before);
        if (round == 0) {
            CU_ASSERT_TRUE(wait_until(NULL, rbuf_back_to_small, l.cb, 5.0));
            continue;
        }
        /* Small packages every 50 ms do not keep the buffer grown (heartbeats neither). */
        bool small = false;
        for (int i = 0; i < 100 && !small; i++) {
            CU_ASSERT_EQUAL(yt_channel_send(p, "tick", 4), YT_OK);
            yt_msg *m = NULL;
            CU_ASSERT_EQUAL_FATAL(yt_channel_recv(s, 10.0, &m), YT_OK);
            CU_ASSERT_EQUAL(yt_msg_size(m), 4);
            yt_msg_free(m);
            small = rbuf_back_to_small(l.cb);
            yti_sleep(0.05);
        }
        CU_ASSERT_TRUE(small);
    }
    free(buf);
    free(want);
    yt_channel_free(p);
    yt_channel_free(s);
    link_down(&l);
}

/* Closing the connection under a waiting leader, then the channel: the wait ends at the
 * channel's close, at once; the connection's descriptors are gone. */
static void test_close_under_leader(void)
{
    int fds0 = count_fds();
    link2 l;
    link_up(&l);
    yt_channel *p, *s;
    yt_pub_new(l.a, "c", YT_TEXT, &p);
    yt_sub_new(l.b, "c", YT_TEXT, &s);
    yti_sleep(0.1);
    receiver r = {.sub = s, .timeout = -1};
    pthread_create(&r.t, NULL, receive_one, &r);
    yti_sleep(0.1);
    yt_connection_close(l.cb, "test");
    yti_sleep(0.1);
    double t0 = mono_now();
    yt_channel_close(s);
    pthread_join(r.t, NULL);
    CU_ASSERT_EQUAL(r.rc, YT_ECLOSED);
    CU_ASSERT(r.done_at - t0 < 1.0);
    yt_channel_free(p);
    yt_channel_free(s);
    link_down(&l);
    CU_ASSERT_EQUAL(count_fds(), fds0);
}

/* The peer closes while a thread leads: the receiver thread, handed the end-of-file, closes
 * the connection with the usual reason. */
static bool is_gone(void *c)
{
    return !yt_connection_is_alive(c);
}

static void test_peer_close_under_leader(void)
{
    link2 l;
    link_up(&l);
    yt_channel *s;
    yt_sub_new(l.b, "c", YT_TEXT, &s);
    receiver r = {.sub = s, .timeout = 1.0};
    pthread_create(&r.t, NULL, receive_one, &r);
    yti_sleep(0.1);
    yt_connection_close(l.ca, "bye");
    pthread_join(r.t, NULL);
    CU_ASSERT_EQUAL(r.rc, YT_ETIMEDOUT);
    CU_ASSERT(wait_until(NULL, is_gone, l.cb, 5.0));
    CU_ASSERT_STRING_EQUAL(yt_connection_close_reason(l.cb), "Closed from other end.");
    yt_channel_free(s);
    link_down(&l);
}

static void *cancel_later(void *arg)
{
    yti_sleep(0.2);
    yt_future_cancel(arg);
    return NULL;
}

/* A caller waiting for a result leads too; a cancel from another thread still ends its wait
 * promptly. Then a real call is answered. */
static void test_future_waits(void)
{
    link2 l;
    link_up(&l);
    yt_channel *req, *rep;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(l.a, "svc", &req), YT_OK);
    yt_future *f = NULL;
    /* No replier yet: the request stays pending until cancelled. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", NULL, NULL, &f), YT_OK);
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, f);
    double t0 = mono_now();
    yt_value *res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_ECANCELED);
    double dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.15 && dt < 1.0);
    pthread_join(t, NULL);
    yt_future_free(f);

    CU_ASSERT_EQUAL_FATAL(yt_rep_new(l.b, "svc", &rep), YT_OK);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    yti_sleep(0.1);
    uint64_t led = yti_conn_led(l.ca);
    for (int i = 0; i < 50; i++) {
        yt_value *args = yt_value_tuple();
        yt_value_append(args, yt_value_int(i));
        CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", args, NULL, &f), YT_OK);
        yt_value_free(args);
        CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
        int64_t v = -1;
        CU_ASSERT_EQUAL(yt_value_as_int(yt_value_item(res, 0), &v), YT_OK);
        CU_ASSERT_EQUAL(v, i);
        yt_value_free(res);
        yt_future_free(f);
    }
    CU_ASSERT(yti_conn_led(l.ca) > led);
    yt_channel_free(req);
    yt_channel_free(rep);
    link_down(&l);
}

void yt_suite_leader(void)
{
    static const yt_test_def t[] = {
        {"waiting_threads_read", test_waiting_threads_read},
        {"other_channel_while_leading", test_other_channel_while_leading},
        {"large_between_small", test_large_between_small},
        {"large_stream", test_large_stream},
        {"read_buffer_grows_and_shrinks", test_read_buffer_grows_and_shrinks},
        {"close_under_leader", test_close_under_leader},
        {"peer_close_under_leader", test_peer_close_under_leader},
        {"future_waits", test_future_waits},
        {NULL, NULL}};
    yt_add_suite("leader", t);
}

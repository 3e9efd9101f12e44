/*
 * State channels: one value shared by every state channel of a slot. Checked between loopback
 * contexts (late joiners, last arrival wins, values, zlib types) and against a raw socket peer
 * (exactly which packages go out, with which bytes).
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

/* chat.txt.state, from tests/vectors/slot_names.txt (computed by the reference). */
#define CHAT_TXT_STATE UINT64_C(13349270216229)

static int state_recv(yt_channel *ch, yt_msg **out)
{
    return yt_channel_recv(ch, 0, out);
}

/* Polls ch until its state reads `want` (or timeout). */
static bool state_is(yt_channel *ch, const char *want, double timeout)
{
    double end = mono_now() + timeout;
    do {
        yt_msg *m = NULL;
        if (state_recv(ch, &m) == YT_OK) {
            bool same = yt_msg_size(m) == strlen(want) && strcmp(yt_msg_text(m), want) == 0;
            yt_msg_free(m);
            if (same)
                return true;
        }
        usleep(2000);
    } while (mono_now() < end);
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Raw peer                                                                                    */

#define RAW_ID UINT64_C(0x0badc0ffee123456)

/* The next package with a payload, context messages such as NEW_CONNECTION skipped. */
static bool read_state_pkg(int fd, yti_header *h, char *data, size_t cap, double timeout)
{
    double end = mono_now() + timeout;
    while (raw_read_pkg(fd, h, data, cap, end - mono_now()))
        if (h->slot != YTI_SLOT_CONTEXT)
            return true;
    return false;
}

static void test_exact_packages_on_the_wire(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *st;
    CU_ASSERT_EQUAL_FATAL(yt_state_new(w.ctx, "chat", YT_TEXT, &st), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_slot_out(st), CHAT_TXT_STATE);
    CU_ASSERT_EQUAL(yt_channel_slot_in(st), CHAT_TXT_STATE);
    /* Unchanged values and empty ones are not sent. */
    const char *seq[] = {"a", "a", "", "b", "b", "a", "a"};
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++)
        CU_ASSERT_EQUAL(yt_channel_send_text(st, seq[i]), YT_OK);
    const char *want[] = {"a", "b", "a"};
    yti_header h;
    char data[64];
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
        CU_ASSERT_EQUAL(h.slot, CHAT_TXT_STATE);
        CU_ASSERT_EQUAL(h.source_id, yt_context_id(w.ctx));
        CU_ASSERT_EQUAL(h.source_seq, (uint64_t)i + 1);
        CU_ASSERT_EQUAL(h.dest_id, 0);
        CU_ASSERT_EQUAL(h.dest_seq, 0);
        CU_ASSERT_STRING_EQUAL(data, want[i]);
    }
    /* send_last: a new package (next sequence number) with the same bytes. */
    CU_ASSERT_EQUAL(yt_state_send_last(st), YT_OK);
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.source_seq, 4);
    CU_ASSERT_STRING_EQUAL(data, "a");
    /* Nothing else went out: the next package is the marker. */
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "marker"), YT_OK);
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.source_seq, 5);
    CU_ASSERT_STRING_EQUAL(data, "marker");
    /* The sender reads its own state. */
    CU_ASSERT_TRUE(state_is(st, "marker", 0));
    yt_channel_free(st);
    wire_down(&w);
}

static void test_last_arrival_wins(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *st;
    CU_ASSERT_EQUAL_FATAL(yt_state_new(w.ctx, "chat", YT_TEXT, &st), YT_OK);
    recorder r = {0};
    yt_signal_bind(yt_channel_received_signal(st), rec_handler, &r);
    raw_send_pkg(w.fd, CHAT_TXT_STATE, 500, 1, 0, 0, "first", 5);
    raw_send_pkg(w.fd, CHAT_TXT_STATE, 501, 1, 0, 0, "second", 6);
    raw_send_pkg(w.fd, CHAT_TXT_STATE, 500, 2, 0, 0, "third", 5);
    CU_ASSERT_TRUE(state_is(st, "third", 3.0));
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(state_recv(st, &m), YT_OK);
    CU_ASSERT_EQUAL(yt_msg_source(m), 500);
    yt_msg_free(m);
    /* Reading does not consume: the state stays. */
    CU_ASSERT_TRUE(state_is(st, "third", 0));
    CU_ASSERT_TRUE(state_is(st, "third", 0));
    CU_ASSERT_EQUAL(yt_channel_pending(st), 0);
    /* The received signal fired (coalesced: at least once). */
    double end = mono_now() + 2;
    while (r.count == 0 && mono_now() < end)
        yt_loop_process(w.loop, 0.02);
    CU_ASSERT(r.count >= 1);
    CU_ASSERT_PTR_EQUAL(r.source[0], st);
    /* Sending the value that arrived is "unchanged": nothing goes out; a new one does. */
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "third"), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "fourth"), YT_OK);
    yti_header h;
    char data[64];
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_STRING_EQUAL(data, "fourth");
    CU_ASSERT_EQUAL(h.source_seq, 1);
    /* A later arrival replaces what was sent here too. */
    raw_send_pkg(w.fd, CHAT_TXT_STATE, 501, 2, 0, 0, "fifth", 5);
    CU_ASSERT_TRUE(state_is(st, "fifth", 3.0));
    /* send_last re-sends a state that came from elsewhere, as our own package. */
    CU_ASSERT_EQUAL(yt_state_send_last(st), YT_OK);
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_STRING_EQUAL(data, "fifth");
    CU_ASSERT_EQUAL(h.source_id, yt_context_id(w.ctx));
    CU_ASSERT_EQUAL(h.source_seq, 2);
    yt_signal_unbind(yt_channel_received_signal(st), rec_handler, &r);
    yt_channel_free(st);
    wire_down(&w);
}

static void test_recv_before_any_state(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop);
    yt_channel *st;
    CU_ASSERT_EQUAL_FATAL(yt_state_new(ctx, "chat", YT_TEXT, &st), YT_OK);
    yt_msg *m = (yt_msg *)1;
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_channel_recv(st, 2.0, &m), YT_EAGAIN); /* never waits */
    CU_ASSERT(mono_now() - t0 < 0.5);
    CU_ASSERT_PTR_NULL(m);
    /* send_last without a state sends nothing and succeeds. */
    CU_ASSERT_EQUAL(yt_state_send_last(st), YT_OK);
    /* An empty value is no state. */
    CU_ASSERT_EQUAL(yt_channel_send_text(st, ""), YT_OK);
    CU_ASSERT_EQUAL(state_recv(st, &m), YT_EAGAIN);
    /* Without a connection the state is still kept (and queued for the first peer). */
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "x"), YT_OK);
    CU_ASSERT_TRUE(state_is(st, "x", 0));
    CU_ASSERT_PTR_NULL(yt_channel_next(st)); /* not an iteration: it would never end */
    CU_ASSERT_EQUAL(yt_channel_pending(st), 0);
    /* One state channel per slot per context; other types are other slots. */
    yt_channel *again = NULL, *bin = NULL;
    CU_ASSERT_EQUAL(yt_state_new(ctx, "chat", YT_TEXT, &again), YT_EBUSY);
    CU_ASSERT_EQUAL(yt_state_new(ctx, "chat", YT_BINARY, &bin), YT_OK);
    CU_ASSERT_EQUAL(state_recv(bin, &m), YT_EAGAIN);
    /* Wrong channels and closed ones. */
    yt_channel *pub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(ctx, "chat", YT_TEXT, &pub), YT_OK);
    CU_ASSERT_EQUAL(yt_state_send_last(pub), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_state_send_last(NULL), YT_EINVAL);
    yt_channel_close(st);
    CU_ASSERT_EQUAL(yt_state_send_last(st), YT_ECLOSED);
    CU_ASSERT_EQUAL(state_recv(st, &m), YT_ECLOSED);
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "y"), YT_ECLOSED);
    yt_msg **all = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(yt_channel_recv_all(bin, &all, &n), YT_EINVAL); /* no queue to drain */
    CU_ASSERT_EQUAL(yt_channel_recv(NULL, 0, &m), YT_EINVAL);
    yt_channel_free(st);
    yt_channel_free(bin);
    yt_channel_free(pub);
    yt_context_free(ctx);
    yt_loop_free(loop);
}

/* ------------------------------------------------------------------------------------------ */
/* Between contexts                                                                            */

static void test_late_joiner_learns_the_state(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *a = make_ctx(loop), *b = make_ctx(loop), *c = make_ctx(loop);
    yt_channel *sa, *sb, *sc;
    CU_ASSERT_EQUAL_FATAL(yt_state_new(a, "status", YT_TEXT, &sa), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_state_new(b, "status", YT_TEXT, &sb), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_state_new(c, "status", YT_TEXT, &sc), YT_OK);
    int port1 = 0, port2 = 0;
    yt_connection *h1 = bind_any(a, &port1);
    yt_connection *cb = connect_port(b, port1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    /* A sets the state while connected to B only. */
    CU_ASSERT_EQUAL(yt_channel_send_text(sa, "ready"), YT_OK);
    CU_ASSERT_TRUE(state_is(sb, "ready", 3.0));
    /* C joins afterwards (A's new binding holds nothing for it): its NEW_CONNECTION makes
     * the state channels of the network send their state again. */
    yt_connection *h2 = bind_any(a, &port2);
    CU_ASSERT_EQUAL(yt_connection_discarded(h2), 0);
    usleep(50000);
    CU_ASSERT_EQUAL(state_recv(sc, &(yt_msg *){NULL}), YT_EAGAIN);
    yt_connection *cc = connect_port(c, port2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cc);
    CU_ASSERT_TRUE(state_is(sc, "ready", 3.0));
    /* The state C learned came from the network, re-sent as a new package. */
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(state_recv(sc, &m), YT_OK);
    uint64_t src = yt_msg_source(m);
    CU_ASSERT(src == yt_context_id(a) || src == yt_context_id(b));
    yt_msg_free(m);
    /* A and B each re-sent the state; let those copies land before changing it, or a late one
     * would win (last arrival wins). A ping from C to B and B's pong back travel behind C's
     * NEW_CONNECTION and the re-sends on every link, so once the pong is here all is settled. */
    yt_channel *ping_c, *ping_b, *pong_b, *pong_c;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(c, "ping", YT_TEXT, &ping_c), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(b, "ping", YT_TEXT, &ping_b), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(b, "pong", YT_TEXT, &pong_b), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(c, "pong", YT_TEXT, &pong_c), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_text(ping_c, "ping"), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_recv(ping_b, 3.0, &m), YT_OK);
    yt_msg_free(m);
    CU_ASSERT_EQUAL(yt_channel_send_text(pong_b, "pong"), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_recv(pong_c, 3.0, &m), YT_OK);
    yt_msg_free(m);
    yt_channel_free(ping_c);
    yt_channel_free(ping_b);
    yt_channel_free(pong_b);
    yt_channel_free(pong_c);
    /* From now on all three share changes, whoever makes them. */
    CU_ASSERT_EQUAL(yt_channel_send_text(sc, "busy"), YT_OK);
    CU_ASSERT_TRUE(state_is(sa, "busy", 3.0));
    CU_ASSERT_TRUE(state_is(sb, "busy", 3.0));
    CU_ASSERT_EQUAL(yt_channel_send_text(sb, "done"), YT_OK);
    CU_ASSERT_TRUE(state_is(sa, "done", 3.0));
    CU_ASSERT_TRUE(state_is(sc, "done", 3.0));
    yt_channel_free(sa);
    yt_channel_free(sb);
    yt_channel_free(sc);
    yt_connection_release(h1);
    yt_connection_release(h2);
    yt_connection_release(cb);
    yt_connection_release(cc);
    yt_context_free(c);
    yt_context_free(b);
    yt_context_free(a);
    yt_loop_free(loop);
}

/* Reads ch's state as a value equal to want, polling until timeout. */
static bool value_is(yt_channel *ch, const yt_value *want, double timeout)
{
    double end = mono_now() + timeout;
    do {
        yt_msg *m = NULL;
        yt_value *x = NULL;
        bool same = false;
        if (state_recv(ch, &m) == YT_OK && yt_msg_value(m, &x) == YT_OK)
            same = yt_value_equal(x, want);
        yt_value_free(x);
        yt_msg_free(m);
        if (same)
            return true;
        usleep(2000);
    } while (mono_now() < end);
    return false;
}

static void test_object_state(void)
{
    /* A context with a raw peer (to count packages) and a second context (to decode). */
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_context *b = make_ctx(w.loop);
    int port = 0;
    yt_connection *h = bind_any(w.ctx, &port);
    yt_channel *sa, *sb;
    CU_ASSERT_EQUAL_FATAL(yt_state_new(w.ctx, "cfg", YT_OBJECT, &sa), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_state_new(b, "cfg", YT_OBJECT, &sb), YT_OK);
    yt_connection *c = connect_port(b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* b's NEW_CONNECTION reaches a before anything else b sends: once b's first state is
     * there, a has reacted to it (with no state yet, so sending nothing). */
    yt_value *first = yt_value_string("first");
    CU_ASSERT_EQUAL(yt_channel_send_value(sb, first), YT_OK);
    CU_ASSERT_TRUE(value_is(sa, first, 3.0));
    yt_value_free(first);
    yti_header hd;
    char data[256];
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &hd, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(hd.source_id, yt_context_id(b));
    yt_value *v = yt_value_dict();
    yt_value_dict_set_str(v, "debug", yt_value_bool(true));
    yt_value *t = yt_value_tuple();
    yt_value_append(t, yt_value_int(-7));
    yt_value_append(t, yt_value_float(2.5));
    yt_value_dict_set_str(v, "pos", t);
    yt_value *copy = yt_value_copy(v), *other = yt_value_none();
    CU_ASSERT_EQUAL(yt_channel_send_value(sa, v), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_value(sa, copy), YT_OK); /* an equal value: unchanged */
    CU_ASSERT_EQUAL(yt_channel_send_value(sa, other), YT_OK);
    CU_ASSERT_TRUE(value_is(sb, other, 3.0));
    /* The peer decodes exactly what was sent. */
    CU_ASSERT_EQUAL(yt_channel_send_value(sb, v), YT_OK);
    CU_ASSERT_TRUE(value_is(sa, v, 3.0));
    /* On the wire: v, then None (the copy was not sent), then b's v forwarded by a. */
    void *enc = NULL;
    size_t enclen = 0;
    yt_value_encode(v, &enc, &enclen);
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &hd, data, sizeof data, 3.0));
    CU_ASSERT(hd.len == enclen && memcmp(data, enc, enclen) == 0);
    CU_ASSERT_EQUAL(hd.source_id, yt_context_id(w.ctx));
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &hd, data, sizeof data, 3.0));
    CU_ASSERT(hd.len == 1 && data[0] == 'n');
    CU_ASSERT_EQUAL(hd.source_id, yt_context_id(w.ctx));
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &hd, data, sizeof data, 3.0));
    CU_ASSERT(hd.len == enclen && memcmp(data, enc, enclen) == 0);
    CU_ASSERT_EQUAL(hd.source_id, yt_context_id(b));
    free(enc);
    yt_value_free(copy);
    yt_value_free(other);
    yt_value_free(v);
    yt_channel_free(sa);
    yt_channel_free(sb);
    yt_connection_release(h);
    yt_connection_release(c);
    yt_context_free(b);
    wire_down(&w);
}

static void test_zlib_state(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *st;
    CU_ASSERT_EQUAL_FATAL(yt_state_new(w.ctx, "chat", YT_ZLIB(YT_TEXT), &st), YT_OK);
    uint64_t slot = 0;
    yti_slot_hash("chat.zlib-txt.state", strlen("chat.zlib-txt.state"), &slot);
    CU_ASSERT_EQUAL(yt_channel_slot_out(st), slot);
    /* Sent compressed; read back as the inner text. */
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "hello"), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "hello"), YT_OK); /* unchanged */
    CU_ASSERT_TRUE(state_is(st, "hello", 0));
    yti_header h;
    char data[256];
    static const unsigned char hello_z[] = {0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
                                            0x07, 0x00, 0x06, 0x2c, 0x02, 0x15};
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.slot, slot);
    CU_ASSERT(h.len == sizeof hello_z && memcmp(data, hello_z, sizeof hello_z) == 0);
    /* The same text compressed differently (level 0: stored) counts as unchanged. */
    unsigned char zb[64];
    uLongf zlen = sizeof zb;
    CU_ASSERT_EQUAL(compress2(zb, &zlen, (const Bytef *)"world", 5, 0), Z_OK);
    raw_send_pkg(w.fd, slot, 600, 1, 0, 0, zb, zlen);
    CU_ASSERT_TRUE(state_is(st, "world", 3.0));
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "world"), YT_OK);
    /* Garbage does not replace the state and is counted. */
    raw_send_pkg(w.fd, slot, 600, 2, 0, 0, "not zlib", 8);
    raw_send_pkg(w.fd, slot, 600, 3, 0, 0, zb, zlen - 1);
    double end = mono_now() + 3;
    while (yt_channel_discarded(st) < 2 && mono_now() < end)
        usleep(2000);
    CU_ASSERT_EQUAL(yt_channel_discarded(st), 2);
    CU_ASSERT_TRUE(state_is(st, "world", 0));
    /* Only a real change goes out next, and send_last re-sends the compressed bytes. */
    CU_ASSERT_EQUAL(yt_channel_send_text(st, "again"), YT_OK);
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.source_seq, 2);
    yti_pkg *zp = yti_pkg_from(data, (size_t)h.len, 0, 0, 0), *in = NULL;
    CU_ASSERT_EQUAL(yti_zlib_inflate(zp, 100, &in), YT_OK);
    CU_ASSERT_STRING_EQUAL((const char *)in->data, "again");
    yti_pkg_unref(in);
    yti_pkg_unref(zp);
    raw_send_pkg(w.fd, slot, 600, 4, 0, 0, zb, zlen);
    CU_ASSERT_TRUE(state_is(st, "world", 3.0));
    CU_ASSERT_EQUAL(yt_state_send_last(st), YT_OK);
    CU_ASSERT_TRUE_FATAL(read_state_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.source_seq, 3);
    CU_ASSERT(h.len == zlen && memcmp(data, zb, zlen) == 0);
    yt_channel_free(st);
    wire_down(&w);
}

typedef struct race {
    yt_channel *st;
    int id;
} race;

static void *set_many(void *arg)
{
    race *r = arg;
    char buf[32];
    for (int i = 0; i < 300; i++) {
        snprintf(buf, sizeof buf, "%d-%d", r->id, i);
        yt_channel_send_text(r->st, buf);
        yt_msg *m = NULL;
        if (state_recv(r->st, &m) == YT_OK)
            yt_msg_free(m);
    }
    return NULL;
}

static void test_concurrent_senders_and_arrivals(void)
{
    /* Two threads set the state while a peer's values arrive: no crash, no leak, and the
     * channel ends with one of the values that were set. */
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *a = make_ctx(loop), *b = make_ctx(loop);
    yt_channel *sa, *sb;
    yt_state_new(a, "race", YT_TEXT, &sa);
    yt_state_new(b, "race", YT_TEXT, &sb);
    int port = 0;
    yt_connection *h = bind_any(a, &port);
    yt_connection *c = connect_port(b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    race r1 = {sa, 1}, r2 = {sa, 2}, r3 = {sb, 3};
    pthread_t t1, t2, t3;
    pthread_create(&t1, NULL, set_many, &r1);
    pthread_create(&t2, NULL, set_many, &r2);
    pthread_create(&t3, NULL, set_many, &r3);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    yt_channel_send_text(sb, "final");
    CU_ASSERT_TRUE(state_is(sa, "final", 3.0));
    yt_channel_free(sa);
    yt_channel_free(sb);
    yt_connection_release(h);
    yt_connection_release(c);
    yt_context_free(b);
    yt_context_free(a);
    yt_loop_free(loop);
}

void yt_suite_state(void)
{
    static const yt_test_def t[] = {
        {"exact packages on the wire; unchanged values not re-sent",
         test_exact_packages_on_the_wire},
        {"last arrival wins", test_last_arrival_wins},
        {"recv before any state, errors", test_recv_before_any_state},
        {"a late joiner learns the state (NEW_CONNECTION)", test_late_joiner_learns_the_state},
        {"object state with yt_value", test_object_state},
        {"zlib state", test_zlib_state},
        {"concurrent senders and arrivals", test_concurrent_senders_and_arrivals},
        {NULL, NULL}};
    yt_add_suite("state", t);
}

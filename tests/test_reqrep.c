/*
 * Request/reply over real loopback contexts: every value type through a call, remote errors,
 * the built-in echo, the exact packages of both sides against a raw-socket peer, lost links,
 * time-outs, cancelling and auto-cancel, done callbacks through the loop, load balancing
 * between repliers, the three replier modes, handlers that close their own channel, and close
 * waking a blocked result. No test processes an event loop unless it says so: futures and
 * thread-mode repliers must make progress without one.
 */
#include "hash.h"
#include "netutil.h"
#include "package.h"
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RAW_ID UINT64_C(0xabcdef0123456789)
#define REF UINT64_C(0x8000000000000000)

/* ---- two connected contexts, each with a private loop that nobody processes ---- */

typedef struct pair {
    yt_loop *la, *lb;
    yt_context *a, *b;
    yt_connection *ca, *cb;
} pair;

static void pair_up(pair *p)
{
    memset(p, 0, sizeof *p);
    yt_loop_new(&p->la);
    yt_loop_new(&p->lb);
    p->a = make_ctx(p->la);
    p->b = make_ctx(p->lb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->b);
    int port = 0;
    p->ca = bind_any(p->a, &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ca);
    p->cb = connect_port(p->b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->cb);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, p->ca, 3.0));
}

static void pair_down(pair *p)
{
    yt_connection_release(p->ca);
    yt_connection_release(p->cb);
    yt_context_free(p->a);
    yt_context_free(p->b);
    yt_loop_free(p->la);
    yt_loop_free(p->lb);
}

/* ---- a context bound at an ephemeral port, with a raw client that did the handshake ---- */

static void send_hex(int fd, uint64_t slot, uint64_t src, uint64_t seq, uint64_t dest,
                     uint64_t dest_seq, const char *hex)
{
    size_t len = 0;
    unsigned char *b = yt_hex_decode(hex, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    raw_send_pkg(fd, slot, src, seq, dest, dest_seq, b, len);
    free(b);
}

/* The next package that is not a `req?` resend. */
static bool read_pkg_skip_announce(int fd, yti_header *h, unsigned char *data, size_t cap,
                                   double timeout)
{
    double end = mono_now() + timeout;
    while (raw_read_pkg(fd, h, data, cap, end - mono_now()))
        if (strcmp((char *)data, "req?") != 0)
            return true;
    return false;
}

/* String asserts crash on NULL: a failing call must fail the test, not the runner. */
static const char *s0(const char *s)
{
    return s ? s : "(null)";
}

static char *hex_of(const unsigned char *data, uint64_t len)
{
    return yt_hex_encode(data, (size_t)len);
}

/* ---- handlers ---- */

/* Returns (args, kwargs) as received. */
static yt_value *h_ident(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                         size_t errsize)
{
    (void)user, (void)err, (void)errsize;
    yt_value *t = yt_value_tuple();
    yt_value_append(t, yt_value_copy(args));
    yt_value_append(t, yt_value_copy(kwargs));
    return t;
}

static yt_value *h_fail(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                        size_t errsize)
{
    (void)args, (void)kwargs, (void)user;
    snprintf(err, errsize, "boom: %s", "it failed");
    return NULL;
}

static yt_value *h_none(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                        size_t errsize)
{
    (void)args, (void)kwargs, (void)user, (void)err, (void)errsize;
    return yt_value_none();
}

/* add(a, b) */
static yt_value *h_add(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                       size_t errsize)
{
    (void)kwargs, (void)user;
    int64_t a = 0, b = 0;
    if (yt_value_as_int(yt_value_item(args, 0), &a) ||
        yt_value_as_int(yt_value_item(args, 1), &b)) {
        snprintf(err, errsize, "add needs two ints");
        return NULL;
    }
    return yt_value_int(a + b);
}

/* Sleeps user (a double *) seconds, then returns the thread's name tag. */
typedef struct worker {
    const char *name;
    double sleep;
    int served;
    pthread_mutex_t m;
} worker;

static yt_value *h_work(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                        size_t errsize)
{
    (void)args, (void)kwargs, (void)err, (void)errsize;
    worker *w = user;
    if (w->sleep > 0)
        usleep((useconds_t)(w->sleep * 1e6));
    pthread_mutex_lock(&w->m);
    w->served++;
    pthread_mutex_unlock(&w->m);
    return yt_value_string(w->name);
}

static yt_value *args2(yt_value *a, yt_value *b)
{
    yt_value *t = yt_value_tuple();
    yt_value_append(t, a);
    if (b)
        yt_value_append(t, b);
    return t;
}

static bool done_pred(void *f)
{
    return yt_future_done(f);
}

/* ------------------------------------------------------------------------------------------ */

static void test_call_with_every_type(void)
{
    pair p;
    pair_up(&p);
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "ident", h_ident, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "none", h_none, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_THREAD), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    CU_ASSERT_EQUAL(yt_channel_slot_out(req), slot_of("svc", "obj", "req-rep"));
    CU_ASSERT_EQUAL(yt_channel_slot_in(req), slot_of("svc", "obj", "rep-req"));
    CU_ASSERT_EQUAL(yt_channel_slot_out(rep), slot_of("svc", "obj", "rep-req"));
    CU_ASSERT_EQUAL(yt_channel_slot_in(rep), slot_of("svc", "obj", "req-rep"));

    /* Positional args as a list: the handler sees a tuple. */
    yt_value *args = yt_value_list();
    yt_value *inner = yt_value_list();
    yt_value_append(inner, yt_value_int(1));
    yt_value_append(inner, yt_value_string("x"));
    yt_value *tup = args2(yt_value_int(2), NULL);
    yt_value *d = yt_value_dict();
    yt_value_dict_set_str(d, "k", yt_value_int(1));
    yt_value_dict_set(d, yt_value_int(3), args2(yt_value_none(), NULL));
    yt_value_append(args, yt_value_none());
    yt_value_append(args, yt_value_bool(true));
    yt_value_append(args, yt_value_bool(false));
    yt_value_append(args, yt_value_int(42));
    yt_value_append(args, yt_value_int(INT64_MIN));
    yt_value_append(args, yt_value_float(-1.5));
    yt_value_append(args, yt_value_string("h\xc3\xa9llo \xe2\x82\xac"));
    yt_value_append(args, yt_value_string(""));
    yt_value_append(args, inner);
    yt_value_append(args, tup);
    yt_value_append(args, d);
    yt_value *kwargs = yt_value_dict();
    yt_value_dict_set_str(kwargs, "n", yt_value_none());
    yt_value_dict_set_str(kwargs, "b", yt_value_bool(true));
    yt_value_dict_set_str(kwargs, "i", yt_value_int(-7));
    yt_value_dict_set_str(kwargs, "f", yt_value_float(2.25));
    yt_value_dict_set_str(kwargs, "s", yt_value_string("text"));
    yt_value_dict_set_str(kwargs, "l", yt_value_copy(yt_value_item(args, 8)));
    yt_value_dict_set_str(kwargs, "t", yt_value_copy(yt_value_item(args, 9)));
    yt_value_dict_set_str(kwargs, "d", yt_value_copy(yt_value_item(args, 10)));

    yt_future *f = NULL;
    double t0 = mono_now();
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "ident", args, kwargs, &f), YT_OK);
    yt_value *res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
    CU_ASSERT(mono_now() - t0 < 2.0);
    yt_value *want_args = yt_value_tuple();
    for (size_t i = 0; i < yt_value_len(args); i++)
        yt_value_append(want_args, yt_value_copy(yt_value_item(args, i)));
    yt_value *want = args2(want_args, yt_value_copy(kwargs));
    CU_ASSERT_TRUE(yt_value_equal(res, want));
    CU_ASSERT_EQUAL(yt_value_type_of(yt_value_item(res, 0)), YT_TUPLE);
    CU_ASSERT_TRUE(yt_future_done(f));
    CU_ASSERT_FALSE(yt_future_running(f));
    CU_ASSERT_FALSE(yt_future_cancelled(f));
    CU_ASSERT_PTR_NULL(yt_future_exception(f));
    /* Each result is a fresh copy owned by the caller. */
    yt_value *res2 = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 0, &res2), YT_OK);
    CU_ASSERT_PTR_NOT_EQUAL(res, res2);
    CU_ASSERT_TRUE(yt_value_equal(res2, want));
    yt_value_free(res);
    yt_value_free(res2);
    yt_value_free(want);
    yt_future_free(f);

    /* No args, no kwargs: () and {}. A handler returning None gives None. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "ident", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
    CU_ASSERT_EQUAL(yt_value_type_of(yt_value_item(res, 0)), YT_TUPLE);
    CU_ASSERT_EQUAL(yt_value_len(yt_value_item(res, 0)), 0);
    CU_ASSERT_EQUAL(yt_value_type_of(yt_value_item(res, 1)), YT_DICT);
    CU_ASSERT_EQUAL(yt_value_len(yt_value_item(res, 1)), 0);
    yt_value_free(res);
    yt_future_free(f);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "none", args, NULL, &f), YT_OK);
    res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
    CU_ASSERT_PTR_NOT_NULL(res);
    CU_ASSERT_EQUAL(yt_value_type_of(res), YT_NONE);
    yt_value_free(res);
    yt_future_free(f);

    yt_value_free(args);
    yt_value_free(kwargs);
    yt_channel_free(req);
    yt_channel_free(rep);
    pair_down(&p);
}

static void test_remote_errors(void)
{
    pair p;
    pair_up(&p);
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_register(rep, "fail", h_fail, NULL);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    yt_future *f = NULL;
    yt_value *res = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "nope", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_EREMOTE);
    CU_ASSERT_PTR_NULL(res);
    CU_ASSERT_STRING_EQUAL(s0(yt_future_exception(f)), "Method 'nope' not implemented.");
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Method 'nope' not implemented.");
    CU_ASSERT_TRUE(yt_future_done(f));
    CU_ASSERT_FALSE(yt_future_cancelled(f));
    yt_future_free(f);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "fail", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_EREMOTE);
    CU_ASSERT_STRING_EQUAL(s0(yt_future_exception(f)), "boom: it failed\n");
    yt_future_free(f);
    /* Registered names only: internal-looking names are unknown as any other. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "_handle_request", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_EREMOTE);
    CU_ASSERT_STRING_EQUAL(s0(yt_future_exception(f)), "Method '_handle_request' not implemented.");
    yt_future_free(f);
    yt_channel_free(req);
    yt_channel_free(rep);
    pair_down(&p);
}

static void test_echo(void)
{
    pair p;
    pair_up(&p);
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    char hex[32];
    snprintf(hex, sizeof hex, "0x%" PRIx64, yt_context_id(p.b));
    yt_value *args = args2(yt_value_string("hi"), NULL);
    yt_future *f = NULL;
    yt_value *res = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", args, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
    yt_value *want = args2(yt_value_string("hi"), yt_value_string(hex));
    CU_ASSERT_TRUE(yt_value_equal(res, want));
    yt_value_free(want);
    yt_value_free(res);
    yt_future_free(f);

    /* sleep as a keyword, then as the second positional argument. */
    yt_value *kw = yt_value_dict();
    yt_value_dict_set_str(kw, "sleep", yt_value_float(0.3));
    double t0 = mono_now();
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", args, kw, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
    double dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.3 && dt < 2.0);
    CU_ASSERT_STRING_EQUAL(s0(yt_value_as_string(yt_value_item(res, 1), NULL)), hex);
    yt_value_free(res);
    yt_future_free(f);
    yt_value *args_sleep = args2(yt_value_int(5), yt_value_float(0.2));
    t0 = mono_now();
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", args_sleep, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_OK);
    dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.2 && dt < 2.0);
    want = args2(yt_value_int(5), yt_value_string(hex));
    CU_ASSERT_TRUE(yt_value_equal(res, want));
    yt_value_free(want);
    yt_value_free(res);
    yt_future_free(f);
    /* Missing argument: an error reply in Python's words. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 5.0, &res), YT_EREMOTE);
    CU_ASSERT_STRING_EQUAL(s0(yt_future_exception(f)),
                           "echo() missing 1 required positional argument: 'arg1'\n");
    yt_future_free(f);
    yt_value_free(args_sleep);
    yt_value_free(kw);
    yt_value_free(args);
    yt_channel_free(req);
    yt_channel_free(rep);
    pair_down(&p);
}

/* The requester's packages, byte for byte, against a fake replier on a raw socket. */
static void test_requester_on_the_wire(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(w.ctx, "calc", &req), YT_OK);
    uint64_t out = slot_of("calc", "obj", "req-rep"), in = slot_of("calc", "obj", "rep-req");
    uint64_t me = yt_context_id(w.ctx);
    yt_value *args = args2(yt_value_int(3), yt_value_int(4));
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", args, NULL, &f), YT_OK);
    yti_header h;
    unsigned char data[256];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.slot, out);
    CU_ASSERT_EQUAL(h.source_id, me);
    CU_ASSERT_EQUAL(h.dest_id, 0);
    CU_ASSERT_EQUAL(h.dest_seq, REF + 1);
    CU_ASSERT_STRING_EQUAL((char *)data, "req?");
    uint64_t seq = h.source_seq;

    /* Unacknowledged: announced again after 0.5 s (driven by the waiting caller). */
    yt_value *res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 0.3, &res), YT_ETIMEDOUT);
    CU_ASSERT_FALSE(raw_read_pkg(w.fd, &h, data, sizeof data, 0.05));
    CU_ASSERT_EQUAL(yt_future_result(f, 0.4, &res), YT_ETIMEDOUT);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 0.5));
    CU_ASSERT_STRING_EQUAL((char *)data, "req?");
    CU_ASSERT_EQUAL(h.dest_seq, REF + 1);
    CU_ASSERT(h.source_seq > seq);
    CU_ASSERT_FALSE(yt_future_running(f));

    /* A broadcast acknowledgement (dest_id 0) is not for the requester: ignored. */
    raw_send_pkg(w.fd, in, RAW_ID + 7, 1, 0, REF + 1, "req!", 4);
    CU_ASSERT_FALSE(read_pkg_skip_announce(w.fd, &h, data, sizeof data, 0.3));
    CU_ASSERT_FALSE(yt_future_running(f));

    /* The acknowledgement: the request goes out from the receive path (nobody waits). */
    raw_send_pkg(w.fd, in, RAW_ID, 1, me, REF + 1, "req!", 4);
    CU_ASSERT_TRUE_FATAL(read_pkg_skip_announce(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.slot, out);
    CU_ASSERT_EQUAL(h.source_id, me);
    CU_ASSERT_EQUAL(h.dest_id, RAW_ID);
    CU_ASSERT_EQUAL(h.dest_seq, 1);
    char *hx = hex_of(data, h.len);
    CU_ASSERT_STRING_EQUAL(hx, "7403730361646474026903000000000000006904000000000000006400");
    free(hx);
    seq = h.source_seq;
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.slot, out);
    CU_ASSERT_EQUAL(h.dest_id, 0);
    CU_ASSERT_EQUAL(h.dest_seq, REF + 1);
    CU_ASSERT_EQUAL(h.source_seq, seq + 1);
    CU_ASSERT_STRING_EQUAL((char *)data, "req-");
    CU_ASSERT_TRUE(yt_future_running(f));
    CU_ASSERT_FALSE(yt_future_cancel(f));
    CU_ASSERT_TRUE(yt_future_running(f));

    /* A second replier acknowledging late gets nothing: a request runs once. */
    raw_send_pkg(w.fd, in, RAW_ID + 5, 1, me, REF + 1, "req!", 4);
    /* A reply from someone who did not get the request is ignored. */
    send_hex(w.fd, in, RAW_ID + 5, 2, me, 1, "696300000000000000");
    CU_ASSERT_FALSE(raw_read_pkg(w.fd, &h, data, sizeof data, 0.3));
    CU_ASSERT_EQUAL(yt_future_result(f, 0.1, &res), YT_ETIMEDOUT);

    /* The reply (the reference's bytes for 7) completes the future. */
    send_hex(w.fd, in, RAW_ID, 2, me, 1, "690700000000000000");
    CU_ASSERT_EQUAL(yt_future_result(f, 2.0, &res), YT_OK);
    int64_t v = 0;
    CU_ASSERT_EQUAL(yt_value_as_int(res, &v), YT_OK);
    CU_ASSERT_EQUAL(v, 7);
    yt_value_free(res);
    yt_future_free(f);

    /* Request ids count on: the next call is id 2. An error tuple from the replier. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", args, NULL, &f), YT_OK);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, REF + 2);
    raw_send_pkg(w.fd, in, RAW_ID, 3, me, REF + 2, "req!", 4);
    CU_ASSERT_TRUE_FATAL(read_pkg_skip_announce(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, 2);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL((char *)data, "req-");
    /* ("yoton_ERROR_HANDLING_REQUEST", "bad\n") */
    send_hex(w.fd, in, RAW_ID, 4, me, 2,
             "740273""1c""796f746f6e5f4552524f525f48414e444c494e475f52455155455354"
             "7304""6261640a");
    CU_ASSERT_EQUAL(yt_future_result(f, 2.0, &res), YT_EREMOTE);
    CU_ASSERT_STRING_EQUAL(s0(yt_future_exception(f)), "bad\n");
    yt_future_free(f);
    /* An undecodable reply fails the call with YT_EDECODE. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", args, NULL, &f), YT_OK);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, REF + 3);
    raw_send_pkg(w.fd, in, RAW_ID, 5, me, REF + 3, "req!", 4);
    CU_ASSERT_TRUE_FATAL(read_pkg_skip_announce(w.fd, &h, data, sizeof data, 2.0));
    raw_send_pkg(w.fd, in, RAW_ID, 6, me, 3, "\x01", 1);
    CU_ASSERT_EQUAL(yt_future_result(f, 2.0, &res), YT_EDECODE);
    yt_future_free(f);

    yt_value_free(args);
    yt_channel_free(req);
    wire_down(&w);
}

/* The replier's packages, byte for byte, against a fake requester on a raw socket. */
static void test_replier_on_the_wire(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *rep;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(w.ctx, "calc", &rep), YT_OK);
    yt_rep_register(rep, "add", h_add, NULL);
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_THREAD), YT_OK);
    uint64_t out = slot_of("calc", "obj", "rep-req"), in = slot_of("calc", "obj", "req-rep");
    uint64_t me = yt_context_id(w.ctx);
    yti_header h;
    unsigned char data[256];
    /* Two announcements from two requesters: only the first is acknowledged for now. */
    raw_send_pkg(w.fd, in, RAW_ID, 1, 0, REF + 1, "req?", 4);
    raw_send_pkg(w.fd, in, RAW_ID + 1, 1, 0, REF + 9, "req?", 4);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.slot, out);
    CU_ASSERT_EQUAL(h.source_id, me);
    CU_ASSERT_EQUAL(h.dest_id, RAW_ID);
    CU_ASSERT_EQUAL(h.dest_seq, REF + 1);
    CU_ASSERT_STRING_EQUAL((char *)data, "req!");
    CU_ASSERT_FALSE(raw_read_pkg(w.fd, &h, data, sizeof data, 0.3));
    /* The request (the spec's example bytes) and its reply: 7. */
    send_hex(w.fd, in, RAW_ID, 2, me, 1,
             "7403730361646474026903000000000000006904000000000000006400");
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    char *hx = hex_of(data, h.len);
    CU_ASSERT_STRING_EQUAL(hx, "690700000000000000");
    free(hx);
    CU_ASSERT_EQUAL(h.dest_id, RAW_ID);
    CU_ASSERT_EQUAL(h.dest_seq, 1);
    /* Free again: the other requester's announcement is acknowledged now. */
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL((char *)data, "req!");
    CU_ASSERT_EQUAL(h.dest_id, RAW_ID + 1);
    CU_ASSERT_EQUAL(h.dest_seq, REF + 9);
    /* That requester withdraws (it chose someone else): the next one is acknowledged. */
    raw_send_pkg(w.fd, in, RAW_ID, 3, 0, REF + 2, "req?", 4);
    CU_ASSERT_FALSE(raw_read_pkg(w.fd, &h, data, sizeof data, 0.2));
    raw_send_pkg(w.fd, in, RAW_ID + 1, 2, 0, REF + 9, "req-", 4);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_id, RAW_ID);
    CU_ASSERT_EQUAL(h.dest_seq, REF + 2);
    /* An unknown method: the error tuple, exactly. */
    send_hex(w.fd, in, RAW_ID, 4, me, 2, "74037304616263647400" "6400");
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    yt_value *v = NULL;
    CU_ASSERT_EQUAL(yt_value_decode(data, (size_t)h.len, &v), YT_OK);
    yt_value *want = args2(yt_value_string("yoton_ERROR_HANDLING_REQUEST"),
                           yt_value_string("Method 'abcd' not implemented."));
    CU_ASSERT_TRUE(yt_value_equal(v, want));
    void *enc = NULL;
    size_t len = 0;
    yt_value_encode(want, &enc, &len);
    CU_ASSERT_EQUAL(len, h.len);
    CU_ASSERT_EQUAL(memcmp(enc, data, len), 0);
    free(enc);
    yt_value_free(want);
    yt_value_free(v);
    CU_ASSERT_EQUAL(h.dest_seq, 2);
    /* Garbage as a request gets an error reply, and the replier goes on. */
    raw_send_pkg(w.fd, in, RAW_ID, 5, 0, REF + 3, "req?", 4);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, REF + 3);
    raw_send_pkg(w.fd, in, RAW_ID, 6, me, 3, "\xff\x01", 2);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, 3);
    CU_ASSERT_EQUAL(yt_value_decode(data, (size_t)h.len, &v), YT_OK);
    CU_ASSERT_STRING_EQUAL(s0(yt_value_as_string(yt_value_item(v, 0), NULL)),
                           "yoton_ERROR_HANDLING_REQUEST");
    yt_value_free(v);
    yt_channel_free(rep);
    wire_down(&w);
}

static void test_connection_lost_while_running(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(w.ctx, "calc", &req), YT_OK);
    uint64_t in = slot_of("calc", "obj", "rep-req");
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    yti_header h;
    unsigned char data[256];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    raw_send_pkg(w.fd, in, RAW_ID, 1, yt_context_id(w.ctx), REF + 1, "req!", 4);
    CU_ASSERT_TRUE_FATAL(read_pkg_skip_announce(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, 1);
    CU_ASSERT_TRUE(yt_future_running(f));
    yt_value *res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 0.2, &res), YT_ETIMEDOUT);
    double t0 = mono_now();
    close(w.fd);
    w.fd = -1;
    CU_ASSERT_EQUAL(yt_future_result(f, 8.0, &res), YT_ECONNLOST);
    CU_ASSERT(mono_now() - t0 < 1.5); /* the auto-cancel (10 s) has nothing to do with it */
    CU_ASSERT_STRING_EQUAL(s0(yt_future_exception(f)),
                           "Connection lost: the replier's connection closed before it replied.");
    CU_ASSERT_TRUE(yt_future_done(f));
    CU_ASSERT_FALSE(yt_future_running(f));
    CU_ASSERT_FALSE(yt_future_cancelled(f));
    yt_future_free(f);
    yt_channel_free(req);
    wire_down(&w);
}

static void test_timeout_leaves_it_pending(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop); /* nobody there: the announcement waits for a link */
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(ctx, "svc", &req), YT_OK);
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "x", NULL, NULL, &f), YT_OK);
    yt_value *res = NULL;
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_future_result(f, 0.25, &res), YT_ETIMEDOUT);
    double dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.24 && dt < 0.8);
    CU_ASSERT_PTR_NULL(res);
    t0 = mono_now();
    CU_ASSERT_EQUAL(yt_future_result(f, 0, &res), YT_ETIMEDOUT);
    CU_ASSERT(mono_now() - t0 < 0.1);
    CU_ASSERT_FALSE(yt_future_done(f));
    CU_ASSERT_FALSE(yt_future_running(f));
    CU_ASSERT_FALSE(yt_future_cancelled(f));
    CU_ASSERT_PTR_NULL(yt_future_exception(f));
    /* result_or_cancel: times out, cancels. */
    t0 = mono_now();
    CU_ASSERT_EQUAL(yt_future_result_or_cancel(f, 0.1, &res), YT_ECANCELED);
    dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.09 && dt < 0.6);
    CU_ASSERT_TRUE(yt_future_cancelled(f));
    CU_ASSERT_EQUAL(yt_future_result(f, 0, &res), YT_ECANCELED);
    yt_future_free(f);
    /* Freeing a pending future is fine too (it cancels). */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "x", NULL, NULL, &f), YT_OK);
    yt_future_free(f);
    yt_channel_free(req);
    yt_context_free(ctx);
    yt_loop_free(loop);
}

static void test_cancel(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(w.ctx, "calc", &req), YT_OK);
    uint64_t in = slot_of("calc", "obj", "rep-req");
    uint64_t me = yt_context_id(w.ctx);
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    yti_header h;
    unsigned char data[256];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_FALSE(yt_future_done(f));
    CU_ASSERT_TRUE(yt_future_cancel(f));
    CU_ASSERT_TRUE(yt_future_cancelled(f));
    CU_ASSERT_TRUE(yt_future_done(f));
    CU_ASSERT_FALSE(yt_future_running(f));
    CU_ASSERT_TRUE(yt_future_cancel(f)); /* still cancelled */
    yt_value *res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 1.0, &res), YT_ECANCELED);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL((char *)data, "req-");
    CU_ASSERT_EQUAL(h.dest_id, 0);
    CU_ASSERT_EQUAL(h.dest_seq, REF + 1);
    /* A late acknowledgement of a cancelled request sends nothing. */
    raw_send_pkg(w.fd, in, RAW_ID, 1, me, REF + 1, "req!", 4);
    CU_ASSERT_FALSE(raw_read_pkg(w.fd, &h, data, sizeof data, 0.3));
    yt_future_free(f);
    /* Freeing a pending future withdraws it as well. */
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_EQUAL(h.dest_seq, REF + 2);
    yt_future_free(f);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL((char *)data, "req-");
    CU_ASSERT_EQUAL(h.dest_seq, REF + 2);
    yt_channel_free(req);
    wire_down(&w);
}

static void test_auto_cancel(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(w.ctx, "calc", &req), YT_OK);
    CU_ASSERT_EQUAL(yt_req_set_auto_cancel_timeout(req, 0.3), YT_OK);
    yt_future *f = NULL;
    yt_value *res = NULL;
    double t0 = mono_now();
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 3.0, &res), YT_ECANCELED);
    double dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.29 && dt < 0.8);
    CU_ASSERT_TRUE(yt_future_cancelled(f));
    yt_future_free(f);
    /* On the wire: the announcement, then the withdrawal. */
    yti_header h;
    unsigned char data[256];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL((char *)data, "req?");
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_STRING_EQUAL((char *)data, "req-");
    CU_ASSERT_EQUAL(h.dest_seq, REF + 1);

    /* Per future, counted from the call. */
    CU_ASSERT_EQUAL(yt_req_set_auto_cancel_timeout(req, 10.0), YT_OK);
    t0 = mono_now();
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_set_auto_cancel_timeout(f, 0.2), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 3.0, &res), YT_ECANCELED);
    dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.19 && dt < 0.7);
    yt_future_free(f);
    /* Negative: never. */
    CU_ASSERT_EQUAL(yt_req_set_auto_cancel_timeout(req, 0.1), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_set_auto_cancel_timeout(f, -1), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 0.4, &res), YT_ETIMEDOUT);
    CU_ASSERT_FALSE(yt_future_cancelled(f));
    yt_future_free(f);
    yt_channel_free(req);
    wire_down(&w);
}

typedef struct cbrec {
    int count;
    yt_future *seen[8];
    int tag[8];
} cbrec;

static cbrec g_cb;

static void on_done(yt_future *f, void *user)
{
    if (g_cb.count < 8) {
        g_cb.seen[g_cb.count] = f;
        g_cb.tag[g_cb.count] = (int)(intptr_t)user;
    }
    g_cb.count++;
}

static bool cb_pred(void *n)
{
    return g_cb.count >= *(int *)n;
}

static void test_done_callbacks(void)
{
    pair p;
    pair_up(&p);
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    memset(&g_cb, 0, sizeof g_cb);
    yt_value *args = args2(yt_value_int(1), NULL);
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "echo", args, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_add_done_callback(f, on_done, (void *)1), YT_OK);
    CU_ASSERT_EQUAL(yt_future_add_done_callback(f, on_done, (void *)2), YT_OK);
    CU_ASSERT_EQUAL(yt_future_add_done_callback(f, NULL, NULL), YT_EINVAL);
    /* Done without the loop; the callbacks wait for it. */
    CU_ASSERT_TRUE(wait_until(NULL, done_pred, f, 5.0));
    CU_ASSERT_EQUAL(g_cb.count, 0);
    yt_loop_process(p.la, 0);
    CU_ASSERT_EQUAL(g_cb.count, 2);
    CU_ASSERT_PTR_EQUAL(g_cb.seen[0], f);
    CU_ASSERT_EQUAL(g_cb.tag[0], 1);
    CU_ASSERT_EQUAL(g_cb.tag[1], 2);
    /* Added when already done: queued, runs at the next processing. */
    CU_ASSERT_EQUAL(yt_future_add_done_callback(f, on_done, (void *)3), YT_OK);
    CU_ASSERT_EQUAL(g_cb.count, 2);
    yt_loop_process(p.la, 0);
    CU_ASSERT_EQUAL(g_cb.count, 3);
    CU_ASSERT_EQUAL(g_cb.tag[2], 3);
    /* Freed while its callback is queued: the callback is skipped, nothing leaks. */
    CU_ASSERT_EQUAL(yt_future_add_done_callback(f, on_done, (void *)4), YT_OK);
    yt_future_free(f);
    yt_loop_process(p.la, 0);
    CU_ASSERT_EQUAL(g_cb.count, 3);
    yt_channel_free(req);
    yt_channel_free(rep);
    pair_down(&p);
    yt_value_free(args);

    /* Cancelled by the auto-cancel with nobody calling into the future: the loop's timer
     * drives it, and the callback runs. */
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(ctx, "svc", &req), YT_OK);
    yt_req_set_auto_cancel_timeout(req, 0.2);
    memset(&g_cb, 0, sizeof g_cb);
    double t0 = mono_now();
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "x", NULL, NULL, &f), YT_OK);
    yt_future_add_done_callback(f, on_done, (void *)5);
    int one = 1;
    CU_ASSERT_TRUE(wait_until(loop, cb_pred, &one, 3.0));
    double dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.19 && dt < 1.0);
    CU_ASSERT_EQUAL(g_cb.tag[0], 5);
    CU_ASSERT_TRUE(yt_future_cancelled(f));
    yt_future_free(f);
    yt_channel_free(req);
    yt_context_free(ctx);
    yt_loop_free(loop);
}

typedef struct call_arg {
    yt_future *f;
    int rc;
    double took;
} call_arg;

static void *wait_result_thread(void *arg)
{
    call_arg *c = arg;
    yt_value *res = NULL;
    double t0 = mono_now();
    c->rc = yt_future_result(c->f, 5.0, &res);
    c->took = mono_now() - t0;
    yt_value_free(res);
    return NULL;
}

static void test_load_balancing(void)
{
    /* R in the middle, a fast and a slow replier each on their own link. */
    yt_loop *lr, *lf, *ls;
    yt_loop_new(&lr), yt_loop_new(&lf), yt_loop_new(&ls);
    yt_context *r = make_ctx(lr), *fc = make_ctx(lf), *sc = make_ctx(ls);
    int p1 = 0, p2 = 0;
    yt_connection *c1 = bind_any(r, &p1), *c2 = bind_any(r, &p2);
    yt_connection *cf = connect_port(fc, p1), *cs = connect_port(sc, p2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cs);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, c1, 3.0));
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, c2, 3.0));
    worker fast = {"fast", 0, 0, PTHREAD_MUTEX_INITIALIZER};
    worker slow = {"slow", 1.0, 0, PTHREAD_MUTEX_INITIALIZER};
    yt_channel *rf, *rs, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(fc, "work", &rf), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(sc, "work", &rs), YT_OK);
    yt_rep_register(rf, "work", h_work, &fast);
    yt_rep_register(rs, "work", h_work, &slow);
    yt_rep_set_mode(rf, YT_REP_THREAD);
    yt_rep_set_mode(rs, YT_REP_THREAD);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(r, "work", &req), YT_OK);
    yt_future *f[4];
    double t0 = mono_now();
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "work", NULL, NULL, &f[i]), YT_OK);
    int nfast = 0;
    for (int i = 0; i < 4; i++) {
        yt_value *res = NULL;
        CU_ASSERT_EQUAL(yt_future_result(f[i], 5.0, &res), YT_OK);
        const char *s = yt_value_as_string(res, NULL);
        nfast += s && strcmp(s, "fast") == 0;
        yt_value_free(res);
        yt_future_free(f[i]);
    }
    double dt = mono_now() - t0;
    /* Serially on the slow one this takes 4 s; the slow one takes at most one. */
    CU_ASSERT(dt < 2.0);
    CU_ASSERT(nfast >= 3);
    CU_ASSERT_EQUAL(fast.served, nfast);
    CU_ASSERT_EQUAL(slow.served + fast.served, 4);
    yt_channel_free(rf);
    yt_channel_free(rs);

    /* Both busy (0.2 s a call), 10 calls: most wait long enough to be announced again while
     * acknowledgements arrive; every call still runs once, the two share the work, and no
     * replier is left waiting for a request that never comes. */
    worker b1 = {"b1", 0.2, 0, PTHREAD_MUTEX_INITIALIZER};
    worker b2 = {"b2", 0.2, 0, PTHREAD_MUTEX_INITIALIZER};
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(fc, "work", &rf), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(sc, "work", &rs), YT_OK);
    yt_rep_register(rf, "work", h_work, &b1);
    yt_rep_register(rs, "work", h_work, &b2);
    yt_rep_set_mode(rf, YT_REP_THREAD);
    yt_rep_set_mode(rs, YT_REP_THREAD);
    yt_future *g[10];
    t0 = mono_now();
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "work", NULL, NULL, &g[i]), YT_OK);
    for (int i = 0; i < 10; i++) {
        yt_value *res = NULL;
        CU_ASSERT_EQUAL(yt_future_result(g[i], 5.0, &res), YT_OK);
        yt_value_free(res);
        yt_future_free(g[i]);
    }
    dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.9 && dt < 2.5); /* 10 x 0.2 s on two repliers: about 1 s */
    CU_ASSERT_EQUAL(b1.served + b2.served, 10);
    CU_ASSERT(b1.served >= 3 && b2.served >= 3);
    yt_channel_free(rf);
    yt_channel_free(rs);

    /* A replier in mode OFF (nobody calls yt_rep_process) never acknowledges, so it takes
     * nothing from a working one. */
    yt_channel *roff, *ron;
    worker w1 = {"off", 0, 0, PTHREAD_MUTEX_INITIALIZER};
    worker w2 = {"on", 0, 0, PTHREAD_MUTEX_INITIALIZER};
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(fc, "work", &roff), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(sc, "work", &ron), YT_OK);
    yt_rep_register(roff, "work", h_work, &w1);
    yt_rep_register(ron, "work", h_work, &w2);
    yt_rep_set_mode(ron, YT_REP_THREAD);
    t0 = mono_now();
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "work", NULL, NULL, &f[i]), YT_OK);
    for (int i = 0; i < 3; i++) {
        yt_value *res = NULL;
        CU_ASSERT_EQUAL(yt_future_result(f[i], 5.0, &res), YT_OK);
        CU_ASSERT_STRING_EQUAL(s0(yt_value_as_string(res, NULL)), "on");
        yt_value_free(res);
        yt_future_free(f[i]);
    }
    CU_ASSERT(mono_now() - t0 < 1.5);
    CU_ASSERT_EQUAL(w2.served, 3);
    /* What reached the idle replier was announcements and withdrawals only. */
    CU_ASSERT_EQUAL(yt_rep_process(roff, 0), 0);
    CU_ASSERT_EQUAL(w1.served, 0);
    yt_channel_free(roff);
    yt_channel_free(ron);
    yt_channel_free(req);
    yt_connection_release(c1), yt_connection_release(c2);
    yt_connection_release(cf), yt_connection_release(cs);
    yt_context_free(fc), yt_context_free(sc), yt_context_free(r);
    yt_loop_free(lr), yt_loop_free(lf), yt_loop_free(ls);
}

static pthread_t g_handler_thread;

static yt_value *h_which_thread(const yt_value *args, const yt_value *kwargs, void *user,
                                char *err, size_t errsize)
{
    (void)args, (void)kwargs, (void)user, (void)err, (void)errsize;
    g_handler_thread = pthread_self();
    return yt_value_int(1);
}

static void test_event_mode(void)
{
    pair p;
    pair_up(&p);
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_register(rep, "where", h_which_thread, NULL);
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_EVENT), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "where", NULL, NULL, &f), YT_OK);
    yt_value *res = NULL;
    /* Nobody processes the replier's loop: not even acknowledged. */
    CU_ASSERT_EQUAL(yt_future_result(f, 0.4, &res), YT_ETIMEDOUT);
    CU_ASSERT_FALSE(yt_future_running(f));
    /* The replier's loop handles it, on this thread. */
    memset(&g_handler_thread, 0, sizeof g_handler_thread);
    double end = mono_now() + 3.0;
    while (!yt_future_done(f) && mono_now() < end) {
        yt_loop_process(p.lb, 0.01);
        yt_future_result(f, 0.01, &res);
        yt_value_free(res);
        res = NULL;
    }
    CU_ASSERT_EQUAL(yt_future_result(f, 0, &res), YT_OK);
    yt_value_free(res);
    CU_ASSERT_TRUE(pthread_equal(g_handler_thread, pthread_self()));
    yt_future_free(f);
    /* Back to OFF: the loop no longer handles requests. */
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_OFF), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "where", NULL, NULL, &f), YT_OK);
    spin(p.lb, 0.3);
    CU_ASSERT_FALSE(yt_future_done(f));
    CU_ASSERT_FALSE(yt_future_running(f));
    yt_future_free(f);
    yt_channel_free(req);
    yt_channel_free(rep);
    spin(p.lb, 0.05);
    pair_down(&p);
}

static void test_off_mode_and_process(void)
{
    pair p;
    pair_up(&p);
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_register(rep, "add", h_add, NULL);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    /* Nothing waiting: returns 0 at once, or after the timeout. */
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_rep_process(rep, 0), 0);
    CU_ASSERT(mono_now() - t0 < 0.1);
    t0 = mono_now();
    CU_ASSERT_EQUAL(yt_rep_process(rep, 0.2), 0);
    double dt = mono_now() - t0;
    CU_ASSERT(dt >= 0.19 && dt < 0.6);
    yt_value *args = args2(yt_value_int(20), yt_value_int(22));
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", args, NULL, &f), YT_OK);
    yt_value *res = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 0.3, &res), YT_ETIMEDOUT);
    CU_ASSERT_FALSE(yt_future_running(f)); /* OFF: not acknowledged */
    /* One call acknowledges, waits for the request (sent from the requester's receive
     * path: nobody waits there) and handles it. */
    CU_ASSERT_EQUAL(yt_rep_process(rep, 3.0), 1);
    CU_ASSERT_EQUAL(yt_future_result(f, 2.0, &res), YT_OK);
    int64_t v = 0;
    yt_value_as_int(res, &v);
    CU_ASSERT_EQUAL(v, 42);
    yt_value_free(res);
    yt_future_free(f);
    /* Errors. */
    CU_ASSERT_EQUAL(yt_rep_process(req, 0), YT_EINVAL);
    yt_channel_close(rep);
    CU_ASSERT_EQUAL(yt_rep_process(rep, 0), YT_ECLOSED);
    yt_value_free(args);
    yt_channel_free(req);
    yt_channel_free(rep);
    pair_down(&p);
}

static yt_value *h_free_self(const yt_value *args, const yt_value *kwargs, void *user,
                             char *err, size_t errsize)
{
    (void)args, (void)kwargs, (void)err, (void)errsize;
    yt_channel_free(user);
    return yt_value_int(1);
}

static yt_value *h_close_self(const yt_value *args, const yt_value *kwargs, void *user,
                              char *err, size_t errsize)
{
    (void)args, (void)kwargs, (void)err, (void)errsize;
    yt_channel_close(user);
    return yt_value_int(2);
}

static yt_value *h_stop_self(const yt_value *args, const yt_value *kwargs, void *user,
                             char *err, size_t errsize)
{
    (void)args, (void)kwargs, (void)err, (void)errsize;
    yt_rep_set_mode(user, YT_REP_OFF);
    return yt_value_string("bye");
}

typedef struct nthreads {
    int want;
} nthreads;

static bool threads_at(void *arg)
{
    return count_threads() <= ((nthreads *)arg)->want;
}

static void test_handler_closes_its_channel(void)
{
    pair p;
    pair_up(&p);
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(p.a, "svc", &req), YT_OK);
    nthreads base = {count_threads()};

    /* Frees its own channel from the replier thread: the thread ends by itself. */
    yt_channel *rep;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_register(rep, "die", h_free_self, rep);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    CU_ASSERT_EQUAL(count_threads(), base.want + 1);
    yt_future *f = NULL;
    yt_value *res = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "die", NULL, NULL, &f), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, threads_at, &base, 3.0));
    CU_ASSERT_TRUE(yt_future_running(f)); /* the reply could not go out */
    CU_ASSERT_EQUAL(yt_future_result(f, 0.2, &res), YT_ETIMEDOUT);
    yt_future_free(f);

    /* Closes it: no reply either; freeing it later joins the ended thread. */
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_register(rep, "close", h_close_self, rep);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "close", NULL, NULL, &f), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, threads_at, &base, 3.0));
    CU_ASSERT_TRUE(yt_channel_closed(rep));
    CU_ASSERT_EQUAL(yt_future_result(f, 0.2, &res), YT_ETIMEDOUT);
    yt_future_free(f);
    yt_channel_free(rep);

    /* Switches itself off: it replies, then its thread ends; on again, it works again. */
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(p.b, "svc", &rep), YT_OK);
    yt_rep_register(rep, "stop", h_stop_self, rep);
    yt_rep_register(rep, "add", h_add, NULL);
    yt_rep_set_mode(rep, YT_REP_THREAD);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "stop", NULL, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 3.0, &res), YT_OK);
    CU_ASSERT_STRING_EQUAL(s0(yt_value_as_string(res, NULL)), "bye");
    yt_value_free(res);
    yt_future_free(f);
    CU_ASSERT_TRUE(wait_until(NULL, threads_at, &base, 3.0));
    yt_value *args = args2(yt_value_int(1), yt_value_int(2));
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", args, NULL, &f), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 0.3, &res), YT_ETIMEDOUT);
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_THREAD), YT_OK);
    CU_ASSERT_EQUAL(yt_future_result(f, 3.0, &res), YT_OK);
    yt_value_free(res);
    yt_future_free(f);
    yt_value_free(args);
    /* Switching a waiting thread off is quick (it is woken, not waited out). */
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_OFF), YT_OK);
    CU_ASSERT(mono_now() - t0 < 0.5);
    CU_ASSERT_EQUAL(count_threads(), base.want);
    yt_channel_free(rep);
    yt_channel_free(req);
    pair_down(&p);
}

static void test_close_wakes_result(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop);
    yt_channel *req;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(ctx, "svc", &req), YT_OK);
    call_arg c = {0};
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "x", NULL, NULL, &c.f), YT_OK);
    pthread_t th;
    pthread_create(&th, NULL, wait_result_thread, &c);
    usleep(200000);
    yt_channel_close(req);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(c.rc, YT_ECLOSED);
    CU_ASSERT(c.took >= 0.15 && c.took < 0.6);
    CU_ASSERT_TRUE(yt_future_cancelled(c.f)); /* it never reached a replier */
    CU_ASSERT_TRUE(yt_future_done(c.f));
    yt_future *f = NULL;
    CU_ASSERT_EQUAL(yt_req_call(req, "x", NULL, NULL, &f), YT_ECLOSED);
    yt_future_free(c.f);
    yt_channel_free(req);
    yt_context_free(ctx);

    /* A running call fails with YT_ECLOSED too, and so does closing the whole context. */
    wire w;
    wire_up(&w, NULL, RAW_ID);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(w.ctx, "calc", &req), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", NULL, NULL, &f), YT_OK);
    yti_header h;
    unsigned char data[256];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 2.0));
    raw_send_pkg(w.fd, slot_of("calc", "obj", "rep-req"), RAW_ID, 1, yt_context_id(w.ctx), REF + 1, "req!",
             4);
    CU_ASSERT_TRUE_FATAL(read_pkg_skip_announce(w.fd, &h, data, sizeof data, 2.0));
    CU_ASSERT_TRUE(yt_future_running(f));
    yt_context_close_channels(w.ctx);
    yt_value *res = NULL;
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_future_result(f, 3.0, &res), YT_ECLOSED);
    CU_ASSERT(mono_now() - t0 < 0.3);
    CU_ASSERT_FALSE(yt_future_cancelled(f));
    CU_ASSERT_PTR_NOT_NULL(yt_future_exception(f));
    yt_future_free(f);
    yt_channel_free(req);
    wire_down(&w);
    yt_loop_free(loop);
}

static void test_invalid_arguments(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop);
    yt_channel *req, *rep, *pub;
    CU_ASSERT_EQUAL_FATAL(yt_req_new(ctx, "svc", &req), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(ctx, "svc", &rep), YT_OK);
    CU_ASSERT_EQUAL(yt_req_new(ctx, "svc", &pub), YT_EBUSY); /* one per slot */
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(ctx, "svc", YT_OBJECT, &pub), YT_OK);
    yt_future *f = NULL;
    yt_value *d = yt_value_dict(), *l = yt_value_list();
    CU_ASSERT_EQUAL(yt_req_call(rep, "x", NULL, NULL, &f), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_req_call(pub, "x", NULL, NULL, &f), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_req_call(req, NULL, NULL, NULL, &f), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_req_call(req, "x", d, NULL, &f), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_req_call(req, "x", NULL, l, &f), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_req_call(req, "\xff", NULL, NULL, &f), YT_EINVAL);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_EQUAL(yt_req_set_auto_cancel_timeout(rep, 1), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "x", NULL, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "", h_add, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_rep_register(req, "x", h_add, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, (yt_rep_mode)7), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_rep_set_mode(req, YT_REP_THREAD), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_future_result(NULL, 0, NULL), YT_EINVAL);
    CU_ASSERT_FALSE(yt_future_done(NULL));
    CU_ASSERT_FALSE(yt_future_cancel(NULL));
    CU_ASSERT_PTR_NULL(yt_future_exception(NULL));
    yt_future_free(NULL);
    /* Not a receiving channel for users: the requester keeps its packages to itself. */
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(req, 0, &m), YT_EINVAL);
    yt_value_free(d);
    yt_value_free(l);
    yt_channel_free(pub);
    yt_channel_free(rep);
    yt_channel_free(req);
    yt_context_free(ctx);
    yt_loop_free(loop);
}

void yt_suite_reqrep(void)
{
    static const yt_test_def tests[] = {
        {"call with every type, result without any loop", test_call_with_every_type},
        {"unknown method and failing handler", test_remote_errors},
        {"built-in echo", test_echo},
        {"requester packages on the wire", test_requester_on_the_wire},
        {"replier packages on the wire", test_replier_on_the_wire},
        {"connection lost while running", test_connection_lost_while_running},
        {"time-out leaves it pending", test_timeout_leaves_it_pending},
        {"cancel", test_cancel},
        {"auto-cancel", test_auto_cancel},
        {"done callbacks through the loop", test_done_callbacks},
        {"load balancing", test_load_balancing},
        {"event mode", test_event_mode},
        {"off mode and yt_rep_process", test_off_mode_and_process},
        {"handler closes its own channel", test_handler_closes_its_channel},
        {"close wakes a blocked result", test_close_wakes_result},
        {"invalid arguments", test_invalid_arguments},
        {NULL, NULL},
    };
    yt_add_suite("reqrep", tests);
}

/*
 * four_contexts - the abstract network of four contexts, showing that contexts route for each
 * other: channels meet whatever the path between them.
 *
 *          B                 A binds twice: B and C connect to it.
 *          |                 C binds once: D connects to it.
 *          A --- C --- D     No direct link between B, C and D other than these.
 *
 *      A: SubChannel "news", ReqChannel "compute"
 *      B: PubChannel "news"
 *      C: SubChannel "news"
 *      D: PubChannel "news", SubChannel "news", RepChannel "compute"
 *
 * D's news reaches C directly and A through C; B's news reaches A directly, C through A and D
 * through A and C. A's request is announced to every context, B's included, but only D has a
 * replier, so D (two hops away) answers it. Each message arrives once at each subscriber,
 * whatever the number of paths it could take, and a context never receives its own news.
 *
 * For brevity the four contexts live in ONE process (each with its own connections and IO
 * threads, talking over TCP on 127.0.0.1 exactly as if they were four processes). D's replier
 * runs in YT_REP_THREAD mode, on a thread of its own.
 *
 * Run: yt_example_four_contexts (no arguments). Exit status 0 when every message and the reply
 * arrived where expected.
 */
#include "example.h"

#include <inttypes.h>

enum { A, B, C, D, NCTX };
static const char *const NAMES[NCTX] = {"A", "B", "C", "D"};
static yt_context *ctx[NCTX];

/* The name of the context with that id (for the transcript). */
static const char *name_of(uint64_t id)
{
    for (int i = 0; i < NCTX; i++)
        if (ctx[i] && yt_context_id(ctx[i]) == id)
            return NAMES[i];
    return "?";
}

/* multiply(a, b), in context D. */
static yt_value *method_multiply(const yt_value *args, const yt_value *kwargs, void *user,
                                 char *err, size_t errsize)
{
    (void)kwargs;
    (void)user;
    int64_t a, b;
    if (yt_value_as_int(yt_value_item(args, 0), &a) != YT_OK ||
        yt_value_as_int(yt_value_item(args, 1), &b) != YT_OK) {
        snprintf(err, errsize, "multiply() takes two integers");
        return NULL;
    }
    ex_say_as("D", "computes multiply(%" PRId64 ", %" PRId64 ") for A", a, b);
    return yt_value_int(a * b);
}

/* Checks that sub receives exactly the messages a and b (b may be NULL), in either order since
 * they come from different senders. */
static void expect(int who, yt_channel *sub, const char *a, const char *b)
{
    bool got_a = false, got_b = b == NULL;
    while (!got_a || !got_b) {
        yt_msg *m;
        if (yt_channel_recv(sub, 5.0, &m) != YT_OK)
            ex_fail("%s did not receive \"%s\"", NAMES[who], got_a ? b : a);
        const char *text = yt_msg_text(m);
        ex_say_as(NAMES[who], "receives \"%s\" from %s", text, name_of(yt_msg_source(m)));
        if (!got_a && strcmp(text, a) == 0)
            got_a = true;
        else if (!got_b && strcmp(text, b) == 0)
            got_b = true;
        else
            ex_fail("%s did not expect \"%s\"", NAMES[who], text);
        yt_msg_free(m);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    ex_start(argv[0], "main");
    ex_say("libyoton %s: four contexts in one network", yt_version_string());
    for (int i = 0; i < NCTX; i++)
        ex_ok(yt_context_new(NULL, &ctx[i]), "yt_context_new");

    yt_channel *a_sub, *a_req, *b_pub, *c_sub, *d_pub, *d_sub, *d_rep;
    ex_ok(yt_sub_new(ctx[A], "news", YT_TEXT, &a_sub), "yt_sub_new");
    ex_ok(yt_req_new(ctx[A], "compute", &a_req), "yt_req_new");
    ex_ok(yt_pub_new(ctx[B], "news", YT_TEXT, &b_pub), "yt_pub_new");
    ex_ok(yt_sub_new(ctx[C], "news", YT_TEXT, &c_sub), "yt_sub_new");
    ex_ok(yt_pub_new(ctx[D], "news", YT_TEXT, &d_pub), "yt_pub_new");
    ex_ok(yt_sub_new(ctx[D], "news", YT_TEXT, &d_sub), "yt_sub_new");
    ex_ok(yt_rep_new(ctx[D], "compute", &d_rep), "yt_rep_new");
    ex_ok(yt_rep_register(d_rep, "multiply", method_multiply, NULL), "yt_rep_register");
    ex_ok(yt_rep_set_mode(d_rep, YT_REP_THREAD), "yt_rep_set_mode");

    /* The links: A hosts B and C, C hosts D. connect() returns once the handshake is done. */
    yt_connection *a_for_b, *a_for_c, *c_for_d;
    char addr[64];
    ex_ok(yt_context_bind(ctx[A], "localhost:0", 1, "B", &a_for_b), "yt_context_bind");
    ex_ok(yt_context_bind(ctx[A], "localhost:0", 1, "C", &a_for_c), "yt_context_bind");
    ex_ok(yt_context_bind(ctx[C], "localhost:0", 1, "D", &c_for_d), "yt_context_bind");
    ex_ok(yt_context_connect(ctx[B], ex_address(addr, sizeof addr, yt_connection_port1(a_for_b)),
                             5.0, "A", NULL),
          "yt_context_connect");
    ex_say_as("B", "connected to A at %s", addr);
    ex_ok(yt_context_connect(ctx[C], ex_address(addr, sizeof addr, yt_connection_port1(a_for_c)),
                             5.0, "A", NULL),
          "yt_context_connect");
    ex_say_as("C", "connected to A at %s", addr);
    ex_ok(yt_context_connect(ctx[D], ex_address(addr, sizeof addr, yt_connection_port1(c_for_d)),
                             5.0, "C", NULL),
          "yt_context_connect");
    ex_say_as("D", "connected to C at %s", addr);
    /* The hosting ends learn of their peers on their own threads; wait until they did. */
    yt_connection *hosts[] = {a_for_b, a_for_c, c_for_d};
    for (int i = 0; i < 3; i++)
        if (!ex_wait_for(ex_connected, hosts[i], 5.0))
            ex_fail("a link did not come up");

    /* Pub/sub across the network. */
    ex_say_as("D", "publishes \"weather: sunny\"");
    ex_ok(yt_channel_send_text(d_pub, "weather: sunny"), "yt_channel_send_text");
    ex_say_as("B", "publishes \"traffic: calm\"");
    ex_ok(yt_channel_send_text(b_pub, "traffic: calm"), "yt_channel_send_text");
    expect(A, a_sub, "weather: sunny", "traffic: calm");
    expect(C, c_sub, "weather: sunny", "traffic: calm");
    expect(D, d_sub, "traffic: calm", NULL);
    /* Give duplicates (through another path) and echoes (of D's own news) time to show up. */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    if (yt_channel_pending(a_sub) + yt_channel_pending(c_sub) + yt_channel_pending(d_sub) > 0)
        ex_fail("a message arrived twice");
    ex_say("no subscriber got a message twice, D did not hear its own news");

    /* Request/reply across two hops. */
    yt_value *args = yt_value_tuple();
    yt_value_append(args, yt_value_int(6));
    yt_value_append(args, yt_value_int(7));
    yt_future *f;
    ex_say_as("A", "calls multiply(6, 7)");
    ex_ok(yt_req_call(a_req, "multiply", args, NULL, &f), "yt_req_call");
    yt_value_free(args);
    yt_value *result = NULL;
    int64_t product = 0;
    int rc = yt_future_result(f, 5.0, &result);
    if (rc != YT_OK || yt_value_as_int(result, &product) != YT_OK || product != 42)
        ex_fail("multiply(6, 7) did not return 42 (%s)", yt_strerror(rc));
    ex_say_as("A", "multiply(6, 7) -> %" PRId64, product);
    yt_value_free(result);
    yt_future_free(f);

    yt_connection_release(a_for_b);
    yt_connection_release(a_for_c);
    yt_connection_release(c_for_d);
    yt_channel *all[] = {a_sub, a_req, b_pub, c_sub, d_pub, d_sub, d_rep};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        yt_channel_free(all[i]);
    for (int i = NCTX - 1; i >= 0; i--)
        yt_context_free(ctx[i]);
    ex_say("done: news and a request crossed up to three hops");
    return 0;
}

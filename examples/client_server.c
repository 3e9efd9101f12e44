/*
 * client_server - the simplest network: a server and a client, two processes.
 *
 *      server  PubChannel "news"      ---->  SubChannel "news"      client
 *              RepChannel "service"   <--->  ReqChannel "service"
 *
 * The server binds (on an ephemeral port) and starts the client, which connects. The server
 * publishes three news items; the client reads them, then calls three methods of the server:
 * add(2, 3, 4), upper("hello yoton") and divide(1, 0), the last failing on purpose to show how
 * a replier's error reaches the caller. The server handles requests in event mode: its replies
 * are computed while it runs the event loop. When the client is done it closes its context; the
 * server sees the connection close and exits too.
 *
 * Run: yt_example_client_server (no arguments). Exit status 0 when everything arrived as
 * expected.
 */
#include "example.h"

#include <ctype.h>
#include <inttypes.h>

static const char *const NEWS[] = {
    "Yoton speaks C now",
    "Contexts route packages for each other",
    "Every link carries heartbeats",
};
#define NNEWS (sizeof NEWS / sizeof NEWS[0])

/* ------------------------------------------------------------------------------------------ */
/* Server                                                                                      */

/* add(*ints): the sum of its integer arguments. */
static yt_value *method_add(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                            size_t errsize)
{
    (void)kwargs;
    (void)user;
    int64_t sum = 0;
    char shown[128] = "";
    for (size_t i = 0; i < yt_value_len(args); i++) {
        int64_t x;
        if (yt_value_as_int(yt_value_item(args, i), &x) != YT_OK) {
            snprintf(err, errsize, "add() takes integers only");
            return NULL;
        }
        sum += x;
        size_t n = strlen(shown);
        snprintf(shown + n, sizeof shown - n, "%s%" PRId64, i ? ", " : "", x);
    }
    ex_say("add(%s) = %" PRId64, shown, sum);
    return yt_value_int(sum);
}

/* upper(text): the text in upper case (ASCII letters). */
static yt_value *method_upper(const yt_value *args, const yt_value *kwargs, void *user,
                              char *err, size_t errsize)
{
    (void)kwargs;
    (void)user;
    const char *s = yt_value_as_string(yt_value_item(args, 0), NULL);
    if (!s || yt_value_len(args) != 1) {
        snprintf(err, errsize, "upper() takes one string");
        return NULL;
    }
    char buf[256];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof buf; n++)
        buf[n] = (char)toupper((unsigned char)s[n]);
    buf[n] = '\0';
    ex_say("upper(\"%s\") = \"%s\"", s, buf);
    return yt_value_string(buf);
}

/* divide(a, b): integer division, an error when b is 0. */
static yt_value *method_divide(const yt_value *args, const yt_value *kwargs, void *user,
                               char *err, size_t errsize)
{
    (void)kwargs;
    (void)user;
    int64_t a, b;
    if (yt_value_len(args) != 2 || yt_value_as_int(yt_value_item(args, 0), &a) != YT_OK ||
        yt_value_as_int(yt_value_item(args, 1), &b) != YT_OK) {
        snprintf(err, errsize, "divide() takes two integers");
        return NULL;
    }
    if (b == 0) {
        ex_say("divide(%" PRId64 ", 0): refusing", a);
        snprintf(err, errsize, "ZeroDivisionError: division by zero");
        return NULL;
    }
    return yt_value_int(a / b);
}

static void on_closed(const yt_event *ev, void *user)
{
    *(bool *)user = true;
    ex_say("the client left (%s)", ev->text);
}

static bool is_true(void *flag)
{
    return *(bool *)flag;
}

static int server(void)
{
    yt_context *ctx;
    yt_channel *news, *service;
    yt_connection *conn;
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    ex_ok(yt_pub_new(ctx, "news", YT_TEXT, &news), "yt_pub_new");
    ex_ok(yt_rep_new(ctx, "service", &service), "yt_rep_new");
    ex_ok(yt_rep_register(service, "add", method_add, NULL), "yt_rep_register");
    ex_ok(yt_rep_register(service, "upper", method_upper, NULL), "yt_rep_register");
    ex_ok(yt_rep_register(service, "divide", method_divide, NULL), "yt_rep_register");
    /* Event mode: requests are handled by whoever runs the default loop - this thread. */
    ex_ok(yt_rep_set_mode(service, YT_REP_EVENT), "yt_rep_set_mode");

    ex_ok(yt_context_bind(ctx, "localhost:0", 1, "client", &conn), "yt_context_bind");
    bool closed = false;
    yt_signal_bind(yt_connection_closed_signal(conn), on_closed, &closed);
    char port[16];
    snprintf(port, sizeof port, "%d", yt_connection_port1(conn));
    ex_say("hosting on localhost:%s; starting the client", port);
    ex_spawn("client", port, NULL, NULL);

    if (!ex_wait_for(ex_connected, conn, 10.0))
        ex_fail("the client did not connect");
    ex_say("client connected (pid %ld)", yt_connection_pid2(conn));
    for (size_t i = 0; i < NNEWS; i++) {
        ex_say("publish: %s", NEWS[i]);
        ex_ok(yt_channel_send_text(news, NEWS[i]), "yt_channel_send_text");
    }
    /* Serve requests (the loop runs the replier) until the client has gone. */
    if (!ex_wait_for(is_true, &closed, 15.0))
        ex_fail("the client did not finish");
    int failed = ex_reap_all(5.0);

    yt_connection_release(conn);
    yt_channel_free(news);
    yt_channel_free(service);
    yt_context_free(ctx);
    if (failed)
        ex_fail("the client failed");
    ex_say("done");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Client                                                                                      */

/* Calls method(args) and waits for the result: returns the result (caller frees) or NULL,
 * with the error code in *rc and the replier's message in err. */
static yt_value *call(yt_channel *req, const char *method, yt_value *args, int *rc, char *err,
                      size_t errsize)
{
    yt_future *f;
    yt_value *result = NULL;
    ex_ok(yt_req_call(req, method, args, NULL, &f), "yt_req_call");
    yt_value_free(args);
    *rc = yt_future_result(f, 5.0, &result);
    snprintf(err, errsize, "%s", yt_future_exception(f) ? yt_future_exception(f) : "");
    err[strcspn(err, "\n")] = '\0'; /* the message ends with a newline, as the reference's */
    yt_future_free(f);
    return result;
}

static int client(const char *port)
{
    yt_context *ctx;
    yt_channel *news, *service;
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    /* Channels first, then connect: nothing sent after the connection is up can be missed. */
    ex_ok(yt_sub_new(ctx, "news", YT_TEXT, &news), "yt_sub_new");
    ex_ok(yt_req_new(ctx, "service", &service), "yt_req_new");
    char addr[64];
    ex_ok(yt_context_connect(ctx, ex_address(addr, sizeof addr, atoi(port)), 5.0, "server",
                             NULL),
          "yt_context_connect");
    ex_say("connected to %s", addr);

    for (size_t i = 0; i < NNEWS; i++) {
        yt_msg *m;
        if (yt_channel_recv(news, 5.0, &m) != YT_OK)
            ex_fail("news item %zu did not arrive", i + 1);
        ex_say("news: %s", yt_msg_text(m));
        if (strcmp(yt_msg_text(m), NEWS[i]) != 0)
            ex_fail("expected \"%s\"", NEWS[i]);
        yt_msg_free(m);
    }

    int rc;
    char err[256];
    int64_t sum = 0;
    yt_value *args = yt_value_tuple();
    yt_value_append(args, yt_value_int(2));
    yt_value_append(args, yt_value_int(3));
    yt_value_append(args, yt_value_int(4));
    yt_value *r = call(service, "add", args, &rc, err, sizeof err);
    if (rc != YT_OK || yt_value_as_int(r, &sum) != YT_OK || sum != 9)
        ex_fail("add(2, 3, 4) did not return 9 (%s %s)", yt_strerror(rc), err);
    ex_say("add(2, 3, 4) -> %" PRId64, sum);
    yt_value_free(r);

    args = yt_value_tuple();
    yt_value_append(args, yt_value_string("hello yoton"));
    r = call(service, "upper", args, &rc, err, sizeof err);
    const char *text = yt_value_as_string(r, NULL);
    if (rc != YT_OK || !text || strcmp(text, "HELLO YOTON") != 0)
        ex_fail("upper(\"hello yoton\") failed (%s %s)", yt_strerror(rc), err);
    ex_say("upper(\"hello yoton\") -> \"%s\"", text);
    yt_value_free(r);

    args = yt_value_tuple();
    yt_value_append(args, yt_value_int(1));
    yt_value_append(args, yt_value_int(0));
    r = call(service, "divide", args, &rc, err, sizeof err);
    if (rc != YT_EREMOTE || !strstr(err, "division by zero"))
        ex_fail("divide(1, 0) should have failed remotely, got %s", yt_strerror(rc));
    ex_say("divide(1, 0) -> error from the server: %s", err);
    yt_value_free(r);

    yt_channel_free(news);
    yt_channel_free(service);
    yt_context_free(ctx); /* the server sees "Closed from other end." */
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        ex_start(argv[0], "client");
        return client(argv[2]);
    }
    ex_start(argv[0], "server");
    ex_say("libyoton %s: a server and a client", yt_version_string());
    return server();
}

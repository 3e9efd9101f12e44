/*
 * load_balance - one requester, three repliers of different speeds: requests spread over the
 * repliers by how fast each one works, with no scheduler anywhere.
 *
 *                         +--> replier "fast"    (20 ms per request)
 *      requester ---------+--> replier "medium"  (60 ms per request)
 *      (binds 3 times)    +--> replier "slow"    (180 ms per request)
 *
 * The requester's context binds three ephemeral ports and starts one replier process per port.
 * It then fires NREQ requests at once and waits for all the results. Every request is announced
 * to every replier; a replier that is free acknowledges it, and the requester gives it to the
 * first one that did. A replier busy with a request acknowledges nothing, so the fast one comes
 * back for more often and the slow one gets few. Each reply names the replier that computed it;
 * the requester counts them.
 *
 * The repliers run in mode YT_REP_OFF: they take requests only inside yt_rep_process(), which
 * they call in a loop until their connection to the requester closes.
 *
 * Run: yt_example_load_balance (no arguments). Exit status 0 when every request was answered
 * and the fast replier handled more than the slow one.
 */
#include "example.h"

#include <inttypes.h>

#define NREQ 30

static const struct {
    const char *name;
    int ms; /* time one request takes */
} REPLIERS[] = {{"fast", 20}, {"medium", 60}, {"slow", 180}};
#define NREP 3

/* ------------------------------------------------------------------------------------------ */
/* Replier                                                                                     */

typedef struct worker {
    const char *name;
    int ms;
    int handled;
} worker;

/* square(n): n * n, computed slowly; the reply is (n * n, name of this replier). */
static yt_value *method_square(const yt_value *args, const yt_value *kwargs, void *user,
                               char *err, size_t errsize)
{
    (void)kwargs;
    worker *w = user;
    int64_t n;
    if (yt_value_as_int(yt_value_item(args, 0), &n) != YT_OK) {
        snprintf(err, errsize, "square() takes an integer");
        return NULL;
    }
    struct timespec pause = {w->ms / 1000, (long)(w->ms % 1000) * 1000000L};
    nanosleep(&pause, NULL); /* the "work" */
    w->handled++;
    yt_value *result = yt_value_tuple();
    yt_value_append(result, yt_value_int(n * n));
    yt_value_append(result, yt_value_string(w->name));
    return result;
}

static int replier(const char *port, const char *name, const char *ms)
{
    worker w = {name, atoi(ms), 0};
    yt_context *ctx;
    yt_channel *rep;
    yt_connection *conn;
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    ex_ok(yt_rep_new(ctx, "squares", &rep), "yt_rep_new");
    ex_ok(yt_rep_register(rep, "square", method_square, &w), "yt_rep_register");
    char addr[64];
    ex_ok(yt_context_connect(ctx, ex_address(addr, sizeof addr, atoi(port)), 5.0, "requester",
                             &conn),
          "yt_context_connect");
    ex_say("ready, %d ms per request", w.ms);
    /* Handle requests until the requester hangs up. */
    while (yt_connection_is_connected(conn)) {
        int rc = yt_rep_process(rep, 0.1);
        if (rc < 0)
            ex_fail("yt_rep_process returned %s", yt_strerror(rc));
    }
    ex_say("handled %d requests; the requester closed the connection", w.handled);
    yt_connection_release(conn);
    yt_channel_free(rep);
    yt_context_free(ctx);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Requester                                                                                   */

static int requester(void)
{
    yt_context *ctx;
    yt_channel *req;
    yt_connection *conns[NREP];
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    ex_ok(yt_req_new(ctx, "squares", &req), "yt_req_new");
    /* One bind per replier: a bound connection takes one peer. */
    for (int i = 0; i < NREP; i++) {
        ex_ok(yt_context_bind(ctx, "localhost:0", 1, REPLIERS[i].name, &conns[i]),
              "yt_context_bind");
        char port[16], ms[16];
        snprintf(port, sizeof port, "%d", yt_connection_port1(conns[i]));
        snprintf(ms, sizeof ms, "%d", REPLIERS[i].ms);
        ex_spawn(REPLIERS[i].name, port, REPLIERS[i].name, ms);
    }
    for (int i = 0; i < NREP; i++)
        if (!ex_wait_for(ex_connected, conns[i], 10.0))
            ex_fail("replier %s did not connect", REPLIERS[i].name);
    ex_say("all %d repliers connected; sending %d requests at once", NREP, NREQ);

    double start = ex_now();
    yt_future *futures[NREQ];
    for (int i = 0; i < NREQ; i++) {
        yt_value *args = yt_value_tuple();
        yt_value_append(args, yt_value_int(i));
        ex_ok(yt_req_call(req, "square", args, NULL, &futures[i]), "yt_req_call");
        yt_value_free(args);
    }
    int count[NREP] = {0};
    for (int i = 0; i < NREQ; i++) {
        yt_value *r = NULL;
        int rc = yt_future_result(futures[i], 15.0, &r);
        if (rc != YT_OK)
            ex_fail("request %d: %s", i, yt_strerror(rc));
        int64_t sq;
        const char *who = yt_value_as_string(yt_value_item(r, 1), NULL);
        if (yt_value_as_int(yt_value_item(r, 0), &sq) != YT_OK || sq != (int64_t)i * i || !who)
            ex_fail("request %d: wrong reply", i);
        for (int k = 0; k < NREP; k++)
            if (strcmp(who, REPLIERS[k].name) == 0)
                count[k]++;
        yt_value_free(r);
        yt_future_free(futures[i]);
    }
    double took = ex_now() - start;
    ex_say("%d results in %.2f s (one replier alone: fast %.2f s, slow %.2f s):", NREQ, took,
           NREQ * REPLIERS[0].ms / 1000.0, NREQ * REPLIERS[2].ms / 1000.0);
    for (int k = 0; k < NREP; k++) {
        char bar[NREQ + 1];
        memset(bar, '#', (size_t)count[k]);
        bar[count[k]] = '\0';
        ex_say("  %-6s (%3d ms/request): %2d %s", REPLIERS[k].name, REPLIERS[k].ms, count[k],
               bar);
    }

    /* Closing the context closes the connections: each replier sees it and exits. */
    for (int i = 0; i < NREP; i++)
        yt_connection_release(conns[i]);
    yt_channel_free(req);
    yt_context_free(ctx);
    int failed = ex_reap_all(10.0);
    if (failed)
        ex_fail("%d replier(s) failed", failed);
    if (count[0] + count[1] + count[2] != NREQ)
        ex_fail("some replies came from an unknown replier");
    if (count[0] <= count[2])
        ex_fail("the fast replier should have handled more requests than the slow one");
    ex_say("done: the fast replier did the most work, the slow one the least");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5) {
        ex_start(argv[0], argv[1]);
        return replier(argv[2], argv[3], argv[4]);
    }
    ex_start(argv[0], "requester");
    ex_say("libyoton %s: load balancing over three repliers", yt_version_string());
    return requester();
}

/*
 * zmq_bench.c - the libzmq contender (Debian's libzmq3-dev), same roles as yt_bench.c.
 *
 *   sub --size S --count N [--hwm H]     SUB binds 127.0.0.1:0, counts N messages
 *   pub --port P --size S --count N [--hwm H]
 *                                        XPUB (PUB on the wire) connects, waits for the
 *                                        subscription to arrive (no slow-joiner loss), then
 *                                        sends with ZMQ_XPUB_NODROP: a full high-water mark
 *                                        blocks the sender instead of dropping, so memory is
 *                                        bounded by H and nothing is lost
 *   rep                                  REP binds and echoes
 *   req --port P --count N [--size S]    N timed REQ/REP round trips (one TCP round trip each)
 * Single application thread plus libzmq's IO thread. Receives have a timeout (ZMQ_RCVTIMEO).
 */
#include "bench_common.h"

#include <errno.h>
#include <zmq.h>

static double g_timeout;

static void *sock(void *zctx, int type, int hwm)
{
    void *s = zmq_socket(zctx, type);
    if (!s)
        bench_die("zmq_socket: %s", zmq_strerror(errno));
    int ms = (int)(g_timeout * 1000), linger = (int)(g_timeout * 1000);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    return s;
}

static int bind_any(void *s)
{
    char ep[128];
    size_t len = sizeof ep;
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0 || zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len))
        bench_die("bind: %s", zmq_strerror(errno));
    const char *colon = strrchr(ep, ':');
    int port = atoi(colon + 1);
    printf("READY port=%d\n", port);
    fflush(stdout);
    return port;
}

static void connect_port(void *s, int port)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    if (zmq_connect(s, ep) != 0)
        bench_die("connect: %s", zmq_strerror(errno));
}

static int role_sub(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    void *zctx = zmq_ctx_new();
    void *s = sock(zctx, ZMQ_SUB, (int)bench_argl(argc, argv, "--hwm", 100000));
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    bind_any(s);
    long long count = 0, bad = 0;
    unsigned long long bytes = 0;
    double t_first = 0, t_end = 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (count < n) {
        int r = zmq_msg_recv(&m, s, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break; /* timeout: report what arrived */
        }
        if (count == 0)
            t_first = bench_now();
        bad += (size_t)r != size;
        bytes += (size_t)r;
        count++;
        t_end = bench_now();
    }
    zmq_msg_close(&m);
    printf("RESULT role=sub count=%lld expected=%lld bad=%lld bytes=%llu t_first=%.6f t_end=%.6f "
           "discarded=%lld",
           count, n, bad, bytes, t_first, t_end, n - count);
    bench_result_tail();
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s);
    zmq_ctx_term(zctx);
    return count == n ? 0 : 1;
}

static int role_pub(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    void *zctx = zmq_ctx_new();
    void *s = sock(zctx, ZMQ_XPUB, (int)bench_argl(argc, argv, "--hwm", 100000));
    int one = 1;
    zmq_setsockopt(s, ZMQ_XPUB_NODROP, &one, sizeof one);
    connect_port(s, (int)bench_argl(argc, argv, "--port", 0));
    char sub[64];
    if (zmq_recv(s, sub, sizeof sub, 0) < 1 || sub[0] != 1)
        bench_die("no subscription arrived");
    char *buf = malloc(size);
    memset(buf, 'x', size);
    double t_start = bench_now();
    long long sent = 0;
    for (; sent < n; sent++) {
        if (size > (1u << 20)) {
            /* Large: hand the buffer over without a copy. */
            zmq_msg_t m;
            zmq_msg_init_data(&m, buf, size, NULL, NULL);
            if (zmq_msg_send(&m, s, 0) < 0)
                bench_die("send: %s", zmq_strerror(errno));
        } else if (zmq_send(s, buf, size, 0) < 0) {
            bench_die("send: %s", zmq_strerror(errno));
        }
    }
    double t_sent = bench_now();
    printf("RESULT role=pub sent=%lld retries=0 t_start=%.6f t_sent=%.6f t_flushed=%.6f "
           "flush_ok=1 discarded=0",
           sent, t_start, t_sent, t_sent);
    bench_result_tail();
    zmq_close(s); /* lingers until everything is written */
    zmq_ctx_term(zctx);
    free(buf);
    return 0;
}

static int role_rep(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    void *zctx = zmq_ctx_new();
    void *s = sock(zctx, ZMQ_REP, 1000);
    int ms = 2000;
    bind_any(s);
    char buf[65536];
    long long count = 0;
    for (;;) {
        int r = zmq_recv(s, buf, sizeof buf, 0);
        if (r < 0)
            break; /* the requester is gone (timeout after the first call) */
        if (count++ == 0)
            zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof ms);
        zmq_send(s, buf, (size_t)r, 0);
    }
    printf("RESULT role=rep count=%lld", count);
    bench_result_tail();
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s);
    zmq_ctx_term(zctx);
    return 0;
}

static int role_req(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    long long warm = bench_argl(argc, argv, "--warmup", 200);
    void *zctx = zmq_ctx_new();
    void *s = sock(zctx, ZMQ_REQ, 1000);
    connect_port(s, (int)bench_argl(argc, argv, "--port", 0));
    char out[65536], in[65536];
    memset(out, 'r', sizeof out);
    double *rtt = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double t0 = 0;
    for (long long i = -warm; i < n; i++) {
        if (i == 0)
            t0 = bench_now();
        double a = bench_now();
        if (zmq_send(s, out, size, 0) < 0 || zmq_recv(s, in, sizeof in, 0) != (int)size)
            bench_die("req: %s", zmq_strerror(errno));
        if (i >= 0)
            rtt[i] = bench_now() - a;
    }
    double t1 = bench_now();
    double med = bench_quantile(rtt, (size_t)n, 0.5), p99 = bench_quantile(rtt, (size_t)n, 0.99);
    printf("RESULT role=req count=%lld median_us=%.2f p99_us=%.2f t_start=%.6f t_end=%.6f", n,
           med * 1e6, p99 * 1e6, t0, t1);
    bench_result_tail();
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s);
    zmq_ctx_term(zctx);
    free(rtt);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage: zmq_bench sub|pub|rep|req [--option value ...]");
    g_timeout = bench_argd(argc, argv, "--timeout", 300);
    if (!strcmp(argv[1], "sub"))
        return role_sub(argc, argv);
    if (!strcmp(argv[1], "pub"))
        return role_pub(argc, argv);
    if (!strcmp(argv[1], "rep"))
        return role_rep(argc, argv);
    if (!strcmp(argv[1], "req"))
        return role_req(argc, argv);
    bench_die("unknown role %s", argv[1]);
    return 2;
}

/*
 * yt_bench.c - the libyoton side of every benchmark (one program, one role per process).
 *
 * Roles (argv[1]):
 *   sub    --size S --count N [--queue Q]    binds, counts N messages of S bytes (checks sizes)
 *   pub    --port P --size S --count N [--queue Q] [--hold 1]
 *                                            connects and sends N messages; lossless: the
 *                                            channel refuses when a queue is full and the
 *                                            sender retries (counted as "retries"); with
 *                                            --hold 1 it stays connected until stdin closes
 *   pong   [--count N]                       binds; echoes what arrives on "ping" to "pong"
 *   ping   --port P --count N [--size S]     N timed round trips over two pub/sub channels
 *   rep                                      binds; a replier in thread mode (built-in "echo")
 *   req    --port P --count N [--size S]     N timed yt_req_call("echo") round trips
 *   idle-host  --n K                         binds K connections, reports RSS per connection
 *   idle-client --ports a,b,...              connects to each, reports RSS per connection
 *   broker --n K [--queue Q]                 binds K connections and only routes
 *   subs   --ports a,b,... --size S --count N
 *                                            one context + subscriber per port; counts N each
 * --ipc DIR (any role that binds once and its connecting partner: sub/pub, pong/ping, rep/req)
 * uses the Unix socket ipc://DIR/yt-bench.sock instead of TCP; the port printed and passed is
 * then -1 and ignored.
 * Threads: the main thread plus the library's IO threads. Every wait has a deadline
 * (--timeout, default 300 s), so a lost peer never hangs the runner. Output: see
 * bench_common.h.
 */
#include "bench_common.h"

#include <poll.h>
#include <sched.h>
#include <unistd.h>
#include <yoton.h>

#define SLOT "bench"

static double g_timeout;
static const char *g_ipc; /* --ipc DIR: Unix sockets instead of TCP */

/* The one ipc address of a run: both sides of a pair derive it from DIR. */
static const char *ipc_address(char *buf, size_t size)
{
    snprintf(buf, size, "ipc://%s/yt-bench.sock", g_ipc);
    return buf;
}

static yt_context *make_ctx(long long queue)
{
    yt_context_options o;
    yt_context_options_init(&o);
    if (queue > 0)
        o.queue_size = (size_t)queue;
    yt_context *ctx = NULL;
    if (yt_context_new(&o, &ctx) != YT_OK)
        bench_die("yt_context_new: %s", yt_last_error());
    return ctx;
}

static int bind_any(yt_context *ctx)
{
    yt_connection *c = NULL;
    char ipc[300];
    if (yt_context_bind(ctx, g_ipc ? ipc_address(ipc, sizeof ipc) : "127.0.0.1:0", 1, NULL,
                        &c) != YT_OK)
        bench_die("bind: %s", yt_last_error());
    int port = yt_connection_port1(c);
    yt_connection_release(c);
    return port;
}

static void connect_port(yt_context *ctx, int port)
{
    char addr[300];
    if (g_ipc)
        ipc_address(addr, sizeof addr);
    else
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if (yt_context_connect(ctx, addr, 5.0, NULL, NULL) != YT_OK)
        bench_die("connect %s: %s", addr, yt_last_error());
}

static yt_channel *chan(yt_context *ctx, bool pub, const char *name)
{
    yt_channel *ch = NULL;
    int rc = pub ? yt_pub_new(ctx, name, YT_BINARY, &ch) : yt_sub_new(ctx, name, YT_BINARY, &ch);
    if (rc != YT_OK)
        bench_die("channel %s: %s", name, yt_last_error());
    return ch;
}

static void ready_port(int port)
{
    printf("READY port=%d\n", port);
    fflush(stdout);
}

/* Waits until the context had a peer and lost every one, or until the deadline. */
static void wait_peers_gone(yt_context *ctx, double deadline)
{
    bool had = false;
    while (bench_now() < deadline) {
        size_t n = yt_context_connection_count(ctx);
        if (n > 0)
            had = true;
        else if (had)
            return;
        usleep(20000);
    }
}

static int role_sub(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    yt_context *ctx = make_ctx(bench_argl(argc, argv, "--queue", 0));
    yt_channel *sub = chan(ctx, false, SLOT);
    ready_port(bind_any(ctx));
    double deadline = bench_now() + g_timeout, t_first = 0, t_end = 0, last = bench_now();
    long long count = 0, bad = 0;
    unsigned long long bytes = 0;
    while (count < n && bench_now() < deadline) {
        yt_msg *m = NULL;
        int rc = yt_channel_recv(sub, 0.5, &m);
        if (rc != YT_OK) {
            if (rc == YT_ETIMEDOUT && bench_now() - last < 20.0)
                continue;
            break; /* closed, or nothing for 20 s: report what arrived */
        }
        if (count == 0)
            t_first = bench_now();
        bad += yt_msg_size(m) != size;
        bytes += yt_msg_size(m);
        count++;
        yt_msg_free(m);
        /* Then take whatever else is queued in one go. */
        yt_msg **v = NULL;
        size_t k = 0;
        if (yt_channel_recv_all(sub, &v, &k) == YT_OK) {
            for (size_t i = 0; i < k; i++) {
                bad += yt_msg_size(v[i]) != size;
                bytes += yt_msg_size(v[i]);
                yt_msg_free(v[i]);
            }
            count += (long long)k;
            yt_free(v);
        }
        last = t_end = bench_now();
    }
    printf("RESULT role=sub count=%lld expected=%lld bad=%lld bytes=%llu t_first=%.6f t_end=%.6f "
           "discarded=%llu",
           count, n, bad, bytes, t_first, t_end,
           (unsigned long long)(yt_channel_discarded(sub) + yt_context_discarded(ctx)));
    bench_result_tail();
    yt_channel_free(sub);
    yt_context_free(ctx);
    return count == n && bad == 0 ? 0 : 1;
}

static int role_pub(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    int port = (int)bench_argl(argc, argv, "--port", 0);
    yt_context *ctx = make_ctx(bench_argl(argc, argv, "--queue", 0));
    yt_channel *pub = chan(ctx, true, SLOT);
    yt_channel_set_refuse_when_full(pub, true);
    /* One large message is built in place before the clock starts (as raw TCP's buffer is) and
     * sent without a copy: yt_msg_new + yt_channel_send_msg, the API for large payloads. */
    yt_msg *whole = NULL;
    char *buf = NULL;
    if (n == 1 && size >= ((size_t)1 << 20)) {
        if (yt_msg_new(size, &whole) != YT_OK)
            bench_die("out of memory");
        memset(yt_msg_buffer(whole), 'x', size);
    } else if ((buf = malloc(size ? size : 1)) != NULL) {
        memset(buf, 'x', size);
    } else {
        bench_die("out of memory");
    }
    connect_port(ctx, port);
    double deadline = bench_now() + g_timeout;
    double t_start = bench_now();
    long long retries = 0, sent = 0;
    if (whole) {
        if (yt_channel_send_msg(pub, whole) != YT_OK)
            bench_die("send: %s", yt_last_error());
        sent = 1;
    }
    /* The clock is read once per 1024 messages: per message it would show in the profile. */
    for (; sent < n && ((sent & 1023) != 0 || bench_now() < deadline); sent++) {
        int rc;
        while ((rc = yt_channel_send(pub, buf, size)) == YT_EFULL) {
            retries++;
            sched_yield();
        }
        if (rc != YT_OK)
            bench_die("send: %s", yt_last_error());
    }
    double t_sent = bench_now();
    int frc = yt_context_flush(ctx, deadline - bench_now());
    double t_flushed = bench_now();
    printf("RESULT role=pub sent=%lld retries=%lld t_start=%.6f t_sent=%.6f t_flushed=%.6f "
           "flush_ok=%d discarded=%llu",
           sent, retries, t_start, t_sent, t_flushed, frc == YT_OK,
           (unsigned long long)yt_context_discarded(ctx));
    bench_result_tail();
    if (bench_argl(argc, argv, "--hold", 0)) {
        /* Stay connected until the runner closes our stdin: a relay downstream may still be
         * reading what we wrote, and closing now loses it (see docs/benchmarks.md). */
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        char c;
        while (poll(&pfd, 1, (int)(g_timeout * 1000)) > 0 && read(0, &c, 1) > 0)
            ;
    }
    free(buf);
    yt_channel_free(pub);
    yt_context_free(ctx);
    return 0;
}

static int role_pong(int argc, char **argv)
{
    long long n = bench_argl(argc, argv, "--count", -1);
    yt_context *ctx = make_ctx(0);
    yt_channel *in = chan(ctx, false, "ping");
    yt_channel *out = chan(ctx, true, "pong");
    ready_port(bind_any(ctx));
    double deadline = bench_now() + g_timeout;
    long long count = 0;
    bool had = false;
    while ((n < 0 || count < n) && bench_now() < deadline) {
        yt_msg *m = NULL;
        int rc = yt_channel_recv(in, 0.2, &m);
        if (rc == YT_OK) {
            yt_channel_send(out, yt_msg_data(m), yt_msg_size(m));
            yt_msg_free(m);
            count++;
            had = true;
            continue;
        }
        size_t c = yt_context_connection_count(ctx);
        if (c > 0)
            had = true;
        else if (had)
            break;
    }
    printf("RESULT role=pong count=%lld", count);
    bench_result_tail();
    yt_channel_free(in);
    yt_channel_free(out);
    yt_context_free(ctx);
    return 0;
}

static void report_rtt(const char *role, double *rtt, long long n, double t0, double t1)
{
    double med = bench_quantile(rtt, (size_t)n, 0.5), p99 = bench_quantile(rtt, (size_t)n, 0.99);
    printf("RESULT role=%s count=%lld median_us=%.2f p99_us=%.2f t_start=%.6f t_end=%.6f", role, n,
           med * 1e6, p99 * 1e6, t0, t1);
    bench_result_tail();
}

static int role_ping(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    long long warm = bench_argl(argc, argv, "--warmup", 200);
    int port = (int)bench_argl(argc, argv, "--port", 0);
    yt_context *ctx = make_ctx(0);
    yt_channel *out = chan(ctx, true, "ping");
    yt_channel *in = chan(ctx, false, "pong");
    connect_port(ctx, port);
    char *buf = malloc(size);
    double *rtt = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!buf || !rtt)
        bench_die("out of memory");
    memset(buf, 'p', size);
    double t0 = 0;
    for (long long i = -warm; i < n; i++) {
        if (i == 0)
            t0 = bench_now();
        double a = bench_now();
        if (yt_channel_send(out, buf, size) != YT_OK)
            bench_die("send: %s", yt_last_error());
        yt_msg *m = NULL;
        if (yt_channel_recv(in, 10.0, &m) != YT_OK)
            bench_die("no pong after %lld round trips: %s", i + warm, yt_last_error());
        double b = bench_now();
        if (yt_msg_size(m) != size)
            bench_die("pong of %zu bytes", yt_msg_size(m));
        yt_msg_free(m);
        if (i >= 0)
            rtt[i] = b - a;
    }
    report_rtt("ping", rtt, n, t0, bench_now());
    free(rtt);
    free(buf);
    yt_channel_free(out);
    yt_channel_free(in);
    yt_context_free(ctx);
    return 0;
}

static int role_rep(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    yt_context *ctx = make_ctx(0);
    yt_channel *rep = NULL;
    if (yt_rep_new(ctx, SLOT, &rep) != YT_OK || yt_rep_set_mode(rep, YT_REP_THREAD) != YT_OK)
        bench_die("rep: %s", yt_last_error());
    ready_port(bind_any(ctx));
    wait_peers_gone(ctx, bench_now() + g_timeout);
    printf("RESULT role=rep");
    bench_result_tail();
    yt_channel_free(rep);
    yt_context_free(ctx);
    return 0;
}

static int role_req(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    long long warm = bench_argl(argc, argv, "--warmup", 200);
    int port = (int)bench_argl(argc, argv, "--port", 0);
    yt_context *ctx = make_ctx(0);
    yt_channel *req = NULL;
    if (yt_req_new(ctx, SLOT, &req) != YT_OK)
        bench_die("req: %s", yt_last_error());
    connect_port(ctx, port);
    char *s = malloc(size + 1);
    double *rtt = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!s || !rtt)
        bench_die("out of memory");
    memset(s, 'r', size);
    s[size] = 0;
    yt_value *args = yt_value_tuple();
    yt_value_append(args, yt_value_string(s));
    double t0 = 0;
    for (long long i = -warm; i < n; i++) {
        if (i == 0)
            t0 = bench_now();
        double a = bench_now();
        yt_future *f = NULL;
        if (yt_req_call(req, "echo", args, NULL, &f) != YT_OK)
            bench_die("call: %s", yt_last_error());
        yt_value *v = NULL;
        int rc = yt_future_result(f, 10.0, &v);
        if (rc != YT_OK)
            bench_die("result after %lld calls: %s (%s)", i + warm, yt_strerror(rc),
                      yt_last_error());
        double b = bench_now();
        yt_value_free(v);
        yt_future_free(f);
        if (i >= 0)
            rtt[i] = b - a;
    }
    report_rtt("req", rtt, n, t0, bench_now());
    yt_value_free(args);
    free(rtt);
    free(s);
    yt_channel_free(req);
    yt_context_free(ctx);
    return 0;
}

static long threads_now(void)
{
    char line[256];
    long t = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &t) == 1)
            break;
    fclose(f);
    return t;
}

static void print_ports(int *ports, int n)
{
    printf("READY ports=");
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ports[i]);
    printf("\n");
    fflush(stdout);
}

static int parse_ports(const char *s, int *ports, int cap)
{
    int n = 0;
    while (s && *s && n < cap) {
        ports[n++] = (int)strtol(s, (char **)&s, 10);
        if (*s == ',')
            s++;
    }
    return n;
}

static int wait_count(yt_context *ctx, size_t want, double deadline)
{
    while (yt_context_connection_count(ctx) < want) {
        if (bench_now() > deadline)
            return -1;
        usleep(10000);
    }
    return 0;
}

static int role_idle_host(int argc, char **argv)
{
    int n = (int)bench_argl(argc, argv, "--n", 100);
    yt_context *ctx = make_ctx(0);
    long rss0 = bench_rss_kb(), th0 = threads_now();
    int *ports = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++)
        ports[i] = bind_any(ctx);
    print_ports(ports, n);
    if (wait_count(ctx, (size_t)n, bench_now() + 60) != 0)
        bench_die("idle-host: only %zu connections", yt_context_connection_count(ctx));
    sleep(1); /* let the threads settle into their idle waits */
    long rss1 = bench_rss_kb(), th1 = threads_now();
    printf("RESULT role=idle-host n=%d rss0_kb=%ld rss1_kb=%ld per_conn_kb=%.1f threads=%ld", n,
           rss0, rss1, (double)(rss1 - rss0) / n, th1 - th0);
    bench_result_tail();
    wait_peers_gone(ctx, bench_now() + 20);
    free(ports);
    yt_context_free(ctx);
    return 0;
}

static int role_idle_client(int argc, char **argv)
{
    int ports[1024];
    int n = parse_ports(bench_arg(argc, argv, "--ports", ""), ports, 1024);
    yt_context *ctx = make_ctx(0);
    long rss0 = bench_rss_kb(), th0 = threads_now();
    for (int i = 0; i < n; i++)
        connect_port(ctx, ports[i]);
    sleep(1);
    long rss1 = bench_rss_kb(), th1 = threads_now();
    printf("RESULT role=idle-client n=%d rss0_kb=%ld rss1_kb=%ld per_conn_kb=%.1f threads=%ld", n,
           rss0, rss1, (double)(rss1 - rss0) / (n ? n : 1), th1 - th0);
    bench_result_tail();
    sleep(2); /* the host measures while we are still connected */
    yt_context_free(ctx);
    return 0;
}

static int role_broker(int argc, char **argv)
{
    int n = (int)bench_argl(argc, argv, "--n", 101);
    yt_context *ctx = make_ctx(bench_argl(argc, argv, "--queue", 0));
    int *ports = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++)
        ports[i] = bind_any(ctx);
    print_ports(ports, n);
    double deadline = bench_now() + g_timeout;
    wait_count(ctx, (size_t)n, deadline);
    /* The subscribers leave once they counted everything; then we are done. */
    while (yt_context_connection_count(ctx) > 1 && bench_now() < deadline)
        usleep(20000);
    printf("RESULT role=broker discarded=%llu", (unsigned long long)yt_context_discarded(ctx));
    bench_result_tail();
    free(ports);
    yt_context_free(ctx);
    return 0;
}

static int role_subs(int argc, char **argv)
{
    static int ports[1024];
    int n = parse_ports(bench_arg(argc, argv, "--ports", ""), ports, 1024);
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long want = bench_argl(argc, argv, "--count", 1000);
    long long queue = bench_argl(argc, argv, "--queue", 0);
    yt_context **ctx = calloc((size_t)n, sizeof *ctx);
    yt_channel **sub = calloc((size_t)n, sizeof *sub);
    long long *got = calloc((size_t)n, sizeof *got);
    for (int i = 0; i < n; i++) {
        ctx[i] = make_ctx(queue);
        sub[i] = chan(ctx[i], false, SLOT);
        connect_port(ctx[i], ports[i]);
    }
    printf("READY subs=%d\n", n);
    fflush(stdout);
    double deadline = bench_now() + g_timeout, t_end = 0, last = bench_now();
    long long total = 0, bad = 0;
    int done = 0;
    while (done < n && bench_now() < deadline && bench_now() - last < 20.0) {
        bool any = false;
        for (int i = 0; i < n; i++) {
            if (got[i] >= want)
                continue;
            yt_msg **v = NULL;
            size_t k = 0;
            if (yt_channel_recv_all(sub[i], &v, &k) != YT_OK || k == 0)
                continue;
            any = true;
            for (size_t j = 0; j < k; j++) {
                bad += yt_msg_size(v[j]) != size;
                yt_msg_free(v[j]);
            }
            yt_free(v);
            got[i] += (long long)k;
            total += (long long)k;
            if (got[i] >= want)
                done++;
        }
        if (any)
            last = t_end = bench_now();
        else
            usleep(200);
    }
    long long minc = want;
    unsigned long long disc = 0;
    for (int i = 0; i < n; i++) {
        if (got[i] < minc)
            minc = got[i];
        disc += yt_channel_discarded(sub[i]);
    }
    int short_subs = 0;
    for (int i = 0; i < n; i++)
        short_subs += got[i] < want;
    printf("RESULT role=subs n=%d count=%lld expected=%lld min_per_sub=%lld short_subs=%d bad=%lld "
           "t_end=%.6f discarded=%llu",
           n, total, want * n, minc, short_subs, bad, t_end, disc);
    bench_result_tail();
    for (int i = 0; i < n; i++) {
        yt_channel_free(sub[i]);
        yt_context_free(ctx[i]);
    }
    free(ctx);
    free(sub);
    free(got);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage: yt_bench ROLE [--option value ...] (see the comment at the top)");
    g_timeout = bench_argd(argc, argv, "--timeout", 300);
    g_ipc = bench_arg(argc, argv, "--ipc", NULL);
    const char *r = argv[1];
    if (!strcmp(r, "sub"))
        return role_sub(argc, argv);
    if (!strcmp(r, "pub"))
        return role_pub(argc, argv);
    if (!strcmp(r, "pong"))
        return role_pong(argc, argv);
    if (!strcmp(r, "ping"))
        return role_ping(argc, argv);
    if (!strcmp(r, "rep"))
        return role_rep(argc, argv);
    if (!strcmp(r, "req"))
        return role_req(argc, argv);
    if (!strcmp(r, "idle-host"))
        return role_idle_host(argc, argv);
    if (!strcmp(r, "idle-client"))
        return role_idle_client(argc, argv);
    if (!strcmp(r, "broker"))
        return role_broker(argc, argv);
    if (!strcmp(r, "subs"))
        return role_subs(argc, argv);
    bench_die("unknown role %s", r);
    return 2;
}

/*
 * tcp_bench.c - the raw TCP contender: the limit of what a yoton-like protocol can do here.
 *
 * Same framing as yoton (a 56-byte header of 7 u64 fields, the last one the payload length,
 * then the payload), no handshake, no routing, no queues, no threads. The sender batches: one
 * writev() carries up to 64 packages (header + payload iovecs, ~256 KiB at most). The receiver
 * parses packages in place from a 256 KiB buffer, many per read(); a payload larger than the
 * buffer is read straight into its own allocation. Roles as in yt_bench.c: sub, pub, pong,
 * ping. Single-threaded; every blocking read has a deadline via SO_RCVTIMEO.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define HDR 56
#define CONTROL 0x2020204E4F544F59ull
#define BATCH 64
#define RBUF (256 * 1024)

static double g_timeout;

static void set_opts(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {(time_t)g_timeout, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        bench_die("listen: %s", strerror(errno));
    *port = ntohs(a.sin_port);
    return fd;
}

static int accept_one(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        bench_die("accept: %s", strerror(errno));
    close(lfd);
    set_opts(fd);
    return fd;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        bench_die("connect: %s", strerror(errno));
    set_opts(fd);
    return fd;
}

static void make_hdr(uint64_t *h, uint64_t seq, uint64_t len)
{
    h[0] = CONTROL;
    h[1] = 12345;
    h[2] = 42;
    h[3] = seq;
    h[4] = 0;
    h[5] = 0;
    h[6] = len;
}

/* Writes every byte of iov[0..n), continuing after short writes. */
static void writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            bench_die("writev: %s", strerror(errno));
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int role_sub(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    int port, lfd = listen_any(&port);
    printf("READY port=%d\n", port);
    fflush(stdout);
    int fd = accept_one(lfd);
    char *buf = malloc(RBUF);
    size_t have = 0;
    long long count = 0, bad = 0;
    unsigned long long bytes = 0;
    double t_first = 0, t_end = 0;
    while (count < n) {
        ssize_t r = read(fd, buf + have, RBUF - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (count == 0 && t_first == 0)
            t_first = bench_now();
        have += (size_t)r;
        size_t off = 0;
        while (have - off >= HDR) {
            uint64_t h[7];
            memcpy(h, buf + off, HDR);
            if (h[0] != CONTROL)
                bench_die("bad control word");
            if (h[6] > RBUF - HDR) {
                /* Large payload: straight into its own buffer, no intermediate copy. */
                char *big = malloc(h[6]);
                size_t part = have - off - HDR;
                memcpy(big, buf + off + HDR, part);
                if (read_full(fd, big + part, h[6] - part) != 0)
                    bench_die("short large payload");
                bad += h[6] != size;
                bytes += h[6];
                count++;
                free(big);
                off = have;
                break;
            }
            if (have - off - HDR < h[6])
                break;
            bad += h[6] != size;
            bytes += h[6];
            count++;
            off += HDR + h[6];
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        t_end = bench_now();
    }
    printf("RESULT role=sub count=%lld expected=%lld bad=%lld bytes=%llu t_first=%.6f t_end=%.6f "
           "discarded=0",
           count, n, bad, bytes, t_first, t_end);
    bench_result_tail();
    free(buf);
    close(fd);
    return count == n ? 0 : 1;
}

static int role_pub(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    int fd = connect_port((int)bench_argl(argc, argv, "--port", 0));
    char *payload = malloc(size);
    memset(payload, 'x', size);
    static uint64_t hdr[BATCH][7];
    struct iovec iov[2 * BATCH];
    double t_start = bench_now();
    long long sent = 0;
    while (sent < n) {
        int k = 0;
        size_t batch_bytes = 0;
        while (sent < n && k < BATCH && batch_bytes < 256 * 1024) {
            make_hdr(hdr[k], (uint64_t)sent + 1, size);
            iov[2 * k] = (struct iovec){hdr[k], HDR};
            iov[2 * k + 1] = (struct iovec){payload, size};
            batch_bytes += HDR + size;
            k++;
            sent++;
        }
        writev_all(fd, iov, 2 * k);
    }
    double t_sent = bench_now();
    printf("RESULT role=pub sent=%lld retries=0 t_start=%.6f t_sent=%.6f t_flushed=%.6f "
           "flush_ok=1 discarded=0",
           sent, t_start, t_sent, t_sent);
    bench_result_tail();
    shutdown(fd, SHUT_WR);
    char c;
    while (read(fd, &c, 1) > 0) /* wait for the receiver to finish (it closes) */
        ;
    close(fd);
    free(payload);
    return 0;
}

/* One package each way; returns the payload length read, -1 on end. */
static long read_pkg(int fd, char *buf, size_t cap)
{
    uint64_t h[7];
    if (read_full(fd, h, HDR) != 0 || h[6] > cap || read_full(fd, buf, h[6]) != 0)
        return -1;
    return (long)h[6];
}

static void write_pkg(int fd, const char *data, size_t len, uint64_t seq)
{
    uint64_t h[7];
    make_hdr(h, seq, len);
    struct iovec iov[2] = {{h, HDR}, {(void *)data, len}};
    writev_all(fd, iov, 2);
}

static int role_pong(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int port, lfd = listen_any(&port);
    printf("READY port=%d\n", port);
    fflush(stdout);
    int fd = accept_one(lfd);
    char buf[65536];
    long long count = 0;
    long len;
    while ((len = read_pkg(fd, buf, sizeof buf)) >= 0)
        write_pkg(fd, buf, (size_t)len, (uint64_t)++count);
    printf("RESULT role=pong count=%lld", count);
    bench_result_tail();
    close(fd);
    return 0;
}

static int role_ping(int argc, char **argv)
{
    size_t size = (size_t)bench_argl(argc, argv, "--size", 16);
    long long n = bench_argl(argc, argv, "--count", 1000);
    long long warm = bench_argl(argc, argv, "--warmup", 200);
    int fd = connect_port((int)bench_argl(argc, argv, "--port", 0));
    char buf[65536], out[65536];
    memset(out, 'p', sizeof out);
    double *rtt = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double t0 = 0;
    for (long long i = -warm; i < n; i++) {
        if (i == 0)
            t0 = bench_now();
        double a = bench_now();
        write_pkg(fd, out, size, (uint64_t)(i + warm + 1));
        if (read_pkg(fd, buf, sizeof buf) != (long)size)
            bench_die("bad pong");
        if (i >= 0)
            rtt[i] = bench_now() - a;
    }
    double t1 = bench_now();
    double med = bench_quantile(rtt, (size_t)n, 0.5), p99 = bench_quantile(rtt, (size_t)n, 0.99);
    printf("RESULT role=ping count=%lld median_us=%.2f p99_us=%.2f t_start=%.6f t_end=%.6f", n,
           med * 1e6, p99 * 1e6, t0, t1);
    bench_result_tail();
    close(fd);
    free(rtt);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage: tcp_bench sub|pub|pong|ping [--option value ...]");
    g_timeout = bench_argd(argc, argv, "--timeout", 300);
    if (!strcmp(argv[1], "sub"))
        return role_sub(argc, argv);
    if (!strcmp(argv[1], "pub"))
        return role_pub(argc, argv);
    if (!strcmp(argv[1], "pong"))
        return role_pong(argc, argv);
    if (!strcmp(argv[1], "ping"))
        return role_ping(argc, argv);
    bench_die("unknown role %s", argv[1]);
    return 2;
}

/*
 * fuzz_stream - libFuzzer target for the package stream parser, driven for real.
 *
 * The parser lives inside the connection's receiver thread (connection.c), so instead of calling
 * it this target feeds a real context as a peer would: one context (created once, private loop,
 * small max_package_size and queues so that hostile lengths are cheap) hosts on 127.0.0.1:0 for
 * every execution; a raw client socket (from a different 127.x.y.z address each time, so the
 * TIME_WAITs of earlier executions never exhaust the client ports) does a valid handshake with
 * a fresh fake id, then writes
 * the input in chunks whose sizes come from the input's first byte, shuts down writing, and
 * waits until the context has closed the connection (end of stream, or a protocol error). A
 * subscriber on "chat" (text) is drained each time, so packages on its slot (the seeds from
 * tests/vectors/header.txt use it) also run the channel deposit path, and the private loop is
 * processed so that signals do not pile up across executions.
 *
 * Checks: no crash, no sanitizer report, no hang (a connection still alive 5 s after the input
 * ended aborts), and the context keeps serving (the next execution binds and handshakes again).
 * Split points are best effort: TCP may coalesce chunks, TCP_NODELAY and a yield between writes
 * make splits at the chosen points likely. Threads: the context's IO threads plus this one.
 */
#include "package.h"
#include "uid.h"
#include "yoton.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static yt_loop *loop;
static yt_context *ctx;
static yt_channel *sub;
static uint64_t next_id = UINT64_C(0x1100000000000000);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(void)
{
    yt_context_options o;
    yt_context_options_init(&o);
    if (yt_loop_new(&loop) != YT_OK)
        abort();
    o.loop = loop;
    o.queue_size = 64;
    o.max_package_size = 64 * 1024;
    if (yt_context_new(&o, &ctx) != YT_OK || yt_sub_new(ctx, "chat", YT_TEXT, &sub) != YT_OK)
        abort();
}

/* Reads and throws away what the host sends (its greeting, heartbeats), waiting up to timeout s
 * for something to arrive; returns false at EOF/error. libFuzzer's SIGALRM (its -timeout
 * watchdog) interrupts poll and recv, so EINTR means "try again", not "nothing came". */
static bool drain(int fd, double timeout, char *line, size_t cap)
{
    double end = now() + timeout;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        double left = end - now();
        int pr = poll(&p, 1, left > 0 ? (int)(left * 1000) : 0);
        if (pr < 0 && errno == EINTR && left > 0)
            continue;
        if (pr <= 0)
            return true;
        ssize_t n = recv(fd, line, cap - 1, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 && errno == EAGAIN;
        line[n] = '\0';
        return true;
    }
}

/* send() that carries on after an interruption; returns bytes sent or -1. */
static ssize_t send_some(int fd, const void *buf, size_t n)
{
    ssize_t w;
    do {
        w = send(fd, buf, n, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    return w;
}

static int client(int port)
{
    /* Thousands of connections a second, each leaving a TIME_WAIT behind its client port: from
     * one address the ephemeral ports run out within a minute (connect then fails with
     * EADDRNOTAVAIL, which is the harness's problem, not the library's). So each execution
     * connects from another loopback address of 127.0.0.0/8, each with its own ports. */
    static uint32_t n;
    n = (n + 1) % (250u * 250u);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in local = {.sin_family = AF_INET};
    local.sin_addr.s_addr = htonl(UINT32_C(0x7f000000) | (n / 250 + 2) << 8 | (n % 250 + 2));
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
        perror("fuzz_stream: bind of the client socket");
        abort();
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        /* Interrupted (SIGALRM, see drain): the connect goes on; wait for its outcome. */
        int err = errno;
        if (err == EINTR) {
            struct pollfd pw = {.fd = fd, .events = POLLOUT};
            while (poll(&pw, 1, 5000) < 0 && errno == EINTR) {
            }
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
        if (err) {
            fprintf(stderr, "fuzz_stream: connect: %s\n", strerror(err));
            abort();
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        setup();
    if (size < 1)
        return 0;
    yt_connection *c = NULL;
    if (yt_context_bind(ctx, "127.0.0.1:0", 1, NULL, &c) != YT_OK) {
        fprintf(stderr, "fuzz_stream: bind: %s\n", yt_last_error());
        abort();
    }
    int fd = client(yt_connection_port1(c));
    char greet[YTI_GREETING_MAX];
    size_t gl = yti_greeting_format(next_id++, (long)getpid(), greet);
    if (send_some(fd, greet, gl) != (ssize_t)gl)
        abort();
    char line[512] = "";
    drain(fd, 8.0, line, sizeof line);
    if (strncmp(line, "YOTON!", 6) != 0) {
        /* The host stopped serving. */
        fprintf(stderr, "fuzz_stream: no handshake reply within 8 s (got \"%s\"), connection "
                "%s\n", line, yt_connection_is_waiting(c) ? "waiting" : "not waiting");
        abort();
    }

    /* Chunk sizes: 0 = everything at once; otherwise a small LCG seeded by the first byte picks
     * sizes in 1..(seed % 64 + 1) * 4. */
    unsigned seed = data[0];
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    unsigned maxc = (seed % 64 + 1) * 4;
    while (left > 0) {
        size_t n = left;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % maxc;
            if (n > left)
                n = left;
        }
        ssize_t w = send_some(fd, p, n);
        if (w <= 0)
            break; /* the context dropped us: a protocol error was found */
        p += w;
        left -= (size_t)w;
        if (seed != 0)
            sched_yield();
    }
    shutdown(fd, SHUT_WR);
    double deadline = now() + 5.0;
    while (yt_connection_is_alive(c)) {
        drain(fd, 0.002, line, sizeof line);
        yt_msg *m;
        while ((m = yt_channel_next(sub)) != NULL)
            yt_msg_free(m);
        if (now() > deadline) {
            fprintf(stderr, "fuzz_stream: connection still alive 5 s after the input ended\n");
            abort();
        }
    }
    yt_msg *m;
    while ((m = yt_channel_next(sub)) != NULL)
        yt_msg_free(m);
    yt_loop_process(loop, 0);
    close(fd);
    yt_connection_release(c);
    return 0;
}

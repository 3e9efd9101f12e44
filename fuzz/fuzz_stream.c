/*
 * fuzz_stream - libFuzzer target for the package stream parser, driven for real.
 *
 * The parser lives inside the connection's receiver thread (connection.c), so instead of calling
 * it this target feeds a real context as a peer would: one context (created once, private loop,
 * small max_package_size and queues so that hostile lengths are cheap) hosts on 127.0.0.1:0 for
 * every execution; a raw client socket does a valid handshake with a fresh fake id, then writes
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

/* Reads and throws away what the host sends (its greeting, heartbeats) for up to timeout s;
 * returns false at EOF/error. */
static bool drain(int fd, double timeout, char *line, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(timeout * 1000)) <= 0)
        return true;
    ssize_t n = recv(fd, line, cap - 1, MSG_DONTWAIT);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    line[n] = '\0';
    return true;
}

static int client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        abort();
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
    if (yt_context_bind(ctx, "127.0.0.1:0", 1, NULL, &c) != YT_OK)
        abort();
    int fd = client(yt_connection_port1(c));
    char greet[YTI_GREETING_MAX];
    size_t gl = yti_greeting_format(next_id++, (long)getpid(), greet);
    if (send(fd, greet, gl, MSG_NOSIGNAL) != (ssize_t)gl)
        abort();
    char line[512] = "";
    drain(fd, 3.0, line, sizeof line);
    if (strncmp(line, "YOTON!", 6) != 0)
        abort(); /* the host stopped serving */

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
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
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

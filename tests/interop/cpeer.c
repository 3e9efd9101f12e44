#define _POSIX_C_SOURCE 200809L
/*
 * yt_interop_cpeer - a libyoton context in a process of its own, for the interop scenarios in
 * which a Python peer must see the C side stopped (SIGSTOP), continued or killed.
 *
 *   yt_interop_cpeer bind           binds 127.0.0.1:0 and prints "PORT <n>"
 *   yt_interop_cpeer connect PORT   connects to 127.0.0.1:PORT
 *
 * Then it prints "CONNECTED <peer pid>" once its connection is up, and serves: each text on
 * the TEXT slot "ctl" is answered with "pong" on "ctl-reply" (the Python side drives it that
 * way to show that traffic flows again). Its connection's signals are printed as
 * "TIMEDOUT <0/1>" and "CLOSED <reason>". It processes its event loop every 20 ms, so it is
 * alive under either heartbeat policy.
 *
 * It ends on "quit" or end-of-file on stdin, when its connection closes, and after 120 s in any
 * case, so that a test that dies never leaves it behind for long.
 */
#include "yoton.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_timedout(const yt_event *ev, void *user)
{
    (void)user;
    printf("TIMEDOUT %d\n", ev->flag);
    fflush(stdout);
}

static int closed;

static void on_closed(const yt_event *ev, void *user)
{
    (void)user;
    printf("CLOSED %s\n", ev->text ? ev->text : "");
    fflush(stdout);
    closed = 1;
}

/* True when stdin says stop: "quit", end-of-file or an error. Never blocks. */
static int stdin_says_stop(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    char buf[256];
    ssize_t n = read(0, buf, sizeof buf - 1);
    if (n <= 0)
        return 1;
    buf[n] = '\0';
    return strstr(buf, "quit") != NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    yt_loop *loop;
    if (yt_loop_new(&loop) != YT_OK)
        return 3;
    yt_context_options o;
    yt_context_options_init(&o);
    o.loop = loop;
    yt_context *ctx;
    if (yt_context_new(&o, &ctx) != YT_OK)
        return 3;
    yt_channel *ctl, *reply;
    if (yt_sub_new(ctx, "ctl", YT_TEXT, &ctl) || yt_pub_new(ctx, "ctl-reply", YT_TEXT, &reply))
        return 4;
    yt_connection *c = NULL;
    if (strcmp(argv[1], "bind") == 0) {
        if (yt_context_bind(ctx, "127.0.0.1:0", 1, "cpeer", &c) != YT_OK) {
            fprintf(stderr, "cpeer: %s\n", yt_last_error());
            return 5;
        }
        printf("PORT %d\n", yt_connection_port1(c));
        fflush(stdout);
    } else if (strcmp(argv[1], "connect") == 0 && argc > 2) {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%s", argv[2]);
        if (yt_context_connect(ctx, addr, 10.0, "cpeer", &c) != YT_OK) {
            fprintf(stderr, "cpeer: %s\n", yt_last_error());
            return 6;
        }
    } else {
        return 2;
    }
    yt_signal_bind(yt_connection_timedout_signal(c), on_timedout, NULL);
    yt_signal_bind(yt_connection_closed_signal(c), on_closed, NULL);

    double end = now_s() + 120;
    int announced = 0;
    while (now_s() < end && !closed && !stdin_says_stop()) {
        yt_loop_process(loop, 0.02);
        if (!announced && yt_connection_is_connected(c)) {
            printf("CONNECTED %ld\n", yt_connection_pid2(c));
            fflush(stdout);
            announced = 1;
        }
        yt_msg *m = NULL;
        while (yt_channel_recv(ctl, 0, &m) == YT_OK) {
            yt_channel_send_text(reply, "pong");
            yt_msg_free(m);
        }
    }
    yt_connection_release(c);
    yt_channel_free(ctl);
    yt_channel_free(reply);
    yt_context_free(ctx);
    yt_loop_free(loop);
    return 0;
}

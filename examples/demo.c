#define _POSIX_C_SOURCE 200809L
/*
 * yt_demo - two yoton contexts in two processes exchanging messages.
 *
 * The parent ("ide") binds on an ephemeral port and starts a child ("kernel") that connects to
 * it. They exchange text messages over pub/sub channels. Then the ide stops the kernel process
 * with SIGSTOP: the kernel's heartbeats stop and the ide's connection reports a time-out; SIGCONT
 * brings them back. Finally the kernel is told to quit and closes its side, which the ide sees
 * as "Closed from other end.".
 */
#include "yoton.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double t0;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%6.3f] %-6s ", now() - t0, who);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static int kernel(const char *port)
{
    yt_context *ctx;
    yt_channel *in, *out;
    yt_context_new(NULL, &ctx);
    yt_sub_new(ctx, "demo-code", YT_TEXT, &in);
    yt_pub_new(ctx, "demo-output", YT_TEXT, &out);
    char addr[64];
    snprintf(addr, sizeof addr, "localhost:%s", port);
    if (yt_context_connect(ctx, addr, 5.0, "ide", NULL) != YT_OK) {
        fprintf(stderr, "kernel: %s\n", yt_last_error());
        return 1;
    }
    for (;;) {
        yt_msg *m = NULL;
        if (yt_channel_recv(in, 30.0, &m) != YT_OK)
            break;
        const char *code = yt_msg_text(m);
        if (strcmp(code, "quit") == 0) {
            yt_msg_free(m);
            break;
        }
        char reply[512];
        snprintf(reply, sizeof reply, "ran '%s' (%zu characters)", code, strlen(code));
        yt_channel_send_text(out, reply);
        yt_msg_free(m);
    }
    yt_context_free(ctx); /* closes the connection: the ide sees "Closed from other end." */
    return 0;
}

static void on_timedout(const yt_event *ev, void *user)
{
    (void)user;
    say("ide", ev->flag ? "connection timed out: the kernel is silent (stopped or busy)"
                        : "data flows again: the kernel is back");
}

static void on_closed(const yt_event *ev, void *user)
{
    *(int *)user = 1;
    say("ide", "connection closed: %s", ev->text);
}

static void pump(double seconds)
{
    double end = now() + seconds;
    while (now() < end)
        yt_loop_process(yt_loop_default(), 0.02);
}

int main(int argc, char **argv)
{
    t0 = now();
    if (argc == 3 && strcmp(argv[1], "kernel") == 0)
        return kernel(argv[2]);

    printf("libyoton %s demo: an ide and a kernel in two processes\n\n", yt_version_string());
    yt_context *ctx;
    yt_channel *code, *output;
    yt_connection *conn;
    yt_context_new(NULL, &ctx);
    yt_pub_new(ctx, "demo-code", YT_TEXT, &code);
    yt_sub_new(ctx, "demo-output", YT_TEXT, &output);
    if (yt_context_bind(ctx, "localhost:0", 1, "kernel", &conn) != YT_OK) {
        fprintf(stderr, "bind: %s\n", yt_last_error());
        return 1;
    }
    int closed = 0;
    yt_signal_bind(yt_connection_timedout_signal(conn), on_timedout, NULL);
    yt_signal_bind(yt_connection_closed_signal(conn), on_closed, &closed);
    char port[16];
    snprintf(port, sizeof port, "%d", yt_connection_port1(conn));
    say("ide", "hosting at 127.0.0.1:%s (id %016llx)", port,
        (unsigned long long)yt_context_id(ctx));

    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "kernel", port, (char *)NULL);
        _exit(127);
    }
    while (!yt_connection_is_connected(conn) && now() - t0 < 10)
        pump(0.02);
    if (!yt_connection_is_connected(conn)) {
        fprintf(stderr, "the kernel did not connect\n");
        kill(pid, SIGKILL);
        return 1;
    }
    say("ide", "kernel connected: pid %ld, id %016llx", yt_connection_pid2(conn),
        (unsigned long long)yt_connection_id2(conn));

    const char *snippets[] = {"print('hello')", "x = 6 * 7", "import this"};
    for (int i = 0; i < 3; i++) {
        say("ide", "send code: %s", snippets[i]);
        yt_channel_send_text(code, snippets[i]);
        yt_msg *m = NULL;
        if (yt_channel_recv(output, 5.0, &m) == YT_OK)
            say("kernel", "%s", yt_msg_text(m));
        yt_msg_free(m);
    }

    say("ide", "stopping the kernel process (SIGSTOP) for 1.5 s");
    kill(pid, SIGSTOP);
    pump(1.5);
    say("ide", "continuing the kernel process (SIGCONT)");
    kill(pid, SIGCONT);
    pump(0.5);

    say("ide", "send code: quit");
    yt_channel_send_text(code, "quit");
    while (!closed && now() - t0 < 20)
        pump(0.05);
    int status = 0;
    waitpid(pid, &status, 0);
    say("ide", "kernel exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    yt_connection_release(conn);
    yt_channel_free(code);
    yt_channel_free(output);
    yt_context_free(ctx);
    return closed ? 0 : 1;
}

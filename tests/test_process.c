/*
 * Contexts in two processes: the yt_peer helper program, and what a context sees when its peer
 * process is stopped, continued or killed.
 */
#include "netutil.h"
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads one line from the peer's stdout (bounded). */
static bool peer_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    double end = mono_now() + 10;
    while (n + 1 < cap && mono_now() < end) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r <= 0)
            break;
        if (ch == '\n')
            break;
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return n > 0;
}

typedef struct proc_net {
    yt_loop *loop;
    yt_context *ctx;
    yt_connection *c;
    yt_channel *pub, *sub;
    pid_t pid;
    int out;
    recorder closed, timedout;
} proc_net;

/* This process binds; the peer process connects. */
static void proc_up(proc_net *p)
{
    memset(p, 0, sizeof *p);
    yt_loop_new(&p->loop);
    p->ctx = make_ctx(p->loop);
    int port;
    p->c = bind_any(p->ctx, &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->c);
    yt_signal_bind(yt_connection_closed_signal(p->c), rec_handler, &p->closed);
    yt_signal_bind(yt_connection_timedout_signal(p->c), rec_handler, &p->timedout);
    yt_pub_new(p->ctx, "ping", YT_TEXT, &p->pub);
    yt_sub_new(p->ctx, "pong", YT_TEXT, &p->sub);
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {(char *)"yt_peer", (char *)"connect", ports, NULL};
    p->pid = spawn_peer(argv, &p->out);
    CU_ASSERT_FATAL(p->pid > 0);
    char line[128];
    CU_ASSERT_TRUE_FATAL(peer_line(p->out, line, sizeof line));
    CU_ASSERT_EQUAL(strncmp(line, "CONNECTED ", 10), 0);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, p->c, 3.0));
    /* The peer's context id, as it printed it, is what the handshake told us. */
    CU_ASSERT_EQUAL(strtoull(line + 10, NULL, 10), yt_connection_id2(p->c));
    CU_ASSERT_EQUAL(yt_connection_pid2(p->c), (long)p->pid);
}

static void proc_down(proc_net *p)
{
    kill_peer(p->pid);
    close(p->out);
    yt_channel_free(p->pub);
    yt_channel_free(p->sub);
    yt_connection_release(p->c);
    yt_context_free(p->ctx);
    yt_loop_free(p->loop);
}

static void ping(proc_net *p, const char *text)
{
    char want[256];
    snprintf(want, sizeof want, "pong:%s", text);
    CU_ASSERT_EQUAL(yt_channel_send_text(p->pub, text), YT_OK);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(p->sub, 5.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), want);
    yt_msg_free(m);
}

static bool has_events(void *arg)
{
    return ((recorder *)arg)->count > 0;
}

static bool has_two(void *arg)
{
    return ((recorder *)arg)->count > 1;
}

static void test_two_processes(void)
{
    proc_net p;
    proc_up(&p);
    for (int i = 0; i < 20; i++) {
        char t[32];
        snprintf(t, sizeof t, "hello %d", i);
        ping(&p, t);
    }
    /* The peer quits: it closes its context, we see its close package. */
    yt_channel_send_text(p.pub, "quit");
    CU_ASSERT_TRUE(wait_until(p.loop, has_events, &p.closed, 5.0));
    CU_ASSERT_STRING_EQUAL(p.closed.text[0], "Closed from other end.");
    proc_down(&p);
}

static void test_stopped_peer_times_out(void)
{
    proc_net p;
    proc_up(&p);
    ping(&p, "before");
    kill(p.pid, SIGSTOP);
    double t0 = mono_now();
    CU_ASSERT_TRUE(wait_until(p.loop, has_events, &p.timedout, 5.0));
    double el = mono_now() - t0;
    CU_ASSERT_EQUAL(p.timedout.flag[0], 1);
    CU_ASSERT(el >= 0.25); /* the last heartbeat may have been just before the stop */
    CU_ASSERT(el < 2.0);
    kill(p.pid, SIGCONT);
    CU_ASSERT_TRUE(wait_until(p.loop, has_two, &p.timedout, 5.0));
    CU_ASSERT_EQUAL(p.timedout.flag[1], 0);
    ping(&p, "after");
    CU_ASSERT_EQUAL(p.closed.count, 0);
    proc_down(&p);
}

static void test_nothing_lost_while_stopped(void)
{
    proc_net p;
    proc_up(&p);
    ping(&p, "before");
    /* 500 messages sent while the peer is stopped for longer than the time-out: they wait in
     * queues and socket buffers; after SIGCONT every one is answered, in order. */
    kill(p.pid, SIGSTOP);
    for (int i = 0; i < 500; i++) {
        char t[32];
        snprintf(t, sizeof t, "held %d", i);
        CU_ASSERT_EQUAL(yt_channel_send_text(p.pub, t), YT_OK);
    }
    CU_ASSERT_TRUE(wait_until(p.loop, has_events, &p.timedout, 5.0));
    CU_ASSERT_EQUAL(p.timedout.flag[0], 1);
    kill(p.pid, SIGCONT);
    for (int i = 0; i < 500; i++) {
        yt_msg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_channel_recv(p.sub, 10.0, &m), YT_OK);
        char want[32];
        snprintf(want, sizeof want, "pong:held %d", i);
        CU_ASSERT_STRING_EQUAL(yt_msg_text(m), want);
        yt_msg_free(m);
    }
    CU_ASSERT_TRUE(wait_until(p.loop, has_two, &p.timedout, 5.0));
    CU_ASSERT_EQUAL(p.timedout.flag[1], 0);
    CU_ASSERT_EQUAL(p.closed.count, 0);
    proc_down(&p);
}

static void test_killed_peer_closes(void)
{
    proc_net p;
    proc_up(&p);
    ping(&p, "alive");
    kill(p.pid, SIGKILL);
    double t0 = mono_now();
    CU_ASSERT_TRUE(wait_until(p.loop, has_events, &p.closed, 5.0));
    CU_ASSERT(mono_now() - t0 < 1.0);
    CU_ASSERT(strcmp(p.closed.text[0], "Other end dropped the connection.") == 0 ||
              strncmp(p.closed.text[0], "yoton.ReceivingThread, Socket error.", 36) == 0);
    CU_ASSERT_FALSE(yt_connection_is_alive(p.c));
    proc_down(&p);
}

void yt_suite_process(void)
{
    static const yt_test_def t[] = {{"two_processes", test_two_processes},
                                    {"stopped_peer_times_out", test_stopped_peer_times_out},
                                    {"nothing_lost_while_stopped", test_nothing_lost_while_stopped},
                                    {"killed_peer_closes", test_killed_peer_closes},
                                    {NULL, NULL}};
    yt_add_suite("process", t);
}

/*
 * The protocol as bytes: a raw socket plays the other context, so every header field, routing
 * rule and limit is checked on the wire, not only between two libyoton contexts.
 */
#include "hash.h"
#include "netutil.h"
#include "package.h"
#include "testutil.h"
#include "uid.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RAW_ID UINT64_C(0xabcdef0123456789)

/* A context bound at an ephemeral port with a raw client that did the handshake. */
static void test_exact_bytes_of_a_message(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *pub;
    yt_pub_new(w.ctx, "chat", YT_TEXT, &pub);
    yt_channel_send_text(pub, "hello");
    yti_header h;
    char data[64];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.slot, UINT64_C(17460451874447));
    CU_ASSERT_EQUAL(h.source_id, yt_context_id(w.ctx));
    CU_ASSERT_EQUAL(h.source_seq, 1);
    CU_ASSERT_EQUAL(h.dest_id, 0);
    CU_ASSERT_EQUAL(h.dest_seq, 0);
    CU_ASSERT_STRING_EQUAL(data, "hello");
    yt_channel_send_text(pub, "again");
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(w.fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_EQUAL(h.source_seq, 2);
    yt_channel_free(pub);
    wire_down(&w);
}

static void test_dedupe_and_delivery_rules(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *sub;
    yt_sub_new(w.ctx, "chat", YT_TEXT, &sub);
    uint64_t slot = slot_of("chat", "txt", "pub-sub");
    uint64_t me = yt_context_id(w.ctx);
    raw_send_pkg(w.fd, slot, 500, 1, 0, 0, "a", 1);         /* delivered */
    raw_send_pkg(w.fd, slot, 500, 1, 0, 0, "dup", 3);       /* same seq: dropped */
    raw_send_pkg(w.fd, slot, 500, 3, 0, 0, "b", 1);         /* gaps are fine */
    raw_send_pkg(w.fd, slot, 500, 2, 0, 0, "old", 3);       /* lower: dropped */
    raw_send_pkg(w.fd, slot, 501, 0, 0, 0, "zero", 4);      /* seq 0 is always dropped */
    raw_send_pkg(w.fd, slot, 501, 1, me, 0, "c", 1);        /* addressed to us: delivered */
    raw_send_pkg(w.fd, slot, 501, 2, 12345, 0, "other", 5); /* addressed elsewhere: not here */
    raw_send_pkg(w.fd, slot, me, 99, 0, 0, "mine", 4);      /* our own id came back: dropped */
    raw_send_pkg(w.fd, slot + 1, 502, 1, 0, 0, "noslot", 6); /* nobody listens: discarded */
    raw_send_pkg(w.fd, slot, 502, 2, 0, 0, "d", 1);
    const char *want[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        yt_msg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
        CU_ASSERT_STRING_EQUAL(yt_msg_text(m), want[i]);
        yt_msg_free(m);
    }
    usleep(100000);
    CU_ASSERT_EQUAL(yt_channel_pending(sub), 0);
    /* Unknown context messages are ignored; the link stays up. */
    raw_send_pkg(w.fd, YTI_SLOT_CONTEXT, 503, 1, 0, 0, "CLOSE_CONNECTION", 16);
    raw_send_pkg(w.fd, YTI_SLOT_CONTEXT, 503, 2, 0, 0, "whatever", 8);
    raw_send_pkg(w.fd, YTI_SLOT_DUMMY, 0, 7, 0, 0, NULL, 0); /* unknown zero-length: ignored */
    raw_send_pkg(w.fd, slot, 503, 3, 0, 0, "e", 1);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "e");
    yt_msg_free(m);
    CU_ASSERT_TRUE(yt_connection_is_connected(w.c));
    yt_channel_free(sub);
    wire_down(&w);
}

static void test_forwarding_between_raw_peers(void)
{
    /* Two raw peers on one context: what one sends reaches the other unchanged (unless it is
     * addressed to the context itself), and never comes back to the sender. */
    wire w;
    wire_up(&w, NULL, RAW_ID);
    int port2;
    yt_connection *c2 = bind_any(w.ctx, &port2);
    int fd2 = raw_connect(port2);
    CU_ASSERT_TRUE_FATAL(raw_handshake(fd2, RAW_ID + 1));
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, c2, 3.0));
    uint64_t me = yt_context_id(w.ctx);
    raw_send_pkg(w.fd, 777, 900, 1, 0, 0, "broadcast", 9);
    raw_send_pkg(w.fd, 777, 900, 2, me, 0, "for-ctx", 7);
    raw_send_pkg(w.fd, 777, 900, 3, 4242, UINT64_C(0x8000000000000005), "directed", 8);
    yti_header h;
    char data[64];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(fd2, &h, data, sizeof data, 3.0));
    CU_ASSERT_STRING_EQUAL(data, "broadcast");
    CU_ASSERT_EQUAL(h.source_id, 900);
    CU_ASSERT_EQUAL(h.source_seq, 1);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(fd2, &h, data, sizeof data, 3.0));
    CU_ASSERT_STRING_EQUAL(data, "directed");
    CU_ASSERT_EQUAL(h.slot, 777);
    CU_ASSERT_EQUAL(h.source_seq, 3);
    CU_ASSERT_EQUAL(h.dest_id, 4242);
    CU_ASSERT_EQUAL(h.dest_seq, UINT64_C(0x8000000000000005));
    /* Nothing comes back to the first peer but heartbeats. */
    CU_ASSERT_FALSE(raw_read_pkg(w.fd, &h, data, sizeof data, 0.4));
    close(fd2);
    yt_connection_release(c2);
    wire_down(&w);
}

typedef struct fake_host {
    int lfd;
    const char *reply; /* sent after reading the client's line */
    double hold;       /* seconds to keep the socket open afterwards */
    char got[128];
} fake_host;

static void *fake_host_main(void *arg)
{
    fake_host *fh = arg;
    int fd = accept(fh->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    raw_read_line(fd, fh->got, sizeof fh->got, 3.0);
    send(fd, fh->reply, strlen(fh->reply), MSG_NOSIGNAL);
    if (strncmp(fh->reply, "YOTON!", 6) == 0) {
        /* Hand the connection back to the test through lfd's slot. */
        return (void *)(intptr_t)fd;
    }
    usleep((useconds_t)((fh->hold > 0 ? fh->hold : 0.05) * 1e6));
    close(fd);
    return NULL;
}

static void test_client_handshake_and_new_connection(void)
{
    int port;
    fake_host fh = {.lfd = raw_listen(&port)};
    char reply[64];
    snprintf(reply, sizeof reply, "YOTON!%016llx.%d\r\n", (unsigned long long)RAW_ID,
             (int)getpid());
    fh.reply = reply;
    pthread_t t;
    pthread_create(&t, NULL, fake_host_main, &fh);
    yt_context *ctx = make_ctx(NULL);
    yt_channel *pub;
    yt_pub_new(ctx, "early", YT_BINARY, &pub);
    yt_channel_send(pub, "queued", 6); /* startup queue: goes out first */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    yt_connection *c = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_context_connect(ctx, addr, 2.0, NULL, &c), YT_OK);
    void *res;
    pthread_join(t, &res);
    int fd = (int)(intptr_t)res;
    /* Our greeting: 16 hex digits, left-padded, and our pid. */
    char want[64];
    size_t n = yti_greeting_format(yt_context_id(ctx), (long)getpid(), want);
    CU_ASSERT_EQUAL(strlen(fh.got), n);
    CU_ASSERT_STRING_EQUAL(fh.got, want);
    CU_ASSERT_EQUAL(yt_connection_id2(c), RAW_ID);
    /* First the startup queue, then NEW_CONNECTION on the context slot, as the reference. */
    yti_header h;
    char data[64];
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_STRING_EQUAL(data, "queued");
    CU_ASSERT_EQUAL(h.source_seq, 1);
    CU_ASSERT_TRUE_FATAL(raw_read_pkg(fd, &h, data, sizeof data, 3.0));
    CU_ASSERT_STRING_EQUAL(data, "NEW_CONNECTION");
    CU_ASSERT_EQUAL(h.slot, YTI_SLOT_CONTEXT);
    CU_ASSERT_EQUAL(h.source_seq, 2);
    CU_ASSERT_EQUAL(h.dest_id, 0);
    close(fd);
    close(fh.lfd);
    yt_connection_release(c);
    yt_channel_free(pub);
    yt_context_free(ctx);
}

static void test_connect_to_non_yoton_server(void)
{
    int port;
    fake_host fh = {.lfd = raw_listen(&port), .reply = "HTTP/1.1 400 Bad Request\r\n"};
    pthread_t t;
    pthread_create(&t, NULL, fake_host_main, &fh);
    yt_context *ctx = make_ctx(NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    CU_ASSERT_EQUAL(yt_context_connect(ctx, addr, 2.0, NULL, NULL), YT_EHANDSHAKE);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Could not connect: Handshake failed.");
    pthread_join(t, NULL);
    /* A server that says nothing at all and keeps the line open: timed out after 2 s. */
    fh.reply = "";
    fh.hold = 2.5;
    pthread_create(&t, NULL, fake_host_main, &fh);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_context_connect(ctx, addr, 2.0, NULL, NULL), YT_EHANDSHAKE);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Could not connect: Handshake timed out.");
    CU_ASSERT(mono_now() - t0 >= 1.9);
    CU_ASSERT(mono_now() - t0 < 5.0);
    pthread_join(t, NULL);
    close(fh.lfd);
    CU_ASSERT_EQUAL(yt_context_connection_count(ctx), 0);
    yt_context_free(ctx);
}

typedef struct slow_sender {
    int fd;
    uint64_t slot;
    size_t len;
    double seconds;
} slow_sender;

static void *slow_send_main(void *arg)
{
    slow_sender *s = arg;
    yti_header h = {YTI_CONTROL, s->slot, 600, 1, 0, 0, s->len};
    unsigned char b[YTI_HEADER_SIZE];
    yti_header_encode(&h, b);
    send(s->fd, b, sizeof b, MSG_NOSIGNAL);
    char *chunk = malloc(s->len / 20);
    memset(chunk, 'z', s->len / 20);
    for (int i = 0; i < 20; i++) {
        usleep((useconds_t)(s->seconds / 20 * 1e6));
        send(s->fd, chunk, s->len / 20, MSG_NOSIGNAL);
    }
    free(chunk);
    return NULL;
}

static void test_slow_large_package_does_not_time_out(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    recorder r = {0};
    yt_signal_bind(yt_connection_timedout_signal(w.c), rec_handler, &r);
    yt_channel *sub;
    yt_sub_new(w.ctx, "big", YT_BINARY, &sub);
    /* 2 MB over 1.5 s, in bursts 75 ms apart: the package takes three time-outs to arrive, but
     * bytes keep flowing. */
    slow_sender s = {w.fd, slot_of("big", "bin", "pub-sub"), 2000000, 1.5};
    pthread_t t;
    pthread_create(&t, NULL, slow_send_main, &s);
    yt_msg *m = NULL;
    double end = mono_now() + 6;
    while (m == NULL && mono_now() < end) {
        yt_loop_process(w.loop, 0.02);
        yt_channel_recv(sub, 0, &m);
    }
    pthread_join(t, NULL);
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_EQUAL(yt_msg_size(m), 2000000);
    CU_ASSERT_EQUAL(((const char *)yt_msg_data(m))[1999999], 'z');
    yt_msg_free(m);
    yt_loop_process(w.loop, 0);
    CU_ASSERT_EQUAL(r.count, 0);
    yt_channel_free(sub);
    wire_down(&w);
}

static void test_waiting_connection_never_stalls(void)
{
    yt_context_options o;
    yt_context_options_init(&o);
    o.queue_size = 10;
    yt_context *ctx;
    CU_ASSERT_EQUAL_FATAL(yt_context_new(&o, &ctx), YT_OK);
    yt_channel *pub;
    yt_pub_new(ctx, "nobody", YT_TEXT, &pub);
    /* Startup queue: bounded, oldest dropped and counted. */
    for (int i = 0; i < 25; i++)
        yt_channel_send_text(pub, "x");
    CU_ASSERT_EQUAL(yt_context_discarded(ctx), 15);
    yt_connection *c = NULL;
    CU_ASSERT_EQUAL(yt_context_bind(ctx, "127.0.0.1:0", 1, NULL, &c), YT_OK);
    /* The bound connection has no peer: sends neither block (the reference blocks 1 s each
     * past 64 queued, quirk Q17) nor grow the queue past its bound. */
    double t0 = mono_now();
    for (int i = 0; i < 1000; i++)
        yt_channel_send_text(pub, "y");
    CU_ASSERT(mono_now() - t0 < 1.0);
    CU_ASSERT_EQUAL(yt_connection_discarded(c), 1000);
    CU_ASSERT_EQUAL(yt_context_discarded(ctx), 1015);
    yt_connection_release(c);
    yt_channel_free(pub);
    yt_context_free(ctx);
}

static void test_high_descriptors_and_cloexec(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 1200 && rl.rlim_max >= 1200) {
        rl.rlim_cur = 1200;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    /* Fill the descriptor table up past 1024 so that every new socket lands above it. */
    int fds[1100];
    int nf = 0;
    if (rl.rlim_cur >= 1200) {
        while (nf < 1100) {
            int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                break;
            fds[nf++] = fd;
            if (fd > 1030)
                break;
        }
        CU_ASSERT(fds[nf - 1] > 1024);
    }
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *a = make_ctx(loop), *b = make_ctx(loop);
    int port;
    yt_connection *ca = bind_any(a, &port);
    yt_connection *cb = connect_port(b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    yt_channel *pub, *sub;
    yt_pub_new(a, "hi", YT_TEXT, &pub);
    yt_sub_new(b, "hi", YT_TEXT, &sub);
    yt_channel_send_text(pub, "above 1024");
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "above 1024");
    yt_msg_free(m);
    /* Every socket the library opened is close-on-exec. */
    int sockets = 0, cloexec = 0;
    for (int fd = 0; fd < 1200; fd++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
            sockets++;
            cloexec += (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
        }
    }
    CU_ASSERT(sockets >= 2);
    CU_ASSERT_EQUAL(cloexec, sockets);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
    yt_loop_free(loop);
    for (int i = 0; i < nf; i++)
        close(fds[i]);
}

static void count_calls(const yt_event *ev, void *user)
{
    (void)ev;
    (*(int *)user)++;
}

static void test_received_signal_coalesces(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    yt_channel *sub;
    yt_sub_new(w.ctx, "burst", YT_TEXT, &sub);
    int calls = 0;
    yt_signal_bind(yt_channel_received_signal(sub), count_calls, &calls);
    uint64_t slot = slot_of("burst", "txt", "pub-sub");
    for (int i = 1; i <= 100; i++)
        raw_send_pkg(w.fd, slot, 700, (uint64_t)i, 0, 0, "m", 1);
    double end = mono_now() + 3;
    while (yt_channel_pending(sub) < 100 && mono_now() < end)
        usleep(5000);
    CU_ASSERT_EQUAL(yt_channel_pending(sub), 100);
    /* The receiver posts the signal just after it queued the last batch: give it that moment
     * (under ASan in CI the loop once ran before the post, and saw no call). Nothing handles
     * the posts meanwhile, so however many batches there were, they are one event. */
    usleep(200000);
    yt_loop_process(w.loop, 0);
    CU_ASSERT_EQUAL(calls, 1);
    yt_loop_process(w.loop, 0.05);
    CU_ASSERT_EQUAL(calls, 1);
    /* Handled: the next message posts again. */
    raw_send_pkg(w.fd, slot, 700, 101, 0, 0, "m", 1);
    end = mono_now() + 3;
    while (calls < 2 && mono_now() < end)
        yt_loop_process(w.loop, 0.02);
    CU_ASSERT_EQUAL(calls, 2);
    yt_msg **all = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(yt_channel_recv_all(sub, &all, &n), YT_OK);
    CU_ASSERT_EQUAL(n, 101);
    for (size_t i = 0; i < n; i++)
        yt_msg_free(all[i]);
    yt_free(all);
    CU_ASSERT_EQUAL(yt_channel_recv_all(sub, &all, &n), YT_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(all);
    yt_channel_free(sub);
    wire_down(&w);
}

static void test_max_package_size_option(void)
{
    yt_context_options o;
    yt_context_options_init(&o);
    o.max_package_size = 1000;
    wire w;
    wire_up(&w, &o, RAW_ID);
    recorder r = {0};
    yt_signal_bind(yt_connection_closed_signal(w.c), rec_handler, &r);
    yt_channel *sub;
    yt_sub_new(w.ctx, "lim", YT_BINARY, &sub);
    uint64_t slot = slot_of("lim", "bin", "pub-sub");
    char buf[1001];
    memset(buf, 'q', sizeof buf);
    raw_send_pkg(w.fd, slot, 800, 1, 0, 0, buf, 1000); /* at the limit: fine */
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 3.0, &m), YT_OK);
    CU_ASSERT_EQUAL(yt_msg_size(m), 1000);
    yt_msg_free(m);
    raw_send_pkg(w.fd, slot, 800, 2, 0, 0, buf, 1001); /* one over: closed */
    double end = mono_now() + 3;
    while (r.count == 0 && mono_now() < end)
        yt_loop_process(w.loop, 0.02);
    CU_ASSERT_EQUAL(r.count, 1);
    CU_ASSERT_STRING_EQUAL(r.text[0], "Package too large: 1001 bytes declared, the maximum is 1000.");
    yt_channel_free(sub);
    wire_down(&w);
}

static void test_declared_size_not_allocated_up_front(void)
{
    wire w;
    wire_up(&w, NULL, RAW_ID);
    recorder r = {0};
    yt_signal_bind(yt_connection_closed_signal(w.c), rec_handler, &r);
    /* 512 MiB declared (under the 1 GiB maximum), 1 MiB sent, then silence. */
    yti_header h = {YTI_CONTROL, 4242, 900, 1, 0, 0, (uint64_t)512 << 20};
    unsigned char b[YTI_HEADER_SIZE];
    yti_header_encode(&h, b);
    send(w.fd, b, sizeof b, MSG_NOSIGNAL);
    size_t before = mallinfo2().hblkhd;
    char *chunk = calloc(1, 1 << 20);
    CU_ASSERT_EQUAL(send(w.fd, chunk, 1 << 20, MSG_NOSIGNAL), 1 << 20);
    free(chunk);
    usleep(200000);
    /* What the library holds for it grows with what arrived, not with what was declared
     * (mallinfo2 reads zero under sanitizers, where this check is vacuous). */
    size_t during = mallinfo2().hblkhd;
    CU_ASSERT(during < before + ((size_t)64 << 20));
    CU_ASSERT_EQUAL(r.count, 0);
    /* The peer ends its side mid-package: a drop, nothing delivered, the memory released. Its
     * socket is closed only after that: closing it with a heartbeat unread (one is due after
     * 0.25 s, which a slow run under TSan reaches) would reset the link, and the sender's
     * write error could then close it first, with another reason. */
    shutdown(w.fd, SHUT_WR);
    double end = mono_now() + 3;
    while (r.count == 0 && mono_now() < end)
        yt_loop_process(w.loop, 0.02);
    close(w.fd);
    CU_ASSERT_EQUAL(r.count, 1);
    CU_ASSERT_STRING_EQUAL(r.text[0], "Other end dropped the connection.");
    w.fd = -1;
    wire_down(&w);
}

typedef struct closer_arg {
    yt_connection *c;
    double delay;
} closer_arg;

static void *close_after(void *arg)
{
    closer_arg *ca = arg;
    usleep((useconds_t)(ca->delay * 1e6));
    yt_connection_close(ca->c, "closed while flushing");
    return NULL;
}

static void test_flush_times_out_and_close_wakes_it(void)
{
    yt_context_options o;
    yt_context_options_init(&o);
    o.sndbuf = 16384;
    wire w;
    wire_up(&w, &o, RAW_ID);
    /* The raw peer never reads, and 64 MiB exceed anything the socket buffers on both sides can
     * hold (loopback autotunes up to 32 MiB here): they can never all be written. */
    int small = 16384;
    setsockopt(w.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    yt_channel *pub;
    yt_pub_new(w.ctx, "flood", YT_BINARY, &pub);
    char *blob = calloc(1, 1 << 20);
    for (int i = 0; i < 64; i++)
        yt_channel_send(pub, blob, 1 << 20);
    free(blob);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_connection_flush(w.c, 0.3), YT_ETIMEDOUT);
    double el = mono_now() - t0;
    CU_ASSERT(el >= 0.3);
    CU_ASSERT(el < 2.0);
    CU_ASSERT_EQUAL(yt_context_flush(w.ctx, 0.2), YT_ETIMEDOUT);
    /* Closing from another thread wakes a flush that would wait forever. (The delay leaves
     * the flush time to start waiting even on a slow machine or under valgrind.) */
    closer_arg ca = {w.c, 1.0};
    pthread_t t;
    pthread_create(&t, NULL, close_after, &ca);
    t0 = mono_now();
    CU_ASSERT_EQUAL(yt_connection_flush(w.c, -1), YT_ECLOSED);
    /* The closer waits out a stalled peer first: about 1 s without progress while flushing,
     * then 0.5 s without acknowledgements, after its own 1 s delay. */
    CU_ASSERT(mono_now() - t0 < 8.0);
    pthread_join(t, NULL);
    CU_ASSERT_STRING_EQUAL(yt_connection_close_reason(w.c), "closed while flushing");
    yt_channel_free(pub);
    wire_down(&w);
}

void yt_suite_wire(void)
{
    static const yt_test_def t[] = {
        {"exact_bytes_of_a_message", test_exact_bytes_of_a_message},
        {"dedupe_and_delivery_rules", test_dedupe_and_delivery_rules},
        {"forwarding_between_raw_peers", test_forwarding_between_raw_peers},
        {"client_handshake_and_new_connection", test_client_handshake_and_new_connection},
        {"connect_to_non_yoton_server", test_connect_to_non_yoton_server},
        {"slow_large_package_does_not_time_out", test_slow_large_package_does_not_time_out},
        {"waiting_connection_never_stalls", test_waiting_connection_never_stalls},
        {"high_descriptors_and_cloexec", test_high_descriptors_and_cloexec},
        {"received_signal_coalesces", test_received_signal_coalesces},
        {"max_package_size_option", test_max_package_size_option},
        {"declared_size_not_allocated_up_front", test_declared_size_not_allocated_up_front},
        {"flush_times_out_and_close_wakes_it", test_flush_times_out_and_close_wakes_it},
        {NULL, NULL}};
    yt_add_suite("wire", t);
}

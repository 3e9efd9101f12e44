/*
 * Suite "transport": everything beyond IPv4 TCP, over real sockets in this process (and one
 * child process): the address forms, IPv6, Unix domain sockets (ipc://) in a fresh mkdtemp
 * directory, socketpairs and adopted descriptors, listening descriptors (bind_fd), a local
 * source address, the opt-in key authentication, and do_request/RequestServer over each
 * address family.
 *
 * Pub/sub, req/rep, heartbeat time-out and a lossless close run over each transport: tcp4,
 * tcp6, ipc and pair (a socketpair adopted by two contexts). When ::1 is not usable on this
 * machine the tcp6 rounds print a note and check the clear error instead.
 */
#include "address.h"
#include "netutil.h"
#include "package.h"
#include "testutil.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

typedef enum transport { T_TCP4, T_TCP6, T_IPC, T_PAIR, T_COUNT } transport;
static const char *const tname[T_COUNT] = {"tcp4", "tcp6", "ipc", "pair"};

static char tmpdir[64];
static int path_counter;

/* 1 when ::1 can be bound here, 0 when not, -1 before the first check. */
static int v6_state = -1;

static bool v6_usable(void)
{
    if (v6_state < 0) {
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        v6_state = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (fd >= 0)
            close(fd);
        if (!v6_state)
            fprintf(stderr, "\n  NOTE: ::1 is not usable on this machine; the tcp6 rounds check "
                            "the error for an unusable address instead\n");
    }
    return v6_state == 1;
}

/* A fresh socket path in the suite's private directory. */
static const char *new_path(char *buf, size_t size)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/yt-transport-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
    }
    snprintf(buf, size, "%s/s%d", tmpdir, ++path_counter);
    return buf;
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] == '\0')
        return;
    for (int i = 1; i <= path_counter; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/s%d", tmpdir, i);
        unlink(p);
    }
    CU_ASSERT_EQUAL(rmdir(tmpdir), 0);
    tmpdir[0] = '\0';
}

static bool conn_closed(void *c)
{
    return !yt_connection_is_alive(c);
}

static bool has_events(void *r)
{
    return ((recorder *)r)->count > 0;
}

/* ---- two contexts linked over one transport ---------------------------------------------- */

typedef struct link2 {
    yt_loop *loop;
    yt_context *a, *b;
    yt_connection *ca, *cb; /* a hosts, b connects */
    char address[160];      /* what b connected to ("" for a pair) */
} link2;

/* The address a binds for transport t (port 0 for TCP). */
static const char *bind_address(transport t, char *buf, size_t size)
{
    char p[128];
    switch (t) {
    case T_TCP4:
        snprintf(buf, size, "tcp://127.0.0.1:0");
        break;
    case T_TCP6:
        snprintf(buf, size, "[::1]:0");
        break;
    case T_IPC:
        snprintf(buf, size, "ipc://%s", new_path(p, sizeof p));
        break;
    default:
        buf[0] = '\0';
    }
    return buf;
}

/* The address to connect to what c is bound at. */
static void peer_address(transport t, yt_connection *c, const char *bound, char *buf,
                         size_t size)
{
    if (t == T_TCP4)
        snprintf(buf, size, "127.0.0.1:%d", yt_connection_port1(c));
    else if (t == T_TCP6)
        snprintf(buf, size, "tcp6://[::1]:%d", yt_connection_port1(c));
    else
        snprintf(buf, size, "%s", bound);
}

static bool link_up(link2 *l, transport t, const void *key_a, const void *key_b, size_t klen)
{
    memset(l, 0, sizeof *l);
    CU_ASSERT_EQUAL_FATAL(yt_loop_new(&l->loop), YT_OK);
    l->a = make_ctx(l->loop);
    l->b = make_ctx(l->loop);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l->a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l->b);
    if (key_a)
        CU_ASSERT_EQUAL(yt_context_set_key(l->a, key_a, klen), YT_OK);
    if (key_b)
        CU_ASSERT_EQUAL(yt_context_set_key(l->b, key_b, klen), YT_OK);
    if (t == T_PAIR) {
        int rc = yt_context_pair(l->a, l->b, "pair", &l->ca, &l->cb);
        CU_ASSERT_EQUAL(rc, YT_OK);
        if (rc)
            fprintf(stderr, "\n  pair: %s\n", yt_last_error());
        return rc == YT_OK;
    }
    char bound[160];
    int rc = yt_context_bind(l->a, bind_address(t, bound, sizeof bound), 1, "host", &l->ca);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc) {
        fprintf(stderr, "\n  %s bind %s: %s\n", tname[t], bound, yt_last_error());
        return false;
    }
    peer_address(t, l->ca, bound, l->address, sizeof l->address);
    rc = yt_context_connect(l->b, l->address, 2.0, "client", &l->cb);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc) {
        fprintf(stderr, "\n  %s connect %s: %s\n", tname[t], l->address, yt_last_error());
        return false;
    }
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, l->ca, 3.0));
    return true;
}

static void link_down(link2 *l)
{
    yt_connection_release(l->ca);
    yt_connection_release(l->cb);
    yt_context_free(l->a);
    yt_context_free(l->b);
    yt_loop_free(l->loop);
}

/* Whether transport t can run here; for tcp6 without ::1, checks the error path instead. */
static bool transport_ready(transport t)
{
    if (t != T_TCP6 || v6_usable())
        return true;
    yt_context *ctx = make_ctx(NULL);
    yt_connection *c = NULL;
    CU_ASSERT_EQUAL(yt_context_bind(ctx, "[::1]:0", 1, NULL, &c), YT_EADDR);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "::1"));
    yt_context_free(ctx);
    return false;
}

/* ---- address forms ------------------------------------------------------------------------ */

static void expect_addr(const char *text, yti_addr_kind kind, const char *host, int port,
                        const char *path)
{
    yti_address a;
    int rc = yti_address_parse(text, &a);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc) {
        fprintf(stderr, "\n  '%s': %s\n", text, yt_last_error());
        return;
    }
    CU_ASSERT_EQUAL(a.kind, kind);
    CU_ASSERT_STRING_EQUAL(a.host, host);
    CU_ASSERT_EQUAL(a.port, port);
    CU_ASSERT_STRING_EQUAL(a.path, path);
    if ((int)a.kind != (int)kind || strcmp(a.host, host) || a.port != port || strcmp(a.path, path))
        fprintf(stderr, "\n  '%s': kind %d host '%s' port %d path '%s'\n", text, a.kind, a.host,
                a.port, a.path);
}

static void expect_addr_err(const char *text, const char *detail_part)
{
    yti_address a;
    CU_ASSERT_EQUAL(yti_address_parse(text, &a), YT_EADDR);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), detail_part));
    if (!strstr(yt_last_error(), detail_part))
        fprintf(stderr, "\n  '%s': detail '%s'\n", text, yt_last_error());
}

static void test_address_forms(void)
{
    /* Plain forms keep the reference's meaning. */
    expect_addr("localhost:80", YTI_ADDR_TCP4, "127.0.0.1", 80, "");
    expect_addr("tcp://localhost:80", YTI_ADDR_TCP4, "127.0.0.1", 80, "");
    expect_addr("localhost:a:b", YTI_ADDR_TCP4, "127.0.0.1", 59354, "");
    expect_addr("udp://127.0.0.1:9", YTI_ADDR_TCP4, "127.0.0.1", 9, "");
    /* IPv6. */
    expect_addr("[::1]:5000", YTI_ADDR_TCP6, "::1", 5000, "");
    expect_addr("tcp://[::1]:5000", YTI_ADDR_TCP6, "::1", 5000, "");
    expect_addr("tcp6://[fe80::1%lo]:7", YTI_ADDR_TCP6, "fe80::1%lo", 7, "");
    expect_addr("tcp6://::1:5000", YTI_ADDR_TCP6, "::1", 5000, "");
    expect_addr("tcp6://localhost:5000", YTI_ADDR_TCP6, "::1", 5000, "");
    expect_addr("[localhost]:1", YTI_ADDR_TCP6, "::1", 1, "");
    expect_addr("[]:0", YTI_ADDR_TCP6, "", 0, "");
    expect_addr("TCP6://example.com:pyzo", YTI_ADDR_TCP6, "example.com", 53281, "");
    expect_addr_err("[::1]", "'[host]:port'");
    expect_addr_err("[::1:5000", "'[host]:port'");
    expect_addr_err("[::1]5000", "'[host]:port'");
    expect_addr_err("[::1]:70000", "range");
    /* Unix sockets. */
    expect_addr("ipc:///tmp/x.sock", YTI_ADDR_IPC, "", 0, "/tmp/x.sock");
    expect_addr("unix:///tmp/x.sock", YTI_ADDR_IPC, "", 0, "/tmp/x.sock");
    expect_addr("IPC://rel/dir/s", YTI_ADDR_IPC, "", 0, "rel/dir/s");
    expect_addr("ipc://with:colon", YTI_ADDR_IPC, "", 0, "with:colon");
    expect_addr_err("ipc://", "The socket path is empty.");
    char buf[300] = "ipc:///";
    memset(buf + 7, 'p', 106); /* "/" + 106 = 107 bytes: the longest that fits */
    buf[7 + 106] = '\0';
    yti_address a;
    CU_ASSERT_EQUAL(yti_address_parse(buf, &a), YT_OK);
    CU_ASSERT_EQUAL(strlen(a.path), 107);
    strcat(buf, "p");
    expect_addr_err(buf, "Socket path too long: 108 bytes, at most 107 fit.");
}

/* A name without an address of the family asked for, or an unparsable host. */
static void test_unresolvable(void)
{
    yt_context *ctx = make_ctx(NULL);
    yt_connection *c = NULL;
    /* "localhost4" is in /etc/hosts on many systems, but numeric text needs no resolver: an
     * IPv4 literal in an IPv6 address has no IPv6 address, and the reverse. */
    CU_ASSERT_EQUAL(yt_context_connect(ctx, "tcp6://127.0.0.1:1", 0.1, NULL, &c), YT_EADDR);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "Cannot resolve host '127.0.0.1' to an IPv6"));
    CU_ASSERT_EQUAL(yt_context_bind(ctx, "[::ffff:zz]:0", 1, NULL, &c), YT_EADDR);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "IPv6 address"));
    CU_ASSERT_EQUAL(yt_context_bind(ctx, "no.such.host.invalid:0", 1, NULL, &c), YT_EADDR);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "to an IPv4 address"));
    CU_ASSERT_EQUAL(yt_context_connect(ctx, "ipc://", 0.1, NULL, &c), YT_EADDR);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "The socket path is empty.");
    yt_context_free(ctx);
}

/* ---- each transport: pub/sub, req/rep, heartbeat time-out, lossless close --------------- */

static void pubsub_round(transport t)
{
    link2 l;
    if (!link_up(&l, t, NULL, NULL, 0)) {
        link_down(&l);
        return;
    }
    yt_channel *pub, *sub, *pub2, *sub2;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(l.a, "news", YT_TEXT, &pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(l.b, "news", YT_TEXT, &sub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(l.b, "back", YT_BINARY, &pub2), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(l.a, "back", YT_BINARY, &sub2), YT_OK);
    for (int i = 0; i < 300; i++) {
        char m[32];
        snprintf(m, sizeof m, "%s %d", tname[t], i);
        CU_ASSERT_EQUAL(yt_channel_send_text(pub, m), YT_OK);
    }
    unsigned char big[200000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    CU_ASSERT_EQUAL(yt_channel_send(pub2, big, sizeof big), YT_OK);
    int ok = 0;
    for (int i = 0; i < 300; i++) {
        yt_msg *m = NULL;
        if (yt_channel_recv(sub, 5.0, &m) != YT_OK)
            break;
        char want[32];
        snprintf(want, sizeof want, "%s %d", tname[t], i);
        ok += strcmp(yt_msg_text(m), want) == 0;
        yt_msg_free(m);
    }
    CU_ASSERT_EQUAL(ok, 300);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub2, 5.0, &m), YT_OK);
    CU_ASSERT_EQUAL(yt_msg_size(m), sizeof big);
    CU_ASSERT(yt_msg_size(m) == sizeof big && memcmp(yt_msg_data(m), big, sizeof big) == 0);
    yt_msg_free(m);
    if (ok != 300)
        fprintf(stderr, "\n  %s: %d of 300 messages\n", tname[t], ok);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_channel_free(pub2);
    yt_channel_free(sub2);
    link_down(&l);
}

static void test_pubsub_each(void)
{
    for (transport t = 0; t < T_COUNT; t++)
        if (transport_ready(t))
            pubsub_round(t);
}

static yt_value *h_add(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                       size_t errsize)
{
    (void)kwargs;
    (void)user;
    int64_t x = 0, y = 0;
    if (yt_value_len(args) != 2 || yt_value_as_int(yt_value_item(args, 0), &x) ||
        yt_value_as_int(yt_value_item(args, 1), &y)) {
        snprintf(err, errsize, "add takes two ints");
        return NULL;
    }
    return yt_value_int(x + y);
}

static void reqrep_round(transport t)
{
    link2 l;
    if (!link_up(&l, t, NULL, NULL, 0)) {
        link_down(&l);
        return;
    }
    yt_channel *rep, *req;
    CU_ASSERT_EQUAL_FATAL(yt_rep_new(l.a, "calc", &rep), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "add", h_add, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_set_mode(rep, YT_REP_THREAD), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_req_new(l.b, "calc", &req), YT_OK);
    for (int i = 0; i < 5; i++) {
        yt_value *args = yt_value_tuple();
        yt_value_append(args, yt_value_int(i));
        yt_value_append(args, yt_value_int(1000));
        yt_future *f = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_req_call(req, "add", args, NULL, &f), YT_OK);
        yt_value *r = NULL;
        int rc = yt_future_result(f, 10.0, &r);
        CU_ASSERT_EQUAL(rc, YT_OK);
        int64_t v = -1;
        CU_ASSERT_EQUAL(yt_value_as_int(r, &v), YT_OK);
        CU_ASSERT_EQUAL(v, 1000 + i);
        if (rc || v != 1000 + i)
            fprintf(stderr, "\n  %s: call %d gave rc %d value %lld\n", tname[t], i, rc,
                    (long long)v);
        yt_value_free(r);
        yt_value_free(args);
        yt_future_free(f);
    }
    yt_channel_free(req);
    yt_channel_free(rep);
    link_down(&l);
}

static void test_reqrep_each(void)
{
    for (transport t = 0; t < T_COUNT; t++)
        if (transport_ready(t))
            reqrep_round(t);
}

/* A raw client socket connected to a yoton address (tcp4, tcp6, ipc), or -1. */
static int raw_connect_addr(const char *address)
{
    yti_address a;
    if (yti_address_parse(address, &a) != YT_OK)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (a.kind == YTI_ADDR_IPC) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", a.path);
        len = sizeof *un;
    } else if (a.kind == YTI_ADDR_TCP6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)a.port);
        inet_pton(AF_INET6, a.host, &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)a.port);
        inet_pton(AF_INET, a.host, &s4->sin_addr);
        len = sizeof *s4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The host adopts one end of a socketpair; the test plays the other end raw. */
typedef struct adopt_job {
    yt_context *ctx;
    int fd;
    yt_role role;
    yt_connection *c;
    int rc;
    char detail[256];
} adopt_job;

static void *adopt_main(void *arg)
{
    adopt_job *j = arg;
    j->rc = yt_context_adopt(j->ctx, j->fd, j->role, "adopted", &j->c);
    snprintf(j->detail, sizeof j->detail, "%s", j->rc ? yt_last_error() : "");
    return NULL;
}

/* A bound (or adopted) connection whose raw peer did the handshake and then says nothing:
 * timedout(1) comes after the connection's time-out, not before, not much after. */
static void heartbeat_round(transport t)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop);
    yt_connection *c = NULL;
    int fd = -1;
    recorder rec = {0};
    pthread_t th;
    adopt_job j = {0};
    if (t == T_PAIR) {
        int sv[2];
        CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        j.ctx = ctx;
        j.fd = sv[0];
        j.role = YT_ROLE_HOST;
        fd = sv[1];
        pthread_create(&th, NULL, adopt_main, &j);
        CU_ASSERT_TRUE(raw_handshake(fd, UINT64_C(0x1234567890abcdef)));
        pthread_join(th, NULL);
        CU_ASSERT_EQUAL_FATAL(j.rc, YT_OK);
        c = j.c;
    } else {
        char bound[160], addr[160];
        CU_ASSERT_EQUAL_FATAL(yt_context_bind(ctx, bind_address(t, bound, sizeof bound), 1,
                                              "host", &c),
                              YT_OK);
        peer_address(t, c, bound, addr, sizeof addr);
        fd = raw_connect_addr(addr);
        CU_ASSERT_FATAL(fd >= 0);
    }
    CU_ASSERT_EQUAL(yt_connection_set_timeout(c, 1.0), YT_OK);
    yt_signal_bind(yt_connection_timedout_signal(c), rec_handler, &rec);
    double t0;
    if (t != T_PAIR) {
        CU_ASSERT_TRUE(raw_handshake(fd, UINT64_C(0x1234567890abcdef)));
        t0 = mono_now();
        CU_ASSERT_TRUE(wait_until(NULL, is_connected, c, 3.0));
    } else {
        /* An adopted connection's receiver started polling with the default time-out (0.5 s)
         * before it could be changed; a time-out change applies from the next byte, so send
         * one (a heartbeat) and count the silence from there. */
        send(fd, yti_heartbeat_bytes, YTI_HEADER_SIZE, MSG_NOSIGNAL);
        t0 = mono_now();
    }
    CU_ASSERT_TRUE(wait_until(loop, has_events, &rec, 5.0));
    double el = mono_now() - t0;
    CU_ASSERT_EQUAL(rec.flag[0], 1);
    CU_ASSERT(el >= 0.85);
    CU_ASSERT(el < 2.5);
    if (el < 0.85 || el >= 2.5)
        fprintf(stderr, "\n  %s: timedout after %.3f s\n", tname[t], el);
    /* Bytes again: timedout(0). */
    send(fd, yti_heartbeat_bytes, YTI_HEADER_SIZE, MSG_NOSIGNAL);
    CU_ASSERT_TRUE(wait_until(loop, has_events, &rec, 0.1)); /* already true: count >= 1 */
    double end = mono_now() + 3.0;
    while (rec.count < 2 && mono_now() < end)
        yt_loop_process(loop, 0.02);
    CU_ASSERT_EQUAL(rec.count, 2);
    CU_ASSERT_EQUAL(rec.flag[1], 0);
    close(fd);
    yt_connection_release(c);
    yt_context_free(ctx);
    yt_loop_free(loop);
}

static void test_heartbeat_timeout_each(void)
{
    for (transport t = 0; t < T_COUNT; t++)
        if (transport_ready(t))
            heartbeat_round(t);
}

/* Send N (with a large backlog in queues and socket buffers) and close at once: all N arrive.
 * Both directions: the host closes, then (new link) the client closes. */
static void close_round(transport t, bool host_closes)
{
    link2 l;
    if (!link_up(&l, t, NULL, NULL, 0)) {
        link_down(&l);
        return;
    }
    yt_context *from = host_closes ? l.a : l.b, *to = host_closes ? l.b : l.a;
    yt_connection *closing = host_closes ? l.ca : l.cb;
    yt_channel *pub, *sub;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(from, "bulk", YT_BINARY, &pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(to, "bulk", YT_BINARY, &sub), YT_OK);
    enum { N = 600, SIZE = 8192 };
    unsigned char *buf = malloc(SIZE);
    for (int i = 0; i < N; i++) {
        memset(buf, i & 0xff, SIZE);
        memcpy(buf, &i, sizeof i);
        CU_ASSERT_EQUAL(yt_channel_send(pub, buf, SIZE), YT_OK);
    }
    yt_connection_close(closing, NULL);
    int got = 0;
    for (;;) {
        yt_msg *m = NULL;
        if (yt_channel_recv(sub, 3.0, &m) != YT_OK)
            break;
        int k = -1;
        if (yt_msg_size(m) == SIZE)
            memcpy(&k, yt_msg_data(m), sizeof k);
        got += k == got;
        yt_msg_free(m);
    }
    CU_ASSERT_EQUAL(got, N);
    if (got != N)
        fprintf(stderr, "\n  %s (%s closes): %d of %d arrived in order\n", tname[t],
                host_closes ? "host" : "client", got, N);
    yt_connection *other = host_closes ? l.cb : l.ca;
    CU_ASSERT_TRUE(wait_until(NULL, conn_closed, other, 5.0));
    CU_ASSERT_STRING_EQUAL(yt_connection_close_reason(other), "Closed from other end.");
    free(buf);
    yt_channel_free(pub);
    yt_channel_free(sub);
    link_down(&l);
}

static void test_close_loses_nothing_each(void)
{
    for (transport t = 0; t < T_COUNT; t++) {
        if (transport_ready(t)) {
            close_round(t, true);
            close_round(t, false);
        }
    }
}

/* ---- Unix socket specifics --------------------------------------------------------------- */

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* path is a socket file only its owner may use (mode 0600). */
static bool is_private_socket(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600;
}

/* A Unix stream socket bound at path (the file made), not listening. Closed at once it leaves
 * what a crashed process leaves: a file nobody listens on. */
static int bind_path(const char *path)
{
    int rfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    CU_ASSERT_EQUAL_FATAL(bind(rfd, (struct sockaddr *)&un, sizeof un), 0);
    return rfd;
}

static void test_ipc_file_mode_and_removal(void)
{
    char path[64], addr[160];
    new_path(path, sizeof path);
    snprintf(addr, sizeof addr, "ipc://%s", path);
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    yt_connection *ca = NULL, *cb = NULL;
    /* A permissive umask must not open the file up. */
    mode_t old = umask(0);
    int rc = yt_context_bind(a, addr, 5, "host", &ca);
    umask(old);
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    CU_ASSERT_TRUE(is_private_socket(path));
    /* Getters: the path on the bound side, port -1. */
    char h[200];
    CU_ASSERT_EQUAL(yt_connection_hostname1(ca, h, sizeof h), YT_OK);
    CU_ASSERT_STRING_EQUAL(h, path);
    CU_ASSERT_EQUAL(yt_connection_port1(ca), -1);
    CU_ASSERT_EQUAL_FATAL(yt_context_connect(b, addr, 2.0, "client", &cb), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, ca, 3.0));
    CU_ASSERT_EQUAL(yt_connection_hostname2(cb, h, sizeof h), YT_OK);
    CU_ASSERT_STRING_EQUAL(h, path);
    CU_ASSERT_EQUAL(yt_connection_hostname1(cb, h, sizeof h), YT_OK);
    CU_ASSERT_STRING_EQUAL(h, "");
    CU_ASSERT_EQUAL(yt_connection_port1(cb), -1);
    CU_ASSERT_EQUAL(yt_connection_port2(cb), -1);
    CU_ASSERT_EQUAL(yt_connection_port2(ca), -1);
    /* One peer per bind: the listening socket and its file are gone, a second client finds
     * nobody. */
    CU_ASSERT_FALSE(exists(path));
    yt_context *c3 = make_ctx(NULL);
    yt_connection *cc = NULL;
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_context_connect(c3, addr, 0.3, NULL, &cc), YT_ECONNECT);
    CU_ASSERT(mono_now() - t0 < 1.5);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), path));
    yt_context_free(c3);
    yt_connection_release(ca);
    yt_connection_release(cb);

    /* Closed while waiting: the file goes with the connection. */
    CU_ASSERT_EQUAL_FATAL(yt_context_bind(a, addr, 1, "host2", &ca), YT_OK);
    CU_ASSERT_TRUE(exists(path));
    yt_connection_close(ca, NULL);
    CU_ASSERT_FALSE(exists(path));
    yt_connection_release(ca);

    /* A file that replaced ours is not ours to remove. */
    CU_ASSERT_EQUAL_FATAL(yt_context_bind(a, addr, 1, "host3", &ca), YT_OK);
    CU_ASSERT_EQUAL(unlink(path), 0);
    int rfd = bind_path(path);
    yt_connection_close(ca, NULL);
    yt_connection_release(ca);
    CU_ASSERT_TRUE(exists(path));
    close(rfd);
    unlink(path);
    yt_context_free(a);
    yt_context_free(b);
}

/* "ipc://rel" is relative to the working directory of each side. */
static void test_ipc_relative_path(void)
{
    char path[64], cwd[512];
    new_path(path, sizeof path); /* makes the directory */
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(tmpdir), 0);
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    yt_connection *ca = NULL, *cb = NULL;
    CU_ASSERT_EQUAL(yt_context_bind(a, "ipc://rel.sock", 1, NULL, &ca), YT_OK);
    char full[128];
    snprintf(full, sizeof full, "%s/rel.sock", tmpdir);
    CU_ASSERT_TRUE(is_private_socket(full));
    CU_ASSERT_EQUAL(yt_context_connect(b, "unix://rel.sock", 2.0, NULL, &cb), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, ca, 3.0));
    CU_ASSERT_FALSE(exists(full));
    CU_ASSERT_EQUAL(chdir(cwd), 0);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
}

static void test_ipc_stale_and_live(void)
{
    char path[64], addr[160];
    new_path(path, sizeof path);
    snprintf(addr, sizeof addr, "unix://%s", path);
    close(bind_path(path)); /* a crashed process's file */
    CU_ASSERT_TRUE(exists(path));
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    yt_connection *ca = NULL, *cb = NULL;
    int rc = yt_context_bind(a, addr, 1, "host", &ca);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc)
        fprintf(stderr, "\n  stale: %s\n", yt_last_error());
    CU_ASSERT_EQUAL_FATAL(yt_context_connect(b, addr, 2.0, NULL, &cb), YT_OK);
    /* The host removes its file as it becomes connected, just after the client returned. */
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, ca, 3.0));
    yt_connection_release(ca);
    yt_connection_release(cb);

    /* A live listener: refused with a clear detail, its file left alone. */
    int rfd = bind_path(path);
    CU_ASSERT_EQUAL(listen(rfd, 4), 0);
    CU_ASSERT_EQUAL(yt_context_bind(a, addr, 1, "host", &ca), YT_EBIND);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "address in use"));
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), path));
    CU_ASSERT_TRUE(exists(path));
    close(rfd);
    unlink(path);

    /* Also when the listener is a yoton context: it keeps waiting for its own peer. */
    yt_connection *first = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_context_bind(a, addr, 1, "first", &first), YT_OK);
    yt_context *c2 = make_ctx(NULL);
    CU_ASSERT_EQUAL(yt_context_bind(c2, addr, 1, NULL, &ca), YT_EBIND);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "address in use"));
    CU_ASSERT_TRUE(yt_connection_is_waiting(first));
    CU_ASSERT_EQUAL_FATAL(yt_context_connect(b, addr, 2.0, NULL, &cb), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, first, 3.0));
    yt_connection_release(cb);
    yt_connection_release(first);
    yt_context_free(c2);

    /* Not a socket: never removed. */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_EQUAL(yt_context_bind(a, addr, 1, NULL, &ca), YT_EBIND);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "not a socket"));
    CU_ASSERT_TRUE(exists(path));
    unlink(path);
    yt_context_free(a);
    yt_context_free(b);
}

/* ---- do_request and RequestServer over each transport ----------------------------------- */

static char *shout(const char *req, void *user)
{
    (void)user;
    size_t n = strlen(req);
    char *r = malloc(n + 8);
    if (r)
        snprintf(r, n + 8, "shout:%s", req);
    return r;
}

/* A server at transport t's address, sync or async, answering a client of the same transport;
 * for tcp the reply must not be reachable over the other family. */
static void request_round(transport t, bool async)
{
    char bound[160], address[160];
    yt_request_server *s = NULL;
    int rc = yt_request_server_new(bind_address(t, bound, sizeof bound), shout, NULL, async, &s);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc) {
        fprintf(stderr, "\n  %s server at %s: %s\n", tname[t], bound, yt_last_error());
        return;
    }
    int port = yt_request_server_port(s);
    if (t == T_IPC) {
        CU_ASSERT_EQUAL(port, 0);
        snprintf(address, sizeof address, "%s", bound);
    } else {
        CU_ASSERT(port > 0);
        snprintf(address, sizeof address, t == T_TCP6 ? "[::1]:%d" : "127.0.0.1:%d", port);
    }
    CU_ASSERT_EQUAL(yt_request_server_start(s), YT_OK);
    for (int i = 0; i < 3; i++) {
        char *reply = NULL, req[32];
        snprintf(req, sizeof req, "%s %d", tname[t], i);
        rc = yt_do_request(address, req, 5, &reply);
        CU_ASSERT_EQUAL(rc, YT_OK);
        if (rc)
            fprintf(stderr, "\n  %s request to %s: %s\n", tname[t], address, yt_last_error());
        char want[64];
        snprintf(want, sizeof want, "shout:%s\r\n", req);
        CU_ASSERT_STRING_EQUAL(reply ? reply : "(null)", want);
        yt_free(reply);
    }
    if (t != T_IPC) {
        /* IPv6 servers are IPv6 only; a plain tcp server serves IPv4. */
        char other[64], *reply = NULL;
        snprintf(other, sizeof other, t == T_TCP6 ? "127.0.0.1:%d" : "[::1]:%d", port);
        if (t == T_TCP6 || v6_usable())
            CU_ASSERT_NOT_EQUAL(yt_do_request(other, "wrong family", 2, &reply), YT_OK);
        yt_free(reply);
    }
    yt_request_server_free(s);
    if (t == T_IPC) {
        /* Gone with the server: the file and the listener. */
        struct stat st;
        CU_ASSERT_NOT_EQUAL(lstat(bound + strlen("ipc://"), &st), 0);
        char *reply = NULL;
        CU_ASSERT_EQUAL(yt_do_request(address, "anyone?", 2, &reply), YT_ECONNECT);
        CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), bound + strlen("ipc://")));
        yt_free(reply);
    }
}

static void test_request_server_each(void)
{
    for (transport t = 0; t < T_COUNT; t++) {
        if (t != T_PAIR && transport_ready(t)) {
            request_round(t, false);
            request_round(t, true);
        }
    }
    /* An unusable IPv6 address is a clear EADDR for the server as for contexts. */
    if (!v6_usable()) {
        yt_request_server *s = NULL;
        CU_ASSERT_EQUAL(yt_request_server_new("[::1]:0", NULL, NULL, false, &s), YT_EADDR);
    }
}

/* The server's Unix socket file: owner only under a permissive umask, a stale file replaced,
 * a live listener's or a non-socket file refused and left alone. */
static void test_request_server_ipc_file(void)
{
    char path[64], addr[160];
    new_path(path, sizeof path);
    snprintf(addr, sizeof addr, "unix://%s", path);
    close(bind_path(path)); /* a crashed process's file */
    yt_request_server *s = NULL, *s2 = NULL;
    mode_t old = umask(0);
    int rc = yt_request_server_new(addr, NULL, NULL, false, &s);
    umask(old);
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    CU_ASSERT_TRUE(is_private_socket(path));
    /* A second server at the same path finds a live listener. */
    CU_ASSERT_EQUAL(yt_request_server_new(addr, NULL, NULL, false, &s2), YT_EBIND);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "address in use"));
    CU_ASSERT_EQUAL(yt_request_server_start(s), YT_OK);
    char *reply = NULL;
    CU_ASSERT_EQUAL(yt_do_request(addr, "hi", 5, &reply), YT_OK);
    CU_ASSERT_STRING_EQUAL(reply ? reply : "(null)", "Requested: hi\r\n");
    yt_free(reply);
    /* A file someone else put there after us is not ours to remove. */
    CU_ASSERT_EQUAL(unlink(path), 0);
    int rfd = bind_path(path);
    yt_request_server_free(s);
    CU_ASSERT_TRUE(exists(path));
    close(rfd);
    unlink(path);
    /* Not a socket: refused, never removed. */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_EQUAL(yt_request_server_new(addr, NULL, NULL, false, &s2), YT_EBIND);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "not a socket"));
    CU_ASSERT_TRUE(exists(path));
    unlink(path);
}

/* ---- descriptors: bind_fd, adopt, pair, fork ---------------------------------------------- */

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void test_bind_fd(void)
{
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL), *c = make_ctx(NULL);
    yt_connection *ca = NULL, *cb = NULL, *cc = NULL;
    /* Not listening, not a socket, not a stream: refused, and the descriptor is gone. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_EQUAL(yt_context_bind_fd(a, s, NULL, &ca), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "is not listening"));
    CU_ASSERT_FALSE(fd_open(s));
    int p[2];
    CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
    CU_ASSERT_EQUAL(yt_context_bind_fd(a, p[0], NULL, &ca), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "is not a socket"));
    CU_ASSERT_FALSE(fd_open(p[0]));
    close(p[1]);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_EQUAL(yt_context_bind_fd(a, s, NULL, &ca), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "not a stream socket"));
    CU_ASSERT_EQUAL(yt_context_bind_fd(a, -1, NULL, &ca), YT_EINVAL);
    CU_ASSERT_PTR_NULL(ca);

    /* A listening socket made elsewhere (non-blocking, as supervisors often pass them). */
    int port = 0;
    int lfd = raw_listen(&port);
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    CU_ASSERT_EQUAL_FATAL(yt_context_bind_fd(a, lfd, "activated", &ca), YT_OK);
    CU_ASSERT_TRUE(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    CU_ASSERT_EQUAL(yt_connection_port1(ca), port);
    CU_ASSERT_TRUE(yt_connection_is_waiting(ca));
    cb = connect_port(b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, ca, 3.0));
    /* One peer: the listening socket is closed now. */
    CU_ASSERT_EQUAL(yt_context_connect(c, "127.0.0.1:0", 0.2, NULL, &cc), YT_ECONNECT);
    char addr[160];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    CU_ASSERT_EQUAL(yt_context_connect(c, addr, 0.2, NULL, &cc), YT_ECONNECT);
    yt_channel *pub, *sub;
    yt_pub_new(a, "x", YT_TEXT, &pub);
    yt_sub_new(b, "x", YT_TEXT, &sub);
    yt_channel_send_text(pub, "through an activated socket");
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 5.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "through an activated socket");
    yt_msg_free(m);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_connection_release(ca);
    yt_connection_release(cb);

    /* A listening Unix socket: its file is the owner's business, never removed by us. */
    char path[64];
    new_path(path, sizeof path);
    int ufd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    CU_ASSERT_EQUAL_FATAL(bind(ufd, (struct sockaddr *)&un, sizeof un), 0);
    CU_ASSERT_EQUAL(listen(ufd, 1), 0);
    CU_ASSERT_EQUAL_FATAL(yt_context_bind_fd(a, ufd, "unix-activated", &ca), YT_OK);
    snprintf(addr, sizeof addr, "ipc://%s", path);
    CU_ASSERT_EQUAL_FATAL(yt_context_connect(b, addr, 2.0, NULL, &cb), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, ca, 3.0));
    CU_ASSERT_EQUAL(yt_context_connect(c, addr, 0.2, NULL, &cc), YT_ECONNECT);
    yt_connection_close(ca, NULL);
    CU_ASSERT_TRUE(exists(path));
    unlink(path);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
    yt_context_free(c);
}

static void test_adopt_errors(void)
{
    yt_context *a = make_ctx(NULL);
    yt_connection *c = NULL;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CU_ASSERT_EQUAL(yt_context_adopt(a, s, YT_ROLE_CLIENT, NULL, &c), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "not connected"));
    CU_ASSERT_FALSE(fd_open(s));
    int port;
    int l = raw_listen(&port);
    CU_ASSERT_EQUAL(yt_context_adopt(a, l, YT_ROLE_HOST, NULL, &c), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "listening socket"));
    CU_ASSERT_FALSE(fd_open(l));
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CU_ASSERT_EQUAL(yt_context_adopt(a, sv[0], (yt_role)7, NULL, &c), YT_EINVAL);
    CU_ASSERT_FALSE(fd_open(sv[0]));
    /* The other end goes away: the client handshake fails, promptly. */
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_context_adopt(a, sv[0], YT_ROLE_CLIENT, NULL, &c), YT_EHANDSHAKE);
    CU_ASSERT(mono_now() - t0 < 1.0);
    CU_ASSERT_FALSE(fd_open(sv[0]));
    /* A host whose peer says something else. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CU_ASSERT_EQUAL(send(sv[1], "GET / HTTP/1.0\r\n", 16, 0), 16);
    CU_ASSERT_EQUAL(yt_context_adopt(a, sv[0], YT_ROLE_HOST, NULL, &c), YT_EHANDSHAKE);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Handshake failed: Handshake failed.");
    char line[128];
    raw_read_line(sv[1], line, sizeof line, 1.0);
    CU_ASSERT_STRING_EQUAL(line, "ERROR: this is Yoton.\r\n");
    close(sv[1]);
    CU_ASSERT_EQUAL(yt_context_pair(a, a, NULL, NULL, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_context_connection_count(a), 0);
    yt_context_free(a);
}

/* A parent and a child process: the child (yt_peer) inherits one end of a socketpair and
 * adopts it as client, the parent adopts the other as host; ping/pong, then the stopped child
 * is noticed within the time-out, and comes back. */
static void test_fork_child_adopts(void)
{
    yt_loop *loop;
    yt_loop_new(&loop);
    yt_context *ctx = make_ctx(loop);
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFD, FD_CLOEXEC); /* the parent's end stays with the parent */
    char fdtext[16];
    snprintf(fdtext, sizeof fdtext, "%d", sv[1]);
    char *argv[] = {(char *)"yt_peer", (char *)"adopt", fdtext, NULL};
    int out = -1;
    pid_t pid = spawn_peer(argv, &out);
    CU_ASSERT_FATAL(pid > 0);
    close(sv[1]);
    yt_connection *c = NULL;
    int rc = yt_context_adopt(ctx, sv[0], YT_ROLE_HOST, "child", &c);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc) {
        fprintf(stderr, "\n  adopt: %s\n", yt_last_error());
        kill_peer(pid);
        close(out);
        yt_context_free(ctx);
        yt_loop_free(loop);
        return;
    }
    CU_ASSERT_EQUAL(yt_connection_pid2(c), (long)pid);
    /* The child's stdout is a pipe: read it byte by byte (bounded by the child's own 60 s). */
    char line[128];
    size_t ln = 0;
    char chr = 0;
    while (ln + 1 < sizeof line && read(out, &chr, 1) == 1 && chr != '\n')
        line[ln++] = chr;
    line[ln] = '\0';
    CU_ASSERT_EQUAL(strncmp(line, "CONNECTED", 9), 0);
    yt_channel *pub, *sub;
    yt_pub_new(ctx, "ping", YT_TEXT, &pub);
    yt_sub_new(ctx, "pong", YT_TEXT, &sub);
    yt_channel_send_text(pub, "hello child");
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 5.0, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "pong:hello child");
    yt_msg_free(m);

    recorder rec = {0};
    yt_connection_set_timeout(c, 1.0);
    yt_signal_bind(yt_connection_timedout_signal(c), rec_handler, &rec);
    /* A new time-out applies from the next byte received (a poll in progress keeps its
     * deadline): a round trip makes sure one arrived, and the child stops right after it, so
     * the silence starts with the stop even on a loaded machine. */
    yt_channel_send_text(pub, "set");
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 5.0, &m), YT_OK);
    yt_msg_free(m);
    CU_ASSERT_EQUAL(rec.count, 0);
    kill(pid, SIGSTOP);
    double t0 = mono_now();
    CU_ASSERT_TRUE(wait_until(loop, has_events, &rec, 5.0));
    double el = mono_now() - t0;
    CU_ASSERT_EQUAL(rec.flag[0], 1);
    CU_ASSERT(el >= 0.7); /* the child's last heartbeat may have come just before the stop */
    CU_ASSERT(el < 2.5);
    if (el < 0.7 || el >= 2.5)
        fprintf(stderr, "\n  fork: timedout after %.3f s (flag %d)\n", el, rec.flag[0]);
    kill(pid, SIGCONT);
    double end = mono_now() + 3.0;
    while (rec.count < 2 && mono_now() < end)
        yt_loop_process(loop, 0.02);
    CU_ASSERT_EQUAL(rec.count, 2);
    yt_channel_send_text(pub, "quit");
    int status = 0;
    end = mono_now() + 5.0;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && mono_now() < end)
        usleep(10000);
    CU_ASSERT_EQUAL(w, pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (w != pid)
        kill_peer(pid);
    CU_ASSERT_TRUE(wait_until(NULL, conn_closed, c, 5.0));
    close(out);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_connection_release(c);
    yt_context_free(ctx);
    yt_loop_free(loop);
}

/* ---- source address ----------------------------------------------------------------------- */

static void test_connect_from(void)
{
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    yt_connection *ca = NULL, *cb = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_context_bind(a, "127.0.0.1:0", 1, NULL, &ca), YT_OK);
    char addr[64], h[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", yt_connection_port1(ca));
    int rc = yt_context_connect_from(b, addr, "127.0.0.2", 2.0, NULL, &cb);
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, ca, 3.0));
    CU_ASSERT_EQUAL(yt_connection_hostname1(cb, h, sizeof h), YT_OK);
    CU_ASSERT_STRING_EQUAL(h, "127.0.0.2");
    CU_ASSERT_EQUAL(yt_connection_hostname2(ca, h, sizeof h), YT_OK);
    CU_ASSERT_STRING_EQUAL(h, "127.0.0.2");
    CU_ASSERT(yt_connection_port1(cb) > 0);
    CU_ASSERT_EQUAL(yt_connection_port1(cb), yt_connection_port2(ca));
    yt_connection_release(ca);
    yt_connection_release(cb);

    /* Not an address of this machine (TEST-NET-1): fails at once, whatever the timeout. */
    CU_ASSERT_EQUAL_FATAL(yt_context_bind(a, "127.0.0.1:0", 1, NULL, &ca), YT_OK);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", yt_connection_port1(ca));
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_context_connect_from(b, addr, "192.0.2.1", 5.0, NULL, &cb), YT_ECONNECT);
    CU_ASSERT(mono_now() - t0 < 1.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "Cannot bind the local address 192.0.2.1"));
    /* Wrong family, and Unix sockets. */
    CU_ASSERT_EQUAL(yt_context_connect_from(b, addr, "::1", 0.2, NULL, &cb), YT_EADDR);
    CU_ASSERT_EQUAL(yt_context_connect_from(b, "ipc:///tmp/x", "127.0.0.1", 0.2, NULL, &cb),
                    YT_EINVAL);
    CU_ASSERT_EQUAL(yt_context_connect_from(b, addr, "", 0.2, NULL, &cb), YT_EADDR);
    /* NULL: plain connect. */
    CU_ASSERT_EQUAL(yt_context_connect_from(b, addr, NULL, 2.0, NULL, &cb), YT_OK);
    yt_connection_release(cb);
    yt_connection_release(ca);
    if (v6_usable()) {
        CU_ASSERT_EQUAL_FATAL(yt_context_bind(a, "tcp6://[::1]:0", 1, NULL, &ca), YT_OK);
        snprintf(addr, sizeof addr, "[::1]:%d", yt_connection_port1(ca));
        CU_ASSERT_EQUAL(yt_context_connect_from(b, addr, "[::1]", 2.0, NULL, &cb), YT_OK);
        CU_ASSERT_EQUAL(yt_connection_hostname1(cb, h, sizeof h), YT_OK);
        CU_ASSERT_STRING_EQUAL(h, "::1");
        yt_connection_release(cb);
        yt_connection_release(ca);
    }
    yt_context_free(a);
    yt_context_free(b);
}

/* ---- authentication ------------------------------------------------------------------------ */

static const char KEY1[] = "0123456789abcdef-first-key";
static const char KEY2[] = "0123456789abcdef-other-key";

static void test_key_arguments(void)
{
    yt_context *a = make_ctx(NULL);
    CU_ASSERT_EQUAL(yt_context_set_key(a, "short", 5), YT_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "at least 16"));
    CU_ASSERT_EQUAL(yt_context_set_key(a, "0123456789abcde", 15), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_context_set_key(a, NULL, 16), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_context_set_key(a, "0123456789abcdef", 16), YT_OK);
    static char big[1025];
    CU_ASSERT_EQUAL(yt_context_set_key(a, big, 1025), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_context_set_key(a, big, 1024), YT_OK);
    CU_ASSERT_EQUAL(yt_context_set_key(a, NULL, 0), YT_OK);
    CU_ASSERT_EQUAL(yt_context_set_key(NULL, KEY1, 20), YT_EINVAL);
    yt_context_free(a);
}

/* Same key: connected and messages flow, over TCP, ipc and a pair. */
static void test_auth_same_key(void)
{
    transport ts[] = {T_TCP4, T_IPC, T_PAIR};
    for (size_t i = 0; i < 3; i++) {
        link2 l;
        bool up = link_up(&l, ts[i], KEY1, KEY1, sizeof KEY1);
        if (up) {
            yt_channel *pub, *sub;
            yt_pub_new(l.a, "secret", YT_TEXT, &pub);
            yt_sub_new(l.b, "secret", YT_TEXT, &sub);
            yt_channel_send_text(pub, "for key holders");
            yt_msg *m = NULL;
            CU_ASSERT_EQUAL(yt_channel_recv(sub, 5.0, &m), YT_OK);
            CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "for key holders");
            yt_msg_free(m);
            yt_channel_free(pub);
            yt_channel_free(sub);
            char r[200];
            CU_ASSERT_EQUAL(yt_connection_last_refusal(l.ca, r, sizeof r), YT_OK);
            CU_ASSERT_STRING_EQUAL(r, "");
        }
        link_down(&l);
    }
}

typedef struct keyed_host {
    yt_context *host;
    yt_connection *ch;
    char address[64];
} keyed_host;

static void keyed_host_up(keyed_host *k, const char *key)
{
    k->host = make_ctx(NULL);
    if (key)
        CU_ASSERT_EQUAL(yt_context_set_key(k->host, key, strlen(key)), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_context_bind(k->host, "127.0.0.1:0", 1, "host", &k->ch), YT_OK);
    snprintf(k->address, sizeof k->address, "127.0.0.1:%d", yt_connection_port1(k->ch));
}

static void keyed_host_down(keyed_host *k)
{
    yt_connection_release(k->ch);
    yt_context_free(k->host);
}

/* Waits until the host recorded a refusal containing text. */
static bool refusal_has(yt_connection *c, const char *text, double timeout)
{
    double end = mono_now() + timeout;
    char r[300] = "";
    do {
        yt_connection_last_refusal(c, r, sizeof r);
        if (strstr(r, text))
            return true;
        usleep(5000);
    } while (mono_now() < end);
    fprintf(stderr, "\n  refusal '%s', expected '%s'\n", r, text);
    return false;
}

/* Tries a client with key (NULL: none); returns the connect result. */
static int try_client(const char *address, const char *key, double *elapsed)
{
    yt_context *c = make_ctx(NULL);
    if (key)
        yt_context_set_key(c, key, strlen(key));
    yt_connection *cc = NULL;
    double t0 = mono_now();
    int rc = yt_context_connect(c, address, 1.0, NULL, &cc);
    if (elapsed)
        *elapsed = mono_now() - t0;
    char detail[300];
    snprintf(detail, sizeof detail, "%s", yt_last_error());
    yt_connection_release(cc);
    yt_context_free(c);
    yti_error(rc, "%s", detail); /* keep the detail for the caller */
    return rc;
}

static void test_auth_refusals(void)
{
    keyed_host k;
    keyed_host_up(&k, KEY1);
    double el;
    /* Different key: refused both ways with clear reasons; the host keeps waiting. */
    CU_ASSERT_EQUAL(try_client(k.address, KEY2, &el), YT_EHANDSHAKE);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Could not connect: Authentication failed: the host "
                                            "refused our key (it has a different key)");
    CU_ASSERT_TRUE(refusal_has(k.ch, "Authentication failed: the peer has a different key", 2));
    CU_ASSERT_TRUE(yt_connection_is_waiting(k.ch));
    CU_ASSERT_EQUAL(yt_connection_id2(k.ch), 0);
    /* No key: refused; the host keeps serving. */
    CU_ASSERT_EQUAL(try_client(k.address, NULL, &el), YT_EHANDSHAKE);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "the host requires a key and this context "
                                                   "has none"));
    CU_ASSERT(el < 1.0);
    CU_ASSERT_TRUE(refusal_has(k.ch, "the peer hung up during authentication", 2));
    CU_ASSERT_TRUE(yt_connection_is_waiting(k.ch));
    /* Then the right key. */
    yt_context *good = make_ctx(NULL);
    yt_context_set_key(good, KEY1, strlen(KEY1));
    yt_connection *cg = NULL;
    CU_ASSERT_EQUAL(yt_context_connect(good, k.address, 1.0, NULL, &cg), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, k.ch, 3.0));
    CU_ASSERT_EQUAL(yt_connection_id2(k.ch), yt_context_id(good));
    yt_connection_release(cg);
    yt_context_free(good);
    keyed_host_down(&k);

    /* Key on the client only: the host sends packages where the challenge should be. */
    keyed_host_up(&k, NULL);
    CU_ASSERT_EQUAL(try_client(k.address, KEY1, &el), YT_EHANDSHAKE);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Could not connect: Authentication failed: the host "
                                            "did not ask for a key (it has none)");
    CU_ASSERT(el < 2.5);
    keyed_host_down(&k);
}

/* Raw peers in place of the authentication answer: bounded, dropped, the host serves on. */
static void test_auth_raw_peers(void)
{
    keyed_host k;
    keyed_host_up(&k, KEY1);
    int port = yt_connection_port1(k.ch);
    /* After the greeting, the challenge follows at once. */
    int fd = raw_connect(port);
    char greet[64];
    int n = snprintf(greet, sizeof greet, "YOTON!%016llx.%d\r\n", 0x1111111111111111ULL, 1);
    send(fd, greet, (size_t)n, MSG_NOSIGNAL);
    char line[128];
    raw_read_line(fd, line, sizeof line, 2.0);
    CU_ASSERT_EQUAL(strncmp(line, "YOTON!", 6), 0);
    unsigned char ch[40];
    CU_ASSERT_EQUAL(raw_read_n(fd, ch, sizeof ch, 2.0), sizeof ch);
    CU_ASSERT_EQUAL(memcmp(ch, "YOTON#C1", 8), 0);
    /* A giant line instead of the answer. */
    static char junk[1 << 20];
    memset(junk, 'A', sizeof junk);
    ssize_t w = send(fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    CU_ASSERT_TRUE(refusal_has(k.ch, "did not answer the challenge", 3));
    CU_ASSERT_TRUE(yt_connection_is_waiting(k.ch));
    /* The host hung up on it. */
    char b[4096];
    double end = mono_now() + 3.0;
    ssize_t r = 1;
    while (r > 0 && mono_now() < end)
        r = recv(fd, b, sizeof b, 0);
    CU_ASSERT(r <= 0);
    close(fd);

    /* A keyless peer that starts its package stream (what a Python peer does). */
    fd = raw_connect(port);
    CU_ASSERT_TRUE(raw_handshake(fd, 0x2222222222222222ULL));
    /* In one write: the host hangs up after the first 8 bytes, a second write could fail. */
    unsigned char pkg[YTI_HEADER_SIZE + 14];
    yti_header h = {YTI_CONTROL, 2, 0x2222222222222222ULL, 1, 0, 0, 14};
    yti_header_encode(&h, pkg);
    memcpy(pkg + YTI_HEADER_SIZE, "NEW_CONNECTION", 14);
    CU_ASSERT_EQUAL(send(fd, pkg, sizeof pkg, MSG_NOSIGNAL), (ssize_t)sizeof pkg);
    CU_ASSERT_TRUE(refusal_has(k.ch, "the peer has no key (it sent packages instead of an "
                                     "answer)", 3));
    close(fd);

    /* The right magic, a wrong MAC: refused, and told so. */
    fd = raw_connect(port);
    send(fd, greet, (size_t)n, MSG_NOSIGNAL);
    raw_read_line(fd, line, sizeof line, 2.0);
    raw_read_n(fd, ch, sizeof ch, 2.0);
    unsigned char resp[72];
    memset(resp, 0x42, sizeof resp);
    memcpy(resp, "YOTON#R1", 8);
    send(fd, resp, sizeof resp, MSG_NOSIGNAL);
    unsigned char verdict[8];
    CU_ASSERT_EQUAL(raw_read_n(fd, verdict, 8, 2.0), 8);
    CU_ASSERT_EQUAL(memcmp(verdict, "YOTON#X1", 8), 0);
    CU_ASSERT_TRUE(refusal_has(k.ch, "the peer has a different key", 2));
    close(fd);

    /* Silence: refused after the handshake time-out (2 s), not before. */
    fd = raw_connect(port);
    double t0 = mono_now();
    CU_ASSERT_TRUE(raw_handshake(fd, 0x3333333333333333ULL));
    CU_ASSERT_TRUE(refusal_has(k.ch, "no answer to the challenge in time", 4));
    double el = mono_now() - t0;
    CU_ASSERT(el >= 1.9);
    CU_ASSERT(el < 3.5);
    close(fd);

    /* And still serving. */
    yt_context *good = make_ctx(NULL);
    yt_context_set_key(good, KEY1, strlen(KEY1));
    yt_connection *cg = NULL;
    CU_ASSERT_EQUAL(yt_context_connect(good, k.address, 1.0, NULL, &cg), YT_OK);
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, k.ch, 3.0));
    yt_connection_release(cg);
    yt_context_free(good);
    keyed_host_down(&k);
}

typedef struct connect_job {
    const char *address;
    int rc;
    char detail[300];
} connect_job;

static void *keyed_connect_main(void *arg)
{
    connect_job *j = arg;
    yt_context *c = make_ctx(NULL);
    yt_context_set_key(c, KEY1, strlen(KEY1));
    yt_connection *cc = NULL;
    j->rc = yt_context_connect(c, j->address, 2.0, NULL, &cc);
    snprintf(j->detail, sizeof j->detail, "%s", j->rc ? yt_last_error() : "");
    yt_connection_release(cc);
    yt_context_free(c);
    return NULL;
}

/* A fake host that answers the client's proof with a proof made without the key: the client
 * must not accept it (mutual authentication). */
static void test_auth_fake_host(void)
{
    int port;
    int l = raw_listen(&port);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    connect_job j = {.address = addr};
    pthread_t th;
    pthread_create(&th, NULL, keyed_connect_main, &j);
    int fd = accept(l, NULL, NULL);
    CU_ASSERT_FATAL(fd >= 0);
    char line[128];
    raw_read_line(fd, line, sizeof line, 2.0);
    CU_ASSERT_EQUAL(strncmp(line, "YOTON!", 6), 0);
    unsigned char out[64 + 40];
    int n = snprintf((char *)out, 64, "YOTON!%016llx.%d\r\n", 0x4444444444444444ULL, 1);
    memcpy(out + n, "YOTON#C1", 8);
    memset(out + n + 8, 0x17, 32);
    send(fd, out, (size_t)n + 40, MSG_NOSIGNAL);
    unsigned char resp[72];
    CU_ASSERT_EQUAL(raw_read_n(fd, resp, sizeof resp, 2.0), sizeof resp);
    CU_ASSERT_EQUAL(memcmp(resp, "YOTON#R1", 8), 0);
    unsigned char proof[40];
    memcpy(proof, "YOTON#P1", 8);
    memcpy(proof + 8, resp + 40, 32); /* the client's own MAC reflected back */
    send(fd, proof, sizeof proof, MSG_NOSIGNAL);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(j.rc, YT_EHANDSHAKE);
    CU_ASSERT_STRING_EQUAL(j.detail, "Could not connect: Authentication failed: the host has a "
                                     "different key");
    close(fd);
    close(l);
}

/* A keyed pair with different keys fails on both sides and leaves nothing connected. */
static void test_auth_pair_mismatch(void)
{
    yt_context *a = make_ctx(NULL), *b = make_ctx(NULL);
    yt_context_set_key(a, KEY1, strlen(KEY1));
    yt_context_set_key(b, KEY2, strlen(KEY2));
    yt_connection *ca = NULL, *cb = NULL;
    CU_ASSERT_EQUAL(yt_context_pair(a, b, NULL, &ca, &cb), YT_EHANDSHAKE);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "different key"));
    CU_ASSERT_PTR_NULL(ca);
    CU_ASSERT_PTR_NULL(cb);
    CU_ASSERT_EQUAL(yt_context_connection_count(a), 0);
    CU_ASSERT_EQUAL(yt_context_connection_count(b), 0);
    /* The key applies to connections opened afterwards: turning it off on a connects. */
    yt_context_set_key(a, NULL, 0);
    yt_context_set_key(b, NULL, 0);
    CU_ASSERT_EQUAL(yt_context_pair(a, b, NULL, &ca, &cb), YT_OK);
    yt_connection_release(ca);
    yt_connection_release(cb);
    yt_context_free(a);
    yt_context_free(b);
}

static void test_cleanup(void)
{
    remove_tmpdir();
}

void yt_suite_transport(void)
{
    static const yt_test_def t[] = {
        {"address_forms", test_address_forms},
        {"unresolvable", test_unresolvable},
        {"pubsub_each", test_pubsub_each},
        {"reqrep_each", test_reqrep_each},
        {"heartbeat_timeout_each", test_heartbeat_timeout_each},
        {"close_loses_nothing_each", test_close_loses_nothing_each},
        {"ipc_file_mode_and_removal", test_ipc_file_mode_and_removal},
        {"ipc_relative_path", test_ipc_relative_path},
        {"ipc_stale_and_live", test_ipc_stale_and_live},
        {"request_server_each", test_request_server_each},
        {"request_server_ipc_file", test_request_server_ipc_file},
        {"bind_fd", test_bind_fd},
        {"adopt_errors", test_adopt_errors},
        {"fork_child_adopts", test_fork_child_adopts},
        {"connect_from", test_connect_from},
        {"key_arguments", test_key_arguments},
        {"auth_same_key", test_auth_same_key},
        {"auth_refusals", test_auth_refusals},
        {"auth_raw_peers", test_auth_raw_peers},
        {"auth_fake_host", test_auth_fake_host},
        {"auth_pair_mismatch", test_auth_pair_mismatch},
        {"cleanup", test_cleanup},
        {NULL, NULL}};
    yt_add_suite("transport", t);
}

/*
 * do_request and RequestServer over loopback: the reference's framing, the default handler,
 * async handling, hostile clients, time-outs, and a plain line server that is not yoton's.
 */
#include "netutil.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char addr_buf[8][64];
static const char *addr_of(int slot, int port)
{
    snprintf(addr_buf[slot], sizeof addr_buf[slot], "localhost:%d", port);
    return addr_buf[slot];
}

static yt_request_server *start_server(yt_request_fn fn, void *user, bool async)
{
    yt_request_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_request_server_new("127.0.0.1:0", fn, user, async, &s), YT_OK);
    CU_ASSERT(yt_request_server_port(s) > 0);
    CU_ASSERT_EQUAL(yt_request_server_start(s), YT_OK);
    return s;
}

static void test_default_handler(void)
{
    yt_request_server *s = start_server(NULL, NULL, false);
    CU_ASSERT_EQUAL(yt_request_server_start(s), YT_EBUSY);
    char *reply = NULL;
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s)), "hello", 5, &reply),
                    YT_OK);
    /* The handler sees the request with its CR LF, so the reply carries it (spec 17). */
    CU_ASSERT_STRING_EQUAL(reply, "Requested: hello\r\n");
    yt_free(reply);
    /* A request that ends with CR LF is not given another one. */
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s)), "x\r\n", 5, &reply),
                    YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "Requested: x\r\n");
    yt_free(reply);
    /* "stop" does not stop it: the reference compares with the CR LF attached (Q10). */
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s)), "stop", 5, &reply),
                    YT_OK);
    yt_free(reply);
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s)), "still", 5, &reply),
                    YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "Requested: still\r\n");
    yt_free(reply);
    yt_request_server_free(s);
}

static char *upper(const char *req, void *user)
{
    (*(int *)user)++;
    char *r = strdup(req);
    for (char *p = r; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    /* Strip the CR LF: the server adds it back. */
    char *cr = strstr(r, "\r\n");
    if (cr)
        *cr = '\0';
    return r;
}

static char *slow(const char *req, void *user)
{
    (void)user;
    usleep(500000);
    return strdup(req);
}

static char *nothing(const char *req, void *user)
{
    (void)req;
    (void)user;
    return NULL;
}

static void test_custom_handlers_and_several_servers(void)
{
    int calls = 0;
    yt_request_server *s1 = start_server(upper, &calls, false);
    yt_request_server *s2 = start_server(nothing, NULL, true);
    CU_ASSERT_NOT_EQUAL(yt_request_server_port(s1), yt_request_server_port(s2));
    char *reply = NULL;
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s1)), "abc", 5, &reply),
                    YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "ABC\r\n");
    yt_free(reply);
    CU_ASSERT_EQUAL(calls, 1);
    /* NULL from the handler: an empty line. */
    CU_ASSERT_EQUAL(yt_do_request(addr_of(1, yt_request_server_port(s2)), "abc", 5, &reply),
                    YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "\r\n");
    yt_free(reply);
    /* UTF-8 round trip. */
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s1)), "caf\xc3\xa9", 5,
                                  &reply),
                    YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "CAF\xc3\xa9\r\n");
    yt_free(reply);
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s1)), "\xff", 5, &reply),
                    YT_EINVAL);
    yt_request_server_free(s1);
    yt_request_server_free(s2);
}

typedef struct req_arg {
    int port;
    int rc;
    double took;
} req_arg;

static void *do_one(void *p)
{
    req_arg *a = p;
    char addr[64], *reply = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", a->port);
    double t0 = mono_now();
    a->rc = yt_do_request(addr, "slow", 10, &reply);
    a->took = mono_now() - t0;
    yt_free(reply);
    return NULL;
}

static double concurrent(yt_request_server *s, int n)
{
    pthread_t t[8];
    req_arg a[8];
    double t0 = mono_now();
    for (int i = 0; i < n; i++) {
        a[i] = (req_arg){.port = yt_request_server_port(s)};
        pthread_create(&t[i], NULL, do_one, &a[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(a[i].rc, YT_OK);
    }
    return mono_now() - t0;
}

static void test_async_does_not_serialise(void)
{
    yt_request_server *sync_s = start_server(slow, NULL, false);
    yt_request_server *async_s = start_server(slow, NULL, true);
    double serial = concurrent(sync_s, 4);
    double parallel = concurrent(async_s, 4);
    CU_ASSERT(serial >= 1.9);   /* 4 x 0.5 s one after another */
    CU_ASSERT(parallel >= 0.5);
    CU_ASSERT(parallel < 1.5);  /* side by side */
    yt_request_server_free(sync_s);
    yt_request_server_free(async_s);
}

static void test_hostile_clients_do_not_stop_it(void)
{
    int calls = 0;
    yt_request_server *s = start_server(upper, &calls, false);
    int port = yt_request_server_port(s);
    /* Connects and hangs up at once. */
    int fd = raw_connect(port);
    close(fd);
    /* Sends garbage without a line end, and stays. */
    fd = raw_connect(port);
    send(fd, "\x01\x02\xff garbage", 11, MSG_NOSIGNAL);
    /* Connects and says nothing: handled (with the empty partial text) after 1 s. */
    int silent = raw_connect(port);
    char *reply = NULL;
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, port), "ok", 10, &reply), YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "OK\r\n");
    double el = mono_now() - t0;
    CU_ASSERT(el >= 0.9);  /* it waited behind the two silent ones (1 s each at most) */
    CU_ASSERT(el < 4.0);
    yt_free(reply);
    char line[128];
    raw_read_line(silent, line, sizeof line, 3.0);
    CU_ASSERT_STRING_EQUAL(line, "\r\n");
    close(silent);
    close(fd);
    yt_request_server_free(s);
}

/* A line server that is not yoton's: answers two lines and closes. */
typedef struct line_server {
    int lfd;
    const char *answer;
    double delay;
    char got[256];
} line_server;

static void *line_server_main(void *p)
{
    line_server *ls = p;
    int fd = accept(ls->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    raw_read_line(fd, ls->got, sizeof ls->got, 3.0);
    usleep((useconds_t)(ls->delay * 1e6));
    send(fd, ls->answer, strlen(ls->answer), MSG_NOSIGNAL);
    usleep(200000);
    close(fd);
    return NULL;
}

static void test_against_other_line_servers(void)
{
    int port;
    line_server ls = {.lfd = raw_listen(&port), .answer = "HTTP/1.0 200 OK\r\nServer: x\r\n"};
    pthread_t t;
    pthread_create(&t, NULL, line_server_main, &ls);
    char *reply = NULL;
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, port), "GET / HTTP/1.0", 5, &reply), YT_OK);
    pthread_join(t, NULL);
    CU_ASSERT_STRING_EQUAL(ls.got, "GET / HTTP/1.0\r\n");
    CU_ASSERT_STRING_EQUAL(reply, "HTTP/1.0 200 OK\r\n"); /* cut at the first CR LF (Q10) */
    yt_free(reply);
    /* A reply without CR LF ends at EOF. */
    ls.answer = "no line end";
    pthread_create(&t, NULL, line_server_main, &ls);
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, port), "q", 5, &reply), YT_OK);
    pthread_join(t, NULL);
    CU_ASSERT_STRING_EQUAL(reply, "no line end");
    yt_free(reply);
    /* Too slow: a time-out, with what had arrived so far. */
    ls.answer = "late\r\n";
    ls.delay = 1.0;
    pthread_create(&t, NULL, line_server_main, &ls);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, port), "q", 0.3, &reply), YT_ETIMEDOUT);
    double el = mono_now() - t0;
    CU_ASSERT(el >= 0.3);
    CU_ASSERT(el < 0.9);
    CU_ASSERT_PTR_NOT_NULL(reply);
    CU_ASSERT_STRING_EQUAL(reply, "");
    yt_free(reply);
    pthread_join(t, NULL);
    close(ls.lfd);
    /* Nobody listening (the port was just closed). */
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, port), "q", 1, &reply), YT_ECONNECT);
    CU_ASSERT_PTR_NULL(reply);
    CU_ASSERT_EQUAL(strncmp(yt_last_error(), "No server is listening at the given port.", 41), 0);
    CU_ASSERT_EQUAL(yt_do_request("nonsense", "q", 1, &reply), YT_EADDR);
}

static void *stop_later(void *p)
{
    usleep(200000);
    yt_request_server_stop(p);
    return NULL;
}

static void test_run_on_caller_thread_and_stop(void)
{
    yt_request_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_request_server_new("localhost:0", NULL, NULL, false, &s), YT_OK);
    pthread_t t;
    pthread_create(&t, NULL, stop_later, s);
    double t0 = mono_now();
    CU_ASSERT_EQUAL(yt_request_server_run(s), YT_OK);
    double el = mono_now() - t0;
    CU_ASSERT(el >= 0.2);
    CU_ASSERT(el < 1.5);
    pthread_join(t, NULL);
    /* It can serve again afterwards. */
    CU_ASSERT_EQUAL(yt_request_server_start(s), YT_OK);
    char *reply = NULL;
    CU_ASSERT_EQUAL(yt_do_request(addr_of(0, yt_request_server_port(s)), "again", 5, &reply),
                    YT_OK);
    CU_ASSERT_STRING_EQUAL(reply, "Requested: again\r\n");
    yt_free(reply);
    yt_request_server_free(s);
    yt_request_server *bad = NULL;
    CU_ASSERT_EQUAL(yt_request_server_new("localhost:70000", NULL, NULL, false, &bad), YT_EADDR);
}

void yt_suite_clientserver(void)
{
    static const yt_test_def t[] = {
        {"default_handler", test_default_handler},
        {"custom_handlers_and_several_servers", test_custom_handlers_and_several_servers},
        {"async_does_not_serialise", test_async_does_not_serialise},
        {"hostile_clients_do_not_stop_it", test_hostile_clients_do_not_stop_it},
        {"against_other_line_servers", test_against_other_line_servers},
        {"run_on_caller_thread_and_stop", test_run_on_caller_thread_and_stop},
        {NULL, NULL}};
    yt_add_suite("clientserver", t);
}

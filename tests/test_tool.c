/*
 * The yoton command-line tool, run as scripts run it: separate processes, stdin/stdout lines,
 * exit codes, SIGTERM. Ports are ephemeral: a binding tool run with --verbose says on stderr
 * where it is bound.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct proc {
    pid_t pid;
    int in, out, err; /* our ends; -1 when closed */
    char outbuf[65536];
    size_t outlen;
    char errbuf[65536];
    size_t errlen;
} proc;

/* Starts the tool with args (NULL-terminated, without the program name). */
static void spawn(proc *p, const char *const *args)
{
    memset(p, 0, sizeof *p);
    int pin[2], pout[2], perr[2];
    CU_ASSERT_FATAL(pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0 &&
                    pipe2(perr, O_CLOEXEC) == 0);
    const char *argv[32] = {"yoton"};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execv(YT_TOOL_PATH, (char *const *)argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    p->in = pin[1];
    p->out = pout[0];
    p->err = perr[0];
}

static void write_in(proc *p, const char *text)
{
    size_t n = strlen(text);
    CU_ASSERT_EQUAL(write(p->in, text, n), (ssize_t)n);
}

static void close_in(proc *p)
{
    if (p->in >= 0)
        close(p->in);
    p->in = -1;
}

/* Reads whatever is available on out/err for up to `seconds`. */
static void drain(proc *p, double seconds)
{
    double end = now_s() + seconds;
    for (;;) {
        struct pollfd f[2] = {{.fd = p->out, .events = POLLIN}, {.fd = p->err, .events = POLLIN}};
        double left = end - now_s();
        if (left <= 0 || poll(f, 2, (int)(left * 1000)) <= 0)
            return;
        if (f[0].revents) {
            ssize_t r = read(p->out, p->outbuf + p->outlen, sizeof p->outbuf - p->outlen - 1);
            if (r > 0)
                p->outlen += (size_t)r;
            p->outbuf[p->outlen] = '\0';
            if (r <= 0 && !f[1].revents)
                return;
        }
        if (f[1].revents) {
            ssize_t r = read(p->err, p->errbuf + p->errlen, sizeof p->errbuf - p->errlen - 1);
            if (r > 0)
                p->errlen += (size_t)r;
            p->errbuf[p->errlen] = '\0';
            if (r <= 0 && !f[0].revents)
                return;
        }
    }
}

/* Waits until stderr contains needle; true if it did within seconds. */
static bool wait_err(proc *p, const char *needle, double seconds)
{
    double end = now_s() + seconds;
    while (!strstr(p->errbuf, needle) && now_s() < end)
        drain(p, 0.05);
    return strstr(p->errbuf, needle) != NULL;
}

/* The port a binding tool reported with --verbose. */
static int bound_port(proc *p)
{
    if (!wait_err(p, "bound at 127.0.0.1:", 5.0))
        return 0;
    return atoi(strstr(p->errbuf, "bound at 127.0.0.1:") + 19);
}

/* Waits for exit (bounded); returns the exit code, or -1 when it had to be killed. */
static int finish(proc *p, double seconds)
{
    double end = now_s() + seconds;
    int status = 0;
    for (;;) {
        drain(p, 0.02);
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (now_s() >= end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            status = -1;
            break;
        }
    }
    drain(p, 0.05);
    close_in(p);
    close(p->out);
    close(p->err);
    return status == -1 ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : -2);
}

static const char *addr(char *buf, int port)
{
    snprintf(buf, 32, "localhost:%d", port);
    return buf;
}

/* An ipc:// address through the tool, and --key-file on both ends (and on one only). */
static void test_ipc_and_key_file(void)
{
    char dir[] = "/tmp/yt-tool-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[64], address[80], key[64], wrong[64];
    snprintf(path, sizeof path, "%s/sock", dir);
    snprintf(address, sizeof address, "ipc://%s", path);
    snprintf(key, sizeof key, "%s/key", dir);
    snprintf(wrong, sizeof wrong, "%s/wrong", dir);
    FILE *f = fopen(key, "w");
    fputs("a shared secret of some length\n", f);
    fclose(f);
    f = fopen(wrong, "w");
    fputs("another secret, not the same\n", f);
    fclose(f);

    proc pub, sub;
    spawn(&pub, (const char *[]){"pub", address, "chat", "--key-file", key, "--verbose", NULL});
    CU_ASSERT_TRUE(wait_err(&pub, "bound at ipc:///tmp/yt-tool-", 5.0));
    /* Without the key, or with another one: refused (exit 2), the publisher keeps waiting. */
    spawn(&sub, (const char *[]){"sub", address, "chat", "--count", "1", NULL});
    CU_ASSERT_EQUAL(finish(&sub, 10), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(sub.errbuf, "requires a key"));
    spawn(&sub, (const char *[]){"sub", address, "chat", "--count", "1", "--key-file", wrong,
                                 NULL});
    CU_ASSERT_EQUAL(finish(&sub, 10), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(sub.errbuf, "different key"));
    spawn(&sub, (const char *[]){"sub", address, "chat", "--count", "1", "--timeout", "5",
                                 "--key-file", key, NULL});
    write_in(&pub, "over a unix socket\n");
    close_in(&pub);
    CU_ASSERT_EQUAL(finish(&sub, 10), 0);
    CU_ASSERT_STRING_EQUAL(sub.outbuf, "over a unix socket\n");
    CU_ASSERT_EQUAL(finish(&pub, 10), 0);
    /* Unreadable and too short keys are usage errors. */
    spawn(&sub, (const char *[]){"sub", address, "chat", "--key-file", "/nonexistent/k", NULL});
    CU_ASSERT_EQUAL(finish(&sub, 5), 1);
    f = fopen(wrong, "w");
    fputs("short\n", f);
    fclose(f);
    spawn(&sub, (const char *[]){"sub", address, "chat", "--key-file", wrong, NULL});
    CU_ASSERT_EQUAL(finish(&sub, 5), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(sub.errbuf, "at least 16"));
    unlink(key);
    unlink(wrong);
    unlink(path);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static void test_usage_and_help(void)
{
    proc p;
    spawn(&p, (const char *[]){NULL});
    CU_ASSERT_EQUAL(finish(&p, 5), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.errbuf, "usage: yoton COMMAND"));
    spawn(&p, (const char *[]){"--help", NULL});
    CU_ASSERT_EQUAL(finish(&p, 5), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.outbuf, "broker"));
    spawn(&p, (const char *[]){"sub", "--help", NULL});
    CU_ASSERT_EQUAL(finish(&p, 5), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.outbuf, "usage: yoton sub"));
    spawn(&p, (const char *[]){"frobnicate", NULL});
    CU_ASSERT_EQUAL(finish(&p, 5), 1);
    spawn(&p, (const char *[]){"sub", "localhost:1", "x", "--type", "xml", NULL});
    CU_ASSERT_EQUAL(finish(&p, 5), 1);
    spawn(&p, (const char *[]){"sub", "localhost:99999", "x", NULL});
    CU_ASSERT_EQUAL(finish(&p, 5), 2);
}

static void test_pub_sub_text_and_objects(void)
{
    char a[32];
    proc pub, sub;
    spawn(&pub, (const char *[]){"pub", "localhost:0", "chat", "--verbose", NULL});
    int port = bound_port(&pub);
    CU_ASSERT_FATAL(port > 0);
    spawn(&sub, (const char *[]){"sub", addr(a, port), "chat", "--count", "3", "--timeout", "5",
                                 NULL});
    write_in(&pub, "hello\nsecond line\n");
    write_in(&pub, "caf\xc3\xa9\n");
    close_in(&pub);
    CU_ASSERT_EQUAL(finish(&sub, 10), 0);
    CU_ASSERT_STRING_EQUAL(sub.outbuf, "hello\nsecond line\ncaf\xc3\xa9\n");
    CU_ASSERT_EQUAL(finish(&pub, 10), 0);

    spawn(&pub, (const char *[]){"pub", "localhost:0", "objs", "--type", "obj", "--verbose",
                                 NULL});
    port = bound_port(&pub);
    spawn(&sub, (const char *[]){"sub", addr(a, port), "objs", "--type", "obj", "--count", "2",
                                 "--timeout", "5", NULL});
    write_in(&pub, "{\"a\": [1, 2.5, null, true, \"s\"]}\n\"just a string\"\n");
    close_in(&pub);
    CU_ASSERT_EQUAL(finish(&sub, 10), 0);
    CU_ASSERT_STRING_EQUAL(sub.outbuf, "{\"a\":[1,2.5,null,true,\"s\"]}\n\"just a string\"\n");
    CU_ASSERT_EQUAL(finish(&pub, 10), 0);

    /* Bad JSON: exit 5, the good lines still go out. */
    spawn(&pub, (const char *[]){"pub", "localhost:0", "objs", "--type", "obj", "--verbose",
                                 NULL});
    port = bound_port(&pub);
    spawn(&sub, (const char *[]){"sub", addr(a, port), "objs", "--type", "obj", "--count", "1",
                                 "--timeout", "5", NULL});
    write_in(&pub, "{oops\n42\n");
    close_in(&pub);
    CU_ASSERT_EQUAL(finish(&sub, 10), 0);
    CU_ASSERT_STRING_EQUAL(sub.outbuf, "42\n");
    CU_ASSERT_EQUAL(finish(&pub, 10), 5);
}

static void test_sub_timeout_and_sigterm(void)
{
    char a[32];
    proc pub, sub;
    spawn(&pub, (const char *[]){"pub", "localhost:0", "quiet", "--verbose", NULL});
    int port = bound_port(&pub);
    double t0 = now_s();
    spawn(&sub, (const char *[]){"sub", addr(a, port), "quiet", "--timeout", "0.5", NULL});
    CU_ASSERT_EQUAL(finish(&sub, 10), 3);
    CU_ASSERT(now_s() - t0 >= 0.5);
    close_in(&pub);
    CU_ASSERT_EQUAL(finish(&pub, 10), 0);
    /* SIGTERM: a clean exit 0, and the peer is told ("Closed from other end."). A bound
     * publisher serves one peer, so a fresh one. */
    spawn(&pub, (const char *[]){"pub", "localhost:0", "quiet", "--verbose", NULL});
    port = bound_port(&pub);
    spawn(&sub, (const char *[]){"sub", addr(a, port), "quiet", "--verbose", NULL});
    CU_ASSERT_TRUE(wait_err(&sub, "connected to context", 5.0));
    kill(sub.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&sub, 10), 0);
    /* The publisher reports events between input lines and after its input ends. */
    close_in(&pub);
    CU_ASSERT_TRUE(wait_err(&pub, "Closed from other end.", 5.0));
    CU_ASSERT_EQUAL(finish(&pub, 10), 0);
}

static void test_req_rep(void)
{
    char a[32];
    proc rep, req;
    spawn(&rep, (const char *[]){"rep", "localhost:0", "calc", "--verbose", NULL});
    int port = bound_port(&rep);
    CU_ASSERT_FATAL(port > 0);
    spawn(&req, (const char *[]){"req", addr(a, port), "calc", "add", "1", "2", "39", NULL});
    CU_ASSERT_EQUAL(finish(&req, 15), 0);
    CU_ASSERT_STRING_EQUAL(req.outbuf, "42\n");
    kill(rep.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&rep, 10), 0);

    /* A bound replier binds again when its peer leaves: one replier for every call below. */
    spawn(&rep, (const char *[]){"rep", "localhost:0", "calc", "--verbose", NULL});
    port = bound_port(&rep);
    const char *calls[][8] = {
        {"upper", "\"shout\"", NULL},
        {"echo", "[1, {\"k\": null}]", NULL},
        {"nope", NULL},
        {"add", "\"x\"", NULL},
    };
    const char *want_out[] = {"\"SHOUT\"\n", "[[1,{\"k\":null}],\"0x", "", ""};
    const int want_rc[] = {0, 0, 4, 4};
    const char *want_err[] = {NULL, NULL, "Method 'nope' not implemented.", "add() takes numbers"};
    for (int i = 0; i < 4; i++) {
        const char *args[12] = {"req", addr(a, port), "calc"};
        int n = 3;
        for (int k = 0; calls[i][k]; k++)
            args[n++] = calls[i][k];
        args[n] = NULL;
        spawn(&req, args);
        CU_ASSERT_EQUAL(finish(&req, 15), want_rc[i]);
        CU_ASSERT_EQUAL(strncmp(req.outbuf, want_out[i], strlen(want_out[i])), 0);
        if (want_err[i])
            CU_ASSERT_PTR_NOT_NULL(strstr(req.errbuf, want_err[i]));
    }
    CU_ASSERT_TRUE(wait_err(&rep, "bound again at", 5.0));
    kill(rep.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&rep, 10), 0);

    /* Keyword arguments: echo's sleep. */
    spawn(&rep, (const char *[]){"rep", "localhost:0", "calc", "--verbose", NULL});
    port = bound_port(&rep);
    double t0 = now_s();
    spawn(&req, (const char *[]){"req", addr(a, port), "calc", "echo", "\"z\"", "--kwargs",
                                 "{\"sleep\": 0.3}", NULL});
    CU_ASSERT_EQUAL(finish(&req, 15), 0);
    CU_ASSERT(now_s() - t0 >= 0.3);
    kill(rep.pid, SIGTERM);
    finish(&rep, 10);

    /* Nobody answers: exit 3 after the timeout. */
    spawn(&rep, (const char *[]){"pub", "localhost:0", "nobody", "--verbose", NULL});
    port = bound_port(&rep);
    spawn(&req, (const char *[]){"req", addr(a, port), "calc", "add", "1", "--timeout", "0.5",
                                 NULL});
    CU_ASSERT_EQUAL(finish(&req, 10), 3);
    kill(rep.pid, SIGTERM);
    finish(&rep, 10);
}

static void test_state(void)
{
    char a[32];
    proc set, get;
    spawn(&set, (const char *[]){"state", "localhost:0", "mode", "busy", "--verbose", NULL});
    int port = bound_port(&set);
    CU_ASSERT_FATAL(port > 0);
    spawn(&get, (const char *[]){"state", addr(a, port), "mode", NULL});
    CU_ASSERT_EQUAL(finish(&get, 10), 0);
    CU_ASSERT_STRING_EQUAL(get.outbuf, "busy\n");
    kill(set.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&set, 10), 0);
}

static void test_broker_relays(void)
{
    char a[32], b[32];
    proc pub, broker, sub;
    /* pub binds; the broker connects to it and binds for the subscriber. */
    spawn(&pub, (const char *[]){"pub", "localhost:0", "relay", "--verbose", NULL});
    int pport = bound_port(&pub);
    spawn(&broker, (const char *[]){"broker", "--connect", addr(a, pport), "--bind",
                                    "localhost:0", "--verbose", NULL});
    int bport = bound_port(&broker);
    CU_ASSERT_FATAL(bport > 0);
    spawn(&sub, (const char *[]){"sub", addr(b, bport), "relay", "--count", "2", "--timeout",
                                 "5", NULL});
    CU_ASSERT_TRUE(wait_err(&broker, "peer connected", 5.0));
    write_in(&pub, "through\nthe broker\n");
    close_in(&pub);
    CU_ASSERT_EQUAL(finish(&sub, 10), 0);
    CU_ASSERT_STRING_EQUAL(sub.outbuf, "through\nthe broker\n");
    CU_ASSERT_EQUAL(finish(&pub, 10), 0);
    kill(broker.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&broker, 10), 0);
}

static void test_request_and_serve(void)
{
    char a[32];
    proc srv, rq;
    spawn(&srv, (const char *[]){"serve", "localhost:0", "--verbose", NULL});
    CU_ASSERT_TRUE_FATAL(wait_err(&srv, "serving at port ", 5.0));
    int port = atoi(strstr(srv.errbuf, "serving at port ") + 16);
    spawn(&rq, (const char *[]){"request", addr(a, port), "hi there", NULL});
    CU_ASSERT_EQUAL(finish(&rq, 10), 0);
    CU_ASSERT_STRING_EQUAL(rq.outbuf, "Requested: hi there\n");
    kill(srv.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&srv, 10), 0);
    /* The server is gone: exit 2. */
    spawn(&rq, (const char *[]){"request", addr(a, port), "anyone?", NULL});
    CU_ASSERT_EQUAL(finish(&rq, 10), 2);

    /* Over a Unix socket: the same, and the file is gone with the server. */
    char dir[] = "/tmp/yt-tool-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[64], address[80];
    snprintf(path, sizeof path, "%s/req.sock", dir);
    snprintf(address, sizeof address, "ipc://%s", path);
    spawn(&srv, (const char *[]){"serve", address, "--async", "--verbose", NULL});
    CU_ASSERT_TRUE(wait_err(&srv, "serving at ipc://", 5.0));
    spawn(&rq, (const char *[]){"request", address, "over ipc", NULL});
    CU_ASSERT_EQUAL(finish(&rq, 10), 0);
    CU_ASSERT_STRING_EQUAL(rq.outbuf, "Requested: over ipc\n");
    kill(srv.pid, SIGTERM);
    CU_ASSERT_EQUAL(finish(&srv, 10), 0);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    spawn(&rq, (const char *[]){"request", address, "anyone?", NULL});
    CU_ASSERT_EQUAL(finish(&rq, 10), 2);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

void yt_suite_tool(void)
{
    static const yt_test_def t[] = {
        {"usage_and_help", test_usage_and_help},
        {"pub_sub_text_and_objects", test_pub_sub_text_and_objects},
        {"sub_timeout_and_sigterm", test_sub_timeout_and_sigterm},
        {"req_rep", test_req_rep},
        {"state", test_state},
        {"broker_relays", test_broker_relays},
        {"request_and_serve", test_request_and_serve},
        {"ipc_and_key_file", test_ipc_and_key_file},
        {NULL, NULL}};
    yt_add_suite("tool", t);
}

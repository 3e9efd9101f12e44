/*
 * Interoperability with the Python reference (yoton 2.2 from Debian's pyzo 4.12.3).
 *
 * Each test puts libyoton contexts (in this process, or in yt_interop_cpeer when the C side
 * must be stopped or killed) in one network with Python peers (the scripts in py/) that run the
 * unmodified reference, found through PYTHONPATH = YT_PYZO_DIR. The test and its peers
 * talk over plain lines: the peers print results on stdout ("PORT 41234", "READY", "GOT txt
 * 10000 0.512") and take commands on stdin. Every wait is bounded; every process is started
 * here, tracked by pid, and killed and reaped by the per-test teardown, which also frees the
 * C objects a test made (so a fatal assertion leaks nothing). Peers also end by themselves on
 * end-of-file on stdin and after a watchdog time.
 *
 * When Python must host, it binds one below a free port (quirk Q1: the reference binds
 * port + 1) and prints the port it really got; nothing uses a fixed port.
 *
 * A missing reference or python3 fails every test with a message saying how to get them.
 *
 * Threads: the tests run on CUnit's thread while libyoton's IO threads run, so a forked child
 * only rearranges descriptors and execs (its environment is built before the fork). Limits:
 * POSIX (fork, pipe2, poll); a peer's line is at most 64 KiB; YT_INTEROP_TESTS=word,word runs
 * only the tests whose names contain one of the words.
 */
#include "netutil.h"
#include "testutil.h"
#include "yoton.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

extern char **environ;

#define PUBSUB_N 10000
#define BIG_LEN ((size_t)64 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------------------------------------
 * The environment: python3 and the reference
 * ------------------------------------------------------------------------------------------- */

static char python_exe[1024];
static char env_problem[1200];
static int env_state; /* 0 not checked, 1 fine, -1 missing something (env_problem says what) */

static bool find_python(void)
{
    if (YT_PYTHON3[0] && access(YT_PYTHON3, X_OK) == 0) {
        snprintf(python_exe, sizeof python_exe, "%s", YT_PYTHON3);
        return true;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(python_exe, sizeof python_exe, "%.*s/python3", (int)n, path);
        if (n > 0 && access(python_exe, X_OK) == 0)
            return true;
        path = colon ? colon + 1 : NULL;
    }
    python_exe[0] = '\0';
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * Peer processes
 * ------------------------------------------------------------------------------------------- */

typedef struct proc {
    pid_t pid;
    int in;  /* its stdin (we write) */
    int out; /* its stdout (we read) */
    bool eof;
    char name[48];
    char buf[65536];
    size_t len;
} proc;

#define MAX_PROCS 8
static proc procs[MAX_PROCS];

/* The environment of a Python peer: ours, plus where the reference is, no .pyc files in the
 * source tree, unbuffered UTF-8 output. Built before fork (the child may only exec). */
static char **peer_env(void)
{
    static char pythonpath[1200];
    snprintf(pythonpath, sizeof pythonpath, "PYTHONPATH=%s", YT_PYZO_DIR);
    static const char *const ours_fixed[] = {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
                                             "PYTHONIOENCODING=utf-8", "PYTHONUTF8=1"};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 6, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, "PYTHONPATH=", 11) == 0 || strncmp(e, "PYTHONDONTWRITEBYTECODE=", 24) == 0 ||
            strncmp(e, "PYTHONUNBUFFERED=", 17) == 0 || strncmp(e, "PYTHONIOENCODING=", 17) == 0 ||
            strncmp(e, "PYTHONUTF8=", 11) == 0)
            continue;
        env[k++] = (char *)e;
    }
    env[k++] = pythonpath;
    for (size_t i = 0; i < 4; i++)
        env[k++] = (char *)ours_fixed[i];
    env[k] = NULL;
    return env;
}

/* Starts argv[0] with pipes on stdin and stdout; stderr is ours (it ends up in the CTest log). */
static proc *spawn_argv(const char *name, char *const argv[])
{
    proc *p = NULL;
    for (int i = 0; i < MAX_PROCS && !p; i++)
        if (procs[i].pid == 0)
            p = &procs[i];
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int in[2], out[2];
    CU_ASSERT_EQUAL_FATAL(pipe2(in, O_CLOEXEC), 0);
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        CU_FAIL_FATAL("pipe2");
    }
    char **env = peer_env();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        /* Only the three standard descriptors go to the peer: a listening socket of ours
         * inherited by a peer would keep its port bound. */
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execve(argv[0], argv, env);
        _exit(127);
    }
    free(env);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        CU_FAIL_FATAL("fork");
    }
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->in = in[1];
    p->out = out[0];
    snprintf(p->name, sizeof p->name, "%s", name);
    return p;
}

/* Starts tests/interop/py/<script> with args (NULL-terminated). */
static proc *py_spawnv(const char *script, const char *const *args)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", YT_INTEROP_PY_DIR, script);
    char *argv[16];
    int n = 0;
    argv[n++] = python_exe;
    argv[n++] = path;
    for (int i = 0; args && args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return spawn_argv(script, argv);
}

static proc *py_spawn(const char *script, ...)
{
    const char *args[14];
    int n = 0;
    va_list ap;
    va_start(ap, script);
    for (const char *a; n < 13 && (a = va_arg(ap, const char *)) != NULL;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return py_spawnv(script, args);
}

static proc *cpeer_spawn(const char *mode, const char *port)
{
    char *argv[] = {(char *)YT_CPEER_PATH, (char *)mode, (char *)port, NULL};
    return spawn_argv("cpeer", argv);
}

/* The next line of p's stdout (without the newline), waiting up to timeout seconds. */
static bool proc_line(proc *p, double timeout, char *line, size_t cap)
{
    double end = now_s() + timeout;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl || p->len == sizeof p->buf || (p->eof && p->len > 0)) {
            size_t n = nl ? (size_t)(nl - p->buf) : p->len;
            size_t c = n < cap - 1 ? n : cap - 1;
            memcpy(line, p->buf, c);
            line[c] = '\0';
            size_t used = nl ? n + 1 : n;
            memmove(p->buf, p->buf + used, p->len - used);
            p->len -= used;
            return true;
        }
        if (p->eof)
            return false;
        double left = end - now_s();
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        int r = poll(&pf, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
        if (r <= 0) {
            if (left <= 0)
                return false;
            continue;
        }
        ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - p->len);
        if (got > 0)
            p->len += (size_t)got;
        else if (got == 0 || errno != EINTR)
            p->eof = true;
    }
}

static bool first_word_is(const char *line, const char *word)
{
    size_t n = strlen(word);
    return strncmp(line, word, n) == 0 && (line[n] == ' ' || line[n] == '\0');
}

/* The next line must start with word. */
static bool expect(proc *p, const char *word, double timeout, char *line, size_t cap)
{
    if (!proc_line(p, timeout, line, cap)) {
        printf("\n    [%s] no line within %.1f s (wanted %s)%s\n", p->name, timeout, word,
               p->eof ? "; it closed its output" : "");
        return false;
    }
    if (!first_word_is(line, word)) {
        printf("\n    [%s] wanted %s, got: %s\n", p->name, word, line);
        return false;
    }
    return true;
}

/* Skips lines until one starts with word (the skipped ones are shown). */
static bool wait_word(proc *p, const char *word, double timeout, char *line, size_t cap)
{
    double end = now_s() + timeout;
    for (;;) {
        double left = end - now_s();
        if (left <= 0 || !proc_line(p, left, line, cap)) {
            printf("\n    [%s] no %s line within %.1f s\n", p->name, word, timeout);
            return false;
        }
        if (first_word_is(line, word))
            return true;
        printf("\n    [%s] (skipped) %s\n", p->name, line);
    }
}

/* True when p prints nothing for `seconds`. */
static bool quiet_for(proc *p, double seconds)
{
    char line[512];
    if (proc_line(p, seconds, line, sizeof line)) {
        printf("\n    [%s] unexpected: %s\n", p->name, line);
        return false;
    }
    return true;
}

static void proc_send(proc *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(p->in, buf + off, (size_t)(n - off));
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return; /* the peer is gone: the next expect() says so */
        }
        off += (int)w;
    }
}

static void proc_kill(proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGCONT);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    if (p->pid != 0) {
        close(p->in);
        close(p->out);
    }
    p->pid = 0;
}

/* ---------------------------------------------------------------------------------------------
 * C objects of the current test, freed by the teardown
 * ------------------------------------------------------------------------------------------- */

#define MAX_OBJS 48
static yt_loop *t_loop;
static yt_context *t_ctx[MAX_OBJS];
static yt_connection *t_conn[MAX_OBJS];
static yt_channel *t_ch[MAX_OBJS];
static yt_future *t_fut[MAX_OBJS];
static yt_request_server *t_servers[3];
static int n_ctx, n_conn, n_ch, n_fut;
static double t_start;

static bool env_ok(void);

static void test_setup(void)
{
    t_start = now_s();
    n_ctx = n_conn = n_ch = n_fut = 0;
    t_loop = NULL;
    if (yt_loop_new(&t_loop) != YT_OK)
        t_loop = NULL;
}

static void test_teardown(void)
{
    for (int i = 0; i < MAX_PROCS; i++)
        proc_kill(&procs[i]);
    for (int i = 0; i < 3; i++) {
        yt_request_server_free(t_servers[i]);
        t_servers[i] = NULL;
    }
    for (int i = 0; i < n_fut; i++)
        yt_future_free(t_fut[i]);
    for (int i = 0; i < n_ch; i++)
        yt_channel_free(t_ch[i]);
    for (int i = 0; i < n_conn; i++)
        yt_connection_release(t_conn[i]);
    for (int i = 0; i < n_ctx; i++)
        yt_context_free(t_ctx[i]);
    yt_loop_free(t_loop);
    t_loop = NULL;
    n_ctx = n_conn = n_ch = n_fut = 0;
    printf(" (%.2f s)", now_s() - t_start);
}

#define NEED_ENV()                                                                               \
    do {                                                                                         \
        CU_ASSERT_PTR_NOT_NULL_FATAL(t_loop);                                                    \
        if (!env_ok()) {                                                                         \
            printf("\n    interop: %s\n", env_problem);                                          \
            CU_FAIL_FATAL("the Python reference or python3 is missing (see the message)");       \
        }                                                                                        \
    } while (0)

static yt_context *new_ctx(size_t queue_size, yt_heartbeat_policy hb)
{
    CU_ASSERT_FATAL(n_ctx < MAX_OBJS);
    yt_context_options o;
    yt_context_options_init(&o);
    o.loop = t_loop;
    if (queue_size)
        o.queue_size = queue_size;
    o.heartbeat = hb;
    yt_context *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_context_new(&o, &ctx), YT_OK);
    t_ctx[n_ctx++] = ctx;
    return ctx;
}

static yt_connection *track_conn(yt_connection *c)
{
    CU_ASSERT_FATAL(n_conn < MAX_OBJS);
    t_conn[n_conn++] = c;
    return c;
}

static yt_connection *c_bind(yt_context *ctx, int *port)
{
    yt_connection *c = NULL;
    int rc = yt_context_bind(ctx, "127.0.0.1:0", 1, "py", &c);
    if (rc != YT_OK)
        printf("\n    bind: %s\n", yt_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    *port = yt_connection_port1(c);
    return track_conn(c);
}

static yt_connection *c_connect(yt_context *ctx, int port)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    yt_connection *c = NULL;
    int rc = yt_context_connect(ctx, addr, 10.0, "py", &c);
    if (rc != YT_OK)
        printf("\n    connect to %d: %s\n", port, yt_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    return track_conn(c);
}

static yt_channel *track_ch(int rc, yt_channel *ch)
{
    if (rc != YT_OK)
        printf("\n    channel: %s\n", yt_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    CU_ASSERT_FATAL(n_ch < MAX_OBJS);
    t_ch[n_ch++] = ch;
    return ch;
}

static yt_channel *pub_new(yt_context *ctx, const char *slot, const char *type)
{
    yt_channel *ch = NULL;
    int rc = yt_pub_new(ctx, slot, type, &ch);
    return track_ch(rc, ch);
}

static yt_channel *sub_new(yt_context *ctx, const char *slot, const char *type)
{
    yt_channel *ch = NULL;
    int rc = yt_sub_new(ctx, slot, type, &ch);
    return track_ch(rc, ch);
}

static bool conn_up(void *c)
{
    return yt_connection_is_connected(c);
}

static int port_of(const char *line)
{
    int port = 0;
    if (sscanf(line, "PORT %d", &port) != 1)
        return 0;
    return port;
}

/*
 * Puts ctx and a Python peer running script in one network. When c_binds, ctx binds and the
 * peer gets "connect PORT"; otherwise the peer gets "bind", prints its port, and ctx connects.
 * Further arguments for the peer follow (NULL-terminated). *conn receives the connection.
 */
static proc *pair_with_py(yt_context *ctx, bool c_binds, yt_connection **conn,
                          const char *script, ...)
{
    const char *args[14];
    int n = 0;
    char portbuf[16];
    int port = 0;
    if (c_binds) {
        *conn = c_bind(ctx, &port);
        snprintf(portbuf, sizeof portbuf, "%d", port);
        args[n++] = "connect";
        args[n++] = portbuf;
    } else {
        args[n++] = "bind";
    }
    va_list ap;
    va_start(ap, script);
    for (const char *a; n < 13 && (a = va_arg(ap, const char *)) != NULL;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    proc *p = py_spawnv(script, args);
    if (!c_binds) {
        char line[256];
        CU_ASSERT_TRUE_FATAL(expect(p, "PORT", 20, line, sizeof line));
        port = port_of(line);
        CU_ASSERT_FATAL(port > 0);
        *conn = c_connect(ctx, port);
    }
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * The environment check
 * ------------------------------------------------------------------------------------------- */

static bool env_ok(void)
{
    if (env_state)
        return env_state > 0;
    env_state = -1;
    char probe[1200];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/yoton/__init__.py", YT_PYZO_DIR);
    if (YT_PYZO_DIR[0] == '\0' || stat(probe, &st) != 0) {
        snprintf(env_problem, sizeof env_problem,
                 "the Python reference is not at '%s' (no yoton/__init__.py there). Run "
                 "scripts/fetch-reference.sh and configure with -DYOTON_PYZO_DIR=<the directory "
                 "it prints>; scripts/test.sh does both.",
                 YT_PYZO_DIR);
        return false;
    }
    if (!find_python()) {
        snprintf(env_problem, sizeof env_problem,
                 "python3 was not found (configured: '%s', nor on PATH); install it, for "
                 "example with apt-get install python3.",
                 YT_PYTHON3);
        return false;
    }
    char *argv[] = {python_exe, (char *)"-c",
                    (char *)"import yoton; print('VERSION', yoton.__version__)", NULL};
    proc *p = spawn_argv("python3", argv);
    char line[256] = "";
    bool ok = expect(p, "VERSION", 30, line, sizeof line);
    proc_kill(p);
    if (!ok) {
        snprintf(env_problem, sizeof env_problem,
                 "'%s' could not import yoton with PYTHONPATH=%s", python_exe, YT_PYZO_DIR);
        return false;
    }
    if (strcmp(line, "VERSION 2.2") != 0)
        printf("\n    interop: the reference says %s; these tests were written for 2.2\n", line);
    env_state = 1;
    return true;
}

static void test_reference_available(void)
{
    NEED_ENV();
    printf("\n    interop: %s with yoton from %s", python_exe, YT_PYZO_DIR);
}

/* ---------------------------------------------------------------------------------------------
 * 1. Handshake
 * ------------------------------------------------------------------------------------------- */

/* What the reference's greeting makes of an id (quirk Q2): it writes the id's hex digits and
 * pads them on the right with zeros to 16, so the reader shifts it left. */
static uint64_t q2_misread(uint64_t id)
{
    int digits = 0;
    for (uint64_t v = id; v; v >>= 4)
        digits++;
    return id == 0 ? 0 : id << (4 * (16 - digits));
}

static void run_handshake(bool c_binds, const char *py_id_hex)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *sub = sub_new(ctx, "hs", YT_TEXT);
    yt_channel *pub = pub_new(ctx, "hs-back", YT_TEXT);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "handshake.py", py_id_hex, NULL);
    char line[512];
    CU_ASSERT_TRUE_FATAL(expect(py, "IDS", 20, line, sizeof line));
    unsigned long long pyid = 0, id2 = 0;
    long pid2 = 0, pypid = 0;
    CU_ASSERT_EQUAL_FATAL(sscanf(line, "IDS %llu %llu %ld %ld", &pyid, &id2, &pid2, &pypid), 4);
    CU_ASSERT_EQUAL(pypid, (long)py->pid);
    /* Python reads our greeting (16 digits padded on the left) exactly. */
    CU_ASSERT_EQUAL(id2, yt_context_id(ctx));
    CU_ASSERT_EQUAL(pid2, (long)getpid());
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    /* We read Python's greeting as its own parser would (Q2). */
    CU_ASSERT_EQUAL(yt_connection_id2(c), q2_misread(pyid));
    CU_ASSERT_EQUAL(yt_connection_pid2(c), (long)py->pid);
    if (py_id_hex) {
        CU_ASSERT_EQUAL(pyid, strtoull(py_id_hex, NULL, 16));
        CU_ASSERT_NOT_EQUAL(yt_connection_id2(c), pyid);
    } else {
        printf("\n    interop: Python id %016llx is %s 2^60", pyid,
               pyid >> 60 ? "above" : "below (Q2 shifts it)");
    }
    /* Routing goes by the exact id in each package header, whatever the greeting said. */
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, 10, &m), YT_OK);
    CU_ASSERT_STRING_EQUAL(yt_msg_text(m), "hello from python");
    CU_ASSERT_EQUAL(yt_msg_source(m), pyid);
    yt_msg_free(m);
    CU_ASSERT_EQUAL(yt_channel_send_text(pub, "hello from c"), YT_OK);
    CU_ASSERT_TRUE(expect(py, "GOT", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "GOT hello from c");
    proc_send(py, "quit");
}

static void test_handshake_c_binds(void)
{
    run_handshake(true, NULL);
}

static void test_handshake_py_binds(void)
{
    run_handshake(false, NULL);
}

/* An id below 2^60, as every reference context has for 3 days in each 49.7 (Q2). */
static void test_handshake_small_py_id_c_binds(void)
{
    run_handshake(true, "0123456789abcdef");
}

static void test_handshake_small_py_id_py_binds(void)
{
    run_handshake(false, "0123456789abcdef");
}

/* Both sides answer a peer that is not yoton with the reference's error line and keep
 * waiting for a real peer. */
static void test_refuse_non_yoton(void)
{
    NEED_ENV();
    char line[512];
    /* A Python raw socket client knocking at a C host. */
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    int port;
    yt_connection *c = c_bind(ctx, &port);
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    proc *raw = py_spawn("rawclient.py", ports, NULL);
    CU_ASSERT_TRUE_FATAL(expect(raw, "REPLY1", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY1 1 ERROR: this is Yoton.");
    CU_ASSERT_TRUE_FATAL(expect(raw, "REPLY2", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY2 1 ERROR: could not parse id.");
    CU_ASSERT_TRUE(yt_connection_is_waiting(c));
    proc *py = py_spawn("handshake.py", "connect", ports, NULL);
    CU_ASSERT_TRUE(expect(py, "IDS", 20, line, sizeof line));
    CU_ASSERT_TRUE(wait_until(t_loop, conn_up, c, 10));

    /* A raw C client knocking at a Python host, which then takes a C context. */
    proc *host = py_spawn("handshake.py", "bind", NULL);
    CU_ASSERT_TRUE_FATAL(expect(host, "PORT", 20, line, sizeof line));
    int pport = port_of(line);
    const char *knocks[2] = {"GET / HTTP/1.0\r\n\r\n", "YOTON!xyz.12\r\n"};
    const char *answers[2] = {"ERROR: this is Yoton.\r\n", "ERROR: could not parse id.\r\n"};
    for (int i = 0; i < 2; i++) {
        int fd = raw_connect(pport);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_EQUAL(send(fd, knocks[i], strlen(knocks[i]), MSG_NOSIGNAL),
                        (ssize_t)strlen(knocks[i]));
        char buf[256];
        raw_read_line(fd, buf, sizeof buf, 5.0);
        CU_ASSERT_STRING_EQUAL(buf, answers[i]);
        close(fd);
    }
    yt_context *ctx2 = new_ctx(0, YT_HEARTBEAT_IO);
    yt_connection *c2 = c_connect(ctx2, pport);
    CU_ASSERT_TRUE(expect(host, "IDS", 20, line, sizeof line));
    CU_ASSERT_TRUE(yt_connection_is_connected(c2));
    proc_send(py, "quit");
    proc_send(host, "quit");
}

/* Our key authentication (docs/transports.md) against the reference, which has none: a keyed C
 * host refuses a Python client after the greeting and keeps waiting for a keyed peer; a keyed C
 * client refuses a Python host. Both fail with a clear reason, neither hangs. */
static void test_keyed_c_refuses_python(void)
{
    NEED_ENV();
    static const char key[] = "interop test key, 32 bytes long";
    char line[512];
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    CU_ASSERT_EQUAL(yt_context_set_key(ctx, key, strlen(key)), YT_OK);
    int port;
    yt_connection *c = c_bind(ctx, &port);
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    py_spawn("handshake.py", "connect", ports, NULL);
    char why[300] = "";
    double end = now_s() + 10;
    while (strstr(why, "Authentication failed") == NULL && now_s() < end) {
        yt_connection_last_refusal(c, why, sizeof why);
        usleep(10000);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "Authentication failed: the peer"));
    printf("\n    interop: keyed C host refused Python: %s", why);
    CU_ASSERT_TRUE(yt_connection_is_waiting(c));
    yt_context *good = new_ctx(0, YT_HEARTBEAT_IO);
    CU_ASSERT_EQUAL(yt_context_set_key(good, key, strlen(key)), YT_OK);
    yt_connection *cg = c_connect(good, port);
    CU_ASSERT_PTR_NOT_NULL(cg);
    CU_ASSERT_TRUE(wait_until(t_loop, conn_up, c, 10));

    proc *host = py_spawn("handshake.py", "bind", NULL);
    CU_ASSERT_TRUE_FATAL(expect(host, "PORT", 20, line, sizeof line));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port_of(line));
    yt_context *keyed = new_ctx(0, YT_HEARTBEAT_IO);
    CU_ASSERT_EQUAL(yt_context_set_key(keyed, key, strlen(key)), YT_OK);
    yt_connection *ck = NULL;
    double t0 = now_s();
    CU_ASSERT_EQUAL(yt_context_connect(keyed, addr, 5.0, NULL, &ck), YT_EHANDSHAKE);
    CU_ASSERT_PTR_NOT_NULL(strstr(yt_last_error(), "Authentication failed: the host"));
    printf("\n    interop: keyed C client refused a Python host: %s", yt_last_error());
    CU_ASSERT(now_s() - t0 < 5.0);
}

/* ---------------------------------------------------------------------------------------------
 * 2. Pub/sub: TEXT, BINARY and OBJECT, 10,000 each way, and 64 MiB each way
 *
 * The messages are the same functions of i as text_msg/bin_msg/obj_msg in py/common.py.
 * ------------------------------------------------------------------------------------------- */

static size_t text_msg(int i, char *buf, size_t cap)
{
    static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    int n = snprintf(buf, cap, "t%d \xc3\x84\xc3\x96\xc3\xbc \xe2\x82\xac\xf0\x9f\x98\x80 %.*s", i,
                     i % 50, xs);
    return (size_t)n;
}

static size_t bin_msg(int i, unsigned char *buf)
{
    size_t n = (size_t)(i % 61 + 1);
    for (size_t k = 0; k < n; k++)
        buf[k] = (unsigned char)((i * 31 + (int)k * 7) & 255);
    return n;
}

static yt_value *obj_msg(int i)
{
    char s[64];
    snprintf(s, sizeof s, "s%d \xc3\xa9", i);
    yt_value *t = yt_value_tuple();
    yt_value_append(t, yt_value_int(i));
    yt_value_append(t, yt_value_int(-(int64_t)i * 1000003));
    yt_value_append(t, yt_value_float(i * 0.25));
    yt_value_append(t, yt_value_string(s));
    yt_value *l = yt_value_list();
    yt_value_append(l, yt_value_none());
    yt_value_append(l, yt_value_bool(true));
    yt_value_append(l, yt_value_bool(false));
    yt_value_append(l, yt_value_bool(i % 3 == 0));
    yt_value_append(t, l);
    yt_value *d = yt_value_dict();
    yt_value_dict_set_str(d, "i", yt_value_int(i));
    yt_value_dict_set_str(d, "neg", yt_value_int(-i));
    yt_value *dt = yt_value_tuple();
    yt_value_append(dt, yt_value_int(i));
    yt_value_append(dt, yt_value_string("x"));
    yt_value_dict_set_str(d, "t", dt);
    yt_value_append(t, d);
    return t;
}

static const char *const kinds[3] = {"txt", "bin", "obj"};
static const char *const kind_types[3] = {YT_TEXT, YT_BINARY, YT_OBJECT};

static bool msg_matches(int kind, int i, const yt_msg *m)
{
    char buf[256];
    unsigned char bbuf[64];
    switch (kind) {
    case 0: {
        size_t n = text_msg(i, buf, sizeof buf);
        return yt_msg_size(m) == n && memcmp(yt_msg_data(m), buf, n) == 0;
    }
    case 1: {
        size_t n = bin_msg(i, bbuf);
        return yt_msg_size(m) == n && memcmp(yt_msg_data(m), bbuf, n) == 0;
    }
    default: {
        yt_value *got = NULL, *want = obj_msg(i);
        bool ok = yt_msg_value(m, &got) == YT_OK && yt_value_equal(got, want);
        yt_value_free(got);
        yt_value_free(want);
        return ok;
    }
    }
}

static void fill_big(unsigned char *buf, size_t n)
{
    uint32_t x = 12345;
    for (size_t k = 0; k < n; k++) {
        x = x * 1664525u + 1013904223u;
        buf[k] = (unsigned char)(x >> 24);
    }
}

static unsigned long crc_of(const void *data, size_t n)
{
    unsigned long crc = crc32(0L, Z_NULL, 0);
    const unsigned char *p = data;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

static void run_pubsub(bool c_binds)
{
    NEED_ENV();
    /* Queues big enough that nothing is discarded; the Python peer does the same. */
    yt_context *ctx = new_ctx(200000, YT_HEARTBEAT_IO);
    yt_channel *pubs[3], *subs[3];
    for (int k = 0; k < 3; k++) {
        pubs[k] = pub_new(ctx, "c2py", kind_types[k]);
        subs[k] = sub_new(ctx, "py2c", kind_types[k]);
    }
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", PUBSUB_N);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "pubsub.py", nbuf, "0", NULL);
    char line[512];
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));

    /* C to Python, interleaved: text i, binary i, object i, text i + 1, ... */
    double t0 = now_s();
    char tbuf[256];
    unsigned char bbuf[64];
    int send_errors = 0;
    for (int i = 0; i < PUBSUB_N; i++) {
        size_t n = text_msg(i, tbuf, sizeof tbuf);
        send_errors += yt_channel_send(pubs[0], tbuf, n) != YT_OK;
        n = bin_msg(i, bbuf);
        send_errors += yt_channel_send(pubs[1], bbuf, n) != YT_OK;
        yt_value *v = obj_msg(i);
        send_errors += yt_channel_send_value(pubs[2], v) != YT_OK;
        yt_value_free(v);
    }
    double c_sent = now_s() - t0;
    CU_ASSERT_EQUAL(send_errors, 0);

    /* Python to C. */
    t0 = now_s();
    double end = t0 + 90;
    int got[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < PUBSUB_N; i++) {
            yt_msg *m = NULL;
            double left = end - now_s();
            if (yt_channel_recv(subs[k], left > 0 ? left : 0, &m) != YT_OK) {
                printf("\n    py->c %s: only %d of %d arrived", kinds[k], got[k], PUBSUB_N);
                break;
            }
            bool ok = msg_matches(k, i, m);
            yt_msg_free(m);
            if (!ok) {
                printf("\n    py->c %s: message %d differs", kinds[k], i);
                break;
            }
            got[k]++;
        }
        CU_ASSERT_EQUAL(got[k], PUBSUB_N);
    }
    double c_recv = now_s() - t0;
    for (int k = 0; k < 3; k++)
        CU_ASSERT_EQUAL(yt_channel_discarded(subs[k]), 0);

    CU_ASSERT_TRUE_FATAL(expect(py, "SENT", 60, line, sizeof line));
    printf("\n    py->c 3x%d: python sent them in %s s, C had them all after %.2f s", PUBSUB_N,
           line + 5 + strlen(nbuf) + 1, c_recv);
    printf("\n    c->py 3x%d: C sent them in %.2f s; python received, in s since it started:",
           PUBSUB_N, c_sent);
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_TRUE_FATAL(expect(py, "GOT", 90, line, sizeof line));
        char want[64];
        snprintf(want, sizeof want, "GOT %s %d ", kinds[k], PUBSUB_N);
        if (strncmp(line, want, strlen(want)) != 0) {
            printf("\n    [py] %s", line);
            CU_FAIL("Python did not get every message of one type in order");
        }
        printf(" %s", line + 4);
    }

    proc_send(py, "quit");
}

/* One 64 MiB binary message each way (CRC-32 compared). */
static void run_pubsub_big(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *big_pub = pub_new(ctx, "c2py-big", YT_BINARY);
    yt_channel *big_sub = sub_new(ctx, "py2c-big", YT_BINARY);
    char bigbuf[24], line[512];
    snprintf(bigbuf, sizeof bigbuf, "%zu", BIG_LEN);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "pubsub.py", "0", bigbuf, NULL);
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    unsigned char *big = malloc(BIG_LEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    fill_big(big, BIG_LEN);
    unsigned long crc = crc_of(big, BIG_LEN);
    double t0 = now_s();
    int rc = yt_channel_send(big_pub, big, BIG_LEN);
    free(big);
    CU_ASSERT_EQUAL(rc, YT_OK);
    proc_send(py, "big");
    CU_ASSERT_TRUE_FATAL(expect(py, "BIG", 120, line, sizeof line));
    char want[96];
    snprintf(want, sizeof want, "BIG %zu %lu", BIG_LEN, crc);
    CU_ASSERT_STRING_EQUAL(line, want);
    printf("\n    64 MiB c->py in %.2f s", now_s() - t0);
    /* The reference sends from a 10 KiB socket buffer, so at most one delayed ACK's worth is
     * in flight: a receiver that delays its ACKs gets 64 MiB in about 40 s instead of 0.2 s.
     * 20 s is far above what a receiver that acknowledges at once needs. */
    t0 = now_s();
    yt_msg *m = NULL;
    rc = yt_channel_recv(big_sub, 20, &m);
    double py_big = now_s() - t0;
    if (rc != YT_OK)
        printf("\n    64 MiB py->c not there after %.1f s: are ACKs delayed (TCP_QUICKACK)?",
               py_big);
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    size_t got_len = yt_msg_size(m);
    unsigned long got_crc = crc_of(yt_msg_data(m), got_len);
    yt_msg_free(m);
    CU_ASSERT_TRUE_FATAL(expect(py, "BIGSENT", 60, line, sizeof line));
    unsigned long pylen = 0, pycrc = 0;
    CU_ASSERT_EQUAL(sscanf(line, "BIGSENT %lu %lu", &pylen, &pycrc), 2);
    CU_ASSERT_EQUAL(got_len, (size_t)pylen);
    CU_ASSERT_EQUAL(got_crc, pycrc);
    printf("\n    64 MiB py->c in %.2f s", py_big);
    proc_send(py, "quit");
}

static void test_pubsub_c_binds(void)
{
    run_pubsub(true);
}

static void test_pubsub_py_binds(void)
{
    run_pubsub(false);
}

static void test_pubsub_64mib_c_binds(void)
{
    run_pubsub_big(true);
}

static void test_pubsub_64mib_py_binds(void)
{
    run_pubsub_big(false);
}

/* ---------------------------------------------------------------------------------------------
 * 6. Mixed broker networks and a triangle
 * ------------------------------------------------------------------------------------------- */

#define TALLY_SRC 8
#define TALLY_IDX 4096

/* What one subscriber got, per source: messages are "SOURCE:i". */
typedef struct tally {
    int nsrc;
    char src[TALLY_SRC][16];
    int count[TALLY_SRC], dups[TALLY_SRC], last[TALLY_SRC];
    bool inorder[TALLY_SRC];
    unsigned char seen[TALLY_SRC][TALLY_IDX];
    int total, malformed;
} tally;

static void tally_take(tally *t, const char *msg)
{
    const char *colon = strrchr(msg, ':');
    if (!colon || colon == msg || colon - msg >= 16) {
        t->malformed++;
        return;
    }
    int idx = atoi(colon + 1);
    int s = 0;
    while (s < t->nsrc && (strlen(t->src[s]) != (size_t)(colon - msg) ||
                           strncmp(t->src[s], msg, (size_t)(colon - msg)) != 0))
        s++;
    if (s == t->nsrc) {
        if (t->nsrc == TALLY_SRC) {
            t->malformed++;
            return;
        }
        memcpy(t->src[s], msg, (size_t)(colon - msg));
        t->src[s][colon - msg] = '\0';
        t->last[s] = -1;
        t->inorder[s] = true;
        t->nsrc++;
    }
    t->total++;
    t->count[s]++;
    if (idx >= 0 && idx < TALLY_IDX) {
        if (t->seen[s][idx])
            t->dups[s]++;
        t->seen[s][idx] = 1;
    }
    if (idx != t->last[s] + 1)
        t->inorder[s] = false;
    t->last[s] = idx;
}

/* Receives until total messages arrived (at most 30 s), then `quiet` seconds more to catch
 * duplicates. */
static void collect(yt_channel *sub, int total, double quiet, tally *t)
{
    memset(t, 0, sizeof *t);
    double end = now_s() + 30;
    while (t->total < total && now_s() < end) {
        yt_msg *m = NULL;
        if (yt_channel_recv(sub, 0.5, &m) == YT_OK)
            tally_take(t, yt_msg_text(m));
        yt_msg_free(m);
    }
    end = now_s() + quiet;
    for (double left; (left = end - now_s()) > 0;) {
        yt_msg *m = NULL;
        if (yt_channel_recv(sub, left, &m) == YT_OK)
            tally_take(t, yt_msg_text(m));
        yt_msg_free(m);
    }
}

/* The tally in the netpeer's REPORT format: "<total> src:count:dups:inorder ..." sorted. */
static void tally_format(const tally *t, char *buf, size_t cap)
{
    int order[TALLY_SRC];
    for (int i = 0; i < t->nsrc; i++)
        order[i] = i;
    for (int i = 1; i < t->nsrc; i++)
        for (int j = i; j > 0 && strcmp(t->src[order[j - 1]], t->src[order[j]]) > 0; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    size_t n = (size_t)snprintf(buf, cap, "%d", t->total + t->malformed);
    for (int i = 0; i < t->nsrc && n < cap; i++) {
        int s = order[i];
        n += (size_t)snprintf(buf + n, cap - n, " %s:%d:%d:%d", t->src[s], t->count[s],
                              t->dups[s], t->inorder[s] ? 1 : 0);
    }
}

static void publish(yt_channel *pub, const char *name, int n)
{
    char buf[64];
    int errors = 0;
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%s:%d", name, i);
        errors += yt_channel_send_text(pub, buf) != YT_OK;
    }
    CU_ASSERT_EQUAL(errors, 0);
}

static void expect_report(proc *p, const char *want)
{
    char line[1024];
    CU_ASSERT_TRUE_FATAL(expect(p, "REPORT", 60, line, sizeof line));
    if (strcmp(line + 7, want) != 0)
        printf("\n    [%s] REPORT %s, wanted %s", p->name, line + 7, want);
    CU_ASSERT_STRING_EQUAL(line + 7, want);
}

static void expect_tally(const tally *t, const char *who, const char *want)
{
    char buf[512];
    tally_format(t, buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        printf("\n    [%s] got %s, wanted %s", who, buf, want);
    CU_ASSERT_STRING_EQUAL(buf, want);
}

/* Python A - C broker - Python B: each message crosses the broker once. */
static void test_broker_c_between_pythons(void)
{
    NEED_ENV();
    yt_context *b = new_ctx(200000, YT_HEARTBEAT_IO);
    yt_channel *sub = sub_new(b, "net", YT_TEXT);
    int pa, pb;
    yt_connection *ca = c_bind(b, &pa), *cb = c_bind(b, &pb);
    char sa[16], sb[16], line[256];
    snprintf(sa, sizeof sa, "%d", pa);
    snprintf(sb, sizeof sb, "%d", pb);
    proc *A = py_spawn("netpeer.py", "A", "net", "connect", sa, NULL);
    proc *B = py_spawn("netpeer.py", "B", "net", "connect", sb, NULL);
    CU_ASSERT_TRUE_FATAL(expect(A, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(expect(B, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, ca, 10));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, cb, 10));
    proc_send(A, "pub 1000");
    proc_send(B, "pub 1000");
    CU_ASSERT_TRUE_FATAL(expect(A, "PUBLISHED", 30, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(expect(B, "PUBLISHED", 30, line, sizeof line));
    proc_send(A, "report 1000 0.5");
    proc_send(B, "report 1000 0.5");
    tally t;
    collect(sub, 2000, 0.5, &t);
    expect_tally(&t, "C broker", "2000 A:1000:0:1 B:1000:0:1");
    /* A Python publisher does not deliver to its own context, and there is no cycle. */
    expect_report(A, "1000 B:1000:0:1");
    expect_report(B, "1000 A:1000:0:1");
    proc_send(A, "quit");
    proc_send(B, "quit");
}

/* C1 - Python broker - C2. */
static void test_broker_py_between_cs(void)
{
    NEED_ENV();
    char line[256];
    proc *P = py_spawn("netpeer.py", "P", "net", "bind", "bind", NULL);
    CU_ASSERT_TRUE_FATAL(expect(P, "PORT", 20, line, sizeof line));
    int p1 = port_of(line);
    CU_ASSERT_TRUE_FATAL(expect(P, "PORT", 20, line, sizeof line));
    int p2 = port_of(line);
    CU_ASSERT_TRUE_FATAL(expect(P, "READY", 20, line, sizeof line));
    yt_context *c1 = new_ctx(200000, YT_HEARTBEAT_IO), *c2 = new_ctx(200000, YT_HEARTBEAT_IO);
    yt_channel *pub1 = pub_new(c1, "net", YT_TEXT), *sub1 = sub_new(c1, "net", YT_TEXT);
    yt_channel *pub2 = pub_new(c2, "net", YT_TEXT), *sub2 = sub_new(c2, "net", YT_TEXT);
    c_connect(c1, p1);
    c_connect(c2, p2);
    proc_send(P, "conns 2");
    CU_ASSERT_TRUE_FATAL(expect(P, "CONNS", 30, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "CONNS 2");
    publish(pub1, "C1", 1000);
    publish(pub2, "C2", 1000);
    proc_send(P, "report 2000 0.5");
    tally t1, t2;
    collect(sub1, 1000, 0.5, &t1);
    collect(sub2, 1000, 0.2, &t2);
    expect_tally(&t1, "C1", "1000 C2:1000:0:1");
    expect_tally(&t2, "C2", "1000 C1:1000:0:1");
    expect_report(P, "2000 C1:1000:0:1 C2:1000:0:1");
    proc_send(P, "quit");
}

/*
 * C1 - Python P - C2 - C1, each publishing 500 messages and subscribing. Every message reaches
 * every other context exactly once. P may also get its own messages back once around the cycle
 * (quirk Q20: the reference does not know its own id as a source); the C contexts drop theirs.
 * At P the messages of one source may come out of order: its two receiver threads route
 * packages arriving over both paths without a lock around the source map (as Q16), so one
 * thread may deposit package k + 1 before the other deposits k. The C contexts keep the order.
 */
static void test_triangle(void)
{
    NEED_ENV();
    char line[512];
    yt_context *c1 = new_ctx(200000, YT_HEARTBEAT_IO), *c2 = new_ctx(200000, YT_HEARTBEAT_IO);
    yt_channel *pub1 = pub_new(c1, "tri", YT_TEXT), *sub1 = sub_new(c1, "tri", YT_TEXT);
    yt_channel *pub2 = pub_new(c2, "tri", YT_TEXT), *sub2 = sub_new(c2, "tri", YT_TEXT);
    int x;
    yt_connection *cx = c_bind(c1, &x);
    char sx[16];
    snprintf(sx, sizeof sx, "%d", x);
    proc *P = py_spawn("netpeer.py", "P", "tri", "bind", "connect", sx, NULL);
    CU_ASSERT_TRUE_FATAL(expect(P, "PORT", 20, line, sizeof line));
    int y = port_of(line);
    CU_ASSERT_TRUE_FATAL(expect(P, "READY", 20, line, sizeof line));
    c_connect(c2, y);
    int z;
    yt_connection *cz = c_bind(c2, &z);
    c_connect(c1, z);
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, cx, 10));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, cz, 10));
    proc_send(P, "conns 2");
    CU_ASSERT_TRUE_FATAL(expect(P, "CONNS", 30, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "CONNS 2");
    proc_send(P, "pub 500");
    publish(pub1, "C1", 500);
    publish(pub2, "C2", 500);
    CU_ASSERT_TRUE(expect(P, "PUBLISHED", 30, line, sizeof line));
    proc_send(P, "report 1000 0.5");
    tally t1, t2;
    collect(sub1, 1000, 0.5, &t1);
    collect(sub2, 1000, 0.2, &t2);
    expect_tally(&t1, "C1", "1000 C2:500:0:1 P:500:0:1");
    expect_tally(&t2, "C2", "1000 C1:500:0:1 P:500:0:1");
    CU_ASSERT_TRUE_FATAL(expect(P, "REPORT", 60, line, sizeof line));
    /* "REPORT <total> C1:500:0:<o> C2:500:0:<o>" plus maybe "P:<k>:0:<o>" (its own, back
     * once); <o> (in order) is not checked at P, see above. */
    int total = 0, own = 0, owndups = 0, ownorder = 0;
    char others[256] = "";
    int consumed = 0;
    CU_ASSERT_EQUAL_FATAL(sscanf(line, "REPORT %d %n", &total, &consumed) >= 1, 1);
    const char *rest = line + consumed;
    const char *pw = strstr(rest, " P:");
    if (pw) {
        snprintf(others, sizeof others, "%.*s", (int)(pw - rest), rest);
        CU_ASSERT_EQUAL(sscanf(pw, " P:%d:%d:%d", &own, &owndups, &ownorder), 3);
    } else {
        snprintf(others, sizeof others, "%s", rest);
    }
    int n1 = 0, d1 = 0, o1 = 0, n2 = 0, d2 = 0, o2 = 0;
    bool parsed = sscanf(others, "C1:%d:%d:%d C2:%d:%d:%d", &n1, &d1, &o1, &n2, &d2, &o2) == 6;
    if (!parsed || n1 != 500 || d1 != 0 || n2 != 500 || d2 != 0)
        printf("\n    [P] %s", line);
    CU_ASSERT_TRUE(parsed);
    CU_ASSERT_EQUAL(n1, 500);
    CU_ASSERT_EQUAL(d1, 0);
    CU_ASSERT_EQUAL(n2, 500);
    CU_ASSERT_EQUAL(d2, 0);
    CU_ASSERT_EQUAL(total, 1000 + own);
    CU_ASSERT_EQUAL(owndups, 0);
    CU_ASSERT(own <= 500);
    printf("\n    triangle: P got %d of its own messages back around the cycle (Q20); in order "
           "from C1 %d, from C2 %d",
           own, o1, o2);
    proc_send(P, "quit");
}

/* ---------------------------------------------------------------------------------------------
 * 7. Heartbeats and closing
 * ------------------------------------------------------------------------------------------- */

typedef struct count_at_least {
    recorder *r;
    int n;
} count_at_least;

static bool rec_reached(void *arg)
{
    count_at_least *c = arg;
    return c->r->count >= c->n;
}

/* A C context sees a stopped Python process time out, and come back after SIGCONT. */
static void run_py_stopped(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "idle.py", NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "CONNECTED", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    recorder timedout = {0};
    yt_signal_bind(yt_connection_timedout_signal(c), rec_handler, &timedout);
    /* The reference sends a heartbeat every 0.25 s when idle: no time-out while it runs. */
    spin(t_loop, 1.2);
    CU_ASSERT_EQUAL_FATAL(timedout.count, 0);
    kill(py->pid, SIGSTOP);
    double t0 = now_s();
    count_at_least one = {&timedout, 1};
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, rec_reached, &one, 5));
    double dt = now_s() - t0;
    CU_ASSERT_EQUAL(timedout.flag[0], 1);
    /* Timeout 0.5 s after the last heartbeat, which came at most 0.25 s before the stop. */
    CU_ASSERT(dt >= 0.2);
    CU_ASSERT(dt <= 3.0);
    kill(py->pid, SIGCONT);
    t0 = now_s();
    count_at_least two = {&timedout, 2};
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, rec_reached, &two, 5));
    double back = now_s() - t0;
    CU_ASSERT_EQUAL(timedout.flag[1], 0);
    CU_ASSERT(back <= 2.0);
    CU_ASSERT_TRUE(yt_connection_is_connected(c));
    printf("\n    timed out %.2f s after SIGSTOP, back %.2f s after SIGCONT", dt, back);
    proc_send(py, "quit");
}

static void test_py_stopped_c_binds(void)
{
    run_py_stopped(true);
}

static void test_py_stopped_py_binds(void)
{
    run_py_stopped(false);
}

/* A Python context (its event loop running) sees a stopped C process time out and come
 * back; traffic flows again afterwards. */
static void run_c_stopped(bool c_binds)
{
    NEED_ENV();
    char line[256];
    proc *cp, *py;
    if (c_binds) {
        cp = cpeer_spawn("bind", NULL);
        CU_ASSERT_TRUE_FATAL(expect(cp, "PORT", 20, line, sizeof line));
        char port[16];
        snprintf(port, sizeof port, "%d", port_of(line));
        py = py_spawn("idle.py", "connect", port, NULL);
    } else {
        py = py_spawn("idle.py", "bind", NULL);
        CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
        char port[16];
        snprintf(port, sizeof port, "%d", port_of(line));
        cp = cpeer_spawn("connect", port);
    }
    CU_ASSERT_TRUE_FATAL(expect(py, "CONNECTED", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(expect(cp, "CONNECTED", 20, line, sizeof line));
    /* libyoton sends heartbeats when idle, as the reference does. */
    CU_ASSERT_TRUE_FATAL(quiet_for(py, 1.2));
    kill(cp->pid, SIGSTOP);
    double t0 = now_s();
    CU_ASSERT_TRUE_FATAL(expect(py, "TIMEDOUT", 5, line, sizeof line));
    double dt = now_s() - t0;
    CU_ASSERT_STRING_EQUAL(line, "TIMEDOUT 1");
    CU_ASSERT(dt >= 0.2);
    CU_ASSERT(dt <= 3.0);
    kill(cp->pid, SIGCONT);
    t0 = now_s();
    CU_ASSERT_TRUE_FATAL(expect(py, "TIMEDOUT", 5, line, sizeof line));
    double back = now_s() - t0;
    CU_ASSERT_STRING_EQUAL(line, "TIMEDOUT 0");
    CU_ASSERT(back <= 2.0);
    proc_send(py, "ping");
    CU_ASSERT_TRUE(expect(py, "REPLY", 10, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY pong");
    printf("\n    python saw the timeout %.2f s after SIGSTOP, and data %.2f s after SIGCONT",
           dt, back);
    proc_send(py, "quit");
    proc_send(cp, "quit");
}

static void test_c_stopped_c_binds(void)
{
    run_c_stopped(true);
}

static void test_c_stopped_py_binds(void)
{
    run_c_stopped(false);
}

/*
 * The main thread busy (no call into yoton) for a while. Under YT_HEARTBEAT_APP Python sees the
 * C side time out while its messages still arrive at the C side; once the application calls
 * into yoton again, Python sees it back. Under YT_HEARTBEAT_IO nothing times out.
 */
static void run_busy(yt_heartbeat_policy policy)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, policy);
    yt_channel *sub = sub_new(ctx, "data", YT_TEXT);
    yt_connection *c;
    proc *py = pair_with_py(ctx, true, &c, "idle.py", NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "CONNECTED", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    /* Alive now; from here on this thread only reads the peer's output. */
    yt_context_alive(ctx);
    double t0 = now_s();
    if (policy == YT_HEARTBEAT_IO) {
        CU_ASSERT_TRUE(quiet_for(py, 2.0));
        proc_send(py, "quit");
        return;
    }
    CU_ASSERT_TRUE_FATAL(expect(py, "TIMEDOUT", 5, line, sizeof line));
    double dt = now_s() - t0;
    CU_ASSERT_STRING_EQUAL(line, "TIMEDOUT 1");
    /* Heartbeats go on for the connection's timeout (0.5 s) after the last sign of life, then
     * Python waits its own 0.5 s. */
    CU_ASSERT(dt >= 0.45);
    CU_ASSERT(dt <= 3.0);
    proc_send(py, "send 100");
    CU_ASSERT_TRUE_FATAL(expect(py, "SENT", 10, line, sizeof line));
    /* Still timed out for Python, and the data reached the C context's queue anyway. */
    CU_ASSERT_TRUE(quiet_for(py, 1.0));
    CU_ASSERT_EQUAL(yt_channel_pending(sub), 100);
    double busy = now_s() - t0;
    /* Back to work: the loop and a receive show that the application is alive. */
    t0 = now_s();
    yt_loop_process(t_loop, 0);
    int got = 0;
    for (yt_msg *m = NULL; got < 100 && yt_channel_recv(sub, 5, &m) == YT_OK; m = NULL) {
        char want[16];
        snprintf(want, sizeof want, "d%d", got);
        CU_ASSERT_STRING_EQUAL(yt_msg_text(m), want);
        yt_msg_free(m);
        got++;
    }
    CU_ASSERT_EQUAL(got, 100);
    bool back = false;
    while (!back && now_s() - t0 < 5) {
        yt_loop_process(t_loop, 0.05);
        back = proc_line(py, 0, line, sizeof line);
    }
    CU_ASSERT_TRUE(back);
    CU_ASSERT_STRING_EQUAL(line, "TIMEDOUT 0");
    printf("\n    busy %.2f s: python saw the time-out after %.2f s and the C side back after "
           "%.2f s",
           busy, dt, now_s() - t0);
    proc_send(py, "quit");
}

static void test_app_policy_busy_times_out(void)
{
    run_busy(YT_HEARTBEAT_APP);
}

static void test_io_policy_busy_does_not_time_out(void)
{
    run_busy(YT_HEARTBEAT_IO);
}

/* A C context closing: Python gets the close package ("Closed from other end."). */
static void run_c_closes(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "idle.py", NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "CONNECTED", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    double t0 = now_s();
    if (c_binds)
        yt_connection_close(c, NULL);
    else
        yt_context_close(ctx);
    CU_ASSERT_TRUE_FATAL(wait_word(py, "CLOSED", 5, line, sizeof line));
    if (strcmp(line, "CLOSED Closed from other end.") != 0)
        printf("\n    [py] %s", line);
    CU_ASSERT_STRING_EQUAL(line, "CLOSED Closed from other end.");
    CU_ASSERT(now_s() - t0 <= 3.0);
    proc_send(py, "quit");
}

static void test_c_closes_c_binds(void)
{
    run_c_closes(true);
}

static void test_c_closes_py_binds(void)
{
    run_c_closes(false);
}

/* A Python context closing (no close package, Q4) or its process killed: the C side gets a
 * reason, never a hang. */
static void run_py_ends(bool c_binds, const char *how)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "idle.py", NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "CONNECTED", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    recorder closed = {0};
    yt_signal_bind(yt_connection_closed_signal(c), rec_handler, &closed);
    double t0 = now_s();
    if (strcmp(how, "kill") == 0)
        kill(py->pid, SIGKILL);
    else
        proc_send(py, "%s", how);
    count_at_least one = {&closed, 1};
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, rec_reached, &one, 5));
    double dt = now_s() - t0;
    CU_ASSERT(dt <= 3.0);
    CU_ASSERT_FALSE(yt_connection_is_alive(c));
    const char *reason = yt_connection_close_reason(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
    CU_ASSERT_STRING_EQUAL(closed.text[0], reason);
    /* The reference closes without its close package (Q4): we see the end of the stream, or
     * a reset when its socket still held unread bytes of ours (a heartbeat) as it closed. */
    CU_ASSERT(strcmp(reason, "Other end dropped the connection.") == 0 ||
              strstr(reason, "Connection reset by peer") != NULL);
    printf("\n    %s: '%s' after %.2f s", how, reason, dt);
}

static void test_py_closes_connection_c_binds(void)
{
    run_py_ends(true, "close");
}

static void test_py_closes_context_py_binds(void)
{
    run_py_ends(false, "ctxclose");
}

static void test_py_killed_c_binds(void)
{
    run_py_ends(true, "kill");
}

static void test_py_killed_py_binds(void)
{
    run_py_ends(false, "kill");
}

/* The C process killed: the Python side gets a reason too. */
static void run_c_killed(bool c_binds)
{
    NEED_ENV();
    char line[256];
    proc *cp, *py;
    if (c_binds) {
        cp = cpeer_spawn("bind", NULL);
        CU_ASSERT_TRUE_FATAL(expect(cp, "PORT", 20, line, sizeof line));
        char port[16];
        snprintf(port, sizeof port, "%d", port_of(line));
        py = py_spawn("idle.py", "connect", port, NULL);
    } else {
        py = py_spawn("idle.py", "bind", NULL);
        CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
        char port[16];
        snprintf(port, sizeof port, "%d", port_of(line));
        cp = cpeer_spawn("connect", port);
    }
    CU_ASSERT_TRUE_FATAL(expect(py, "CONNECTED", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(expect(cp, "CONNECTED", 20, line, sizeof line));
    double t0 = now_s();
    kill(cp->pid, SIGKILL);
    CU_ASSERT_TRUE_FATAL(wait_word(py, "CLOSED", 5, line, sizeof line));
    CU_ASSERT(strlen(line) > strlen("CLOSED "));
    printf("\n    python: '%s' after %.2f s", line + 7, now_s() - t0);
    proc_send(py, "quit");
}

static void test_c_killed_c_binds(void)
{
    run_c_killed(true);
}

static void test_c_killed_py_binds(void)
{
    run_c_killed(false);
}

/* ---------------------------------------------------------------------------------------------
 * 3. Request / reply
 * ------------------------------------------------------------------------------------------- */

static yt_value *h_types(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                         size_t errsize)
{
    (void)user;
    (void)err;
    (void)errsize;
    yt_value *t = yt_value_tuple();
    yt_value_append(t, yt_value_copy(args));
    yt_value_append(t, yt_value_copy(kwargs));
    return t;
}

static yt_value *h_add(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                       size_t errsize)
{
    (void)kwargs;
    (void)user;
    int64_t a, b;
    if (yt_value_len(args) != 2 || yt_value_as_int(yt_value_item(args, 0), &a) != YT_OK ||
        yt_value_as_int(yt_value_item(args, 1), &b) != YT_OK) {
        snprintf(err, errsize, "add needs two ints");
        return NULL;
    }
    return yt_value_int(a + b);
}

static yt_value *h_fail(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                        size_t errsize)
{
    (void)args;
    (void)kwargs;
    (void)user;
    snprintf(err, errsize, "deliberate failure from C");
    return NULL;
}

static yt_value *h_who(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                       size_t errsize)
{
    (void)kwargs;
    (void)user;
    (void)err;
    (void)errsize;
    double delay = 0;
    yt_value_as_float(yt_value_item(args, 0), &delay);
    sleep_s(delay);
    return yt_value_string("c");
}

static yt_channel *rep_new(yt_context *ctx, const char *slot)
{
    yt_channel *rep = NULL;
    int rc = yt_rep_new(ctx, slot, &rep);
    track_ch(rc, rep);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "types", h_types, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "add", h_add, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "fail", h_fail, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_rep_register(rep, "who", h_who, NULL), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_rep_set_mode(rep, YT_REP_THREAD), YT_OK);
    return rep;
}

/* A Python ReqChannel calls a C RepChannel. */
static void run_py_calls_c(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    rep_new(ctx, "calc");
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "reqrep.py", "req", "calc", NULL);
    char line[1024], want[128];
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    proc_send(py, "go");
    CU_ASSERT_TRUE_FATAL(expect(py, "TYPES", 30, line, sizeof line));
    if (strncmp(line, "TYPES 1 ", 8) != 0)
        printf("\n    %s", line);
    CU_ASSERT_EQUAL(strncmp(line, "TYPES 1 ", 8), 0);
    CU_ASSERT_TRUE_FATAL(expect(py, "ADD", 30, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "ADD 7");
    CU_ASSERT_TRUE_FATAL(expect(py, "ECHO", 30, line, sizeof line));
    snprintf(want, sizeof want, "ECHO ('hi', '0x%llx')",
             (unsigned long long)yt_context_id(ctx));
    CU_ASSERT_STRING_EQUAL(line, want);
    CU_ASSERT_TRUE_FATAL(expect(py, "UNKNOWN", 30, line, sizeof line));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "Method 'nosuch' not implemented."));
    CU_ASSERT_TRUE_FATAL(expect(py, "FAIL", 30, line, sizeof line));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "deliberate failure from C"));
    proc_send(py, "quit");
}

static void test_py_calls_c_c_binds(void)
{
    run_py_calls_c(true);
}

static void test_py_calls_c_py_binds(void)
{
    run_py_calls_c(false);
}

/* Positional arguments of every object type (as a tuple), and keyword arguments. */
static yt_value *all_types_args(void)
{
    yt_value *a = yt_value_tuple();
    yt_value_append(a, yt_value_none());
    yt_value_append(a, yt_value_bool(true));
    yt_value_append(a, yt_value_bool(false));
    yt_value_append(a, yt_value_int(0));
    yt_value_append(a, yt_value_int(INT64_MAX));
    yt_value_append(a, yt_value_int(INT64_MIN));
    yt_value_append(a, yt_value_float(-0.0));
    yt_value_append(a, yt_value_float(1e300));
    yt_value_append(a, yt_value_float(INFINITY));
    yt_value_append(a, yt_value_string(""));
    yt_value_append(a, yt_value_string("pl\xc3\xa4in \xe2\x82\xac\xf0\x9f\x98\x80"));
    yt_value_append(a, yt_value_stringn("nul\0inside", 10));
    yt_value *l = yt_value_list();
    yt_value_append(l, yt_value_int(1));
    yt_value *inner = yt_value_list();
    yt_value_append(inner, yt_value_tuple());
    yt_value_append(l, inner);
    yt_value_append(a, l);
    yt_value_append(a, yt_value_tuple());
    yt_value *d = yt_value_dict();
    yt_value_dict_set(d, yt_value_int(1), yt_value_string("int key"));
    yt_value_dict_set(d, yt_value_float(2.5), yt_value_string("float key"));
    yt_value_dict_set(d, yt_value_none(), yt_value_string("None key"));
    yt_value *tk = yt_value_tuple();
    yt_value_append(tk, yt_value_int(1));
    yt_value_append(tk, yt_value_string("x"));
    yt_value_dict_set(d, tk, yt_value_list());
    yt_value_append(a, d);
    return a;
}

static yt_value *all_types_kwargs(void)
{
    yt_value *k = yt_value_dict();
    yt_value_dict_set_str(k, "none", yt_value_none());
    yt_value_dict_set_str(k, "b", yt_value_bool(true));
    yt_value_dict_set_str(k, "i", yt_value_int(-7));
    yt_value_dict_set_str(k, "f", yt_value_float(0.1));
    yt_value_dict_set_str(k, "s", yt_value_string("\xc3\x9f"));
    yt_value *nested = yt_value_dict();
    yt_value *deep = yt_value_list();
    yt_value_append(deep, yt_value_none());
    yt_value_dict_set_str(nested, "deep", deep);
    yt_value_dict_set_str(k, "d", nested);
    return k;
}

static yt_future *call(yt_channel *req, const char *method, const yt_value *args,
                       const yt_value *kwargs)
{
    yt_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_req_call(req, method, args, kwargs, &f), YT_OK);
    CU_ASSERT_FATAL(n_fut < MAX_OBJS);
    t_fut[n_fut++] = f;
    return f;
}

/* A C ReqChannel calls a Python RepChannel subclass. */
static void run_c_calls_py(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *req = NULL;
    int rc = yt_req_new(ctx, "calc", &req);
    track_ch(rc, req);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "reqrep.py", "rep", "calc", NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(expect(py, "ID", 20, line, sizeof line));
    unsigned long long pyid = strtoull(line + 3, NULL, 10);

    yt_value *hi = yt_value_tuple();
    yt_value_append(hi, yt_value_string("hi"));
    yt_future *f = call(req, "echo", hi, NULL);
    yt_value_free(hi);
    yt_value *r = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_future_result(f, 20, &r), YT_OK);
    char hex[32];
    snprintf(hex, sizeof hex, "0x%llx", pyid);
    CU_ASSERT_EQUAL(yt_value_type_of(r), YT_TUPLE);
    CU_ASSERT_STRING_EQUAL(yt_value_as_string(yt_value_item(r, 0), NULL), "hi");
    const char *rid = yt_value_as_string(yt_value_item(r, 1), NULL);
    CU_ASSERT_STRING_EQUAL(rid ? rid : "", hex);
    yt_value_free(r);

    yt_value *args = all_types_args(), *kwargs = all_types_kwargs();
    f = call(req, "types", args, kwargs);
    r = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 20, &r), YT_OK);
    yt_value *want = yt_value_tuple();
    yt_value_append(want, args);
    yt_value_append(want, kwargs);
    CU_ASSERT_TRUE(yt_value_equal(r, want));
    yt_value_free(want);
    yt_value_free(r);

    yt_value *two = yt_value_tuple();
    yt_value_append(two, yt_value_int(3));
    yt_value_append(two, yt_value_int(4));
    f = call(req, "add", two, NULL);
    yt_value_free(two);
    r = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 20, &r), YT_OK);
    int64_t sum = 0;
    CU_ASSERT_EQUAL(yt_value_as_int(r, &sum), YT_OK);
    CU_ASSERT_EQUAL(sum, 7);
    yt_value_free(r);

    f = call(req, "nosuch", NULL, NULL);
    r = NULL;
    CU_ASSERT_EQUAL(yt_future_result(f, 20, &r), YT_EREMOTE);
    const char *ex = yt_future_exception(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    CU_ASSERT_PTR_NOT_NULL(strstr(ex, "Method 'nosuch' not implemented."));
    CU_ASSERT_PTR_NULL(r);
    proc_send(py, "quit");
}

static void test_c_calls_py_c_binds(void)
{
    run_c_calls_py(true);
}

static void test_c_calls_py_py_binds(void)
{
    run_c_calls_py(false);
}

/* Two repliers, one C and one Python, share the requests of a C requester. */
static void run_shared_load(bool py_binds)
{
    NEED_ENV();
    yt_context *q = new_ctx(0, YT_HEARTBEAT_IO), *r = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *req = NULL;
    int rc = yt_req_new(q, "lb", &req);
    track_ch(rc, req);
    rep_new(r, "lb");
    char line[256], sp[16];
    proc *py;
    int p1;
    yt_connection *cq = c_bind(q, &p1);
    c_connect(r, p1);
    if (py_binds) {
        py = py_spawn("reqrep.py", "bind", "rep", "lb", NULL);
        CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
        c_connect(q, port_of(line));
    } else {
        int p2;
        c_bind(q, &p2);
        snprintf(sp, sizeof sp, "%d", p2);
        py = py_spawn("reqrep.py", "connect", sp, "rep", "lb", NULL);
    }
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(expect(py, "ID", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, cq, 10));
    CU_ASSERT_EQUAL_FATAL(yt_context_connection_count(q), 2);

    enum { N = 20 };
    yt_value *args = yt_value_tuple();
    yt_value_append(args, yt_value_float(0.1));
    double t0 = now_s();
    yt_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = call(req, "who", args, NULL);
    yt_value_free(args);
    int by_c = 0, by_py = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        yt_value *v = NULL;
        if (yt_future_result(fs[i], 30, &v) != YT_OK) {
            failed++;
            continue;
        }
        const char *s = yt_value_as_string(v, NULL);
        by_c += s && strcmp(s, "c") == 0;
        by_py += s && strcmp(s, "py") == 0;
        yt_value_free(v);
    }
    double dt = now_s() - t0;
    printf("\n    %d requests of 0.1 s: %d by C, %d by Python, %.2f s", N, by_c, by_py, dt);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(by_c + by_py, N);
    CU_ASSERT(by_c >= 2);
    CU_ASSERT(by_py >= 2);
    /* One replier alone needs N * 0.1 s at least. */
    CU_ASSERT(dt < N * 0.1);
    proc_send(py, "quit");
}

static void test_shared_load_c_hosts(void)
{
    run_shared_load(false);
}

static void test_shared_load_py_hosts(void)
{
    run_shared_load(true);
}

/* ---------------------------------------------------------------------------------------------
 * 4. State
 * ------------------------------------------------------------------------------------------- */

/* The VALUE of py/state.py. */
static yt_value *state_value(void)
{
    yt_value *d = yt_value_dict();
    yt_value_dict_set_str(d, "mode", yt_value_string("run"));
    yt_value_dict_set_str(d, "n", yt_value_int(42));
    yt_value *l = yt_value_list();
    yt_value_append(l, yt_value_float(1.5));
    yt_value_append(l, yt_value_none());
    yt_value *t = yt_value_tuple();
    yt_value_append(t, yt_value_bool(true));
    yt_value_append(t, yt_value_string("x"));
    yt_value_append(l, t);
    yt_value_dict_set_str(d, "l", l);
    return d;
}

/*
 * A C context A sets a state while connected to another C context (without a state channel);
 * only then does A bind again, and a Python context joins there. It learns the state from
 * A's send_last(), which its NEW_CONNECTION triggers (a connection bound earlier would have
 * queued the state itself, Q17).
 */
static void test_state_py_joins_late(void)
{
    NEED_ENV();
    yt_context *a = new_ctx(0, YT_HEARTBEAT_IO), *x = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *st = NULL;
    int rc = yt_state_new(a, "st", YT_OBJECT, &st);
    track_ch(rc, st);
    int p1;
    yt_connection *ca = c_bind(a, &p1);
    c_connect(x, p1);
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, ca, 10));
    yt_value *v = state_value();
    CU_ASSERT_EQUAL(yt_channel_send_value(st, v), YT_OK);
    yt_value_free(v);
    CU_ASSERT_EQUAL(yt_context_flush(a, 5), YT_OK);
    int p2;
    c_bind(a, &p2);
    char sp[16], line[512];
    snprintf(sp, sizeof sp, "%d", p2);
    proc *py = py_spawn("state.py", "join", sp, "st", NULL);
    CU_ASSERT_TRUE_FATAL(expect(py, "STATE", 20, line, sizeof line));
    if (strncmp(line, "STATE 1 ", 8) != 0)
        printf("\n    %s", line);
    CU_ASSERT_EQUAL(strncmp(line, "STATE 1 ", 8), 0);
    proc_send(py, "quit");
}

/* The reverse: Python sets a state while connected to a C context without a state channel,
 * binds again, and a C context joins there late. */
static void test_state_c_joins_late(void)
{
    NEED_ENV();
    char line[256];
    proc *py = py_spawn("state.py", "host", "st", NULL);
    CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
    int p1 = port_of(line);
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    yt_context *x = new_ctx(0, YT_HEARTBEAT_IO), *y = new_ctx(0, YT_HEARTBEAT_IO);
    c_connect(x, p1);
    proc_send(py, "set");
    CU_ASSERT_TRUE_FATAL(expect(py, "SET", 20, line, sizeof line));
    proc_send(py, "bind");
    CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
    int p2 = port_of(line);
    yt_channel *st = NULL;
    int rc = yt_state_new(y, "st", YT_OBJECT, &st);
    track_ch(rc, st);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(st, 0, &m), YT_EAGAIN);
    c_connect(y, p2);
    double end = now_s() + 10;
    while ((rc = yt_channel_recv(st, 0, &m)) == YT_EAGAIN && now_s() < end)
        sleep_s(0.01);
    CU_ASSERT_EQUAL_FATAL(rc, YT_OK);
    yt_value *got = NULL, *want = state_value();
    CU_ASSERT_EQUAL(yt_msg_value(m, &got), YT_OK);
    CU_ASSERT_TRUE(yt_value_equal(got, want));
    yt_value_free(got);
    yt_value_free(want);
    yt_msg_free(m);
    proc_send(py, "quit");
}

/* ---------------------------------------------------------------------------------------------
 * 5. Sync mode across languages
 * ------------------------------------------------------------------------------------------- */

/* A Python publisher held back by a C subscriber in sync mode. */
static void run_py_pub_held(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *sub = sub_new(ctx, "sy", YT_TEXT);
    CU_ASSERT_EQUAL_FATAL(yt_sub_set_sync_mode(sub, true), YT_OK);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "sync.py", "pub", "sy", NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    /* More than 32 queued here: we ask the publisher to hold back ("full"). */
    proc_send(py, "burst 34");
    CU_ASSERT_TRUE_FATAL(expect(py, "BURST", 10, line, sizeof line));
    sleep_s(0.5);
    proc_send(py, "timed 2");
    CU_ASSERT_TRUE_FATAL(expect(py, "TIMED", 10, line, sizeof line));
    double slow = 0, fast = 0;
    CU_ASSERT_EQUAL(sscanf(line, "TIMED 2 %lf %lf", &slow, &fast), 2);
    printf("\n    held: each send took %.2f..%.2f s", fast, slow);
    /* Each send waits up to 1 s for "ok", then sends anyway. */
    CU_ASSERT(fast >= 0.8);
    CU_ASSERT(slow <= 1.6);
    /* Draining below 16 sends "ok": the publisher runs free again. */
    int got = 0;
    for (yt_msg *m = NULL; got < 36 && yt_channel_recv(sub, 5, &m) == YT_OK; m = NULL) {
        char want[16];
        snprintf(want, sizeof want, "m%d", got);
        CU_ASSERT_STRING_EQUAL(yt_msg_text(m), want);
        yt_msg_free(m);
        got++;
    }
    CU_ASSERT_EQUAL(got, 36);
    proc_send(py, "timed 20");
    CU_ASSERT_TRUE_FATAL(expect(py, "TIMED", 30, line, sizeof line));
    CU_ASSERT_EQUAL(sscanf(line, "TIMED 20 %lf %lf", &slow, &fast), 2);
    printf("; released: at most %.3f s", slow);
    CU_ASSERT(slow < 0.5);
    for (yt_msg *m = NULL; got < 56 && yt_channel_recv(sub, 5, &m) == YT_OK; m = NULL) {
        char want[16];
        snprintf(want, sizeof want, "m%d", got);
        CU_ASSERT_STRING_EQUAL(yt_msg_text(m), want);
        yt_msg_free(m);
        got++;
    }
    CU_ASSERT_EQUAL(got, 56);
    proc_send(py, "quit");
}

static void test_py_pub_held_c_binds(void)
{
    run_py_pub_held(true);
}

static void test_py_pub_held_py_binds(void)
{
    run_py_pub_held(false);
}

/* A C publisher held back by a Python subscriber in sync mode (its event loop running). */
static void run_c_pub_held(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *pub = pub_new(ctx, "sy", YT_TEXT);
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "sync.py", "sub", "sy", NULL);
    char line[256], msg[16];
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    int sent = 0;
    for (; sent < 34; sent++) {
        snprintf(msg, sizeof msg, "m%d", sent);
        CU_ASSERT_EQUAL(yt_channel_send_text(pub, msg), YT_OK);
    }
    sleep_s(0.6);
    /* The reference checks its queue when it handles the received event: with a burst that
     * arrives at once it may see it only at the next message, so of three sends at least the
     * last two are held. */
    double times[3];
    for (int i = 0; i < 3; i++, sent++) {
        snprintf(msg, sizeof msg, "m%d", sent);
        double t0 = now_s();
        CU_ASSERT_EQUAL(yt_channel_send_text(pub, msg), YT_OK);
        times[i] = now_s() - t0;
    }
    printf("\n    held: sends took %.2f, %.2f, %.2f s", times[0], times[1], times[2]);
    CU_ASSERT(times[1] >= 0.8 && times[2] >= 0.8);
    for (int i = 0; i < 3; i++)
        CU_ASSERT(times[i] <= 1.6);
    proc_send(py, "drain 37");
    CU_ASSERT_TRUE_FATAL(expect(py, "DRAINED", 10, line, sizeof line));
    if (strcmp(line, "DRAINED 37") != 0)
        printf("\n    %s", line);
    CU_ASSERT_STRING_EQUAL(line, "DRAINED 37");
    double slowest = 0;
    for (int i = 0; i < 20; i++, sent++) {
        snprintf(msg, sizeof msg, "m%d", sent);
        double t0 = now_s();
        CU_ASSERT_EQUAL(yt_channel_send_text(pub, msg), YT_OK);
        double dt = now_s() - t0;
        slowest = dt > slowest ? dt : slowest;
    }
    printf("; released: at most %.3f s", slowest);
    CU_ASSERT(slowest < 0.5);
    proc_send(py, "count 57");
    CU_ASSERT_TRUE_FATAL(expect(py, "TOTAL", 40, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "TOTAL 57 1");
    proc_send(py, "quit");
}

static void test_c_pub_held_c_binds(void)
{
    run_c_pub_held(true);
}

static void test_c_pub_held_py_binds(void)
{
    run_c_pub_held(false);
}

/* ---------------------------------------------------------------------------------------------
 * Quirks that matter to a mixed network (docs/interop.md)
 * ------------------------------------------------------------------------------------------- */

/* Q17: the reference blocks a sender for 1 s per package once 64 wait on a bound connection
 * that has no peer yet. libyoton queues them (bounded) without blocking, and the peer that
 * comes later gets them all, in order. */
static void test_waiting_connection_does_not_block(void)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *pub = pub_new(ctx, "q17", YT_TEXT);
    int port;
    yt_connection *c = c_bind(ctx, &port);
    double t0 = now_s();
    publish(pub, "C", 300);
    double dt = now_s() - t0;
    CU_ASSERT(dt < 0.5);
    CU_ASSERT_TRUE(yt_connection_is_waiting(c));
    char sp[16], line[256];
    snprintf(sp, sizeof sp, "%d", port);
    proc *py = py_spawn("netpeer.py", "P", "q17", "connect", sp, NULL);
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    proc_send(py, "report 300 0.3");
    expect_report(py, "300 C:300:0:1");
    printf("\n    300 sends with nobody connected took %.3f s", dt);
    proc_send(py, "quit");
}

/* The TEXTS and OBJECTS of py/zlibpeer.py. */
static void zlib_texts(char texts[3][5001])
{
    snprintf(texts[0], 5001, "hello zlib");
    for (int i = 0; i < 1000; i++)
        memcpy(texts[1] + 5 * i, "\xc3\xa9\xe2\x82\xac", 5);
    texts[1][5000] = '\0';
    snprintf(texts[2], 5001, "x");
}

static yt_value *zlib_object(int i)
{
    if (i == 0) {
        yt_value *t = yt_value_tuple(), *l = yt_value_list();
        yt_value_append(t, yt_value_int(1));
        yt_value_append(t, yt_value_string("two"));
        yt_value_append(l, yt_value_float(3.0));
        yt_value_append(l, yt_value_none());
        yt_value_append(t, l);
        return t;
    }
    char v[501];
    memset(v, 'v', 500);
    v[500] = '\0';
    yt_value *d = yt_value_dict(), *l = yt_value_list();
    yt_value_dict_set_str(d, "k", yt_value_string(v));
    yt_value_append(l, yt_value_bool(true));
    yt_value_append(l, yt_value_bool(false));
    yt_value_dict_set_str(d, "n", l);
    return d;
}

/* zlib types: libyoton's YT_ZLIB(...) against a Python MessageType that compresses. */
static void run_zlib_types(bool c_binds)
{
    NEED_ENV();
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *pub_t = pub_new(ctx, "zc2py", YT_ZLIB(YT_TEXT));
    yt_channel *pub_o = pub_new(ctx, "zc2py", YT_ZLIB(YT_OBJECT));
    yt_channel *sub_t = sub_new(ctx, "zpy2c", YT_ZLIB(YT_TEXT));
    yt_channel *sub_o = sub_new(ctx, "zpy2c", YT_ZLIB(YT_OBJECT));
    yt_connection *c;
    proc *py = pair_with_py(ctx, c_binds, &c, "zlibpeer.py", NULL);
    char line[256];
    static char texts[3][5001];
    zlib_texts(texts);
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(yt_channel_send_text(pub_t, texts[i]), YT_OK);
    for (int i = 0; i < 2; i++) {
        yt_value *v = zlib_object(i);
        CU_ASSERT_EQUAL(yt_channel_send_value(pub_o, v), YT_OK);
        yt_value_free(v);
    }
    /* From Python: inflated by the library, the inner type's bytes. */
    for (int i = 0; i < 3; i++) {
        yt_msg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub_t, 10, &m), YT_OK);
        CU_ASSERT_STRING_EQUAL(yt_msg_text(m), texts[i]);
        yt_msg_free(m);
    }
    for (int i = 0; i < 2; i++) {
        yt_msg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(yt_channel_recv(sub_o, 10, &m), YT_OK);
        yt_value *got = NULL, *want = zlib_object(i);
        CU_ASSERT_EQUAL(yt_msg_value(m, &got), YT_OK);
        CU_ASSERT_TRUE(yt_value_equal(got, want));
        yt_value_free(got);
        yt_value_free(want);
        yt_msg_free(m);
    }
    CU_ASSERT_EQUAL(yt_channel_discarded(sub_t), 0);
    CU_ASSERT_EQUAL(yt_channel_discarded(sub_o), 0);
    /* To Python: decompressed there with zlib.decompress(). */
    CU_ASSERT_TRUE_FATAL(expect(py, "SENT", 20, line, sizeof line));
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_TRUE_FATAL(expect(py, "GOT", 20, line, sizeof line));
        if (strncmp(line + 8, "1 ", 2) != 0)
            printf("\n    [py] %s", line);
        CU_ASSERT_EQUAL(strncmp(line, i < 3 ? "GOT txt 1 " : "GOT obj 1 ", 10), 0);
    }
    proc_send(py, "quit");
}

static void test_zlib_types_c_binds(void)
{
    run_zlib_types(true);
}

static void test_zlib_types_py_binds(void)
{
    run_zlib_types(false);
}

/* Slot names are lower-cased before hashing. libyoton folds ASCII and Latin-1 as Python does;
 * other upper-case letters (here Greek) are left as they are, so such a name gets another slot
 * than in Python (documented): lower-case names meet. */
static void test_slot_names_case(void)
{
    NEED_ENV();
    static const char *const names[4] = {"Chat Room", "\xc3\x84\xc3\x96\xc3\x9c",
                                         "\xcf\x89mega", "\xce\x94" "ELTA"};
    static const int heard[4] = {1, 1, 1, 0};
    yt_context *ctx = new_ctx(0, YT_HEARTBEAT_IO);
    yt_channel *pubs[4];
    for (int i = 0; i < 4; i++)
        pubs[i] = pub_new(ctx, names[i], YT_TEXT);
    yt_connection *c;
    proc *py = pair_with_py(ctx, true, &c, "slotnames.py", names[0], names[1], names[2],
                            names[3], NULL);
    char line[256];
    CU_ASSERT_TRUE_FATAL(expect(py, "READY", 20, line, sizeof line));
    CU_ASSERT_TRUE_FATAL(wait_until(t_loop, conn_up, c, 10));
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(yt_channel_send_text(pubs[i], names[i]), YT_OK);
    proc_send(py, "listen");
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_TRUE_FATAL(expect(py, "HEARD", 10, line, sizeof line));
        char want[16];
        snprintf(want, sizeof want, "HEARD %d", heard[i]);
        if (strcmp(line, want) != 0)
            printf("\n    slot '%s': %s, wanted %s", names[i], line, want);
        CU_ASSERT_STRING_EQUAL(line, want);
    }
    proc_send(py, "quit");
}

/* ---------------------------------------------------------------------------------------------
 * 8. Client/server: do_request and RequestServer, no context involved
 * ------------------------------------------------------------------------------------------- */

static char *h_c_got(const char *request, void *user)
{
    (void)user;
    size_t n = strlen(request);
    char *r = malloc(n + 8);
    if (r)
        snprintf(r, n + 8, "C got %s", request);
    return r;
}

static char *h_two_lines(const char *request, void *user)
{
    (void)request;
    (void)user;
    return strdup("first\r\nsecond");
}

static yt_request_server *server_new(int i, yt_request_fn fn)
{
    yt_request_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_request_server_new("127.0.0.1:0", fn, NULL, false, &s), YT_OK);
    t_servers[i] = s;
    CU_ASSERT_EQUAL_FATAL(yt_request_server_start(s), YT_OK);
    return s;
}

/* The reference's do_request against C servers: the default handler, our own handler, and a
 * two-line reply (cut at its first CR LF by the client, Q10). */
static void test_client_server_py_client(void)
{
    NEED_ENV();
    yt_request_server *def = server_new(0, NULL), *own = server_new(1, h_c_got),
                      *two = server_new(2, h_two_lines);
    char p0[16], p1[16], p2[16], line[512];
    snprintf(p0, sizeof p0, "%d", yt_request_server_port(def));
    snprintf(p1, sizeof p1, "%d", yt_request_server_port(own));
    snprintf(p2, sizeof p2, "%d", yt_request_server_port(two));
    proc *a = py_spawn("cs.py", "client", p0, "hello", "with crlf\\r\\n", NULL);
    CU_ASSERT_TRUE_FATAL(expect(a, "REPLY", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY 'Requested: hello\\r\\n'");
    CU_ASSERT_TRUE_FATAL(expect(a, "REPLY", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY 'Requested: with crlf\\r\\n'");
    proc *b = py_spawn("cs.py", "client", p1, "h\xc3\xa9llo \xe2\x82\xac", NULL);
    CU_ASSERT_TRUE_FATAL(expect(b, "REPLY", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY 'C got h\xc3\xa9llo \xe2\x82\xac\\r\\n'");
    proc *c = py_spawn("cs.py", "client", p2, "x", NULL);
    CU_ASSERT_TRUE_FATAL(expect(c, "REPLY", 20, line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "REPLY 'first\\r\\n'");
    proc_send(a, "quit");
    proc_send(b, "quit");
    proc_send(c, "quit");
}

/* yt_do_request against the reference's RequestServer (default handler) and a subclass whose
 * reply has two lines. */
static void test_client_server_c_client(void)
{
    NEED_ENV();
    char line[256], addr[64];
    proc *py = py_spawn("cs.py", "server", NULL);
    CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
    int pdef = port_of(line);
    CU_ASSERT_TRUE_FATAL(expect(py, "PORT", 20, line, sizeof line));
    int ptwo = port_of(line);
    char *reply = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", pdef);
    CU_ASSERT_EQUAL(yt_do_request(addr, "hello", 5, &reply), YT_OK);
    CU_ASSERT_STRING_EQUAL(reply ? reply : "", "Requested: hello\r\n");
    yt_free(reply);
    reply = NULL;
    CU_ASSERT_EQUAL(yt_do_request(addr, "h\xc3\xa9llo\r\n", 5, &reply), YT_OK);
    CU_ASSERT_STRING_EQUAL(reply ? reply : "", "Requested: h\xc3\xa9llo\r\n");
    yt_free(reply);
    reply = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ptwo);
    CU_ASSERT_EQUAL(yt_do_request(addr, "x", 5, &reply), YT_OK);
    CU_ASSERT_STRING_EQUAL(reply ? reply : "", "first\r\n");
    yt_free(reply);
    proc_send(py, "quit");
}

/* ---------------------------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------------------------- */

void yt_suite_interop(void)
{
    static const yt_test_def tests[] = {
        {"reference_available", test_reference_available},
        {"handshake_c_binds", test_handshake_c_binds},
        {"handshake_py_binds", test_handshake_py_binds},
        {"handshake_small_py_id_c_binds", test_handshake_small_py_id_c_binds},
        {"handshake_small_py_id_py_binds", test_handshake_small_py_id_py_binds},
        {"refuse_non_yoton", test_refuse_non_yoton},
        {"keyed_c_refuses_python", test_keyed_c_refuses_python},
        {"pubsub_c_binds", test_pubsub_c_binds},
        {"pubsub_py_binds", test_pubsub_py_binds},
        {"pubsub_64mib_c_binds", test_pubsub_64mib_c_binds},
        {"pubsub_64mib_py_binds", test_pubsub_64mib_py_binds},
        {"reqrep_py_calls_c_c_binds", test_py_calls_c_c_binds},
        {"reqrep_py_calls_c_py_binds", test_py_calls_c_py_binds},
        {"reqrep_c_calls_py_c_binds", test_c_calls_py_c_binds},
        {"reqrep_c_calls_py_py_binds", test_c_calls_py_py_binds},
        {"reqrep_shared_load_c_hosts", test_shared_load_c_hosts},
        {"reqrep_shared_load_py_hosts", test_shared_load_py_hosts},
        {"state_py_joins_late", test_state_py_joins_late},
        {"state_c_joins_late", test_state_c_joins_late},
        {"sync_py_pub_held_c_binds", test_py_pub_held_c_binds},
        {"sync_py_pub_held_py_binds", test_py_pub_held_py_binds},
        {"sync_c_pub_held_c_binds", test_c_pub_held_c_binds},
        {"sync_c_pub_held_py_binds", test_c_pub_held_py_binds},
        {"broker_c_between_pythons", test_broker_c_between_pythons},
        {"broker_py_between_cs", test_broker_py_between_cs},
        {"triangle", test_triangle},
        {"waiting_connection_does_not_block", test_waiting_connection_does_not_block},
        {"zlib_types_c_binds", test_zlib_types_c_binds},
        {"zlib_types_py_binds", test_zlib_types_py_binds},
        {"slot_names_case", test_slot_names_case},
        {"py_stopped_c_binds", test_py_stopped_c_binds},
        {"py_stopped_py_binds", test_py_stopped_py_binds},
        {"c_stopped_c_binds", test_c_stopped_c_binds},
        {"c_stopped_py_binds", test_c_stopped_py_binds},
        {"app_policy_busy_times_out", test_app_policy_busy_times_out},
        {"io_policy_busy_does_not_time_out", test_io_policy_busy_does_not_time_out},
        {"c_closes_c_binds", test_c_closes_c_binds},
        {"c_closes_py_binds", test_c_closes_py_binds},
        {"py_closes_connection_c_binds", test_py_closes_connection_c_binds},
        {"py_closes_context_py_binds", test_py_closes_context_py_binds},
        {"py_killed_c_binds", test_py_killed_c_binds},
        {"py_killed_py_binds", test_py_killed_py_binds},
        {"c_killed_c_binds", test_c_killed_c_binds},
        {"c_killed_py_binds", test_c_killed_py_binds},
        {"client_server_py_client", test_client_server_py_client},
        {"client_server_c_client", test_client_server_c_client},
        {NULL, NULL},
    };
    CU_pSuite s = CU_add_suite_with_setup_and_teardown("interop", NULL, NULL, test_setup,
                                                       test_teardown);
    if (!s)
        return;
    /* YT_INTEROP_TESTS=word,word runs only the tests whose names contain one of the words. */
    const char *only = getenv("YT_INTEROP_TESTS");
    for (const yt_test_def *t = tests; t->name; t++) {
        bool wanted = !only || !*only;
        for (const char *w = only; !wanted && w && *w;) {
            const char *comma = strchr(w, ',');
            size_t n = comma ? (size_t)(comma - w) : strlen(w);
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)(n < 63 ? n : 63), w);
            wanted = n > 0 && strstr(t->name, word) != NULL;
            w = comma ? comma + 1 : NULL;
        }
        if (wanted)
            CU_add_test(s, t->name, t->fn);
    }
}

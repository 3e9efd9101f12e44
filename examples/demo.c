/*
 * yt_demo - the IDE/kernel network of Pyzo, in four processes (the demo of scripts/demo.sh).
 *
 *      client1 ---+                          (clients: 2 ports of the broker)
 *                 +--- broker --- kernel     (kernel: 1 port of the broker)
 *      client2 ---+
 *
 * broker   The first process. One context that binds three ephemeral ports on 127.0.0.1 (one
 *          for the kernel, one per client) and starts the three other processes. It routes
 *          everything between them (every context routes), and reports what it sees of the
 *          others: on the PubChannel "strm-broker" as log lines ("kernel connected", "kernel
 *          busy", ...) and in the StateChannel "stat-broker" as "kernel=<state> clients=<n>",
 *          a state that clients joining at any time learn at once.
 * kernel   Connects to the broker. Its stdout and stderr are yt_stream_writer FILEs publishing
 *          on "strm-out" and "strm-err", its stdin a yt_stream_reader FILE reading "ctrl-command":
 *          the interpreter below uses plain printf, fprintf(stderr) and fgets. It runs a toy
 *          language (integer variables and arithmetic: "x = 6 * 7", "print x + 1", "sleep 2",
 *          "exit"). A RepChannel "reqp-introspect" on a thread of its own answers "dir" (the
 *          variables) and "eval" (an expression) for the clients, as Pyzo's introspection does.
 * client1, client2
 *          Connect to the broker, send code lines on "ctrl-command", and both print everything
 *          the kernel writes and the broker reports. They take turns by watching the output.
 *
 * Busy kernel. The kernel's context uses the YT_HEARTBEAT_APP policy: its connection sends
 * heartbeats only while the application shows it is alive (here: while it waits in fgets on
 * its stdin). "sleep 2" keeps the main thread away from yoton for 2 s, the heartbeats stop, and
 * the broker's connection to the kernel reports a time-out: the broker announces "kernel busy".
 * When the kernel is back, bytes flow again and the broker announces "kernel alive". (Time-outs
 * are per connection: the clients cannot see the kernel's silence themselves, the broker tells
 * them, as in Pyzo.)
 *
 * Each client checks what it received (every output line, once, in order; the error line; busy
 * then alive) and exits non-zero when something is missing; so does the broker when a process
 * failed. Run: yt_demo (no arguments); it takes about 2 s.
 */
#include "example.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>

#define KERNEL_TIMEOUT 0.75 /* the broker calls the kernel busy after this much silence (s) */

/* What every client must see on the kernel's stdout and stderr, in order. */
static const char *const EXPECTED_OUT[] = {
    ">>> x = 6 * 7", ">>> print x",       "42",   /* client1 */
    ">>> y = x - 2", ">>> print x + y",   "82",   /* client2 */
    ">>> print z",                                /* client2: the error goes to stderr */
    ">>> sleep 2",   ">>> print x * 100", "4200", /* client1 */
    ">>> exit",      "bye",                       /* client1 */
};
#define NEXPECTED_OUT (sizeof EXPECTED_OUT / sizeof EXPECTED_OUT[0])
static const char *const EXPECTED_ERR = "NameError: name 'z' is not defined";

/* ------------------------------------------------------------------------------------------ */
/* Kernel: a toy interpreter                                                                   */

#define MAXVARS 32

/* The interpreter's variables. The introspection thread reads them too, hence the lock. */
static struct {
    pthread_mutex_t lock;
    int n;
    char name[MAXVARS][32];
    int64_t value[MAXVARS];
} vars = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0}};

typedef struct parser {
    const char *p;
    char err[128];
} parser;

static void skip_space(parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

/* Reads a name at ps->p into out (empty when there is none). */
static void parse_name(parser *ps, char *out, size_t size)
{
    size_t n = 0;
    if (isalpha((unsigned char)*ps->p) || *ps->p == '_')
        while ((isalnum((unsigned char)*ps->p) || *ps->p == '_') && n + 1 < size)
            out[n++] = *ps->p++;
    out[n] = '\0';
}

static bool parse_sum(parser *ps, int64_t *out);

/* factor: integer | name | "(" sum ")" | "-" factor. Called with vars.lock held. */
static bool parse_factor(parser *ps, int64_t *out)
{
    skip_space(ps);
    if (*ps->p == '-') {
        ps->p++;
        if (!parse_factor(ps, out))
            return false;
        *out = -*out;
        return true;
    }
    if (*ps->p == '(') {
        ps->p++;
        if (!parse_sum(ps, out))
            return false;
        skip_space(ps);
        if (*ps->p++ != ')') {
            snprintf(ps->err, sizeof ps->err, "SyntaxError: missing ')'");
            return false;
        }
        return true;
    }
    if (isdigit((unsigned char)*ps->p)) {
        *out = 0;
        while (isdigit((unsigned char)*ps->p))
            *out = *out * 10 + (*ps->p++ - '0');
        return true;
    }
    char name[32];
    parse_name(ps, name, sizeof name);
    if (!*name) {
        snprintf(ps->err, sizeof ps->err, "SyntaxError: invalid syntax");
        return false;
    }
    for (int i = 0; i < vars.n; i++) {
        if (strcmp(vars.name[i], name) == 0) {
            *out = vars.value[i];
            return true;
        }
    }
    snprintf(ps->err, sizeof ps->err, "NameError: name '%s' is not defined", name);
    return false;
}

/* product: factor (("*" | "/") factor)* */
static bool parse_product(parser *ps, int64_t *out)
{
    if (!parse_factor(ps, out))
        return false;
    for (;;) {
        skip_space(ps);
        char op = *ps->p;
        if (op != '*' && op != '/')
            return true;
        ps->p++;
        int64_t rhs;
        if (!parse_factor(ps, &rhs))
            return false;
        if (op == '/' && rhs == 0) {
            snprintf(ps->err, sizeof ps->err, "ZeroDivisionError: division by zero");
            return false;
        }
        *out = op == '*' ? *out * rhs : *out / rhs;
    }
}

/* sum: product (("+" | "-") product)* */
static bool parse_sum(parser *ps, int64_t *out)
{
    if (!parse_product(ps, out))
        return false;
    for (;;) {
        skip_space(ps);
        char op = *ps->p;
        if (op != '+' && op != '-')
            return true;
        ps->p++;
        int64_t rhs;
        if (!parse_product(ps, &rhs))
            return false;
        *out = op == '+' ? *out + rhs : *out - rhs;
    }
}

/* Evaluates a whole expression. Takes vars.lock. */
static bool evaluate(const char *text, int64_t *out, char *err, size_t errsize)
{
    parser ps = {text, ""};
    pthread_mutex_lock(&vars.lock);
    bool ok = parse_sum(&ps, out);
    pthread_mutex_unlock(&vars.lock);
    skip_space(&ps);
    if (ok && *ps.p) {
        snprintf(ps.err, sizeof ps.err, "SyntaxError: invalid syntax");
        ok = false;
    }
    if (!ok)
        snprintf(err, errsize, "%s", ps.err);
    return ok;
}

static void assign(const char *name, int64_t value)
{
    pthread_mutex_lock(&vars.lock);
    int i = 0;
    while (i < vars.n && strcmp(vars.name[i], name) != 0)
        i++;
    if (i < MAXVARS) {
        if (i == vars.n) {
            snprintf(vars.name[i], sizeof vars.name[i], "%s", name);
            vars.n++;
        }
        vars.value[i] = value;
    }
    pthread_mutex_unlock(&vars.lock);
}

/*
 * Runs one line of code. Output goes to stdout and errors to stderr, which are yoton streams by
 * now: this function does not know it. Returns false on "exit".
 */
static bool run_line(const char *code)
{
    printf(">>> %s\n", code); /* echo, so that every client sees who ran what */
    char err[128];
    int64_t v;
    if (strcmp(code, "exit") == 0) {
        printf("bye\n");
        return false;
    }
    if (strncmp(code, "sleep ", 6) == 0) {
        /* A long computation: the main thread stays away from yoton. */
        double s = strtod(code + 6, NULL);
        struct timespec pause = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        ex_say("busy for %.1f s, not calling yoton", s);
        nanosleep(&pause, NULL);
        ex_say("back");
        return true;
    }
    if (strncmp(code, "print ", 6) == 0) {
        if (evaluate(code + 6, &v, err, sizeof err))
            printf("%" PRId64 "\n", v);
        else
            fprintf(stderr, "%s\n", err);
        return true;
    }
    /* An assignment "name = expression", or else an expression whose value is printed. */
    parser ps = {code, ""};
    char name[32];
    parse_name(&ps, name, sizeof name);
    skip_space(&ps);
    if (*name && ps.p[0] == '=' && ps.p[1] != '=') {
        if (evaluate(ps.p + 1, &v, err, sizeof err))
            assign(name, v);
        else
            fprintf(stderr, "%s\n", err);
        return true;
    }
    if (evaluate(code, &v, err, sizeof err))
        printf("%" PRId64 "\n", v);
    else
        fprintf(stderr, "%s\n", err);
    return true;
}

/* Introspection "dir": the names of the variables. */
static yt_value *introspect_dir(const yt_value *args, const yt_value *kwargs, void *user,
                                char *err, size_t errsize)
{
    (void)args, (void)kwargs, (void)user, (void)err, (void)errsize;
    yt_value *names = yt_value_list();
    pthread_mutex_lock(&vars.lock);
    for (int i = 0; i < vars.n; i++)
        yt_value_append(names, yt_value_string(vars.name[i]));
    pthread_mutex_unlock(&vars.lock);
    return names;
}

/* Introspection "eval": the value of an expression (without running any code). */
static yt_value *introspect_eval(const yt_value *args, const yt_value *kwargs, void *user,
                                 char *err, size_t errsize)
{
    (void)kwargs, (void)user;
    const char *expr = yt_value_as_string(yt_value_item(args, 0), NULL);
    int64_t v;
    if (!expr) {
        snprintf(err, errsize, "eval() takes one string");
        return NULL;
    }
    return evaluate(expr, &v, err, errsize) ? yt_value_int(v) : NULL;
}

static int kernel(const char *port)
{
    yt_context_options opts;
    yt_context_options_init(&opts);
    opts.heartbeat = YT_HEARTBEAT_APP; /* heartbeats say "the interpreter is alive" */
    yt_context *ctx;
    yt_channel *command, *out, *err, *introspect;
    ex_ok(yt_context_new(&opts, &ctx), "yt_context_new");
    ex_ok(yt_sub_new(ctx, "ctrl-command", YT_TEXT, &command), "yt_sub_new");
    ex_ok(yt_pub_new(ctx, "strm-out", YT_TEXT, &out), "yt_pub_new");
    ex_ok(yt_pub_new(ctx, "strm-err", YT_TEXT, &err), "yt_pub_new");
    ex_ok(yt_rep_new(ctx, "reqp-introspect", &introspect), "yt_rep_new");
    ex_ok(yt_rep_register(introspect, "dir", introspect_dir, NULL), "yt_rep_register");
    ex_ok(yt_rep_register(introspect, "eval", introspect_eval, NULL), "yt_rep_register");
    /* Its own thread: introspection answers even while the interpreter is busy. */
    ex_ok(yt_rep_set_mode(introspect, YT_REP_THREAD), "yt_rep_set_mode");
    char addr[64];
    ex_ok(yt_context_connect(ctx, ex_address(addr, sizeof addr, atoi(port)), 5.0, "broker",
                             NULL),
          "yt_context_connect");

    /* Redirect stdio (glibc lets a program assign stdin/stdout/stderr). Lines are messages. */
    FILE *real_in = stdin, *real_out = stdout, *real_err = stderr;
    FILE *fin = yt_stream_reader(command);
    FILE *fout = yt_stream_writer(out, YT_STREAM_LINE);
    FILE *ferr = yt_stream_writer(err, YT_STREAM_LINE);
    if (!fin || !fout || !ferr)
        ex_fail("could not open the streams");
    stdin = fin;
    stdout = fout;
    stderr = ferr;
    ex_say("connected; stdin, stdout and stderr are yoton channels now");

    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (*line && !run_line(line))
            break;
    }
    fflush(stdout);
    stdin = real_in;
    stdout = real_out;
    stderr = real_err;
    fclose(fin);
    fclose(fout);
    fclose(ferr);
    ex_say("exiting");
    yt_context_flush(ctx, 2.0);
    yt_channel_free(command);
    yt_channel_free(out);
    yt_channel_free(err);
    yt_channel_free(introspect);
    yt_context_free(ctx);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Broker                                                                                      */

enum { K_WAITING, K_READY, K_BUSY, K_GONE };
static const char *const KSTATE[] = {"waiting", "ready", "busy", "gone"};

typedef struct broker {
    yt_channel *log;   /* PubChannel "strm-broker" */
    yt_channel *state; /* StateChannel "stat-broker" */
    yt_connection *kernel;
    yt_connection *client[2];
    bool client_seen[2], client_left[2];
    int kstate;
    int clients;
    int busy_count, alive_count;
    double busy_since;
} broker;

static void announce(broker *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void announce(broker *b, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ex_say("status: %s", text);
    yt_channel_send_text(b->log, text);
}

/* Sets the state "kernel=<state> clients=<n>" (a state channel sends nothing when the value
 * is unchanged). */
static void update_state(broker *b)
{
    char text[64];
    snprintf(text, sizeof text, "kernel=%s clients=%d", KSTATE[b->kstate], b->clients);
    yt_channel_send_text(b->state, text);
}

/*
 * Keeps the clients' copies of the state right. Whenever a context joins, EVERY state channel
 * on the slot sends its state again, the clients' included, and a client's copy may be older
 * than the broker's latest: a state channel has no timestamps, the last arrival wins (the
 * reference documents the same race). So the broker, the one writer, asserts the truth: at
 * every turn it sets the state again (which sends only if an older copy passing through has
 * overwritten its own), and every half second it re-sends it (for a copy that overtook its
 * latest value on the way to a client).
 */
static void assert_state(broker *b, double *next_resend)
{
    update_state(b);
    if (ex_now() >= *next_resend) {
        yt_state_send_last(b->state);
        *next_resend = ex_now() + 0.5;
    }
}

/* The kernel's connection timed out (flag 1) or has data again (flag 0). */
static void on_kernel_timedout(const yt_event *ev, void *user)
{
    broker *b = user;
    if (ev->flag && b->kstate == K_READY) {
        b->kstate = K_BUSY;
        b->busy_count++;
        b->busy_since = ex_now() - KERNEL_TIMEOUT;
        announce(b, "kernel busy (silent for %.2f s)", KERNEL_TIMEOUT);
    } else if (!ev->flag && b->kstate == K_BUSY) {
        b->kstate = K_READY;
        b->alive_count++;
        announce(b, "kernel alive (it was silent for %.1f s)", ex_now() - b->busy_since);
    }
    update_state(b);
}

static void on_kernel_closed(const yt_event *ev, void *user)
{
    broker *b = user;
    b->kstate = K_GONE;
    announce(b, "kernel exited (%s)", ev->text);
    update_state(b);
}

static void on_client_closed(const yt_event *ev, void *user)
{
    yt_connection *c = ev->source;
    broker *b = user;
    int i = c == b->client[0] ? 0 : 1;
    b->client_left[i] = true;
    b->clients--;
    announce(b, "client%d left", i + 1);
    update_state(b);
}

static int run_broker(void)
{
    broker b = {0};
    yt_context *ctx;
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    ex_ok(yt_pub_new(ctx, "strm-broker", YT_TEXT, &b.log), "yt_pub_new");
    ex_ok(yt_state_new(ctx, "stat-broker", YT_TEXT, &b.state), "yt_state_new");
    update_state(&b);

    char port[3][16];
    ex_ok(yt_context_bind(ctx, "localhost:0", 1, "kernel", &b.kernel), "yt_context_bind");
    ex_ok(yt_connection_set_timeout(b.kernel, KERNEL_TIMEOUT), "yt_connection_set_timeout");
    yt_signal_bind(yt_connection_timedout_signal(b.kernel), on_kernel_timedout, &b);
    yt_signal_bind(yt_connection_closed_signal(b.kernel), on_kernel_closed, &b);
    snprintf(port[0], sizeof port[0], "%d", yt_connection_port1(b.kernel));
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "client%d", i + 1);
        ex_ok(yt_context_bind(ctx, "localhost:0", 1, name, &b.client[i]), "yt_context_bind");
        yt_signal_bind(yt_connection_closed_signal(b.client[i]), on_client_closed, &b);
        snprintf(port[i + 1], sizeof port[i + 1], "%d", yt_connection_port1(b.client[i]));
    }
    ex_say("kernel port %s, client ports %s and %s", port[0], port[1], port[2]);
    ex_spawn("kernel", port[0], NULL, NULL);
    ex_spawn("client1", port[1], NULL, NULL);
    ex_spawn("client2", port[2], NULL, NULL);

    /* The broker's work is routing, which its connections' threads do by themselves. This
     * thread only watches: it runs the event loop (signal handlers) and notices arrivals. */
    double end = ex_now() + 20.0, next_resend = 0;
    while (b.kstate != K_GONE || !b.client_left[0] || !b.client_left[1]) {
        if (ex_now() > end)
            ex_fail("the session did not end in time");
        yt_loop_process(yt_loop_default(), 0.02);
        assert_state(&b, &next_resend);
        if (b.kstate == K_WAITING && yt_connection_is_connected(b.kernel)) {
            b.kstate = K_READY;
            announce(&b, "kernel connected (pid %ld)", yt_connection_pid2(b.kernel));
            update_state(&b);
        }
        for (int i = 0; i < 2; i++) {
            if (!b.client_seen[i] && yt_connection_is_connected(b.client[i])) {
                b.client_seen[i] = true;
                b.clients++;
                announce(&b, "client%d connected (pid %ld)", i + 1,
                         yt_connection_pid2(b.client[i]));
                update_state(&b);
            }
        }
    }
    int failed = ex_reap_all(5.0);
    yt_connection_release(b.kernel);
    yt_connection_release(b.client[0]);
    yt_connection_release(b.client[1]);
    yt_channel_free(b.log);
    yt_channel_free(b.state);
    yt_context_free(ctx);
    if (failed)
        ex_fail("%d process(es) failed", failed);
    if (b.busy_count < 1 || b.alive_count < 1)
        ex_fail("the kernel was never seen busy and alive again");
    ex_say("done: all processes exited cleanly");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Clients                                                                                     */

enum { S_OUT, S_ERR, S_BROKER, NSTREAMS };
static const char *const STREAM_TAG[NSTREAMS] = {"out", "err", "broker"};

#define MAXLINES 64

typedef struct client {
    yt_channel *command;            /* PubChannel "ctrl-command": the kernel's stdin */
    yt_channel *subs[NSTREAMS];     /* "strm-out", "strm-err", "strm-broker" */
    yt_channel *state;              /* StateChannel "stat-broker" */
    yt_channel *introspect;         /* ReqChannel "reqp-introspect" */
    char *lines[NSTREAMS][MAXLINES]; /* everything received, per stream */
    int nlines[NSTREAMS];
} client;

/* Receives whatever arrives within timeout (in arrival order across the three streams),
 * printing and recording it. */
static void receive(client *c, double timeout)
{
    size_t which;
    yt_msg *m;
    if (yt_sub_recv_any(c->subs, NSTREAMS, timeout, &which, &m) != YT_OK)
        return;
    char text[256];
    snprintf(text, sizeof text, "%s", yt_msg_text(m));
    text[strcspn(text, "\n")] = '\0'; /* stream messages are whole lines */
    yt_msg_free(m);
    ex_say("%-6s| %s", STREAM_TAG[which], text);
    if (c->nlines[which] == MAXLINES)
        ex_fail("too many lines");
    c->lines[which][c->nlines[which]++] = strdup(text);
}

/* Receives until a line containing `text` arrived on stream s, at index `from` or later. */
static void wait_line(client *c, int s, int from, const char *text)
{
    double end = ex_now() + 10.0;
    for (;;) {
        for (int i = from; i < c->nlines[s]; i++)
            if (strstr(c->lines[s][i], text))
                return;
        if (ex_now() > end)
            ex_fail("waited in vain for \"%s\" on %s", text, STREAM_TAG[s]);
        receive(c, 0.05);
    }
}

static void send_code(client *c, const char *code)
{
    char line[256];
    ex_say("send  | %s", code);
    snprintf(line, sizeof line, "%s\n", code); /* a line of the kernel's stdin */
    ex_ok(yt_channel_send_text(c->command, line), "yt_channel_send_text");
}

/* Calls an introspection method with one optional string argument. */
static yt_value *introspect(client *c, const char *method, const char *arg)
{
    yt_value *args = yt_value_tuple();
    if (arg)
        yt_value_append(args, yt_value_string(arg));
    yt_future *f;
    ex_ok(yt_req_call(c->introspect, method, args, NULL, &f), "yt_req_call");
    yt_value_free(args);
    yt_value *result = NULL;
    int rc = yt_future_result(f, 5.0, &result);
    if (rc != YT_OK)
        ex_fail("introspection %s: %s %s", method, yt_strerror(rc),
                yt_future_exception(f) ? yt_future_exception(f) : "");
    yt_future_free(f);
    return result;
}

/* Waits until the broker's state says the kernel is ready and both clients are here. */
static void wait_for_everybody(client *c)
{
    double end = ex_now() + 10.0;
    for (;;) {
        yt_msg *m = NULL;
        yt_channel_recv(c->state, 0, &m); /* the latest state, at once */
        char state[64];
        snprintf(state, sizeof state, "%s", yt_msg_text(m));
        yt_msg_free(m);
        if (strstr(state, "kernel=ready") && strstr(state, "clients=2"))
            return;
        if (ex_now() > end)
            ex_fail("the kernel and the other client did not show up (state \"%s\")", state);
        receive(c, 0.02);
    }
}

/* client1 starts, puts the kernel to sleep and ends the session. */
static void script1(client *c)
{
    send_code(c, "x = 6 * 7");
    send_code(c, "print x");
    wait_line(c, S_OUT, 0, "42");
    /* client2's turn; it ends with an error on purpose. */
    wait_line(c, S_ERR, 0, "NameError");
    int mark = c->nlines[S_BROKER];
    send_code(c, "sleep 2");
    send_code(c, "print x * 100"); /* waits in the kernel's stdin while it is busy */
    wait_line(c, S_BROKER, mark, "kernel busy");
    wait_line(c, S_BROKER, mark, "kernel alive");
    wait_line(c, S_OUT, 0, "4200");
    yt_value *names = introspect(c, "dir", NULL);
    char list[128] = "";
    for (size_t i = 0; i < yt_value_len(names); i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 yt_value_as_string(yt_value_item(names, i), NULL));
    ex_say("dir() -> [%s]", list);
    if (strcmp(list, "x, y") != 0)
        ex_fail("dir() should list x and y");
    yt_value_free(names);
    send_code(c, "exit");
}

/* client2 joins in once client1 has a result, and asks the kernel to evaluate something. */
static void script2(client *c)
{
    wait_line(c, S_OUT, 0, "42");
    send_code(c, "y = x - 2");
    send_code(c, "print x + y");
    wait_line(c, S_OUT, 0, "82");
    int64_t v = 0;
    yt_value *r = introspect(c, "eval", "x * y");
    if (yt_value_as_int(r, &v) != YT_OK || v != 1680)
        ex_fail("eval(\"x * y\") should be 1680");
    ex_say("eval(\"x * y\") -> %" PRId64, v);
    yt_value_free(r);
    send_code(c, "print z");
}

static int run_client(int me, const char *port)
{
    client c = {0};
    yt_context *ctx;
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    static const char *const SUBS[NSTREAMS] = {"strm-out", "strm-err", "strm-broker"};
    for (int s = 0; s < NSTREAMS; s++)
        ex_ok(yt_sub_new(ctx, SUBS[s], YT_TEXT, &c.subs[s]), "yt_sub_new");
    ex_ok(yt_pub_new(ctx, "ctrl-command", YT_TEXT, &c.command), "yt_pub_new");
    ex_ok(yt_state_new(ctx, "stat-broker", YT_TEXT, &c.state), "yt_state_new");
    ex_ok(yt_req_new(ctx, "reqp-introspect", &c.introspect), "yt_req_new");
    char addr[64];
    ex_ok(yt_context_connect(ctx, ex_address(addr, sizeof addr, atoi(port)), 5.0, "broker",
                             NULL),
          "yt_context_connect");
    wait_for_everybody(&c);
    if (me == 1)
        script1(&c);
    else
        script2(&c);
    wait_line(&c, S_BROKER, 0, "kernel exited");
    receive(&c, 0.1); /* anything late would be a duplicate */

    /* Check: all the output, each line once and in order, and the one error. */
    bool ok = c.nlines[S_OUT] == (int)NEXPECTED_OUT && c.nlines[S_ERR] == 1 &&
              strcmp(c.lines[S_ERR][0], EXPECTED_ERR) == 0;
    for (int i = 0; ok && i < (int)NEXPECTED_OUT; i++)
        ok = strcmp(c.lines[S_OUT][i], EXPECTED_OUT[i]) == 0;
    if (!ok)
        ex_fail("the kernel's output was not what it should be");
    ex_say("saw all %d output lines and the error, once each, in order", (int)NEXPECTED_OUT);

    for (int s = 0; s < NSTREAMS; s++) {
        for (int i = 0; i < c.nlines[s]; i++)
            free(c.lines[s][i]);
        yt_channel_free(c.subs[s]);
    }
    yt_channel_free(c.command);
    yt_channel_free(c.state);
    yt_channel_free(c.introspect);
    yt_context_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "kernel") == 0) {
        ex_start(argv[0], "kernel");
        return kernel(argv[2]);
    }
    if (argc == 3 && strncmp(argv[1], "client", 6) == 0) {
        ex_start(argv[0], argv[1]);
        return run_client(atoi(argv[1] + 6), argv[2]);
    }
    ex_start(argv[0], "broker");
    ex_say("libyoton %s demo: Pyzo's IDE/kernel network in four processes", yt_version_string());
    ex_say("  broker   routes between the others and reports on the kernel");
    ex_say("  kernel   runs a toy language; its stdin, stdout and stderr are yoton channels");
    ex_say("  client1  sends code; prints the kernel's output (out, err) and the broker's news");
    ex_say("  client2  the same, and asks the kernel to evaluate an expression");
    return run_broker();
}

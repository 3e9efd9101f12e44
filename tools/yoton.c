/*
 * yoton - the yoton messaging library from the shell.
 *
 * One subcommand per pattern (pub, sub, req, rep, state, broker) plus the client/server pair
 * (request, serve). Messages are lines on stdin/stdout; OBJECT messages are JSON, one value per
 * line (tuples are written as arrays; dict keys that are not strings are written as their JSON
 * text). Connection events go to stderr with --verbose. SIGINT and SIGTERM close the
 * connections properly and exit 0. Exit codes, for scripts:
 *   0 success, 1 usage error, 2 cannot bind/connect, 3 time-out, 4 the remote side reported an
 *   error, 5 bad input (a line that is not valid JSON/UTF-8), 6 other failure.
 * The exact formats are documented in docs/tool.md and in `yoton --help`.
 */
#define _POSIX_C_SOURCE 200809L
#include "yoton.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EX_OK = 0, EX_USAGE = 1, EX_CONNECT = 2, EX_TIMEOUT = 3, EX_REMOTE = 4, EX_INPUT = 5,
       EX_FAIL = 6 };

static volatile sig_atomic_t interrupted;
static bool verbose;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    if (!verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "yoton: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "yoton: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return code;
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */

typedef struct opts {
    int bind;       /* 1 bind, 0 connect, -1 the subcommand's default */
    const char *type;
    long count;     /* sub: stop after this many (0: no limit) */
    double timeout; /* seconds; negative: none */
    bool sync;
    bool async;
    const char *kwargs;
    const char *key_file; /* --key-file: the shared key for authentication */
    const char *pos[64]; /* positional arguments */
    int npos;
    const char *binds[32];
    int nbinds;
    const char *connects[32];
    int nconnects;
} opts;

static const char *usage_text =
    "usage: yoton COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "  pub     ADDRESS SLOT [--bind|--connect] [--type txt|bin|obj]\n"
    "          each stdin line becomes a message (obj: one JSON value per line)\n"
    "  sub     ADDRESS SLOT [--bind|--connect] [--type ...] [--count N] [--timeout S] [--sync]\n"
    "          prints one message per line (obj as JSON)\n"
    "  req     ADDRESS SLOT METHOD [JSON_ARG ...] [--kwargs JSON] [--timeout S]\n"
    "          calls METHOD and prints the result as JSON\n"
    "  rep     ADDRESS SLOT [--bind|--connect]\n"
    "          serves echo, add, upper and sleep\n"
    "  state   ADDRESS SLOT [--bind|--connect] [--type ...] [VALUE]\n"
    "          sets the state to VALUE and keeps serving it, or prints the current state\n"
    "  broker  --bind ADDRESS ... --connect ADDRESS ...\n"
    "          a context with no channels that relays between its connections\n"
    "  request ADDRESS TEXT [--timeout S]     one request to a line server (do_request)\n"
    "  serve   ADDRESS [--async]              a RequestServer answering 'Requested: TEXT'\n"
    "\n"
    "  --key-file PATH  require peers to prove this shared key (both ends need it)\n"
    "  --verbose   report connection events on stderr\n"
    "  --help      this text; `yoton COMMAND --help` for one command\n"
    "\n"
    "Defaults: pub, rep, state and broker bind; sub and req connect. Type txt.\n"
    "Exit codes: 0 ok, 1 usage, 2 cannot bind/connect, 3 time-out, 4 remote error,\n"
    "5 bad input, 6 other failure. SIGINT/SIGTERM close connections and exit 0.\n";

static const char *command_help(const char *cmd)
{
    static const struct {
        const char *cmd, *text;
    } h[] = {
        {"pub", "usage: yoton pub ADDRESS SLOT [--bind|--connect] [--type txt|bin|obj]\n"
                "Publishes each line read from stdin (without its newline) as one message on\n"
                "channel SLOT. txt: the line as UTF-8 text; bin: the line's bytes; obj: the line\n"
                "parsed as one JSON value. Binds by default. At end of input it waits up to\n"
                "--timeout seconds (default 5) for a subscriber to be connected, flushes, and\n"
                "exits.\n"},
        {"sub", "usage: yoton sub ADDRESS SLOT [--bind|--connect] [--type txt|bin|obj]\n"
                "       [--count N] [--timeout S] [--sync]\n"
                "Prints each message on channel SLOT on one line: txt as the text, bin as its\n"
                "bytes, obj as compact JSON. Connects by default. --count: exit after N\n"
                "messages; --timeout: exit with code 3 when no message came for S seconds;\n"
                "--sync: hold publishers back instead of dropping when it cannot keep up.\n"},
        {"req", "usage: yoton req ADDRESS SLOT METHOD [JSON_ARG ...] [--kwargs JSON]\n"
                "       [--timeout S]\n"
                "Calls METHOD on a replier of channel SLOT with the JSON arguments (each one\n"
                "JSON value) and keyword arguments (a JSON object), prints the result as\n"
                "compact JSON. Exit 4 with the message on stderr when the replier reports an\n"
                "error, 3 when no result came within --timeout (default 10).\n"},
        {"rep", "usage: yoton rep ADDRESS SLOT [--bind|--connect]\n"
                "Serves requests on channel SLOT until interrupted: echo(x, sleep=0) replies\n"
                "[x, hex id]; add(a, b, ...) the sum; upper(s) s in upper case; sleep(s)\n"
                "waits s seconds and replies s. Binds by default; when its peer leaves it\n"
                "binds the same port again for the next one.\n"},
        {"state", "usage: yoton state ADDRESS SLOT [--bind|--connect] [--type ...] [VALUE]\n"
                  "With VALUE: sets the state of channel SLOT (obj: VALUE is JSON) and keeps\n"
                  "serving it until interrupted (binds by default, and again for the next peer\n"
                  "when one leaves). Without VALUE: prints the\n"
                  "current state once it is known and exits (3 after --timeout, default 5).\n"},
        {"broker", "usage: yoton broker --bind ADDRESS ... --connect ADDRESS ...\n"
                   "A context with no channels: relays every package between its connections\n"
                   "until interrupted. Each --bind accepts one peer at a time and binds again\n"
                   "when it leaves.\n"},
        {"request", "usage: yoton request ADDRESS TEXT [--timeout S]\n"
                    "Sends TEXT to the line server at ADDRESS and prints the reply without its\n"
                    "CR LF. Exit 2 when nobody listens, 3 on time-out (the partial reply is\n"
                    "printed).\n"},
        {"serve", "usage: yoton serve ADDRESS [--async]\n"
                  "A RequestServer answering each request with 'Requested: ' + the request,\n"
                  "until interrupted. --async handles each connection on its own thread.\n"},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
        if (strcmp(h[i].cmd, cmd) == 0)
            return h[i].text;
    return NULL;
}

static int parse_opts(int argc, char **argv, opts *o, const char *cmd)
{
    memset(o, 0, sizeof *o);
    o->bind = -1;
    o->type = YT_TEXT;
    o->timeout = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(command_help(cmd), stdout);
            exit(EX_OK);
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (strcmp(a, "--sync") == 0) {
            o->sync = true;
        } else if (strcmp(a, "--async") == 0) {
            o->async = true;
        } else if (strcmp(cmd, "broker") != 0 && strcmp(a, "--bind") == 0) {
            o->bind = 1;
        } else if (strcmp(cmd, "broker") != 0 && strcmp(a, "--connect") == 0) {
            o->bind = 0;
        } else if (strcmp(a, "--bind") == 0 && more && o->nbinds < 32) {
            o->binds[o->nbinds++] = argv[++i];
        } else if (strcmp(a, "--connect") == 0 && more && o->nconnects < 32) {
            o->connects[o->nconnects++] = argv[++i];
        } else if (strcmp(a, "--type") == 0 && more) {
            o->type = argv[++i];
        } else if (strcmp(a, "--count") == 0 && more) {
            char *end;
            o->count = strtol(argv[++i], &end, 10);
            if (*end || o->count < 0)
                return fail(EX_USAGE, "--count takes a whole number");
        } else if (strcmp(a, "--timeout") == 0 && more) {
            char *end;
            o->timeout = strtod(argv[++i], &end);
            if (*end || !(o->timeout >= 0))
                return fail(EX_USAGE, "--timeout takes a number of seconds");
        } else if (strcmp(a, "--kwargs") == 0 && more) {
            o->kwargs = argv[++i];
        } else if (strcmp(a, "--key-file") == 0 && more) {
            o->key_file = argv[++i];
        } else if (strncmp(a, "--", 2) == 0 && a[2]) {
            return fail(EX_USAGE, "unknown option %s (try yoton %s --help)", a, cmd);
        } else if (o->npos < 64) {
            o->pos[o->npos++] = a;
        }
    }
    if (strcmp(o->type, YT_TEXT) && strcmp(o->type, YT_BINARY) && strcmp(o->type, YT_OBJECT))
        return fail(EX_USAGE, "--type must be txt, bin or obj");
    return EX_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON <-> yt_value                                                                           */

static yt_value *from_json(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        return yt_value_none();
    case JSON_TRUE:
        return yt_value_bool(true);
    case JSON_FALSE:
        return yt_value_bool(false);
    case JSON_INTEGER:
        return yt_value_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return yt_value_float(json_real_value(j));
    case JSON_STRING:
        return yt_value_stringn(json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        yt_value *l = yt_value_list();
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            if (yt_value_append(l, from_json(e)) != YT_OK) {
                yt_value_free(l);
                return NULL;
            }
        }
        return l;
    }
    case JSON_OBJECT: {
        yt_value *d = yt_value_dict();
        const char *k;
        json_t *e;
        json_object_foreach(j, k, e)
        {
            if (yt_value_dict_set_str(d, k, from_json(e)) != YT_OK) {
                yt_value_free(d);
                return NULL;
            }
        }
        return d;
    }
    }
    return NULL;
}

static json_t *to_json(const yt_value *v)
{
    switch (yt_value_type_of(v)) {
    case YT_NONE:
        return json_null();
    case YT_BOOL: {
        bool b = false;
        yt_value_as_bool(v, &b);
        return json_boolean(b);
    }
    case YT_INT: {
        int64_t i = 0;
        yt_value_as_int(v, &i);
        return json_integer((json_int_t)i);
    }
    case YT_FLOAT: {
        double d = 0;
        yt_value_as_float(v, &d);
        /* JSON has no NaN or infinity: written as null. */
        return isfinite(d) ? json_real(d) : json_null();
    }
    case YT_STRING: {
        size_t n = 0;
        const char *s = yt_value_as_string(v, &n);
        return json_stringn(s, n);
    }
    case YT_LIST:
    case YT_TUPLE: {
        json_t *a = json_array();
        for (size_t i = 0; i < yt_value_len(v); i++)
            json_array_append_new(a, to_json(yt_value_item(v, i)));
        return a;
    }
    case YT_DICT: {
        json_t *o = json_object();
        for (size_t i = 0; i < yt_value_len(v); i++) {
            const yt_value *k, *e;
            yt_value_dict_entry(v, i, &k, &e);
            const char *ks = yt_value_as_string(k, NULL);
            if (ks) {
                json_object_set_new(o, ks, to_json(e));
            } else {
                json_t *kj = to_json(k);
                char *kt = json_dumps(kj, JSON_COMPACT | JSON_ENCODE_ANY);
                json_decref(kj);
                json_object_set_new(o, kt ? kt : "?", to_json(e));
                free(kt);
            }
        }
        return o;
    }
    }
    return json_null();
}

static yt_value *parse_json_value(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j) {
        fail(EX_INPUT, "not JSON: %s (%s)", text, err.text);
        return NULL;
    }
    yt_value *v = from_json(j);
    json_decref(j);
    return v;
}

static void print_value(FILE *f, const yt_value *v)
{
    json_t *j = to_json(v);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(f, "%s\n", s ? s : "null");
    free(s);
    json_decref(j);
}

/* ------------------------------------------------------------------------------------------ */
/* Contexts                                                                                    */

static void on_timedout(const yt_event *ev, void *user)
{
    (void)user;
    note("%s: %s", yt_connection_name(ev->source),
         ev->flag ? "timed out (no data for the timeout)" : "data flows again");
}

static void on_closed(const yt_event *ev, void *user)
{
    (void)user;
    note("%s: closed: %s", yt_connection_name(ev->source), ev->text);
}

static void watch(yt_connection *c)
{
    yt_signal_bind(yt_connection_timedout_signal(c), on_timedout, NULL);
    yt_signal_bind(yt_connection_closed_signal(c), on_closed, NULL);
}

/* Processes the default loop (signals) for up to seconds; false once interrupted. */
static bool pump(double seconds)
{
    yt_loop_process(yt_loop_default(), seconds);
    return !interrupted;
}

/* An address that binds c's local end again: "host:port", "[v6]:port" or "ipc://path". */
static const char *bound_address(yt_connection *c, char out[160])
{
    char host[128];
    yt_connection_hostname1(c, host, sizeof host);
    int port = yt_connection_port1(c);
    if (port < 0)
        snprintf(out, 160, "ipc://%s", host);
    else if (strchr(host, ':'))
        snprintf(out, 160, "[%s]:%d", host, port);
    else
        snprintf(out, 160, "%s:%d", host, port);
    return out;
}

static int open_link(yt_context *ctx, const char *address, bool bind, yt_connection **out)
{
    yt_connection *c = NULL;
    if (bind) {
        if (yt_context_bind(ctx, address, 1, address, &c) != YT_OK)
            return fail(EX_CONNECT, "cannot bind %s: %s", address, yt_last_error());
        char where[160];
        note("%s: bound at %s, waiting for a peer", address, bound_address(c, where));
    } else {
        if (yt_context_connect(ctx, address, 5.0, address, &c) != YT_OK)
            return fail(EX_CONNECT, "cannot connect to %s: %s", address, yt_last_error());
        note("%s: connected to context %016llx, pid %ld", address,
             (unsigned long long)yt_connection_id2(c), yt_connection_pid2(c));
    }
    watch(c);
    *out = c;
    return EX_OK;
}

/* Reports when a bound connection got its peer. */
static void report_peer(yt_connection *c, bool *reported)
{
    if (!*reported && yt_connection_is_connected(c)) {
        *reported = true;
        note("%s: peer connected: context %016llx, pid %ld", yt_connection_name(c),
             (unsigned long long)yt_connection_id2(c), yt_connection_pid2(c));
    }
}

/* A serving command's bound connection whose peer left: bind the same port again, so the next
 * peer finds it. Returns false (after reporting) when that is not possible. */
static bool rebind_if_closed(yt_context *ctx, yt_connection **c, bool *reported)
{
    if (yt_connection_is_alive(*c))
        return true;
    char address[160];
    bound_address(*c, address);
    yt_connection *n = NULL;
    if (yt_context_bind(ctx, address, 1, yt_connection_name(*c), &n) != YT_OK) {
        fail(EX_CONNECT, "cannot bind %s again: %s", address, yt_last_error());
        return false;
    }
    note("%s: bound again at %s, waiting for a peer", yt_connection_name(n), address);
    watch(n);
    yt_connection_release(*c);
    *c = n;
    *reported = false;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Subcommands                                                                                 */

static int need_args(const opts *o, int n, const char *cmd)
{
    if (o->npos < n)
        return fail(EX_USAGE, "missing arguments (try yoton %s --help)", cmd);
    return EX_OK;
}

static int cmd_pub(yt_context *ctx, opts *o)
{
    int rc = need_args(o, 2, "pub");
    if (rc)
        return rc;
    yt_channel *pub;
    if (yt_pub_new(ctx, o->pos[1], o->type, &pub) != YT_OK)
        return fail(EX_FAIL, "%s", yt_last_error());
    yt_connection *c;
    if ((rc = open_link(ctx, o->pos[0], o->bind != 0, &c))) {
        yt_channel_free(pub);
        return rc;
    }
    bool reported = false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!interrupted && (n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        report_peer(c, &reported);
        int r;
        if (strcmp(o->type, YT_OBJECT) == 0) {
            yt_value *v = parse_json_value(line);
            if (!v) {
                rc = EX_INPUT;
                continue;
            }
            r = yt_channel_send_value(pub, v);
            yt_value_free(v);
        } else {
            r = yt_channel_send(pub, line, (size_t)n);
        }
        if (r != YT_OK) {
            fail(EX_INPUT, "cannot send: %s", yt_last_error());
            rc = EX_INPUT;
        }
        pump(0);
    }
    free(line);
    /* Give a subscriber the chance to connect and get what was published. A peer port is
     * known once a peer was there, even if it has gone again since. */
    double end = now() + (o->timeout >= 0 ? o->timeout : 5.0);
    while (!interrupted && yt_connection_port2(c) == 0 && now() < end)
        pump(0.05);
    report_peer(c, &reported);
    if (yt_connection_is_connected(c))
        yt_context_flush(ctx, 5.0);
    else if (yt_connection_port2(c) == 0 && rc == EX_OK)
        rc = fail(EX_TIMEOUT, "nobody connected; the messages were not delivered");
    yt_connection_release(c);
    yt_channel_free(pub);
    return rc;
}

static void write_msg(const char *type, yt_msg *m)
{
    if (strcmp(type, YT_OBJECT) == 0) {
        yt_value *v = NULL;
        if (yt_msg_value(m, &v) == YT_OK)
            print_value(stdout, v);
        else
            fprintf(stderr, "yoton: undecodable object message: %s\n", yt_last_error());
        yt_value_free(v);
    } else {
        fwrite(yt_msg_data(m), 1, yt_msg_size(m), stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
}

static int cmd_sub(yt_context *ctx, opts *o)
{
    int rc = need_args(o, 2, "sub");
    if (rc)
        return rc;
    yt_channel *sub;
    if (yt_sub_new(ctx, o->pos[1], o->type, &sub) != YT_OK)
        return fail(EX_FAIL, "%s", yt_last_error());
    if (o->sync)
        yt_sub_set_sync_mode(sub, true);
    yt_connection *c;
    if ((rc = open_link(ctx, o->pos[0], o->bind == 1, &c))) {
        yt_channel_free(sub);
        return rc;
    }
    bool reported = false;
    long got = 0;
    double last = now();
    while (!interrupted && (o->count == 0 || got < o->count)) {
        yt_msg *m = NULL;
        int r = yt_channel_recv(sub, 0.1, &m);
        report_peer(c, &reported);
        pump(0);
        if (r == YT_OK) {
            write_msg(o->type, m);
            yt_msg_free(m);
            got++;
            last = now();
        } else if (o->timeout >= 0 && now() - last >= o->timeout) {
            rc = fail(EX_TIMEOUT, "no message for %g s", o->timeout);
            break;
        }
    }
    yt_connection_release(c);
    yt_channel_free(sub);
    return rc;
}

static int cmd_req(yt_context *ctx, opts *o)
{
    int rc = need_args(o, 3, "req");
    if (rc)
        return rc;
    yt_value *args = yt_value_tuple();
    for (int i = 3; i < o->npos; i++) {
        yt_value *v = parse_json_value(o->pos[i]);
        if (!v) {
            yt_value_free(args);
            return EX_INPUT;
        }
        yt_value_append(args, v);
    }
    yt_value *kwargs = NULL;
    if (o->kwargs) {
        kwargs = parse_json_value(o->kwargs);
        if (!kwargs || yt_value_type_of(kwargs) != YT_DICT) {
            yt_value_free(args);
            yt_value_free(kwargs);
            return fail(EX_INPUT, "--kwargs must be a JSON object");
        }
    }
    yt_channel *req;
    if (yt_req_new(ctx, o->pos[1], &req) != YT_OK) {
        yt_value_free(args);
        yt_value_free(kwargs);
        return fail(EX_FAIL, "%s", yt_last_error());
    }
    double timeout = o->timeout >= 0 ? o->timeout : 10.0;
    yt_req_set_auto_cancel_timeout(req, timeout);
    yt_connection *c = NULL;
    if ((rc = open_link(ctx, o->pos[0], o->bind == 1, &c)) == EX_OK) {
        yt_future *f = NULL;
        if (yt_req_call(req, o->pos[2], args, kwargs, &f) != YT_OK) {
            rc = fail(EX_FAIL, "cannot call: %s", yt_last_error());
        } else {
            double end = now() + timeout;
            yt_value *result = NULL;
            int r = YT_ETIMEDOUT;
            while (!interrupted && r == YT_ETIMEDOUT && now() < end) {
                r = yt_future_result(f, 0.1, &result);
                pump(0);
            }
            if (r == YT_OK)
                print_value(stdout, result);
            else if (r == YT_EREMOTE)
                rc = fail(EX_REMOTE, "%s", yt_future_exception(f));
            else if (r == YT_ETIMEDOUT || r == YT_ECANCELED)
                rc = fail(EX_TIMEOUT, "no reply within %g s", timeout);
            else if (!interrupted)
                rc = fail(EX_FAIL, "%s: %s", yt_strerror(r), yt_last_error());
            yt_value_free(result);
            yt_future_free(f);
        }
        yt_connection_release(c);
    }
    yt_channel_free(req);
    yt_value_free(args);
    yt_value_free(kwargs);
    return rc;
}

/* The demonstration methods of `yoton rep`. */
static yt_value *m_add(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                       size_t errsize)
{
    (void)kwargs;
    (void)user;
    int64_t isum = 0;
    double fsum = 0;
    bool is_float = false;
    for (size_t i = 0; i < yt_value_len(args); i++) {
        const yt_value *a = yt_value_item(args, i);
        int64_t iv;
        double dv;
        if (yt_value_type_of(a) == YT_INT && yt_value_as_int(a, &iv) == YT_OK) {
            isum += iv;
            fsum += (double)iv;
        } else if (yt_value_as_float(a, &dv) == YT_OK) {
            fsum += dv;
            is_float = true;
        } else {
            snprintf(err, errsize, "add() takes numbers");
            return NULL;
        }
    }
    return is_float ? yt_value_float(fsum) : yt_value_int(isum);
}

static yt_value *m_upper(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                         size_t errsize)
{
    (void)kwargs;
    (void)user;
    size_t n = 0;
    const char *s = yt_value_len(args) == 1 ? yt_value_as_string(yt_value_item(args, 0), &n)
                                            : NULL;
    if (!s) {
        snprintf(err, errsize, "upper() takes one string");
        return NULL;
    }
    char *u = malloc(n + 1);
    if (!u) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        u[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    yt_value *v = yt_value_stringn(u, n);
    free(u);
    return v;
}

static yt_value *m_sleep(const yt_value *args, const yt_value *kwargs, void *user, char *err,
                         size_t errsize)
{
    (void)kwargs;
    (void)user;
    double d = -1;
    if (yt_value_len(args) != 1 || yt_value_as_float(yt_value_item(args, 0), &d) != YT_OK ||
        !(d >= 0 && d <= 3600)) {
        snprintf(err, errsize, "sleep() takes a number of seconds (0..3600)");
        return NULL;
    }
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !interrupted) {
    }
    return yt_value_copy(yt_value_item(args, 0));
}

static int cmd_rep(yt_context *ctx, opts *o)
{
    int rc = need_args(o, 2, "rep");
    if (rc)
        return rc;
    yt_channel *rep;
    if (yt_rep_new(ctx, o->pos[1], &rep) != YT_OK)
        return fail(EX_FAIL, "%s", yt_last_error());
    yt_rep_register(rep, "add", m_add, NULL);
    yt_rep_register(rep, "upper", m_upper, NULL);
    yt_rep_register(rep, "sleep", m_sleep, NULL);
    yt_connection *c;
    if ((rc = open_link(ctx, o->pos[0], o->bind != 0, &c)) == EX_OK) {
        bool reported = false;
        bool bound = o->bind != 0;
        while (!interrupted) {
            yt_rep_process(rep, 0.1);
            report_peer(c, &reported);
            pump(0);
            if (bound && !rebind_if_closed(ctx, &c, &reported)) {
                rc = EX_CONNECT;
                break;
            }
        }
        yt_connection_release(c);
    }
    yt_channel_free(rep);
    return rc;
}

static int cmd_state(yt_context *ctx, opts *o)
{
    int rc = need_args(o, 2, "state");
    if (rc)
        return rc;
    bool setting = o->npos >= 3;
    yt_channel *st;
    if (yt_state_new(ctx, o->pos[1], o->type, &st) != YT_OK)
        return fail(EX_FAIL, "%s", yt_last_error());
    yt_connection *c;
    if ((rc = open_link(ctx, o->pos[0], o->bind == -1 ? setting : o->bind == 1, &c))) {
        yt_channel_free(st);
        return rc;
    }
    bool reported = false;
    if (setting) {
        int r;
        if (strcmp(o->type, YT_OBJECT) == 0) {
            yt_value *v = parse_json_value(o->pos[2]);
            r = v ? yt_channel_send_value(st, v) : YT_EINVAL;
            yt_value_free(v);
        } else {
            r = yt_channel_send(st, o->pos[2], strlen(o->pos[2]));
        }
        if (r != YT_OK)
            rc = fail(EX_INPUT, "cannot set the state: %s", yt_last_error());
        bool bound = o->bind != 0;
        while (rc == EX_OK && !interrupted) {
            report_peer(c, &reported);
            pump(0.1);
            if (bound && !rebind_if_closed(ctx, &c, &reported))
                rc = EX_CONNECT;
        }
    } else {
        double end = now() + (o->timeout >= 0 ? o->timeout : 5.0);
        yt_msg *m = NULL;
        while (!interrupted && yt_channel_recv(st, 0, &m) != YT_OK && now() < end)
            pump(0.05);
        if (m) {
            write_msg(o->type, m);
            yt_msg_free(m);
        } else if (!interrupted) {
            rc = fail(EX_TIMEOUT, "no state known within the timeout");
        }
    }
    yt_connection_release(c);
    yt_channel_free(st);
    return rc;
}

static int cmd_broker(yt_context *ctx, opts *o)
{
    if (o->nbinds + o->nconnects == 0)
        return fail(EX_USAGE, "broker needs --bind and/or --connect addresses");
    yt_connection *links[64];
    bool reported[64] = {false};
    int n = 0, rc = EX_OK;
    for (int i = 0; i < o->nbinds && rc == EX_OK; i++)
        rc = open_link(ctx, o->binds[i], true, &links[n++]);
    for (int i = 0; i < o->nconnects && rc == EX_OK; i++)
        rc = open_link(ctx, o->connects[i], false, &links[n++]);
    if (rc)
        n--;
    while (rc == EX_OK && !interrupted) {
        for (int i = 0; i < n; i++) {
            report_peer(links[i], &reported[i]);
            if (i < o->nbinds && !rebind_if_closed(ctx, &links[i], &reported[i]))
                rc = EX_CONNECT;
        }
        pump(0.1);
    }
    for (int i = 0; i < n; i++)
        yt_connection_release(links[i]);
    return rc;
}

static int cmd_request(opts *o)
{
    int rc = need_args(o, 2, "request");
    if (rc)
        return rc;
    char *reply = NULL;
    int r = yt_do_request(o->pos[0], o->pos[1], o->timeout, &reply);
    if (reply) {
        size_t n = strlen(reply);
        if (n >= 2 && reply[n - 2] == '\r' && reply[n - 1] == '\n')
            reply[n - 2] = '\0';
        printf("%s\n", reply);
        yt_free(reply);
    }
    if (r == YT_OK)
        return EX_OK;
    if (r == YT_ECONNECT)
        return fail(EX_CONNECT, "%s", yt_last_error());
    if (r == YT_ETIMEDOUT)
        return fail(EX_TIMEOUT, "no complete reply within %g s", o->timeout);
    return fail(r == YT_EADDR || r == YT_EINVAL ? EX_USAGE : EX_FAIL, "%s", yt_last_error());
}

static yt_request_server *server;

static int cmd_serve(opts *o)
{
    int rc = need_args(o, 1, "serve");
    if (rc)
        return rc;
    if (yt_request_server_new(o->pos[0], NULL, NULL, o->async, &server) != YT_OK)
        return fail(EX_CONNECT, "cannot serve at %s: %s", o->pos[0], yt_last_error());
    if (yt_request_server_port(server) > 0)
        note("serving at port %d", yt_request_server_port(server));
    else
        note("serving at %s", o->pos[0]);
    yt_request_server_start(server);
    while (!interrupted)
        pump(0.1);
    yt_request_server_free(server);
    return EX_OK;
}

/* Reads the key file (raw bytes; one trailing newline is not part of the key, so that
 * `echo secret > file` works) and gives it to ctx. */
static int load_key(yt_context *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(EX_USAGE, "cannot read the key file %s: %s", path, strerror(errno));
    unsigned char key[1026];
    size_t n = fread(key, 1, sizeof key, f);
    fclose(f);
    if (n > 0 && key[n - 1] == '\n')
        n--;
    if (n > 0 && key[n - 1] == '\r')
        n--;
    if (n == 0)
        return fail(EX_USAGE, "key file %s is empty", path);
    int rc = yt_context_set_key(ctx, key, n);
    memset(key, 0, sizeof key);
    if (rc != YT_OK)
        return fail(EX_USAGE, "key file %s: %s", path, yt_last_error());
    return EX_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE : EX_OK;
    }
    const char *cmd = argv[1];
    if (!command_help(cmd)) {
        fprintf(stderr, "yoton: unknown command '%s'\n\n%s", cmd, usage_text);
        return EX_USAGE;
    }
    opts o;
    int rc = parse_opts(argc - 2, argv + 2, &o, cmd);
    if (rc)
        return rc;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((strcmp(cmd, "request") == 0 || strcmp(cmd, "serve") == 0) && o.key_file)
        return fail(EX_USAGE, "--key-file applies to contexts, not to %s", cmd);
    if (strcmp(cmd, "request") == 0)
        return cmd_request(&o);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(&o);

    yt_context *ctx;
    if (yt_context_new(NULL, &ctx) != YT_OK)
        return fail(EX_FAIL, "%s", yt_last_error());
    if (o.key_file && (rc = load_key(ctx, o.key_file)) != EX_OK) {
        yt_context_free(ctx);
        return rc;
    }
    if (strcmp(cmd, "pub") == 0)
        rc = cmd_pub(ctx, &o);
    else if (strcmp(cmd, "sub") == 0)
        rc = cmd_sub(ctx, &o);
    else if (strcmp(cmd, "req") == 0)
        rc = cmd_req(ctx, &o);
    else if (strcmp(cmd, "rep") == 0)
        rc = cmd_rep(ctx, &o);
    else if (strcmp(cmd, "state") == 0)
        rc = cmd_state(ctx, &o);
    else
        rc = cmd_broker(ctx, &o);
    /* Closing sends each peer the close package, so it sees an orderly end. */
    yt_context_free(ctx);
    /* Handlers of the closed signals still queued. */
    yt_loop_process(yt_loop_default(), 0);
    return rc;
}

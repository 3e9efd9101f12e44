/*
 * clientserver.c - do_request and RequestServer (spec 17): one connection per request (TCP
 * over IPv4 as the reference, or IPv6, or a Unix socket: any address a context takes), CR LF
 * framed text, no handshake, no packages. The server's socket comes from yti_net_listen, so a
 * Unix socket file is owner-only, replaces a stale file and is removed on free, as a context's.
 *
 * Framing as the reference: the sender appends CR LF unless the text already ends with one and
 * shuts down its sending side; the reader stops at the first CR LF, at EOF, or at its deadline
 * (the client's timeout; 1 s for the server reading a request), and keeps the CR LF. Reading
 * goes through a buffer; bytes after the first CR LF are ignored (the reference never reads
 * them). Both sides cap the text at YT_REQUEST_MAX.
 *
 * Threads: a server runs its accept loop on the caller's thread (run) or its own (start),
 * polling the listening socket every 0.25 s so that stop is noticed; with async each accepted
 * connection is handled on a thread of its own. A counter of live handler threads lets free
 * wait for them; stop is a flag plus a shutdown of the listening socket.
 */
#include "address.h"
#include "net.h"
#include "platform.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SERVER_READ_TIMEOUT 1.0
#define ACCEPT_POLL 0.25
#define HANDLER_STACK (256 * 1024)

/* ------------------------------------------------------------------------------------------ */
/* Framing                                                                                     */

/* Sends text + CR LF (unless present) and shuts down writing. 0 or -errno. */
static int send_line(int fd, const char *text, size_t len)
{
    int rc = yti_net_write_all(fd, text, len);
    if (rc == 0 && !(len >= 2 && text[len - 2] == '\r' && text[len - 1] == '\n'))
        rc = yti_net_write_all(fd, "\r\n", 2);
    shutdown(fd, SHUT_WR);
    return rc;
}

/*
 * Reads until the first CR LF (kept), EOF, or deadline. *out receives the text, NUL-terminated,
 * with invalid UTF-8 dropped (as the reference decodes). Returns YT_OK (CR LF or EOF),
 * YT_ETIMEDOUT (deadline; *out holds the partial text), YT_ETOOBIG, YT_ENOMEM or YT_ESYS.
 */
static int read_line(int fd, uint64_t deadline, char **out)
{
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return yti_error(YT_ENOMEM, "Out of memory");
    int rc = YT_OK;
    for (;;) {
        int pr = yti_net_poll_in(fd, deadline);
        if (pr == 0) {
            rc = yti_error(YT_ETIMEDOUT, "No complete reply in time");
            break;
        }
        if (pr < 0) {
            rc = yti_error_errno(YT_ESYS, -pr, "Cannot read");
            break;
        }
        if (cap - len < 4096 + 1) {
            if (cap >= YT_REQUEST_MAX + 1) {
                rc = yti_error(YT_ETOOBIG, "More than %u bytes without a line end",
                               YT_REQUEST_MAX);
                break;
            }
            size_t ncap = cap * 2 > YT_REQUEST_MAX + 1 ? YT_REQUEST_MAX + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = yti_error(YT_ENOMEM, "Out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = yti_error_errno(YT_ESYS, errno, "Cannot read");
            break;
        }
        if (n == 0)
            break; /* EOF: the text so far is the message */
        size_t from = len ? len - 1 : 0;
        len += (size_t)n;
        /* Stop at the first CR LF; anything after it is not part of the message. */
        char *crlf = NULL;
        for (size_t i = from; i + 1 < len && !crlf; i++)
            if (buf[i] == '\r' && buf[i + 1] == '\n')
                crlf = buf + i;
        if (crlf) {
            len = (size_t)(crlf - buf) + 2;
            break;
        }
    }
    if (rc != YT_OK && rc != YT_ETIMEDOUT) {
        free(buf);
        return rc;
    }
    len = yti_utf8_drop_invalid((unsigned char *)buf, len);
    buf[len] = '\0';
    *out = buf;
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Client                                                                                      */

int yt_do_request(const char *address, const char *request, double timeout, char **reply)
{
    if (reply)
        *reply = NULL;
    if (!address || !request || !reply)
        return yti_error(YT_EINVAL, "Invalid argument");
    size_t len = strlen(request);
    if (!yti_utf8_valid(request, len))
        return yti_error(YT_EINVAL, "request should be UTF-8 text.");
    yti_address a;
    int rc = yti_address_parse(address, &a);
    if (rc)
        return rc;
    yti_sockaddr sa;
    if ((rc = yti_net_sockaddr(&a, false, &sa)) != YT_OK)
        return rc;
    uint64_t deadline = timeout > 0 ? yti_deadline(timeout) : YTI_FOREVER;

    int fd = socket(sa.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return yti_error_errno(YT_ESYS, errno, "Cannot create socket");
    int cr;
    do {
        cr = connect(fd, (struct sockaddr *)&sa.ss, sa.len);
    } while (cr < 0 && errno == EINTR);
    if (cr < 0) {
        int err = errno;
        close(fd);
        if (a.kind == YTI_ADDR_IPC)
            return yti_error_errno(YT_ECONNECT, err, "No server is listening at %s.", a.path);
        return yti_error_errno(YT_ECONNECT, err, "No server is listening at the given port.");
    }
    /* A server that never reads must not block the send forever either. */
    if (timeout > 0) {
        struct timeval tv = {.tv_sec = (time_t)timeout,
                             .tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int wr = send_line(fd, request, len);
    if (wr < 0 && wr != -EPIPE && wr != -ECONNRESET) {
        close(fd);
        if (wr == -EAGAIN || wr == -EWOULDBLOCK)
            return yti_error(YT_ETIMEDOUT, "The server did not take the request in time");
        return yti_error_errno(YT_ESYS, -wr, "Cannot send the request");
    }
    rc = read_line(fd, deadline, reply);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Server                                                                                      */

struct yt_request_server {
    int fd;
    int port;            /* 0 for a Unix socket */
    yti_unix_file file;  /* the socket file to remove on free (ipc) */
    yt_request_fn fn;
    void *user;
    bool async;
    atomic_bool stop;
    yti_mutex lock;
    yti_cond idle;
    bool running;
    int handlers; /* async handler threads alive */
    yti_thread thread;
};

static char *default_handler(const char *request, void *user)
{
    (void)user;
    /* The reference also sleeps on "wait" and stops on "stop", but it compares the request
     * with its CR LF still attached, so those never match (Q10): neither do they here. */
    size_t n = strlen(request);
    char *r = malloc(n + 12);
    if (r)
        snprintf(r, n + 12, "Requested: %s", request);
    return r;
}

static void handle_connection(yt_request_server *s, int fd)
{
    char *request = NULL;
    int rc = read_line(fd, yti_deadline(SERVER_READ_TIMEOUT), &request);
    if (rc == YT_OK || rc == YT_ETIMEDOUT) {
        char *reply = s->fn(request, s->user);
        const char *r = reply ? reply : "";
        /* A client that stops reading must not hold the server: bounded send. */
        struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        send_line(fd, r, strlen(r));
        free(reply);
    }
    free(request);
    close(fd);
}

typedef struct handler_arg {
    yt_request_server *s;
    int fd;
} handler_arg;

static void *handler_main(void *p)
{
    handler_arg a = *(handler_arg *)p;
    free(p);
    handle_connection(a.s, a.fd);
    yti_mutex_lock(&a.s->lock);
    a.s->handlers--;
    yti_cond_broadcast(&a.s->idle);
    yti_mutex_unlock(&a.s->lock);
    return NULL;
}

static void dispatch(yt_request_server *s, int fd)
{
    if (!s->async) {
        handle_connection(s, fd);
        return;
    }
    handler_arg *a = malloc(sizeof *a);
    yti_thread t;
    if (a) {
        a->s = s;
        a->fd = fd;
        yti_mutex_lock(&s->lock);
        s->handlers++;
        yti_mutex_unlock(&s->lock);
        if (yti_thread_start(&t, handler_main, a, "yt-request", HANDLER_STACK) == YT_OK) {
            yti_thread_detach(&t);
            return;
        }
        free(a);
        yti_mutex_lock(&s->lock);
        s->handlers--;
        yti_mutex_unlock(&s->lock);
    }
    handle_connection(s, fd); /* no thread to be had: serve it here rather than drop it */
}

static void serve(yt_request_server *s)
{
    while (!atomic_load(&s->stop)) {
        int pr = yti_net_poll_in(s->fd, yti_deadline(ACCEPT_POLL));
        if (atomic_load(&s->stop))
            break;
        if (pr <= 0)
            continue;
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            dispatch(s, fd);
    }
}

int yt_request_server_new(const char *address, yt_request_fn fn, void *user, bool async,
                          yt_request_server **out)
{
    if (!address || !out)
        return yti_error(YT_EINVAL, "Invalid argument");
    yti_address a;
    int rc = yti_address_parse(address, &a);
    if (rc)
        return rc;
    int fd;
    yti_unix_file file;
    if ((rc = yti_net_listen(&a, 16, 0, 0, &fd, &file)) != YT_OK)
        return rc;
    int port = 0;
    if (a.kind != YTI_ADDR_IPC) {
        yti_sockaddr sa = {.len = sizeof sa.ss};
        getsockname(fd, (struct sockaddr *)&sa.ss, &sa.len);
        char host[YTI_HOST_MAX];
        yti_net_sockaddr_text(&sa, host, sizeof host, &port);
    }
    yt_request_server *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        yti_net_unix_remove(&file);
        return yti_error(YT_ENOMEM, "Out of memory");
    }
    s->fd = fd;
    s->port = port;
    s->file = file;
    s->fn = fn ? fn : default_handler;
    s->user = user;
    s->async = async;
    atomic_init(&s->stop, false);
    yti_mutex_init(&s->lock);
    yti_cond_init(&s->idle);
    *out = s;
    return YT_OK;
}

int yt_request_server_port(yt_request_server *s)
{
    return s ? s->port : 0;
}

/* Marks the server running; false when it already was. */
static bool claim(yt_request_server *s)
{
    yti_mutex_lock(&s->lock);
    bool ok = !s->running;
    s->running = true;
    yti_mutex_unlock(&s->lock);
    if (ok)
        atomic_store(&s->stop, false);
    return ok;
}

static void release(yt_request_server *s)
{
    yti_mutex_lock(&s->lock);
    s->running = false;
    yti_cond_broadcast(&s->idle);
    yti_mutex_unlock(&s->lock);
}

int yt_request_server_run(yt_request_server *s)
{
    if (!s)
        return yti_error(YT_EINVAL, "No server");
    if (!claim(s))
        return yti_error(YT_EBUSY, "The server is already running");
    serve(s);
    release(s);
    return YT_OK;
}

static void *server_main(void *p)
{
    yt_request_server *s = p;
    serve(s);
    return NULL;
}

int yt_request_server_start(yt_request_server *s)
{
    if (!s)
        return yti_error(YT_EINVAL, "No server");
    if (!claim(s))
        return yti_error(YT_EBUSY, "The server is already running");
    int rc = yti_thread_start(&s->thread, server_main, s, "yt-server", HANDLER_STACK);
    if (rc)
        release(s);
    return rc;
}

void yt_request_server_stop(yt_request_server *s)
{
    if (s)
        atomic_store(&s->stop, true);
}

void yt_request_server_free(yt_request_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    if (atomic_load(&s->thread.started)) {
        yti_thread_join(&s->thread);
        release(s);
    }
    yti_mutex_lock(&s->lock);
    /* A run() on another thread and async handlers finish within their bounded reads. */
    while (s->running || s->handlers > 0)
        yti_cond_wait(&s->idle, &s->lock);
    yti_mutex_unlock(&s->lock);
    close(s->fd);
    yti_net_unix_remove(&s->file);
    yti_cond_destroy(&s->idle);
    yti_mutex_destroy(&s->lock);
    free(s);
}

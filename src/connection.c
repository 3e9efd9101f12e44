/*
 * connection.c - one link between two contexts: TCP over IPv4 or IPv6, a Unix domain stream
 * socket, or an adopted descriptor of either kind. Everything after the socket setup is the same
 * for all of them: the greeting, the optional authentication (auth.c) and the package stream.
 *
 * Threads. A connected connection has two threads:
 *   - the sender ("yt-send") blocks on the out-queue for at most 0.25 s, takes every package
 *     queued (a batch) and writes headers and payloads with one sendmsg() per batch (no copy);
 *     when the wait times out it writes a heartbeat (under the app policy, only while the
 *     application has shown itself alive within the timeout);
 *   - a thread sending a package after a pause (no send found the link idle in the last 5 us),
 *     when nothing is queued or being written, writes it to the socket itself without
 *     blocking (MSG_DONTWAIT) instead of queueing it: one thread hand-off less per hop
 *     for request/reply traffic, while streams still go through the sender's batches. The
 *     write lock (wlock) orders the two writers: the sender takes packages off the queue only
 *     while holding it, and a direct writer reserves it under the context lock (no push can
 *     come in between), so the wire order is the queue order. A part the socket did not take
 *     is left to the sender, which finishes it before anything else;
 *   - the receiver ("yt-recv") reads the socket (waiting in epoll in heartbeat steps once it is
 *     empty) through a 64 KiB buffer (payloads larger than half of it are read straight into
 *     their own package), emits timedout(true/false) on the edges of silence, and hands the
 *     packages of each read to the context on this same thread, in one batch (one context lock
 *     per batch);
 *   - an application thread about to sleep in a receive (a channel pop, a future's result) on
 *     the context's only connection reads the socket itself instead of waiting to be woken by
 *     the receiver ("leads"; see "Who reads the socket" below): the other hand-off less.
 * A bound connection starts one thread ("yt-host") that accepts peers (polling 0.25 s) and runs
 * the host handshake; a peer that fails it is sent the reference's error line and dropped. After
 * a successful handshake the listening socket is closed, the sender is started and the host
 * thread carries on as the receiver. A connecting connection does its handshake on the caller's
 * thread and then starts both threads.
 *
 * Closing. Whoever closes first (a user thread, a handler, or an IO thread that met EOF or an
 * error) moves the state to CLOSING; everyone else returns at once. An orderly close queues the
 * close package and flushes it for at most 1 s. Then the out-queue is closed (waking the sender
 * and throttled pushers) and every socket is shut down under the lock (waking the receiver, the
 * host's poll and a handshake in progress). The receiver/host thread, on its way out, joins the
 * sender and closes the descriptors, so they are released promptly whoever closed. A closer
 * that is not one of the connection's own threads then joins the receiver/host thread; an IO
 * thread never joins itself, and the receiver thread is joined when the connection is freed.
 * Descriptors are only shut down or closed under the connection lock, with fd = -1 afterwards,
 * so a descriptor number is never touched after it could have been reused.
 *
 * Unix sockets. A bound ipc address creates its socket file with mode 0600 (the socket's inode
 * mode is set with fchmod before bind; Linux creates the file with that mode, masked by the
 * umask, so no process-wide umask change races with other threads). The file is removed when
 * the listening socket is closed (a peer arrived, or the connection closed), only if it is still
 * the file we created (same st_dev/st_ino). A stale file (its process died) is detected on
 * EADDRINUSE by a connect() that is refused, then unlinked and bound again.
 *
 * Lifetime. References: the context's (while listed), the user's handles, and one per queued
 * signal event (taken by the signals' source hooks). IO threads hold none: the last reference is
 * therefore never dropped on one of the connection's own threads, and freeing can join them.
 */
#include "auth.h"
#include "core.h"
#include "net.h"
#include "uid.h"
#include "util.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * The read buffer. It starts at RBUF_SIZE. A package smaller than half the buffer is parsed in
 * place from it (many per read) and copied into its own package; a larger one has its header
 * read alone and its payload read straight into its package (rx_special). Packages of
 * RBUF_SIZE / 2 up to RBUF_BIG / 2 bytes grow the buffer to RBUF_BIG, so that a stream of them
 * (64 KiB, say) is read several per read and delivered in batches, as small ones are: one read
 * per package and one wake-up of the application per package cost more than the copy (docs/
 * benchmarks.md, "The seventh pass"). RBUF_IDLE after the last such package the buffer shrinks
 * back (checked whenever the receiver thread's wait ends).
 */
#define RBUF_SIZE (64 * 1024)
#define RBUF_BIG (512 * 1024)
#define RBUF_IDLE 0.2
/* A large payload's buffer starts at this size and doubles as its bytes arrive, so a peer that
 * declares a huge package and sends little never makes us hold much more than it sent. */
#define GROW_START (4u << 20)
#define BATCH_MAX 256
#define IO_STACK (128 * 1024)
/* How long an orderly close waits for the peer to close its end once it has acknowledged all our
 * bytes. While bytes are still unacknowledged it waits as long as the peer keeps taking them. */
#define LINGER 3.0
/* A send at least this long after the previous one on a connection may write to the socket
 * itself (yti_conn_reserve_direct): one thread hand-off less for request/reply traffic. */
#define DIRECT_GAP_NS 5000u
/* ... and at least this long after the previous direct write ended, unless something arrived
 * since that write started (a reply). Sends are stamped when they start, so without this a
 * direct write that took longer than DIRECT_GAP_NS (a loaded machine, or the reader woken on
 * this CPU) made the next send of a stream look idle too: every message then took its own
 * system call on the application thread, 0.2-0.3 M/s instead of millions at 16 B
 * (docs/benchmarks.md, "The sixth pass"). The reply part is for a ping-pong on one CPU: the
 * peer runs and answers inside our write, and the next request follows its end at once. */
#define DIRECT_AFTER_NS 2000u
/* ... unless the send is this large: then a system call per message costs little next to the
 * copy, and writing it at once saves waking the sender thread (64 KiB: 20-25 % faster). */
#define DIRECT_LARGE ((size_t)16 << 10)
/* epoll tags: the socket, or an eventfd that kicks the waiter. */
#define EP_SOCK 1u
#define EP_KICK 2u

/* The receive side shared by the receiver thread and a leading application thread. */
typedef struct rx_shared {
    int fd;             /* the socket; -1 once the receiver has left */
    unsigned char *buf; /* size bytes: RBUF_SIZE, or RBUF_BIG while large packages stream */
    size_t size;
    uint64_t big_at;    /* when the last package that needs RBUF_BIG was read (monotonic ns) */
    size_t have, pos;   /* bytes in buf; the start of the first unparsed package */
    yti_pkg *v[YTI_DELIVER_MAX]; /* parsed, not yet delivered */
    size_t n;
    yt_channel *pause;  /* a paused subscriber a leader met, for the receiver to wait on */
    int err;            /* an error a leader's read met, for the receiver to report */
} rx_shared;

struct yt_connection {
    atomic_uint refs;
    atomic_int state;
    yti_mutex lock;
    yti_cond cond;

    yt_context *ctx; /* NULL once the context is gone; read by IO threads while they run */
    uint64_t id1;
    uint64_t link_id;
    yti_conn_config cfg;

    /* Guarded by lock. */
    char *name;
    char *reason;
    char host1[YTI_PATH_MAX + 4], host2[YTI_PATH_MAX + 4]; /* room for a Unix socket path */
    int port1, port2;
    uint64_t id2;
    long pid2;
    int fd;        /* the connected socket */
    int listen_fd; /* while waiting */
    int hs_fd;     /* a peer in the middle of a host handshake */
    bool closed_emitted;
    bool io_joining, io_joined;
    bool io_exited; /* the io thread is past its last use of the context */
    bool rx_eof;    /* the receiver met end-of-file (the peer closed its end) */
    bool handoff;   /* closed with bytes the peer has not taken: the socket goes to a reaper */
    int flush_waiters;
    uint64_t written; /* packages written by the sender */

    /* The socket's write side, taken by whoever writes to it: the sender thread (queued
     * packages, heartbeats) or an application thread writing one package directly
     * (yti_conn_reserve_direct). Lock order: context lock, then wlock, then lock. */
    yti_mutex wlock;
    int wfd;               /* guarded by wlock: the connected socket, -1 before and after */
    /* Guarded by wlock: what a direct write left unwritten (the socket took only part of it),
     * in order; pending_off bytes of header + payload of pending[0] are already written. */
    yti_pkg *pending[YTI_DIRECT_MAX];
    size_t npending;
    size_t pending_off;
    atomic_uint_least64_t direct_taken; /* packages taken by direct writes (for flushing) */
    atomic_uint_least64_t last_send;    /* monotonic ns of the last send finding the queue empty */
    atomic_uint_least64_t last_direct;  /* monotonic ns of the last direct write */

    /* The receive side (see "Who reads the socket" below). Lock order: rxlock, then the
     * context lock, then lock. */
    yti_mutex rxlock;
    rx_shared rx;                       /* guarded by rxlock */
    int rx_ep;                          /* the receiver's epoll (-1: it polls); its thread only */
    atomic_int rx_kick, lead_kick;      /* eventfds waking the receiver / a leader (-1: none) */
    atomic_int lead_ep;                 /* the leaders' epoll (-1: nobody leads) */
    atomic_bool leading;                /* a thread is leading */
    atomic_bool rx_handback;            /* the receiver has work a leader left it: nobody leads */
    atomic_bool rx_busy;                /* the receiver holds rxlock outside its wait */
    atomic_bool rx_large;               /* the last package read was large (receive_loop) */
    atomic_bool rx_tcp;                 /* quick-acks apply (not to Unix sockets) */
    atomic_bool rx_timed_out;           /* timedout(true) was the last edge emitted */
    atomic_uint_least64_t last_rx;      /* monotonic ns of the last byte read */
    atomic_uint_least64_t led;          /* reads done by leaders */
    atomic_uint_least64_t rbuf_grown;   /* times the read buffer grew (fits_buffer) */
    atomic_size_t rbuf_size;            /* rx.size, for tests to read without rxlock */
    yti_mutex tolock;                   /* orders the timedout edges */
    yti_mutex kicklock;                 /* guards writing to and closing the eventfds */

    _Atomic double timeout;
    yti_queue *outq;
    yti_thread io_thread; /* host, then receiver */
    yti_thread send_thread;

    yt_signal *timedout_sig;
    yt_signal *closed_sig;

    /* Transport setup; written before the IO threads start, then guarded by lock. */
    yti_unix_file unix_file; /* the socket file we created, removed on close */
    unsigned char *key; /* authentication key (NULL: none), wiped when freed */
    size_t key_len;
    char local_host[YTI_HOST_MAX]; /* source address for connect ("": any) */
    char *refusal;                 /* why the host last turned a peer away */
};

static void general_close(yt_connection *c, const char *reason, bool notify);
static int unacked(int fd);
static void join_io(yt_connection *c);
static void close_listener(yt_connection *c);

/* ------------------------------------------------------------------------------------------ */
/* Creation and references                                                                     */

static void source_ref(void *src)
{
    yt_connection_ref(src);
}

static void source_unref(void *src)
{
    yt_connection_release(src);
}

yt_connection *yti_conn_new(yt_context *ctx, uint64_t own_id, const yti_conn_config *cfg,
                            const char *name)
{
    yt_connection *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, YTI_CLOSED);
    atomic_init(&c->timeout, YTI_TIMEOUT_MIN);
    static atomic_uint_least64_t next_link = 1;
    c->ctx = ctx;
    c->id1 = own_id;
    c->link_id = atomic_fetch_add(&next_link, 1);
    c->cfg = *cfg;
    c->fd = c->listen_fd = c->hs_fd = c->wfd = -1;
    atomic_init(&c->direct_taken, 0);
    atomic_init(&c->last_send, 0);
    atomic_init(&c->last_direct, 0);
    c->rx.fd = c->rx_ep = -1;
    atomic_init(&c->rx_kick, -1);
    atomic_init(&c->lead_kick, -1);
    atomic_init(&c->lead_ep, -1);
    atomic_init(&c->leading, false);
    atomic_init(&c->rx_handback, false);
    atomic_init(&c->rx_busy, false);
    atomic_init(&c->rx_large, false);
    atomic_init(&c->rbuf_grown, 0);
    atomic_init(&c->rbuf_size, 0);
    atomic_init(&c->rx_tcp, false);
    atomic_init(&c->rx_timed_out, false);
    atomic_init(&c->last_rx, 0);
    atomic_init(&c->led, 0);
    c->name = strdup(name ? name : "");
    c->outq = yti_queue_new(cfg->queue_size, cfg->discard);
    if (!c->name || !c->outq || yt_signal_new(cfg->loop, c, false, &c->timedout_sig) != YT_OK ||
        yt_signal_new(cfg->loop, c, false, &c->closed_sig) != YT_OK) {
        yt_signal_free(c->timedout_sig);
        yti_queue_free(c->outq);
        free(c->name);
        free(c);
        return NULL;
    }
    yti_signal_set_source_hooks(c->timedout_sig, source_ref, source_unref);
    yti_signal_set_source_hooks(c->closed_sig, source_ref, source_unref);
    yti_mutex_init(&c->lock);
    yti_mutex_init(&c->wlock);
    yti_mutex_init(&c->rxlock);
    yti_mutex_init(&c->tolock);
    yti_mutex_init(&c->kicklock);
    yti_cond_init(&c->cond);
    return c;
}

yt_connection *yt_connection_ref(yt_connection *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

static void conn_free(yt_connection *c)
{
    general_close(c, "Closed on command.", false);
    join_io(c);
    /* The sender is joined by the io thread; this covers a connection whose io thread never
     * started. */
    yti_thread_join(&c->send_thread);
    if (c->fd >= 0)
        close(c->fd);
    close_listener(c);
    if (c->key) {
        OPENSSL_cleanse(c->key, c->key_len);
        free(c->key);
    }
    free(c->refusal);
    yt_signal_free(c->timedout_sig);
    yt_signal_free(c->closed_sig);
    yti_queue_free(c->outq);
    for (size_t i = 0; i < c->npending; i++)
        yti_pkg_unref(c->pending[i]);
    for (size_t i = 0; i < c->rx.n; i++)
        yti_pkg_unref(c->rx.v[i]);
    if (c->rx.pause)
        yti_channel_unref(c->rx.pause);
    free(c->rx.buf);
    yti_cond_destroy(&c->cond);
    yti_mutex_destroy(&c->tolock);
    yti_mutex_destroy(&c->kicklock);
    yti_mutex_destroy(&c->rxlock);
    yti_mutex_destroy(&c->wlock);
    yti_mutex_destroy(&c->lock);
    free(c->name);
    free(c->reason);
    free(c);
}

void yt_connection_release(yt_connection *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        conn_free(c);
}

void yti_conn_detach(yt_connection *c)
{
    yti_mutex_lock(&c->lock);
    c->ctx = NULL;
    yti_mutex_unlock(&c->lock);
}

uint64_t yti_conn_link_id(const yt_connection *c)
{
    return c->link_id;
}

bool yti_conn_finished(yt_connection *c)
{
    yti_mutex_lock(&c->lock);
    bool done = yti_conn_state(c) == YTI_CLOSED && (c->io_exited || !c->io_thread.started);
    yti_mutex_unlock(&c->lock);
    return done;
}

int yti_conn_state(const yt_connection *c)
{
    return atomic_load_explicit(&c->state, memory_order_acquire);
}

static bool on_own_thread(const yt_connection *c)
{
    return yti_thread_is_self(&c->io_thread) || yti_thread_is_self(&c->send_thread);
}

/* ------------------------------------------------------------------------------------------ */
/* Sockets                                                                                     */

static void set_cloexec_nosigpipe(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static void tune_socket(int fd, const yti_conn_config *cfg)
{
    yti_net_set_buffers(fd, cfg->sndbuf, cfg->rcvbuf);
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The numeric host and port of either end; for a Unix socket the path (as the kernel reports
 * it: "" for an unnamed end) and port -1. */
static void sockname(int fd, bool peer, char *host, size_t hsize, int *port)
{
    yti_sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.len = sizeof sa.ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&sa.ss, &sa.len)
                  : getsockname(fd, (struct sockaddr *)&sa.ss, &sa.len);
    if (rc == 0)
        yti_net_sockaddr_text(&sa, host, hsize, port);
}

/*
 * Reads a greeting line one byte at a time, as the reference does, so nothing after the CR LF
 * is consumed: the package stream starts exactly where the line ends. Stops at CR LF, EOF, the
 * 2 s deadline or YTI_HANDSHAKE_LINE_MAX bytes (a peer sending more is not yoton).
 */
static size_t read_greeting(int fd, char *buf, size_t cap)
{
    uint64_t deadline = yti_deadline(YTI_HANDSHAKE_TIMEOUT);
    size_t n = 0;
    while (n < cap) {
        if (yti_net_poll_in(fd, deadline) <= 0)
            break;
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n++;
        if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n')
            break;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Signals                                                                                     */

static void emit_closed_once(yt_connection *c)
{
    yti_mutex_lock(&c->lock);
    bool emit = !c->closed_emitted;
    c->closed_emitted = true;
    char *reason = c->reason ? strdup(c->reason) : NULL;
    yti_mutex_unlock(&c->lock);
    if (emit)
        yt_signal_emit(c->closed_sig, 0, reason ? reason : "");
    free(reason);
}

/* ------------------------------------------------------------------------------------------ */
/* Sender                                                                                      */

static bool heartbeat_allowed(yt_connection *c)
{
    if (c->cfg.heartbeat != YT_HEARTBEAT_APP || !c->cfg.app_alive)
        return true;
    uint64_t last = atomic_load_explicit(c->cfg.app_alive, memory_order_relaxed);
    uint64_t looped = yti_loop_last_activity(c->cfg.loop);
    if (looped > last)
        last = looped;
    double to = atomic_load_explicit(&c->timeout, memory_order_relaxed);
    return yti_now() - last < (uint64_t)(to * 1e9);
}

/* Writes iov[0..n) completely with sendmsg(MSG_NOSIGNAL), in IOV_MAX chunks. */
static int send_iov(int fd, struct iovec *iov, size_t n)
{
    while (n > 0) {
        struct msghdr mh = {0};
        mh.msg_iov = iov;
        mh.msg_iovlen = n > IOV_MAX ? IOV_MAX : n;
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0 && left) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Counts n packages as written and wakes flushers. */
static void count_written(yt_connection *c, uint64_t n)
{
    yti_mutex_lock(&c->lock);
    c->written += n;
    if (c->flush_waiters)
        yti_cond_broadcast(&c->cond);
    yti_mutex_unlock(&c->lock);
}

/* Points iov at what is left of p's header (encoded into hdr) and payload after its first off
 * bytes; returns the number of entries (at most 2). */
static size_t pkg_iov(const yti_pkg *p, unsigned char hdr[YTI_HEADER_SIZE], size_t off,
                      struct iovec *iov)
{
    size_t k = 0;
    yti_header_encode_pkg(p, hdr);
    if (off < YTI_HEADER_SIZE) {
        iov[k].iov_base = hdr + off;
        iov[k++].iov_len = YTI_HEADER_SIZE - off;
        off = 0;
    } else {
        off -= YTI_HEADER_SIZE;
    }
    if (p->len > off) {
        iov[k].iov_base = p->data + off;
        iov[k++].iov_len = p->len - off;
    }
    return k;
}

/* No direct write has happened within a heartbeat interval (those show the link alive too). */
static bool quiet_since_direct(yt_connection *c)
{
    uint64_t last = atomic_load_explicit(&c->last_direct, memory_order_relaxed);
    return yti_now() - last >= (uint64_t)(YTI_HEARTBEAT_INTERVAL * 1e9);
}

/*
 * After writing a batch, the sender looks for more for up to SPIN_NS before it sleeps. In a
 * stream of small messages it otherwise drained the queue, slept, and was woken again every
 * few dozen packages: a futex wake by the application thread and a cross-CPU wake-up each time
 * (about a third of the publisher's time at 16 B). Only where the process may run on two CPUs
 * or more: spinning on the application's only CPU would just delay it.
 */
#define SPIN_NS 5000

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Whether this thread may run on more than one CPU. */
static bool several_cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1;
}

/* Spins until q has something (true) or SPIN_NS passed (false). */
static bool spin_for_more(yti_queue *q)
{
    uint64_t end = yti_now() + SPIN_NS;
    do {
        for (int i = 0; i < 32; i++)
            cpu_relax();
        if (yti_queue_len_hint(q))
            return true;
    } while (yti_now() < end);
    return false;
}

/*
 * The sender thread: waits until the out-queue has packages (or a direct write left a remainder,
 * or a heartbeat is due), then, holding the write lock, finishes that remainder and writes every
 * queued package with one sendmsg per batch. Packages are taken from the queue only under the
 * write lock, so a direct writer (who needs the queue empty and the lock free) can never
 * overtake packages popped but not yet written.
 */
static void *sender_main(void *arg)
{
    yt_connection *c = arg;
    yti_pkg *batch[BATCH_MAX];
    unsigned char hdr[BATCH_MAX][YTI_HEADER_SIZE];
    struct iovec iov[2 * BATCH_MAX];
    int fd;
    yti_mutex_lock(&c->lock);
    fd = c->fd;
    yti_mutex_unlock(&c->lock);

    bool may_spin = several_cpus(), wrote = false;
    for (;;) {
        if (wrote && may_spin)
            spin_for_more(c->outq); /* the wait below then returns at once */
        /* Packages queued: no need to take the queue's lock to be told so (a kick left
         * pending ends the next wait at once instead). */
        int rc = yti_queue_len_hint(c->outq)
                     ? YT_OK
                     : yti_queue_wait(c->outq, yti_deadline(YTI_HEARTBEAT_INTERVAL));
        if (rc == YT_ECLOSED)
            break;
        int err = 0;
        uint64_t done = 0;
        yti_mutex_lock(&c->wlock);
        if (c->npending) {
            size_t k = 0;
            for (size_t i = 0; i < c->npending; i++)
                k += pkg_iov(c->pending[i], hdr[i], i ? 0 : c->pending_off, iov + k);
            err = send_iov(fd, iov, k);
            yti_pkg_unref_many(c->pending, c->npending);
            done += c->npending;
            c->npending = 0;
        }
        size_t n = 0;
        int prc = err ? YT_OK : yti_queue_pop_many(c->outq, 0, batch, BATCH_MAX, &n);
        if (!err && prc == YT_OK) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                k += pkg_iov(batch[i], hdr[i], 0, iov + k);
            err = send_iov(fd, iov, k);
            yti_pkg_unref_many(batch, n);
            done += n;
        } else if (!err && rc == YT_ETIMEDOUT && done == 0 && heartbeat_allowed(c) &&
                   quiet_since_direct(c)) {
            err = yti_net_write_all(fd, yti_heartbeat_bytes, YTI_HEADER_SIZE);
        }
        yti_mutex_unlock(&c->wlock);
        wrote = done > 0;
        if (done)
            count_written(c, done);
        if (err) {
            char msg[200];
            snprintf(msg, sizeof msg, "yoton.SendingThread, Socket error.%s", strerror(-err));
            general_close(c, msg, false);
            break;
        }
        if (prc == YT_ECLOSED) /* the wait above was skipped: the queue closed with packages */
            break;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Receiver                                                                                    */

/*
 * Who reads the socket. The receiver thread does, unless an application thread is waiting in a
 * pop on a channel queue of this connection's context (the context's only connection): that
 * thread may read the socket itself ("leads", yti_conn_lead), parse and deliver, and so take
 * its package without a wake-up from the receiver: one thread hand-off less per hop. Two epoll
 * instances watch the socket with EPOLLEXCLUSIVE, the leaders' one registered first: the kernel
 * wakes the first one that has a waiter, so data goes to a waiting leader, else to the
 * receiver, never to both. Each also watches an eventfd to be woken on purpose ("kicked").
 * Reading, parsing and delivering happen under rxlock only, so the order is the wire order
 * whoever reads. A leader only takes whole small packages; anything else (the close package, a
 * bad or large package, a paused subscriber, end-of-file, an error) it leaves where it is and
 * hands back: rx_handback is set, the receiver is kicked and handles it with its full logic.
 */

typedef struct rx_state {
    long drain;     /* bytes still to read after the close (-1: not closed yet) */
    bool full_read; /* the last read filled its buffer: more is likely waiting */
    bool woke;      /* the last wait ended by a wake-up: try reading first */
    bool partial;   /* the caller is reading the rest of a package (set per call) */
    bool peek;      /* the caller is reading a header alone (set per call) */
} rx_state;

/* A read of at least this much is a stream a peer may be pushing from a small send buffer:
 * acknowledge it at once (see note_read). */
#define QUICKACK_MIN 4096

/* Writes to an eventfd of c's; under kicklock, so never to a number io_exit closed. */
static void kick(yt_connection *c, atomic_int *efd)
{
    uint64_t one = 1;
    yti_mutex_lock(&c->kicklock);
    int fd = atomic_load_explicit(efd, memory_order_relaxed);
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so a wake-up is pending anyway. */
    }
    yti_mutex_unlock(&c->kicklock);
}

static void drain_kicks(int efd)
{
    uint64_t v;
    while (read(efd, &v, sizeof v) > 0) {
    }
}

static void kick_receiver(yt_connection *c)
{
    kick(c, &c->rx_kick);
}

static void kick_leader(void *arg)
{
    yt_connection *c = arg;
    kick(c, &c->lead_kick);
}

/* The timedout signal's edges, from whichever thread saw one. */
static void set_timed_out(yt_connection *c, bool on)
{
    if (atomic_load_explicit(&c->rx_timed_out, memory_order_relaxed) == on)
        return;
    yti_mutex_lock(&c->tolock);
    if (atomic_load(&c->rx_timed_out) != on) {
        atomic_store(&c->rx_timed_out, on);
        yt_signal_emit(c->timedout_sig, on ? 1 : 0, NULL);
    }
    yti_mutex_unlock(&c->tolock);
}

/* After reading n > 0 bytes into a buffer of room bytes; `partial`: the start of a package was
 * already there. Every byte counts as life. */
static void note_read(yt_connection *c, int fd, size_t n, size_t room, bool partial)
{
    bool tcp = atomic_load_explicit(&c->rx_tcp, memory_order_relaxed);
    /* Acknowledge at once while a stream flows. Linux delays ACKs and leaves quick-ack mode by
     * itself; a peer sending from a small socket buffer (the reference uses 10 KiB) then waits
     * for each delayed ACK, and 64 MiB from Python took 40 s instead of 0.15 s. Set after each
     * read that is part of a package still coming or big enough to be such a stream: it sends
     * a pending ACK now and keeps the next ones immediate. A small read of whole packages needs
     * none (the kernel acks when the reader empties its queue, or the reply carries the ACK)
     * and saves a system call per round trip. */
    int one = 1;
    if (tcp && (partial || n == room || n >= QUICKACK_MIN))
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    atomic_store_explicit(&c->last_rx, yti_now(), memory_order_relaxed);
    set_timed_out(c, false);
}

/* Waits until the socket may be readable or the receiver is kicked (1), until `until` (0), or
 * fails (-errno). */
static int rx_wait(yt_connection *c, int fd, uint64_t until)
{
    if (c->rx_ep < 0)
        return yti_net_poll_in(fd, until);
    struct epoll_event ev[2];
    int n = yti_net_epoll_wait(c->rx_ep, ev, 2, until);
    if (n < 0)
        return n == -EINTR ? 1 : n;
    for (int i = 0; i < n; i++)
        if (ev[i].data.u32 == EP_KICK)
            drain_kicks(atomic_load(&c->rx_kick));
    return n > 0;
}

/*
 * The receiver's read of at most len bytes into buf, waiting with the connection's timeout so
 * that timedout is emitted on the edges of silence. `top`: between packages; the wait then
 * releases rxlock (a leader may read meanwhile) and returns -EAGAIN after it, for the caller to
 * look at the buffer again. Returns bytes read, 0 on EOF, -errno on error, or -ECANCELED when
 * the connection is closing.
 */
static ssize_t rx_read(yt_connection *c, rx_state *st, int fd, void *buf, size_t len, bool top)
{
    bool try_first = st->full_read || st->woke;
    st->woke = false;
    for (;;) {
        /* Not while CLOSING: the closer may still be flushing the close package, and this
         * thread's exit path closes the out-queue. */
        if (yti_conn_state(c) == YTI_CLOSED) {
            /* Closed (by the user, the sender meeting an error such as the peer's reset, or
             * the peer): what the kernel already holds for us arrived before that and is
             * still delivered, read without waiting and at most one receive buffer's worth
             * (a peer still sending cannot keep this going). A reset peer's unread bytes
             * stay readable until then; dropping them lost a relay's last messages. */
            if (st->drain < 0) {
                int rb = 0;
                socklen_t rl = sizeof rb;
                st->drain = getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, &rl) == 0 && rb > 0
                                ? rb : (int)RBUF_SIZE;
            }
            if (st->drain == 0 || len == 0)
                return -ECANCELED;
            ssize_t n = recv(fd, buf, len < (size_t)st->drain ? len : (size_t)st->drain,
                             MSG_DONTWAIT);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return -ECANCELED;
            st->drain -= n;
            return n;
        }
        if (c->rx.err) {
            /* A leader's read failed; the error is reported once, here. */
            int e = c->rx.err;
            c->rx.err = 0;
            return -e;
        }
        if (!try_first) {
            bool timed_out = atomic_load(&c->rx_timed_out);
            double to = atomic_load_explicit(&c->timeout, memory_order_relaxed);
            uint64_t deadline =
                timed_out ? yti_deadline(1.0)
                          : atomic_load_explicit(&c->last_rx, memory_order_relaxed) +
                                (uint64_t)(to * 1e9);
            /* In steps of at most 0.25 s: a close that hands the socket to a reaper (see
             * general_close) does not shut the read side down to wake this thread. */
            uint64_t step = yti_deadline(YTI_HEARTBEAT_INTERVAL);
            uint64_t until = step < deadline ? step : deadline;
            if (top) {
                atomic_store_explicit(&c->rx_busy, false, memory_order_relaxed);
                yti_mutex_unlock(&c->rxlock);
            }
            int pr = rx_wait(c, fd, until);
            if (top) {
                yti_mutex_lock(&c->rxlock);
                atomic_store_explicit(&c->rx_busy, true, memory_order_relaxed);
            }
            if (pr < 0)
                return pr;
            if (pr == 0 && until == deadline && !timed_out &&
                atomic_load_explicit(&c->last_rx, memory_order_relaxed) + (uint64_t)(to * 1e9) <=
                    yti_now())
                set_timed_out(c, true);
            st->woke = pr > 0;
            if (top)
                return -EAGAIN;
            try_first = pr > 0;
            continue;
        }
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                try_first = st->full_read = false;
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return -errno;
        }
        st->full_read = n > 0 && (size_t)n == len;
        /* A header read alone (receive_loop) fills its small buffer without being a stream. */
        if (n > 0)
            note_read(c, fd, (size_t)n, st->peek ? c->rx.size : len, st->partial);
        return n;
    }
}

static yt_context *conn_ctx(yt_connection *c)
{
    yti_mutex_lock(&c->lock);
    yt_context *ctx = c->ctx;
    yti_mutex_unlock(&c->lock);
    return ctx;
}

/* A subscriber in sync mode has a full queue: stop reading this link until it has room, so
 * that TCP holds the publishers back instead of anything being discarded. Waits in short steps
 * so that closing the connection is never held up. Consumes the reference to full. */
static void pause_for(yt_connection *c, yt_channel *full)
{
    while (yti_conn_state(c) != YTI_CLOSED &&
           !yti_channel_wait_room(full, yti_deadline(0.05))) {
    }
    yti_channel_unref(full);
    /* Pausing is not silence on the link. */
    atomic_store_explicit(&c->last_rx, yti_now(), memory_order_relaxed);
}

/* The receiver hands the packages parsed so far (c->rx.v) to the context, in order (rxlock
 * held). A pause a leader met comes first. */
static void deliver(yt_connection *c)
{
    rx_shared *rx = &c->rx;
    if (rx->pause) {
        yt_channel *full = rx->pause;
        rx->pause = NULL;
        pause_for(c, full);
    }
    /* The context outlives the IO threads (freeing it joins them), so this cannot go stale
     * while the receiver runs. */
    yt_context *ctx = c->ctx;
    size_t done = 0;
    while (done < rx->n) {
        if (!ctx) {
            yti_pkg_unref(rx->v[done++]);
            continue;
        }
        yt_channel *full = NULL;
        done += yti_context_deliver(ctx, c, rx->v + done, rx->n - done, &full);
        if (full)
            pause_for(c, full);
    }
    rx->n = 0;
}

/* A leader's delivery (rxlock held): stops at a pause, leaving it and the rest to the receiver.
 * False when it stopped. */
static bool lead_deliver(yt_connection *c, yt_context *ctx)
{
    rx_shared *rx = &c->rx;
    size_t done = 0;
    while (done < rx->n) {
        yt_channel *full = NULL;
        done += yti_context_deliver(ctx, c, rx->v + done, rx->n - done, &full);
        if (full) {
            rx->pause = full;
            memmove(rx->v, rx->v + done, (rx->n - done) * sizeof *rx->v);
            rx->n -= done;
            return false;
        }
    }
    rx->n = 0;
    return true;
}

/* A package of capacity cap for the header h at rx->pos, with the first `take` payload bytes
 * from the buffer; rx->pos moves past them. NULL when out of memory (nothing consumed). */
static yti_pkg *pkg_start(rx_shared *rx, const yti_header *h, size_t cap, size_t take)
{
    yti_pkg *p = yti_pkg_new(cap);
    if (!p)
        return NULL;
    p->slot = h->slot;
    p->source_id = h->source_id;
    p->source_seq = h->source_seq;
    p->dest_id = h->dest_id;
    p->dest_seq = h->dest_seq;
    memcpy(p->data, rx->buf + rx->pos + YTI_HEADER_SIZE, take);
    rx->pos += YTI_HEADER_SIZE + take;
    return p;
}

enum { PARSE_NEED, PARSE_FULL, PARSE_STOP };

/* A package of len bytes is parsed in place from the read buffer, which grows for it if need be
 * (rxlock held). False: it is read by itself (rx_special). */
static bool fits_buffer(yt_connection *c, rx_shared *rx, uint64_t len)
{
    if (len < RBUF_SIZE / 2)
        return true;
    if (len >= RBUF_BIG / 2)
        return false;
    if (rx->size < RBUF_BIG) {
        unsigned char *big = realloc(rx->buf, RBUF_BIG);
        if (!big)
            return false; /* it is read by itself then */
        rx->buf = big;
        rx->size = RBUF_BIG;
        atomic_store_explicit(&c->rbuf_size, rx->size, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->rbuf_grown, 1, memory_order_relaxed);
    }
    rx->big_at = atomic_load_explicit(&c->last_rx, memory_order_relaxed); /* its bytes' read */
    return true;
}

/* RBUF_IDLE after the last package that needed it, with nothing in it, a grown read buffer
 * shrinks back (rxlock held). Heartbeats and small packages do not keep it: an idle link gets a
 * heartbeat about every 0.25 s. */
static void shrink_buffer(yt_connection *c, rx_shared *rx)
{
    if (rx->size == RBUF_SIZE || rx->have || yti_now() < rx->big_at + (uint64_t)(RBUF_IDLE * 1e9))
        return;
    unsigned char *small = malloc(RBUF_SIZE); /* not realloc: the big one goes back whole */
    if (!small)
        return;
    free(rx->buf);
    rx->buf = small;
    rx->size = RBUF_SIZE;
    rx->pos = 0;
    atomic_store_explicit(&c->rbuf_size, rx->size, memory_order_relaxed);
}

/*
 * Moves every complete package that fits the buffer (fits_buffer) at the front of it into rx->v,
 * skipping heartbeats (rxlock held). PARSE_NEED: the rest is an incomplete small package, or
 * nothing; PARSE_FULL: rx->v is full; PARSE_STOP: the package at rx->pos needs the receiver's
 * handling (rx_special): the close package, a bad or too large header, a large package, or
 * no memory.
 */
static int parse_small(yt_connection *c, rx_shared *rx)
{
    while (rx->have - rx->pos >= YTI_HEADER_SIZE) {
        if (rx->n == YTI_DELIVER_MAX)
            return PARSE_FULL;
        yti_header h;
        if (yti_header_decode(rx->buf + rx->pos, &h) != YT_OK)
            return PARSE_STOP;
        if (h.len == 0) {
            if (h.source_seq == 1)
                return PARSE_STOP;
            rx->pos += YTI_HEADER_SIZE; /* heartbeat (0) or unknown: nothing to do */
            continue;
        }
        if (h.len > c->cfg.max_package_size || !fits_buffer(c, rx, h.len))
            return PARSE_STOP;
        if (rx->have - rx->pos - YTI_HEADER_SIZE < h.len)
            return PARSE_NEED; /* wait for the rest in the buffer */
        yti_pkg *p = pkg_start(rx, &h, (size_t)h.len, (size_t)h.len);
        if (!p)
            return PARSE_STOP;
        rx->v[rx->n++] = p;
    }
    return PARSE_NEED;
}

/* The end of a read: the start of a package that is left moves to the front. */
static void compact(rx_shared *rx)
{
    if (rx->pos > 0) {
        memmove(rx->buf, rx->buf + rx->pos, rx->have - rx->pos);
        rx->have -= rx->pos;
        rx->pos = 0;
    }
}

/* The peer closed its end: an orderly close waiting for that may go on. */
static void mark_eof(yt_connection *c)
{
    yti_mutex_lock(&c->lock);
    c->rx_eof = true;
    yti_cond_broadcast(&c->cond);
    yti_mutex_unlock(&c->lock);
}

static const char *read_failure(yt_connection *c, ssize_t n, char *errbuf, size_t errsize)
{
    if (n == -ECANCELED)
        return NULL;
    if (n == 0) {
        mark_eof(c);
        return "Other end dropped the connection.";
    }
    snprintf(errbuf, errsize, "yoton.ReceivingThread, Socket error.%s", strerror((int)-n));
    return errbuf;
}

/*
 * The receiver's handling of the package at rx->pos that parse_small stopped at (rxlock held).
 * Returns the reason to close with; NULL to go on, with *stop set when closing anyway.
 */
static const char *rx_special(yt_connection *c, rx_state *st, int fd, char *errbuf,
                              size_t errsize, bool *stop)
{
    rx_shared *rx = &c->rx;
    /* What came before it goes first. */
    if (rx->n || rx->pause)
        deliver(c);
    yti_header h;
    if (yti_header_decode(rx->buf + rx->pos, &h) != YT_OK)
        return "Lost track of the stream.";
    if (h.len == 0)
        return "Closed from other end."; /* parse_small stops at no other empty package */
    if (h.len > c->cfg.max_package_size) {
        snprintf(errbuf, errsize, "Package too large: %llu bytes declared, the maximum is %zu.",
                 (unsigned long long)h.len, c->cfg.max_package_size);
        return errbuf;
    }
    size_t cap = h.len < GROW_START ? (size_t)h.len : GROW_START;
    size_t avail = rx->have - rx->pos - YTI_HEADER_SIZE;
    size_t take = avail < cap ? avail : cap;
    yti_pkg *p = pkg_start(rx, &h, cap, take);
    if (!p) {
        snprintf(errbuf, errsize, "yoton.ReceivingThread, Error in io thread.Cannot "
                 "allocate %llu bytes", (unsigned long long)h.len);
        return errbuf;
    }
    /* A large payload: the rest goes straight into its own buffer, rxlock held throughout (a
     * leader woken meanwhile finds it taken and kicks this thread). */
    while (take < h.len) {
        if (take == cap) {
            size_t ncap = cap > (size_t)h.len / 2 ? (size_t)h.len : cap * 2;
            yti_pkg *q = yti_pkg_resize(p, ncap);
            if (!q) {
                yti_pkg_unref(p);
                snprintf(errbuf, errsize, "yoton.ReceivingThread, Error in io thread."
                         "Cannot allocate %zu bytes", ncap);
                return errbuf;
            }
            p = q;
            cap = ncap;
        }
        st->partial = true;
        st->peek = false;
        ssize_t n = rx_read(c, st, fd, p->data + take, cap - take, false);
        if (n <= 0) {
            yti_pkg_unref(p);
            const char *why = read_failure(c, n, errbuf, errsize);
            *stop = !why;
            return why;
        }
        take += (size_t)n;
    }
    rx->v[rx->n++] = p;
    atomic_store_explicit(&c->rx_large, true, memory_order_relaxed);
    if (rx->n == YTI_DELIVER_MAX)
        deliver(c);
    return NULL;
}

/* The receive loop; returns the reason to close with, or NULL when closing anyway. */
static const char *receive_loop(yt_connection *c, char *errbuf, size_t errsize)
{
    rx_shared *rx = &c->rx;
    yti_mutex_lock(&c->rxlock);
    atomic_store_explicit(&c->rx_busy, true, memory_order_relaxed);
    int fd = rx->fd;
    rx_state st = {.drain = -1};
    const char *reason = NULL;

    for (;;) {
        size_t before = rx->n;
        int pr = parse_small(c, rx);
        if (rx->n > before) /* small packages came in */
            atomic_store_explicit(&c->rx_large, false, memory_order_relaxed);
        if (pr == PARSE_FULL) {
            deliver(c);
            continue;
        }
        if (pr == PARSE_STOP) {
            bool stop = false;
            reason = rx_special(c, &st, fd, errbuf, errsize, &stop);
            if (reason || stop)
                break;
            continue;
        }
        /* Packages are delivered in batches (one context lock per batch), and always before
         * this thread waits or leaves. */
        if (rx->n || rx->pause)
            deliver(c);
        compact(rx);
        /* Nothing special is pending: leaders may read again. */
        atomic_store(&c->rx_handback, false);
        st.partial = rx->have > 0; /* the start of a package is in the buffer */
        /* After a large package (one that does not fit the buffer) the next one is likely
         * large too: its header is read alone, so that its payload goes straight into its own
         * buffer (rx_special) instead of mostly through this one and a copy. Leaders stand
         * aside meanwhile (yti_conn_lead): they read whole buffers. */
        st.peek = atomic_load_explicit(&c->rx_large, memory_order_relaxed) &&
                  rx->have < YTI_HEADER_SIZE;
        size_t want = st.peek ? YTI_HEADER_SIZE - rx->have : rx->size - rx->have;
        ssize_t n = rx_read(c, &st, fd, rx->buf + rx->have, want, true);
        if (n == -EAGAIN) {
            shrink_buffer(c, rx);
            continue; /* waited without rxlock: look at the buffer again */
        }
        if (n <= 0) {
            reason = read_failure(c, n, errbuf, errsize);
            break;
        }
        rx->have += (size_t)n;
    }
    /* What arrived before a close package or a broken stream is still delivered. */
    if (rx->n || rx->pause)
        deliver(c);
    atomic_store(&c->rx_handback, true); /* no leader from now on */
    atomic_store_explicit(&c->rx_busy, false, memory_order_relaxed);
    yti_mutex_unlock(&c->rxlock);
    return reason;
}

/* A leader's read (rxlock held): whole small packages only. False when it handed back. */
static bool lead_read(yt_connection *c, yt_context *ctx, bool *more)
{
    rx_shared *rx = &c->rx;
    for (int round = 0; round < 4; round++) {
        size_t room = rx->size - rx->have;
        bool partial = rx->have > 0;
        ssize_t n = recv(rx->fd, rx->buf + rx->have, room, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR) {
            *more = true;
            return true;
        }
        if (n <= 0) {
            rx->err = n < 0 ? errno : 0; /* end-of-file the receiver meets again itself */
            return false;
        }
        rx->have += (size_t)n;
        atomic_fetch_add_explicit(&c->led, 1, memory_order_relaxed);
        note_read(c, rx->fd, (size_t)n, room, partial);
        int pr;
        while ((pr = parse_small(c, rx)) == PARSE_FULL)
            if (!lead_deliver(c, ctx))
                return false;
        if (rx->n && !lead_deliver(c, ctx))
            return false;
        if (pr == PARSE_STOP)
            return false;
        compact(rx);
        if ((size_t)n < room)
            return true; /* the socket is empty: new bytes wake someone */
    }
    *more = true; /* still streaming: the receiver carries on */
    return true;
}

uint64_t yti_conn_led(yt_connection *c)
{
    return atomic_load_explicit(&c->led, memory_order_relaxed);
}

size_t yti_conn_rbuf_size(yt_connection *c, uint64_t *grown)
{
    if (grown)
        *grown = atomic_load_explicit(&c->rbuf_grown, memory_order_relaxed);
    return atomic_load_explicit(&c->rbuf_size, memory_order_relaxed);
}

int yti_conn_lead(yt_connection *c, yti_queue *q, uint64_t deadline)
{
    /* Not while the receiver is reading and delivering (a stream): what it delivers wakes the
     * caller as usual, and the bytes that woke a leader would only make it kick the receiver
     * and give up. */
    if (yti_conn_state(c) < YTI_HOSTING || atomic_load(&c->rx_handback) ||
        atomic_load(&c->rx_timed_out) ||
        atomic_load_explicit(&c->rx_busy, memory_order_relaxed) ||
        atomic_load_explicit(&c->rx_large, memory_order_relaxed))
        return YTI_LEAD_NONE;
    bool idle = false;
    if (!atomic_compare_exchange_strong(&c->leading, &idle, true))
        return YTI_LEAD_NONE;
    /* Read after `leading` is set: io_exit clears lead_ep, then waits for `leading` to drop
     * before it closes the descriptor. */
    int ep = atomic_load(&c->lead_ep);
    if (ep < 0) {
        atomic_store(&c->leading, false);
        return YTI_LEAD_NONE;
    }
    if (!yti_queue_lead_arm(q, kick_leader, c)) {
        atomic_store(&c->leading, false);
        return YTI_LEAD_DONE;
    }
    int ret = YTI_LEAD_DONE;
    struct epoll_event ev[2];
    int n = yti_net_epoll_wait(ep, ev, 2, deadline);
    yti_queue_lead_disarm(q);
    bool readable = false;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == EP_KICK)
            drain_kicks(atomic_load(&c->lead_kick));
        else
            readable = true;
    }
    if (readable) {
        /* The kernel woke this thread instead of the receiver: read, or make sure the
         * receiver does. */
        bool more = false, kick_rx = true;
        yt_context *ctx = conn_ctx(c);
        if (yti_mutex_trylock(&c->rxlock)) {
            if (ctx && c->rx.fd >= 0 && !atomic_load(&c->rx_handback) && !c->rx.n &&
                !c->rx.pause) {
                if (lead_read(c, ctx, &more))
                    kick_rx = more;
                else
                    atomic_store(&c->rx_handback, true);
            }
            yti_mutex_unlock(&c->rxlock);
        } else {
            /* The receiver is at it: sleep until it delivers rather than being woken again
             * and again by the same bytes. */
            ret = YTI_LEAD_NONE;
        }
        if (kick_rx)
            kick_receiver(c);
    }
    atomic_store(&c->leading, false);
    return ret;
}

/*
 * The reaper: owns a socket whose connection closed while the peer had not yet taken all our
 * bytes. It keeps the receive side empty (so the kernel never answers the peer with a reset)
 * and closes the socket once the peer has taken everything, has closed its end, or took
 * nothing for REAP_IDLE. It touches nothing but the descriptor, so the connection and its
 * context may be freed meanwhile. Detached; at most one per such close.
 */
#define REAP_IDLE 60.0

static void *reaper_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char sink[4096];
    int last = unacked(fd);
    uint64_t progress = yti_now();
    bool eof = false;
    for (;;) {
        int q = unacked(fd);
        if (q <= 0 || eof)
            break;
        uint64_t now = yti_now();
        if (q < last) {
            last = q;
            progress = now;
        } else if (now - progress > (uint64_t)(REAP_IDLE * 1e9)) {
            break;
        }
        if (yti_net_poll_in(fd, yti_deadline(0.1)) < 0)
            break;
        ssize_t n;
        while ((n = recv(fd, sink, sizeof sink, MSG_DONTWAIT)) > 0) {
        }
        eof = n == 0;
    }
    close(fd);
    return NULL;
}

/* Starts a reaper for fd; false when no thread could be started (the caller closes fd). */
static bool start_reaper(int fd)
{
    yti_thread t;
    memset(&t, 0, sizeof t);
    if (yti_thread_start(&t, reaper_main, (void *)(intptr_t)fd, "yt-reap", 64 * 1024) != YT_OK)
        return false;
    yti_thread_detach(&t);
    return true;
}

static int start_sender(yt_connection *c)
{
    yti_mutex_lock(&c->lock);
    int fd = c->fd;
    yti_mutex_unlock(&c->lock);
    yti_mutex_lock(&c->wlock);
    c->wfd = fd;
    yti_mutex_unlock(&c->wlock);
    yti_queue_set_consumer(c->outq, true);
    return yti_thread_start(&c->send_thread, sender_main, c, "yt-send", IO_STACK);
}

/* The end of the io thread: stop and join the sender, release the descriptors. */
static void io_exit(yt_connection *c)
{
    yti_queue_set_consumer(c->outq, false);
    yti_queue_close(c->outq);
    yti_thread_join(&c->send_thread);
    /* No direct writer may use the descriptor once it can be closed and its number reused. */
    yti_mutex_lock(&c->wlock);
    c->wfd = -1;
    for (size_t i = 0; i < c->npending; i++)
        yti_pkg_unref(c->pending[i]);
    c->npending = 0;
    yti_mutex_unlock(&c->wlock);
    /* Nor a leader: none can start now, and the one in progress (woken by the close) is
     * waited for before the epoll instance and the eventfds go. */
    yti_mutex_lock(&c->rxlock);
    c->rx.fd = -1;
    atomic_store(&c->rx_handback, true);
    yti_mutex_unlock(&c->rxlock);
    int lep = atomic_exchange(&c->lead_ep, -1);
    while (atomic_load(&c->leading)) {
        kick_leader(c);
        yti_sleep(0.0005);
    }
    yti_mutex_lock(&c->kicklock);
    int fds[] = {lep, c->rx_ep, atomic_load(&c->rx_kick), atomic_load(&c->lead_kick)};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    c->rx_ep = -1;
    atomic_store(&c->rx_kick, -1);
    atomic_store(&c->lead_kick, -1);
    yti_mutex_unlock(&c->kicklock);
    yti_mutex_lock(&c->lock);
    if (c->fd >= 0 && c->handoff && start_reaper(c->fd))
        c->fd = -1; /* the reaper owns it now */
    if (c->fd >= 0) {
        /* Unread bytes at close make the kernel reset the connection, dropping anything it
         * still had to send: read them away first. */
        char sink[4096];
        while (recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        close(c->fd);
    }
    close_listener(c);
    c->fd = c->listen_fd = -1;
    c->io_exited = true;
    yti_cond_broadcast(&c->cond);
    yti_mutex_unlock(&c->lock);
}

/* The two epoll instances and eventfds of "Who reads the socket". Without them the receiver
 * polls and nobody leads. */
static void setup_readers(yt_connection *c, int fd)
{
    int lep = epoll_create1(EPOLL_CLOEXEC), rep = epoll_create1(EPOLL_CLOEXEC);
    int lk = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), rk = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event sock = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = EP_SOCK};
    struct epoll_event kick = {.events = EPOLLIN, .data.u32 = EP_KICK};
    /* The leaders' instance is registered first: the kernel tries it first. */
    bool ok = lep >= 0 && rep >= 0 && lk >= 0 && rk >= 0 &&
              epoll_ctl(lep, EPOLL_CTL_ADD, fd, &sock) == 0 &&
              epoll_ctl(rep, EPOLL_CTL_ADD, fd, &sock) == 0 &&
              epoll_ctl(lep, EPOLL_CTL_ADD, lk, &kick) == 0 &&
              epoll_ctl(rep, EPOLL_CTL_ADD, rk, &kick) == 0;
    if (!ok) {
        int v[] = {lep, rep, lk, rk};
        for (size_t i = 0; i < 4; i++)
            if (v[i] >= 0)
                close(v[i]);
        return;
    }
    c->rx_ep = rep;
    /* Published under kicklock: whoever kicks takes it, so it sees the descriptors made. */
    yti_mutex_lock(&c->kicklock);
    atomic_store(&c->rx_kick, rk);
    atomic_store(&c->lead_kick, lk);
    atomic_store(&c->lead_ep, lep);
    yti_mutex_unlock(&c->kicklock);
}

static void run_receiver(yt_connection *c)
{
    int fd;
    yti_mutex_lock(&c->lock);
    fd = c->fd;
    yti_mutex_unlock(&c->lock);
    unsigned char *buf = malloc(RBUF_SIZE);
    if (!buf) {
        general_close(c, "yoton.ReceivingThread, Error in io thread.Out of memory", false);
        return;
    }
    atomic_store(&c->last_rx, yti_now());
    int dom = 0;
    socklen_t dl = sizeof dom;
    atomic_store(&c->rx_tcp,
                 !(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 && dom == AF_UNIX));
    yti_mutex_lock(&c->rxlock);
    c->rx.fd = fd;
    c->rx.buf = buf;
    c->rx.size = RBUF_SIZE;
    atomic_store_explicit(&c->rbuf_size, RBUF_SIZE, memory_order_relaxed);
    yti_mutex_unlock(&c->rxlock);
    setup_readers(c, fd);
    char errbuf[256];
    const char *reason = receive_loop(c, errbuf, sizeof errbuf);
    if (reason)
        general_close(c, reason, false);
}

static void *receiver_main(void *arg)
{
    yt_connection *c = arg;
    run_receiver(c);
    io_exit(c);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Host                                                                                        */

/* Remembers why the host turned a peer away (yt_connection_last_refusal). */
static void set_refusal(yt_connection *c, const char *why)
{
    char *r = strdup(why);
    yti_mutex_lock(&c->lock);
    free(c->refusal);
    c->refusal = r;
    yti_mutex_unlock(&c->lock);
}

/* Runs the host side of the handshake on fd, and the authentication when this end has a key;
 * true on success (peer recorded). On failure the reason is kept as the last refusal. */
static bool host_handshake(yt_connection *c, int fd)
{
    char line[YTI_HANDSHAKE_LINE_MAX];
    size_t n = read_greeting(fd, line, sizeof line);
    uint64_t peer_id = 0;
    long peer_pid = 0;
    yti_hs_result r = yti_greeting_parse(line, n, c->id1, &peer_id, &peer_pid);
    if (r == YTI_HS_OK) {
        /* Recorded before the reply goes out: once the peer knows it is connected, this end
         * already knows who the peer is. */
        yti_mutex_lock(&c->lock);
        c->id2 = peer_id;
        c->pid2 = peer_pid;
        sockname(fd, true, c->host2, sizeof c->host2, &c->port2);
        yti_mutex_unlock(&c->lock);
    }
    char reply[YTI_GREETING_MAX + YTI_AUTH_CHALLENGE_LEN];
    size_t rn = yti_hs_host_reply(r, c->id1, (long)getpid(), reply);
    unsigned char nonce[YTI_AUTH_NONCE];
    bool auth = r == YTI_HS_OK && c->key != NULL;
    if (auth) {
        /* The challenge goes out in the same write as the greeting, so that a client without
         * a key finds it waiting right behind the greeting and can say why it gives up. */
        if (yti_auth_challenge((unsigned char *)reply + rn, nonce) != YT_OK) {
            set_refusal(c, yt_last_error());
            return false;
        }
        rn += YTI_AUTH_CHALLENGE_LEN;
    }
    if (rn)
        yti_net_write_all(fd, reply, rn);
    if (r != YTI_HS_OK) {
        set_refusal(c, yti_hs_reason(r));
        return false;
    }
    if (auth) {
        char why[200];
        if (!yti_auth_host(fd, c->key, c->key_len, nonce,
                           yti_deadline(YTI_HANDSHAKE_TIMEOUT), why, sizeof why)) {
            yti_mutex_lock(&c->lock);
            c->id2 = 0;
            c->pid2 = 0;
            c->host2[0] = '\0';
            c->port2 = 0;
            yti_mutex_unlock(&c->lock);
            set_refusal(c, why);
            return false;
        }
    }
    return true;
}

static void *host_main(void *arg)
{
    yt_connection *c = arg;
    int lfd;
    yti_mutex_lock(&c->lock);
    lfd = c->listen_fd;
    yti_mutex_unlock(&c->lock);

    bool connected = false;
    while (yti_conn_state(c) == YTI_WAITING) {
        int pr = yti_net_poll_in(lfd, yti_deadline(0.25));
        if (yti_conn_state(c) != YTI_WAITING)
            break;
        if (pr <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        yti_mutex_lock(&c->lock);
        bool closing = yti_conn_state(c) != YTI_WAITING;
        if (!closing)
            c->hs_fd = fd;
        yti_mutex_unlock(&c->lock);
        bool ok = !closing && host_handshake(c, fd);
        yti_mutex_lock(&c->lock);
        c->hs_fd = -1;
        if (ok && yti_conn_state(c) == YTI_WAITING) {
            c->fd = fd;
            /* One bind serves one peer: nobody else can connect from now on (and a socket file
             * of ours goes with the listening socket). */
            close_listener(c);
            set_nodelay(fd);
            atomic_store(&c->state, YTI_HOSTING);
            connected = true;
        } else {
            close(fd);
        }
        yti_mutex_unlock(&c->lock);
        if (connected)
            break;
    }
    if (connected) {
        if (start_sender(c) != YT_OK)
            general_close(c, "yoton.ReceivingThread, Error in io thread.Cannot start sender",
                          false);
        else
            run_receiver(c);
    }
    io_exit(c);
    return NULL;
}

/* Closes the listening socket and removes its socket file if it is still the one we created
 * (someone may have replaced it since). Called with the lock held, or with no other thread. */
static void close_listener(yt_connection *c)
{
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    c->listen_fd = -1;
    yti_net_unix_remove(&c->unix_file);
}

/* The listening socket is ready: record where, become WAITING and start the host thread. The
 * descriptor belongs to c from here on. */
static int start_host(yt_connection *c, int fd)
{
    yti_mutex_lock(&c->lock);
    c->listen_fd = fd;
    sockname(fd, false, c->host1, sizeof c->host1, &c->port1);
    atomic_store(&c->state, YTI_WAITING);
    yti_mutex_unlock(&c->lock);
    int rc = yti_thread_start(&c->io_thread, host_main, c, "yt-host", IO_STACK);
    if (rc) {
        yti_mutex_lock(&c->lock);
        atomic_store(&c->state, YTI_CLOSED);
        close_listener(c);
        yti_mutex_unlock(&c->lock);
        return rc;
    }
    return YT_OK;
}

static int bind_unix(yt_connection *c, const yti_address *a)
{
    int fd;
    yti_unix_file file;
    int rc = yti_net_listen(a, 1, c->cfg.sndbuf, c->cfg.rcvbuf, &fd, &file);
    if (rc)
        return rc;
    yti_mutex_lock(&c->lock);
    c->unix_file = file;
    yti_mutex_unlock(&c->lock);
    return start_host(c, fd);
}

int yti_conn_bind(yt_connection *c, const yti_address *a, int max_tries)
{
    if (max_tries < 1)
        return yti_error(YT_EINVAL, "max_tries must be at least 1");
    if (a->kind == YTI_ADDR_IPC)
        return bind_unix(c, a); /* a path has no "next" to try: max_tries is not used */
    int fd = -1, rc = YT_OK, port = a->port, tried = 0;
    yti_unix_file none;
    for (int k = 0; k < max_tries; k++) {
        port = a->port + k;
        if (port > 65535)
            break;
        tried++;
        yti_address at = *a;
        at.port = port;
        rc = yti_net_listen(&at, 1, c->cfg.sndbuf, c->cfg.rcvbuf, &fd, &none);
        if (rc != YT_EBIND || a->port == 0)
            break; /* bound; or an error another port will not help with (nor will another
                    * ephemeral port) */
    }
    if (fd < 0) {
        if (tried <= 1 || rc != YT_EBIND)
            return rc ? rc : yti_error(YT_EBIND, "Cannot bind to %s on %d", a->host, a->port);
        return yti_error(YT_EBIND, "Could not bind to any of the %d %d ports tried.", tried,
                         port);
    }
    return start_host(c, fd);
}

/* Reads an int socket option; -1 when it cannot be read. */
static int sockopt_int(int fd, int level, int name)
{
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) != 0)
        return -1;
    return v;
}

/* Checks that fd is a stream socket of a family we speak, listening or not as asked. */
static int check_stream_socket(int fd, bool listening)
{
    int type = sockopt_int(fd, SOL_SOCKET, SO_TYPE);
    if (type < 0)
        return yti_error_errno(YT_EINVAL, errno, "Descriptor %d is not a socket", fd);
    if (type != SOCK_STREAM)
        return yti_error(YT_EINVAL, "Descriptor %d is not a stream socket (SOCK_STREAM)", fd);
    int dom = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN);
    if (dom != AF_INET && dom != AF_INET6 && dom != AF_UNIX)
        return yti_error(YT_EINVAL, "Descriptor %d is not a TCP or Unix domain socket", fd);
    int acc = sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN);
    if (listening && acc != 1)
        return yti_error(YT_EINVAL, "Descriptor %d is not listening (call listen() first)", fd);
    if (!listening && acc == 1)
        return yti_error(YT_EINVAL, "Descriptor %d is a listening socket (bind it with "
                         "yt_context_bind_fd)", fd);
    if (!listening) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
            return yti_error_errno(YT_EINVAL, errno, "Descriptor %d is not connected", fd);
    }
    return YT_OK;
}

/* Close-on-exec (the library owns the descriptor: a child must not inherit it by accident). */
static void own_descriptor(int fd, bool blocking)
{
    set_cloexec_nosigpipe(fd);
    if (blocking) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK))
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
}

int yti_conn_bind_fd(yt_connection *c, int fd)
{
    int rc = check_stream_socket(fd, true);
    if (rc) {
        close(fd);
        return rc;
    }
    /* Non-blocking is fine for a listener (accept is preceded by poll and retried). A socket
     * file behind it was made by someone else and is left to them. */
    own_descriptor(fd, false);
    return start_host(c, fd);
}

/* ------------------------------------------------------------------------------------------ */
/* Client                                                                                      */

/* One non-blocking connect attempt bounded by deadline, from local when given; returns fd or
 * -errno (*local_err tells a failure to bind the local address, which retrying cannot fix). */
static int try_connect(const yti_sockaddr *sa, const yti_sockaddr *local,
                       const yti_conn_config *cfg, uint64_t deadline, bool *local_err)
{
    int fd = socket(sa->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    tune_socket(fd, cfg);
    int err = 0;
    if (local && local->len) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        /* The port is picked at connect time, so a busy source address does not run out of
         * ports for bind(port 0). */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (bind(fd, (const struct sockaddr *)&local->ss, local->len) != 0) {
            err = errno;
            *local_err = true;
            close(fd);
            return -err;
        }
    }
    if (connect(fd, (const struct sockaddr *)&sa->ss, sa->len) < 0) {
        if (errno != EINPROGRESS) {
            err = errno; /* a Unix listener with a full backlog says EAGAIN: tried again */
        } else {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            double rem = yti_remaining(deadline);
            int pr;
            do {
                pr = poll(&p, 1, (int)(rem * 1000) + 1);
            } while (pr < 0 && errno == EINTR);
            socklen_t len = sizeof err;
            if (pr == 0)
                err = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
    }
    if (err) {
        close(fd);
        return -err;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    set_cloexec_nosigpipe(fd);
    return fd;
}

/* The client side of the handshake on a connected fd: greeting out, the host's in, then the
 * authentication when this end has a key. Closes fd on failure (YT_EHANDSHAKE). */
static int client_handshake(yt_connection *c, int fd, uint64_t *peer_id, long *peer_pid)
{
    /* The client speaks first, then reads the host's line. */
    char greet[YTI_GREETING_MAX];
    size_t gn = yti_greeting_format(c->id1, (long)getpid(), greet);
    int werr = yti_net_write_all(fd, greet, gn);
    char line[YTI_HANDSHAKE_LINE_MAX];
    size_t n = werr ? 0 : read_greeting(fd, line, sizeof line);
    yti_hs_result r = yti_greeting_parse(line, n, c->id1, peer_id, peer_pid);
    if (r != YTI_HS_OK) {
        close(fd);
        return yti_error(YT_EHANDSHAKE, "Could not connect: %s", yti_hs_reason(r));
    }
    char why[200];
    if (c->key) {
        if (!yti_auth_client(fd, c->key, c->key_len, yti_deadline(YTI_HANDSHAKE_TIMEOUT), why,
                             sizeof why)) {
            close(fd);
            return yti_error(YT_EHANDSHAKE, "Could not connect: %s", why);
        }
    } else if (yti_auth_challenge_pending(fd)) {
        close(fd);
        return yti_error(YT_EHANDSHAKE, "Could not connect: Authentication failed: the host "
                         "requires a key and this context has none (yt_context_set_key)");
    }
    return YT_OK;
}

/* fd passed the handshake on the caller's thread (a client, or an adopted host end; the host
 * side has recorded its peer already): record it and start both IO threads. */
static int start_io(yt_connection *c, int fd, bool client, uint64_t peer_id, long peer_pid)
{
    set_nodelay(fd);
    yti_mutex_lock(&c->lock);
    c->fd = fd;
    sockname(fd, false, c->host1, sizeof c->host1, &c->port1);
    if (client) {
        c->id2 = peer_id;
        c->pid2 = peer_pid;
        sockname(fd, true, c->host2, sizeof c->host2, &c->port2);
    }
    atomic_store(&c->state, client ? YTI_CONNECTED : YTI_HOSTING);
    yti_mutex_unlock(&c->lock);

    int rc = start_sender(c);
    if (rc == YT_OK)
        rc = yti_thread_start(&c->io_thread, receiver_main, c, "yt-recv", IO_STACK);
    if (rc) {
        general_close(c, "Cannot start the IO threads", false);
        io_exit(c);
        return rc;
    }
    return YT_OK;
}

int yti_conn_connect(yt_connection *c, const yti_address *a, double timeout)
{
    if (timeout < 0)
        timeout = 1.0;
    if (timeout < 0.01)
        timeout = 0.01;
    yti_sockaddr sa, local;
    memset(&local, 0, sizeof local);
    int rc = yti_net_sockaddr(a, false, &sa);
    if (rc)
        return rc;
    if (c->local_host[0]) {
        if (a->kind == YTI_ADDR_IPC)
            return yti_error(YT_EINVAL, "A local address applies to TCP only, not to %s",
                             a->path);
        if ((rc = yti_net_resolve_host(c->local_host, sa.ss.ss_family, &local)) != YT_OK)
            return rc;
    }
    bool ipc = a->kind == YTI_ADDR_IPC;
    uint64_t deadline = yti_deadline(timeout);
    int fd;
    for (;;) {
        bool local_err = false;
        fd = try_connect(&sa, &local, &c->cfg, deadline, &local_err);
        if (fd >= 0)
            break;
        if (local_err)
            return yti_error_errno(YT_ECONNECT, -fd, "Cannot bind the local address %s",
                                   c->local_host);
        double rem = yti_remaining(deadline);
        if (rem <= 0) {
            if (ipc)
                return yti_error_errno(YT_ECONNECT, -fd, "Cannot connect to %s", a->path);
            return yti_error_errno(YT_ECONNECT, -fd, "Cannot connect to %s on %d", a->host,
                                   a->port);
        }
        double pause = timeout / 100;
        yti_sleep(pause < rem ? pause : rem);
    }

    uint64_t peer_id = 0;
    long peer_pid = 0;
    rc = client_handshake(c, fd, &peer_id, &peer_pid);
    if (rc)
        return rc;
    return start_io(c, fd, true, peer_id, peer_pid);
}

int yti_conn_adopt(yt_connection *c, int fd, bool host)
{
    int rc = check_stream_socket(fd, false);
    if (rc) {
        close(fd);
        return rc;
    }
    own_descriptor(fd, true);
    if (!host) {
        uint64_t peer_id = 0;
        long peer_pid = 0;
        rc = client_handshake(c, fd, &peer_id, &peer_pid);
        if (rc)
            return rc;
        return start_io(c, fd, true, peer_id, peer_pid);
    }
    if (!host_handshake(c, fd)) {
        close(fd);
        yti_mutex_lock(&c->lock);
        char *why = c->refusal ? strdup(c->refusal) : NULL;
        yti_mutex_unlock(&c->lock);
        rc = yti_error(YT_EHANDSHAKE, "Handshake failed: %s", why ? why : "unknown reason");
        free(why);
        return rc;
    }
    return start_io(c, fd, false, 0, 0);
}

int yti_conn_set_key(yt_connection *c, const unsigned char *key, size_t len)
{
    if (len == 0)
        return YT_OK;
    c->key = malloc(len);
    if (!c->key)
        return yti_error(YT_ENOMEM, "Out of memory");
    memcpy(c->key, key, len);
    c->key_len = len;
    return YT_OK;
}

int yti_conn_set_local(yt_connection *c, const char *host)
{
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof c->local_host)
        return yti_error(YT_EADDR, "Invalid local address '%s'", host);
    memcpy(c->local_host, host, n + 1);
    return YT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Queueing, flushing, closing                                                                 */

bool yti_conn_queue_full(yt_connection *c)
{
    /* Called under the context lock, which every bounded push holds: only the sender can change
     * the length meanwhile, and only downwards. */
    return yti_queue_len_hint(c->outq) >= yti_queue_max(c->outq);
}

/* The out-queue's high mark: YTI_OUTQ_THRESHOLD, but never above half the queue's bound (with
 * at least the reference's 64), so that a small queue still holds a fast sender back before it
 * fills and discards; a queue of at most 128 packages behaves as the reference's (64 and 64). */
static size_t outq_high(yt_connection *c)
{
    size_t half = yti_queue_max(c->outq) / 2;
    size_t high = half < YTI_OUTQ_LOW ? YTI_OUTQ_LOW : half;
    return high < YTI_OUTQ_THRESHOLD ? high : YTI_OUTQ_THRESHOLD;
}

bool yti_conn_congested(yt_connection *c)
{
    return (yti_queue_len_hint(c->outq) > outq_high(c) ||
            yti_queue_bytes_hint(c->outq) > YTI_OUTQ_BYTES) &&
           yti_conn_state(c) >= YTI_HOSTING;
}

bool yti_conn_direct_idle(uint64_t now, uint64_t prev_send, uint64_t last_direct,
                          uint64_t last_rx, size_t bytes)
{
    return now - prev_send >= DIRECT_GAP_NS &&
           (now - last_direct >= DIRECT_AFTER_NS || last_rx >= prev_send || bytes >= DIRECT_LARGE);
}

uint64_t yti_conn_direct_taken(yt_connection *c)
{
    return atomic_load_explicit(&c->direct_taken, memory_order_relaxed);
}

bool yti_conn_reserve_direct(yt_connection *c, size_t n, size_t bytes)
{
    if (yti_conn_state(c) < YTI_HOSTING || yti_queue_len_hint(c->outq) != 0)
        return false;
    /* Only a send that finds the link idle for a while (the queue empty, no send found it so
     * for 5 us, and no direct write ended in the last 2 us unless a reply came or the send is
     * large): the rest of a stream is left to the sender thread, which writes many packages
     * per system call. A stream that keeps the sender busy thus writes directly only now and
     * then, when the sender has caught up. Measured: allowing a few direct writes in a row (a
     * request and its announcement) halved the 16 B stream (docs/benchmarks.md). */
    uint64_t now = yti_now();
    uint64_t prev = atomic_exchange_explicit(&c->last_send, now, memory_order_relaxed);
    uint64_t last_direct = atomic_load_explicit(&c->last_direct, memory_order_relaxed);
    uint64_t last_rx = atomic_load_explicit(&c->last_rx, memory_order_relaxed);
    if (!yti_conn_direct_idle(now, prev, last_direct, last_rx, bytes))
        return false;
    if (!yti_mutex_trylock(&c->wlock))
        return false;
    /* The queue is re-checked under the write lock: the sender pops only while holding it, and
     * nothing is pushed while the caller holds the context lock. */
    if (c->wfd < 0 || c->npending || yti_queue_len_hint(c->outq) != 0) {
        yti_mutex_unlock(&c->wlock);
        return false;
    }
    atomic_fetch_add_explicit(&c->direct_taken, n, memory_order_relaxed);
    return true;
}

void yti_conn_write_direct(yt_connection *c, yti_pkg **v, size_t n)
{
    unsigned char hdr[YTI_DIRECT_MAX][YTI_HEADER_SIZE];
    struct iovec iov[2 * YTI_DIRECT_MAX];
    struct msghdr mh = {0};
    size_t k = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        k += pkg_iov(v[i], hdr[i], 0, iov + k);
        total += YTI_HEADER_SIZE + v[i]->len;
    }
    mh.msg_iov = iov;
    mh.msg_iovlen = k;
    ssize_t w;
    do {
        w = sendmsg(c->wfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (w < 0 && errno == EINTR);
    /* On an error the sender meets it again and closes the connection with its reason. */
    if (w < 0)
        w = 0;
    atomic_store_explicit(&c->last_direct, yti_now(), memory_order_relaxed);
    if ((size_t)w == total) {
        yti_mutex_unlock(&c->wlock);
        for (size_t i = 0; i < n; i++)
            yti_pkg_unref(v[i]);
        count_written(c, n);
        return;
    }
    /* The socket took only part: the sender thread writes the rest, blocking as it may and
     * the caller may not, before anything else. */
    size_t off = (size_t)w, i = 0, whole = 0;
    while (off >= YTI_HEADER_SIZE + v[i]->len) {
        off -= YTI_HEADER_SIZE + v[i]->len;
        yti_pkg_unref(v[i++]);
        whole++;
    }
    for (c->npending = 0; i < n; i++)
        c->pending[c->npending++] = v[i];
    c->pending_off = off;
    yti_mutex_unlock(&c->wlock);
    if (whole)
        count_written(c, whole);
    yti_queue_kick(c->outq);
}

void yti_conn_push(yt_connection *c, yti_pkg *p)
{
    yti_queue_push(c->outq, p);
}

void yti_conn_push_unbounded(yt_connection *c, yti_pkg *p)
{
    yti_queue_push_unbounded(c->outq, p);
}

void yti_conn_throttle(yt_connection *c, uint64_t deadline)
{
    yti_queue_wait_below(c->outq, YTI_OUTQ_LOW, YTI_OUTQ_LOW_BYTES, deadline);
}

static int flush_until(yt_connection *c, uint64_t deadline)
{
    /* Every package pushed before now leaves the queue either through the sender (then it is
     * counted in `written` once on the socket) or by being discarded as the oldest. */
    uint64_t target = yti_queue_pushed(c->outq) +
                      atomic_load_explicit(&c->direct_taken, memory_order_relaxed);
    bool old_mode = c->cfg.discard == YT_DISCARD_OLD;
    int rc = YT_OK;
    yti_mutex_lock(&c->lock);
    c->flush_waiters++;
    for (;;) {
        uint64_t done = c->written + (old_mode ? yti_queue_discarded(c->outq) : 0);
        if (done >= target)
            break;
        int st = yti_conn_state(c);
        if (st == YTI_CLOSED) {
            rc = yti_error(YT_ECLOSED, "The connection closed while flushing");
            break;
        }
        if (!yti_cond_until(&c->cond, &c->lock, deadline) && yti_remaining(deadline) == 0) {
            rc = yti_error(YT_ETIMEDOUT, "Flushing the connection timed out");
            break;
        }
    }
    c->flush_waiters--;
    yti_mutex_unlock(&c->lock);
    return rc;
}

int yt_connection_flush(yt_connection *c, double timeout)
{
    if (!c)
        return yti_error(YT_EINVAL, "No connection");
    if (yti_conn_state(c) < YTI_HOSTING)
        return yti_error(YT_ESTATE, "Cannot flush: the connection is not connected");
    yt_context *ctx = conn_ctx(c);
    if (ctx)
        yti_context_touch(ctx);
    return flush_until(c, yti_deadline(timeout));
}

/* Joins the io thread exactly once, however many closers ask; the others wait for it. */
static void join_io(yt_connection *c)
{
    if (on_own_thread(c))
        return;
    yti_mutex_lock(&c->lock);
    if (c->io_joined || !c->io_thread.started) {
        yti_mutex_unlock(&c->lock);
        return;
    }
    if (c->io_joining) {
        while (!c->io_joined)
            yti_cond_wait(&c->cond, &c->lock);
        yti_mutex_unlock(&c->lock);
        return;
    }
    c->io_joining = true;
    yti_mutex_unlock(&c->lock);
    yti_thread_join(&c->io_thread);
    yti_mutex_lock(&c->lock);
    c->io_joined = true;
    yti_cond_broadcast(&c->cond);
    yti_mutex_unlock(&c->lock);
}

void yti_conn_shutdown(yt_connection *c, const char *reason)
{
    general_close(c, reason, true);
    join_io(c);
}

/* Waits until everything queued, the close package included, is written, for as long as the
 * sender keeps making progress (a backlog to a slow peer must not be cut off after a fixed
 * time), giving up once nothing was written for the connection's timeout (at least 1 s). */
static void flush_while_progressing(yt_connection *c)
{
    double step = atomic_load(&c->timeout);
    if (step < 1.0)
        step = 1.0;
    uint64_t last = UINT64_MAX;
    for (;;) {
        if (flush_until(c, yti_deadline(step)) != YT_ETIMEDOUT)
            return;
        yti_mutex_lock(&c->lock);
        uint64_t now_written = c->written;
        yti_mutex_unlock(&c->lock);
        if (now_written == last)
            return;
        last = now_written;
    }
}

/* Bytes written to fd that the peer has not acknowledged yet (0 when unknown). */
static int unacked(int fd)
{
    int n = 0;
    if (fd < 0 || ioctl(fd, SIOCOUTQ, &n) < 0)
        return 0;
    return n;
}

/*
 * The end of an orderly close: half-close, then let the receiver read until the peer, told by
 * the close package, closes its end. Two ways a close can lose what was sent are avoided:
 * closing while the peer has not yet taken all our bytes, and closing with unread bytes (a
 * peer's heartbeats) in our receive buffer; the latter makes the kernel reset the connection and
 * drop whatever it still had to send. So this waits for the peer's end-of-file as long as the
 * peer keeps acknowledging our bytes, giving up when it took nothing for the connection's
 * timeout, and at most LINGER once everything was acknowledged.
 */
static void linger(yt_connection *c)
{
    double to = atomic_load(&c->timeout);
    uint64_t idle_limit = (uint64_t)((to > LINGER ? to : LINGER) * 1e9);
    uint64_t start = yti_now(), progress = start;
    yti_mutex_lock(&c->lock);
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_WR);
    int last = unacked(c->fd);
    while (!c->rx_eof && !c->io_exited) {
        yti_cond_until(&c->cond, &c->lock, yti_now() + 50000000u);
        if (c->rx_eof || c->io_exited)
            break;
        uint64_t now = yti_now();
        int q = c->fd >= 0 ? unacked(c->fd) : 0;
        if (q > 0) {
            if (q < last) {
                last = q;
                progress = now;
            } else if (now - progress > idle_limit) {
                break; /* the peer stopped taking data */
            }
        } else if (now - start > (uint64_t)(LINGER * 1e9)) {
            break; /* all acknowledged; the peer did not close its end in time */
        }
    }
    yti_mutex_unlock(&c->lock);
}

static void general_close(yt_connection *c, const char *reason, bool notify)
{
    yti_mutex_lock(&c->lock);
    int st = yti_conn_state(c);
    if (st <= YTI_CLOSING) {
        yti_mutex_unlock(&c->lock);
        return;
    }
    atomic_store(&c->state, YTI_CLOSING);
    c->reason = strdup(reason);
    yti_mutex_unlock(&c->lock);

    if (notify && st >= YTI_HOSTING && !yti_thread_is_self(&c->send_thread)) {
        yti_pkg *p = yti_pkg_new(0);
        if (p) {
            p->slot = YTI_SLOT_DUMMY;
            p->source_seq = 1; /* the close package */
            yti_queue_push_unbounded(c->outq, p);
            flush_while_progressing(c);
        }
        if (!on_own_thread(c))
            linger(c);
    }

    yti_mutex_lock(&c->lock);
    atomic_store(&c->state, YTI_CLOSED);
    /* An orderly close that gave up waiting while the peer still had not taken all our bytes
     * (a peer stalled for longer than the linger allows): shutting the read side down, or
     * closing, would make the kernel answer the peer's next bytes (a heartbeat) with a reset
     * and drop what it still had to send. The socket goes to a reaper thread instead, which
     * reads and discards until the peer has taken everything (see reaper_main). */
    c->handoff = notify && st >= YTI_HOSTING && c->fd >= 0 && !c->rx_eof && unacked(c->fd) > 0;
    if (c->fd >= 0)
        shutdown(c->fd, c->handoff ? SHUT_WR : SHUT_RDWR);
    if (c->listen_fd >= 0)
        shutdown(c->listen_fd, SHUT_RDWR);
    if (c->hs_fd >= 0)
        shutdown(c->hs_fd, SHUT_RDWR);
    yti_cond_broadcast(&c->cond);
    yti_mutex_unlock(&c->lock);
    /* The receiver and a leader wait in epoll (a handed-off socket is not shut down for
     * reading, and a shutdown wakes only one of them). */
    kick_receiver(c);
    kick_leader(c);
    yti_queue_close(c->outq);

    emit_closed_once(c);
}

void yt_connection_close(yt_connection *c, const char *reason)
{
    if (!c)
        return;
    general_close(c, reason ? reason : "Closed on command.", true);
    join_io(c);
}

void yt_connection_close_on_problem(yt_connection *c, const char *reason)
{
    if (!c)
        return;
    general_close(c, reason ? reason : "Unspecified problem", false);
    join_io(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Properties                                                                                  */

yt_signal *yt_connection_timedout_signal(yt_connection *c)
{
    return c ? c->timedout_sig : NULL;
}

yt_signal *yt_connection_closed_signal(yt_connection *c)
{
    return c ? c->closed_sig : NULL;
}

int yt_connection_set_timeout(yt_connection *c, double seconds)
{
    if (!c || !(seconds >= YTI_TIMEOUT_MIN))
        return yti_error(YT_EINVAL, "timeout must be at least %1.2f.", YTI_TIMEOUT_MIN);
    atomic_store(&c->timeout, seconds);
    return YT_OK;
}

double yt_connection_timeout(yt_connection *c)
{
    return c ? atomic_load(&c->timeout) : 0.0;
}

bool yt_connection_is_alive(yt_connection *c)
{
    return c && yti_conn_state(c) >= YTI_WAITING;
}

bool yt_connection_is_connected(yt_connection *c)
{
    return c && yti_conn_state(c) >= YTI_HOSTING;
}

bool yt_connection_is_waiting(yt_connection *c)
{
    return c && yti_conn_state(c) == YTI_WAITING;
}

const char *yt_connection_name(yt_connection *c)
{
    return c ? c->name : "";
}

int yt_connection_set_name(yt_connection *c, const char *name)
{
    if (!c || !name)
        return yti_error(YT_EINVAL, "name must be a string.");
    char *n = strdup(name);
    if (!n)
        return yti_error(YT_ENOMEM, "Out of memory");
    yti_mutex_lock(&c->lock);
    char *old = c->name;
    c->name = n;
    yti_mutex_unlock(&c->lock);
    /* The old name may still be read by a caller of yt_connection_name on another thread;
     * renaming while another thread reads the name is documented as the caller's race. */
    free(old);
    return YT_OK;
}

bool yti_conn_name_is(yt_connection *c, const char *name)
{
    yti_mutex_lock(&c->lock);
    bool eq = strcmp(c->name, name) == 0;
    yti_mutex_unlock(&c->lock);
    return eq;
}

/* Copies src into buf (NUL-terminated); YT_EINVAL "Buffer too small" when it had to cut. */
static int copy_out(const char *src, char *buf, size_t size)
{
    size_t n = strlen(src);
    int rc = YT_OK;
    if (n >= size) {
        n = size - 1;
        rc = yti_error(YT_EINVAL, "Buffer too small");
    }
    memcpy(buf, src, n);
    buf[n] = '\0';
    return rc;
}

static int copy_text(yt_connection *c, const char *src, char *buf, size_t size)
{
    if (!c || !buf || size == 0)
        return yti_error(YT_EINVAL, "Invalid buffer");
    yti_mutex_lock(&c->lock);
    int rc = copy_out(src, buf, size);
    yti_mutex_unlock(&c->lock);
    return rc;
}

int yt_connection_hostname1(yt_connection *c, char *buf, size_t size)
{
    return copy_text(c, c ? c->host1 : "", buf, size);
}

int yt_connection_hostname2(yt_connection *c, char *buf, size_t size)
{
    return copy_text(c, c ? c->host2 : "", buf, size);
}

int yt_connection_port1(yt_connection *c)
{
    if (!c)
        return 0;
    yti_mutex_lock(&c->lock);
    int p = c->port1;
    yti_mutex_unlock(&c->lock);
    return p;
}

int yt_connection_port2(yt_connection *c)
{
    if (!c)
        return 0;
    yti_mutex_lock(&c->lock);
    int p = yti_conn_state(c) >= YTI_HOSTING || c->reason ? c->port2 : 0;
    yti_mutex_unlock(&c->lock);
    return p;
}

uint64_t yt_connection_id1(yt_connection *c)
{
    return c ? c->id1 : 0;
}

uint64_t yt_connection_id2(yt_connection *c)
{
    if (!c)
        return 0;
    yti_mutex_lock(&c->lock);
    uint64_t id = c->id2;
    yti_mutex_unlock(&c->lock);
    return id;
}

long yt_connection_pid1(yt_connection *c)
{
    (void)c;
    return (long)getpid();
}

long yt_connection_pid2(yt_connection *c)
{
    if (!c)
        return 0;
    yti_mutex_lock(&c->lock);
    long p = c->pid2;
    yti_mutex_unlock(&c->lock);
    return p;
}

const char *yt_connection_close_reason(yt_connection *c)
{
    if (!c || yti_conn_state(c) != YTI_CLOSED)
        return NULL;
    yti_mutex_lock(&c->lock);
    const char *r = c->reason;
    yti_mutex_unlock(&c->lock);
    return r;
}

uint64_t yt_connection_discarded(yt_connection *c)
{
    return c ? yti_queue_discarded(c->outq) : 0;
}

int yt_connection_last_refusal(yt_connection *c, char *buf, size_t size)
{
    if (!c || !buf || size == 0)
        return yti_error(YT_EINVAL, "Invalid buffer");
    yti_mutex_lock(&c->lock);
    int rc = copy_out(c->refusal ? c->refusal : "", buf, size);
    yti_mutex_unlock(&c->lock);
    return rc;
}

/*
 * context.c - a node of the network: connections, routing, and the slots of its channels.
 *
 * Routing follows the reference exactly (spec 10): every package sent here gets the context's id
 * and the next sequence number and goes to the out-queue of every alive connection (waiting ones
 * included), or to the startup queue while there is none; the first connection made afterwards
 * takes the startup queue. A received package is dropped when its source sequence number is not
 * above the last one seen from that source (this is what stops duplicates in a cycle), then
 * forwarded to every other alive connection when it is not addressed to this context alone, and
 * deposited here when addressed to everybody or to this context. Unlike the reference, packages
 * whose source is this very context are dropped (quirk Q20: they can only have come round a
 * cycle).
 *
 * Threads: user threads send (channels) and manage connections; receiver threads deliver. One
 * mutex (the context lock, first in the lock order, see core.h) guards the connection list, the
 * source map, both counters and the slot tables. Sending and forwarding push while holding it,
 * so every out-queue sees one source's packages in sequence order; pushes never wait there.
 * A sender is held back by congested out-queues before it takes the lock.
 */
#include "auth.h"
#include "core.h"
#include "uid.h"
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NEW_CONNECTION "NEW_CONNECTION"

typedef struct slot_entry {
    uint64_t slot;
    yt_channel *ch;
} slot_entry;

typedef struct slot_table {
    slot_entry *v;
    size_t n, cap;
} slot_table;

/* Open-addressing map from source id to the last sequence number seen. Never pruned (as in the
 * reference): one entry per context ever heard of. Key 0 marks an empty cell; source id 0 is
 * kept apart. */
typedef struct source_map {
    uint64_t *keys;
    uint64_t *vals;
    size_t cap, n;
    uint64_t zero_val;
} source_map;

struct yt_context {
    yti_mutex lock;
    uint64_t id;
    yti_conn_config cfg;
    yt_context_options opts;
    atomic_uint_least64_t app_alive;
    atomic_uint holds; /* channel code using the context without its lock (yti_context_hold) */

    yt_connection **conns; /* each holds a reference */
    size_t nconns, capconns;
    yti_queue *startup;
    uint64_t send_seq;
    uint64_t recv_seq;
    source_map sources;
    slot_table sending;
    slot_table receiving;

    /* Guarded by lock: the authentication key given to connections opened from now on. */
    unsigned char *key;
    size_t key_len;
};

/* ------------------------------------------------------------------------------------------ */
/* Source map                                                                                  */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static uint64_t *map_find(source_map *m, uint64_t key, bool *found)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)mix64(key) & mask;
    while (m->keys[i] != 0 && m->keys[i] != key)
        i = (i + 1) & mask;
    *found = m->keys[i] == key;
    return &m->keys[i];
}

static bool map_grow(source_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    uint64_t *nk = calloc(ncap, sizeof *nk), *nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return false;
    }
    source_map old = *m;
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i]) {
            bool f;
            uint64_t *slot = map_find(m, old.keys[i], &f);
            *slot = old.keys[i];
            m->vals[slot - m->keys] = old.vals[i];
        }
    }
    free(old.keys);
    free(old.vals);
    return true;
}

/* Returns false when p must be dropped (not newer than the last package from its source). */
static bool map_check_and_update(source_map *m, uint64_t key, uint64_t seq)
{
    if (key == 0) {
        if (seq <= m->zero_val)
            return false;
        m->zero_val = seq;
        return true;
    }
    if ((m->n + 1) * 4 >= m->cap * 3 && !map_grow(m))
        return seq != 0; /* out of memory: deliver rather than lose, dedupe degraded */
    bool found;
    uint64_t *k = map_find(m, key, &found);
    uint64_t *v = &m->vals[k - m->keys];
    if (found && seq <= *v)
        return false;
    if (!found) {
        if (seq == 0)
            return false;
        *k = key;
        m->n++;
    }
    *v = seq;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Creation                                                                                    */

void yt_context_options_init(yt_context_options *o)
{
    memset(o, 0, sizeof *o);
    o->queue_size = 10000;
    o->discard = YT_DISCARD_OLD;
    o->max_package_size = (size_t)1 << 30;
    o->heartbeat = YT_HEARTBEAT_IO;
}

int yt_context_new(const yt_context_options *opts, yt_context **out)
{
    yt_context_options o;
    if (opts)
        o = *opts;
    else
        yt_context_options_init(&o);
    if (!out)
        return yti_error(YT_EINVAL, "out is NULL");
    if (o.queue_size == 0)
        return yti_error(YT_EINVAL, "queue_size must be at least 1");
    if (o.discard != YT_DISCARD_OLD && o.discard != YT_DISCARD_NEW)
        return yti_error(YT_EINVAL, "discard must be YT_DISCARD_OLD or YT_DISCARD_NEW");
    if (o.heartbeat != YT_HEARTBEAT_IO && o.heartbeat != YT_HEARTBEAT_APP)
        return yti_error(YT_EINVAL, "Unknown heartbeat policy");
    if (o.max_package_size == 0)
        o.max_package_size = (size_t)1 << 30;
    yt_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return yti_error(YT_ENOMEM, "Out of memory");
    ctx->startup = yti_queue_new(o.queue_size, o.discard);
    if (!ctx->startup || !map_grow(&ctx->sources)) {
        yti_queue_free(ctx->startup);
        free(ctx->sources.keys);
        free(ctx->sources.vals);
        free(ctx);
        return yti_error(YT_ENOMEM, "Out of memory");
    }
    ctx->opts = o;
    ctx->id = yti_uid_new();
    ctx->cfg.queue_size = o.queue_size;
    ctx->cfg.discard = o.discard;
    ctx->cfg.max_package_size = o.max_package_size;
    ctx->cfg.sndbuf = o.sndbuf;
    ctx->cfg.rcvbuf = o.rcvbuf;
    ctx->cfg.loop = o.loop ? o.loop : yt_loop_default();
    ctx->cfg.heartbeat = o.heartbeat;
    ctx->cfg.app_alive = &ctx->app_alive;
    atomic_init(&ctx->app_alive, yti_now());
    yti_mutex_init(&ctx->lock);
    *out = ctx;
    return YT_OK;
}

/* Takes the connection list out of the context (the caller owns the references). */
static yt_connection **take_conns(yt_context *ctx, size_t *n)
{
    yti_mutex_lock(&ctx->lock);
    yt_connection **v = ctx->conns;
    *n = ctx->nconns;
    ctx->conns = NULL;
    ctx->nconns = ctx->capconns = 0;
    yti_mutex_unlock(&ctx->lock);
    return v;
}

void yti_context_hold(yt_context *ctx)
{
    atomic_fetch_add_explicit(&ctx->holds, 1, memory_order_acquire);
}

void yti_context_unhold(yt_context *ctx)
{
    atomic_fetch_sub_explicit(&ctx->holds, 1, memory_order_release);
}

void yt_context_free(yt_context *ctx)
{
    if (!ctx)
        return;
    yt_context_close_channels(ctx);
    /* No channel can take a new hold now (they are all detached); wait for the ones in flight,
     * e.g. a replier thread sending its reply. Each is short (a send waits at most 1 s). */
    while (atomic_load_explicit(&ctx->holds, memory_order_acquire) > 0)
        yti_sleep(0.001);
    size_t n;
    yt_connection **v = take_conns(ctx, &n);
    for (size_t i = 0; i < n; i++) {
        yti_conn_shutdown(v[i], "Closed by the context.");
        yti_conn_detach(v[i]);
        yt_connection_release(v[i]);
    }
    free(v);
    yti_queue_free(ctx->startup);
    free(ctx->sources.keys);
    free(ctx->sources.vals);
    free(ctx->sending.v);
    free(ctx->receiving.v);
    if (ctx->key) {
        OPENSSL_cleanse(ctx->key, ctx->key_len);
        free(ctx->key);
    }
    yti_mutex_destroy(&ctx->lock);
    free(ctx);
}

void yt_context_close(yt_context *ctx)
{
    if (!ctx)
        return;
    size_t n;
    yt_connection **v = take_conns(ctx, &n);
    for (size_t i = 0; i < n; i++) {
        yti_conn_shutdown(v[i], "Closed by the context.");
        yt_connection_release(v[i]);
    }
    free(v);
    yt_context_close_channels(ctx);
}

uint64_t yt_context_id(const yt_context *ctx)
{
    return ctx ? ctx->id : 0;
}

uint64_t yti_context_own_id(const yt_context *ctx)
{
    return ctx->id;
}

yt_loop *yti_context_loop(yt_context *ctx)
{
    return ctx->cfg.loop;
}

const yti_conn_config *yti_context_config(yt_context *ctx)
{
    return &ctx->cfg;
}

void yti_context_touch(yt_context *ctx)
{
    atomic_store_explicit(&ctx->app_alive, yti_now(), memory_order_relaxed);
}

void yt_context_alive(yt_context *ctx)
{
    if (ctx)
        yti_context_touch(ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                 */

/* Drops closed connections from the list. Called with the lock held; the references to
 * release are returned so that they are dropped outside the lock. */
static size_t prune_locked(yt_context *ctx, yt_connection **dead, size_t cap)
{
    size_t w = 0, nd = 0;
    for (size_t i = 0; i < ctx->nconns; i++) {
        yt_connection *c = ctx->conns[i];
        if (nd < cap && yti_conn_finished(c))
            dead[nd++] = c;
        else
            ctx->conns[w++] = c;
    }
    ctx->nconns = w;
    return nd;
}

static void release_all(yt_connection **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        yt_connection_release(v[i]);
}

#define PRUNE_BATCH 64

static void prune(yt_context *ctx)
{
    yt_connection *dead[PRUNE_BATCH];
    size_t nd;
    do {
        yti_mutex_lock(&ctx->lock);
        nd = prune_locked(ctx, dead, PRUNE_BATCH);
        yti_mutex_unlock(&ctx->lock);
        release_all(dead, nd);
    } while (nd == PRUNE_BATCH);
}

/* Lists c and moves the startup queue into it. */
static int add_connection(yt_context *ctx, yt_connection *c)
{
    yti_mutex_lock(&ctx->lock);
    if (ctx->nconns == ctx->capconns) {
        size_t ncap = ctx->capconns ? ctx->capconns * 2 : 8;
        yt_connection **nv = realloc(ctx->conns, ncap * sizeof *nv);
        if (!nv) {
            yti_mutex_unlock(&ctx->lock);
            return yti_error(YT_ENOMEM, "Out of memory");
        }
        ctx->conns = nv;
        ctx->capconns = ncap;
    }
    yti_pkg *p;
    while (yti_queue_pop(ctx->startup, 0, &p) == YT_OK)
        yti_conn_push_unbounded(c, p);
    ctx->conns[ctx->nconns++] = yt_connection_ref(c);
    yti_mutex_unlock(&ctx->lock);
    return YT_OK;
}

/* How a connection is opened: the address parsed (NULL for a descriptor) and the rest. */
typedef struct open_args {
    int max_tries;
    double timeout;
    const char *local; /* connect: local host to bind first, or NULL */
    int fd;            /* adopt / bind_fd: the descriptor (consumed) */
    bool host;         /* adopt: run the host side of the handshake */
} open_args;

typedef int (*open_fn)(yt_connection *, const yti_address *, const open_args *);

/* Copies the context's key into c. */
static int give_key(yt_context *ctx, yt_connection *c)
{
    yti_mutex_lock(&ctx->lock);
    int rc = yti_conn_set_key(c, ctx->key, ctx->key_len);
    yti_mutex_unlock(&ctx->lock);
    return rc;
}

/* What bind, connect and adopt share: parse (when there is an address), make the connection,
 * let `open` bind, connect or adopt, then list it (the startup queue moves in). Returns the
 * connection (the caller's reference). A descriptor in args is closed on every failure. */
static int open_connection(yt_context *ctx, const char *address, const char *name, open_fn open,
                           const open_args *args, yt_connection **out)
{
    yti_address a;
    int rc;
    if (address && (rc = yti_address_parse(address, &a)) != YT_OK) {
        if (args->fd >= 0)
            close(args->fd);
        return rc;
    }
    yti_context_touch(ctx);
    prune(ctx);
    yt_connection *c = yti_conn_new(ctx, ctx->id, &ctx->cfg, name);
    if (!c || (rc = give_key(ctx, c)) != YT_OK ||
        (args->local && (rc = yti_conn_set_local(c, args->local)) != YT_OK)) {
        if (args->fd >= 0)
            close(args->fd);
        if (!c)
            return yti_error(YT_ENOMEM, "Out of memory");
        char detail[512];
        snprintf(detail, sizeof detail, "%s", yt_last_error());
        yt_connection_release(c);
        return yti_error(rc, "%s", detail);
    }
    /* Opened first, listed after: a failed bind or connect leaves the startup queue as it was.
     * Packages sent in between go to the startup queue and move into the connection when it is
     * listed; nothing else can reach its out-queue before that. */
    rc = open(c, address ? &a : NULL, args);
    if (rc == YT_OK && (rc = add_connection(ctx, c)) != YT_OK)
        yti_conn_shutdown(c, "Out of memory");
    if (rc) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", yt_last_error());
        yt_connection_release(c);
        return yti_error(rc, "%s", detail);
    }
    *out = c;
    return YT_OK;
}

static int open_bind(yt_connection *c, const yti_address *a, const open_args *args)
{
    return yti_conn_bind(c, a, args->max_tries);
}

static int open_connect(yt_connection *c, const yti_address *a, const open_args *args)
{
    return yti_conn_connect(c, a, args->timeout);
}

static int open_bind_fd(yt_connection *c, const yti_address *a, const open_args *args)
{
    (void)a;
    return yti_conn_bind_fd(c, args->fd);
}

static int open_adopt(yt_connection *c, const yti_address *a, const open_args *args)
{
    (void)a;
    return yti_conn_adopt(c, args->fd, args->host);
}

/* Hands the caller its reference, or drops it when the caller did not ask for one. */
static void give(yt_connection *c, yt_connection **out)
{
    if (out)
        *out = c;
    else
        yt_connection_release(c);
}

int yt_context_bind(yt_context *ctx, const char *address, int max_tries, const char *name,
                    yt_connection **out)
{
    if (!ctx || !address)
        return yti_error(YT_EINVAL, "Address should be in format 'host:port'.");
    yt_connection *c = NULL;
    open_args args = {.max_tries = max_tries, .fd = -1};
    int rc = open_connection(ctx, address, name, open_bind, &args, &c);
    if (rc == YT_OK)
        give(c, out);
    return rc;
}

/* Broadcasts a context message (slot 2). */
static void send_context_message(yt_context *ctx, const char *text)
{
    yti_pkg *p = yti_pkg_from(text, strlen(text), YTI_SLOT_CONTEXT, 0, 0);
    if (p)
        yti_context_send(ctx, p);
}

static void notify_new_connection(yt_context *ctx);

/* A connection made from this side: announce it, as connect does. */
static void announce(yt_context *ctx)
{
    /* As the reference: the connecting side announces itself, so that state channels
     * everywhere re-send their state for the newcomer. */
    send_context_message(ctx, NEW_CONNECTION);
    notify_new_connection(ctx);
}

int yt_context_connect_from(yt_context *ctx, const char *address, const char *local,
                            double timeout, const char *name, yt_connection **out)
{
    if (!ctx || !address)
        return yti_error(YT_EINVAL, "Address should be in format 'host:port'.");
    yt_connection *c = NULL;
    open_args args = {.max_tries = 1, .timeout = timeout, .local = local, .fd = -1};
    int rc = open_connection(ctx, address, name, open_connect, &args, &c);
    if (rc)
        return rc;
    announce(ctx);
    give(c, out);
    return YT_OK;
}

int yt_context_bind_fd(yt_context *ctx, int listen_fd, const char *name, yt_connection **out)
{
    if (!ctx || listen_fd < 0) {
        if (listen_fd >= 0)
            close(listen_fd);
        return yti_error(YT_EINVAL, ctx ? "Invalid descriptor %d" : "No context", listen_fd);
    }
    yt_connection *c = NULL;
    open_args args = {.max_tries = 1, .fd = listen_fd};
    int rc = open_connection(ctx, NULL, name, open_bind_fd, &args, &c);
    if (rc == YT_OK)
        give(c, out);
    return rc;
}

int yt_context_adopt(yt_context *ctx, int fd, yt_role role, const char *name,
                     yt_connection **out)
{
    if (!ctx || fd < 0 || (role != YT_ROLE_HOST && role != YT_ROLE_CLIENT)) {
        if (fd >= 0)
            close(fd);
        return yti_error(YT_EINVAL, !ctx ? "No context" : fd < 0 ? "Invalid descriptor %d"
                                                                 : "Unknown role",
                         fd);
    }
    yt_connection *c = NULL;
    open_args args = {.max_tries = 1, .fd = fd, .host = role == YT_ROLE_HOST};
    int rc = open_connection(ctx, NULL, name, open_adopt, &args, &c);
    if (rc)
        return rc;
    if (role == YT_ROLE_CLIENT)
        announce(ctx);
    give(c, out);
    return YT_OK;
}

/* The host half of yt_context_pair, on its own thread (both halves block in the handshake). */
typedef struct pair_job {
    yt_context *ctx;
    int fd;
    const char *name;
    yt_connection *conn;
    int rc;
    char detail[256];
} pair_job;

static void *pair_host_main(void *arg)
{
    pair_job *j = arg;
    j->rc = yt_context_adopt(j->ctx, j->fd, YT_ROLE_HOST, j->name, &j->conn);
    if (j->rc)
        snprintf(j->detail, sizeof j->detail, "%s", yt_last_error());
    return NULL;
}

int yt_context_pair(yt_context *host, yt_context *client, const char *name,
                    yt_connection **out_host, yt_connection **out_client)
{
    if (!host || !client || host == client)
        return yti_error(YT_EINVAL, "yt_context_pair needs two different contexts");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return yti_error_errno(YT_ESYS, errno, "socketpair");
    pair_job j = {.ctx = host, .fd = sv[0], .name = name};
    yti_thread t;
    atomic_init(&t.started, false);
    int rc = yti_thread_start(&t, pair_host_main, &j, "yt-pair", 0);
    if (rc) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    yt_connection *cc = NULL;
    rc = yt_context_adopt(client, sv[1], YT_ROLE_CLIENT, name, &cc);
    char detail[256];
    snprintf(detail, sizeof detail, "%s", rc ? yt_last_error() : "");
    /* A failing client closes its end, so the host's handshake ends too: the join is short. */
    yti_thread_join(&t);
    if (rc == YT_OK && j.rc == YT_OK) {
        give(j.conn, out_host);
        give(cc, out_client);
        return YT_OK;
    }
    if (cc) {
        yt_connection_close(cc, "The other end of the pair failed.");
        yt_connection_release(cc);
    }
    if (j.conn) {
        yt_connection_close(j.conn, "The other end of the pair failed.");
        yt_connection_release(j.conn);
    }
    if (rc)
        return yti_error(rc, "%s", detail);
    return yti_error(j.rc, "%s", j.detail);
}

int yt_context_set_key(yt_context *ctx, const void *key, size_t len)
{
    if (!ctx)
        return yti_error(YT_EINVAL, "No context");
    if (len != 0 && (!key || len < YTI_KEY_MIN))
        return yti_error(YT_EINVAL, "The key must be at least %d bytes long", YTI_KEY_MIN);
    if (len > YTI_KEY_MAX)
        return yti_error(YT_EINVAL, "The key must be at most %d bytes long", YTI_KEY_MAX);
    unsigned char *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return yti_error(YT_ENOMEM, "Out of memory");
        memcpy(copy, key, len);
    }
    yti_mutex_lock(&ctx->lock);
    unsigned char *old = ctx->key;
    size_t old_len = ctx->key_len;
    ctx->key = copy;
    ctx->key_len = len;
    yti_mutex_unlock(&ctx->lock);
    if (old) {
        OPENSSL_cleanse(old, old_len);
        free(old);
    }
    return YT_OK;
}

int yt_context_connect(yt_context *ctx, const char *address, double timeout, const char *name,
                       yt_connection **out)
{
    if (!ctx || !address)
        return yti_error(YT_EINVAL, "Address should be in format 'host:port'.");
    yt_connection *c = NULL;
    open_args args = {.max_tries = 1, .timeout = timeout, .fd = -1};
    int rc = open_connection(ctx, address, name, open_connect, &args, &c);
    if (rc)
        return rc;
    /* As the reference: the connecting side announces itself, so that state channels
     * everywhere re-send their state for the newcomer. */
    send_context_message(ctx, NEW_CONNECTION);
    notify_new_connection(ctx);
    give(c, out);
    return YT_OK;
}

int yt_context_flush(yt_context *ctx, double timeout)
{
    if (!ctx)
        return yti_error(YT_EINVAL, "No context");
    yti_context_touch(ctx);
    uint64_t deadline = yti_deadline(timeout);
    yt_connection *v[64];
    size_t n = 0;
    int rc = yt_context_connections(ctx, false, v, 64, &n);
    if (rc)
        return rc;
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++) {
        if (rc == YT_OK) {
            int r = yt_connection_flush(v[i], yti_remaining(deadline));
            if (r == YT_ETIMEDOUT)
                rc = r;
        }
        yt_connection_release(v[i]);
    }
    return rc;
}

size_t yt_context_connection_count(yt_context *ctx)
{
    if (!ctx)
        return 0;
    size_t n = 0;
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nconns; i++)
        n += yti_conn_state(ctx->conns[i]) >= YTI_HOSTING;
    yti_mutex_unlock(&ctx->lock);
    return n;
}

bool yti_context_is_connected(yt_context *ctx)
{
    return yt_context_connection_count(ctx) > 0;
}

int yt_context_connections(yt_context *ctx, bool include_waiting, yt_connection **arr,
                           size_t cap, size_t *n)
{
    if (!ctx || !n || (cap && !arr))
        return yti_error(YT_EINVAL, "Invalid argument");
    prune(ctx);
    size_t k = 0;
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nconns; i++) {
        int st = yti_conn_state(ctx->conns[i]);
        if (st >= YTI_HOSTING || (include_waiting && st == YTI_WAITING)) {
            if (k < cap)
                arr[k] = yt_connection_ref(ctx->conns[i]);
            k++;
        }
    }
    yti_mutex_unlock(&ctx->lock);
    *n = k;
    return YT_OK;
}

yt_connection *yt_context_connection_by_name(yt_context *ctx, const char *name)
{
    if (!ctx || !name || !name[0])
        return NULL;
    yt_connection *found = NULL;
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nconns && !found; i++) {
        yt_connection *c = ctx->conns[i];
        if (yti_conn_state(c) >= YTI_WAITING && yti_conn_name_is(c, name))
            found = yt_connection_ref(c);
    }
    yti_mutex_unlock(&ctx->lock);
    return found;
}

uint64_t yt_context_discarded(yt_context *ctx)
{
    if (!ctx)
        return 0;
    uint64_t d = yti_queue_discarded(ctx->startup);
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nconns; i++)
        d += yt_connection_discarded(ctx->conns[i]);
    yti_mutex_unlock(&ctx->lock);
    return d;
}

/* ------------------------------------------------------------------------------------------ */
/* Sending and routing                                                                         */

/* Holds the caller back while connected out-queues are congested (at most 1 s in all). Called
 * without the lock. */
static void throttle(yt_context *ctx)
{
    yt_connection *v[16];
    size_t n = 0;
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nconns && n < 16; i++)
        if (yti_conn_state(ctx->conns[i]) >= YTI_HOSTING)
            v[n++] = yt_connection_ref(ctx->conns[i]);
    yti_mutex_unlock(&ctx->lock);
    uint64_t deadline = yti_deadline(YTI_OUTQ_MAX_WAIT);
    for (size_t i = 0; i < n; i++) {
        yti_conn_throttle(v[i], deadline);
        yt_connection_release(v[i]);
    }
}

/* Whether any connected out-queue is congested (lock held). */
static bool congested_locked(yt_context *ctx)
{
    for (size_t i = 0; i < ctx->nconns; i++)
        if (yti_conn_congested(ctx->conns[i]))
            return true;
    return false;
}

int yti_context_send(yt_context *ctx, yti_pkg *p)
{
    return yti_context_send_ex(ctx, p, false);
}

#define DIRECT_MAX 8

int yti_context_send_ex(yt_context *ctx, yti_pkg *p, bool refuse_when_full)
{
    return yti_context_send_many(ctx, &p, 1, refuse_when_full);
}

int yti_context_send_many(yt_context *ctx, yti_pkg **v, size_t n, bool refuse_when_full)
{
    /* The common case takes the context lock once: congestion is seen from the queue lengths
     * (exact enough here: only senders add to them, under this lock), and only a congested
     * link sends the caller off to wait without the lock. */
    yti_mutex_lock(&ctx->lock);
    if (congested_locked(ctx)) {
        yti_mutex_unlock(&ctx->lock);
        throttle(ctx);
        yti_mutex_lock(&ctx->lock);
    }
    bool any = false, full = false;
    for (size_t i = 0; i < ctx->nconns; i++) {
        yt_connection *c = ctx->conns[i];
        if (yti_conn_state(c) >= YTI_WAITING) {
            any = true;
            full = full || (refuse_when_full && yti_conn_queue_full(c));
        }
    }
    if (!any && refuse_when_full)
        full = yti_queue_len(ctx->startup) + n > yti_queue_max(ctx->startup);
    if (full) {
        yti_mutex_unlock(&ctx->lock);
        for (size_t k = 0; k < n; k++)
            yti_pkg_unref(v[k]);
        return yti_error(YT_EFULL, "A queue on the way out is full; nothing was sent");
    }
    for (size_t k = 0; k < n; k++) {
        v[k]->source_id = ctx->id;
        v[k]->source_seq = ++ctx->send_seq;
        /* Sent packages take a place in the same local order as received ones, so that
         * "which came last here" has one answer (state channels rely on it). */
        v[k]->recv_seq = ++ctx->recv_seq;
    }
    /* A link with nothing queued and no write in progress gets the packages written by this
     * thread, after the lock is released (the reservation keeps their order). */
    yt_connection *direct[DIRECT_MAX];
    size_t nd = 0;
    /* The caller's references go to the last taker instead of being dropped at the end: with
     * one connection no reference is taken or dropped here at all. So a queueing link is
     * pushed to when the next one is found, and the last one after the loop. */
    yt_connection *queued = NULL;
    size_t bytes = 0;
    for (size_t k = 0; k < n; k++)
        bytes += v[k]->len;
    for (size_t i = 0; i < ctx->nconns; i++) {
        yt_connection *c = ctx->conns[i];
        if (yti_conn_state(c) < YTI_WAITING)
            continue;
        if (nd < DIRECT_MAX && yti_conn_reserve_direct(c, n, bytes)) {
            direct[nd++] = yt_connection_ref(c);
            continue;
        }
        if (queued)
            for (size_t k = 0; k < n; k++)
                yti_conn_push(queued, yti_pkg_ref(v[k]));
        queued = c;
    }
    /* `any` was read above: a link bound meanwhile (start_host sets WAITING without this lock)
     * may be queued here while the packages also go to the startup queue below. */
    bool give = queued && nd == 0 && any;
    bool handed = !any || give;
    if (queued)
        for (size_t k = 0; k < n; k++)
            yti_conn_push(queued, give ? v[k] : yti_pkg_ref(v[k]));
    if (!any)
        for (size_t k = 0; k < n; k++)
            yti_queue_push(ctx->startup, v[k]);
    yti_mutex_unlock(&ctx->lock);
    for (size_t i = 0; i < nd; i++) {
        bool last = i + 1 == nd && !handed;
        yti_pkg *w[YTI_DIRECT_MAX];
        for (size_t k = 0; k < n; k++)
            w[k] = last ? v[k] : yti_pkg_ref(v[k]);
        yti_conn_write_direct(direct[i], w, n);
        yt_connection_release(direct[i]);
        handed = handed || last;
    }
    if (!handed) /* every link counted in `any` closed meanwhile */
        for (size_t k = 0; k < n; k++)
            yti_pkg_unref(v[k]);
    return YT_OK;
}

static yt_channel *slot_lookup(const slot_table *t, uint64_t slot)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].slot == slot)
            return t->v[i].ch;
    return NULL;
}

#define TOUCH_MAX 8

/* Deposits the run of packages collected for one channel (lock held). */
static void flush_run(yt_channel *ch, yti_pkg **run, size_t *n)
{
    if (*n)
        yti_channel_deposit_many(ch, run, *n);
    *n = 0;
}

size_t yti_context_deliver(yt_context *ctx, yt_connection *from, yti_pkg **v, size_t n,
                           yt_channel **pause)
{
    *pause = NULL;
    yt_channel *touched[TOUCH_MAX];
    size_t nt = 0;
    yti_pkg *run[YTI_DELIVER_MAX];
    size_t nrun = 0;
    yt_channel *run_ch = NULL;
    bool new_connection = false, stop = false;
    uint64_t via = yti_conn_link_id(from);
    size_t i = 0;
    if (n > YTI_DELIVER_MAX)
        n = YTI_DELIVER_MAX;
    yti_mutex_lock(&ctx->lock);
    for (; i < n && !stop; i++) {
        yti_pkg *p = v[i];
        bool forward = p->dest_id != ctx->id;
        bool here = p->dest_id == 0 || p->dest_id == ctx->id;
        yt_channel *ch = here && p->slot != YTI_SLOT_CONTEXT ? slot_lookup(&ctx->receiving, p->slot)
                                                            : NULL;
        if (ch && ch != run_ch) {
            size_t k = 0;
            while (k < nt && touched[k] != ch)
                k++;
            if (k == nt && nt == TOUCH_MAX)
                break; /* the rest goes in the caller's next call */
        }
        if (p->source_id == ctx->id ||
            !map_check_and_update(&ctx->sources, p->source_id, p->source_seq))
            continue; /* released with the others below */
        p->via = via;
        if (here)
            p->recv_seq = ++ctx->recv_seq;
        if (forward) {
            for (size_t k = 0; k < ctx->nconns; k++) {
                yt_connection *c = ctx->conns[k];
                if (c != from && yti_conn_state(c) >= YTI_WAITING)
                    yti_conn_push(c, yti_pkg_ref(p));
            }
        }
        if (here && p->slot == YTI_SLOT_CONTEXT) {
            /* CLOSE_CONNECTION is never sent by the reference and ignored here (Q5); other
             * texts are unknown and ignored. */
            if (p->len == strlen(NEW_CONNECTION) &&
                memcmp(p->data, NEW_CONNECTION, p->len) == 0) {
                /* Channels react to it before they see what came after it. */
                new_connection = stop = true;
            }
        }
        if (!ch)
            continue;
        if (ch != run_ch) {
            flush_run(run_ch, run, &nrun);
            run_ch = ch;
            size_t k = 0;
            while (k < nt && touched[k] != ch)
                k++;
            if (k == nt)
                touched[nt++] = yti_channel_ref(ch);
        }
        run[nrun++] = yti_pkg_ref(p);
        /* A subscriber in sync mode is filled one package at a time, and the batch ends at the
         * package that fills it: the receiver then pauses instead of anything being
         * discarded. Kinds that must react to every package end the batch at each. */
        if (yti_channel_one_by_one(ch)) {
            flush_run(run_ch, run, &nrun);
            stop = yti_channel_ends_batch(ch);
        }
    }
    flush_run(run_ch, run, &nrun);
    yti_mutex_unlock(&ctx->lock);
    for (size_t k = 0; k < i; k++)
        yti_pkg_unref(v[k]);
    /* Reactions that send (sync-mode status, acknowledgements) run here, once per channel and
     * batch, without the lock, still on the receiver thread. */
    for (size_t k = 0; k < nt; k++) {
        yti_channel_after_deposit(touched[k]);
        if (!*pause && yti_channel_wants_pause(touched[k]))
            *pause = touched[k];
        else
            yti_channel_unref(touched[k]);
    }
    if (new_connection)
        notify_new_connection(ctx);
    return i;
}

int yti_context_lead(yt_context *ctx, yti_queue *q, uint64_t deadline)
{
    yt_connection *c = NULL;
    yti_mutex_lock(&ctx->lock);
    if (ctx->nconns == 1)
        c = yt_connection_ref(ctx->conns[0]);
    yti_mutex_unlock(&ctx->lock);
    if (!c)
        return YTI_LEAD_NONE;
    int r = yti_conn_lead(c, q, deadline);
    yt_connection_release(c);
    return r;
}

bool yti_context_link_alive(yt_context *ctx, uint64_t link_id)
{
    bool alive = false;
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nconns && !alive; i++)
        alive = yti_conn_link_id(ctx->conns[i]) == link_id &&
                yti_conn_state(ctx->conns[i]) >= YTI_HOSTING;
    yti_mutex_unlock(&ctx->lock);
    return alive;
}

/* Tells every sending channel that the network grew (state channels re-send their state). */
static void notify_new_connection(yt_context *ctx)
{
    yti_mutex_lock(&ctx->lock);
    size_t n = ctx->sending.n;
    yt_channel **v = n ? malloc(n * sizeof *v) : NULL;
    if (v)
        for (size_t i = 0; i < n; i++)
            v[i] = yti_channel_ref(ctx->sending.v[i].ch);
    yti_mutex_unlock(&ctx->lock);
    /* Called without the lock (a state channel sends from here); the references keep a
     * channel that its owner frees meanwhile alive until this is done with it. */
    for (size_t i = 0; v && i < n; i++) {
        yti_channel_on_new_connection(v[i]);
        yti_channel_unref(v[i]);
    }
    free(v);
}

/* ------------------------------------------------------------------------------------------ */
/* Slots                                                                                       */

static int table_add(slot_table *t, uint64_t slot, yt_channel *ch)
{
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        slot_entry *nv = realloc(t->v, ncap * sizeof *nv);
        if (!nv)
            return YT_ENOMEM;
        t->v = nv;
        t->cap = ncap;
    }
    t->v[t->n].slot = slot;
    t->v[t->n].ch = ch;
    t->n++;
    return YT_OK;
}

static void table_remove(slot_table *t, yt_channel *ch)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].ch != ch)
            t->v[w++] = t->v[i];
    t->n = w;
}

int yti_context_register(yt_context *ctx, yt_channel *ch, uint64_t slot_out, uint64_t slot_in,
                         const char *name_out, const char *name_in)
{
    yti_mutex_lock(&ctx->lock);
    int rc = YT_OK;
    if (slot_out && slot_lookup(&ctx->sending, slot_out))
        rc = yti_error(YT_EBUSY, "Slot not free: %s", name_out);
    else if (slot_in && slot_lookup(&ctx->receiving, slot_in))
        rc = yti_error(YT_EBUSY, "Slot not free: %s", name_in);
    if (rc == YT_OK && slot_out)
        rc = table_add(&ctx->sending, slot_out, ch);
    if (rc == YT_OK && slot_in) {
        rc = table_add(&ctx->receiving, slot_in, ch);
        if (rc)
            table_remove(&ctx->sending, ch);
    }
    if (rc == YT_ENOMEM)
        yti_error(rc, "Out of memory");
    yti_mutex_unlock(&ctx->lock);
    return rc;
}

void yti_context_unregister(yt_context *ctx, yt_channel *ch)
{
    yti_mutex_lock(&ctx->lock);
    table_remove(&ctx->sending, ch);
    table_remove(&ctx->receiving, ch);
    yti_mutex_unlock(&ctx->lock);
}

void yt_context_close_channels(yt_context *ctx)
{
    if (!ctx)
        return;
    yti_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->sending.n; i++)
        yti_channel_detach(ctx->sending.v[i].ch);
    for (size_t i = 0; i < ctx->receiving.n; i++)
        yti_channel_detach(ctx->receiving.v[i].ch);
    ctx->sending.n = 0;
    ctx->receiving.n = 0;
    yti_mutex_unlock(&ctx->lock);
}

/*
 * base.c - what all channels share: slots, registration, the receive queue, the received
 * signal, sending, receiving and closing; and yt_msg, the received message.
 *
 * Threads: any user thread may send, receive and close; receiver threads deposit packages
 * (under the context lock). Closing unregisters the slots under the context lock first, so no
 * deposit can follow it, then closes the queue, which wakes every blocked receiver with
 * YT_ECLOSED. A channel is reference-counted: its owner's handle, plus short-lived references
 * the context takes while it calls into channels without its lock.
 */
#include "channel.h"

#include "../hash.h"
#include "../util.h"

#include <stdlib.h>
#include <string.h>

static void wake_watchers(yt_channel *ch);
static int channel_lead(void *arg, yti_queue *q, uint64_t deadline);

/* Bit of ch->after above the YTI_WAKE_* values: emit received and wake watchers. */
#define DEPOSIT_NOTIFY 4

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                    */

const void *yt_msg_data(const yt_msg *m)
{
    return m ? (const void *)m->data : "";
}

size_t yt_msg_size(const yt_msg *m)
{
    return m ? m->len : 0;
}

const char *yt_msg_text(const yt_msg *m)
{
    return m ? (const char *)m->data : "";
}

int yt_msg_value(const yt_msg *m, yt_value **out)
{
    return yt_value_decode(yt_msg_data(m), yt_msg_size(m), out);
}

uint64_t yt_msg_source(const yt_msg *m)
{
    return m ? m->source_id : 0;
}

void yt_msg_free(yt_msg *m)
{
    yti_pkg_unref(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

static int slot_for(const char *base, const char *type, const char *pattern, uint64_t *slot,
                    char **name)
{
    *slot = 0;
    *name = NULL;
    if (!pattern)
        return YT_OK;
    int rc = yti_slot_name(base, type, pattern, name);
    if (rc == YT_OK)
        rc = yti_slot_hash(*name, strlen(*name), slot);
    return rc;
}

int yti_channel_create(yt_context *ctx, yti_channel_kind kind, const char *base,
                       const char *type, const char *pattern_out, const char *pattern_in,
                       bool with_queue, const yti_channel_ops *ops, void *impl,
                       yt_channel **out)
{
    if (!ctx || !base || !type || !out)
        return yti_error(YT_EINVAL, "Invalid argument");
    if (!type[0] || !yti_utf8_valid(type, strlen(type)))
        return yti_error(YT_EINVAL, "The message type name must be non-empty UTF-8");
    if (!yti_utf8_valid(base, strlen(base)))
        return yti_error(YT_EINVAL, "The slot base must be UTF-8");
    yt_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return yti_error(YT_ENOMEM, "Out of memory");
    atomic_init(&ch->refs, 1);
    atomic_init(&ch->closed, false);
    atomic_init(&ch->refuse_when_full, false);
    atomic_init(&ch->pausable, false);
    atomic_init(&ch->nwatch, 0);
    yti_mutex_init(&ch->lock);
    ch->ctx = ctx;
    ch->kind = kind;
    ch->ops = ops;
    ch->impl = impl;
    ch->zlib = yti_type_is_zlib(type);
    ch->text = strcmp(yti_type_inner(type), YT_TEXT) == 0;
    atomic_init(&ch->bad, 0);
    char *name_out = NULL, *name_in = NULL;
    const yti_conn_config *cfg = yti_context_config(ctx);
    int rc = YT_ENOMEM;
    ch->type = strdup(type);
    if (!ch->type)
        goto fail;
    if ((rc = slot_for(base, type, pattern_out, &ch->slot_out, &name_out)) ||
        (rc = slot_for(base, type, pattern_in, &ch->slot_in, &name_in)))
        goto fail;
    rc = YT_ENOMEM;
    if (with_queue && !(ch->q = yti_queue_new(cfg->queue_size, cfg->discard)))
        goto fail;
    if (ch->q)
        yti_queue_set_leader(ch->q, channel_lead, ch);
    if (yt_signal_new(cfg->loop, ch, true, &ch->received) != YT_OK)
        goto fail;
    rc = yti_context_register(ctx, ch, ch->slot_out, ch->slot_in, name_out, name_in);
    if (rc)
        goto fail;
    free(name_out);
    free(name_in);
    *out = ch;
    return YT_OK;
fail:
    if (rc == YT_ENOMEM)
        yti_error(rc, "Out of memory");
    free(name_out);
    free(name_in);
    ch->ops = NULL; /* impl stays the caller's on failure */
    yti_channel_unref(ch);
    return rc;
}

yt_channel *yti_channel_ref(yt_channel *ch)
{
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return ch;
}

void yti_channel_unref(yt_channel *ch)
{
    if (!ch || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ch->ops && ch->ops->destroy)
        ch->ops->destroy(ch);
    yt_signal_free(ch->received);
    yti_queue_free(ch->q);
    free(ch->watch);
    yti_mutex_destroy(&ch->lock);
    free(ch->type);
    free(ch);
}

/* Marks the channel closed and wakes receivers; returns the context it was registered at. */
static yt_context *mark_closed(yt_channel *ch)
{
    yti_mutex_lock(&ch->lock);
    yt_context *ctx = ch->ctx;
    ch->ctx = NULL;
    atomic_store(&ch->closed, true);
    yti_mutex_unlock(&ch->lock);
    return ctx;
}

/* What closing does once the channel is unregistered: drop what is queued and wake every
 * waiter (receivers, selects, and the kind's own). */
static void wake_all_closed(yt_channel *ch)
{
    if (ch->q) {
        yti_queue_close(ch->q);
        yti_queue_clear(ch->q);
    }
    wake_watchers(ch);
    if (ch->ops && ch->ops->on_close)
        ch->ops->on_close(ch);
}

void yti_channel_detach(yt_channel *ch)
{
    mark_closed(ch);
    wake_all_closed(ch);
}

void yt_channel_close(yt_channel *ch)
{
    if (!ch)
        return;
    yt_context *ctx = mark_closed(ch);
    if (ctx)
        yti_context_unregister(ctx, ch);
    wake_all_closed(ch);
}

void yt_channel_free(yt_channel *ch)
{
    if (!ch)
        return;
    yt_channel_close(ch);
    yti_channel_unref(ch);
}

bool yt_channel_closed(yt_channel *ch)
{
    return !ch || atomic_load(&ch->closed);
}

/* A popper of ch's queue about to sleep reads the socket of the context's connection itself
 * (connection.c, "Who reads the socket"). ch is alive: the popper holds a reference. */
static int channel_lead(void *arg, yti_queue *q, uint64_t deadline)
{
    return yti_channel_lead_on(arg, q, deadline);
}

int yti_channel_lead_on(yt_channel *ch, yti_queue *q, uint64_t deadline)
{
    yt_context *ctx = yti_channel_hold_ctx(ch);
    if (!ctx)
        return YTI_LEAD_NONE;
    int r = yti_context_lead(ctx, q, deadline);
    yti_context_unhold(ctx);
    return r;
}

yt_context *yti_channel_hold_ctx(yt_channel *ch)
{
    yti_mutex_lock(&ch->lock);
    yt_context *ctx = ch->ctx;
    if (ctx)
        yti_context_hold(ctx);
    yti_mutex_unlock(&ch->lock);
    return ctx;
}

void yti_channel_touch(yt_channel *ch)
{
    yt_context *ctx = yti_channel_hold_ctx(ch);
    if (ctx) {
        yti_context_touch(ctx);
        yti_context_unhold(ctx);
    }
}

void yti_channel_after_deposit(yt_channel *ch)
{
    int after = atomic_exchange_explicit(&ch->after, 0, memory_order_acq_rel);
    if (after) {
        /* YTI_WAKE_ONE and _ALL are 1 and 2: the two low bits. */
        yti_queue_wake(ch->q, after & 3);
        if (after & DEPOSIT_NOTIFY) {
            yt_signal_emit(ch->received, 0, NULL);
            if (atomic_load_explicit(&ch->nwatch, memory_order_relaxed))
                wake_watchers(ch);
        }
    }
    if (ch->ops && ch->ops->after_deposit && !yt_channel_closed(ch))
        ch->ops->after_deposit(ch);
}

void yti_channel_on_new_connection(yt_channel *ch)
{
    if (ch->ops && ch->ops->on_new_connection && !yt_channel_closed(ch))
        ch->ops->on_new_connection(ch);
}

/* ------------------------------------------------------------------------------------------ */
/* Receiving                                                                                   */

static void wake_watchers(yt_channel *ch)
{
    yti_mutex_lock(&ch->lock);
    for (size_t i = 0; i < atomic_load(&ch->nwatch); i++) {
        yti_watch *w = ch->watch[i];
        yti_mutex_lock(&w->lock);
        w->seq++;
        yti_cond_broadcast(&w->cond);
        yti_mutex_unlock(&w->lock);
    }
    yti_mutex_unlock(&ch->lock);
}

bool yti_channel_one_by_one(yt_channel *ch)
{
    return (ch->ops && ch->ops->per_package) ||
           atomic_load_explicit(&ch->pausable, memory_order_relaxed);
}

bool yti_channel_ends_batch(yt_channel *ch)
{
    return (ch->ops && ch->ops->per_package) || yti_channel_wants_pause(ch);
}

/* The default deposit (kinds without a deposit op): into q, waking nobody yet. The wake-ups
 * wait for yti_channel_after_deposit, after the receiver released the context lock: woken
 * first, the application thread ran straight into that lock (with both processes on one CPU a
 * round trip paid four extra context switches for it). */
static void enqueue_later(yt_channel *ch, yti_pkg **v, size_t n)
{
    int wake = YTI_WAKE_NONE;
    int notify = yti_queue_push_many_later(ch->q, v, n, &wake) == YT_OK ? DEPOSIT_NOTIFY : 0;
    if (wake | notify)
        atomic_fetch_or_explicit(&ch->after, wake | notify, memory_order_release);
}

void yti_channel_deposit_many(yt_channel *ch, yti_pkg **v, size_t n)
{
    if ((ch->ops && ch->ops->deposit) || !ch->q) {
        for (size_t i = 0; i < n; i++)
            yti_channel_deposit(ch, v[i]);
        return;
    }
    enqueue_later(ch, v, n);
}

int yti_channel_watch(yt_channel *ch, yti_watch *w)
{
    yti_mutex_lock(&ch->lock);
    size_t n = atomic_load(&ch->nwatch);
    if (n == ch->nwatch_cap) {
        size_t ncap = ch->nwatch_cap ? ch->nwatch_cap * 2 : 4;
        yti_watch **nv = realloc(ch->watch, ncap * sizeof *nv);
        if (!nv) {
            yti_mutex_unlock(&ch->lock);
            return yti_error(YT_ENOMEM, "Out of memory");
        }
        ch->watch = nv;
        ch->nwatch_cap = ncap;
    }
    ch->watch[n] = w;
    atomic_store(&ch->nwatch, n + 1);
    yti_mutex_unlock(&ch->lock);
    return YT_OK;
}

void yti_channel_unwatch(yt_channel *ch, yti_watch *w)
{
    yti_mutex_lock(&ch->lock);
    size_t n = atomic_load(&ch->nwatch);
    for (size_t i = 0; i < n; i++) {
        if (ch->watch[i] == w) {
            ch->watch[i] = ch->watch[n - 1];
            atomic_store(&ch->nwatch, n - 1);
            break;
        }
    }
    yti_mutex_unlock(&ch->lock);
}

bool yti_channel_wants_pause(yt_channel *ch)
{
    return ch->ops && ch->ops->wants_pause && !yt_channel_closed(ch) && ch->ops->wants_pause(ch);
}

bool yti_channel_wait_room(yt_channel *ch, uint64_t deadline)
{
    if (!ch->q || yt_channel_closed(ch))
        return true;
    int rc = yti_queue_wait_below(ch->q, yti_queue_max(ch->q) - 1, SIZE_MAX, deadline);
    return rc != YT_ETIMEDOUT || !yti_channel_wants_pause(ch);
}

void yti_channel_after_recv_hook(yt_channel *ch)
{
    if (ch->ops && ch->ops->after_recv)
        ch->ops->after_recv(ch);
}

void yti_channel_deposit(yt_channel *ch, yti_pkg *p)
{
    if (ch->ops && ch->ops->deposit)
        ch->ops->deposit(ch, p);
    else if (ch->q)
        enqueue_later(ch, &p, 1);
    else
        yti_pkg_unref(p);
}

int yt_channel_recv(yt_channel *ch, double timeout, yt_msg **out)
{
    if (out)
        *out = NULL;
    if (!ch || !out)
        return yti_error(YT_EINVAL, "Invalid argument");
    if (ch->ops && ch->ops->recv)
        return ch->ops->recv(ch, timeout, out);
    if (!ch->q)
        return yti_error(YT_EINVAL, "This channel does not receive messages");
    if (yt_channel_closed(ch))
        return yti_error(YT_ECLOSED, "The channel is closed");
    uint64_t deadline = yti_deadline(timeout);
    for (;;) {
        yti_channel_touch(ch);
        /* Wake up now and then to keep showing the application alive (heartbeat policy
         * "app") while it waits here. */
        uint64_t step = yti_deadline(YTI_HEARTBEAT_INTERVAL);
        bool last = deadline <= step;
        yti_pkg *p = NULL;
        int rc = yti_queue_pop(ch->q, last ? deadline : step, &p);
        if (rc == YT_OK && (p = yti_channel_unwrap(ch, p)) == NULL)
            continue; /* undecodable: dropped and counted */
        if (rc == YT_OK) {
            *out = p;
            yti_channel_after_recv_hook(ch);
            return YT_OK;
        }
        if (rc == YT_ECLOSED)
            return yti_error(YT_ECLOSED, "The channel is closed");
        if (last) {
            yti_channel_after_recv_hook(ch);
            if (timeout == 0)
                return yti_error(YT_EAGAIN, "No message available");
            return yti_error(YT_ETIMEDOUT, "No message arrived in time");
        }
    }
}

int yt_channel_recv_all(yt_channel *ch, yt_msg ***msgs, size_t *n)
{
    if (!ch || !msgs || !n)
        return yti_error(YT_EINVAL, "Invalid argument");
    *msgs = NULL;
    *n = 0;
    if (!ch->q)
        return yti_error(YT_EINVAL, "This channel does not receive messages");
    if (yt_channel_closed(ch))
        return yti_error(YT_ECLOSED, "The channel is closed");
    yti_channel_touch(ch);
    size_t cap = yti_queue_len(ch->q);
    if (cap == 0) {
        yti_channel_after_recv_hook(ch);
        return YT_OK;
    }
    yti_pkg **v = malloc(cap * sizeof *v);
    if (!v)
        return yti_error(YT_ENOMEM, "Out of memory");
    size_t got = 0;
    /* Only what was there when the call started: a busy publisher cannot keep this looping. */
    yti_queue_pop_many(ch->q, 0, v, cap, &got);
    size_t w = 0;
    for (size_t i = 0; i < got; i++)
        if ((v[w] = yti_channel_unwrap(ch, v[i])) != NULL)
            w++;
    got = w;
    yti_channel_after_recv_hook(ch);
    if (got == 0) {
        free(v);
        return YT_OK;
    }
    *msgs = (yt_msg **)v;
    *n = got;
    return YT_OK;
}

size_t yt_channel_pending(yt_channel *ch)
{
    return ch && ch->q ? yti_queue_len(ch->q) : 0;
}

uint64_t yt_channel_discarded(yt_channel *ch)
{
    if (!ch)
        return 0;
    return (ch->q ? yti_queue_discarded(ch->q) : 0) + atomic_load(&ch->bad);
}

yti_pkg *yti_channel_unwrap(yt_channel *ch, yti_pkg *p)
{
    if (!ch->zlib)
        return p;
    yt_context *ctx = yti_channel_hold_ctx(ch);
    size_t max = ctx ? yti_context_config(ctx)->max_package_size : ((size_t)1 << 30);
    if (ctx)
        yti_context_unhold(ctx);
    yti_pkg *q = NULL;
    int rc = yti_zlib_inflate(p, max, &q);
    yti_pkg_unref(p);
    if (rc != YT_OK) {
        atomic_fetch_add(&ch->bad, 1);
        return NULL;
    }
    return q;
}

yt_signal *yt_channel_received_signal(yt_channel *ch)
{
    return ch ? ch->received : NULL;
}

uint64_t yt_channel_slot_out(yt_channel *ch)
{
    return ch ? ch->slot_out : 0;
}

uint64_t yt_channel_slot_in(yt_channel *ch)
{
    return ch ? ch->slot_in : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Sending                                                                                     */

int yti_channel_send_pkg(yt_channel *ch, yti_pkg *p)
{
    if (ch->ops && ch->ops->send)
        return ch->ops->send(ch, p);
    return yti_channel_send_raw(ch, p);
}

int yti_channel_send_raw(yt_channel *ch, yti_pkg *p)
{
    return yti_channel_send_raw_many(ch, &p, 1);
}

int yti_channel_send_raw_many(yt_channel *ch, yti_pkg **v, size_t n)
{
    yt_context *ctx = yti_channel_hold_ctx(ch);
    if (!ctx) {
        for (size_t i = 0; i < n; i++)
            yti_pkg_unref(v[i]);
        return yti_error(YT_ECLOSED, "The channel is closed");
    }
    int rc = yti_context_send_many(ctx, v, n, atomic_load(&ch->refuse_when_full));
    yti_context_unhold(ctx);
    return rc;
}

int yt_channel_set_refuse_when_full(yt_channel *ch, bool on)
{
    if (!ch)
        return yti_error(YT_EINVAL, "No channel");
    atomic_store(&ch->refuse_when_full, on);
    return YT_OK;
}

yt_msg *yt_channel_next(yt_channel *ch)
{
    yt_msg *m = NULL;
    /* Iterating takes queued messages. A state channel has no queue and returns its state on
     * every recv, so a loop over it would never end. */
    if (ch && ch->q)
        yt_channel_recv(ch, 0, &m);
    return m;
}

/* What yt_channel_send and yt_channel_send_msg check before sending len bytes. */
static int send_checks(yt_channel *ch, const void *data, size_t len)
{
    if (yt_channel_closed(ch))
        return yti_error(YT_ECLOSED, "The channel is closed");
    if (ch->kind != YTI_PUB && ch->kind != YTI_STATE)
        return yti_error(YT_EINVAL, "This channel does not send messages");
    if (ch->text && len && !yti_utf8_valid(data, len))
        return yti_error(YT_EINVAL, "Text messages must be valid UTF-8");
    return YT_OK;
}

int yt_channel_send(yt_channel *ch, const void *data, size_t len)
{
    if (!ch || (!data && len))
        return yti_error(YT_EINVAL, "Invalid argument");
    int rc = send_checks(ch, data, len);
    if (rc || len == 0)
        return rc; /* the reference never sends an empty message */
    yti_pkg *p = NULL;
    if (ch->zlib) {
        rc = yti_zlib_compress(data, len, &p);
        if (rc)
            return rc;
        p->slot = ch->slot_out;
    } else if (!(p = yti_pkg_from(data, len, ch->slot_out, 0, 0))) {
        return yti_error(YT_ENOMEM, "Out of memory");
    }
    return yti_channel_send_pkg(ch, p);
}

int yt_msg_new(size_t len, yt_msg **out)
{
    if (!out)
        return yti_error(YT_EINVAL, "Invalid argument");
    *out = NULL;
    yti_pkg *p = yti_pkg_new(len);
    if (!p)
        return YT_ENOMEM; /* detail set by yti_pkg_new */
    p->writable = true;
    *out = p;
    return YT_OK;
}

void *yt_msg_buffer(yt_msg *m)
{
    return m && m->writable ? m->data : NULL;
}

int yt_channel_send_msg(yt_channel *ch, yt_msg *m)
{
    if (!ch || !m || !m->writable) {
        yti_pkg_unref(m);
        return yti_error(YT_EINVAL, m ? "Not a message made by yt_msg_new, or already sent"
                                      : "Invalid argument");
    }
    /* From here on the payload is shared with the IO threads: no more writing. */
    m->writable = false;
    int rc = send_checks(ch, m->data, m->len);
    if (rc || m->len == 0) {
        yti_pkg_unref(m);
        return rc;
    }
    if (ch->zlib) {
        yti_pkg *z = NULL;
        rc = yti_zlib_compress(m->data, m->len, &z);
        yti_pkg_unref(m);
        if (rc)
            return rc;
        m = z;
    }
    m->slot = ch->slot_out;
    return yti_channel_send_pkg(ch, m);
}

int yt_channel_send_text(yt_channel *ch, const char *text)
{
    if (!text)
        return yti_error(YT_EINVAL, "text is NULL");
    return yt_channel_send(ch, text, strlen(text));
}

int yt_channel_send_value(yt_channel *ch, const yt_value *v)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = yt_value_encode(v, &buf, &len);
    if (rc)
        return rc;
    rc = yt_channel_send(ch, buf, len);
    free(buf);
    return rc;
}

/*
 * core.h - the seams between the context, its connections and its channels.
 *
 * Layering: channels call the context (register a slot, send a package); the context calls
 * connections (push a package, close); a connection's receiver hands packages up through
 * yti_context_deliver(). Nothing here is public.
 *
 * Lock order (never take an earlier lock while holding a later one):
 *     context lock -> connection write lock -> connection lock -> channel lock -> queue locks
 *     -> loop lock
 * (the write lock is only ever try-locked under the context lock, by a sender reserving a
 * direct write, and is then held past the context lock's release until the write is done).
 * The context lock is held while a package is stamped and pushed into every connection's
 * out-queue, and while a received package is deduplicated, forwarded and deposited, so every
 * out-queue receives any one source's packages in sequence order. Pushes made under it never
 * wait (throttling happens before it is taken).
 */
#ifndef YT_CORE_H
#define YT_CORE_H

#include "address.h"
#include "package.h"
#include "platform.h"
#include "queue.h"
#include "yoton.h"

#include <stdatomic.h>

/* Connection states, as the reference numbers them. */
enum {
    YTI_CLOSED = 0,
    YTI_CLOSING = 1,
    YTI_WAITING = 2,
    YTI_HOSTING = 3,
    YTI_CONNECTED = 4
};

#define YTI_TIMEOUT_MIN 0.5
/* The sender writes a heartbeat after this long without anything to send. */
#define YTI_HEARTBEAT_INTERVAL 0.25
/* A send that finds an out-queue holding more than YTI_OUTQ_THRESHOLD packages (at most half
 * the queue's bound, at least 64: connection.c, outq_high) or YTI_OUTQ_BYTES bytes waits until
 * the sender has taken it down to YTI_OUTQ_LOW packages and YTI_OUTQ_LOW_BYTES bytes (spec 12:
 * the reference waits at 64 packages until a pop leaves 64, so a stream's producer and sender
 * take turns every batch). The gap lets a held-back producer sleep once per ~190 small packages
 * instead of once per batch: the 16 B stream went from ~4.8 to ~6.5-7 M/s (docs/benchmarks.md,
 * "The fifth pass"). The byte limits keep large packages to about what the reference queues
 * (64 KiB: 16 instead of 64)... */
#define YTI_OUTQ_THRESHOLD 256
#define YTI_OUTQ_LOW 64
#define YTI_OUTQ_BYTES ((size_t)1 << 20)
#define YTI_OUTQ_LOW_BYTES ((size_t)256 << 10)
/* ...for at most this long. */
#define YTI_OUTQ_MAX_WAIT 1.0
/* A greeting must arrive within this time. */
#define YTI_HANDSHAKE_TIMEOUT 2.0

/* ---- connection.c ---- */

/* Everything a connection takes from its context when it is made. */
typedef struct yti_conn_config {
    size_t queue_size;
    yt_discard_mode discard;
    size_t max_package_size;
    int sndbuf, rcvbuf;
    yt_loop *loop;
    yt_heartbeat_policy heartbeat;
    atomic_uint_least64_t *app_alive; /* monotonic ns of the application's last sign of life */
} yti_conn_config;

/* A new, unstarted connection with one reference (the caller's). */
yt_connection *yti_conn_new(yt_context *ctx, uint64_t own_id, const yti_conn_config *cfg,
                            const char *name);
/* Creates the listening socket (ports tried from a->port upwards) and starts the host thread.
 * The connection is WAITING afterwards. */
int yti_conn_bind(yt_connection *c, const yti_address *a, int max_tries);
/* Connects (retrying until timeout), runs the client handshake and starts the IO threads. */
int yti_conn_connect(yt_connection *c, const yti_address *a, double timeout);
/* Starts hosting on a listening socket handed over by the caller (consumed, even on error):
 * YT_EINVAL when it is not a listening stream socket. */
int yti_conn_bind_fd(yt_connection *c, int fd);
/* Runs the handshake on an already-connected socket (consumed, even on error) as host or
 * client and starts the IO threads. Blocks for the handshake. */
int yti_conn_adopt(yt_connection *c, int fd, bool host);
/* Gives c a copy of the authentication key (len 0: none) before it is bound or connected. */
int yti_conn_set_key(yt_connection *c, const unsigned char *key, size_t len);
/* Makes the next connect bind this local host (numeric or name) first. */
int yti_conn_set_local(yt_connection *c, const char *host);
/* True when the out-queue holds its maximum. */
bool yti_conn_queue_full(yt_connection *c);
/* More than YTI_OUTQ_THRESHOLD packages or YTI_OUTQ_BYTES bytes queued on a connected link (a
 * hint, no lock). */
bool yti_conn_congested(yt_connection *c);
/* At most this many packages are written by one direct write. */
#define YTI_DIRECT_MAX 2
/* Called under the context lock for n (1..YTI_DIRECT_MAX) packages of `bytes` payload bytes in
 * all about to be sent: true when
 * the calling thread may write them to the socket itself (connected, nothing queued or
 * half-written, no write in progress, and not in the middle of a stream of sends). On true the
 * connection's write lock is held until yti_conn_write_direct, which must follow after the
 * context lock is released. */
bool yti_conn_reserve_direct(yt_connection *c, size_t n, size_t bytes);
/* The rule of "not in the middle of a stream" above, for a send of `bytes` payload bytes at
 * `now` (monotonic ns): the previous send that found the queue empty started at prev_send, the
 * last direct write ended at last_direct, the last read of the socket was at last_rx. Pure;
 * exposed for tests. */
bool yti_conn_direct_idle(uint64_t now, uint64_t prev_send, uint64_t last_direct,
                          uint64_t last_rx, size_t bytes);
/* Packages written by direct writes on c so far (tests, diagnostics). */
uint64_t yti_conn_direct_taken(yt_connection *c);
/* A popper of q about to sleep until deadline reads c's socket itself (see connection.c, "Who
 * reads the socket"): YTI_LEAD_DONE when it waited or read (look at q again), YTI_LEAD_NONE
 * when it cannot now (sleep as usual). No lock held. */
int yti_conn_lead(yt_connection *c, yti_queue *q, uint64_t deadline);
/* How many reads of c's socket leaders did (tests, diagnostics). */
uint64_t yti_conn_led(yt_connection *c);
/* The size of c's read buffer now (0 before its receiver started), and in *grown (if not NULL)
 * how many times it grew for a stream of large packages (connection.c, "The read buffer"). For
 * tests. */
size_t yti_conn_rbuf_size(yt_connection *c, uint64_t *grown);
/* Writes v[0..n) (consumed; n as reserved) in one system call without blocking; what the
 * socket does not take is finished by the sender thread. Releases the write lock taken by
 * yti_conn_reserve_direct. */
void yti_conn_write_direct(yt_connection *c, yti_pkg **v, size_t n);
/* Pushes into the out-queue without waiting (consumes p). */
void yti_conn_push(yt_connection *c, yti_pkg *p);
/* Pushes ignoring the bound (startup queue moving in; consumes p). */
void yti_conn_push_unbounded(yt_connection *c, yti_pkg *p);
/* Holds the caller back while the out-queue is congested and being drained (at most until
 * deadline). Called without the context lock. */
void yti_conn_throttle(yt_connection *c, uint64_t deadline);
int yti_conn_state(const yt_connection *c);
/* A number unique to this connection within the process (never 0, never reused). */
uint64_t yti_conn_link_id(const yt_connection *c);
/* Closed, and its io thread no longer uses the context: the context may drop it. */
bool yti_conn_finished(yt_connection *c);
/* Called by the context when it is freed: the connection must not touch it afterwards. */
void yti_conn_detach(yt_connection *c);
/* Closes c (as yt_connection_close with reason) and, unless called on one of c's own threads,
 * waits until its IO threads have finished. */
void yti_conn_shutdown(yt_connection *c, const char *reason);
bool yti_conn_name_is(yt_connection *c, const char *name);

/* ---- events.c ---- */

/* Makes every event queued by sig hold a reference on its source: ref(source) when posted,
 * unref(source) when it has run or was dropped. */
void yti_signal_set_source_hooks(yt_signal *sig, void (*ref)(void *), void (*unref)(void *));
/* yt_loop_call_later for delay <= 0 with a drop hook: drop(user) runs instead of fn(user) when
 * the call is discarded before it ran (its loop freed). On failure neither runs. */
int yti_loop_call_soon(yt_loop *l, double delay, yt_callback_fn fn, yt_callback_fn drop,
                       void *user);
/* Monotonic ns of the last yt_loop_process()/yt_loop_run() activity on loop (0 if never). */
uint64_t yti_loop_last_activity(yt_loop *loop);
/* Threads blocked in yt_loop_process()/yt_loop_run() on l right now (for tests). */
size_t yti_loop_waiting(yt_loop *l);

/* ---- queue.c additions used by connections ---- */
/* (declared in queue.h: yti_queue_wait_below) */

/* ---- context.c ---- */

/* At most this many packages per yti_context_deliver call. */
#define YTI_DELIVER_MAX 256
/* Packages received in this order from connection `from`: dedupe, forward, deposit, under one
 * context lock. Called on the receiver thread. Handles a prefix of v[0..n) and returns its
 * length (at least 1 when n > 0; the prefix's packages are consumed); the caller calls again
 * with the rest. *pause receives a channel (a reference, release with yti_channel_unref) when
 * the receiver should pause until yti_channel_wait_room() says it has room (sync mode) before
 * delivering the rest, else NULL. */
size_t yti_context_deliver(yt_context *ctx, yt_connection *from, yti_pkg **v, size_t n,
                           yt_channel **pause);
/* Stamps source id and sequence and sends p (consumed) to every alive connection, or to the
 * startup queue. May wait up to YTI_OUTQ_MAX_WAIT for congested queues. With refuse_when_full,
 * fails with YT_EFULL (sending nothing) instead of letting any of those queues discard. */
int yti_context_send(yt_context *ctx, yti_pkg *p);
int yti_context_send_ex(yt_context *ctx, yti_pkg *p, bool refuse_when_full);
/* Sends v[0..n) (each consumed; 1 <= n <= YTI_DIRECT_MAX) as yti_context_send_ex does, in
 * order, as one: a link that is idle gets them in one write. */
int yti_context_send_many(yt_context *ctx, yti_pkg **v, size_t n, bool refuse_when_full);
/* True while the connection with that link id is connected. */
bool yti_context_link_alive(yt_context *ctx, uint64_t link_id);
/* Registers ch for sending on slot_out and receiving on slot_in (0 = none).
 * YT_EBUSY "Slot not free: <name>". */
int yti_context_register(yt_context *ctx, yt_channel *ch, uint64_t slot_out, uint64_t slot_in,
                         const char *name_out, const char *name_in);
void yti_context_unregister(yt_context *ctx, yt_channel *ch);
/* Marks the context in use by channel code that got it from a channel without holding the
 * context lock; yt_context_free waits until every hold is released. Take holds only through
 * yti_channel_hold_ctx (under the channel lock, so none can start once channels are detached). */
void yti_context_hold(yt_context *ctx);
/* yti_conn_lead on the context's connection when it has exactly one; else YTI_LEAD_NONE. The
 * caller holds ctx (yti_channel_hold_ctx). */
int yti_context_lead(yt_context *ctx, yti_queue *q, uint64_t deadline);
void yti_context_unhold(yt_context *ctx);
yt_loop *yti_context_loop(yt_context *ctx);
const yti_conn_config *yti_context_config(yt_context *ctx);
uint64_t yti_context_own_id(const yt_context *ctx);
/* The application showed it is alive (YT_HEARTBEAT_APP). */
void yti_context_touch(yt_context *ctx);
/* True when at least one connection is connected. */
bool yti_context_is_connected(yt_context *ctx);

/* ---- channels/base.c ---- */

/* Hands a package (consumed) to a channel registered for receiving. Called with the context
 * lock held, on a receiver thread: must not block or call back into the context. Wake-ups of
 * the channel's readers wait for yti_channel_after_deposit, which the depositor must call once
 * it released the context lock. */
void yti_channel_deposit(yt_channel *ch, yti_pkg *p);
/* Deposits v[0..n) (consumed; v's contents undefined afterwards) as n yti_channel_deposit
 * calls would, with one queue lock and one received signal for the default deposit. */
void yti_channel_deposit_many(yt_channel *ch, yti_pkg **v, size_t n);
/* Whether the channel takes packages one at a time (a subscriber in sync mode, which may ask
 * its receiver to pause; a kind whose after_deposit must see every package): the receiver then
 * deposits into it one package at a time and asks yti_channel_ends_batch() after each... */
bool yti_channel_one_by_one(yt_channel *ch);
/* ...which says whether the batch ends there (after_deposit runs, and the receiver pauses if
 * the channel wants it). Under the context lock. */
bool yti_channel_ends_batch(yt_channel *ch);
/* The context is going away or closing its channels: close ch without calling back into the
 * context (the caller holds the context lock and removes the registration itself). */
void yti_channel_detach(yt_channel *ch);
/* Called after a deposit, without any lock, on the receiver thread: the place for reactions
 * that send. */
void yti_channel_after_deposit(yt_channel *ch);
bool yti_channel_wants_pause(yt_channel *ch);
/* Waits until ch's queue has room for one more package, ch is closed or deadline passes; true
 * when the receiver may go on (room or closed). */
bool yti_channel_wait_room(yt_channel *ch, uint64_t deadline);
yt_channel *yti_channel_ref(yt_channel *ch);
void yti_channel_unref(yt_channel *ch);
/* The network gained a connection somewhere (NEW_CONNECTION arrived, or this context
 * connected); called without the context lock. */
void yti_channel_on_new_connection(yt_channel *ch);

#endif

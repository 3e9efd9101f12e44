/*
 * queue.h - bounded FIFO queues of packages.
 *
 * Used for every channel's incoming queue, the context's startup queue and each connection's
 * out-queue. A queue holds at most `max` packages; pushing into a full queue drops the oldest
 * package (YT_DISCARD_OLD) or the new one (YT_DISCARD_NEW) and counts it in `discarded`.
 * Any thread may push and pop; one mutex per queue. Waiters are woken only when one exists.
 *
 * Close: an idempotent flag; afterwards pushes are refused (the package is released) and every
 * blocked or later pop/push returns YT_ECLOSED at once. Packages still queued stay until
 * yti_queue_clear() or yti_queue_free().
 */
#ifndef YT_QUEUE_H
#define YT_QUEUE_H

#include "package.h"
#include "yoton.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct yti_queue yti_queue;

/* max >= 1. NULL when out of memory. */
yti_queue *yti_queue_new(size_t max, yt_discard_mode mode);
/* Releases every package still queued, then the queue. No thread may be using it. */
void yti_queue_free(yti_queue *q);

/* Appends p (its reference is consumed in every case). Full: discards by mode, returns YT_OK.
 * YT_ECLOSED when closed. */
int yti_queue_push(yti_queue *q, yti_pkg *p);
/* Pushes v[0..n) in order as yti_queue_push does, under one lock and with one wake-up. Consumes
 * every package; v's contents are undefined afterwards. YT_OK, or the first error met
 * (YT_ECLOSED when closed: nothing was queued). */
int yti_queue_push_many(yti_queue *q, yti_pkg **v, size_t n);
/* Whom a push has to wake: nobody, one popper, or every sleeper (several poppers, watchers). */
enum { YTI_WAKE_NONE = 0, YTI_WAKE_ONE = 1, YTI_WAKE_ALL = 2 };
/* As yti_queue_push_many, but wakes nobody: *wake is raised to what the push needs (never
 * lowered), for a yti_queue_wake the caller makes once it has released its own locks, so that
 * the woken thread does not run into them. q must stay alive until then. */
int yti_queue_push_many_later(yti_queue *q, yti_pkg **v, size_t n, int *wake);
/* The wake-up a push_many_later asked for; any thread, no lock held needed. */
void yti_queue_wake(yti_queue *q, int wake);
/* Puts p back at the front (after a pop/peek that could not use it). Ignores the size bound. */
int yti_queue_push_front(yti_queue *q, yti_pkg *p);
/* Appends ignoring the size bound (moving the startup queue into a connection). */
int yti_queue_push_unbounded(yti_queue *q, yti_pkg *p);
/*
 * The connection out-queue's push: when a consumer is attached (yti_queue_set_consumer) and the
 * queue holds `threshold` or more packages, waits until a pop leaves at most `threshold`, the
 * consumer detaches, the queue closes, or max_wait seconds passed; then pushes as
 * yti_queue_push. Without a consumer it never waits, and a full queue discards at once (as the
 * reference: it waits only while threshold <= len < max).
 */
int yti_queue_push_throttled(yti_queue *q, yti_pkg *p, size_t threshold, double max_wait);

/* Waits, without pushing, while a consumer is attached and the queue holds more than
 * threshold packages or more than max_bytes bytes (yti_queue_bytes_hint), until deadline;
 * returns at once without a consumer. YT_OK, YT_ETIMEDOUT, YT_ECLOSED. (Used to hold a sender
 * back before it takes the context lock.) */
int yti_queue_wait_below(yti_queue *q, size_t threshold, size_t max_bytes, uint64_t deadline);

/* Takes the first package, waiting until deadline (monotonic ns, platform.h; 0 = no wait,
 * YTI_FOREVER). YT_OK, YT_ETIMEDOUT or YT_ECLOSED. */
int yti_queue_pop(yti_queue *q, uint64_t deadline, yti_pkg **out);
/* Takes up to cap packages at once (at least one, waiting as yti_queue_pop). *n receives the
 * number taken. YT_EINVAL for cap 0. */
int yti_queue_pop_many(yti_queue *q, uint64_t deadline, yti_pkg **out, size_t cap, size_t *n);
/* The first package with a new reference, or NULL when empty or closed. Does not remove it. */
yti_pkg *yti_queue_peek(yti_queue *q);
/* Waits until the queue is non-empty (or closed / deadline); removes nothing. */
int yti_queue_wait(yti_queue *q, uint64_t deadline);

/* Ends the current or next yti_queue_wait() with YT_OK although the queue may be empty: its
 * consumer has other work (a connection's sender: finishing a write another thread began). */
void yti_queue_kick(yti_queue *q);

/*
 * Leading (see connection.c, "Who reads the socket"). A popper that would sleep with a deadline
 * first calls lead(arg, q, deadline) with no lock held; it returns YTI_LEAD_DONE when it waited
 * or read in its stead (the popper looks at the queue again), YTI_LEAD_NONE when it could not
 * (the popper sleeps as usual). One popper at a time leads. Set once, before any pop.
 */
enum { YTI_LEAD_NONE = 0, YTI_LEAD_DONE = 1 };
typedef int (*yti_lead_fn)(void *arg, yti_queue *q, uint64_t deadline);
void yti_queue_set_leader(yti_queue *q, yti_lead_fn lead, void *arg);
/* A leader about to block: false when the queue is already non-empty or closed (do not
 * block). Otherwise, until yti_queue_lead_disarm, every push and the close call kick(kick_arg)
 * (under the queue's mutex: it must not block or take locks). */
bool yti_queue_lead_arm(yti_queue *q, void (*kick)(void *), void *kick_arg);
void yti_queue_lead_disarm(yti_queue *q);
/* Something a leader of q waits for happened without a push (a future completed): kicks the
 * armed leader, or makes the next yti_queue_lead_arm fail once (the leader looks again). */
void yti_queue_poke(yti_queue *q);

/* Marks whether a consumer (a sender thread) is draining the queue; see push_throttled. */
void yti_queue_set_consumer(yti_queue *q, bool active);

void yti_queue_close(yti_queue *q);
bool yti_queue_closed(yti_queue *q);
/* Releases every queued package; returns how many. */
size_t yti_queue_clear(yti_queue *q);

size_t yti_queue_len(yti_queue *q);
/* The length without taking the lock: exact when the caller itself is the only thread that can
 * change it at that moment, otherwise a value it recently had (fast paths that re-check under
 * the lock or can tolerate being one package off). */
size_t yti_queue_len_hint(yti_queue *q);
/* The queued packages' size on the wire (56-byte header plus payload each), as len_hint. */
size_t yti_queue_bytes_hint(yti_queue *q);
size_t yti_queue_max(yti_queue *q);
/* Packages dropped because the queue was full (not those refused after close). */
uint64_t yti_queue_discarded(yti_queue *q);
/* Packages ever accepted by push, push_throttled or push_unbounded, including ones later
 * discarded as the oldest. Not counted: packages dropped as "new", put-backs (push_front) and
 * pushes refused after close. So pushed = popped + cleared + discarded_old + len. */
uint64_t yti_queue_pushed(yti_queue *q);

#endif

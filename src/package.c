/*
 * package.c - reference-counted packages and the 56-byte wire header (spec 2).
 *
 * A package is a single allocation: the yti_pkg struct, the payload, and one NUL byte after it,
 * so a text payload can be read as a C string and freeing never has to chase a second pointer.
 * The header fields are written by the creating thread before the package is shared; from then
 * on only `refs` changes, through C11 atomics, so any number of threads (connection senders,
 * channel readers) may hold and release the same package without a lock. The last unref frees.
 *
 * The header is seven little-endian u64 fields written and read field by field (yti_le64_*: one
 * unaligned 8-byte copy on little-endian hosts, bytes elsewhere), never by casting a struct
 * onto the wire, so host endianness and alignment do not matter. Decoding is
 * total: every 56-byte input yields a header; only the control word is validated here (the
 * length is checked against a cap by the connection, which knows it).
 */
#include "package.h"

#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define KEEP_SPARES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEP_SPARES 0
#endif
#endif
#ifndef KEEP_SPARES
#define KEEP_SPARES 1
#endif

/*
 * Spare large packages. A stream of 64 KiB messages allocates each package on the application
 * thread while the sender thread frees the one before: the C library hands the memory back to
 * the system at each free and the next package takes it again, 16 page faults per message (a
 * fifth of the publisher's time, docs/benchmarks.md, "The fifth pass"). So up to SPARES freed
 * packages with room for SPARE_MIN..SPARE_MAX payload bytes are kept, process-wide, and taken
 * again by a package of the same size or up to a quarter smaller: at most 1 MiB held. Not under
 * AddressSanitizer, which is to see every use after free.
 */
#define SPARE_MIN ((size_t)32 << 10)
#define SPARE_MAX ((size_t)256 << 10)
#define SPARES 4

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static yti_pkg *spares[SPARES]; /* guarded by spare_lock */
static atomic_int nspares;      /* written under spare_lock; read without it as a hint */

static yti_pkg *take_spare(size_t len)
{
    if (!KEEP_SPARES || len < SPARE_MIN || len > SPARE_MAX ||
        atomic_load_explicit(&nspares, memory_order_relaxed) == 0)
        return NULL;
    yti_pkg *p = NULL;
    pthread_mutex_lock(&spare_lock);
    int n = atomic_load_explicit(&nspares, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        if (spares[i]->cap >= len && spares[i]->cap - len <= len / 4) {
            p = spares[i];
            spares[i] = spares[n - 1];
            atomic_store_explicit(&nspares, n - 1, memory_order_relaxed);
            break;
        }
    }
    pthread_mutex_unlock(&spare_lock);
    return p;
}

/* Keeps p (no reference left) as a spare if it qualifies and there is room; false otherwise. */
static bool keep_spare(yti_pkg *p)
{
    if (!KEEP_SPARES || p->cap < SPARE_MIN || p->cap > SPARE_MAX ||
        atomic_load_explicit(&nspares, memory_order_relaxed) == SPARES)
        return false;
    bool kept = false;
    pthread_mutex_lock(&spare_lock);
    int n = atomic_load_explicit(&nspares, memory_order_relaxed);
    if (n < SPARES) {
        spares[n] = p;
        atomic_store_explicit(&nspares, n + 1, memory_order_relaxed);
        kept = true;
    }
    pthread_mutex_unlock(&spare_lock);
    return kept;
}

/*
 * The pool of small packages. In a stream, packages are made on one thread and freed on
 * another: the application's sends by the sender thread, the receiver's packages by the
 * application. The C library serves that pattern from its locked arena: in a 16 B stream
 * malloc took 15 % of the publisher, and jemalloc or tcmalloc instead gave 15-30 % more
 * messages per second (docs/benchmarks.md, "The sixth pass"). So a package of up to
 * POOL_MAX_LEN bytes gets the payload room of its size class (16, then four steps per
 * doubling: 20, 24, 28, 32, 40, ..., 3584, 4096, so at most a quarter more than asked for),
 * and once freed it is kept for the next package of its class.
 *
 * Freed packages travel in magazines: arrays of up to MAG_CAP package pointers. A batch freed
 * at once (yti_pkg_unref_many, the sender thread's written packages) fills magazines of its
 * own; packages freed one at a time collect in the freeing thread's magazine of their class
 * until it is full. Full magazines go onto a process-wide list per class, a lock-free stack
 * that a thread needing a package takes whole, into a list of its own, in one atomic exchange
 * (so no ABA problem: nothing is ever popped alone). A thread takes its own half-full magazine
 * first. Emptied magazines go to a shared list of empty ones for the freeing threads.
 * Arrays rather than a chain through the packages: taking from a chain reads each package's
 * link, written last by the freeing thread on another core, so every take waited for a cache
 * miss (up to 20 % of a 16 B publisher); an array is read in order, eight pointers per cache
 * line. And a package whose only reference is the caller's is freed without an atomic
 * read-modify-write of its count. Measured in isolation (bench/pool_bench: one thread making
 * 16 B packages, another freeing them; docs/benchmarks.md, "The eighth pass"): 22.6-24.2 ->
 * 18.9-21.2 ns per package freed in batches, no change freed one at a time. A magazine is
 * used from the front, in the order its packages were freed, which is the order a stream made
 * them in: the taking thread then walks memory in the order it was laid out, which the
 * hardware's prefetching follows better than the reverse (the likely reason; measured, not
 * traced). Batches: 36-39 -> 14-19 ns per package against taking from the back ("The ninth
 * pass").
 *
 * Bounds: a shared list holds about POOL_BYTES of packages (at least POOL_MIN; pushes racing
 * with each other or with a take can exceed that by what they push); a thread holds what it
 * took from one list plus fewer than MAG_CAP packages per class collected; a thread's
 * packages and magazines are freed when it exits. At most SPARE_MAGS empty magazines are kept
 * shared. POOL_BYTES is 512 KiB: at 128 KiB a class held about 116 packages of 1 KiB, fewer
 * than one batch of the sender thread (up to 256), so most of each batch was freed and
 * allocated again, and a 1 KiB stream ran at 0.71-1.11 M/s instead of 1.13-1.65
 * (docs/benchmarks.md, "The seventh pass"). Not under AddressSanitizer, like the spares.
 */
#define POOL KEEP_SPARES
#define POOL_MAX_LEN 4096
#define POOL_CLASSES 33 /* 16, then 4 per doubling from 16 to 4096 */
#define POOL_BYTES YTI_POOL_BYTES
#define POOL_MIN 16
#define MAG_CAP YTI_POOL_MAG
#define SPARE_MAGS 64

typedef struct mag {
    struct mag *next;
    size_t first, n;     /* packages in v[first..n) */
    yti_pkg *v[MAG_CAP]; /* taken from the front: in the order they were freed */
} mag;

typedef struct mag_stack {
    _Alignas(64) _Atomic(mag *) head;
    /* Packages (or magazines, for the empty ones) pushed since the list was last taken: its
     * size, give or take pushes under way while it was taken (never subtracted from, so it
     * cannot wrap). */
    atomic_size_t n;
} mag_stack;

static mag_stack pool[POOL_CLASSES]; /* full magazines by class */
static mag_stack empty_mags;         /* empty magazines */

typedef struct my_pool {
    mag *take[POOL_CLASSES]; /* magazines taken from the shared list; the first is used */
    mag *fill[POOL_CLASSES]; /* packages this thread freed one at a time */
    mag *empty;              /* empty magazines, a chain */
    bool registered;         /* the exit destructor is armed for this thread */
} my_pool;

static _Thread_local my_pool my;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_key_t pool_key;
static bool pool_key_ok;

/* The class whose room fits len payload bytes, or -1 (too large for the pool). Class 0: 16
 * bytes; then 1 + 4 * (e - 4) + q - 1 for 2^e + q * 2^(e-2) bytes (e = 4..11, q = 1..4). */
static int len_class(size_t len)
{
    if (!POOL || len > POOL_MAX_LEN)
        return -1;
    if (len <= 16)
        return 0;
    size_t m = len - 1; /* >= 16 */
    int e = 63 - __builtin_clzll((unsigned long long)m);
    int q = (int)((m - ((size_t)1 << e)) >> (e - 2)); /* 0..3 */
    return 1 + 4 * (e - 4) + q;
}

static size_t class_room(int c)
{
    if (c == 0)
        return 16;
    int e = 4 + (c - 1) / 4, q = 1 + (c - 1) % 4;
    return ((size_t)1 << e) + (size_t)q * ((size_t)1 << (e - 2));
}

/* The class of a package with cap bytes of room, or -1 (not one of the classes' rooms). */
static int cap_class(size_t cap)
{
    int c = len_class(cap);
    return c >= 0 && cap == class_room(c) ? c : -1;
}

static size_t class_limit(int c)
{
    size_t each = sizeof(yti_pkg) + class_room(c) + 1;
    return POOL_BYTES / each > POOL_MIN ? POOL_BYTES / each : POOL_MIN;
}

static void stack_push(mag_stack *s, mag *m, size_t count)
{
    atomic_fetch_add_explicit(&s->n, count, memory_order_relaxed);
    mag *old = atomic_load_explicit(&s->head, memory_order_relaxed);
    do
        m->next = old;
    while (!atomic_compare_exchange_weak_explicit(&s->head, &old, m, memory_order_release,
                                                  memory_order_relaxed));
}

static mag *stack_take(mag_stack *s)
{
    if (!atomic_load_explicit(&s->head, memory_order_relaxed))
        return NULL;
    mag *m = atomic_exchange_explicit(&s->head, NULL, memory_order_acquire);
    if (m)
        atomic_store_explicit(&s->n, 0, memory_order_relaxed);
    return m;
}

/* Frees the magazines of the chain m and the packages in them. */
static void free_mags(mag *m)
{
    while (m) {
        mag *next = m->next;
        for (size_t i = m->first; i < m->n; i++)
            free(m->v[i]);
        free(m);
        m = next;
    }
}

/* pthread key destructor: the exiting thread's packages and magazines go. A later use re-arms
 * it. */
static void pool_thread_exit(void *unused)
{
    (void)unused;
    for (int c = 0; c < POOL_CLASSES; c++) {
        free_mags(my.take[c]);
        free_mags(my.fill[c]);
        my.take[c] = my.fill[c] = NULL;
    }
    free_mags(my.empty);
    my.empty = NULL;
    my.registered = false;
}

static void pool_make_key(void)
{
    pool_key_ok = pthread_key_create(&pool_key, pool_thread_exit) == 0;
}

/* Arms the exit destructor for this thread; false if that is impossible (then the thread
 * keeps nothing of its own). */
static bool pool_register(void)
{
    if (my.registered)
        return true;
    pthread_once(&pool_once, pool_make_key);
    if (!pool_key_ok || pthread_setspecific(pool_key, (void *)1) != 0)
        return false;
    my.registered = true;
    return true;
}

/* An empty magazine: this thread's, else the shared ones (taken whole), else a new one. NULL
 * when out of memory. */
static mag *get_empty(void)
{
    if (!my.empty && atomic_load_explicit(&empty_mags.head, memory_order_relaxed) &&
        pool_register())
        my.empty = stack_take(&empty_mags);
    mag *m = my.empty;
    if (m)
        my.empty = m->next;
    else if (!(m = malloc(sizeof *m)))
        return NULL;
    m->next = NULL;
    m->first = m->n = 0;
    return m;
}

/* m is empty: onto the shared list of empty magazines, or freed when that holds enough. */
static void put_empty(mag *m)
{
    if (atomic_load_explicit(&empty_mags.n, memory_order_relaxed) >= SPARE_MAGS)
        free(m);
    else
        stack_push(&empty_mags, m, 1);
}

/* The magazine m (at least one package, all of class c) onto class c's shared list, as much
 * of it as there is room for; what does not fit is freed. */
static void mag_push(int c, mag *m)
{
    mag_stack *s = &pool[c];
    size_t n = atomic_load_explicit(&s->n, memory_order_relaxed), limit = class_limit(c);
    size_t room = n >= limit ? 0 : limit - n;
    while (m->n > room)
        free(m->v[--m->n]);
    if (m->n)
        stack_push(s, m, m->n);
    else
        put_empty(m);
}

/* A package of class c, from this thread's magazines, its own collected ones, or the shared
 * list; NULL if there is none. */
static yti_pkg *pool_take(int c)
{
    mag *m = my.take[c];
    while (m && m->first == m->n) {
        my.take[c] = m->next;
        put_empty(m);
        m = my.take[c];
    }
    if (!m) {
        if (my.fill[c]) {
            m = my.fill[c];
            my.fill[c] = NULL;
        } else if (!pool_register() || !(m = stack_take(&pool[c]))) {
            return NULL;
        }
        my.take[c] = m;
    }
    return m->v[m->first++];
}

/* The only reference to p is the caller's: then nobody else can change the count, and it
 * need not be written (the package is freed or made new). */
static bool drop_last(yti_pkg *p)
{
    if (atomic_load_explicit(&p->refs, memory_order_acquire) == 1u)
        return true;
    /* Release so this thread's reads of the package happen before the free; acquire so the
     * freeing thread sees every other holder's last access. */
    return atomic_fetch_sub_explicit(&p->refs, 1u, memory_order_acq_rel) == 1u;
}

/* The last reference to p is gone: to this thread's collected packages of its class, to the
 * spares, or freed. */
static void release(yti_pkg *p)
{
    int c = cap_class(p->cap);
    if (c < 0) {
        if (!keep_spare(p))
            free(p);
        return;
    }
    mag *m = my.fill[c];
    if (!m && (!pool_register() || !(m = my.fill[c] = get_empty()))) {
        free(p);
        return;
    }
    m->v[m->n++] = p;
    if (m->n == MAG_CAP) {
        my.fill[c] = NULL;
        mag_push(c, m);
    }
}

bool yti_pkg_pool_enabled(void)
{
    return POOL;
}

size_t yti_pkg_pool_cap(size_t len)
{
    int c = len_class(len);
    return c < 0 ? len : class_room(c);
}

size_t yti_pkg_pooled(size_t cap, size_t *shared, size_t *mine)
{
    int c = cap_class(cap);
    size_t s = 0, m = 0;
    if (c >= 0) {
        s = atomic_load_explicit(&pool[c].n, memory_order_relaxed);
        for (mag *q = my.take[c]; q; q = q->next)
            m += q->n - q->first;
        m += my.fill[c] ? my.fill[c]->n : 0;
    }
    if (shared)
        *shared = s;
    if (mine)
        *mine = m;
    return s + m;
}

void yti_pkg_pool_clear(void)
{
    for (int c = 0; c < POOL_CLASSES; c++) {
        free_mags(stack_take(&pool[c]));
        free_mags(my.take[c]);
        free_mags(my.fill[c]);
        my.take[c] = my.fill[c] = NULL;
    }
    free_mags(stack_take(&empty_mags));
    free_mags(my.empty);
    my.empty = NULL;
}

/* Spec 2.2: slot 1, source_seq 0 (heartbeat) or 1 (close), everything else 0, length 0. The
 * control word's bytes are the ASCII text "YOTON   ". */
const unsigned char yti_heartbeat_bytes[YTI_HEADER_SIZE] = {
    'Y', 'O', 'T', 'O', 'N', ' ', ' ', ' ', /* control */
    1,   0,   0,   0,   0,   0,   0,   0,   /* slot = YTI_SLOT_DUMMY */
    0,   0,   0,   0,   0,   0,   0,   0,   /* source_id */
    0,   0,   0,   0,   0,   0,   0,   0,   /* source_seq = 0: heartbeat */
    0,   0,   0,   0,   0,   0,   0,   0,   /* dest_id */
    0,   0,   0,   0,   0,   0,   0,   0,   /* dest_seq */
    0,   0,   0,   0,   0,   0,   0,   0,   /* length */
};

const unsigned char yti_close_bytes[YTI_HEADER_SIZE] = {
    'Y', 'O', 'T', 'O', 'N', ' ', ' ', ' ', /* control */
    1,   0,   0,   0,   0,   0,   0,   0,   /* slot = YTI_SLOT_DUMMY */
    0,   0,   0,   0,   0,   0,   0,   0,   /* source_id */
    1,   0,   0,   0,   0,   0,   0,   0,   /* source_seq = 1: close */
    0,   0,   0,   0,   0,   0,   0,   0,   /* dest_id */
    0,   0,   0,   0,   0,   0,   0,   0,   /* dest_seq */
    0,   0,   0,   0,   0,   0,   0,   0,   /* length */
};

bool yti_pkg_spares_enabled(void)
{
    return KEEP_SPARES;
}

size_t yti_pkg_spares(void)
{
    return (size_t)atomic_load_explicit(&nspares, memory_order_relaxed);
}

void yti_pkg_spares_clear(void)
{
    pthread_mutex_lock(&spare_lock);
    int n = atomic_load_explicit(&nspares, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        free(spares[i]);
    atomic_store_explicit(&nspares, 0, memory_order_relaxed);
    pthread_mutex_unlock(&spare_lock);
}

yti_pkg *yti_pkg_new(size_t len)
{
    /* The struct, the payload and the trailing NUL must fit size_t; a length near SIZE_MAX would
     * otherwise wrap to a tiny allocation that the caller then overruns. */
    if (len > SIZE_MAX - sizeof(yti_pkg) - 1) {
        yti_error(YT_ENOMEM, "Package of %zu bytes is too large", len);
        return NULL;
    }
    int c = len_class(len);
    size_t cap = c < 0 ? len : class_room(c);
    yti_pkg *p = c < 0 ? take_spare(len) : pool_take(c);
    if (!p) {
        p = malloc(sizeof(yti_pkg) + cap + 1);
        if (!p) {
            yti_error(YT_ENOMEM, "Out of memory allocating a package of %zu bytes", len);
            return NULL;
        }
        p->cap = cap;
    }
    atomic_init(&p->refs, 1u);
    p->slot = 0;
    p->source_id = 0;
    p->source_seq = 0;
    p->dest_id = 0;
    p->dest_seq = 0;
    p->recv_seq = 0;
    p->via = 0;
    p->writable = false;
    p->len = len;
    p->data = p->payload;
    p->payload[len] = 0;
    return p;
}

yti_pkg *yti_pkg_from(const void *data, size_t len, uint64_t slot, uint64_t dest_id,
                      uint64_t dest_seq)
{
    yti_pkg *p = yti_pkg_new(len);
    if (!p)
        return NULL;
    /* memcpy with a NULL source is undefined even for 0 bytes. */
    if (len)
        memcpy(p->payload, data, len);
    p->slot = slot;
    p->dest_id = dest_id;
    p->dest_seq = dest_seq;
    return p;
}

yti_pkg *yti_pkg_resize(yti_pkg *p, size_t len)
{
    if (len > SIZE_MAX - sizeof(yti_pkg) - 1) {
        yti_error(YT_ENOMEM, "Package of %zu bytes is too large", len);
        return NULL;
    }
    yti_pkg *q = realloc(p, sizeof(yti_pkg) + len + 1);
    if (!q) {
        yti_error(YT_ENOMEM, "Out of memory growing a package to %zu bytes", len);
        return NULL;
    }
    q->len = len;
    q->cap = len;
    q->data = q->payload;
    q->payload[len] = 0;
    return q;
}

yti_pkg *yti_pkg_ref(yti_pkg *p)
{
    /* Taking a reference needs no ordering: the caller already holds one, so the package cannot
     * be freed concurrently, and its fields were published when that reference was handed over. */
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1u, memory_order_relaxed);
    return p;
}

void yti_pkg_unref(yti_pkg *p)
{
    if (p && drop_last(p))
        release(p);
}

void yti_pkg_unref_many(yti_pkg *const *v, size_t n)
{
    /* The packages freed here fill magazines of their own, pushed when full and at the end. */
    mag *m[POOL_CLASSES] = {0};
    for (size_t i = 0; i < n; i++) {
        yti_pkg *p = v[i];
        if (!p || !drop_last(p))
            continue;
        int c = cap_class(p->cap);
        if (c < 0) {
            release(p);
            continue;
        }
        if (!m[c] && !(m[c] = get_empty())) {
            free(p);
            continue;
        }
        m[c]->v[m[c]->n++] = p;
        if (m[c]->n == MAG_CAP) {
            mag_push(c, m[c]);
            m[c] = NULL;
        }
    }
    for (int c = 0; c < POOL_CLASSES; c++)
        if (m[c])
            mag_push(c, m[c]);
}

void yti_header_encode(const yti_header *h, unsigned char out[YTI_HEADER_SIZE])
{
    yti_le64_write(out + 0, h->control);
    yti_le64_write(out + 8, h->slot);
    yti_le64_write(out + 16, h->source_id);
    yti_le64_write(out + 24, h->source_seq);
    yti_le64_write(out + 32, h->dest_id);
    yti_le64_write(out + 40, h->dest_seq);
    yti_le64_write(out + 48, h->len);
}

void yti_header_encode_pkg(const yti_pkg *p, unsigned char out[YTI_HEADER_SIZE])
{
    yti_header h = {
        .control = YTI_CONTROL,
        .slot = p->slot,
        .source_id = p->source_id,
        .source_seq = p->source_seq,
        .dest_id = p->dest_id,
        .dest_seq = p->dest_seq,
        .len = (uint64_t)p->len,
    };
    yti_header_encode(&h, out);
}

int yti_header_decode(const unsigned char in[YTI_HEADER_SIZE], yti_header *h)
{
    h->control = yti_le64_read(in + 0);
    h->slot = yti_le64_read(in + 8);
    h->source_id = yti_le64_read(in + 16);
    h->source_seq = yti_le64_read(in + 24);
    h->dest_id = yti_le64_read(in + 32);
    h->dest_seq = yti_le64_read(in + 40);
    h->len = yti_le64_read(in + 48);
    if (h->control != YTI_CONTROL)
        return yti_error(YT_EPROTO, "Lost track of the stream.");
    return YT_OK;
}

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
    yti_pkg *p = take_spare(len);
    if (!p) {
        p = malloc(sizeof(yti_pkg) + len + 1);
        if (!p) {
            yti_error(YT_ENOMEM, "Out of memory allocating a package of %zu bytes", len);
            return NULL;
        }
        p->cap = len;
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
    if (!p)
        return;
    /* Release so this thread's reads of the package happen before the free; acquire so the
     * freeing thread sees every other holder's last access. */
    if (atomic_fetch_sub_explicit(&p->refs, 1u, memory_order_acq_rel) == 1u && !keep_spare(p))
        free(p);
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

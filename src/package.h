/*
 * package.h - yoton packages: the 56-byte header and a reference-counted package.
 *
 * A package is one allocation: this struct followed by the payload and a NUL byte (so text
 * payloads read as C strings without a copy). Its fields are written once, before it is shared;
 * after that only the reference count changes, so a package fanned out to several connections
 * and a channel is never copied and needs no lock. The public yt_msg handle is this struct.
 */
#ifndef YT_PACKAGE_H
#define YT_PACKAGE_H

#include "yoton.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define YTI_HEADER_SIZE 56
/* "YOTON   " read as a little-endian u64. */
#define YTI_CONTROL UINT64_C(0x2020204E4F544F59)
#define YTI_SLOT_DUMMY 1u   /* heartbeat and close packages */
#define YTI_SLOT_CONTEXT 2u /* context messages */
/* Request ids at or above this in dest_seq mark the pre-request protocol (2^63). */
#define YTI_REF UINT64_C(0x8000000000000000)

typedef struct yt_msg {
    atomic_uint refs;
    uint64_t slot;
    uint64_t source_id;
    uint64_t source_seq;
    uint64_t dest_id;
    uint64_t dest_seq;
    uint64_t recv_seq; /* local, never on the wire: the order in which packages were received
                          or sent at this context (assigned under the context lock) */
    uint64_t via;      /* local: the link (yti_conn_link_id) it arrived on; 0 if sent here */
    bool writable;     /* made by yt_msg_new and not yet sent: the user may write the payload */
    size_t len;
    size_t cap;          /* payload bytes allocated (len <= cap) */
    unsigned char *data; /* points at payload[] */
    unsigned char payload[];
} yti_pkg;

typedef struct yti_header {
    uint64_t control;
    uint64_t slot;
    uint64_t source_id;
    uint64_t source_seq;
    uint64_t dest_id;
    uint64_t dest_seq;
    uint64_t len;
} yti_header;

/* A new package with len payload bytes (uninitialised, followed by a NUL), all fields 0, one
 * reference. NULL when out of memory (or len absurd). */
yti_pkg *yti_pkg_new(size_t len);
/* A new package holding a copy of data. */
yti_pkg *yti_pkg_from(const void *data, size_t len, uint64_t slot, uint64_t dest_id,
                      uint64_t dest_seq);
/* Resizes an unshared package (one reference, never handed out) to len payload bytes, keeping
 * its fields and the first min(old, new) payload bytes; a NUL follows the payload. Large
 * allocations are remapped rather than copied by the C library. Returns the moved package, or
 * NULL (p unchanged and still owned by the caller) when out of memory. */
yti_pkg *yti_pkg_resize(yti_pkg *p, size_t len);
yti_pkg *yti_pkg_ref(yti_pkg *p);
/* Drops a reference; the last one frees the package, or keeps it as a spare (package.c). */
void yti_pkg_unref(yti_pkg *p);
/* Drops a reference to each of v[0..n-1] (NULL entries skipped); what is freed goes to the
 * pool of small packages in magazines of its own, one atomic operation per magazine. */
void yti_pkg_unref_many(yti_pkg *const *v, size_t n);
/* Spare large packages (package.c): whether they are kept in this build (not under
 * AddressSanitizer), how many are kept now, and freeing them all. Thread-safe. */
bool yti_pkg_spares_enabled(void);
size_t yti_pkg_spares(void);
void yti_pkg_spares_clear(void);
/* About how many bytes of freed small packages each size class keeps for reuse, process-wide
 * (package.c, "The pool of small packages"). */
#define YTI_POOL_BYTES ((size_t)512 << 10)
/* Packages per magazine of the pool; a thread collects fewer than this many per class that it
 * freed one at a time before they go to the shared list. */
#define YTI_POOL_MAG 64
/* The pool of small packages (package.c; not under AddressSanitizer). yti_pkg_pool_cap: the
 * payload room a new package of len bytes gets (len itself when the pool does not apply).
 * yti_pkg_pooled: packages of that room held now, shared and by the calling thread (taken from
 * the shared list, or freed by it and not yet passed on).
 * yti_pkg_pool_clear: frees the shared ones and the calling thread's. Thread-safe. */
bool yti_pkg_pool_enabled(void);
size_t yti_pkg_pool_cap(size_t len);
size_t yti_pkg_pooled(size_t cap, size_t *shared, size_t *mine);
void yti_pkg_pool_clear(void);

/* Writes p's header (control, fields, p->len) in wire format. */
void yti_header_encode_pkg(const yti_pkg *p, unsigned char out[YTI_HEADER_SIZE]);
void yti_header_encode(const yti_header *h, unsigned char out[YTI_HEADER_SIZE]);
/* Reads a header; YT_EPROTO when the control field is not yoton's (h is filled anyway). */
int yti_header_decode(const unsigned char in[YTI_HEADER_SIZE], yti_header *h);

/* The two zero-length link packages (spec 2.2). */
extern const unsigned char yti_heartbeat_bytes[YTI_HEADER_SIZE];
extern const unsigned char yti_close_bytes[YTI_HEADER_SIZE];

/* On little-endian hosts one unaligned 8-byte load/store (memcpy, which compilers turn into a
 * single mov); elsewhere byte by byte. The header is written per package on the hot path. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define YTI_LE_HOST 1
#else
#define YTI_LE_HOST 0
#endif

static inline uint64_t yti_le64_read(const unsigned char *b)
{
#if YTI_LE_HOST
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
#else
    return (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
           (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 |
           (uint64_t)b[7] << 56;
#endif
}

static inline void yti_le64_write(unsigned char *b, uint64_t v)
{
#if YTI_LE_HOST
    memcpy(b, &v, 8);
#else
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
#endif
}

#endif

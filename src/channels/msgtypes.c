/*
 * msgtypes.c - zlib-compressed message types ("zlib-<inner>", e.g. "zlib-txt").
 *
 * A channel whose type name starts with "zlib-" carries, on the wire, the zlib stream (RFC 1950:
 * 2-byte header, deflate data, Adler-32) of the inner type's bytes. base.c compresses on send and
 * inflates on recv/recv_all through the two functions here; users only ever see inner bytes.
 * The type name is part of the slot name, so a "zlib-txt" channel meets only "zlib-txt"
 * channels, never "txt" ones. Text validation applies to the inner bytes (done by base.c).
 *
 * Threads: the functions are pure (no shared state); inflating runs on whichever user thread
 * receives, never on an IO thread and never under a lock.
 *
 * Untrusted input: the payload comes from the network. Inflating stops with YT_EDECODE on
 * anything that is not exactly one complete zlib stream (garbage, truncation, bytes after the
 * end) and on output beyond `max`. Memory stays proportional to what the stream really produces:
 * output up to SMALL_OUTPUT bytes is inflated in one pass into a buffer that grows only when the
 * stream has produced another byte; a longer stream is first inflated into a fixed scratch
 * buffer just to learn its exact size (refusing it once it passes max, so a "zip bomb" costs
 * CPU but never memory), then inflated once more into a buffer of exactly that size. Ratios of
 * deflate are bounded (about 1032:1), so the counting pass costs at most ~1000 times the
 * payload's size in CPU, bounded by max.
 *
 * Python peers. The reference has no zlib type, but it lets users define message types, so a
 * Python yoton program meets a libyoton "zlib-txt" channel with this (any inner type works the
 * same way; for "zlib-bin" drop the encode/decode, for "zlib-obj" wrap yoton.OBJECT's methods):
 *
 *     import zlib, yoton
 *
 *     class ZlibText(yoton.MessageType):
 *         def message_type_name(self):
 *             return "zlib-txt"
 *         def message_to_bytes(self, message):
 *             return zlib.compress(yoton.TEXT.message_to_bytes(message))
 *         def message_from_bytes(self, bb):
 *             return yoton.TEXT.message_from_bytes(zlib.decompress(bb)) if bb else ""
 *
 *     pub = yoton.PubChannel(ct, "news", ZlibText())
 *
 * (message_from_bytes is also called with b"" by the reference, for "nothing received", hence
 * the test for empty bytes.) Python's zlib.compress() writes the same format at the same default
 * level, so both sides read each other's messages; zlib.decompress() ignores bytes after the end
 * of the stream where this module refuses them, which only matters for hand-made payloads.
 */
#include "channel.h"

#include "../util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST /* next_in is const: input is never written */
#include <zlib.h>

/* Outputs up to this size are inflated in a single pass. */
#define SMALL_OUTPUT ((size_t)256 << 10)
/* Size of the counting pass's scratch buffer (on the heap: receivers may have small stacks). */
#define SCRATCH_SIZE ((size_t)64 << 10)
/* zlib counts in uInt; feed and drain it in slices that fit. */
#define SLICE ((size_t)UINT_MAX)

bool yti_type_is_zlib(const char *type)
{
    return type && strncmp(type, "zlib-", 5) == 0 && type[5] != '\0';
}

const char *yti_type_inner(const char *type)
{
    return yti_type_is_zlib(type) ? type + 5 : type;
}

static uInt slice(size_t n)
{
    return (uInt)(n < SLICE ? n : SLICE);
}

/* Cuts an unshared package down to len bytes. Shrinking a block hardly ever fails; if it does,
 * the package keeps its larger allocation with the shorter length. */
static yti_pkg *shrink(yti_pkg *p, size_t len)
{
    if (len == p->len)
        return p;
    yti_pkg *q = yti_pkg_resize(p, len);
    if (q)
        return q;
    p->len = len;
    p->payload[len] = 0;
    return p;
}

int yti_zlib_compress(const void *data, size_t len, yti_pkg **out)
{
    if (!out || (!data && len))
        return yti_error(YT_EINVAL, "Invalid argument");
    z_stream s;
    memset(&s, 0, sizeof s);
    /* Level, window and memory level of Python's zlib.compress(data): the same bytes. */
    if (deflateInit(&s, Z_DEFAULT_COMPRESSION) != Z_OK)
        return yti_error(YT_ENOMEM, "Cannot start zlib compression");
    /* deflateBound is an upper bound of the whole stream (uLong is 64-bit on every platform
     * this library builds for), so one allocation suffices; it is cut to size afterwards. */
    uLong bound = deflateBound(&s, (uLong)len);
    yti_pkg *p = bound >= len ? yti_pkg_new((size_t)bound) : NULL;
    if (!p) {
        deflateEnd(&s);
        return yti_error(YT_ENOMEM, "Out of memory compressing %zu bytes", len);
    }
    const unsigned char *in = data;
    size_t in_left = len, out_pos = 0;
    int zr;
    do {
        s.next_in = in;
        s.avail_in = slice(in_left);
        s.next_out = p->payload + out_pos;
        s.avail_out = slice(p->len - out_pos);
        uInt in0 = s.avail_in, out0 = s.avail_out;
        zr = deflate(&s, in_left > s.avail_in ? Z_NO_FLUSH : Z_FINISH);
        in += in0 - s.avail_in;
        in_left -= in0 - s.avail_in;
        out_pos += out0 - s.avail_out;
    } while (zr == Z_OK);
    deflateEnd(&s);
    if (zr != Z_STREAM_END) {
        yti_pkg_unref(p);
        return yti_error(YT_ENOMEM, "zlib compression failed");
    }
    *out = shrink(p, out_pos);
    return YT_OK;
}

/* One inflate pass: where the output goes and how much of it is acceptable. */
typedef struct pass {
    yti_pkg *buf;           /* output package (len = its capacity), or NULL to count only */
    unsigned char *scratch; /* SCRATCH_SIZE bytes for counting */
    size_t limit;           /* more output than this: YT_ETOOBIG */
    size_t max;             /* buf grows up to this */
    size_t produced;        /* out: bytes inflated */
} pass;

/*
 * Inflates in once. With ps->buf, output is stored, the buffer doubling (up to ps->max) only
 * when the stream has shown one more byte; without it, output goes to the scratch buffer and
 * is only counted. YT_OK for exactly one complete stream, YT_EDECODE otherwise (with the
 * reason), YT_ETOOBIG when more than ps->limit bytes come out, YT_ENOMEM.
 */
static int inflate_pass(const yti_pkg *in, pass *ps)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit(&s) != Z_OK)
        return yti_error(YT_ENOMEM, "Cannot start zlib decompression");
    const unsigned char *src = in->data;
    size_t src_left = in->len;
    ps->produced = 0;
    int rc = YT_OK;
    for (;;) {
        unsigned char probe;
        unsigned char *dst;
        size_t room;
        if (!ps->buf) {
            dst = ps->scratch;
            room = SCRATCH_SIZE;
        } else if (ps->produced < ps->buf->len) {
            dst = ps->buf->payload + ps->produced;
            room = ps->buf->len - ps->produced;
        } else {
            /* Full: ask for one byte only, so the buffer grows only for output that exists. */
            dst = &probe;
            room = 1;
        }
        s.next_in = src;
        s.avail_in = slice(src_left);
        s.next_out = dst;
        s.avail_out = slice(room);
        uInt in0 = s.avail_in, out0 = s.avail_out;
        int zr = inflate(&s, Z_NO_FLUSH);
        size_t got = out0 - s.avail_out;
        src += in0 - s.avail_in;
        src_left -= in0 - s.avail_in;
        if (got > ps->limit - ps->produced) {
            rc = YT_ETOOBIG;
            break;
        }
        if (dst == &probe && got) {
            size_t ncap = ps->buf->len < ps->max / 2 ? ps->buf->len * 2 : ps->max;
            if (ncap < ps->buf->len + 1)
                ncap = ps->buf->len + 1;
            yti_pkg *nb = yti_pkg_resize(ps->buf, ncap);
            if (!nb) {
                rc = YT_ENOMEM;
                break;
            }
            ps->buf = nb;
            nb->payload[ps->produced] = probe;
        }
        ps->produced += got;
        if (zr == Z_STREAM_END) {
            if (src_left)
                rc = yti_error(YT_EDECODE, "Bytes after the end of the zlib stream");
            break;
        }
        if (zr == Z_BUF_ERROR && got == 0 && s.avail_in == 0 && src_left == 0) {
            rc = yti_error(YT_EDECODE, "Truncated zlib stream");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = zr == Z_MEM_ERROR ? yti_error(YT_ENOMEM, "Out of memory inflating")
                                   : yti_error(YT_EDECODE, "Invalid zlib stream: %s",
                                               s.msg ? s.msg : "corrupt data");
            break;
        }
    }
    inflateEnd(&s);
    return rc;
}

int yti_zlib_inflate(const yti_pkg *in, size_t max, yti_pkg **out)
{
    if (!in || !out)
        return yti_error(YT_EINVAL, "Invalid argument");
    size_t first = max < SMALL_OUTPUT ? max : SMALL_OUTPUT;
    /* Start from a guess proportional to the input (most payloads inflate a few times), never
     * above what the first pass may hold. */
    size_t start = in->len < first / 4 ? in->len * 4 : first;
    if (start < 64)
        start = first < 64 ? first : 64;
    pass ps = {.buf = yti_pkg_new(start), .limit = first, .max = first};
    if (!ps.buf)
        return yti_error(YT_ENOMEM, "Out of memory");
    int rc = inflate_pass(in, &ps);
    if (rc == YT_ETOOBIG && max > first) {
        /* Longer than a single pass is allowed to hold: learn the exact size first. */
        yti_pkg_unref(ps.buf);
        pass count = {.scratch = NULL, .limit = max};
        count.scratch = malloc(SCRATCH_SIZE);
        if (!count.scratch)
            return yti_error(YT_ENOMEM, "Out of memory");
        rc = inflate_pass(in, &count);
        free(count.scratch);
        if (rc != YT_OK)
            goto refused;
        ps = (pass){.buf = yti_pkg_new(count.produced), .limit = count.produced,
                    .max = count.produced};
        if (!ps.buf)
            return yti_error(YT_ENOMEM, "Out of memory inflating %zu bytes", count.produced);
        rc = inflate_pass(in, &ps);
    }
    if (rc != YT_OK) {
        yti_pkg_unref(ps.buf);
        goto refused;
    }
    yti_pkg *p = shrink(ps.buf, ps.produced);
    p->slot = in->slot;
    p->source_id = in->source_id;
    p->source_seq = in->source_seq;
    p->dest_id = in->dest_id;
    p->dest_seq = in->dest_seq;
    p->recv_seq = in->recv_seq;
    p->via = in->via;
    *out = p;
    return YT_OK;
refused:
    if (rc == YT_ETOOBIG)
        return yti_error(YT_EDECODE, "zlib stream inflates to more than %zu bytes", max);
    return rc;
}

/*
 * stream.c - stdio FILE streams over channels (glibc fopencookie), for programs that redirect
 * stdout/stderr/stdin through yoton, as Pyzo's kernel does with its FileWrapper.
 *
 * Writer (yt_stream_writer): a write-only FILE whose bytes are published on a channel.
 * - YT_STREAM_LINE: the FILE is line buffered with a buffer of STREAM_BUF bytes owned by the
 *   cookie. stdio itself holds back a partial line until its newline, fflush() or fclose()
 *   (line buffering writes out only up to the last newline of what it was given), so every
 *   write reaching the cookie ends at a newline, except on fflush/fclose and when a line is
 *   longer than the buffer. The cookie sends each complete line (newline included) as one
 *   message and whatever follows the last newline as one more. A line longer than STREAM_BUF
 *   therefore arrives in several messages.
 * - YT_STREAM_WRITE: the FILE is fully buffered; every write stdio makes (a full buffer, or what
 *   fflush/fclose find) is one message.
 * On text channels a message must be valid UTF-8, so a piece cut in the middle of a character
 * (a long line, a full buffer) keeps the incomplete character's bytes in the cookie and sends
 * them at the front of the next piece (fclose sends what is left). Invalid UTF-8 written to a
 * text stream fails the write with EILSEQ.
 *
 * Reader (yt_stream_reader): a read-only FILE; a read blocks in yt_channel_recv() until a
 * message arrives and returns its bytes, keeping what did not fit for the next read (messages
 * are not separated in the byte stream: the reader sees the concatenation, as the reference's
 * FileWrapper.read does). A closed channel reads as end-of-file.
 *
 * Threads: stdio locks the FILE around every call (flockfile), so the cookie functions of one
 * FILE never run concurrently and need no lock of their own; several threads may share one
 * FILE. A reader blocked in fgets/fread holds that lock until a message arrives or the channel
 * closes: to stop it, close the channel (it then reads end-of-file), then fclose. fclose frees
 * only the cookie; the channel stays open and belongs to its owner, and must outlive the FILE.
 *
 * Errors: the cookie functions return -1 with errno set (EPIPE: channel closed; EILSEQ:
 * invalid UTF-8 on a text channel; ENOMEM; EAGAIN: refused because a queue was full; EIO:
 * anything else); stdio then sets the FILE's error flag. glibc drops the buffered bytes of a
 * failed write.
 */
#include "channel.h"

#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The writer's stdio buffer: the longest line that is always one message. */
#define STREAM_BUF ((size_t)64 << 10)

typedef struct writer {
    yt_channel *ch;
    yt_stream_mode mode;
    bool text;
    unsigned char carry[4]; /* text: the start of a character cut at the end of a piece */
    size_t ncarry;
    char buf[STREAM_BUF];
} writer;

typedef struct reader {
    yt_channel *ch;
    yt_msg *cur; /* the message being read, or NULL */
    size_t off;  /* bytes of cur already returned */
} reader;

static int errno_of(int rc)
{
    switch (rc) {
    case YT_ECLOSED:
        return EPIPE;
    case YT_ENOMEM:
        return ENOMEM;
    case YT_EFULL:
        return EAGAIN;
    case YT_EINVAL:
        return EILSEQ; /* the only invalid argument a well-formed writer can pass */
    default:
        return EIO;
    }
}

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8 character: drops
 * an incomplete (but so far valid-looking) trailing sequence of at most 3 bytes. */
static size_t complete_utf8(const unsigned char *s, size_t n)
{
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && (s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return n; /* only continuation bytes: invalid anyway, let validation say so */
    unsigned char lead = s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (lead < 0xC0 || lead > 0xF4 || back + 1 >= need)
        return n; /* ASCII, a stray byte, or the character is complete */
    return i - 1;
}

/* Sends one piece: the carried bytes, then data[0..n). With keep_tail, an incomplete character
 * at the end is carried to the next piece instead. */
static int send_piece(writer *w, const char *data, size_t n, bool keep_tail)
{
    size_t total = w->ncarry + n;
    if (total == 0)
        return YT_OK;
    char small[256];
    char *tmp = NULL, *msg = (char *)data;
    size_t len = n;
    if (w->ncarry) {
        tmp = total <= sizeof small ? small : malloc(total);
        if (!tmp)
            return YT_ENOMEM;
        memcpy(tmp, w->carry, w->ncarry);
        memcpy(tmp + w->ncarry, data, n);
        msg = tmp;
        len = total;
        w->ncarry = 0;
    }
    if (w->text && keep_tail) {
        size_t whole = complete_utf8((const unsigned char *)msg, len);
        w->ncarry = len - whole;
        memcpy(w->carry, msg + whole, w->ncarry);
        len = whole;
    }
    int rc = len ? yt_channel_send(w->ch, msg, len) : YT_OK;
    if (tmp != small)
        free(tmp);
    return rc;
}

static ssize_t writer_write(void *cookie, const char *data, size_t n)
{
    writer *w = cookie;
    int rc = YT_OK;
    if (w->mode == YT_STREAM_LINE) {
        size_t start = 0;
        for (size_t i = 0; i < n && rc == YT_OK; i++) {
            if (data[i] == '\n') {
                rc = send_piece(w, data + start, i + 1 - start, false);
                start = i + 1;
            }
        }
        if (rc == YT_OK && start < n)
            rc = send_piece(w, data + start, n - start, true);
    } else {
        rc = send_piece(w, data, n, true);
    }
    if (rc != YT_OK) {
        w->ncarry = 0;
        errno = errno_of(rc);
        return -1;
    }
    return (ssize_t)n;
}

static int writer_close(void *cookie)
{
    writer *w = cookie;
    /* stdio wrote out its buffer before calling this; only a cut character can be left. */
    int rc = send_piece(w, "", 0, false);
    free(w);
    if (rc != YT_OK) {
        errno = errno_of(rc);
        return -1;
    }
    return 0;
}

FILE *yt_stream_writer(yt_channel *pub, yt_stream_mode mode)
{
    if (!pub || pub->kind != YTI_PUB ||
        (mode != YT_STREAM_WRITE && mode != YT_STREAM_LINE) ||
        strcmp(yti_type_inner(pub->type), YT_OBJECT) == 0) {
        yti_error(YT_EINVAL, "A stream writer needs a publisher of a text or bytes type");
        errno = EINVAL;
        return NULL;
    }
    if (yt_channel_closed(pub)) {
        yti_error(YT_ECLOSED, "The channel is closed");
        errno = EPIPE;
        return NULL;
    }
    writer *w = calloc(1, sizeof *w);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    w->ch = pub;
    w->mode = mode;
    w->text = strcmp(yti_type_inner(pub->type), YT_TEXT) == 0;
    cookie_io_functions_t io = {.write = writer_write, .close = writer_close};
    FILE *f = fopencookie(w, "w", io);
    if (!f) {
        free(w);
        return NULL; /* errno set by fopencookie */
    }
    /* The buffer lives in the cookie, which stdio frees (through writer_close) only after it
     * has written the buffer out for the last time. */
    if (setvbuf(f, w->buf, mode == YT_STREAM_LINE ? _IOLBF : _IOFBF, sizeof w->buf) != 0) {
        int e = errno;
        fclose(f);
        errno = e ? e : EINVAL;
        return NULL;
    }
    return f;
}

static ssize_t reader_read(void *cookie, char *buf, size_t size)
{
    reader *r = cookie;
    if (size == 0)
        return 0;
    while (!r->cur || r->off >= yt_msg_size(r->cur)) {
        yt_msg_free(r->cur);
        r->cur = NULL;
        r->off = 0;
        yt_msg *m = NULL;
        int rc = yt_channel_recv(r->ch, -1, &m);
        if (rc == YT_ECLOSED)
            return 0; /* end of file */
        if (rc != YT_OK) {
            errno = errno_of(rc);
            return -1;
        }
        r->cur = m; /* may be empty (a zlib message of nothing): the loop takes the next */
    }
    size_t left = yt_msg_size(r->cur) - r->off;
    size_t n = left < size ? left : size;
    memcpy(buf, (const char *)yt_msg_data(r->cur) + r->off, n);
    r->off += n;
    return (ssize_t)n;
}

static int reader_close(void *cookie)
{
    reader *r = cookie;
    yt_msg_free(r->cur);
    free(r);
    return 0;
}

FILE *yt_stream_reader(yt_channel *sub)
{
    if (!sub || sub->kind != YTI_SUB) {
        yti_error(YT_EINVAL, "A stream reader needs a subscriber");
        errno = EINVAL;
        return NULL;
    }
    reader *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->ch = sub;
    cookie_io_functions_t io = {.read = reader_read, .close = reader_close};
    FILE *f = fopencookie(r, "r", io);
    if (!f)
        free(r);
    return f;
}

/*
 * stdio streams over channels: a writer FILE publishing what is printed into it (line by line
 * or write by write), and a reader FILE returning what a subscriber receives. Every test goes
 * through two loopback contexts.
 */
#include "netutil.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct net {
    yt_loop *loop;
    yt_context *a, *b;
    yt_connection *ca, *cb;
    yt_channel *pub; /* on a */
    yt_channel *sub; /* on b */
} net;

static void net_up(net *n, const char *type)
{
    memset(n, 0, sizeof *n);
    yt_loop_new(&n->loop);
    n->a = make_ctx(n->loop);
    n->b = make_ctx(n->loop);
    int port = 0;
    n->ca = bind_any(n->a, &port);
    n->cb = connect_port(n->b, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n->cb);
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(n->a, "out", type, &n->pub), YT_OK);
    CU_ASSERT_EQUAL_FATAL(yt_sub_new(n->b, "out", type, &n->sub), YT_OK);
}

static void net_down(net *n)
{
    yt_channel_free(n->pub);
    yt_channel_free(n->sub);
    yt_connection_release(n->ca);
    yt_connection_release(n->cb);
    yt_context_free(n->b);
    yt_context_free(n->a);
    yt_loop_free(n->loop);
}

/* The next message's text, or "" (caller frees). */
static char *next_text(yt_channel *sub, double timeout)
{
    yt_msg *m = NULL;
    if (yt_channel_recv(sub, timeout, &m) != YT_OK)
        return strdup("");
    char *s = strdup(yt_msg_text(m));
    yt_msg_free(m);
    return s;
}

static void expect(yt_channel *sub, const char *want)
{
    char *got = next_text(sub, 3.0);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static void expect_nothing(yt_channel *sub, double wait)
{
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL(yt_channel_recv(sub, wait, &m), YT_ETIMEDOUT);
    if (m)
        fprintf(stderr, "unexpected: [%s]\n", yt_msg_text(m));
    yt_msg_free(m);
}

static void test_line_mode(void)
{
    net n;
    net_up(&n, YT_TEXT);
    FILE *f = yt_stream_writer(n.pub, YT_STREAM_LINE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "line %d\n", 1);
    expect(n.sub, "line 1\n");
    /* Several lines in one call: one message each. */
    fputs("two\nthree\n", f);
    expect(n.sub, "two\n");
    expect(n.sub, "three\n");
    /* A line built from pieces is one message, sent when it is complete. */
    fputs("par", f);
    fprintf(f, "t%c", 's');
    expect_nothing(n.sub, 0.2);
    fputs(" done\nnext", f);
    expect(n.sub, "parts done\n");
    expect_nothing(n.sub, 0.1);
    /* fflush sends the partial line. */
    CU_ASSERT_EQUAL(fflush(f), 0);
    expect(n.sub, "next");
    /* Empty lines are lines. */
    fputs("\n\n", f);
    expect(n.sub, "\n");
    expect(n.sub, "\n");
    CU_ASSERT_EQUAL(fclose(f), 0);
    net_down(&n);
}

static void test_fclose_flushes_and_keeps_the_channel(void)
{
    net n;
    net_up(&n, YT_TEXT);
    FILE *f = yt_stream_writer(n.pub, YT_STREAM_LINE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("no newline yet", f);
    expect_nothing(n.sub, 0.2);
    CU_ASSERT_EQUAL(fclose(f), 0);
    expect(n.sub, "no newline yet");
    /* The channel stays open and usable. */
    CU_ASSERT_FALSE(yt_channel_closed(n.pub));
    CU_ASSERT_EQUAL(yt_channel_send_text(n.pub, "direct"), YT_OK);
    expect(n.sub, "direct");
    /* A second writer on the same channel. */
    f = yt_stream_writer(n.pub, YT_STREAM_WRITE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("again", f);
    CU_ASSERT_EQUAL(fclose(f), 0);
    expect(n.sub, "again");
    net_down(&n);
}

static void test_write_mode(void)
{
    net n;
    net_up(&n, YT_BINARY);
    FILE *f = yt_stream_writer(n.pub, YT_STREAM_WRITE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    /* Fully buffered: newlines do not cut, fflush does. */
    fputs("a\nb", f);
    fprintf(f, "%s\n", "c");
    expect_nothing(n.sub, 0.2);
    CU_ASSERT_EQUAL(fflush(f), 0);
    expect(n.sub, "a\nbc\n");
    /* Binary bytes pass unchanged (NUL included). */
    CU_ASSERT_EQUAL(fwrite("x\0y\xff", 1, 4, f), 4);
    CU_ASSERT_EQUAL(fflush(f), 0);
    yt_msg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_channel_recv(n.sub, 3.0, &m), YT_OK);
    CU_ASSERT(yt_msg_size(m) == 4 && memcmp(yt_msg_data(m), "x\0y\xff", 4) == 0);
    yt_msg_free(m);
    /* More than the buffer: it is written out in pieces, together the whole. */
    size_t big = 200000;
    char *b = malloc(big);
    for (size_t i = 0; i < big; i++)
        b[i] = (char)('a' + i % 26);
    CU_ASSERT_EQUAL(fwrite(b, 1, big, f), big);
    CU_ASSERT_EQUAL(fclose(f), 0);
    size_t got = 0;
    int pieces = 0;
    bool same = true;
    while (got < big && yt_channel_recv(n.sub, 3.0, &m) == YT_OK) {
        same = same && got + yt_msg_size(m) <= big &&
               memcmp(b + got, yt_msg_data(m), yt_msg_size(m)) == 0;
        got += yt_msg_size(m);
        pieces++;
        yt_msg_free(m);
    }
    CU_ASSERT_EQUAL(got, big);
    CU_ASSERT_TRUE(same);
    CU_ASSERT(pieces >= 2 && pieces <= 8);
    free(b);
    net_down(&n);
}

static void test_long_lines_keep_utf8_whole(void)
{
    /* A line longer than the stream's buffer arrives in pieces; on a text channel no piece may
     * end inside a character. 100001 bytes of 2-byte characters plus "\n". */
    net n;
    net_up(&n, YT_TEXT);
    FILE *f = yt_stream_writer(n.pub, YT_STREAM_LINE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputc('x', f); /* shifts the characters so buffer boundaries fall inside them */
    for (int i = 0; i < 50000; i++)
        fputs("\xc3\xa9", f);
    fputc('\n', f);
    CU_ASSERT_EQUAL(fflush(f), 0);
    size_t total = 0;
    int pieces = 0;
    bool ends_with_newline = false;
    yt_msg *m = NULL;
    while (!ends_with_newline && yt_channel_recv(n.sub, 3.0, &m) == YT_OK) {
        total += yt_msg_size(m);
        pieces++;
        const char *t = yt_msg_text(m);
        ends_with_newline = t[yt_msg_size(m) - 1] == '\n';
        yt_msg_free(m);
    }
    CU_ASSERT_TRUE(ends_with_newline);
    CU_ASSERT_EQUAL(total, 100002);
    CU_ASSERT(pieces >= 2);
    /* Invalid UTF-8 fails the write: EILSEQ, and the FILE reports the error. */
    fputs("bad \xff\n", f);
    CU_ASSERT_TRUE(ferror(f) != 0);
    CU_ASSERT_EQUAL(errno, EILSEQ);
    clearerr(f);
    fputs("good\n", f);
    CU_ASSERT_FALSE(ferror(f));
    expect(n.sub, "good\n");
    /* A character cut by fflush is completed by the next write. */
    fputs("cut \xc3", f);
    CU_ASSERT_EQUAL(fflush(f), 0);
    expect(n.sub, "cut ");
    fputs("\xa9!\n", f);
    expect(n.sub, "\xc3\xa9!\n");
    CU_ASSERT_EQUAL(fclose(f), 0);
    net_down(&n);
}

static void test_reader(void)
{
    net n;
    net_up(&n, YT_TEXT);
    FILE *r = yt_stream_reader(n.sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    /* Lines cut across messages read back whole. */
    yt_channel_send_text(n.pub, "hello\nwor");
    yt_channel_send_text(n.pub, "ld\n");
    char line[64];
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, r));
    CU_ASSERT_STRING_EQUAL(line, "hello\n");
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, r));
    CU_ASSERT_STRING_EQUAL(line, "world\n");
    /* A caller reading less than a message gets the rest on the next reads (unbuffered FILE:
     * the cookie sees the caller's small reads). */
    CU_ASSERT_EQUAL(setvbuf(r, NULL, _IONBF, 0), 0);
    yt_channel_send_text(n.pub, "abcdef");
    yt_channel_send_text(n.pub, "gh");
    char buf[8] = {0};
    CU_ASSERT_EQUAL(fread(buf, 1, 4, r), 4);
    CU_ASSERT(memcmp(buf, "abcd", 4) == 0);
    CU_ASSERT_EQUAL(fgetc(r), 'e');
    CU_ASSERT_EQUAL(fread(buf, 1, 3, r), 3);
    CU_ASSERT(memcmp(buf, "fgh", 3) == 0);
    CU_ASSERT_EQUAL(fclose(r), 0);
    /* The channel stays open after fclose. */
    CU_ASSERT_FALSE(yt_channel_closed(n.sub));
    net_down(&n);
}

typedef struct blocked {
    FILE *r;
    char line[64];
    bool got;
    bool eof;
    double returned;
} blocked;

static void *read_line(void *arg)
{
    blocked *b = arg;
    b->got = fgets(b->line, sizeof b->line, b->r) != NULL;
    b->eof = feof(b->r) != 0;
    b->returned = now_s();
    return NULL;
}

static void test_reader_blocks_until_message_and_eof_on_close(void)
{
    net n;
    net_up(&n, YT_TEXT);
    FILE *r = yt_stream_reader(n.sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    blocked b = {.r = r};
    pthread_t t;
    double t0 = now_s();
    pthread_create(&t, NULL, read_line, &b);
    usleep(300000);
    yt_channel_send_text(n.pub, "late\n");
    pthread_join(t, NULL);
    CU_ASSERT_TRUE(b.got);
    CU_ASSERT_STRING_EQUAL(b.line, "late\n");
    CU_ASSERT(b.returned - t0 >= 0.29 && b.returned - t0 < 3.0);
    /* Blocked again; closing the channel wakes it with end-of-file. */
    b = (blocked){.r = r};
    t0 = now_s();
    pthread_create(&t, NULL, read_line, &b);
    usleep(300000);
    yt_channel_close(n.sub);
    pthread_join(t, NULL);
    CU_ASSERT_FALSE(b.got);
    CU_ASSERT_TRUE(b.eof);
    CU_ASSERT(b.returned - t0 >= 0.29 && b.returned - t0 < 3.0);
    CU_ASSERT_EQUAL(fclose(r), 0);
    net_down(&n);
}

typedef struct printer {
    FILE *w;
    int lines;
} printer;

static void *print_lines(void *arg)
{
    printer *p = arg;
    for (int i = 0; i < p->lines; i++)
        fprintf(p->w, "line %d of %d\n", i, p->lines);
    fclose(p->w);
    return NULL;
}

typedef struct collector {
    FILE *r;
    int lines;
    int good;
} collector;

static void *collect_lines(void *arg)
{
    collector *c = arg;
    char line[64], want[64];
    for (int i = 0; i < c->lines && fgets(line, sizeof line, c->r); i++) {
        snprintf(want, sizeof want, "line %d of %d\n", i, c->lines);
        c->good += strcmp(line, want) == 0;
    }
    return NULL;
}

static void test_writer_thread_to_reader_thread(void)
{
    /* A program's output redirected: one thread prints into a writer on one context, another
     * reads it with fgets from a reader on another context. */
    net n;
    net_up(&n, YT_TEXT);
    printer p = {yt_stream_writer(n.pub, YT_STREAM_LINE), 2000};
    collector c = {yt_stream_reader(n.sub), 2000, 0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.r);
    pthread_t tw, tr;
    pthread_create(&tr, NULL, collect_lines, &c);
    pthread_create(&tw, NULL, print_lines, &p);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    CU_ASSERT_EQUAL(c.good, 2000);
    fclose(c.r);
    net_down(&n);
}

static void test_errors(void)
{
    net n;
    net_up(&n, YT_TEXT);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_writer(n.sub, YT_STREAM_LINE));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_writer(NULL, YT_STREAM_LINE));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_writer(n.pub, (yt_stream_mode)7));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_reader(n.pub));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_reader(NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* OBJECT channels carry encoded values, not bytes. */
    yt_channel *obj;
    CU_ASSERT_EQUAL_FATAL(yt_pub_new(n.a, "objs", YT_OBJECT, &obj), YT_OK);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_writer(obj, YT_STREAM_WRITE));
    CU_ASSERT_EQUAL(errno, EINVAL);
    yt_channel_free(obj);
    /* Writing after the channel closed fails with EPIPE. */
    FILE *f = yt_stream_writer(n.pub, YT_STREAM_LINE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    yt_channel_close(n.pub);
    errno = 0;
    fputs("into the void\n", f);
    CU_ASSERT_TRUE(ferror(f) != 0);
    CU_ASSERT_EQUAL(errno, EPIPE);
    fclose(f);
    errno = 0;
    CU_ASSERT_PTR_NULL(yt_stream_writer(n.pub, YT_STREAM_LINE));
    CU_ASSERT_EQUAL(errno, EPIPE);
    net_down(&n);
}

static void test_zlib_text_stream(void)
{
    net n;
    net_up(&n, YT_ZLIB(YT_TEXT));
    FILE *w = yt_stream_writer(n.pub, YT_STREAM_LINE);
    FILE *r = yt_stream_reader(n.sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    fprintf(w, "compressed %s\n", "line");
    char line[64];
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, r));
    CU_ASSERT_STRING_EQUAL(line, "compressed line\n");
    fclose(w);
    fclose(r);
    net_down(&n);
}

void yt_suite_stream(void)
{
    static const yt_test_def t[] = {
        {"line mode: one message per line", test_line_mode},
        {"fclose flushes a partial line, the channel stays",
         test_fclose_flushes_and_keeps_the_channel},
        {"write mode: one message per write", test_write_mode},
        {"long lines keep UTF-8 characters whole", test_long_lines_keep_utf8_whole},
        {"reader: fgets, short reads", test_reader},
        {"reader blocks until a message, EOF on close",
         test_reader_blocks_until_message_and_eof_on_close},
        {"writer thread to reader thread", test_writer_thread_to_reader_thread},
        {"errors", test_errors},
        {"zlib-txt stream", test_zlib_text_stream},
        {NULL, NULL}};
    yt_add_suite("stream", t);
}

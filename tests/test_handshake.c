/*
 * Suite "handshake": the pure handshake functions (yti_greeting_parse, yti_hs_reason,
 * yti_hs_host_reply) against every line of tests/vectors/handshake_parse.txt, plus limits and
 * garbage input.
 */
#include "testutil.h"
#include "uid.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Data lines in tests/vectors/handshake_parse.txt. */
#define HANDSHAKE_PARSE_LINES 37

#define TWO60 (UINT64_C(1) << 60)
#define HOST_PID 4242 /* the pid of the reference host that produced the vectors */

/* yti_hs_reason, with NULL (success) made printable so a wrong result fails instead of crashing. */
static const char *reason(yti_hs_result r)
{
    const char *why = yti_hs_reason(r);
    return why ? why : "(success)";
}

/* Lines the reference accepts and we refuse on purpose (Q19): a negative id or pid, or an id
 * wider than 64 bits. */
static bool is_q19(const yt_vec_line *l)
{
    return strcmp(l->field[4], "OK") == 0 &&
           (l->field[5][0] == '-' || l->field[6][0] == '-' || strlen(l->field[5]) > 16);
}

static void test_vectors(void)
{
    yt_vec_file *f = yt_vec_open("handshake_parse.txt");
    if (!f)
        return;
    int lines = 0, q19 = 0, host_lines = 0, exact_replies = 0, padded_replies = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        lines++;
        CU_ASSERT_EQUAL_FATAL(l->nfields, 8);
        bool host = strcmp(l->field[0], "HOST") == 0;
        CU_ASSERT(host || strcmp(l->field[0], "CLIENT") == 0);
        uint64_t own = strtoull(l->field[1], NULL, 16);
        size_t in_len = 0;
        unsigned char *in = yt_unescape(l->field[2], &in_len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(in);
        /* Column 4 (EOF or WAIT) only says how the reference's reader stopped; either way the
         * bytes received are what the pure parser sees, so it plays no part here. */
        CU_ASSERT(strcmp(l->field[3], "EOF") == 0 || strcmp(l->field[3], "WAIT") == 0);

        uint64_t id = 0x5a5a;
        long pid = 0x5a5a;
        yti_hs_result r = yti_greeting_parse(in, in_len, own, &id, &pid);
        const char *outcome = l->field[4];
        bool ok = strcmp(outcome, "OK") == 0;

        if (is_q19(l)) {
            /* Divergence Q19: the reference accepts "-12.-5" and a 76-bit id; we refuse them as
             * unparsable, so our host answers "could not parse id" instead of its greeting. */
            q19++;
            CU_ASSERT_EQUAL(r, YTI_HS_BAD_ID);
            CU_ASSERT_STRING_EQUAL(reason(r), "Handshake failed.");
            CU_ASSERT_EQUAL(id, 0x5a5a);
            CU_ASSERT_EQUAL(pid, 0x5a5a);
            if (host) {
                char reply[YTI_GREETING_MAX];
                yti_hs_host_reply(r, own, HOST_PID, reply);
                CU_ASSERT_STRING_EQUAL(reply, "ERROR: could not parse id.\r\n");
            }
            free(in);
            continue;
        }

        if (ok) {
            CU_ASSERT_EQUAL(r, YTI_HS_OK);
            CU_ASSERT_PTR_NULL(yti_hs_reason(r));
            CU_ASSERT_EQUAL(id, strtoull(l->field[5], NULL, 16));
            CU_ASSERT_EQUAL(pid, strtol(l->field[6], NULL, 10));
        } else {
            CU_ASSERT_NOT_EQUAL(r, YTI_HS_OK);
            CU_ASSERT_STRING_EQUAL(reason(r), outcome);
            CU_ASSERT_STRING_EQUAL(l->field[5], "-");
            CU_ASSERT_STRING_EQUAL(l->field[6], "-");
            CU_ASSERT_EQUAL(id, 0x5a5a); /* untouched on failure */
            CU_ASSERT_EQUAL(pid, 0x5a5a);
        }
        if (strcmp(ok ? "(success)" : outcome, reason(r)) != 0)
            fprintf(stderr, "\n  line %d: result %d, expected '%s'\n", l->lineno, (int)r, outcome);

        if (!host) {
            /* A client never answers the host's line. */
            CU_ASSERT_STRING_EQUAL(l->field[7], "-");
            free(in);
            continue;
        }
        host_lines++;
        size_t want_len = 0;
        unsigned char *want = strcmp(l->field[7], "-") == 0
                                  ? (unsigned char *)calloc(1, 1)
                                  : yt_unescape(l->field[7], &want_len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        char reply[YTI_GREETING_MAX];
        memset(reply, 'x', sizeof reply);
        size_t n = yti_hs_host_reply(r, own, HOST_PID, reply);
        CU_ASSERT_EQUAL(reply[n], '\0');
        if (own >= TWO60 || (r != YTI_HS_OK && r != YTI_HS_SELF)) {
            /* Error lines, silence, and greetings of ids >= 2^60 are the reference's bytes. */
            exact_replies++;
            CU_ASSERT_EQUAL(n, want_len);
            CU_ASSERT(n == want_len && memcmp(reply, want, n) == 0);
        } else {
            /* Own id 0123456789abcdef (< 2^60): the reference right-pads its greeting (Q2), we
             * pad on the left so that the peer reads our id exactly. */
            padded_replies++;
            char expect[YTI_GREETING_MAX];
            snprintf(expect, sizeof expect, "YOTON!%016" PRIx64 ".%d\r\n", own, HOST_PID);
            CU_ASSERT_STRING_EQUAL(reply, expect);
            CU_ASSERT_STRING_EQUAL((char *)want, "YOTON!123456789abcdef0.4242\r\n");
        }
        free(want);
        free(in);
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, HANDSHAKE_PARSE_LINES);
    CU_ASSERT_EQUAL(q19, 2);
    CU_ASSERT_EQUAL(host_lines, 25);
    CU_ASSERT_EQUAL(exact_replies, 23);
    CU_ASSERT_EQUAL(padded_replies, 2);
}

static void test_reasons_and_replies(void)
{
    CU_ASSERT_PTR_NULL(yti_hs_reason(YTI_HS_OK));
    CU_ASSERT_STRING_EQUAL(yti_hs_reason(YTI_HS_NOT_YOTON), "Handshake failed.");
    CU_ASSERT_STRING_EQUAL(yti_hs_reason(YTI_HS_BAD_ID), "Handshake failed.");
    CU_ASSERT_STRING_EQUAL(yti_hs_reason(YTI_HS_SELF),
                           "Handshake failed (context cannot connect to self).");
    CU_ASSERT_STRING_EQUAL(yti_hs_reason(YTI_HS_TIMEOUT), "Handshake timed out.");

    char out[YTI_GREETING_MAX];
    const uint64_t own = UINT64_C(0xfedcba9876543210);
    CU_ASSERT_EQUAL(yti_hs_host_reply(YTI_HS_OK, own, 7, out), 26);
    CU_ASSERT_STRING_EQUAL(out, "YOTON!fedcba9876543210.7\r\n");
    CU_ASSERT_EQUAL(yti_hs_host_reply(YTI_HS_SELF, own, 7, out), 26);
    CU_ASSERT_STRING_EQUAL(out, "YOTON!fedcba9876543210.7\r\n");
    CU_ASSERT_EQUAL(yti_hs_host_reply(YTI_HS_NOT_YOTON, own, 7, out), 23);
    CU_ASSERT_STRING_EQUAL(out, "ERROR: this is Yoton.\r\n");
    CU_ASSERT_EQUAL(yti_hs_host_reply(YTI_HS_BAD_ID, own, 7, out), 28);
    CU_ASSERT_STRING_EQUAL(out, "ERROR: could not parse id.\r\n");
    CU_ASSERT_EQUAL(yti_hs_host_reply(YTI_HS_TIMEOUT, own, 7, out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
}

static void test_parse_cases(void)
{
    uint64_t id = 0;
    long pid = 0;
    const uint64_t own = 1;
    /* No CR LF at all, spaces and tabs around, upper-case hex. */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!\tAB .\t12", 14, own, &id, &pid), YTI_HS_OK);
    CU_ASSERT_EQUAL(id, 0xab);
    CU_ASSERT_EQUAL(pid, 12);
    /* Output pointers are optional. */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!2.3\r\n", 11, own, NULL, NULL), YTI_HS_OK);
    /* Largest id and "-0" (not negative). */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!ffffffffffffffff.-0\r\n", 27, own, &id, &pid),
                    YTI_HS_OK);
    CU_ASSERT_EQUAL(id, UINT64_MAX);
    CU_ASSERT_EQUAL(pid, 0);
    /* Q19: one bit too many, a negative id, a pid beyond 64 bits, all refused. */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!10000000000000000.1", 25, own, &id, &pid),
                    YTI_HS_BAD_ID);
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!-1.1", 10, own, &id, &pid), YTI_HS_BAD_ID);
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!1.-1", 10, own, &id, &pid), YTI_HS_BAD_ID);
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!1.99999999999999999999", 28, own, &id, &pid),
                    YTI_HS_BAD_ID);
    /* Self detected on the exact id, whatever its written form; outputs untouched. */
    id = 77;
    pid = 77;
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!0x0_1.5\r\n", 15, own, &id, &pid), YTI_HS_SELF);
    CU_ASSERT_EQUAL(id, 77);
    CU_ASSERT_EQUAL(pid, 77);
    /* Bytes after the CR LF belong to the package stream; the reader must not pass them. */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!2.3\r\nXY", 13, own, &id, &pid), YTI_HS_BAD_ID);
    /* Only the prefix is checked for NOT_YOTON; "YOTON" alone is too short. */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON", 5, own, &id, &pid), YTI_HS_NOT_YOTON);
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!", 6, own, &id, &pid), YTI_HS_BAD_ID);
    /* Nothing, or nothing that decodes, is a time-out (the reference tests the decoded text). */
    CU_ASSERT_EQUAL(yti_greeting_parse("", 0, own, &id, &pid), YTI_HS_TIMEOUT);
    CU_ASSERT_EQUAL(yti_greeting_parse(NULL, 0, own, &id, &pid), YTI_HS_TIMEOUT);
    CU_ASSERT_EQUAL(yti_greeting_parse("\xff\xfe\xc3", 3, own, &id, &pid), YTI_HS_TIMEOUT);
    /* Invalid bytes are dropped before the prefix test, as the reference decodes first. */
    CU_ASSERT_EQUAL(yti_greeting_parse("\xffYOT\x80ON!5.6", 11, own, &id, &pid), YTI_HS_OK);
    CU_ASSERT_EQUAL(id, 5);
    CU_ASSERT_EQUAL(pid, 6);
    /* Embedded NUL is not whitespace. */
    CU_ASSERT_EQUAL(yti_greeting_parse("YOTON!5\0.6", 10, own, &id, &pid), YTI_HS_BAD_ID);
}

static void test_line_limit(void)
{
    unsigned char line[YTI_HANDSHAKE_LINE_MAX + 8];
    /* Exactly YTI_HANDSHAKE_LINE_MAX bytes: a greeting padded with spaces before its CR LF. */
    memset(line, ' ', sizeof line);
    memcpy(line, "YOTON!12.3", 10);
    line[YTI_HANDSHAKE_LINE_MAX - 2] = '\r';
    line[YTI_HANDSHAKE_LINE_MAX - 1] = '\n';
    uint64_t id = 0;
    long pid = 0;
    CU_ASSERT_EQUAL(yti_greeting_parse(line, YTI_HANDSHAKE_LINE_MAX, 1, &id, &pid), YTI_HS_OK);
    CU_ASSERT_EQUAL(id, 0x12);
    CU_ASSERT_EQUAL(pid, 3);
    /* One byte more is not a yoton greeting, however it looks. */
    line[YTI_HANDSHAKE_LINE_MAX - 1] = ' ';
    line[YTI_HANDSHAKE_LINE_MAX] = '\n';
    CU_ASSERT_EQUAL(yti_greeting_parse(line, YTI_HANDSHAKE_LINE_MAX + 1, 1, &id, &pid),
                    YTI_HS_NOT_YOTON);
    /* A very long run read from an untrusted peer: refused without reading beyond the limit
     * (the buffer is sized exactly, so ASan would see an over-read). */
    size_t big = 1u << 20;
    unsigned char *p = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(p, '1', big);
    memcpy(p, "YOTON!1.", 8);
    CU_ASSERT_EQUAL(yti_greeting_parse(p, big, 1, &id, &pid), YTI_HS_NOT_YOTON);
    free(p);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Deterministic random bytes, raw and behind a "YOTON!" prefix, and random mixes of the
 * characters the parser cares about: never a crash, always a defined result, outputs written
 * only on success. Each buffer is allocated to its exact size so ASan sees any over-read. */
static void test_garbage(void)
{
    static const char alphabet[] = "YOTON!.0123456789abcdefABCDEFx_+- \t\r\n\xff\xd9\xa3";
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
    int counts[5] = {0};
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(xorshift(&seed) % 300);
        unsigned char *b = malloc(len ? len : 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        int mode = i % 3;
        for (size_t k = 0; k < len; k++) {
            uint64_t x = xorshift(&seed);
            b[k] = mode == 0 ? (unsigned char)x
                             : (unsigned char)alphabet[x % (sizeof alphabet - 1)];
        }
        if (mode > 0 && len >= 6)
            memcpy(b, "YOTON!", 6);
        uint64_t id = 0x5a5a;
        long pid = 0x5a5a;
        yti_hs_result r = yti_greeting_parse(b, len, 3, &id, &pid);
        CU_ASSERT((int)r >= (int)YTI_HS_OK && (int)r <= (int)YTI_HS_TIMEOUT);
        if ((int)r >= (int)YTI_HS_OK && (int)r <= (int)YTI_HS_TIMEOUT)
            counts[r]++;
        if (r != YTI_HS_OK) {
            CU_ASSERT_EQUAL(id, 0x5a5a);
            CU_ASSERT_EQUAL(pid, 0x5a5a);
        } else {
            CU_ASSERT(pid >= 0);
        }
        if (len > YTI_HANDSHAKE_LINE_MAX)
            CU_ASSERT_EQUAL(r, YTI_HS_NOT_YOTON);
        free(b);
    }
    /* The mixes reach the interesting results, not just the first test. */
    CU_ASSERT(counts[YTI_HS_NOT_YOTON] > 0);
    CU_ASSERT(counts[YTI_HS_BAD_ID] > 0);
}

void yt_suite_handshake(void)
{
    static const yt_test_def t[] = {{"parse_vectors", test_vectors},
                                    {"reasons_and_replies", test_reasons_and_replies},
                                    {"parse_cases", test_parse_cases},
                                    {"line_limit", test_line_limit},
                                    {"garbage", test_garbage},
                                    {NULL, NULL}};
    yt_add_suite("handshake", t);
}

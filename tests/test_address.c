/*
 * Suite "address": yti_address_parse against the reference's split_address vectors and the
 * publichost / limit cases, and the Python int() parser it is built on (yti_parse_pyint,
 * yti_parse_pyuint).
 */
#include "address.h"
#include "hash.h"
#include "testutil.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_FORMAT "Address should be in format 'host:port'."
#define MSG_OFFSET "Invalid offset in address"
#define MSG_RANGE "The port must be in the range [0, 2^16>."

/* Data lines in tests/vectors/split_address.txt. */
#define SPLIT_ADDRESS_LINES 55

/* Fills an address with a pattern so a test can see that a failing call left it alone. */
static void poison(yti_address *a)
{
    memset(a, 0x5a, sizeof *a);
}

static bool is_poisoned(const yti_address *a)
{
    yti_address p;
    poison(&p);
    return memcmp(a, &p, sizeof p) == 0;
}

/* Parses and expects success with the given fields. */
static void expect_ok(const char *text, const char *protocol, const char *host, int port)
{
    yti_address a;
    poison(&a);
    int rc = yti_address_parse(text, &a);
    CU_ASSERT_EQUAL(rc, YT_OK);
    if (rc != YT_OK) {
        fprintf(stderr, "\n  address '%s': %s\n", text, yt_last_error());
        return;
    }
    /* Both strings must be terminated inside their fields before they can be compared. */
    bool terminated = memchr(a.protocol, '\0', sizeof a.protocol) != NULL &&
                      memchr(a.host, '\0', sizeof a.host) != NULL;
    CU_ASSERT_TRUE_FATAL(terminated);
    CU_ASSERT_STRING_EQUAL(a.protocol, protocol);
    CU_ASSERT_STRING_EQUAL(a.host, host);
    CU_ASSERT_EQUAL(a.port, port);
    if (strcmp(a.protocol, protocol) != 0 || strcmp(a.host, host) != 0 || a.port != port)
        fprintf(stderr, "\n  address '%s': got '%s' '%s' %d\n", text, a.protocol, a.host, a.port);
}

/* Parses and expects YT_EADDR with exactly this detail, the output left untouched. */
static void expect_err(const char *text, const char *detail)
{
    yti_address a;
    poison(&a);
    int rc = yti_address_parse(text, &a);
    CU_ASSERT_EQUAL(rc, YT_EADDR);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), detail);
    CU_ASSERT_TRUE(is_poisoned(&a));
    if (rc != YT_EADDR || strcmp(yt_last_error(), detail) != 0)
        fprintf(stderr, "\n  address '%s': rc %d detail '%s', expected '%s'\n",
                text ? text : "(null)", rc, yt_last_error(), detail);
}

/* Every line of split_address.txt. */
static void test_vectors(void)
{
    yt_vec_file *f = yt_vec_open("split_address.txt");
    if (!f)
        return;
    int lines = 0, errors = 0, divergent = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        lines++;
        const char *addr = l->field[0];
        if (l->nfields == 3 && strcmp(l->field[1], "ERROR") == 0) {
            errors++;
            const char *msg = l->field[2];
            if (strncmp(msg, "ValueError: ", 12) == 0)
                msg += 12;
            /* "tcp://localhost": the reference fails while unpacking the split (its message is
             * Python's own); ours is the format message, as address.h documents. */
            if (strncmp(msg, "not enough values to unpack", 27) == 0)
                msg = MSG_FORMAT;
            expect_err(addr, msg);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(l->nfields, 4);
        long port = strtol(l->field[3], NULL, 10);
        if (port < 0 || port > 65535) {
            /* Divergence (spec 7 step 6, Q11): the reference only refuses port > 65536, so it
             * passes 65536 and -1 ("localhost:65536", "localhost:-1"); we refuse every port
             * outside 0..65535. */
            divergent++;
            expect_err(addr, MSG_RANGE);
            continue;
        }
        expect_ok(addr, l->field[1], l->field[2], (int)port);
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, SPLIT_ADDRESS_LINES);
    CU_ASSERT_EQUAL(errors, 11);
    CU_ASSERT_EQUAL(divergent, 2);
}

/* The distinct IPv4 addresses of this machine's name, in resolver order; -1 when it does not
 * resolve. Written independently of address.c on purpose. */
static int local_addrs(char addrs[][INET_ADDRSTRLEN], int max)
{
    char name[256] = {0};
    if (gethostname(name, sizeof name - 1) != 0)
        return -1;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return -1;
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        char s[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr, s, sizeof s);
        bool seen = false;
        for (int i = 0; i < n; i++)
            seen = seen || strcmp(addrs[i], s) == 0;
        if (!seen)
            strcpy(addrs[n++], s);
    }
    freeaddrinfo(res);
    return n;
}

static void test_publichost(void)
{
    char addrs[16][INET_ADDRSTRLEN];
    int n = local_addrs(addrs, 16);
    if (n <= 0) {
        /* No address for our own name: every selecting form must fail, never guess. */
        yti_address a;
        CU_ASSERT_EQUAL(yti_address_parse("publichost:80", &a), YT_EADDR);
        CU_ASSERT_EQUAL(yti_address_parse("publichost0:80", &a), YT_EADDR);
        return;
    }
    expect_ok("publichost:80", "tcp", addrs[0], 80);
    expect_ok("PUBLICHOST:pyzo", "tcp", addrs[0], 53281);
    expect_ok("publichost0:80", "tcp", addrs[0], 80);
    expect_ok("tcp://PublicHost0:1", "tcp", addrs[0], 1);
    char text[64], detail[96];
    for (int i = 0; i < n && i < 10; i++) {
        snprintf(text, sizeof text, "publichost%d:80", i);
        expect_ok(text, "tcp", addrs[i], 80);
    }
    if (n < 10) {
        snprintf(text, sizeof text, "publichost%d:80", n);
        snprintf(detail, sizeof detail, "Invalid index (%d) in public host addresses.", n);
        expect_err(text, detail);
    }
    /* "12" is a substring of "0123456789", so it selects address 12 (Q11). */
    if (n > 12)
        expect_ok("publichost12:80", "tcp", addrs[12], 80);
    else
        expect_err("publichost12:80", "Invalid index (12) in public host addresses.");
    expect_err("publichost0123456789:80", "Invalid index (123456789) in public host addresses.");
    /* Remainders that are not substrings of "0123456789" leave the host as typed (Q11, kept). */
    expect_ok("publichost21:80", "tcp", "publichost21", 80);
    expect_ok("PublicHost 0:80", "tcp", "PublicHost 0", 80);
    expect_ok("publichost-1:80", "tcp", "publichost-1", 80);
    expect_ok("publichost0x:80", "tcp", "publichost0x", 80);
    expect_ok("publichos:80", "tcp", "publichos", 80);
    /* The host error comes before any port error, as in the reference. */
    expect_err("publichost0123456789:99999", "Invalid index (123456789) in public host addresses.");
}

static void test_limits(void)
{
    char buf[600];
    char host[YTI_HOST_MAX + 1];
    /* The longest host that fits, then one byte more: refused, never truncated. */
    memset(host, 'h', YTI_HOST_MAX - 1);
    host[YTI_HOST_MAX - 1] = '\0';
    snprintf(buf, sizeof buf, "%s:80", host);
    expect_ok(buf, "tcp", host, 80);
    snprintf(buf, sizeof buf, "h%s:80", host);
    expect_err(buf, "Host name too long");
    snprintf(buf, sizeof buf, "tcp://h%s:80", host);
    expect_err(buf, "Host name too long");

    char proto[YTI_PROTO_MAX + 1];
    memset(proto, 'P', YTI_PROTO_MAX - 1);
    proto[YTI_PROTO_MAX - 1] = '\0';
    char lower[YTI_PROTO_MAX];
    memset(lower, 'p', YTI_PROTO_MAX - 1);
    lower[YTI_PROTO_MAX - 1] = '\0';
    snprintf(buf, sizeof buf, "%s://localhost:80", proto);
    expect_ok(buf, lower, "127.0.0.1", 80);
    snprintf(buf, sizeof buf, "P%s://localhost:80", proto);
    expect_err(buf, "Protocol name too long");

    expect_err("localhost:8\xff", "Address is not valid UTF-8");
    expect_err("\xc3(localhost:80", "Address is not valid UTF-8");
    expect_err("local\xed\xa0\x80host:80", "Address is not valid UTF-8"); /* surrogate */
    expect_err(NULL, MSG_FORMAT);
    CU_ASSERT_EQUAL(yti_address_parse("localhost:80", NULL), YT_EADDR);

    /* An address is a C string: an embedded NUL ends it, whatever follows. */
    static const char with_nul[] = "localhost:8\0" "0";
    expect_ok(with_nul, "tcp", "127.0.0.1", 8);

    /* Non-ASCII hosts are kept verbatim, bytes and case included. */
    expect_ok("h\xc3\xa9te:80", "tcp", "h\xc3\xa9te", 80);
    expect_err("tcp://", MSG_FORMAT);
    expect_err("://", MSG_FORMAT);
    /* No "://": empty host, port text ":" hashed as a name. */
    uint32_t h;
    CU_ASSERT_EQUAL(yti_port_hash(":", 1, &h), YT_OK);
    expect_ok("::", "tcp", "", (int)h);
}

static void test_ports(void)
{
    uint32_t h;
    /* Valid Python ints too large for a port: out of range, not hashed as names. */
    expect_err("localhost:99999999999999999999", MSG_RANGE);
    expect_err("localhost:-99999999999999999999", MSG_RANGE);
    expect_err("localhost:9223372036854775807", MSG_RANGE);
    expect_err("localhost:pyzo+99999999999999999999", MSG_RANGE);
    expect_err("localhost:pyzo+9223372036854775807", MSG_RANGE);
    expect_err("localhost:pyzo+-9223372036854775808", MSG_RANGE);
    expect_err("localhost:pyzo+-99999", MSG_RANGE);
    /* pyzo hashes to 53281: the offsets that reach exactly 0 and 65535, and one beyond. */
    expect_ok("localhost:pyzo+-53281", "tcp", "127.0.0.1", 0);
    expect_err("localhost:pyzo+-53282", MSG_RANGE);
    expect_ok("localhost:pyzo+12254", "tcp", "127.0.0.1", 65535);
    expect_err("localhost:pyzo+12255", MSG_RANGE);
    expect_ok("localhost:pyzo+1_0", "tcp", "127.0.0.1", 53291);
    expect_ok("localhost:pyzo+\xd9\xa3", "tcp", "127.0.0.1", 53284); /* Arabic-Indic three */
    expect_err("localhost:pyzo+1__0", MSG_OFFSET);
    expect_err("localhost:pyzo+0x10", MSG_OFFSET);
    /* The split is at the first '+': the rest must be an int as a whole. */
    expect_ok("localhost:pyzo++1", "tcp", "127.0.0.1", 53282); /* offset "+1" */
    expect_err("localhost:pyzo+1+1", MSG_OFFSET);
    /* Python int() forms of a plain port. */
    expect_ok("localhost:-0", "tcp", "127.0.0.1", 0);
    expect_ok("localhost:0_0", "tcp", "127.0.0.1", 0);
    expect_ok("localhost:\t65535\n", "tcp", "127.0.0.1", 65535);
    expect_ok("localhost:00000000000000000000000000080", "tcp", "127.0.0.1", 80);
    expect_ok("localhost:\xef\xbc\x98\xef\xbc\x90", "tcp", "127.0.0.1", 80); /* fullwidth 80 */
    /* Not ints, so hashed: a syntax error after too many digits is still "not an int". */
    CU_ASSERT_EQUAL(yti_port_hash("99999999999999999999x", 21, &h), YT_OK);
    expect_ok("localhost:99999999999999999999x", "tcp", "127.0.0.1", (int)h);
    CU_ASSERT_EQUAL(yti_port_hash("8__0", 4, &h), YT_OK);
    expect_ok("localhost:8__0", "tcp", "127.0.0.1", (int)h);
    CU_ASSERT_EQUAL(yti_port_hash("h\xc3\xa9", 3, &h), YT_OK);
    expect_ok("localhost:h\xc3\xa9", "tcp", "127.0.0.1", (int)h);
}

/* ---- yti_parse_pyint / yti_parse_pyuint ---- */

enum { OK_, BAD, RANGE };

typedef struct pyint_case {
    const char *text;
    int base;
    int expect; /* OK_, BAD (invalid literal) or RANGE ("out of range") */
    int64_t value;
} pyint_case;

static const pyint_case pyint_cases[] = {
    {"0", 10, OK_, 0},
    {"42", 10, OK_, 42},
    {"007", 10, OK_, 7}, /* leading zeros are fine for an explicit base */
    {"+5", 10, OK_, 5},
    {"-5", 10, OK_, -5},
    {"-0", 10, OK_, 0},
    {" \t\n\r\v\f12 \t\n", 10, OK_, 12},
    {"\xe3\x80\x80" "12\xc2\xa0", 10, OK_, 12},       /* IDEOGRAPHIC SPACE, NO-BREAK SPACE */
    {"\xe2\x80\x89-3\xe2\x80\xa8", 10, OK_, -3},      /* THIN SPACE, LINE SEPARATOR */
    {"\xc2\x85" "7", 10, OK_, 7},                     /* NEL is whitespace ... */
    {"\x1c" "7", 10, BAD, 0}, /* ... but ASCII 0x1c..0x1f are not, to int(), though isspace() */
    {"7\x1f", 10, BAD, 0},
    {"7\x7f", 10, BAD, 0},
    {"\x0b" "7\x0c", 10, OK_, 7},                     /* VT and FF are */
    {"1_2", 10, OK_, 12},
    {"1_2_3", 10, OK_, 123},
    {"1__2", 10, BAD, 0},
    {"_1", 10, BAD, 0},
    {"1_", 10, BAD, 0},
    {"+_1", 10, BAD, 0},
    {"1_ ", 10, BAD, 0},
    {"_", 10, BAD, 0},
    {"", 10, BAD, 0},
    {"   ", 10, BAD, 0},
    {"+", 10, BAD, 0},
    {"-", 10, BAD, 0},
    {"+-1", 10, BAD, 0},
    {"--1", 10, BAD, 0},
    {"- 1", 10, BAD, 0},
    {"1 2", 10, BAD, 0},
    {"1.0", 10, BAD, 0},
    {"1e3", 10, BAD, 0},
    {"0x10", 10, BAD, 0},
    {"a", 10, BAD, 0},
    {"\xe2\x80\x8b" "1", 10, BAD, 0},                 /* ZERO WIDTH SPACE is not whitespace */
    {"\xd9\xa3", 10, OK_, 3},                          /* ARABIC-INDIC DIGIT THREE */
    {"1\xd9\xa3", 10, OK_, 13},
    {"\xef\xbc\x91\xef\xbc\x92", 10, OK_, 12},         /* FULLWIDTH 1 2 */
    {"\xf0\x9d\x9f\x8e\xf0\x9d\x9f\x8f", 10, OK_, 1},  /* MATHEMATICAL BOLD 0 1 */
    {"\xd9\xa3_\xd9\xa3", 10, OK_, 33},
    {"\xc2\xb2", 10, BAD, 0},                          /* SUPERSCRIPT TWO: not decimal */
    {"\xe2\x85\xa0", 10, BAD, 0},                      /* ROMAN NUMERAL ONE */
    {"9223372036854775807", 10, OK_, INT64_MAX},
    {"9223372036854775808", 10, RANGE, 0},
    {"-9223372036854775808", 10, OK_, INT64_MIN},
    {"-9223372036854775809", 10, RANGE, 0},
    {"18446744073709551616", 10, RANGE, 0},
    {"99999999999999999999999999999999", 10, RANGE, 0},
    {"99999999999999999999999999999999x", 10, BAD, 0}, /* syntax before range */
    {"0000000000000000000000000000000000000000000000000000000000000000001", 10, OK_, 1},
    {"ff", 16, OK_, 255},
    {"FF", 16, OK_, 255},
    {"aBc", 16, OK_, 0xabc},
    {"0x1f", 16, OK_, 31},
    {"0X1F", 16, OK_, 31},
    {"0x_1f", 16, OK_, 31},  /* one underscore right after the prefix */
    {"0x1_f", 16, OK_, 31},
    {"0x__1f", 16, BAD, 0},
    {"0x_", 16, BAD, 0},
    {"0x", 16, BAD, 0},
    {"0x1f_", 16, BAD, 0},
    {"x1f", 16, BAD, 0},
    {"00x1f", 16, BAD, 0},
    {"0_x1f", 16, BAD, 0},
    {"-0x1f", 16, OK_, -31},
    {" +0x1f ", 16, OK_, 31},
    {"0", 16, OK_, 0},
    {"0_0", 16, OK_, 0},
    {"\xd9\xa0x1f", 16, OK_, 31},                      /* CPython maps digits first: 0x prefix */
    {"\xd9\xa3" "f", 16, OK_, 0x3f},
    {"\xef\xbd\x81", 16, BAD, 0},                      /* FULLWIDTH a is not a hex digit */
    {"g", 16, BAD, 0},
    {"7fffffffffffffff", 16, OK_, INT64_MAX},
    {"8000000000000000", 16, RANGE, 0},
    {"-8000000000000000", 16, OK_, INT64_MIN},
    {"-0x8000000000000001", 16, RANGE, 0},
};

static void test_pyint_table(void)
{
    size_t n = sizeof pyint_cases / sizeof pyint_cases[0];
    for (size_t i = 0; i < n; i++) {
        const pyint_case *c = &pyint_cases[i];
        int64_t v = 777;
        yti_error_clear();
        int rc = yti_parse_pyint(c->text, strlen(c->text), c->base, &v);
        bool good;
        if (c->expect == OK_) {
            good = rc == YT_OK && v == c->value;
        } else {
            const char *want = c->expect == RANGE ? "out of range" : NULL;
            good = rc == YT_EINVAL && v == 777 &&
                   (want ? strcmp(yt_last_error(), want) == 0
                         : strncmp(yt_last_error(), "invalid literal", 15) == 0);
        }
        CU_ASSERT_TRUE(good);
        if (!good)
            fprintf(stderr, "\n  pyint case %zu '%s' base %d: rc %d value %lld detail '%s'\n", i,
                    c->text, c->base, rc, (long long)v, yt_last_error());
    }
}

typedef struct pyuint_case {
    const char *text;
    int base;
    int expect;
    uint64_t value;
} pyuint_case;

static const pyuint_case pyuint_cases[] = {
    {"18446744073709551615", 10, OK_, UINT64_MAX},
    {"18446744073709551616", 10, RANGE, 0},
    {"ffffffffffffffff", 16, OK_, UINT64_MAX},
    {"0xFFFF_FFFF_FFFF_FFFF", 16, OK_, UINT64_MAX},
    {"10000000000000000", 16, RANGE, 0},
    {"123456789abcdef0123", 16, RANGE, 0},
    {"0123456789abcdef", 16, OK_, UINT64_C(0x0123456789abcdef)},
    {"-0", 16, OK_, 0},
    {"-0x0", 16, OK_, 0},
    {"-1", 16, RANGE, 0}, /* a valid int, but negative */
    {"-12", 10, RANGE, 0},
    {"+12", 10, OK_, 12},
    {" 1f ", 16, OK_, 31},
    {"1_2", 16, OK_, 0x12},
    {"", 16, BAD, 0},
    {"-", 16, BAD, 0},
    {"xyz", 16, BAD, 0},
};

static void test_pyuint_table(void)
{
    size_t n = sizeof pyuint_cases / sizeof pyuint_cases[0];
    for (size_t i = 0; i < n; i++) {
        const pyuint_case *c = &pyuint_cases[i];
        uint64_t v = 777;
        yti_error_clear();
        int rc = yti_parse_pyuint(c->text, strlen(c->text), c->base, &v);
        bool good;
        if (c->expect == OK_)
            good = rc == YT_OK && v == c->value;
        else
            good = rc == YT_EINVAL && v == 777 &&
                   (c->expect == RANGE ? strcmp(yt_last_error(), "out of range") == 0
                                       : strncmp(yt_last_error(), "invalid literal", 15) == 0);
        CU_ASSERT_TRUE(good);
        if (!good)
            fprintf(stderr, "\n  pyuint case %zu '%s': rc %d detail '%s'\n", i, c->text, rc,
                    yt_last_error());
    }
}

static void test_pyint_bytes(void)
{
    int64_t v = 777;
    uint64_t u = 777;
    /* Only len bytes are read: no NUL terminator needed, trailing bytes ignored. */
    CU_ASSERT_EQUAL(yti_parse_pyint("12345", 2, 10, &v), YT_OK);
    CU_ASSERT_EQUAL(v, 12);
    CU_ASSERT_EQUAL(yti_parse_pyuint("abcdef", 3, 16, &u), YT_OK);
    CU_ASSERT_EQUAL(u, 0xabc);
    /* An embedded NUL is not whitespace or a digit. */
    v = 777;
    CU_ASSERT_EQUAL(yti_parse_pyint("1\0", 2, 10, &v), YT_EINVAL);
    CU_ASSERT_EQUAL(yti_parse_pyint("\0" "1", 2, 10, &v), YT_EINVAL);
    CU_ASSERT_EQUAL(v, 777);
    /* Invalid UTF-8 anywhere is refused, with its own detail. */
    CU_ASSERT_EQUAL(yti_parse_pyint("1\xff", 2, 10, &v), YT_EINVAL);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "integer text is not valid UTF-8");
    CU_ASSERT_EQUAL(yti_parse_pyint("\xd9", 1, 10, &v), YT_EINVAL); /* truncated sequence */
    CU_ASSERT_EQUAL(yti_parse_pyuint("\xc0\xb1", 2, 16, &u), YT_EINVAL); /* overlong '1' */
    CU_ASSERT_EQUAL(v, 777);
    CU_ASSERT_EQUAL(u, 0xabc);
    /* Empty input, including a NULL pointer with length 0. */
    CU_ASSERT_EQUAL(yti_parse_pyint(NULL, 0, 10, &v), YT_EINVAL);
    CU_ASSERT_EQUAL(yti_parse_pyint("", 0, 16, &v), YT_EINVAL);
    /* Only bases 10 and 16 exist here. */
    CU_ASSERT_EQUAL(yti_parse_pyint("7", 1, 8, &v), YT_EINVAL);
    CU_ASSERT_EQUAL(yti_parse_pyuint("1", 1, 2, &u), YT_EINVAL);
    CU_ASSERT_EQUAL(v, 777);
    /* A long run of underscored digits and spaces is still linear work and exact. */
    static char big[4096];
    size_t n = 0;
    while (n + 3 < sizeof big - 8) {
        big[n++] = ' ';
    }
    memcpy(big + n, "0_0_7", 5);
    n += 5;
    CU_ASSERT_EQUAL(yti_parse_pyint(big, n, 10, &v), YT_OK);
    CU_ASSERT_EQUAL(v, 7);
}

void yt_suite_address(void)
{
    static const yt_test_def t[] = {{"split_address_vectors", test_vectors},
                                    {"publichost", test_publichost},
                                    {"limits", test_limits},
                                    {"ports", test_ports},
                                    {"pyint_table", test_pyint_table},
                                    {"pyuint_table", test_pyuint_table},
                                    {"pyint_bytes", test_pyint_bytes},
                                    {NULL, NULL}};
    yt_add_suite("address", t);
}

/*
 * pyint.c - integers read the way Python's int(text, base) reads them, for base 10 and 16.
 *
 * The reference parses ports, port offsets and the handshake id and pid with int(), so a peer or
 * a user may legitimately send " +1_000 ", "0x_1f" or Arabic-Indic digits; this module accepts
 * exactly what CPython 3.11 accepts for those two bases and nothing more. CPython first maps the
 * text to ASCII (ASCII is kept, every other Unicode whitespace character becomes a space, every
 * Unicode decimal digit its ASCII digit, anything else something invalid) and then parses it; the
 * scanner below does the same mapping one code point at a time, so "\u0660x1f" is a valid base 16
 * literal here just as in CPython.
 *
 * Pure functions: no state, any thread. The input need not be NUL-terminated and may be of any
 * length (leading zeros never overflow); nothing is allocated. Syntax is checked over the whole
 * text before range, so "99999999999999999999x" is "invalid literal", not "out of range": callers
 * (address.c) rely on "out of range" meaning "a valid Python int that does not fit".
 */
#include "util.h"

/* Symbols of the mapped text; SYM_END after the last code point. */
#define SYM_END (-1)
#define SYM_OTHER '?'

typedef struct scanner {
    const unsigned char *s;
    size_t len;
    size_t pos;
} scanner;

/* The next code point mapped as CPython maps it before parsing. The text was validated as UTF-8
 * up front, so decoding cannot fail here; a failure would still end the scan safely. */
static int scan_next(scanner *sc)
{
    uint32_t cp;
    if (sc->pos >= sc->len || !yti_utf8_next(sc->s, sc->len, &sc->pos, &cp))
        return SYM_END;
    /* CPython keeps ASCII as it is and then skips only C's isspace() characters, so the ASCII
     * separators 0x1c..0x1f, although str.isspace(), are not whitespace to int(); non-ASCII
     * whitespace (NO-BREAK SPACE, NEL, ...) is. */
    if (cp < 0x80) {
        if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
            return ' ';
        return (int)cp;
    }
    if (yti_unicode_isspace(cp))
        return ' ';
    int d = yti_unicode_decimal(cp);
    if (d >= 0)
        return '0' + d;
    return SYM_OTHER;
}

static int digit_value(int sym, int base)
{
    if (sym >= '0' && sym <= '9')
        return sym - '0';
    if (base == 16 && sym >= 'a' && sym <= 'f')
        return sym - 'a' + 10;
    if (base == 16 && sym >= 'A' && sym <= 'F')
        return sym - 'A' + 10;
    return -1;
}

typedef enum scan_result { SCAN_OK, SCAN_SYNTAX, SCAN_RANGE } scan_result;

/* Reads sign and magnitude. SCAN_RANGE only for syntactically valid text whose magnitude does not
 * fit 64 bits. */
static scan_result scan_int(const char *text, size_t len, int base, bool *neg, uint64_t *mag)
{
    scanner sc = {(const unsigned char *)text, len, 0};
    int c = scan_next(&sc);

    while (c == ' ')
        c = scan_next(&sc);
    *neg = false;
    if (c == '+' || c == '-') {
        *neg = c == '-';
        c = scan_next(&sc);
    }
    if (base == 16 && c == '0') {
        /* "0x" is a prefix only when the x follows; otherwise the 0 is an ordinary digit, so look
         * ahead on a copy of the scanner. */
        scanner ahead = sc;
        int x = scan_next(&ahead);
        if (x == 'x' || x == 'X') {
            sc = ahead;
            c = scan_next(&sc);
            /* CPython allows one underscore right after the prefix ("0x_1f"). */
            if (c == '_')
                c = scan_next(&sc);
        }
    }

    uint64_t v = 0;
    bool overflow = false;
    size_t ndigits = 0;
    bool after_underscore = false;
    for (;;) {
        int d = digit_value(c, base);
        if (d >= 0) {
            if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
                overflow = true; /* keep scanning: a later syntax error takes precedence */
            else
                v = v * (uint64_t)base + (uint64_t)d;
            ndigits++;
            after_underscore = false;
        } else if (c == '_' && ndigits > 0 && !after_underscore) {
            after_underscore = true;
        } else {
            break;
        }
        c = scan_next(&sc);
    }
    if (ndigits == 0 || after_underscore)
        return SCAN_SYNTAX;
    while (c == ' ')
        c = scan_next(&sc);
    if (c != SYM_END)
        return SCAN_SYNTAX;
    if (overflow)
        return SCAN_RANGE;
    *mag = v;
    return SCAN_OK;
}

/* Common checks and scan; returns YT_OK or the error with its detail set. */
static int parse_common(const char *s, size_t len, int base, bool *neg, uint64_t *mag)
{
    if (base != 10 && base != 16)
        return yti_error(YT_EINVAL, "unsupported base %d for int()", base);
    if (s == NULL && len > 0)
        return yti_error(YT_EINVAL, "invalid literal for int() with base %d", base);
    if (!yti_utf8_valid(s, len))
        return yti_error(YT_EINVAL, "integer text is not valid UTF-8");
    switch (scan_int(s, len, base, neg, mag)) {
    case SCAN_OK:
        return YT_OK;
    case SCAN_RANGE:
        return yti_error(YT_EINVAL, "out of range");
    case SCAN_SYNTAX:
    default:
        return yti_error(YT_EINVAL, "invalid literal for int() with base %d", base);
    }
}

int yti_parse_pyint(const char *s, size_t len, int base, int64_t *out)
{
    bool neg;
    uint64_t mag = 0;
    int rc = parse_common(s, len, base, &neg, &mag);
    if (rc != YT_OK)
        return rc;
    int64_t v;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return yti_error(YT_EINVAL, "out of range");
        /* -(2^63) is representable although 2^63 is not: negate in unsigned arithmetic. */
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return yti_error(YT_EINVAL, "out of range");
        v = (int64_t)mag;
    }
    *out = v;
    return YT_OK;
}

int yti_parse_pyuint(const char *s, size_t len, int base, uint64_t *out)
{
    bool neg;
    uint64_t mag = 0;
    int rc = parse_common(s, len, base, &neg, &mag);
    if (rc != YT_OK)
        return rc;
    /* A negative value is a valid int that uint64 cannot hold; "-0" is plain zero. */
    if (neg && mag != 0)
        return yti_error(YT_EINVAL, "out of range");
    *out = mag;
    return YT_OK;
}

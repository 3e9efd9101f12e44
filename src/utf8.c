/*
 * utf8.c - strict UTF-8 decoding (as Python's decoder), plus the two Unicode property tables the
 * reference relies on: str.isspace() (slot-name stripping, int() parsing) and decimal digits
 * (int() parsing). The digit table is the list of code points whose decimal value is 0 in
 * Python 3.11's unicodedata; every Nd digit block runs from such a zero to zero + 9.
 */
#include "util.h"

bool yti_utf8_next(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp)
{
    size_t i = *pos;
    if (i >= len)
        return false;
    unsigned c = s[i];
    uint32_t v;
    size_t n;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        *pos = i + 1;
        return true;
    } else if (c >= 0xC2 && c <= 0xDF) {
        v = c & 0x1F;
        n = 1;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        v = c & 0x0F;
        n = 2;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        v = c & 0x07;
        n = 3;
        min = 0x10000;
    } else {
        return false;
    }
    if (len - i - 1 < n)
        return false;
    for (size_t k = 1; k <= n; k++) {
        unsigned cc = s[i + k];
        if ((cc & 0xC0) != 0x80)
            return false;
        v = (v << 6) | (cc & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return false;
    *cp = v;
    *pos = i + 1 + n;
    return true;
}

bool yti_utf8_valid(const void *s, size_t len)
{
    const unsigned char *b = s;
    size_t pos = 0;
    uint32_t cp;
    while (pos < len) {
        /* Fast path for ASCII runs. */
        if (b[pos] < 0x80) {
            pos++;
            continue;
        }
        if (!yti_utf8_next(b, len, &pos, &cp))
            return false;
    }
    return true;
}

size_t yti_utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

size_t yti_utf8_drop_invalid(unsigned char *s, size_t len)
{
    size_t r = 0, w = 0;
    uint32_t cp;
    while (r < len) {
        size_t start = r;
        if (yti_utf8_next(s, len, &r, &cp)) {
            while (start < r)
                s[w++] = s[start++];
        } else {
            /* Python drops the maximal invalid prefix; for our uses (handshake lines, whose
             * valid content is ASCII) dropping one byte at a time gives the same text. */
            r = start + 1;
        }
    }
    return w;
}

bool yti_unicode_isspace(uint32_t cp)
{
    if (cp <= 0x20)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

static const uint32_t decimal_zeros[] = {
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
};

int yti_unicode_decimal(uint32_t cp)
{
    if (cp >= '0' && cp <= '9')
        return (int)(cp - '0');
    if (cp < 0x660)
        return -1;
    size_t lo = 0, hi = sizeof decimal_zeros / sizeof decimal_zeros[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (decimal_zeros[mid] + 9 < cp)
            lo = mid + 1;
        else if (decimal_zeros[mid] > cp)
            hi = mid;
        else
            return (int)(cp - decimal_zeros[mid]);
    }
    return -1;
}

/*
 * fuzz_utf8 - libFuzzer target for the TEXT validator (yti_utf8_valid) and its siblings.
 *
 * Compares yti_utf8_valid with an independent, deliberately naive validator written here from
 * the Unicode table (well-formed byte sequences, Unicode 15 table 3-7): strict UTF-8 as Python's
 * decoder accepts it, no overlongs, no surrogates, nothing above U+10FFFF. Also checks that
 * yti_utf8_next walks exactly the same code points and that yti_utf8_drop_invalid leaves valid
 * text. Any disagreement aborts. Single-threaded.
 */
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Table 3-7: the first byte fixes the length and the range of the second byte. */
static bool ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
            need = 2;
        } else if (b == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (b == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3) {
            need = 3;
        } else if (b == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return false;
        i += need + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    bool want = ref_valid(copy, size);
    bool got = yti_utf8_valid(copy, size);
    if (want != got)
        abort();

    /* yti_utf8_next must walk a valid buffer to its end, re-encoding to the same bytes. */
    if (want) {
        size_t pos = 0;
        while (pos < size) {
            uint32_t cp;
            size_t before = pos;
            if (!yti_utf8_next(copy, size, &pos, &cp))
                abort();
            unsigned char enc[4];
            size_t k = yti_utf8_encode(cp, enc);
            if (k == 0 || k != pos - before || memcmp(enc, copy + before, k) != 0)
                abort();
        }
    }

    /* Dropping invalid sequences leaves valid text that is no longer than the input. */
    size_t n = yti_utf8_drop_invalid(copy, size);
    if (n > size || !ref_valid(copy, n))
        abort();
    if (want && n != size)
        abort();
    free(copy);
    return 0;
}

/*
 * fuzz_value - libFuzzer target for the OBJECT decoder (yt_value_decode) and its round trip.
 *
 * Untrusted bytes are decoded from an exact-size heap copy (so ASan catches any overread).
 * When they decode, the value is encoded again, and that encoding must decode to a value whose
 * encoding is byte-identical (a fixed point: comparing bytes rather than yt_value_equal keeps
 * NaN and duplicate dict keys, which the decoder merges, from causing false alarms). A deep copy
 * must encode to the same bytes too. Only YT_EDECODE (or YT_ENOMEM) may be returned on failure.
 * Single-threaded.
 */
#include "yoton.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    yt_value *v = NULL;
    int rc = yt_value_decode(copy, size, &v);
    free(copy);
    if (rc != YT_OK) {
        if (rc != YT_EDECODE && rc != YT_ENOMEM)
            abort();
        return 0;
    }
    void *enc1 = NULL, *enc2 = NULL, *enc3 = NULL;
    size_t len1 = 0, len2 = 0, len3 = 0;
    if (yt_value_encode(v, &enc1, &len1) != YT_OK)
        abort(); /* whatever decodes (depth <= max) must encode */
    yt_value *w = NULL;
    if (yt_value_decode(enc1, len1, &w) != YT_OK)
        abort();
    if (yt_value_encode(w, &enc2, &len2) != YT_OK)
        abort();
    if (len1 != len2 || memcmp(enc1, enc2, len1) != 0)
        abort();
    yt_value *c = yt_value_copy(v);
    if (c != NULL) {
        if (yt_value_encode(c, &enc3, &len3) != YT_OK || len3 != len1 ||
            memcmp(enc3, enc1, len1) != 0)
            abort();
        yt_value_free(c);
        yt_free(enc3);
    }
    yt_value_free(w);
    yt_value_free(v);
    yt_free(enc1);
    yt_free(enc2);
    return 0;
}

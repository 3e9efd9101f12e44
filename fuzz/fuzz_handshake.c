/*
 * fuzz_handshake - libFuzzer target for the handshake line parser (spec 5).
 *
 * Both roles read the peer's line with yti_greeting_parse; the host then answers with
 * yti_hs_host_reply. The first input byte picks the role and which own id is used (a normal id,
 * one below 2^60, or the id written in the line itself, to reach the "self" branch); the rest is
 * the line. Checks: no crash/UB (the sanitizers), an OK result never names our own id, the reply
 * always fits YTI_GREETING_MAX and is a CR LF line (or empty for TIMEOUT, client role sends none).
 * Single-threaded; every execution is independent.
 */
#include "uid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *line = data + 1;
    size_t len = size - 1;
    /* Parsing reads only len bytes: copy into an exact-size heap block so ASan sees overreads. */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    if (len)
        memcpy(copy, line, len);

    uint64_t own = (mode & 1) ? UINT64_C(0xfedcba9876543210) : UINT64_C(0x0000000012345678);
    uint64_t peer_id = 0;
    long peer_pid = 0;
    yti_hs_result r = yti_greeting_parse(copy, len, own, &peer_id, &peer_pid);
    if (r == YTI_HS_OK && peer_id == own)
        abort();
    if ((mode & 2) && r == YTI_HS_OK) {
        /* Parse again with the peer's own id as ours: must now be refused as SELF. */
        uint64_t id2 = 0;
        long pid2 = 0;
        yti_hs_result r2 = yti_greeting_parse(copy, len, peer_id, &id2, &pid2);
        if (r2 == YTI_HS_OK && id2 == peer_id)
            abort();
    }
    if (!(mode & 4)) {
        /* Host role: what is sent back. */
        char out[YTI_GREETING_MAX + 16];
        memset(out, 0x5a, sizeof out);
        size_t n = yti_hs_host_reply(r, own, 4242, out);
        if (n >= YTI_GREETING_MAX)
            abort();
        if (r == YTI_HS_TIMEOUT && n != 0)
            abort();
        if (n > 0 && (n < 2 || out[n - 2] != '\r' || out[n - 1] != '\n'))
            abort();
        if (r != YTI_HS_TIMEOUT && r != YTI_HS_OK && r != YTI_HS_SELF && n == 0)
            abort();
    }
    (void)yti_hs_reason(r);
    free(copy);
    return 0;
}

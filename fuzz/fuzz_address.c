/*
 * fuzz_address - libFuzzer target for address parsing (yti_address_parse, spec 7).
 *
 * The input is taken as a C string (cut at the first NUL, copied to an exact-size heap block so
 * ASan sees any overread). Checks: YT_OK or YT_EADDR only; on success the fields are
 * NUL-terminated within their arrays and the port is in 0..65535; the kind is one of the three,
 * an ipc address has a non-empty path that fits sun_path and no host, a TCP one no path. "publichost" addresses would
 * resolve the machine's own host name (no network traffic, but slow): they are skipped.
 * Single-threaded.
 */
#include "address.h"
#include "yoton.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, data, len);
    text[len] = '\0';
    /* Case-insensitive substring test without strcasestr (not in C11). */
    for (size_t i = 0; i + 10 <= len; i++) {
        if (strncasecmp(text + i, "publichost", 10) == 0) {
            free(text);
            return 0;
        }
    }
    yti_address a;
    memset(&a, 0x5a, sizeof a);
    int rc = yti_address_parse(text, &a);
    if (rc != YT_OK && rc != YT_EADDR)
        abort();
    if (rc == YT_OK) {
        if (memchr(a.protocol, 0, sizeof a.protocol) == NULL ||
            memchr(a.host, 0, sizeof a.host) == NULL)
            abort();
        if (a.port < 0 || a.port > 65535)
            abort();
        if (memchr(a.path, 0, sizeof a.path) == NULL)
            abort();
        if (a.kind == YTI_ADDR_IPC) {
            if (a.path[0] == '\0' || strlen(a.path) >= YTI_PATH_MAX || a.host[0] != '\0' ||
                a.port != 0)
                abort();
        } else if (a.kind == YTI_ADDR_TCP4 || a.kind == YTI_ADDR_TCP6) {
            if (a.path[0] != '\0')
                abort();
        } else {
            abort();
        }
    } else if (yt_last_error() == NULL) {
        abort();
    }
    free(text);
    return 0;
}

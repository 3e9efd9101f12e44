/* PLACEHOLDER: msgtypes.c is being written (zlib types). Minimal stand-ins so the build links. */
#include "channel.h"

#include "../util.h"

#include <string.h>

bool yti_type_is_zlib(const char *type)
{
    return strncmp(type, "zlib-", 5) == 0 && type[5] != '\0';
}

const char *yti_type_inner(const char *type)
{
    return yti_type_is_zlib(type) ? type + 5 : type;
}

int yti_zlib_compress(const void *data, size_t len, yti_pkg **out)
{
    (void)data;
    (void)len;
    (void)out;
    return yti_error(YT_ENOTSUP, "zlib types are not implemented yet");
}

int yti_zlib_inflate(const yti_pkg *in, size_t max, yti_pkg **out)
{
    (void)in;
    (void)max;
    (void)out;
    return yti_error(YT_ENOTSUP, "zlib types are not implemented yet");
}

/*
 * errors.c - error strings (generated from YT_ERROR_LIST) and the thread-local detail string.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define YTI_DETAIL_MAX 512

static _Thread_local char detail[YTI_DETAIL_MAX];

#define YTI_STR_(x) #x
#define YTI_XSTR_(x) YTI_STR_(x)

const char *yt_version_string(void)
{
    return YTI_XSTR_(YT_VERSION_MAJOR) "." YTI_XSTR_(YT_VERSION_MINOR) "." YTI_XSTR_(
        YT_VERSION_PATCH);
}

int yt_version(void)
{
    return YT_VERSION_NUMBER;
}

const char *yt_strerror(int code)
{
    switch (code) {
#define YTI_ERROR_CASE_(name, value, text)                                                       \
    case (value):                                                                                \
        return text;
        YT_ERROR_LIST(YTI_ERROR_CASE_)
#undef YTI_ERROR_CASE_
    default:
        return "Unknown error";
    }
}

const char *yt_last_error(void)
{
    return detail;
}

void yt_free(void *ptr)
{
    free(ptr);
}

int yti_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return code;
}

int yti_error_errno(int code, int errnum, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t used = (size_t)n < sizeof detail ? (size_t)n : sizeof detail - 1;
    /* GNU strerror_r may return a static string rather than fill buf. */
    const char *es = strerror_r(errnum, buf, sizeof buf);
    snprintf(detail + used, sizeof detail - used, ": %s", es);
    return code;
}

void yti_error_clear(void)
{
    detail[0] = '\0';
}

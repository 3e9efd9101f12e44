#include "testutil.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Every code in the list has its own message, and unknown codes say so. */
static void test_strerror_from_list(void)
{
#define CHECK_(name, code, text) CU_ASSERT_STRING_EQUAL(yt_strerror(YT_##name), text);
    YT_ERROR_LIST(CHECK_)
#undef CHECK_
    CU_ASSERT_STRING_EQUAL(yt_strerror(12345), "Unknown error");
    CU_ASSERT_EQUAL(YT_OK, 0);
    CU_ASSERT(YT_EINVAL < 0);
}

static void test_codes_unique(void)
{
    static const int codes[] = {
#define CODE_(name, code, text) code,
        YT_ERROR_LIST(CODE_)
#undef CODE_
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            CU_ASSERT_NOT_EQUAL(codes[i], codes[j]);
}

static void test_detail(void)
{
    yti_error_clear();
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "");
    CU_ASSERT_EQUAL(yti_error(YT_EADDR, "bad %s %d", "port", 7), YT_EADDR);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "bad port 7");
    CU_ASSERT_EQUAL(yti_error_errno(YT_ECONNECT, ECONNREFUSED, "Cannot connect to %s on %d",
                                    "127.0.0.1", 5555),
                    YT_ECONNECT);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "Cannot connect to 127.0.0.1 on 5555: Connection refused");
}

static void *other_thread(void *arg)
{
    (void)arg;
    /* A fresh thread sees its own, empty, detail. */
    return (void *)(strcmp(yt_last_error(), "") == 0 ? (void *)1 : NULL);
}

static void test_detail_thread_local(void)
{
    yti_error(YT_EINVAL, "mine");
    pthread_t t;
    void *res = NULL;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, &res);
    CU_ASSERT_PTR_NOT_NULL(res);
    CU_ASSERT_STRING_EQUAL(yt_last_error(), "mine");
}

static void test_version(void)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", YT_VERSION_MAJOR, YT_VERSION_MINOR, YT_VERSION_PATCH);
    CU_ASSERT_STRING_EQUAL(yt_version_string(), buf);
    CU_ASSERT_EQUAL(yt_version(), YT_VERSION_NUMBER);
    CU_ASSERT_EQUAL(YT_VERSION_NUMBER,
                    YT_VERSION_MAJOR * 10000 + YT_VERSION_MINOR * 100 + YT_VERSION_PATCH);
}

void yt_suite_errors(void)
{
    static const yt_test_def t[] = {{"strerror_from_list", test_strerror_from_list},
                                    {"codes_unique", test_codes_unique},
                                    {"detail", test_detail},
                                    {"detail_thread_local", test_detail_thread_local},
                                    {"version", test_version},
                                    {NULL, NULL}};
    yt_add_suite("errors", t);
}

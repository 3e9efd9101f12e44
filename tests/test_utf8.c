#include "testutil.h"
#include "util.h"

#include <string.h>

static void test_valid(void)
{
    CU_ASSERT_TRUE(yti_utf8_valid("", 0));
    CU_ASSERT_TRUE(yti_utf8_valid("abc", 3));
    CU_ASSERT_TRUE(yti_utf8_valid("\xc3\xa9", 2));             /* é */
    CU_ASSERT_TRUE(yti_utf8_valid("\xe6\x97\xa5", 3));         /* 日 */
    CU_ASSERT_TRUE(yti_utf8_valid("\xf0\x9f\x98\x80", 4));     /* U+1F600 */
    CU_ASSERT_TRUE(yti_utf8_valid("a\0b", 3));                 /* NUL is valid UTF-8 */
    CU_ASSERT_FALSE(yti_utf8_valid("\xc3", 1));                /* truncated */
    CU_ASSERT_FALSE(yti_utf8_valid("\xc3\x28", 2));            /* bad continuation */
    CU_ASSERT_FALSE(yti_utf8_valid("\xc0\xaf", 2));            /* overlong */
    CU_ASSERT_FALSE(yti_utf8_valid("\xe0\x80\xaf", 3));        /* overlong */
    CU_ASSERT_FALSE(yti_utf8_valid("\xed\xa0\x80", 3));        /* surrogate */
    CU_ASSERT_FALSE(yti_utf8_valid("\xf4\x90\x80\x80", 4));    /* > U+10FFFF */
    CU_ASSERT_FALSE(yti_utf8_valid("\xff", 1));
}

static void test_roundtrip(void)
{
    static const uint32_t cps[] = {0, 0x7f, 0x80, 0x7ff, 0x800, 0xfffd, 0xffff, 0x10000, 0x10ffff};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        unsigned char b[4];
        size_t n = yti_utf8_encode(cps[i], b);
        CU_ASSERT(n >= 1 && n <= 4);
        size_t pos = 0;
        uint32_t cp = 0;
        CU_ASSERT_TRUE(yti_utf8_next(b, n, &pos, &cp));
        CU_ASSERT_EQUAL(cp, cps[i]);
        CU_ASSERT_EQUAL(pos, n);
    }
    unsigned char b[4];
    CU_ASSERT_EQUAL(yti_utf8_encode(0xD800, b), 0);
    CU_ASSERT_EQUAL(yti_utf8_encode(0x110000, b), 0);
}

static void test_drop_invalid(void)
{
    unsigned char s[] = "YOTON!1\xff" "2.\xe2\x82" "3";
    size_t n = yti_utf8_drop_invalid(s, sizeof s - 1);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_EQUAL(memcmp(s, "YOTON!12.3", 10), 0);
}

static void test_properties(void)
{
    CU_ASSERT_TRUE(yti_unicode_isspace(' '));
    CU_ASSERT_TRUE(yti_unicode_isspace('\t'));
    CU_ASSERT_TRUE(yti_unicode_isspace(0x1c));
    CU_ASSERT_TRUE(yti_unicode_isspace(0xa0));
    CU_ASSERT_TRUE(yti_unicode_isspace(0x3000));
    CU_ASSERT_TRUE(yti_unicode_isspace(0x2009));
    CU_ASSERT_FALSE(yti_unicode_isspace('a'));
    CU_ASSERT_FALSE(yti_unicode_isspace(0x200b)); /* zero width space is not isspace */
    CU_ASSERT_EQUAL(yti_unicode_decimal('7'), 7);
    CU_ASSERT_EQUAL(yti_unicode_decimal(0x663), 3);   /* ARABIC-INDIC DIGIT THREE */
    CU_ASSERT_EQUAL(yti_unicode_decimal(0xff19), 9);  /* FULLWIDTH DIGIT NINE */
    CU_ASSERT_EQUAL(yti_unicode_decimal(0x1d7ce), 0); /* MATHEMATICAL BOLD DIGIT ZERO */
    CU_ASSERT_EQUAL(yti_unicode_decimal('a'), -1);
    CU_ASSERT_EQUAL(yti_unicode_decimal(0xb2), -1);   /* superscript two: a digit, not decimal */
}

void yt_suite_utf8(void)
{
    static const yt_test_def t[] = {{"valid", test_valid},
                                    {"roundtrip", test_roundtrip},
                                    {"drop_invalid", test_drop_invalid},
                                    {"properties", test_properties},
                                    {NULL, NULL}};
    yt_add_suite("utf8", t);
}

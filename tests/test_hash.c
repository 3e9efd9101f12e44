/* PLACEHOLDER */
#include "testutil.h"
void yt_suite_hash(void) { static const yt_test_def t[] = {{NULL, NULL}}; yt_add_suite("hash", t); }

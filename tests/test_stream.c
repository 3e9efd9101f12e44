/* PLACEHOLDER */
#include "testutil.h"
void yt_suite_stream(void) { static const yt_test_def t[] = {{NULL, NULL}}; yt_add_suite("stream", t); }

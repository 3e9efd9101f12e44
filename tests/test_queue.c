/* PLACEHOLDER */
#include "testutil.h"
void yt_suite_queue(void) { static const yt_test_def t[] = {{NULL, NULL}}; yt_add_suite("queue", t); }

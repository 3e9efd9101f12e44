/* PLACEHOLDER */
#include "testutil.h"
void yt_suite_state(void) { static const yt_test_def t[] = {{NULL, NULL}}; yt_add_suite("state", t); }

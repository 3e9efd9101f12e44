/*
 * hash.h - yoton's slot and port hashes (spec 8), exact for names of any length.
 *
 * The reference hashes with unbounded Python integers; this uses a growing array of 32-bit
 * limbs. Names are UTF-8 and are hashed over Unicode code points.
 */
#ifndef YT_HASH_H
#define YT_HASH_H

#include <stddef.h>
#include <stdint.h>

/* slot_hash of the UTF-8 name exactly as given. YT_EINVAL for invalid UTF-8, YT_ENOMEM. */
int yti_slot_hash(const char *name, size_t len, uint64_t *out);
/* port_hash of the UTF-8 name exactly as given (49152..65535). */
int yti_port_hash(const char *name, size_t len, uint32_t *out);

/*
 * The slot name base + "." + type + "." + pattern, stripped of leading/trailing whitespace (all
 * of Python's str.isspace characters) and lower-cased (ASCII and Latin-1 letters; other
 * characters are kept as they are: a documented divergence from Python's full Unicode lower()).
 * *out is malloc'd, NUL-terminated. YT_EINVAL for invalid UTF-8.
 */
int yti_slot_name(const char *base, const char *type, const char *pattern, char **out);
/* slot_hash(yti_slot_name(base, type, pattern)). */
int yti_slot_id(const char *base, const char *type, const char *pattern, uint64_t *out);

#endif

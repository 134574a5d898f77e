/*
 * mdm_int: small helpers shared by libmdm's own modules and not part of
 * the API the tools see.  Every libmdm .c file includes it last, so
 * banned.h applies to all of them.
 */
#ifndef MDM_INT_H
#define MDM_INT_H

#include <stddef.h>

#define MDM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Replaces CR and LF with spaces: messages are one line each. */
void mdm_strip_newlines(char *s);

#include "banned.h"

#endif

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

/* The value of hex digit c, or -1. */
int mdm_hex_digit(int c);

/* Milliseconds on CLOCK_MONOTONIC: for deadlines, never for dates. */
long long mdm_monotonic_ms(void);

#include "banned.h"

#endif

/*
 * banned: functions that invite overflows or hidden global state.  Using
 * one is a compile error; use snprintf, struct mdm_buf, gmtime_r and
 * mkstemp instead.  Included last, after every system header.
 */
#ifndef MDM_BANNED_H
#define MDM_BANNED_H

#define MDM_BANNED(func) sorry_##func##_is_banned_in_mdm

#undef strcpy
#define strcpy(x, y) MDM_BANNED(strcpy)
#undef strcat
#define strcat(x, y) MDM_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) MDM_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) MDM_BANNED(strncat)
#undef sprintf
#define sprintf(...) MDM_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) MDM_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) MDM_BANNED(strtok)
#undef gmtime
#define gmtime(t) MDM_BANNED(gmtime)
#undef localtime
#define localtime(t) MDM_BANNED(localtime)
#undef mktemp
#define mktemp(x) MDM_BANNED(mktemp)
#undef gets
#define gets(x) MDM_BANNED(gets)

#endif

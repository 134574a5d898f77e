#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "err.h"
#include "mdm_int.h"

static void vset(struct mdm_err *e, enum mdm_errc code, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
vset(struct mdm_err *e, enum mdm_errc code, const char *fmt, va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	mdm_strip_newlines(e->msg);
}

static void
append(struct mdm_err *e, const char *reason)
{
	size_t len = strlen(e->msg);

	if (reason == NULL || *reason == '\0' || len + 2 >= sizeof(e->msg))
		return;
	snprintf(e->msg + len, sizeof(e->msg) - len, ": %s", reason);
	mdm_strip_newlines(e->msg);
}

int
mdm_err_set(struct mdm_err *e, enum mdm_errc code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

int
mdm_err_set_ssl(struct mdm_err *e, enum mdm_errc code, const char *fmt, ...)
{
	char reason[160] = "";
	unsigned long first;
	va_list ap;

	/* The first error queued is the root cause; later ones are context. */
	first = ERR_get_error();
	if (first != 0) {
		const char *r = ERR_reason_error_string(first);

		if (r != NULL)
			snprintf(reason, sizeof(reason), "%s", r);
		else
			ERR_error_string_n(first, reason, sizeof(reason));
	}
	ERR_clear_error();
	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	append(e, reason);
	return -1;
}

int
mdm_err_set_sys(struct mdm_err *e, enum mdm_errc code, int errnum,
    const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	append(e, strerror(errnum));
	return -1;
}

void
mdm_err_prefix(struct mdm_err *e, const char *fmt, ...)
{
	char joined[2 * MDM_ERR_MSG_MAX + 2];
	size_t n;
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(joined, MDM_ERR_MSG_MAX, fmt, ap);
	va_end(ap);
	n = strlen(joined);
	/* Long messages lose their tail, never their head. */
	snprintf(joined + n, sizeof(joined) - n, ": %s", e->msg);
	n = strlen(joined);
	if (n >= sizeof(e->msg))
		n = sizeof(e->msg) - 1;
	memcpy(e->msg, joined, n);
	e->msg[n] = '\0';
	mdm_strip_newlines(e->msg);
}

void
mdm_err_clear(struct mdm_err *e)
{
	if (e == NULL)
		return;
	e->code = MDM_E_OK;
	e->msg[0] = '\0';
}

int
mdm_err_exit_code(enum mdm_errc code)
{
	switch (code) {
	case MDM_E_OK:
		return 0;
	case MDM_E_USAGE:
		return 64;
	case MDM_E_DATA:
	case MDM_E_TOOBIG:
	case MDM_E_CRYPTO:
		return 65;
	case MDM_E_NOINPUT:
		return 66;
	case MDM_E_UNAVAILABLE:
		return 69;
	case MDM_E_IO:
		return 74;
	case MDM_E_TEMPFAIL:
		return 75;
	case MDM_E_PERM:
		return 77;
	case MDM_E_CONFIG:
	case MDM_E_EXISTS:
		return 78;
	case MDM_E_SOFTWARE:
		break;
	}
	return 70;
}

const char *
mdm_err_code_name(enum mdm_errc code)
{
	static const char *const names[] = {
		[MDM_E_OK] = "ok",
		[MDM_E_USAGE] = "usage",
		[MDM_E_DATA] = "data",
		[MDM_E_NOINPUT] = "noinput",
		[MDM_E_UNAVAILABLE] = "unavailable",
		[MDM_E_SOFTWARE] = "software",
		[MDM_E_IO] = "io",
		[MDM_E_TEMPFAIL] = "tempfail",
		[MDM_E_PERM] = "perm",
		[MDM_E_CONFIG] = "config",
		[MDM_E_TOOBIG] = "toobig",
		[MDM_E_EXISTS] = "exists",
		[MDM_E_CRYPTO] = "crypto",
	};

	if ((size_t)code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "unknown";
}

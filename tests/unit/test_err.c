#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "err.h"
#include "tap.h"

int
main(void)
{
	struct mdm_err e;

	mdm_err_clear(&e);
	is_int(e.code, MDM_E_OK, "cleared error has code ok");
	is_str(e.msg, "", "cleared error has empty message");

	is_int(mdm_err_set(&e, MDM_E_DATA, "bad %s\nline", "plist"), -1,
	    "mdm_err_set returns -1");
	is_int(e.code, MDM_E_DATA, "code kept");
	is_str(e.msg, "bad plist line", "newline in message becomes a space");
	is_int(mdm_err_set(NULL, MDM_E_DATA, "x"), -1, "NULL error is allowed");

	mdm_err_set_sys(&e, MDM_E_NOINPUT, ENOENT, "%s", "/nope");
	ok(strncmp(e.msg, "/nope: ", 7) == 0 && strlen(e.msg) > 7,
	    "system error appends strerror: %s", e.msg);

	mdm_err_prefix(&e, "reading %s", "profile");
	ok(strncmp(e.msg, "reading profile: /nope: ", 24) == 0,
	    "prefix goes in front: %s", e.msg);

	ok(EVP_get_digestbyname("no-such-digest") == NULL, "provoke nothing");
	ERR_put_error(ERR_LIB_EVP, 0, EVP_R_UNSUPPORTED_ALGORITHM, __FILE__,
	    __LINE__);
	mdm_err_set_ssl(&e, MDM_E_CRYPTO, "signing");
	ok(strncmp(e.msg, "signing: ", 9) == 0, "openssl reason appended: %s",
	    e.msg);
	is_int((long long)ERR_peek_error(), 0, "openssl error queue drained");

	{
		char longmsg[600];

		memset(longmsg, 'a', sizeof(longmsg) - 1);
		longmsg[sizeof(longmsg) - 1] = '\0';
		mdm_err_set(&e, MDM_E_IO, "%s", longmsg);
		is_int((long long)strlen(e.msg), MDM_ERR_MSG_MAX - 1,
		    "long message truncated to the buffer");
		mdm_err_prefix(&e, "x");
		is_int((long long)strlen(e.msg), MDM_ERR_MSG_MAX - 1,
		    "prefixing a full message stays in bounds");
	}

	is_int(mdm_err_exit_code(MDM_E_OK), 0, "ok exits 0");
	is_int(mdm_err_exit_code(MDM_E_USAGE), 64, "usage exits 64");
	is_int(mdm_err_exit_code(MDM_E_DATA), 65, "data exits 65");
	is_int(mdm_err_exit_code(MDM_E_TOOBIG), 65, "too big is bad data");
	is_int(mdm_err_exit_code(MDM_E_NOINPUT), 66, "no input exits 66");
	is_int(mdm_err_exit_code(MDM_E_UNAVAILABLE), 69, "unavailable exits 69");
	is_int(mdm_err_exit_code(MDM_E_SOFTWARE), 70, "software exits 70");
	is_int(mdm_err_exit_code(MDM_E_IO), 74, "io exits 74");
	is_int(mdm_err_exit_code(MDM_E_TEMPFAIL), 75, "tempfail exits 75");
	is_int(mdm_err_exit_code(MDM_E_PERM), 77, "perm exits 77");
	is_int(mdm_err_exit_code(MDM_E_CONFIG), 78, "config exits 78");
	is_str(mdm_err_code_name(MDM_E_TEMPFAIL), "tempfail", "code names");
	is_str(mdm_err_code_name((enum mdm_errc)999), "unknown",
	    "unknown code has a name");
	return tap_done();
}

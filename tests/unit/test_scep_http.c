#include <sys/stat.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "scep_http.h"
#include "x509.h"
#include "tap.h"

static const char *
write_file(const char *name, const char *text, int mode)
{
	static char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tap_tmpdir(), name);
	if ((f = fopen(path, "w")) == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
	return path;
}

static void
test_paths(void)
{
	ok(mdm_scep_http_path("/scep"), "/scep is SCEP");
	ok(mdm_scep_http_path("/scep/"), "/scep/ is SCEP");
	ok(mdm_scep_http_path("/cgi-bin/pkiclient.exe"), "the NDES path is");
	ok(!mdm_scep_http_path("/scepx"), "/scepx is not");
	ok(!mdm_scep_http_path("/mdm/scep"), "/mdm/scep is not");
	ok(!mdm_scep_http_path(""), "the empty path is not");
}

static void
test_opts(void)
{
	struct mdm_scep_cli c;
	struct mdm_err e = { 0 };
	const char *path;

	mdm_scep_cli_init(&c);
	is_int(mdm_scep_cli_opt(&c, 7, "x", &e), 0, "not a policy flag: 0");
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_VALIDITY_DAYS, "30", &e), 1,
	    "--validity-days 30 taken");
	is_int(c.policy.validity_days, 30, "and set");
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_VALIDITY_DAYS, "0", &e), -1,
	    "--validity-days 0 refused");
	is_int(e.code, MDM_E_USAGE, "as a usage error");
	ok(strstr(e.msg, "--validity-days") != NULL, "naming the flag: %s",
	    e.msg);
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_MIN_KEY_BITS, "512", &e), -1,
	    "--min-key-bits 512 refused");
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_ALLOW_SUBJECT, "(", &e), -1,
	    "a regex that does not compile is refused");
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_CHALLENGE, "", &e), -1,
	    "an empty challenge is refused");
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_CHALLENGE, "s3cret", &e), 1,
	    "--challenge taken");
	is_int(mdm_scep_cli_opt(&c, MDM_SCEP_OPT_CHALLENGE_FILE, "/x", &e), 1,
	    "--challenge-file taken");
	is_int(mdm_scep_cli_finish(&c, &e), -1, "but not both");
	is_int(e.code, MDM_E_USAGE, "a usage error");
	mdm_scep_cli_release(&c);

	mdm_scep_cli_init(&c);
	mdm_scep_cli_opt(&c, MDM_SCEP_OPT_CSR_VERIFY_EXEC, "true", &e);
	is_int(mdm_scep_cli_finish(&c, &e), -1, "a program without a path is "
	    "refused");
	is_int(e.code, MDM_E_CONFIG, "as a configuration error");
	mdm_scep_cli_release(&c);

	mdm_scep_cli_init(&c);
	path = write_file("chal", "from-file\nignored\n", 0600);
	mdm_scep_cli_opt(&c, MDM_SCEP_OPT_CHALLENGE_FILE, path, &e);
	is_int(mdm_scep_cli_finish(&c, &e), 0, "a private challenge file is "
	    "read");
	is_str(c.policy.static_challenge, "from-file", "its first line is the "
	    "challenge");
	mdm_scep_cli_release(&c);

	mdm_scep_cli_init(&c);
	path = write_file("chal-open", "open\n", 0644);
	mdm_scep_cli_opt(&c, MDM_SCEP_OPT_CHALLENGE_FILE, path, &e);
	is_int(mdm_scep_cli_finish(&c, &e), -1, "one others can read is not");
	ok(c.policy.static_challenge == NULL, "and sets no challenge");
	mdm_scep_cli_release(&c);
}

static void
test_legacy_ctx(void)
{
	OSSL_LIB_CTX *ctx = mdm_crypto_legacy_ctx();
	EVP_CIPHER *des;

	ok(ctx != NULL, "a library context with the legacy provider");
	ok(ctx == mdm_crypto_legacy_ctx(), "made once");
	des = ctx != NULL ? EVP_CIPHER_fetch(ctx, "DES-CBC", NULL) : NULL;
	ok(des != NULL, "single DES comes from it");
	EVP_CIPHER_free(des);
}

int
main(void)
{
	test_paths();
	test_opts();
	test_legacy_ctx();
	return tap_done();
}

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#include "certs.h"
#include "cms.h"
#include "enroll.h"
#include "file.h"
#include "log.h"
#include "plist.h"
#include "pushcert.h"
#include "state.h"
#include "x509.h"
#include "banned.h"

#define KEY_BITS 2048
#define CA_DAYS 3650
/* Apple platforms reject TLS server certificates valid for longer. */
#define TLS_DAYS 397
#define SIGNING_DAYS 730
#define DEP_DAYS 365

struct identity {
	X509 *cert;
	EVP_PKEY *key;
};

static void
identity_release(struct identity *id)
{
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
	id->cert = NULL;
	id->key = NULL;
}

static int
open_state(struct mdm_cli *cli, unsigned flags, struct mdm_state **st,
    struct mdm_err *e)
{
	if (mdm_crypto_init(e) == -1)
		return -1;
	return mdm_state_open(mdm_cli_state_dir(cli), flags, st, e);
}

/* The path of stem + suffix ("ca/ca" ".pem") in the state directory. */
static int
state_path(struct mdm_state *st, char *out, size_t outlen,
    struct mdm_err *e, const char *stem, const char *suffix)
{
	char rel[PATH_MAX];

	if ((size_t)snprintf(rel, sizeof(rel), "%s%s", stem, suffix) >=
	    sizeof(rel))
		return mdm_err_set(e, MDM_E_USAGE, "name too long");
	return mdm_state_path(st, rel, out, outlen, e);
}

/* Reads a key file we or the user keep; refuses one others can read. */
static int
load_key_file(const char *path, const char *password, EVP_PKEY **out,
    struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (mdm_file_read_private(path, &b, e) == -1)
		goto out;
	if (mdm_x509_key_from_mem(b.data, b.len, password, out, e) == -1) {
		mdm_err_prefix(e, "%s", path);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release_secret(&b);
	return rc;
}

static int
load_identity(struct mdm_state *st, const char *stem, struct identity *id,
    struct mdm_err *e)
{
	return mdm_state_identity(st, stem, "run 'mdm-certs init' first",
	    &id->cert, &id->key, e);
}

/*
 * Makes stem.pem and stem.key unless the certificate exists.  The key is
 * written first, so an init cut short is finished by the next one, which
 * reuses that key rather than leaving two halves that do not match.
 */
static int
ensure_identity(struct mdm_state *st, const char *stem,
    const struct mdm_x509_opts *o, const struct identity *ca, int *created,
    struct identity *out, struct mdm_err *e)
{
	char cert[PATH_MAX], key[PATH_MAX], rel[PATH_MAX];

	*created = 0;
	if (state_path(st, cert, sizeof(cert), e, stem, ".pem") == -1 ||
	    state_path(st, key, sizeof(key), e, stem, ".key") == -1)
		return -1;
	if (mdm_file_exists(cert))
		return load_identity(st, stem, out, e);
	if (mdm_file_exists(key)) {
		if (load_key_file(key, NULL, &out->key, e) == -1)
			return -1;
	} else {
		snprintf(rel, sizeof(rel), "%s.key", stem);
		if (mdm_x509_gen_rsa(KEY_BITS, &out->key, e) == -1 ||
		    mdm_state_write_pem(st, rel, NULL, out->key, MDM_FILE_NOREPLACE,
		    e) == -1)
			goto fail;
	}
	if ((ca == NULL ? mdm_x509_self_sign(out->key, o, &out->cert, e) :
	    mdm_x509_issue(ca->cert, ca->key, out->key, o, &out->cert, e)) ==
	    -1)
		goto fail;
	snprintf(rel, sizeof(rel), "%s.pem", stem);
	if (mdm_state_write_pem(st, rel, out->cert, NULL, MDM_FILE_NOREPLACE, e) == -1)
		goto fail;
	*created = 1;
	return 0;
fail:
	identity_release(out);
	return -1;
}

static int
print_created(struct mdm_cli *cli, struct mdm_state *st, const char *kind,
    const char *stem, struct mdm_err *e)
{
	char path[PATH_MAX];
	struct mdm_cli_field f[2] = {
		MDM_CLI_FSTR("kind", kind),
		MDM_CLI_FSTR("path", path),
	};

	if (state_path(st, path, sizeof(path), e, stem, ".pem") == -1)
		return -1;
	return mdm_cli_record(cli, f, 2, e);
}

/* ensure_identity plus a line of output: 1 when made, 0 when kept, -1. */
static int
init_identity(struct mdm_cli *cli, struct mdm_state *st, const char *kind,
    const char *stem, const struct mdm_x509_opts *o,
    const struct identity *ca, struct identity *out, struct mdm_err *e)
{
	int made;

	if (ensure_identity(st, stem, o, ca, &made, out, e) == -1)
		return -1;
	if (made && print_created(cli, st, kind, stem, e) == -1)
		return -1;
	return made;
}

/* Warns when an existing TLS certificate does not name a requested host. */
static void
check_tls_names(X509 *cert, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (X509_check_host(cert, names[i], 0, 0, NULL) != 1 &&
		    X509_check_ip_asc(cert, names[i], 0) != 1)
			mdm_log_warn("the existing TLS certificate does not "
			    "cover '%s'; remove tls/server.pem and "
			    "tls/server.key and run init again to reissue it",
			    names[i]);
}

enum {
	OPT_HOSTNAME = 256,
	OPT_ORGANIZATION,
	OPT_EXPIRING,
	OPT_KIND,
	OPT_SIGNER,
	OPT_KEY,
	OPT_CA,
	OPT_EMAIL,
	OPT_COMMON_NAME,
	OPT_COUNTRY,
	OPT_VENDOR_CERT,
	OPT_VENDOR_KEY,
	OPT_VENDOR_CHAIN,
	OPT_PASSWORD,
	OPT_PASSWORD_FILE,
	OPT_FORCE,
	OPT_DAYS,
	OPT_URL,
	OPT_SCEP_URL,
	OPT_CHALLENGE,
	OPT_CHALLENGE_FILE,
	OPT_CHALLENGE_TTL,
	OPT_TOPIC,
	OPT_NO_SIGN_MESSAGE,
	OPT_UNSIGNED,
	OPT_DRY_RUN = 'n',
	OPT_OUTPUT = 'o',
};

#define MAX_HOSTNAMES 32

static const struct mdm_cli_opt init_opts[] = {
	{ "hostname", 0, "name", OPT_HOSTNAME,
	    "name (or IP address) of the server; repeat for more" },
	{ "organization", 0, "name", OPT_ORGANIZATION,
	    "organization in the certificates (default: mdm)" },
	MDM_CLI_OPT_END
};

static int
cmd_init(struct mdm_cli *cli, int argc, char **argv)
{
	const char *hosts[MAX_HOSTNAMES + 4];
	char host[256], cn[300];
	struct identity ca = { 0 }, tls = { 0 }, sig = { 0 };
	struct mdm_state *st = NULL;
	struct mdm_x509_opts o;
	struct mdm_err e = { 0 };
	const char *org = "mdm", *arg;
	size_t nhosts = 0;
	int ch, made, any = 0, default_hosts = 0, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, init_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_HOSTNAME:
			if (nhosts == MAX_HOSTNAMES)
				return mdm_cli_usage(cli, "at most %d "
				    "--hostname options", MAX_HOSTNAMES);
			hosts[nhosts++] = arg;
			break;
		case OPT_ORGANIZATION:
			org = arg;
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "init takes no operands");
	if (nhosts == 0) {
		default_hosts = 1;
		/* Loopback names too, so a local demo verifies. */
		if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0') {
			host[sizeof(host) - 1] = '\0';
			hosts[nhosts++] = host;
		}
		hosts[nhosts++] = "localhost";
		hosts[nhosts++] = "127.0.0.1";
		hosts[nhosts++] = "::1";
	}

	if (open_state(cli, MDM_STATE_CREATE, &st, &e) == -1)
		goto fail;
	memset(&o, 0, sizeof(o));
	o.organization = org;

	snprintf(cn, sizeof(cn), "%s device CA", org);
	o.kind = MDM_X509_CA;
	o.common_name = cn;
	o.days = CA_DAYS;
	if ((made = init_identity(cli, st, "ca", "ca/ca", &o, NULL, &ca,
	    &e)) == -1)
		goto fail;
	any |= made;

	o.kind = MDM_X509_TLS_SERVER;
	o.common_name = hosts[0];
	o.dns_names = hosts;
	o.n_dns_names = nhosts;
	o.days = TLS_DAYS;
	if ((made = init_identity(cli, st, "tls", "tls/server", &o, &ca, &tls,
	    &e)) == -1)
		goto fail;
	any |= made;
	if (!made && !default_hosts)
		check_tls_names(tls.cert, hosts, nhosts);

	snprintf(cn, sizeof(cn), "%s profile signing", org);
	o.kind = MDM_X509_SIGNING;
	o.common_name = cn;
	o.dns_names = NULL;
	o.n_dns_names = 0;
	o.days = SIGNING_DAYS;
	if ((made = init_identity(cli, st, "signing", "signing/signing", &o,
	    &ca, &sig, &e)) == -1)
		goto fail;
	any |= made;

	if (!any)
		mdm_log_info("already initialised: %s (nothing changed)",
		    mdm_state_dir(st));
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	identity_release(&ca);
	identity_release(&tls);
	identity_release(&sig);
	mdm_state_close(st);
	return rc;
}

struct list_ctx {
	struct mdm_cli *cli;
	struct mdm_state *st;
	const char *kind;	/* filter, or NULL */
	long long within;	/* seconds, or -1 for no filter */
	time_t now;
	unsigned long matched;
};

static void
iso8601(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

static int
emit(struct list_ctx *c, const char *kind, const char *name, time_t not_after,
    const char *serial, const char *sha256, const char *subject,
    struct mdm_err *e)
{
	char when[32];
	long long left = ((long long)not_after - (long long)c->now);
	struct mdm_cli_field f[7];

	if (c->kind != NULL && strcmp(c->kind, kind) != 0)
		return 0;
	if (c->within >= 0 && left > c->within)
		return 0;
	c->matched++;
	iso8601(not_after, when);
	/* Whole days left, rounded down: -1 means expired within a day. */
	left = left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
	f[0] = (struct mdm_cli_field)MDM_CLI_FSTR("kind", kind);
	f[1] = (struct mdm_cli_field)MDM_CLI_FSTR("name", name);
	f[2] = (struct mdm_cli_field)MDM_CLI_FSTR("not_after", when);
	f[3] = (struct mdm_cli_field)MDM_CLI_FINT("days_left", left);
	f[4] = (struct mdm_cli_field)MDM_CLI_FSTR("serial", serial);
	f[5] = (struct mdm_cli_field)MDM_CLI_FSTR("sha256", sha256);
	f[6] = (struct mdm_cli_field)MDM_CLI_FSTR("subject", subject);
	return mdm_cli_record(c->cli, f, 7, e);
}

static int
list_cert_file(struct list_ctx *c, const char *kind, const char *name,
    const char *path, struct mdm_err *e)
{
	struct mdm_x509_info info;
	X509 *cert = NULL;
	int rc = -1;

	if (mdm_x509_load_cert(path, &cert, e) == -1 ||
	    mdm_x509_inspect(cert, &info, e) == -1)
		goto out;
	rc = emit(c, kind, name, info.not_after, info.serial, info.sha256,
	    info.subject, e);
out:
	X509_free(cert);
	return rc;
}

static int
list_fixed(struct list_ctx *c, const char *kind, const char *name,
    const char *stem, struct mdm_err *e)
{
	char path[PATH_MAX];

	if (state_path(c->st, path, sizeof(path), e, stem, ".pem") == -1)
		return -1;
	if (!mdm_file_exists(path))
		return 0;
	return list_cert_file(c, kind, name, path, e);
}

struct dir_walk {
	struct list_ctx *c;
	const char *kind;
};

static int
list_dir_entry(const char *dir, const char *name, void *arg,
    struct mdm_err *e)
{
	struct dir_walk *w = arg;
	char path[PATH_MAX], stem[256];
	size_t len = strlen(name);

	if (len < 5 || len - 4 >= sizeof(stem))
		return 0;
	memcpy(stem, name, len - 4);
	stem[len - 4] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return list_cert_file(w->c, w->kind, stem, path, e);
}

static int
list_dir(struct list_ctx *c, const char *kind, const char *sub,
    struct mdm_err *e)
{
	struct dir_walk w = { c, kind };
	char dir[PATH_MAX];

	if (mdm_state_path(c->st, sub, dir, sizeof(dir), e) == -1)
		return -1;
	return mdm_file_foreach(dir, ".pem", list_dir_entry, &w, e);
}

/* The value of the first RDN of a one-line subject: the CN we issue. */
static void
first_rdn_value(const char *subject, char *out, size_t outlen)
{
	const char *eq = strchr(subject, '=');
	size_t n;

	subject = eq ? eq + 1 : subject;
	n = strcspn(subject, ",");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, subject, n);
	out[n] = '\0';
}

static int
list_db_row(const struct mdm_cert_row *row, void *arg, struct mdm_err *e)
{
	struct list_ctx *c = arg;
	char name[256];

	/* A revoked identity needs no renewal: leave it out of that report. */
	if (row->revoked_at != 0 && c->within >= 0)
		return 0;
	first_rdn_value(row->subject, name, sizeof(name));
	return emit(c, row->kind, name, (time_t)row->not_after, row->serial,
	    row->sha256, row->subject, e);
}

static const struct mdm_cli_opt list_opts[] = {
	{ "expiring-within", 0, "days", OPT_EXPIRING,
	    "only certificates that expire within this many days" },
	{ "kind", 0, "kind", OPT_KIND,
	    "only this kind: ca, tls, signing, push, dep or device" },
	MDM_CLI_OPT_END
};

static int
cmd_list(struct mdm_cli *cli, int argc, char **argv)
{
	static const char *const kinds[] = {
		"ca", "tls", "signing", "push", "dep", "device",
	};
	struct list_ctx c = { .cli = cli, .within = -1 };
	struct mdm_err e = { 0 };
	const char *arg;
	long long days;
	size_t i;
	int ch, rc;

	while ((ch = mdm_cli_getopt(cli, argc, argv, list_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_EXPIRING:
			if (mdm_cli_parse_int(arg, 0, 36500, &days, &e) == -1)
				return mdm_cli_usage(cli, "--expiring-within: "
				    "%s", e.msg);
			c.within = days * 86400;
			break;
		case OPT_KIND:
			for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
				if (strcmp(arg, kinds[i]) == 0)
					break;
			if (i == sizeof(kinds) / sizeof(kinds[0]))
				return mdm_cli_usage(cli, "--kind: '%s' is not "
				    "one of ca, tls, signing, push, dep, "
				    "device", arg);
			c.kind = arg;
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "list takes no operands");
	c.now = time(NULL);
	if (open_state(cli, 0, &c.st, &e) == -1 ||
	    list_fixed(&c, "ca", "ca", "ca/ca", &e) == -1 ||
	    list_fixed(&c, "tls", "server", "tls/server", &e) == -1 ||
	    list_fixed(&c, "signing", "signing", "signing/signing", &e) == -1 ||
	    list_dir(&c, "push", "push", &e) == -1 ||
	    list_dir(&c, "dep", "dep", &e) == -1 ||
	    mdm_state_cert_foreach(c.st, list_db_row, &c, &e) == -1)
		rc = mdm_cli_fail(cli, &e);
	else if (c.within >= 0 && c.matched == 0)
		rc = MDM_EX_NO;
	else
		rc = MDM_EX_OK;
	mdm_state_close(c.st);
	return rc;
}

static int
is_der_sequence(const struct mdm_buf *b)
{
	return b->len > 2 && b->data[0] == 0x30 && (b->data[1] & 0x80);
}

static const struct mdm_cli_opt sign_opts[] = {
	{ "output", 'o', "file", OPT_OUTPUT,
	    "write the signed profile here (default: stdout)" },
	{ "signer", 0, "cert", OPT_SIGNER,
	    "sign with this certificate (PEM) instead of the state's" },
	{ "key", 0, "key", OPT_KEY, "the private key of --signer (PEM)" },
	MDM_CLI_OPT_END
};

static int
cmd_sign_profile(struct mdm_cli *cli, int argc, char **argv)
{
	struct identity id = { 0 };
	struct mdm_buf in, out;
	X509 *ca = NULL;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	STACK_OF(X509) *chain = NULL;
	const char *output = NULL, *signer = NULL, *keyfile = NULL, *arg;
	plist_t plist = NULL;
	int ch, rc = MDM_EX_OK;

	mdm_buf_init(&in, MDM_CAP_PLIST);
	mdm_buf_init(&out, MDM_CAP_CMS);
	while ((ch = mdm_cli_getopt(cli, argc, argv, sign_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_OUTPUT:
			output = arg;
			break;
		case OPT_SIGNER:
			signer = arg;
			break;
		case OPT_KEY:
			keyfile = arg;
			break;
		default:
			return cli->status;
		}
	}
	if (argc - cli->optind != 1)
		return mdm_cli_usage(cli, "sign-profile takes one FILE");
	if ((signer == NULL) != (keyfile == NULL))
		return mdm_cli_usage(cli, "--signer and --key go together");
	if ((output == NULL || strcmp(output, "-") == 0) && cli->stdout_tty)
		return mdm_cli_usage(cli, "refusing to write a binary profile "
		    "to a terminal: use -o FILE or a redirection");

	if (mdm_crypto_init(&e) == -1 ||
	    mdm_buf_read_file(&in, argv[cli->optind], &e) == -1)
		goto fail;
	if (is_der_sequence(&in)) {
		mdm_err_set(&e, MDM_E_DATA, "%s is already signed (CMS); "
		    "check it with 'mdm-certs verify-profile'",
		    argv[cli->optind]);
		goto fail;
	}
	/* A profile that would not install is not worth signing. */
	if (mdm_plist_parse_dict(in.data, in.len, &plist, &e) == -1) {
		mdm_err_prefix(&e, "%s", argv[cli->optind]);
		goto fail;
	}
	if (strcmp(mdm_plist_get_string(plist, "PayloadType") ?
	    mdm_plist_get_string(plist, "PayloadType") : "",
	    "Configuration") != 0)
		mdm_log_warn("%s: PayloadType is not Configuration; devices "
		    "will not install it as a profile", argv[cli->optind]);

	if (signer != NULL) {
		if (mdm_x509_load_cert(signer, &id.cert, &e) == -1 ||
		    load_key_file(keyfile, NULL, &id.key, &e) == -1)
			goto fail;
		if (!mdm_x509_key_matches(id.cert, id.key)) {
			mdm_err_set(&e, MDM_E_DATA, "%s is not the key of %s",
			    keyfile, signer);
			goto fail;
		}
	} else {
		if (open_state(cli, 0, &st, &e) == -1 ||
		    load_identity(st, "signing/signing", &id, &e) == -1 ||
		    mdm_state_ca_cert(st, &ca, &e) == -1)
			goto fail;
	}
	/* Ship the CA too, so a device can build the chain it trusts. */
	if (ca != NULL) {
		if ((chain = sk_X509_new_null()) == NULL ||
		    !sk_X509_push(chain, ca)) {
			mdm_err_set(&e, MDM_E_SOFTWARE, "out of memory");
			goto fail;
		}
	}
	if (mdm_cms_sign(in.data, in.len, id.cert, id.key, chain, 0, &out,
	    &e) == -1 || mdm_cli_write_output(output, out.data, out.len, &e) == -1)
		goto fail;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	sk_X509_free(chain);
	plist_free(plist);
	identity_release(&id);
	X509_free(ca);
	mdm_buf_release(&in);
	mdm_buf_release(&out);
	mdm_state_close(st);
	return rc;
}

static const struct mdm_cli_opt verify_opts[] = {
	{ "output", 'o', "file", OPT_OUTPUT,
	    "write the profile inside (the signed content) here" },
	{ "ca", 0, "file", OPT_CA,
	    "trust this CA (PEM or DER) instead of the state's" },
	MDM_CLI_OPT_END
};

static int
cmd_verify_profile(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_cms_verified v = { 0 };
	struct mdm_x509_info info;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct mdm_buf in;
	const char *output = NULL, *cafile = NULL, *arg;
	X509 *trust = NULL;
	int ch, rc = MDM_EX_OK, to_stdout;

	mdm_buf_init(&in, MDM_CAP_CMS);
	while ((ch = mdm_cli_getopt(cli, argc, argv, verify_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_OUTPUT:
			output = arg;
			break;
		case OPT_CA:
			cafile = arg;
			break;
		default:
			return cli->status;
		}
	}
	if (argc - cli->optind != 1)
		return mdm_cli_usage(cli, "verify-profile takes one FILE");
	to_stdout = output != NULL && strcmp(output, "-") == 0;

	if (mdm_crypto_init(&e) == -1)
		goto fail;
	if (cafile != NULL) {
		if (mdm_x509_load_cert(cafile, &trust, &e) == -1)
			goto fail;
	} else if (open_state(cli, 0, &st, &e) == 0) {
		if (mdm_state_ca_cert(st, &trust, &e) == -1)
			goto fail;
	} else if (e.code == MDM_E_CONFIG) {
		mdm_log_warn("no CA to check the signer against (no state "
		    "directory, no --ca): checking the signature only");
	} else {
		goto fail;
	}
	if (mdm_buf_read_file(&in, argv[cli->optind], &e) == -1)
		goto fail;
	if (mdm_cms_verify(in.data, in.len, NULL, 0, trust, &v, &e) == -1 ||
	    mdm_x509_inspect(v.signer, &info, &e) == -1) {
		mdm_err_prefix(&e, "%s", argv[cli->optind]);
		if (e.code != MDM_E_TOOBIG && e.code != MDM_E_NOINPUT)
			e.code = MDM_E_DATA;
		goto fail;
	}
	if (output != NULL && mdm_cli_write_output(output, v.content.data,
	    v.content.len, &e) == -1)
		goto fail;
	if (to_stdout) {
		/* stdout holds the profile: the verdict goes to stderr. */
		mdm_log_info("signed by %s (sha256 %s)", info.subject,
		    info.sha256);
	} else {
		struct mdm_cli_field f[3] = {
			MDM_CLI_FSTR("kind", "signer"),
			MDM_CLI_FSTR("subject", info.subject),
			MDM_CLI_FSTR("sha256", info.sha256),
		};

		if (mdm_cli_record(cli, f, 3, &e) == -1)
			goto fail;
	}
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_cms_verified_release(&v);
	X509_free(trust);
	mdm_buf_release(&in);
	mdm_state_close(st);
	return rc;
}

/* The push key push-csr makes and push-import takes by default. */
#define PENDING_PUSH_KEY "push/pending.key"

static int
pending_push_key(struct mdm_state *st, EVP_PKEY **key, struct mdm_err *e)
{
	char path[PATH_MAX];

	if (mdm_state_path(st, PENDING_PUSH_KEY, path, sizeof(path), e) == -1)
		return -1;
	if (mdm_file_exists(path)) {
		mdm_log_info("reusing the push key %s", path);
		return load_key_file(path, NULL, key, e);
	}
	if (mdm_x509_gen_rsa(KEY_BITS, key, e) == -1 ||
	    mdm_state_write_pem(st, PENDING_PUSH_KEY, NULL, *key, MDM_FILE_NOREPLACE,
	    e) == -1)
		return -1;
	mdm_log_info("new push key: %s", path);
	return 0;
}

/*
 * The request file the Apple Push Certificates Portal takes
 * (protocol.md section 7): base64 of a plist holding the CSR, the vendor's
 * chain and the vendor's signature over the CSR.
 */
static int
vendor_request(X509_REQ *csr, const char *vcert, const char *vkey,
    const char *vchain, struct mdm_buf *out, struct mdm_err *e)
{
	struct mdm_buf der, sig, b64csr, b64sig, chain, xml, file;
	STACK_OF(X509) *extra = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	plist_t dict = NULL;
	int i, rc = -1;

	mdm_buf_init(&der, MDM_CAP_CERT);
	mdm_buf_init(&sig, MDM_CAP_CERT);
	mdm_buf_init(&b64csr, MDM_CAP_CERT);
	mdm_buf_init(&b64sig, MDM_CAP_CERT);
	mdm_buf_init(&chain, MDM_CAP_CERT);
	mdm_buf_init(&xml, MDM_CAP_CERT);
	mdm_buf_init(&file, MDM_CAP_CERT);
	if (mdm_x509_load_cert(vcert, &cert, e) == -1 ||
	    load_key_file(vkey, NULL, &key, e) == -1)
		goto out;
	if (!mdm_x509_key_matches(cert, key)) {
		mdm_err_set(e, MDM_E_DATA, "%s is not the key of %s", vkey,
		    vcert);
		goto out;
	}
	if (mdm_x509_cert_to_pem(cert, &chain, e) == -1)
		goto out;
	if (vchain != NULL) {
		if (mdm_buf_read_file(&file, vchain, e) == -1 ||
		    mdm_x509_certs_from_mem(file.data, file.len, &extra,
		    e) == -1) {
			mdm_err_prefix(e, "%s", vchain);
			goto out;
		}
		for (i = 0; i < sk_X509_num(extra); i++)
			if (mdm_x509_cert_to_pem(sk_X509_value(extra, i),
			    &chain, e) == -1)
				goto out;
	} else {
		mdm_log_warn("no --vendor-chain: the portal may want the "
		    "Apple WWDR intermediate and Apple Root CA after the "
		    "vendor certificate");
	}
	if (mdm_x509_csr_to_der(csr, &der, e) == -1 ||
	    mdm_x509_sign_sha256(key, der.data, der.len, &sig, e) == -1 ||
	    mdm_base64_encode(der.data, der.len, &b64csr, e) == -1 ||
	    mdm_base64_encode(sig.data, sig.len, &b64sig, e) == -1)
		goto out;
	if ((dict = plist_new_dict()) == NULL ||
	    mdm_plist_set_string(dict, "PushCertRequestCSR",
	    (const char *)b64csr.data) == -1 ||
	    mdm_plist_set_string(dict, "PushCertCertificateChain",
	    (const char *)chain.data) == -1 ||
	    mdm_plist_set_string(dict, "PushCertSignature",
	    (const char *)b64sig.data) == -1) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (mdm_plist_to_xml(dict, &xml, e) == -1 ||
	    mdm_base64_encode(xml.data, xml.len, out, e) == -1)
		goto out;
	rc = 0;
out:
	plist_free(dict);
	sk_X509_pop_free(extra, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	mdm_buf_release(&der);
	mdm_buf_release(&sig);
	mdm_buf_release(&b64csr);
	mdm_buf_release(&b64sig);
	mdm_buf_release(&chain);
	mdm_buf_release(&xml);
	mdm_buf_release(&file);
	return rc;
}

static const struct mdm_cli_opt push_csr_opts[] = {
	{ "email", 0, "addr", OPT_EMAIL,
	    "email address of the push certificate's owner (required)" },
	{ "common-name", 0, "name", OPT_COMMON_NAME,
	    "CN of the request (default: mdm push)" },
	{ "country", 0, "cc", OPT_COUNTRY, "two-letter country code" },
	{ "vendor-cert", 0, "file", OPT_VENDOR_CERT,
	    "MDM vendor certificate: write the signed portal request" },
	{ "vendor-key", 0, "file", OPT_VENDOR_KEY,
	    "private key of --vendor-cert" },
	{ "vendor-chain", 0, "file", OPT_VENDOR_CHAIN,
	    "PEM certificates after the vendor's (WWDR, Apple Root CA)" },
	{ "output", 'o', "file", OPT_OUTPUT,
	    "write the request here (default: stdout)" },
	MDM_CLI_OPT_END
};

static int
cmd_push_csr(struct mdm_cli *cli, int argc, char **argv)
{
	const char *email = NULL, *cn = "mdm push", *country = NULL;
	const char *vcert = NULL, *vkey = NULL, *vchain = NULL;
	const char *output = NULL, *arg;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	EVP_PKEY *key = NULL;
	X509_REQ *csr = NULL;
	int ch, rc = MDM_EX_OK;

	mdm_buf_init(&out, MDM_CAP_CERT);
	while ((ch = mdm_cli_getopt(cli, argc, argv, push_csr_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_EMAIL:
			email = arg;
			break;
		case OPT_COMMON_NAME:
			cn = arg;
			break;
		case OPT_COUNTRY:
			country = arg;
			break;
		case OPT_VENDOR_CERT:
			vcert = arg;
			break;
		case OPT_VENDOR_KEY:
			vkey = arg;
			break;
		case OPT_VENDOR_CHAIN:
			vchain = arg;
			break;
		case OPT_OUTPUT:
			output = arg;
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "push-csr takes no operands");
	if (email == NULL || strchr(email, '@') == NULL)
		return mdm_cli_usage(cli, "--email ADDR is required: the "
		    "Apple ID address that will own the push certificate");
	if ((vcert == NULL) != (vkey == NULL))
		return mdm_cli_usage(cli, "--vendor-cert and --vendor-key go "
		    "together");
	if (vchain != NULL && vcert == NULL)
		return mdm_cli_usage(cli, "--vendor-chain needs --vendor-cert");
	if (country != NULL && (strlen(country) != 2 ||
	    !isalpha((unsigned char)country[0]) ||
	    !isalpha((unsigned char)country[1])))
		return mdm_cli_usage(cli, "--country takes a two-letter code");

	if (open_state(cli, MDM_STATE_CREATE, &st, &e) == -1 ||
	    pending_push_key(st, &key, &e) == -1 ||
	    mdm_x509_make_csr(key, cn, country, email, &csr, &e) == -1)
		goto fail;
	if (vcert != NULL) {
		if (vendor_request(csr, vcert, vkey, vchain, &out, &e) == -1)
			goto fail;
		mdm_log_info("upload the request at identity.apple.com "
		    "(\"Renew\" an existing certificate to keep its topic), "
		    "then run 'mdm-certs push-import' on the certificate");
	} else {
		if (mdm_x509_csr_to_pem(csr, &out, &e) == -1)
			goto fail;
		mdm_log_info("have an MDM vendor sign this request, then "
		    "upload the result at identity.apple.com");
	}
	if (mdm_cli_write_output(output, out.data, out.len, &e) == -1)
		goto fail;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	X509_REQ_free(csr);
	EVP_PKEY_free(key);
	mdm_buf_release(&out);
	mdm_state_close(st);
	return rc;
}

/* Names that become file names in the state directory. */
static int
safe_name(const char *s)
{
	if (*s == '\0' || *s == '.' || strlen(s) > 200)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != '_')
			return 0;
	return 1;
}

/* The first line of a file ("-" = stdin), without its newline. */
static int
read_password_file(const char *path, struct mdm_buf *pw, struct mdm_err *e)
{
	size_t n;

	if (mdm_buf_read_file(pw, path, e) == -1)
		return -1;
	n = strcspn((const char *)pw->data, "\r\n");
	pw->data[n] = '\0';
	pw->len = n;
	return 0;
}

/*
 * The certificate from the portal, as PEM (with the key beside it, as
 * NanoMDM takes it) or PKCS#12 (with the key inside).
 */
static int
load_push_cert(const char *certfile, const char *password,
    struct identity *id, struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (mdm_buf_read_file(&b, certfile, e) == -1)
		goto out;
	if (strstr((const char *)b.data, "-----BEGIN") != NULL) {
		const char *key = mdm_pushcert_pem_key((const char *)b.data);

		if (mdm_x509_cert_from_mem(b.data, b.len, &id->cert, e) == -1 ||
		    (key != NULL && mdm_x509_key_from_mem(key,
		    b.len - (size_t)(key - (const char *)b.data), password,
		    &id->key, e) == -1))
			goto bad;
	} else if (mdm_x509_pkcs12_from_mem(b.data, b.len, password,
	    &id->cert, &id->key, NULL, e) == -1) {
		goto bad;
	}
	rc = 0;
	goto out;
bad:
	mdm_err_prefix(e, "%s", certfile);
out:
	mdm_buf_release_secret(&b);
	return rc;
}

/*
 * The key: KEY when given, else the one inside CERT, else the pending key
 * of push-csr.  With required unset (a dry run) having none is no error.
 */
static int
load_push_key(struct mdm_state *st, const char *certfile, const char *keyfile,
    const char *password, int required, struct identity *id,
    int *used_pending, struct mdm_err *e)
{
	char path[PATH_MAX];

	*used_pending = 0;
	if (keyfile != NULL) {
		EVP_PKEY_free(id->key);
		id->key = NULL;
		if (load_key_file(keyfile, password, &id->key, e) == -1)
			return -1;
	} else if (id->key == NULL) {
		if (mdm_state_path(st, PENDING_PUSH_KEY, path, sizeof(path),
		    e) == -1)
			return -1;
		if (!mdm_file_exists(path)) {
			if (!required)
				return 0;
			return mdm_err_set(e, MDM_E_NOINPUT, "no key for %s: "
			    "give KEY, a PKCS#12 file, or make the request "
			    "with 'mdm-certs push-csr' first", certfile);
		}
		if (load_key_file(path, NULL, &id->key, e) == -1)
			return -1;
		*used_pending = 1;
	}
	if (!mdm_x509_key_matches(id->cert, id->key))
		return mdm_err_set(e, MDM_E_DATA, "the key does not belong to "
		    "the certificate %s", certfile);
	return 0;
}

static const struct mdm_cli_opt push_import_opts[] = {
	{ "password", 0, "password", OPT_PASSWORD,
	    "password of a PKCS#12 file or an encrypted key" },
	{ "password-file", 0, "file", OPT_PASSWORD_FILE,
	    "read that password from the first line of file (- = stdin)" },
	{ "force", 0, NULL, OPT_FORCE,
	    "add a certificate for a new topic beside the existing one" },
	{ "dry-run", 'n', NULL, OPT_DRY_RUN,
	    "check and print the topic, store nothing" },
	MDM_CLI_OPT_END
};

static int
cmd_push_import(struct mdm_cli *cli, int argc, char **argv)
{
	struct identity id = { 0 };
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct mdm_buf pw;
	char topic[MDM_PUSHCERT_TOPIC_MAX], other[MDM_PUSHCERT_TOPIC_MAX];
	char pending[PATH_MAX];
	const char *password = NULL, *pwfile = NULL, *arg;
	int ch, force = 0, dry_run = 0, used_pending = 0, known;
	int rc = MDM_EX_OK;

	mdm_buf_init_secret(&pw, 4096);
	while ((ch = mdm_cli_getopt(cli, argc, argv, push_import_opts,
	    &arg)) != MDM_CLI_DONE) {
		switch (ch) {
		case OPT_PASSWORD:
			password = arg;
			break;
		case OPT_PASSWORD_FILE:
			pwfile = arg;
			break;
		case OPT_FORCE:
			force = 1;
			break;
		case OPT_DRY_RUN:
			dry_run = 1;
			break;
		default:
			return cli->status;
		}
	}
	if (argc - cli->optind < 1 || argc - cli->optind > 2)
		return mdm_cli_usage(cli, "push-import takes CERT [KEY]");
	if (password != NULL && pwfile != NULL)
		return mdm_cli_usage(cli, "--password and --password-file "
		    "exclude each other");

	if (pwfile != NULL) {
		if (read_password_file(pwfile, &pw, &e) == -1)
			goto fail;
		password = (const char *)pw.data;
	}
	/* A dry run checks files; it needs no state directory. */
	if (!dry_run && open_state(cli, MDM_STATE_CREATE, &st, &e) == -1)
		goto fail;
	if (dry_run && mdm_crypto_init(&e) == -1)
		goto fail;
	if (load_push_cert(argv[cli->optind], password, &id, &e) == -1)
		goto fail;
	if (mdm_pushcert_topic(id.cert, topic, sizeof(topic), &e) == -1) {
		mdm_err_prefix(&e, "%s", argv[cli->optind]);
		goto fail;
	}
	if (mdm_x509_expires_within(id.cert, time(NULL), 0))
		mdm_log_warn("%s has expired: APNs will refuse it",
		    argv[cli->optind]);
	/* A dry run checks the key it is given, not the pending one. */
	if ((!dry_run || id.key != NULL || argc - cli->optind == 2) &&
	    load_push_key(st, argv[cli->optind], argc - cli->optind == 2 ?
	    argv[cli->optind + 1] : NULL, password, !dry_run, &id,
	    &used_pending, &e) == -1)
		goto fail;
	if (dry_run)
		goto print;

	if (mdm_pushcert_other_topic(st, topic, &known, other, sizeof(other),
	    &e) == -1)
		goto fail;
	/* A renewal keeps its topic; only a new topic can strand devices. */
	if (!known && other[0] != '\0' && !force) {
		mdm_err_set(&e, MDM_E_EXISTS, "the state already holds the "
		    "push certificate of topic %s; one for topic %s would "
		    "strand every device enrolled under the old one. Renew "
		    "the existing certificate at identity.apple.com to keep "
		    "its topic, or use --force to add the new topic", other,
		    topic);
		goto fail;
	}
	if (!known && other[0] != '\0')
		mdm_log_warn("adding topic %s beside %s: devices enrolled "
		    "under %s must re-enroll to move", topic, other, other);
	if (mdm_pushcert_store(st, topic, id.cert, id.key, &e) == -1)
		goto fail;
	if (used_pending && mdm_state_path(st, PENDING_PUSH_KEY, pending,
	    sizeof(pending), &e) == 0 && unlink(pending) == -1)
		mdm_log_warn("could not remove %s", pending);
print:
	{
		struct mdm_cli_field f[1] = { MDM_CLI_FSTR("topic", topic) };

		if (mdm_cli_record(cli, f, 1, &e) == -1)
			goto fail;
	}
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	identity_release(&id);
	mdm_buf_release_secret(&pw);
	mdm_state_close(st);
	return rc;
}

static const struct mdm_cli_opt dep_opts[] = {
	{ "days", 0, "n", OPT_DAYS,
	    "validity of the certificate (default: 365)" },
	MDM_CLI_OPT_END
};

static int
cmd_dep_keypair(struct mdm_cli *cli, int argc, char **argv)
{
	struct identity id = { 0 };
	struct mdm_state *st = NULL;
	struct mdm_x509_opts o;
	struct mdm_err e = { 0 };
	char stem[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], cn[300];
	const char *name, *arg;
	long long days = DEP_DAYS;
	int ch, made, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, dep_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_DAYS:
			if (mdm_cli_parse_int(arg, 1, 3650, &days, &e) == -1)
				return mdm_cli_usage(cli, "--days: %s", e.msg);
			break;
		default:
			return cli->status;
		}
	}
	if (argc - cli->optind != 1)
		return mdm_cli_usage(cli, "dep-keypair takes one NAME");
	name = argv[cli->optind];
	if (!safe_name(name))
		return mdm_cli_usage(cli, "'%s' is not a usable name: letters, "
		    "digits, '.', '-' and '_' only", name);

	snprintf(stem, sizeof(stem), "dep/%s", name);
	if (open_state(cli, MDM_STATE_CREATE, &st, &e) == -1 ||
	    state_path(st, cert, sizeof(cert), &e, stem, ".pem") == -1 ||
	    state_path(st, key, sizeof(key), &e, stem, ".key") == -1)
		goto fail;
	/*
	 * A new key could not decrypt a token Apple already issued for the
	 * old certificate, so an existing pair is never replaced.
	 */
	if (mdm_file_exists(cert) || mdm_file_exists(key)) {
		mdm_err_set(&e, MDM_E_EXISTS, "DEP keypair '%s' already exists "
		    "(%s): pick another name", name, cert);
		goto fail;
	}
	snprintf(cn, sizeof(cn), "mdm DEP %s", name);
	memset(&o, 0, sizeof(o));
	o.kind = MDM_X509_DEP;
	o.common_name = cn;
	o.days = (int)days;
	if (ensure_identity(st, stem, &o, NULL, &made, &id, &e) == -1)
		goto fail;
	{
		struct mdm_cli_field f[1] = { MDM_CLI_FSTR("path", cert) };

		if (mdm_cli_record(cli, f, 1, &e) == -1)
			goto fail;
	}
	mdm_log_info("upload %s to Apple Business Manager as the MDM "
	    "server's public key", cert);
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	identity_release(&id);
	mdm_state_close(st);
	return rc;
}

static const struct mdm_cli_opt enroll_opts[] = {
	{ "url", 0, "url", OPT_URL,
	    "base URL devices reach the server at (https://host[:port]); "
	    "required" },
	{ "scep-url", 0, "url", OPT_SCEP_URL,
	    "the SCEP URL (default: URL/scep)" },
	{ "challenge", 0, "secret", OPT_CHALLENGE,
	    "a static SCEP challenge instead of a one-time one" },
	{ "challenge-file", 0, "file", OPT_CHALLENGE_FILE,
	    "read the static challenge from the first line of file (- = "
	    "stdin)" },
	{ "challenge-ttl", 0, "duration", OPT_CHALLENGE_TTL,
	    "how long the one-time challenge works (default: 1h)" },
	{ "topic", 0, "topic", OPT_TOPIC,
	    "the push topic (default: that of the only push certificate)" },
	{ "organization", 0, "name", OPT_ORGANIZATION,
	    "organization shown in the profile and put in device subjects" },
	{ "no-sign-message", 0, NULL, OPT_NO_SIGN_MESSAGE,
	    "devices authenticate by TLS client certificate, without the "
	    "Mdm-Signature header" },
	{ "unsigned", 0, NULL, OPT_UNSIGNED,
	    "write the XML profile without signing it" },
	{ "output", 'o', "file", OPT_OUTPUT,
	    "write the profile to file, atomically (default: stdout)" },
	MDM_CLI_OPT_END
};

/* A one-time challenge that outlives a year is a standing password. */
#define MAX_CHALLENGE_TTL (365LL * 86400)

static int
cmd_enrollment_profile(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_enroll_config cfg;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct mdm_buf out, secret;
	const char *output = NULL, *chfile = NULL, *arg;
	int ch, rc = MDM_EX_OK;

	memset(&cfg, 0, sizeof(cfg));
	mdm_buf_init(&out, MDM_CAP_CMS);
	mdm_buf_init_secret(&secret, 4096);
	while ((ch = mdm_cli_getopt(cli, argc, argv, enroll_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_URL:
			cfg.base_url = arg;
			break;
		case OPT_SCEP_URL:
			cfg.scep_url = arg;
			break;
		case OPT_CHALLENGE:
			cfg.challenge = arg;
			break;
		case OPT_CHALLENGE_FILE:
			chfile = arg;
			break;
		case OPT_CHALLENGE_TTL:
			if (mdm_cli_parse_duration(arg, &cfg.challenge_ttl,
			    &e) == -1 || cfg.challenge_ttl < 1 ||
			    cfg.challenge_ttl > MAX_CHALLENGE_TTL) {
				rc = mdm_cli_usage(cli, "--challenge-ttl: from "
				    "1s to 365d");
				goto out;
			}
			break;
		case OPT_TOPIC:
			cfg.topic = arg;
			break;
		case OPT_ORGANIZATION:
			cfg.organization = arg;
			break;
		case OPT_NO_SIGN_MESSAGE:
			cfg.no_sign_message = 1;
			break;
		case OPT_UNSIGNED:
			cfg.unsigned_profile = 1;
			break;
		case OPT_OUTPUT:
			output = arg;
			break;
		default:
			rc = cli->status;
			goto out;
		}
	}
	if (argc - cli->optind != 0) {
		rc = mdm_cli_usage(cli, "enrollment-profile takes no operands");
		goto out;
	}
	if (cfg.base_url == NULL) {
		rc = mdm_cli_usage(cli, "--url is required: the base URL "
		    "devices reach the server at");
		goto out;
	}
	if (cfg.challenge != NULL && chfile != NULL) {
		rc = mdm_cli_usage(cli, "--challenge and --challenge-file "
		    "exclude each other");
		goto out;
	}
	if (cfg.challenge_ttl > 0 && (cfg.challenge != NULL ||
	    chfile != NULL)) {
		rc = mdm_cli_usage(cli, "--challenge-ttl is for the one-time "
		    "challenge, not a static one");
		goto out;
	}
	if (!cfg.unsigned_profile && (output == NULL ||
	    strcmp(output, "-") == 0) && cli->stdout_tty) {
		rc = mdm_cli_usage(cli, "refusing to write a binary profile "
		    "to a terminal: use -o FILE, a redirection or --unsigned");
		goto out;
	}
	if (mdm_enroll_config_check(&cfg, &e) == -1)
		goto fail;
	if (chfile != NULL) {
		if (read_password_file(chfile, &secret, &e) == -1)
			goto fail;
		cfg.challenge = (const char *)secret.data;
	}
	if (open_state(cli, 0, &st, &e) == -1 ||
	    mdm_enroll_profile(st, &cfg, &out, &e) == -1 ||
	    mdm_cli_write_output(output, out.data, out.len, &e) == -1)
		goto fail;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_buf_release(&out);
	mdm_buf_release_secret(&secret);
	mdm_state_close(st);
	return rc;
}

static const struct mdm_cli_cmd certs_cmds[] = {
	{ "init", "[--hostname name]... [--organization name]",
	    "create the CA, the TLS server and the profile-signing identities",
	    init_opts, cmd_init },
	{ "list", "[--expiring-within days] [--kind kind]",
	    "list every certificate the state knows, with its expiry",
	    list_opts, cmd_list },
	{ "sign-profile", "[-o file] [--signer cert --key key] file",
	    "sign a .mobileconfig (CMS, attached, DER)", sign_opts,
	    cmd_sign_profile },
	{ "verify-profile", "[-o file] [--ca file] file",
	    "check a signed profile and extract its content", verify_opts,
	    cmd_verify_profile },
	{ "push-csr", "--email addr [--common-name name] [--country cc] "
	    "[--vendor-cert file --vendor-key file [--vendor-chain file]] "
	    "[-o file]",
	    "make the APNs push key and certificate request", push_csr_opts,
	    cmd_push_csr },
	{ "push-import", "[-n] [--password pw | --password-file file] "
	    "[--force] cert [key]",
	    "store an APNs push certificate by its topic", push_import_opts,
	    cmd_push_import },
	{ "dep-keypair", "[--days n] name",
	    "make the keypair Apple Business Manager encrypts DEP tokens to",
	    dep_opts, cmd_dep_keypair },
	{ "enrollment-profile", "--url url [--scep-url url] "
	    "[--challenge secret | --challenge-file file] "
	    "[--challenge-ttl duration] [--topic topic] "
	    "[--organization name] [--no-sign-message] [--unsigned] "
	    "[-o file]",
	    "write the profile that enrolls a device (SCEP + MDM payloads, "
	    "signed)", enroll_opts, cmd_enrollment_profile },
	{ NULL, NULL, NULL, NULL, NULL }
};

const struct mdm_cli_tool mdm_certs_tool = {
	.name = "mdm-certs",
	.summary = "Certificates and keys of an MDM server: its CA, TLS and "
	    "profile-signing identities, APNs push certificates, DEP "
	    "token keypairs and enrollment profiles",
	.cmds = certs_cmds,
};

/*
 * scep_client: the client half of SCEP against the server half, in one
 * process: GetCACaps and GetCACert answers of mdm_scep_handle are parsed,
 * a PKCSReq is built and POSTed to the handler, and its CertRep read
 * back: enrolment (AES and 3DES, with and without an RA), renewal, a
 * FAILURE for a bad challenge, and refusals of a CertRep signed by
 * another CA, tampered with, for another transaction or nonce, cut
 * short, or too large.
 *
 * The regression inputs of tests/data/scep_certrep are read too: each must
 * be refused.
 *
 * MDM_SCEP_CERTREP_SEEDS=DIR writes the CertReps seen to DIR (fuzz seeds
 * for tests/fuzz/fuzz_scep_certrep.c).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "scep.h"
#include "scep_client.h"
#include "state.h"
#include "tap.h"
#include "x509.h"

static const char *seeds;
static int seed_no;

static void
die(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "test_scep_client: %s: %s\n", what,
	    e != NULL ? e->msg : "");
	ERR_print_errors_fp(stderr);
	exit(99);
}

static EVP_PKEY *
rsa_key(int bits)
{
	struct mdm_err e;
	EVP_PKEY *k;

	if (mdm_x509_gen_rsa(bits, &k, &e) == -1)
		die("gen_rsa", &e);
	return k;
}

static void
write_seed(const struct mdm_buf *b)
{
	char path[4200];
	FILE *f;

	if (seeds == NULL)
		return;
	snprintf(path, sizeof(path), "%s/certrep-%02d", seeds, seed_no++);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	fwrite(b->data, 1, b->len, f);
	fclose(f);
}

/* A state directory with a fresh CA; *ca and *key owned. */
static struct mdm_state *
make_state(const char *name, X509 **ca, EVP_PKEY **key)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CA,
	    .common_name = name, .days = 30 };
	struct mdm_state *st;
	struct mdm_buf pem;
	struct mdm_err e;
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/%s", tap_tmpdir(), name);
	*key = rsa_key(2048);
	if (mdm_x509_self_sign(*key, &o, ca, &e) == -1)
		die("self_sign", &e);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	if (mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == -1 ||
	    mdm_x509_cert_to_pem(*ca, &pem, &e) == -1 ||
	    mdm_state_write_file(st, "ca/ca.pem", pem.data, pem.len, 0644, 0,
	    &e) == -1)
		die("state", &e);
	mdm_buf_reset(&pem);
	if (mdm_x509_key_to_pem(*key, &pem, &e) == -1 ||
	    mdm_state_write_file(st, "ca/ca.key", pem.data, pem.len, 0600, 0,
	    &e) == -1)
		die("state key", &e);
	mdm_buf_release_secret(&pem);
	return st;
}

static struct mdm_scep *
server(struct mdm_state *st)
{
	struct mdm_scep_policy p = { .validity_days = 30,
	    .static_challenge = "s3cret" };
	struct mdm_scep *s;
	struct mdm_err e;

	if (mdm_scep_new(st, &p, &s, &e) == -1)
		die("mdm_scep_new", &e);
	return s;
}

/* GET operation on s; the body into out. */
static int
get(struct mdm_scep *s, const char *op, struct mdm_buf *out)
{
	struct mdm_scep_response r;
	struct mdm_err e;
	int rc;

	mdm_scep_response_init(&r);
	rc = mdm_scep_handle(s, "GET", op, NULL, NULL, 0, &r, &e);
	mdm_buf_reset(out);
	if (rc == 0 && r.http_status == 200)
		mdm_buf_append(out, r.body.data, r.body.len, NULL);
	else
		rc = -1;
	mdm_scep_response_release(&r);
	return rc;
}

/* POSTs a pkiMessage to s; the CertRep into out. */
static int
post(struct mdm_scep *s, const struct mdm_buf *msg, struct mdm_buf *out)
{
	struct mdm_scep_response r;
	struct mdm_err e;
	int rc;

	mdm_scep_response_init(&r);
	rc = mdm_scep_handle(s, "POST", "PKIOperation", NULL, msg->data,
	    msg->len, &r, &e);
	mdm_buf_reset(out);
	if (rc == 0 && r.http_status == 200) {
		mdm_buf_append(out, r.body.data, r.body.len, NULL);
		write_seed(out);
	} else {
		tap_diag("PKIOperation: HTTP %d %s", r.http_status, r.outcome);
		rc = -1;
	}
	mdm_scep_response_release(&r);
	return rc;
}

static X509_NAME *
subject(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL || !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	    (const unsigned char *)"devsim", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0))
		die("X509_NAME", NULL);
	return n;
}

/* What a device learns before it enrols: caps, CA and RA. */
struct ca_info {
	struct mdm_scep_caps caps;
	X509 *ca, *ra;
};

static void
discover(struct mdm_scep *s, struct ca_info *ci)
{
	struct mdm_buf b;
	struct mdm_err e;

	mdm_buf_init(&b, MDM_SCEP_CLIENT_MAX_CACERT);
	if (get(s, "GetCACaps", &b) == -1 ||
	    mdm_scep_client_parse_caps(b.data, b.len, &ci->caps, &e) == -1)
		die("GetCACaps", &e);
	if (get(s, "GetCACert", &b) == -1 ||
	    mdm_scep_client_parse_cacert(b.data, b.len, &ci->ca, &ci->ra,
	    &e) == -1)
		die("GetCACert", &e);
	mdm_buf_release(&b);
}

static void
ca_info_release(struct ca_info *ci)
{
	X509_free(ci->ca);
	X509_free(ci->ra);
	memset(ci, 0, sizeof(*ci));
}

/*
 * One transaction: *c (owned) and the CertRep in rep.  renew_* NULL for
 * a PKCSReq.
 */
static void
request(struct mdm_scep *s, const struct ca_info *ci, EVP_PKEY *key,
    const char *challenge, X509 *renew_cert, EVP_PKEY *renew_key,
    struct mdm_scep_client **c, struct mdm_buf *rep)
{
	struct mdm_scep_client_req r = { .ca = ci->ca, .ra = ci->ra,
	    .caps = &ci->caps, .key = key, .challenge = challenge,
	    .renew_cert = renew_cert, .renew_key = renew_key };
	X509_NAME *name = subject("device");
	struct mdm_buf msg;
	struct mdm_err e;

	r.subject = name;
	mdm_buf_init(&msg, MDM_SCEP_MAX_MESSAGE);
	if (mdm_scep_client_new(&r, &msg, c, &e) == -1)
		die("mdm_scep_client_new", &e);
	if (post(s, &msg, rep) == -1)
		die("post", NULL);
	mdm_buf_release(&msg);
	X509_NAME_free(name);
}

static void
test_caps(void)
{
	static const char micromdm[] = "Renewal\nSHA-1\nSHA-256\nAES\nDES3\n"
	    "SCEPStandard\nPOSTPKIOperation";
	static const char crlf[] = "  aes \r\nsha-512\r\n\r\nBogus\r\n";
	struct mdm_scep_caps c;
	struct mdm_err e;
	char big[MDM_SCEP_CLIENT_MAX_CAPS + 1];

	ok(mdm_scep_client_parse_caps(micromdm, sizeof(micromdm) - 1, &c,
	    &e) == 0 && c.renewal && c.sha1 && c.sha256 && c.aes && c.des3 &&
	    c.standard && c.post && !c.sha512 && !c.next_ca,
	    "micromdm's GetCACaps");
	ok(mdm_scep_client_parse_caps(crlf, sizeof(crlf) - 1, &c, &e) == 0 &&
	    c.aes && c.sha512 && !c.sha256 && !c.des3,
	    "CRLF, any case, blanks and unknown keywords");
	ok(mdm_scep_client_parse_caps("SCEPStandard", 12, &c, &e) == 0 &&
	    c.aes && c.post && c.sha256, "SCEPStandard implies AES, POST and "
	    "SHA-256");
	ok(mdm_scep_client_parse_caps("", 0, &c, &e) == 0 && !c.aes &&
	    !c.sha256, "an empty answer: no caps");
	ok(mdm_scep_client_parse_caps("AES\0x", 5, &c, &e) == -1 &&
	    e.code == MDM_E_DATA, "a NUL is refused");
	memset(big, 'A', sizeof(big));
	ok(mdm_scep_client_parse_caps(big, sizeof(big), &c, &e) == -1 &&
	    e.code == MDM_E_TOOBIG, "an answer over the cap is refused");
}

static void
test_cacert(X509 *ca)
{
	struct mdm_buf der, pem;
	struct mdm_err e;
	X509 *c = NULL, *r = NULL;

	mdm_buf_init(&der, MDM_CAP_CERT);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	mdm_x509_cert_to_der(ca, &der, NULL);
	mdm_x509_cert_to_pem(ca, &pem, NULL);
	ok(mdm_scep_client_parse_cacert(der.data, der.len, &c, &r, &e) == 0 &&
	    X509_cmp(c, ca) == 0 && r == NULL, "a lone DER CA certificate");
	X509_free(c);
	ok(mdm_scep_client_parse_cacert(pem.data, pem.len, &c, &r, &e) == 0 &&
	    X509_cmp(c, ca) == 0 && r == NULL, "a PEM CA certificate");
	X509_free(c);
	ok(mdm_scep_client_parse_cacert("garbage", 7, &c, &r, &e) == -1 &&
	    e.code == MDM_E_DATA && c == NULL, "garbage is refused");
	ok(mdm_scep_client_parse_cacert(der.data, der.len / 2, &c, &r,
	    &e) == -1 && c == NULL, "a truncated certificate is refused");
	ok(mdm_scep_client_parse_cacert(der.data,
	    MDM_SCEP_CLIENT_MAX_CACERT + 1, &c, &r, &e) == -1 &&
	    e.code == MDM_E_TOOBIG, "an answer over the cap is refused");
	mdm_buf_release(&der);
	mdm_buf_release(&pem);
}

/* Checks an issued certificate: ours, for key, from ca. */
static int
issued_ok(X509 *cert, EVP_PKEY *key, X509 *ca)
{
	struct mdm_err e;

	if (cert == NULL || !mdm_x509_key_matches(cert, key))
		return 0;
	if (mdm_x509_verify(cert, ca, NULL, 0, &e) == -1) {
		tap_diag("%s", e.msg);
		return 0;
	}
	return 1;
}

static void
test_enrol(struct mdm_scep *s, const struct ca_info *ci,
    struct mdm_scep *other)
{
	struct mdm_scep_client *c = NULL, *c2 = NULL, *c3 = NULL;
	struct ca_info des = *ci;
	struct mdm_buf rep, rep2, bad;
	struct mdm_err e;
	EVP_PKEY *key = rsa_key(2048), *key2 = rsa_key(2048);
	EVP_PKEY *key3 = NULL;
	X509 *cert = NULL, *cert2 = NULL, *x = NULL;
	size_t i, n;
	int fail, rc, all;

	mdm_buf_init(&rep, MDM_SCEP_CLIENT_MAX_CERTREP);
	mdm_buf_init(&rep2, MDM_SCEP_CLIENT_MAX_CERTREP);
	mdm_buf_init(&bad, 2 * MDM_SCEP_CLIENT_MAX_CERTREP);

	/* PKCSReq, AES. */
	request(s, ci, key, "s3cret", NULL, NULL, &c, &rep);
	is_int(strlen(mdm_scep_client_txid(c)), 64,
	    "transactionID: hex SHA-256 of the key");
	rc = mdm_scep_client_certrep(c, rep.data, rep.len, &cert, &fail, &e);
	if (rc == -1)
		tap_diag("%s", e.msg);
	ok(rc == 0 && issued_ok(cert, key, ci->ca), "PKCSReq: a certificate "
	    "for our key, from the CA");
	ok(mdm_scep_client_certrep(c, rep.data, rep.len, &x, NULL, &e) == 0 &&
	    X509_cmp(x, cert) == 0, "the same CertRep reads the same twice");
	X509_free(x);
	x = NULL;

	/* The same key again: the same transactionID, another nonce. */
	request(s, ci, key, "s3cret", NULL, NULL, &c2, &rep2);
	ok(strcmp(mdm_scep_client_txid(c), mdm_scep_client_txid(c2)) == 0,
	    "the same key makes the same transactionID");
	ok(mdm_scep_client_certrep(c2, rep.data, rep.len, &x, NULL, &e) ==
	    -1 && e.code == MDM_E_CRYPTO && strstr(e.msg, "Nonce") != NULL &&
	    x == NULL, "a CertRep with another nonce is refused");
	ok(mdm_scep_client_certrep(c2, rep2.data, rep2.len, &x, NULL, &e) ==
	    0 && issued_ok(x, key, ci->ca), "while its own is read");
	X509_free(x);
	x = NULL;
	mdm_scep_client_free(c2);
	c2 = NULL;

	/* 3DES when the CA does not list AES. */
	des.caps.aes = des.caps.standard = 0;
	request(s, &des, key2, "s3cret", NULL, NULL, &c2, &rep2);
	rc = mdm_scep_client_certrep(c2, rep2.data, rep2.len, &cert2, NULL,
	    &e);
	if (rc == -1)
		tap_diag("%s", e.msg);
	ok(rc == 0 && issued_ok(cert2, key2, ci->ca), "PKCSReq with 3DES");
	ok(mdm_scep_client_certrep(c2, rep.data, rep.len, &x, NULL, &e) ==
	    -1 && e.code == MDM_E_CRYPTO && strstr(e.msg, "transaction") !=
	    NULL, "a CertRep for another transaction is refused");
	mdm_scep_client_free(c2);
	c2 = NULL;

	/* RenewalReq: a new key, signed with the old identity. */
	X509_free(cert2);
	cert2 = NULL;
	request(s, ci, key2, NULL, cert, key, &c2, &rep2);
	rc = mdm_scep_client_certrep(c2, rep2.data, rep2.len, &cert2, NULL,
	    &e);
	if (rc == -1)
		tap_diag("%s", e.msg);
	ok(rc == 0 && issued_ok(cert2, key2, ci->ca) &&
	    X509_cmp(cert, cert2) != 0, "RenewalReq: a new certificate");
	mdm_scep_client_free(c2);
	c2 = NULL;

	/*
	 * A bad challenge: FAILURE badRequest.  A fresh key: for one
	 * already certified the CA resends that certificate (a retry).
	 */
	EVP_PKEY_free(key3);
	key3 = rsa_key(2048);
	request(s, ci, key3, "wrong", NULL, NULL, &c2, &rep2);
	rc = mdm_scep_client_certrep(c2, rep2.data, rep2.len, &x, &fail, &e);
	ok(rc == -1 && e.code == MDM_E_PERM && fail == 2 &&
	    strstr(e.msg, "badRequest") != NULL && x == NULL,
	    "a wrong challenge: FAILURE badRequest");
	tap_diag("%s", e.msg);
	mdm_scep_client_free(c2);
	c2 = NULL;

	/* Another CA answers: its FAILURE is not ours to believe. */
	request(other, ci, key3, "s3cret", NULL, NULL, &c2, &rep2);
	rc = mdm_scep_client_certrep(c2, rep2.data, rep2.len, &x, &fail, &e);
	ok(rc == -1 && e.code == MDM_E_CRYPTO && fail == -1,
	    "a CertRep signed by another CA is refused");
	mdm_scep_client_free(c2);
	c2 = NULL;

	/* Tampering: the signature, then every 61st byte. */
	mdm_buf_append(&bad, rep.data, rep.len, NULL);
	bad.data[bad.len - 20] ^= 0x01;
	ok(mdm_scep_client_certrep(c, bad.data, bad.len, &x, NULL, &e) == -1 &&
	    e.code == MDM_E_CRYPTO && x == NULL, "a flipped signature bit");
	all = 1;
	for (i = 0; i < rep.len; i += 61) {
		memcpy(bad.data, rep.data, rep.len);
		bad.data[i] ^= 0x40;
		x = NULL;
		/* Bytes outside the signed part (the certificates) may
		   change, but never the certificate we get. */
		if (mdm_scep_client_certrep(c, bad.data, rep.len, &x, NULL,
		    &e) == 0 && X509_cmp(x, cert) != 0)
			all = 0;
		X509_free(x);
	}
	ok(all, "no tampered CertRep yields another certificate");
	x = NULL;

	/* Truncation and size. */
	all = 1;
	for (n = 0; n < rep.len; n += n < 64 ? 1 : 37)
		if (mdm_scep_client_certrep(c, rep.data, n, &x, NULL,
		    &e) != -1 || x != NULL)
			all = 0;
	ok(all, "every truncated CertRep is refused");
	mdm_buf_reset(&bad);
	mdm_buf_append(&bad, rep.data, rep.len, NULL);
	mdm_buf_append(&bad, "", 1, NULL);
	ok(mdm_scep_client_certrep(c, bad.data, bad.len, &x, NULL, &e) == -1 &&
	    e.code == MDM_E_DATA, "a byte after the CertRep is refused");
	while (bad.len <= MDM_SCEP_CLIENT_MAX_CERTREP)
		mdm_buf_append(&bad, rep.data, rep.len, NULL);
	ok(mdm_scep_client_certrep(c, bad.data, bad.len, &x, NULL, &e) == -1 &&
	    e.code == MDM_E_TOOBIG, "a CertRep over the cap is refused");

	/* A request the server cannot read needs no client to crash. */
	{
		struct mdm_scep_client_req r = { .ca = ci->ca, .key = key };

		ok(mdm_scep_client_new(&r, &rep2, &c3, &e) == -1 &&
		    e.code == MDM_E_USAGE && c3 == NULL,
		    "a request without a subject is refused");
	}

	mdm_scep_client_free(c);
	X509_free(cert);
	X509_free(cert2);
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	EVP_PKEY_free(key3);
	mdm_buf_release(&rep);
	mdm_buf_release(&rep2);
	mdm_buf_release(&bad);
}

static void
test_ra(void)
{
	struct mdm_scep_client *c = NULL;
	struct mdm_state *st;
	struct mdm_scep *s;
	struct ca_info ci;
	struct mdm_buf rep;
	struct mdm_err e;
	EVP_PKEY *cakey, *key = rsa_key(2048);
	X509 *ca, *ra = NULL, *cert = NULL;
	int rc;

	memset(&ci, 0, sizeof(ci));
	mdm_buf_init(&rep, MDM_SCEP_CLIENT_MAX_CERTREP);
	st = make_state("ra-ca", &ca, &cakey);
	if (mdm_scep_ra_init(st, 30, 0, &ra, &e) == -1)
		die("ra_init", &e);
	s = server(st);
	discover(s, &ci);
	ok(ci.ca != NULL && ci.ra != NULL && X509_cmp(ci.ca, ca) == 0 &&
	    X509_cmp(ci.ra, ra) == 0, "GetCACert with an RA: CA and RA told "
	    "apart");
	request(s, &ci, key, "s3cret", NULL, NULL, &c, &rep);
	rc = mdm_scep_client_certrep(c, rep.data, rep.len, &cert, NULL, &e);
	if (rc == -1)
		tap_diag("%s", e.msg);
	ok(rc == 0 && issued_ok(cert, key, ca), "enrolment through the RA");
	mdm_scep_client_free(c);
	X509_free(cert);
	ca_info_release(&ci);
	mdm_scep_free(s);
	mdm_state_close(st);
	X509_free(ca);
	X509_free(ra);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	mdm_buf_release(&rep);
}

/* Every regression input is refused, none crashes. */
static void
test_regressions(const struct ca_info *ci)
{
	struct mdm_scep_client_req r = { .ca = ci->ca, .ra = ci->ra,
	    .caps = &ci->caps };
	struct mdm_scep_client *c = NULL;
	const char *data = getenv("MDM_TEST_DATA");
	struct dirent *de;
	struct mdm_buf msg, in;
	struct mdm_err e;
	X509_NAME *name = subject("regress");
	X509 *x = NULL;
	char dir[4200], path[4600];
	DIR *d;
	int n = 0, all = 1;

	if (data == NULL) {
		tap_skip(1, "MDM_TEST_DATA is not set");
		X509_NAME_free(name);
		return;
	}
	r.key = rsa_key(2048);
	r.subject = name;
	mdm_buf_init(&msg, MDM_SCEP_MAX_MESSAGE);
	mdm_buf_init(&in, MDM_SCEP_CLIENT_MAX_CERTREP);
	if (mdm_scep_client_new(&r, &msg, &c, &e) == -1)
		die("client", &e);
	snprintf(dir, sizeof(dir), "%s/scep_certrep", data);
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			mdm_buf_reset(&in);
			if (mdm_buf_read_file(&in, path, &e) == -1)
				continue;
			n++;
			if (mdm_scep_client_certrep(c, in.data, in.len, &x,
			    NULL, &e) != -1 || x != NULL) {
				tap_diag("%s was accepted", de->d_name);
				all = 0;
			}
			X509_free(x);
			x = NULL;
		}
		closedir(d);
	}
	ok(n > 0 && all, "%d regression inputs refused", n);
	mdm_scep_client_free(c);
	EVP_PKEY_free(r.key);
	X509_NAME_free(name);
	mdm_buf_release(&msg);
	mdm_buf_release(&in);
}

int
main(void)
{
	struct mdm_state *st, *st2;
	struct mdm_scep *s, *s2;
	struct ca_info ci;
	struct mdm_err e;
	EVP_PKEY *cakey, *cakey2;
	X509 *ca, *ca2;

	seeds = getenv("MDM_SCEP_CERTREP_SEEDS");
	if (mdm_crypto_init(&e) == -1)
		tap_diag("%s", e.msg);
	memset(&ci, 0, sizeof(ci));
	st = make_state("ca", &ca, &cakey);
	st2 = make_state("other-ca", &ca2, &cakey2);
	s = server(st);
	s2 = server(st2);

	test_caps();
	test_cacert(ca);
	discover(s, &ci);
	ok(X509_cmp(ci.ca, ca) == 0 && ci.ra == NULL && ci.caps.aes &&
	    ci.caps.renewal, "mdm_scep's GetCACaps and GetCACert");
	test_enrol(s, &ci, s2);
	test_ra();
	test_regressions(&ci);

	ca_info_release(&ci);
	mdm_scep_free(s);
	mdm_scep_free(s2);
	mdm_state_close(st);
	mdm_state_close(st2);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(cakey2);
	return tap_done();
}

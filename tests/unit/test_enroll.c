/*
 * enroll: enrollment profiles built in a temporary state directory are
 * checked key by key after their signature is verified (URLs, topic,
 * rights, the SCEP payload the MDM payload names, the CA certificate),
 * two builds differ where they must and agree where they must, a minted
 * challenge is in the state and pays once, and bad configurations and
 * push directories with no or two certificates are refused.  Then
 * MachineInfo requests signed by a test "Apple" CA are parsed, and
 * refused when the CA is wrong, the body damaged, too big or the plist
 * wrong; the inputs in tests/data/enroll_machineinfo go through too.
 * When the fixtures are present our profile is compared with NanoMDM's
 * enroll.mobileconfig: every key it has, ours has, with the same type.
 *
 * MDM_ENROLL_SEEDS=DIR writes fuzz seeds (signed MachineInfo bodies) for
 * tests/fuzz/fuzz_enroll_machineinfo.c to DIR.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "buf.h"
#include "cms.h"
#include "enroll.h"
#include "file.h"
#include "plist.h"
#include "state.h"
#include "state_scep.h"
#include "tap.h"
#include "x509.h"

#define TOPIC	"com.apple.mgmt.External.11111111-2222-3333-4444-555555555555"
#define TOPIC2	"com.apple.mgmt.External.99999999-2222-3333-4444-555555555555"
#define BASE	"https://mdm.test:8443/"

static EVP_PKEY *st_key, *apple_key;
static X509 *ca, *signing, *apple_ca, *device, *impostor;
static char root[4096];

static void
die(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "test_enroll: %s: %s\n", what, e->msg);
	exit(1);
}

static X509 *
make_cert(EVP_PKEY *k, X509 *issuer, EVP_PKEY *issuer_key,
    enum mdm_x509_kind kind, const char *cn)
{
	struct mdm_x509_opts o;
	struct mdm_err e;
	X509 *c;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.common_name = cn;
	o.organization = "enroll test";
	o.days = 2;
	if ((issuer == NULL ? mdm_x509_self_sign(k, &o, &c, &e) :
	    mdm_x509_issue(issuer, issuer_key, k, &o, &c, &e)) == -1)
		die(cn, &e);
	return c;
}

static void
setup(void)
{
	struct mdm_err e;

	snprintf(root, sizeof(root), "%s", tap_tmpdir());
	if (mdm_crypto_init(&e) == -1 ||
	    mdm_x509_gen_rsa(2048, &st_key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &apple_key, &e) == -1)
		die("keys", &e);
	ca = make_cert(st_key, NULL, NULL, MDM_X509_CA, "enroll test CA");
	signing = make_cert(st_key, ca, st_key, MDM_X509_SIGNING,
	    "enroll test signing");
	apple_ca = make_cert(apple_key, NULL, NULL, MDM_X509_CA,
	    "Apple iPhone Device CA");
	device = make_cert(apple_key, apple_ca, apple_key, MDM_X509_CLIENT,
	    "0000DEVICE");
	/* Same name as the Apple CA, another key. */
	impostor = make_cert(st_key, NULL, NULL, MDM_X509_CA,
	    "Apple iPhone Device CA");
}

static void
put_pem(struct mdm_state *st, const char *rel, X509 *c, EVP_PKEY *k)
{
	struct mdm_buf b;
	struct mdm_err e;

	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if ((c != NULL ? mdm_x509_cert_to_pem(c, &b, &e) :
	    mdm_x509_key_to_pem(k, &b, &e)) == -1 ||
	    mdm_state_write_file(st, rel, b.data, b.len, c != NULL ? 0644 :
	    0600, 0, &e) == -1)
		die(rel, &e);
	mdm_buf_release_secret(&b);
}

/*
 * A state directory as `mdm-certs init` and push-import leave it: the CA,
 * the signing identity (unless !with_signing) and ntopics push
 * certificates.
 */
static struct mdm_state *
make_state(const char *name, int with_signing, int ntopics)
{
	struct mdm_state *st;
	struct mdm_err e;
	char dir[4200], sub[4300];

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	snprintf(sub, sizeof(sub), "%s/signing", dir);
	if (mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == -1 ||
	    mdm_file_mkdir_p(sub, 0700, &e) == -1)
		die(name, &e);
	put_pem(st, "ca/ca.pem", ca, NULL);
	put_pem(st, "ca/ca.key", NULL, st_key);
	if (with_signing) {
		put_pem(st, "signing/signing.pem", signing, NULL);
		put_pem(st, "signing/signing.key", NULL, st_key);
	}
	if (ntopics > 0) {
		/* The file name is the topic; the content is any cert. */
		put_pem(st, "push/" TOPIC ".pem", device, NULL);
		put_pem(st, "push/" TOPIC ".key", NULL, apple_key);
	}
	if (ntopics > 1) {
		put_pem(st, "push/" TOPIC2 ".pem", device, NULL);
		put_pem(st, "push/" TOPIC2 ".key", NULL, apple_key);
	}
	/* push-csr's pending key is no topic. */
	put_pem(st, "push/pending.key", NULL, st_key);
	return st;
}

static void
config(struct mdm_enroll_config *c)
{
	memset(c, 0, sizeof(*c));
	c->base_url = BASE;
	c->organization = "Acme";
}

/* The payload of this PayloadType in the profile, borrowed, or NULL. */
static plist_t
payload(plist_t profile, const char *type)
{
	plist_t content = mdm_plist_get_array(profile, "PayloadContent"), p;
	const char *t;
	uint32_t i;

	for (i = 0; content != NULL && i < plist_array_get_size(content);
	    i++) {
		p = plist_array_get_item(content, i);
		if ((t = mdm_plist_get_string(p, "PayloadType")) != NULL &&
		    strcmp(t, type) == 0)
			return p;
	}
	return NULL;
}

static int64_t
get_int(plist_t d, const char *name)
{
	int64_t v = -1;

	mdm_plist_get_int(d, name, &v);
	return v;
}

static int
get_bool(plist_t d, const char *name)
{
	int v = -1;

	mdm_plist_get_bool(d, name, &v);
	return v;
}

static const char *
str(plist_t root_node, const char *path)
{
	const char *s = mdm_plist_as_string(mdm_plist_get_path(root_node,
	    path));

	return s != NULL ? s : "(none)";
}

static void
sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0, i;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* What two builds are compared on. */
struct built {
	char uuid[64], ident[128], cn[64], challenge[300];
};

/* Builds, verifies and parses a signed profile; NULL on failure. */
static plist_t
build_signed(struct mdm_state *st, const struct mdm_enroll_config *c)
{
	struct mdm_cms_verified v;
	struct mdm_buf out;
	struct mdm_err e;
	char a[65], b[65];
	plist_t p = NULL;

	mdm_buf_init(&out, MDM_CAP_CMS);
	if (!ok(mdm_enroll_profile(st, c, &out, &e) == 0,
	    "signed profile built"))
		tap_diag("%s", e.msg);
	ok(out.len > 0 && out.data[0] == 0x30, "it is DER");
	if (!ok(mdm_cms_verify(out.data, out.len, NULL, 0, ca, &v, &e) == 0,
	    "its signature verifies and chains to the state's CA"))
		tap_diag("%s", e.msg);
	else {
		mdm_x509_sha256_hex(v.signer, a, &e);
		mdm_x509_sha256_hex(signing, b, &e);
		is_str(a, b, "signed by the state's signing certificate");
		if (!ok(mdm_plist_parse_dict(v.content.data, v.content.len, &p,
		    &e) == 0, "the content is a plist dict"))
			tap_diag("%s", e.msg);
	}
	mdm_cms_verified_release(&v);
	mdm_buf_release(&out);
	return p;
}

static void
check_profile(struct mdm_state *st, plist_t p, struct built *out)
{
	struct mdm_state_scep *ss;
	struct mdm_buf der;
	struct mdm_err e;
	plist_t rootca, scep, mdm, caps, subj;
	const unsigned char *data;
	const char *challenge, *uuids[4];
	char hash[65];
	size_t len;
	int i, j, distinct = 1;

	memset(out, 0, sizeof(*out));
	is_str(str(p, "PayloadType"), "Configuration", "PayloadType");
	is_int(get_int(p, "PayloadVersion"), 1, "PayloadVersion 1");
	is_str(str(p, "PayloadIdentifier"), "test.mdm.enroll",
	    "PayloadIdentifier is the host reversed");
	is_str(str(p, "PayloadOrganization"), "Acme", "PayloadOrganization");
	is_int(plist_array_get_size(mdm_plist_get_array(p, "PayloadContent")),
	    3, "three payloads");
	rootca = payload(p, "com.apple.security.root");
	scep = payload(p, "com.apple.security.scep");
	mdm = payload(p, "com.apple.mdm");
	ok(rootca != NULL && scep != NULL && mdm != NULL,
	    "CA, SCEP and MDM payloads");

	mdm_buf_init(&der, MDM_CAP_CERT);
	mdm_x509_cert_to_der(ca, &der, &e);
	data = mdm_plist_get_data(rootca, "PayloadContent", &len);
	ok(data != NULL && len == der.len && memcmp(data, der.data, len) == 0,
	    "CA payload holds ca.pem as DER");
	mdm_buf_release(&der);

	is_str(str(scep, "PayloadContent.URL"), "https://mdm.test:8443/scep",
	    "SCEP URL is BASE/scep, trailing slash dropped");
	is_int(get_int(mdm_plist_get_dict(scep, "PayloadContent"), "Keysize"),
	    2048, "Keysize 2048");
	is_str(str(scep, "PayloadContent.Key Type"), "RSA", "Key Type RSA");
	is_int(get_int(mdm_plist_get_dict(scep, "PayloadContent"),
	    "Key Usage"), 5, "Key Usage 5");
	subj = mdm_plist_get_path(scep, "PayloadContent.Subject");
	is_int(plist_array_get_size(subj), 2, "Subject has two RDNs");
	is_str(str(subj, "0.0.0"), "O", "first RDN type O");
	is_str(str(subj, "0.0.1"), "Acme", "first RDN value");
	is_str(str(subj, "1.0.0"), "CN", "second RDN type CN");
	is_int(strlen(str(subj, "1.0.1")), 36, "CN is a UUID");

	is_str(str(mdm, "ServerURL"), "https://mdm.test:8443/mdm/connect",
	    "ServerURL");
	is_str(str(mdm, "CheckInURL"), "https://mdm.test:8443/mdm/checkin",
	    "CheckInURL");
	is_str(str(mdm, "Topic"), TOPIC, "Topic from the push directory");
	is_str(str(mdm, "IdentityCertificateUUID"), str(scep, "PayloadUUID"),
	    "IdentityCertificateUUID names the SCEP payload");
	is_int(get_bool(mdm, "SignMessage"), 1, "SignMessage true");
	is_int(get_int(mdm, "AccessRights"), 8191, "AccessRights 8191");
	is_int(get_bool(mdm, "CheckOutWhenRemoved"), 1,
	    "CheckOutWhenRemoved true");
	caps = mdm_plist_get_array(mdm, "ServerCapabilities");
	ok(plist_array_get_size(caps) == 2 &&
	    strcmp(str(caps, "0"), "com.apple.mdm.per-user-connections") ==
	    0 && strcmp(str(caps, "1"), "com.apple.mdm.bootstraptoken") == 0,
	    "ServerCapabilities: per-user-connections, bootstraptoken");
	is_str(str(mdm, "PayloadIdentifier"), "test.mdm.enroll.mdm",
	    "MDM PayloadIdentifier");

	uuids[0] = str(p, "PayloadUUID");
	uuids[1] = str(rootca, "PayloadUUID");
	uuids[2] = str(scep, "PayloadUUID");
	uuids[3] = str(mdm, "PayloadUUID");
	for (i = 0; i < 4; i++)
		for (j = i + 1; j < 4; j++)
			if (strcmp(uuids[i], uuids[j]) == 0)
				distinct = 0;
	ok(distinct && strlen(uuids[0]) == 36, "four distinct PayloadUUIDs");

	challenge = str(scep, "PayloadContent.Challenge");
	snprintf(out->uuid, sizeof(out->uuid), "%s", uuids[0]);
	snprintf(out->ident, sizeof(out->ident), "%s",
	    str(p, "PayloadIdentifier"));
	snprintf(out->cn, sizeof(out->cn), "%s", str(subj, "1.0.1"));
	snprintf(out->challenge, sizeof(out->challenge), "%s", challenge);
	if (st == NULL)
		return;
	is_int(strlen(challenge), 24, "a minted challenge: 24 characters");
	sha256_hex(challenge, hash);
	if (mdm_state_scep_open(st, &ss, &e) == -1)
		die("state_scep", &e);
	is_int(mdm_state_scep_challenge_valid(ss, hash, time(NULL), &e), 1,
	    "the challenge is in the state");
	is_int(mdm_state_scep_challenge_valid(ss, hash, time(NULL) + 3700,
	    &e), 0, "and expires after an hour");
	is_int(mdm_state_scep_challenge_consume(ss, hash, time(NULL), &e), 1,
	    "it pays once");
	is_int(mdm_state_scep_challenge_consume(ss, hash, time(NULL), &e), 0,
	    "and only once");
	mdm_state_scep_close(ss);
}

static void
test_profile(void)
{
	struct mdm_enroll_config c;
	struct mdm_state *st = make_state("one", 1, 1);
	struct mdm_buf out;
	struct mdm_err e;
	struct built b1, b2;
	plist_t p;

	config(&c);
	p = build_signed(st, &c);
	check_profile(st, p, &b1);
	plist_free(p);
	p = build_signed(st, &c);
	check_profile(st, p, &b2);
	plist_free(p);
	{
		X509 *s = NULL;
		EVP_PKEY *k = NULL;
		struct mdm_err le = { 0 };

		/* A server loads the CA and the signer once and lends them. */
		ok(mdm_state_identity(st, "signing/signing", NULL, &s, &k,
		    &le) == 0, "the signing identity, loaded once");
		c.ca = ca;
		c.signer = s;
		c.signer_key = k;
		p = build_signed(st, &c);
		check_profile(st, p, &b2);
		plist_free(p);
		c.ca = NULL;
		c.signer = NULL;
		c.signer_key = NULL;
		X509_free(s);
		EVP_PKEY_free(k);
	}
	ok(strcmp(b1.uuid, b2.uuid) != 0, "two builds: new PayloadUUID");
	ok(strcmp(b1.cn, b2.cn) != 0, "two builds: new SCEP subject");
	ok(strcmp(b1.challenge, b2.challenge) != 0,
	    "two builds: new challenge");
	is_str(b1.ident, b2.ident, "two builds: same PayloadIdentifier");

	/* Static challenge, SCEP URL, no org, SignMessage off, unsigned. */
	config(&c);
	c.challenge = "s3cret static";
	c.scep_url = "http://scep.test/cgi-bin/pkiclient.exe";
	c.organization = NULL;
	c.no_sign_message = 1;
	c.unsigned_profile = 1;
	c.topic = TOPIC;
	mdm_buf_init(&out, MDM_CAP_CMS);
	if (!ok(mdm_enroll_profile(st, &c, &out, &e) == 0,
	    "unsigned profile built"))
		tap_diag("%s", e.msg);
	ok(out.len > 5 && memcmp(out.data, "<?xml", 5) == 0,
	    "unsigned: XML as is");
	p = NULL;
	ok(mdm_plist_parse_dict(out.data, out.len, &p, &e) == 0,
	    "which parses");
	is_str(str(payload(p, "com.apple.security.scep"),
	    "PayloadContent.Challenge"), "s3cret static",
	    "a static challenge goes in verbatim");
	is_str(str(payload(p, "com.apple.security.scep"),
	    "PayloadContent.URL"), "http://scep.test/cgi-bin/pkiclient.exe",
	    "the SCEP URL override");
	is_int(plist_array_get_size(mdm_plist_get_path(payload(p,
	    "com.apple.security.scep"), "PayloadContent.Subject")), 1,
	    "no organization: the subject is the CN alone");
	ok(mdm_plist_get_string(p, "PayloadOrganization") == NULL,
	    "and no PayloadOrganization");
	is_int(get_bool(payload(p, "com.apple.mdm"), "SignMessage"), 0,
	    "SignMessage off");
	plist_free(p);
	mdm_buf_release(&out);
	mdm_state_close(st);
}

static void
expect_fail(struct mdm_state *st, const struct mdm_enroll_config *c,
    enum mdm_errc code, const char *needle, const char *what)
{
	struct mdm_buf out;
	struct mdm_err e;
	int rc;

	memset(&e, 0, sizeof(e));
	mdm_buf_init(&out, MDM_CAP_CMS);
	rc = mdm_enroll_profile(st, c, &out, &e);
	if (!ok(rc == -1 && e.code == code && out.len == 0 &&
	    (needle == NULL || strstr(e.msg, needle) != NULL), "%s", what))
		tap_diag("rc %d code %d: %s", rc, (int)e.code, e.msg);
	mdm_buf_release(&out);
}

static void
test_refusals(void)
{
	struct mdm_enroll_config c;
	struct mdm_state *st = make_state("refuse", 1, 1);
	struct mdm_state *none = make_state("nopush", 1, 0);
	struct mdm_state *two = make_state("twopush", 1, 2);
	struct mdm_state *nosign = make_state("nosign", 0, 1);
	struct mdm_buf out;
	struct mdm_err e;
	char big[MDM_ENROLL_URL_MAX + 100];

	config(&c);
	c.base_url = NULL;
	expect_fail(st, &c, MDM_E_USAGE, "server URL", "no base URL");
	c.base_url = "http://mdm.test";
	expect_fail(st, &c, MDM_E_USAGE, "https://", "an http base URL");
	c.base_url = "https://";
	expect_fail(st, &c, MDM_E_USAGE, "no host", "a URL without host");
	c.base_url = "https://mdm.test/a b";
	expect_fail(st, &c, MDM_E_USAGE, NULL, "a URL with a space");
	c.base_url = "https://mdm.test/?x=1";
	expect_fail(st, &c, MDM_E_USAGE, NULL, "a URL with a query");
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "https://", 8);
	big[sizeof(big) - 1] = '\0';
	c.base_url = big;
	expect_fail(st, &c, MDM_E_USAGE, "longer", "an over-long URL");
	config(&c);
	c.scep_url = "ftp://scep.test";
	expect_fail(st, &c, MDM_E_USAGE, "SCEP URL", "a non-HTTP SCEP URL");
	config(&c);
	c.challenge = "";
	expect_fail(st, &c, MDM_E_USAGE, "challenge", "an empty challenge");
	c.challenge = "two\nlines";
	expect_fail(st, &c, MDM_E_USAGE, "challenge",
	    "a challenge with a newline");
	config(&c);
	c.organization = "An organization name that is far longer than the 64 "
	    "bytes that X.509 allows for an O= value";
	expect_fail(st, &c, MDM_E_USAGE, "organization",
	    "an over-long organization");
	config(&c);
	c.topic = "com.example.not-a-topic";
	expect_fail(st, &c, MDM_E_USAGE, "com.apple.mgmt.",
	    "a topic without the prefix");
	c.topic = "com.apple.mgmt.x/../../evil";
	expect_fail(st, &c, MDM_E_USAGE, NULL, "a topic that is no file name");
	c.topic = TOPIC2;
	expect_fail(st, &c, MDM_E_CONFIG, "push-import",
	    "a topic without a push certificate");

	config(&c);
	expect_fail(none, &c, MDM_E_CONFIG, "no push certificate",
	    "no push certificate: config error");
	expect_fail(two, &c, MDM_E_CONFIG, "--topic",
	    "two push certificates: config error");
	expect_fail(two, &c, MDM_E_CONFIG, TOPIC2,
	    "which names both topics");
	c.topic = TOPIC2;
	mdm_buf_init(&out, MDM_CAP_CMS);
	ok(mdm_enroll_profile(two, &c, &out, &e) == 0,
	    "two push certificates and a topic named: built");
	mdm_buf_release(&out);

	config(&c);
	expect_fail(nosign, &c, MDM_E_CONFIG, "mdm-certs init",
	    "no signing identity: config error");
	c.unsigned_profile = 1;
	mdm_buf_init(&out, MDM_CAP_CMS);
	ok(mdm_enroll_profile(nosign, &c, &out, &e) == 0,
	    "but an unsigned profile needs none");
	mdm_buf_release(&out);

	config(&c);
	mdm_buf_init(&out, 100);
	ok(mdm_enroll_profile(st, &c, &out, &e) == -1 &&
	    e.code == MDM_E_TOOBIG && out.len == 0,
	    "an output buffer too small: TOOBIG, left empty");
	mdm_buf_release(&out);

	config(&c);
	ok(mdm_enroll_config_check(&c, &e) == 0, "config_check accepts");
	c.challenge_ttl = -1;
	ok(mdm_enroll_config_check(&c, &e) == -1 && e.code == MDM_E_USAGE,
	    "config_check: negative TTL");
	mdm_state_close(st);
	mdm_state_close(none);
	mdm_state_close(two);
	mdm_state_close(nosign);
}

/* Every key of fixture dict f is in ours, with the same type. */
static int
same_keys(plist_t f, plist_t ours, const char *what)
{
	plist_dict_iter it = NULL;
	plist_t v = NULL, o;
	char *k = NULL;
	int good = 1;

	plist_dict_new_iter(f, &it);
	for (;;) {
		plist_dict_next_item(f, it, &k, &v);
		if (k == NULL)
			break;
		o = plist_dict_get_item(ours, k);
		if (o == NULL || plist_get_node_type(o) !=
		    plist_get_node_type(v)) {
			tap_diag("%s: %s %s", what, k, o == NULL ? "missing" :
			    "of another type");
			good = 0;
		}
		free(k);
		k = NULL;
	}
	free(it);
	return good;
}

static void
test_fixture(void)
{
	const char *dir = tap_fixture("nanomdm/docs");
	struct mdm_enroll_config c;
	struct mdm_state *st;
	struct mdm_err e;
	char path[4200];
	plist_t f = NULL, ours;

	if (dir == NULL) {
		tap_skip(4, "shared fixtures not present");
		return;
	}
	snprintf(path, sizeof(path), "%s/enroll.mobileconfig", dir);
	if (!ok(mdm_plist_parse_file(path, &f, &e) == 0,
	    "NanoMDM enroll.mobileconfig parses")) {
		tap_diag("%s", e.msg);
		tap_skip(3, "no fixture");
		return;
	}
	st = make_state("fixture", 1, 1);
	config(&c);
	c.unsigned_profile = 1;
	{
		struct mdm_buf out;

		mdm_buf_init(&out, MDM_CAP_CMS);
		if (mdm_enroll_profile(st, &c, &out, &e) == -1 ||
		    mdm_plist_parse_dict(out.data, out.len, &ours, &e) == -1)
			die("fixture profile", &e);
		mdm_buf_release(&out);
	}
	ok(same_keys(f, ours, "top"), "ours has every top-level key NanoMDM's "
	    "has");
	ok(same_keys(payload(f, "com.apple.mdm"), payload(ours,
	    "com.apple.mdm"), "mdm"), "every MDM payload key");
	ok(same_keys(mdm_plist_get_dict(payload(f, "com.apple.security.scep"),
	    "PayloadContent"), mdm_plist_get_dict(payload(ours,
	    "com.apple.security.scep"), "PayloadContent"), "scep"),
	    "every SCEP PayloadContent key");
	plist_free(f);
	plist_free(ours);
	mdm_state_close(st);
}

static const char machineinfo_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\">\n<dict>\n"
    "\t<key>LANGUAGE</key><string>en-US</string>\n"
    "\t<key>PRODUCT</key><string>iPhone10,3</string>\n"
    "\t<key>SERIAL</key><string>C39ABCDEFGH1</string>\n"
    "\t<key>UDID</key><string>00008030-001234567890002E</string>\n"
    "\t<key>VERSION</key><string>21A329</string>\n"
    "\t<key>OS_VERSION</key><string>17.0</string>\n"
    "\t<key>IMEI</key><string>35 123456 789012 3</string>\n"
    "\t<key>MDM_CAN_REQUEST_SOFTWARE_UPDATE</key><true/>\n"
    "</dict>\n</plist>\n";

/* A DEP request body: content signed by the test device. */
static void
sign_body(const char *content, struct mdm_buf *out)
{
	struct mdm_err e;

	mdm_buf_init(out, MDM_CAP_CMS);
	if (mdm_cms_sign(content, strlen(content), device, apple_key, NULL, 0,
	    out, &e) == -1)
		die("sign machine info", &e);
}

static void
write_seed(const char *name, const void *p, size_t n)
{
	const char *dir = getenv("MDM_ENROLL_SEEDS");
	char path[4200];
	struct mdm_err e;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mdm_file_write_atomic(path, p, n, 0644, 0, &e) == -1)
		tap_diag("seed %s: %s", name, e.msg);
}

static void
machineinfo_refused(const char *content, enum mdm_errc code,
    const char *what)
{
	struct mdm_enroll_machineinfo mi;
	struct mdm_buf b;
	struct mdm_err e;
	int rc;

	sign_body(content, &b);
	rc = mdm_enroll_machineinfo(b.data, b.len, apple_ca, &mi, &e);
	if (!ok(rc == -1 && e.code == code && mi.udid[0] == '\0', "%s", what))
		tap_diag("rc %d code %d: %s", rc, (int)e.code, e.msg);
	mdm_buf_release(&b);
}

static void
test_machineinfo(void)
{
	struct mdm_enroll_machineinfo mi;
	struct mdm_buf b, big;
	struct mdm_err e;
	char content[2048];

	sign_body(machineinfo_xml, &b);
	write_seed("signed", b.data, b.len);
	if (!ok(mdm_enroll_machineinfo(b.data, b.len, apple_ca, &mi, &e) == 0,
	    "MachineInfo signed by the device: accepted"))
		tap_diag("%s", e.msg);
	is_str(mi.udid, "00008030-001234567890002E", "UDID");
	is_str(mi.serial, "C39ABCDEFGH1", "SERIAL");
	is_str(mi.product, "iPhone10,3", "PRODUCT");
	is_str(mi.version, "21A329", "VERSION");
	is_str(mi.os_version, "17.0", "OS_VERSION");
	is_str(mi.imei, "35 123456 789012 3", "IMEI");
	is_str(mi.meid, "", "MEID absent: empty");
	is_str(mi.language, "en-US", "LANGUAGE");
	is_int(mi.can_request_software_update, 1,
	    "MDM_CAN_REQUEST_SOFTWARE_UPDATE");
	is_int(mi.verified, 1, "verified against the Apple CA");
	ok(strstr(mi.signer, "CN=0000DEVICE") != NULL, "signer subject");

	ok(mdm_enroll_machineinfo(b.data, b.len, NULL, &mi, &e) == 0 &&
	    mi.verified == 0 && strcmp(mi.serial, "C39ABCDEFGH1") == 0,
	    "without a CA: parsed, not verified");
	ok(mdm_enroll_machineinfo(b.data, b.len, impostor, &mi, &e) == -1 &&
	    e.code == MDM_E_CRYPTO && mi.udid[0] == '\0',
	    "a CA of the same name and another key: refused");
	ok(mdm_enroll_machineinfo(b.data, b.len, ca, &mi, &e) == -1 &&
	    e.code == MDM_E_CRYPTO, "an unrelated CA: refused");
	ok(strstr(e.msg, "machine info") != NULL, "message says what: %s",
	    e.msg);
	ok(mdm_enroll_machineinfo(b.data, b.len - 40, apple_ca, &mi, &e) ==
	    -1 && e.code == MDM_E_DATA, "truncated: refused");
	write_seed("truncated", b.data, b.len - 40);
	{
		/* A byte of the signed content flipped. */
		unsigned char *at = NULL;
		size_t i;

		for (i = 0; at == NULL && i + 12 <= b.len; i++)
			if (memcmp(b.data + i, "C39ABCDEFGH1", 12) == 0)
				at = b.data + i;

		if (at != NULL)
			*at = 'X';
		ok(at != NULL && mdm_enroll_machineinfo(b.data, b.len,
		    apple_ca, &mi, &e) == -1 && e.code == MDM_E_CRYPTO,
		    "tampered content: refused");
	}
	mdm_buf_release(&b);
	ok(mdm_enroll_machineinfo(machineinfo_xml, strlen(machineinfo_xml),
	    NULL, &mi, &e) == -1 && e.code == MDM_E_DATA,
	    "an unsigned plist body: refused");
	ok(mdm_enroll_machineinfo("", 0, NULL, &mi, &e) == -1 &&
	    e.code == MDM_E_DATA, "an empty body: refused");
	mdm_buf_init(&big, MDM_ENROLL_MACHINEINFO_MAX + 10);
	while (big.len <= MDM_ENROLL_MACHINEINFO_MAX)
		mdm_buf_append(&big, "0", 1, &e);
	ok(mdm_enroll_machineinfo(big.data, big.len, NULL, &mi, &e) == -1 &&
	    e.code == MDM_E_TOOBIG, "over the cap: TOOBIG");
	mdm_buf_release(&big);

	machineinfo_refused("<plist><dict><key>SERIAL</key><string>S1"
	    "</string></dict></plist>", MDM_E_DATA, "no UDID: refused");
	machineinfo_refused("<plist><dict><key>UDID</key><string>U1"
	    "</string></dict></plist>", MDM_E_DATA, "no SERIAL: refused");
	machineinfo_refused("<plist><dict><key>UDID</key><integer>1"
	    "</integer><key>SERIAL</key><string>S1</string></dict></plist>",
	    MDM_E_DATA, "UDID of the wrong type: refused");
	machineinfo_refused("<plist><dict><key>UDID</key><string></string>"
	    "<key>SERIAL</key><string>S1</string></dict></plist>",
	    MDM_E_DATA, "an empty UDID: refused");
	machineinfo_refused("<plist><dict><key>UDID</key><string>U1&#10;x"
	    "</string><key>SERIAL</key><string>S1</string></dict></plist>",
	    MDM_E_DATA, "a newline in a field: refused");
	machineinfo_refused("<plist><dict><key>UDID</key><string>U1</string>"
	    "<key>SERIAL</key><string>S1</string>"
	    "<key>MDM_CAN_REQUEST_SOFTWARE_UPDATE</key><string>yes</string>"
	    "</dict></plist>", MDM_E_DATA, "a boolean as a string: refused");
	machineinfo_refused("<plist><array><string>UDID</string></array>"
	    "</plist>", MDM_E_DATA, "an array, not a dict: refused");
	machineinfo_refused("UDID=1 SERIAL=2", MDM_E_DATA,
	    "content that is no plist: refused");
	snprintf(content, sizeof(content), "<plist><dict><key>UDID</key>"
	    "<string>U1</string><key>SERIAL</key><string>%0200d</string>"
	    "</dict></plist>", 0);
	machineinfo_refused(content, MDM_E_DATA, "a 200-byte SERIAL: refused");
	sign_body("<plist><dict><key>UDID</key><string>U1</string>"
	    "<key>SERIAL</key><string>S1</string></dict></plist>", &b);
	write_seed("minimal", b.data, b.len);
	ok(mdm_enroll_machineinfo(b.data, b.len, apple_ca, &mi, &e) == 0 &&
	    strcmp(mi.udid, "U1") == 0 && mi.product[0] == '\0',
	    "UDID and SERIAL alone: accepted");
	mdm_buf_release(&b);
}

/* tests/data/enroll_machineinfo: inputs that once crashed or hung. */
static void
test_data_files(void)
{
	const char *data = getenv("MDM_TEST_DATA");
	struct mdm_enroll_machineinfo mi;
	struct dirent *d;
	struct mdm_buf b;
	struct mdm_err e;
	char dir[4200], path[4500];
	DIR *dp;
	int n = 0;

	if (data == NULL)
		return;
	snprintf(dir, sizeof(dir), "%s/enroll_machineinfo", data);
	if ((dp = opendir(dir)) == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		mdm_buf_init(&b, MDM_CAP_CMS);
		if (mdm_buf_read_file(&b, path, &e) == 0) {
			mdm_enroll_machineinfo(b.data, b.len, apple_ca, &mi,
			    &e);
			mdm_enroll_machineinfo(b.data, b.len, NULL, &mi, &e);
			n++;
		}
		mdm_buf_release(&b);
	}
	closedir(dp);
	ok(n > 0, "%d regression inputs parsed without a crash", n);
}

int
main(void)
{
	setup();
	test_profile();
	test_refusals();
	test_fixture();
	test_machineinfo();
	test_data_files();
	X509_free(ca);
	X509_free(signing);
	X509_free(apple_ca);
	X509_free(device);
	X509_free(impostor);
	EVP_PKEY_free(st_key);
	EVP_PKEY_free(apple_key);
	return tap_done();
}

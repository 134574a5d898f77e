/*
 * test_pushcert: the one topic rule (prefix, length, file-name
 * characters, MDM_E_USAGE), the topic of a certificate (its subject UID;
 * none, a wrong prefix, a path or an overlong UID are MDM_E_DATA), the
 * PEM key block found in a bundle (PKCS#8, traditional, encrypted, CRLF,
 * none), and in a temporary state: storing a certificate (modes, key
 * first, a key that does not match or a bad topic writes nothing), the
 * listing of STATE/push (sorted, stray files skipped, a stop carried
 * through), loading a stored certificate (a missing, unreadable or
 * non-topic one refused) and what other_topic says about known and
 * other topics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "pushcert.h"
#include "state.h"
#include "tap.h"
#include "x509.h"

#define TOPIC	"com.apple.mgmt.External.11111111-2222-3333-4444-555555555555"
#define TOPIC2	"com.apple.mgmt.External.99999999-2222-3333-4444-555555555555"

static EVP_PKEY *key, *key2;

static void
die(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "test_pushcert: %s: %s\n", what,
	    e != NULL ? e->msg : "failed");
	exit(1);
}

/* A self-signed certificate over key with subject UID uid (NULL: none). */
static X509 *
push_cert(const char *uid)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_NAME_new();

	if (c == NULL || n == NULL ||
	    (uid != NULL && !X509_NAME_add_entry_by_NID(n, NID_userId,
	    MBSTRING_UTF8, (const unsigned char *)uid, -1, -1, 0)) ||
	    !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)"APSP:unit", -1, -1, 0) ||
	    !X509_set_version(c, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(c), 7) ||
	    !X509_set_subject_name(c, n) || !X509_set_issuer_name(c, n) ||
	    !X509_gmtime_adj(X509_getm_notBefore(c), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c), 86400) ||
	    !X509_set_pubkey(c, key) || !X509_sign(c, key, EVP_sha256()))
		die("push_cert", NULL);
	X509_NAME_free(n);
	return c;
}

static void
test_topic_check(void)
{
	struct mdm_err e = { 0 };
	char longest[MDM_PUSHCERT_TOPIC_MAX];
	size_t pl = strlen(MDM_PUSHCERT_TOPIC_PREFIX);

	ok(mdm_pushcert_topic_check(TOPIC, &e) == 0, "a real topic");
	ok(mdm_pushcert_topic_check("com.apple.mgmt.a-b_c.9", NULL) == 0,
	    "letters, digits, '.', '-', '_' (e may be NULL)");
	ok(mdm_pushcert_topic_check("com.example.x", &e) == -1 &&
	    e.code == MDM_E_USAGE && strstr(e.msg, "does not start with "
	    MDM_PUSHCERT_TOPIC_PREFIX) != NULL, "no prefix: usage, says so");
	ok(mdm_pushcert_topic_check("", &e) == -1, "empty");
	ok(mdm_pushcert_topic_check("Com.apple.mgmt.x", &e) == -1,
	    "the prefix is case-sensitive");
	ok(mdm_pushcert_topic_check("com.apple.mgmt.x/../../evil", &e) ==
	    -1 && e.code == MDM_E_USAGE && strstr(e.msg, "only letters") !=
	    NULL, "a path: refused, naming what is allowed");
	ok(mdm_pushcert_topic_check("com.apple.mgmt.a b", &e) == -1,
	    "a space");
	ok(mdm_pushcert_topic_check("com.apple.mgmt.\xc3\xa9", &e) == -1,
	    "non-ASCII");
	memset(longest, 'a', sizeof(longest));
	memcpy(longest, MDM_PUSHCERT_TOPIC_PREFIX, pl);
	longest[MDM_PUSHCERT_TOPIC_LEN] = '\0';
	ok(mdm_pushcert_topic_check(longest, &e) == 0,
	    "MDM_PUSHCERT_TOPIC_LEN bytes");
	longest[MDM_PUSHCERT_TOPIC_LEN] = 'a';
	longest[MDM_PUSHCERT_TOPIC_LEN + 1] = '\0';
	ok(mdm_pushcert_topic_check(longest, &e) == -1 &&
	    strstr(e.msg, "longer than") != NULL, "one byte more");
}

static void
test_topic(void)
{
	struct mdm_err e = { 0 };
	char topic[MDM_PUSHCERT_TOPIC_MAX], small[8];
	char huge[MDM_PUSHCERT_TOPIC_MAX + 20];
	X509 *c;

	c = push_cert(TOPIC);
	ok(mdm_pushcert_topic(c, topic, sizeof(topic), &e) == 0,
	    "the topic of a push certificate");
	is_str(topic, TOPIC, "is its subject UID");
	ok(mdm_pushcert_topic(c, small, sizeof(small), &e) == -1 &&
	    e.code == MDM_E_DATA, "a buffer too small: data, no overflow");
	X509_free(c);

	c = push_cert(NULL);
	ok(mdm_pushcert_topic(c, topic, sizeof(topic), &e) == -1 &&
	    e.code == MDM_E_DATA && strstr(e.msg, "has no UID") != NULL,
	    "no UID: data, says so");
	X509_free(c);

	c = push_cert("com.example.not-apple");
	ok(mdm_pushcert_topic(c, topic, sizeof(topic), &e) == -1 &&
	    e.code == MDM_E_DATA && strstr(e.msg, "does not start with")
	    != NULL, "a UID without the prefix: data (not usage)");
	X509_free(c);

	c = push_cert("com.apple.mgmt.x/../../evil");
	ok(mdm_pushcert_topic(c, topic, sizeof(topic), NULL) == -1,
	    "a UID that is no file name (e NULL)");
	X509_free(c);

	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	memcpy(huge, MDM_PUSHCERT_TOPIC_PREFIX,
	    strlen(MDM_PUSHCERT_TOPIC_PREFIX));
	c = push_cert(huge);
	ok(mdm_pushcert_topic(c, topic, sizeof(topic), &e) == -1 &&
	    e.code == MDM_E_DATA, "a UID longer than the buffer: data");
	X509_free(c);
}

static void
test_pem_key(void)
{
	static const char cert_only[] =
	    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	static const char bundle[] =
	    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
	static const char rsa[] =
	    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n";
	static const char enc_crlf[] =
	    "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n"
	    "-----END CERTIFICATE-----\r\n"
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----\r\nMIIE\r\n";
	/* "PRIVATE KEY-----" further on is no BEGIN line of a key. */
	static const char decoy[] =
	    "-----BEGIN CERTIFICATE-----\nPRIVATE KEY-----\n";
	static const char bare[] = "-----BEGIN PRIVATE KEY-----";

	ok(mdm_pushcert_pem_key(cert_only) == NULL, "a certificate alone");
	ok(mdm_pushcert_pem_key(bundle) == strstr(bundle, "-----BEGIN PRIV"),
	    "certificate and key: the key block");
	ok(mdm_pushcert_pem_key(rsa) == rsa, "a traditional RSA key");
	ok(mdm_pushcert_pem_key(enc_crlf) == strstr(enc_crlf,
	    "-----BEGIN ENC"), "an encrypted key, CRLF lines");
	ok(mdm_pushcert_pem_key(decoy) == NULL, "not fooled by a later line");
	ok(mdm_pushcert_pem_key(bare) == bare, "no newline at the end");
	ok(mdm_pushcert_pem_key("") == NULL, "empty");
}

struct seen {
	int n;
	char names[4][MDM_PUSHCERT_TOPIC_MAX];
	int stop_at;		/* stop with an error at this call, or 0 */
};

static int
collect(const char *topic, void *arg, struct mdm_err *e)
{
	struct seen *s = arg;

	if (++s->n == s->stop_at)
		return mdm_err_set(e, MDM_E_IO, "stop");
	if (s->n <= 4)
		snprintf(s->names[s->n - 1], sizeof(s->names[0]), "%s",
		    topic);
	return 0;
}

static int
file_mode(struct mdm_state *st, const char *rel)
{
	char path[4096];
	struct stat sb;

	if (mdm_state_path(st, rel, path, sizeof(path), NULL) == -1 ||
	    stat(path, &sb) == -1)
		return -1;
	return (int)(sb.st_mode & 0777);
}

static int
exists(struct mdm_state *st, const char *rel)
{
	return file_mode(st, rel) != -1;
}

static void
test_state(void)
{
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct seen s;
	char other[MDM_PUSHCERT_TOPIC_MAX], small[16];
	X509 *c = push_cert(TOPIC), *c2 = push_cert(TOPIC2), *got = NULL;
	EVP_PKEY *gotkey = NULL;
	int known = -1;

	if (mdm_state_open(tap_tmpdir(), MDM_STATE_CREATE, &st, &e) == -1)
		die("state", &e);

	ok(mdm_pushcert_other_topic(st, TOPIC, &known, other, sizeof(other),
	    &e) == 0 && known == 0 && other[0] == '\0',
	    "an empty state: nothing known, no other topic");
	ok(mdm_pushcert_other_topic(st, TOPIC, &known, small, sizeof(small),
	    &e) == -1, "an other buffer that could truncate: refused");

	ok(mdm_pushcert_store(st, TOPIC, c, key2, &e) == -1 &&
	    e.code == MDM_E_DATA, "a key that does not match: data");
	ok(!exists(st, "push/" TOPIC ".key") && !exists(st, "push/" TOPIC
	    ".pem"), "and nothing written");
	ok(mdm_pushcert_store(st, "com.apple.mgmt.x/../evil", c, key,
	    &e) == -1 && e.code == MDM_E_USAGE, "a topic that is no file "
	    "name: refused");

	ok(mdm_pushcert_store(st, TOPIC, c, key, &e) == 0, "store");
	is_int(file_mode(st, "push/" TOPIC ".key"), 0600, "key 0600");
	is_int(file_mode(st, "push/" TOPIC ".pem"), 0644, "cert 0644");
	ok(mdm_state_identity(st, "push/" TOPIC, "hint", &got, &gotkey,
	    &e) == 0 && X509_cmp(got, c) == 0 &&
	    mdm_x509_key_matches(got, gotkey), "reads back as an identity");
	X509_free(got);
	EVP_PKEY_free(gotkey);
	ok(mdm_pushcert_store(st, TOPIC, c, key, &e) == 0,
	    "storing again replaces it");
	ok(mdm_pushcert_load(st, TOPIC, &got, &e) == 0 &&
	    X509_cmp(got, c) == 0, "load: the stored certificate");
	X509_free(got);
	got = NULL;
	ok(mdm_pushcert_load(st, TOPIC2, &got, &e) == -1 && got == NULL,
	    "load: none stored for that topic");
	ok(mdm_pushcert_load(st, "com.apple.mgmt.x/../evil", &got, &e) ==
	    -1 && e.code == MDM_E_USAGE && got == NULL, "load: a topic that "
	    "is no file name: usage");

	ok(mdm_pushcert_other_topic(st, TOPIC, &known, other, sizeof(other),
	    &e) == 0 && known == 1 && other[0] == '\0',
	    "its own topic: known, no other");
	ok(mdm_pushcert_other_topic(st, TOPIC2, &known, other, sizeof(other),
	    &e) == 0 && known == 0 && strcmp(other, TOPIC) == 0,
	    "a new topic: not known, the other named");

	/* Files that are no push certificate of ours. */
	if (mdm_state_write_file(st, "push/pending.key", "x", 1, 0600, 0,
	    &e) == -1 || mdm_state_write_file(st, "push/notes.pem", "x", 1,
	    0644, 0, &e) == -1 || mdm_state_write_file(st,
	    "push/com.apple.mgmt.a b.pem", "x", 1, 0644, 0, &e) == -1)
		die("stray files", &e);
	ok(mdm_pushcert_store(st, TOPIC2, c2, key, &e) == 0,
	    "store a second topic");

	memset(&s, 0, sizeof(s));
	ok(mdm_pushcert_foreach(st, collect, &s, &e) == 0 && s.n == 2,
	    "foreach: the two topics, stray files skipped");
	is_str(s.names[0], TOPIC, "in order: first");
	is_str(s.names[1], TOPIC2, "in order: second");
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	ok(mdm_pushcert_foreach(st, collect, &s, &e) == -1 &&
	    e.code == MDM_E_IO && s.n == 1, "a callback's stop carries "
	    "through with its error");

	ok(mdm_pushcert_other_topic(st, TOPIC2, &known, other, sizeof(other),
	    &e) == 0 && known == 1 && strcmp(other, TOPIC) == 0,
	    "two topics: known, and the other named");
	if (mdm_state_write_file(st, "push/com.apple.mgmt.junk.pem", "x", 1,
	    0644, 0, &e) == -1)
		die("junk certificate", &e);
	ok(mdm_pushcert_load(st, "com.apple.mgmt.junk", &got, NULL) == -1 &&
	    got == NULL, "load: a file that is no certificate (e NULL)");

	X509_free(c);
	X509_free(c2);
	mdm_state_close(st);
}

int
main(void)
{
	struct mdm_err e = { 0 };

	if (mdm_crypto_init(&e) == -1 ||
	    mdm_x509_gen_rsa(2048, &key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &key2, &e) == -1)
		die("keys", &e);
	test_topic_check();
	test_topic();
	test_pem_key();
	test_state();
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	return tap_done();
}

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include "buf.h"
#include "file.h"
#include "pushcert.h"
#include "x509.h"
#include "mdm_int.h"

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

int
mdm_pushcert_topic(X509 *cert, char *topic, size_t topiclen,
    struct mdm_err *e)
{
	if (mdm_x509_subject_attr(cert, NID_userId, topic, topiclen,
	    e) == -1)
		return mdm_err_set(e, MDM_E_DATA, "no UID (topic) in the "
		    "subject: not an APNs MDM push certificate");
	if (strncmp(topic, MDM_PUSHCERT_TOPIC_PREFIX,
	    strlen(MDM_PUSHCERT_TOPIC_PREFIX)) != 0 || !safe_name(topic))
		return mdm_err_set(e, MDM_E_DATA, "topic '%.200s' does not "
		    "start with %s: not an APNs MDM push certificate", topic,
		    MDM_PUSHCERT_TOPIC_PREFIX);
	return 0;
}

const char *
mdm_pushcert_pem_key(const char *pem)
{
	const char *p = pem, *end;

	while ((p = strstr(p, "-----BEGIN ")) != NULL) {
		end = p + strcspn(p, "\r\n");
		/* "PRIVATE KEY-----" ends the line of a key's BEGIN. */
		if (end - p >= 16 && memcmp(end - 16, "PRIVATE KEY-----",
		    16) == 0)
			return p;
		p += 11;
	}
	return NULL;
}

struct topic_check {
	const char *topic;
	int known;
	char *other;
	size_t otherlen;
};

static int
find_other_topic(const char *dir, const char *name, void *arg,
    struct mdm_err *e)
{
	struct topic_check *t = arg;
	size_t len = strlen(name);

	(void)dir;
	(void)e;
	if (len <= 4)
		return 0;
	if (len - 4 == strlen(t->topic) && strncmp(name, t->topic,
	    len - 4) == 0)
		t->known = 1;
	else if (t->other[0] == '\0')
		snprintf(t->other, t->otherlen, "%.*s", (int)(len - 4), name);
	return 0;
}

int
mdm_pushcert_other_topic(struct mdm_state *st, const char *topic,
    int *known, char *other, size_t otherlen, struct mdm_err *e)
{
	struct topic_check tc;
	char dir[PATH_MAX];

	if (otherlen == 0)
		return mdm_err_set(e, MDM_E_USAGE, "no room for a topic");
	other[0] = '\0';
	tc.topic = topic;
	tc.known = 0;
	tc.other = other;
	tc.otherlen = otherlen;
	if (mdm_state_path(st, "push", dir, sizeof(dir), e) == -1 ||
	    mdm_file_foreach(dir, ".pem", find_other_topic, &tc, e) == -1)
		return -1;
	*known = tc.known;
	return 0;
}

static int
write_pem(struct mdm_state *st, const char *rel, X509 *cert, EVP_PKEY *key,
    struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (cert != NULL ? mdm_x509_cert_to_pem(cert, &b, e) :
	    mdm_x509_key_to_pem(key, &b, e))
		goto out;
	rc = mdm_state_write_file(st, rel, b.data, b.len,
	    cert != NULL ? 0644 : 0600, 0, e);
out:
	mdm_buf_release_secret(&b);
	return rc;
}

int
mdm_pushcert_store(struct mdm_state *st, const char *topic, X509 *cert,
    EVP_PKEY *key, struct mdm_err *e)
{
	char rel[PATH_MAX];

	if (!mdm_x509_key_matches(cert, key))
		return mdm_err_set(e, MDM_E_DATA, "the key does not belong to "
		    "the certificate");
	if (!safe_name(topic))
		return mdm_err_set(e, MDM_E_USAGE, "'%.200s' is not a topic",
		    topic);
	snprintf(rel, sizeof(rel), "push/%s.key", topic);
	if (write_pem(st, rel, NULL, key, e) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "push/%s.pem", topic);
	return write_pem(st, rel, cert, NULL, e);
}

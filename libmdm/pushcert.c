#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/objects.h>

#include "buf.h"
#include "file.h"
#include "pushcert.h"
#include "x509.h"
#include "mdm_int.h"

int
mdm_pushcert_topic_check(const char *topic, struct mdm_err *e)
{
	size_t n = strlen(topic);

	if (strncmp(topic, MDM_PUSHCERT_TOPIC_PREFIX,
	    strlen(MDM_PUSHCERT_TOPIC_PREFIX)) != 0)
		return mdm_err_set(e, MDM_E_USAGE, "'%.200s' is no push topic: "
		    "it does not start with %s", topic,
		    MDM_PUSHCERT_TOPIC_PREFIX);
	if (n > MDM_PUSHCERT_TOPIC_LEN)
		return mdm_err_set(e, MDM_E_USAGE, "'%.40s...' is no push "
		    "topic: it is longer than %d bytes", topic,
		    MDM_PUSHCERT_TOPIC_LEN);
	/* The prefix rules out "", "." and ".." already. */
	if (strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_") != n)
		return mdm_err_set(e, MDM_E_USAGE, "'%.200s' is no push topic: "
		    "it may hold only letters, digits, '.', '-' and '_'",
		    topic);
	return 0;
}

int
mdm_pushcert_topic(X509 *cert, char *topic, size_t topiclen,
    struct mdm_err *e)
{
	struct mdm_err le = { 0 };

	if (mdm_x509_subject_attr(cert, NID_userId, topic, topiclen,
	    &le) == -1) {
		if (le.code == MDM_E_NOINPUT)
			return mdm_err_set(e, MDM_E_DATA, "the subject has no "
			    "UID (topic): not an APNs MDM push certificate");
		return mdm_err_set(e, MDM_E_DATA, "the subject UID (topic): "
		    "%s", le.msg);
	}
	if (mdm_pushcert_topic_check(topic, e) == -1) {
		/* From a certificate, a bad topic is bad data, not usage. */
		if (e != NULL)
			e->code = MDM_E_DATA;
		return -1;
	}
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

struct each_topic {
	int (*fn)(const char *, void *, struct mdm_err *);
	void *arg;
};

static int
each_topic(const char *dir, const char *name, void *arg, struct mdm_err *e)
{
	struct each_topic *et = arg;
	char topic[MDM_PUSHCERT_TOPIC_MAX];
	size_t n = strlen(name) - strlen(".pem");

	(void)dir;
	if (n >= sizeof(topic))
		return 0;
	memcpy(topic, name, n);
	topic[n] = '\0';
	if (mdm_pushcert_topic_check(topic, NULL) == -1)
		return 0;
	return et->fn(topic, et->arg, e);
}

int
mdm_pushcert_foreach(struct mdm_state *st,
    int (*fn)(const char *topic, void *arg, struct mdm_err *e), void *arg,
    struct mdm_err *e)
{
	struct each_topic et;
	char dir[PATH_MAX];

	et.fn = fn;
	et.arg = arg;
	if (mdm_state_path(st, "push", dir, sizeof(dir), e) == -1)
		return -1;
	return mdm_file_foreach(dir, ".pem", each_topic, &et, e);
}

int
mdm_pushcert_load(struct mdm_state *st, const char *topic, X509 **out,
    struct mdm_err *e)
{
	char rel[MDM_PUSHCERT_TOPIC_MAX + 16], path[PATH_MAX];

	*out = NULL;
	if (mdm_pushcert_topic_check(topic, e) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "push/%s.pem", topic);
	if (mdm_state_path(st, rel, path, sizeof(path), e) == -1)
		return -1;
	return mdm_x509_load_cert(path, out, e);
}

struct other_topic {
	const char *topic;
	int known;
	char *other;
	size_t otherlen;
};

static int
other_topic(const char *topic, void *arg, struct mdm_err *e)
{
	struct other_topic *ot = arg;

	(void)e;
	if (strcmp(topic, ot->topic) == 0)
		ot->known = 1;
	else if (ot->other[0] == '\0')
		snprintf(ot->other, ot->otherlen, "%s", topic);
	return 0;
}

int
mdm_pushcert_other_topic(struct mdm_state *st, const char *topic,
    int *known, char *other, size_t otherlen, struct mdm_err *e)
{
	struct other_topic ot;

	if (otherlen < MDM_PUSHCERT_TOPIC_MAX)
		return mdm_err_set(e, MDM_E_SOFTWARE, "topic buffer too "
		    "small");
	other[0] = '\0';
	ot.topic = topic;
	ot.known = 0;
	ot.other = other;
	ot.otherlen = otherlen;
	if (mdm_pushcert_foreach(st, other_topic, &ot, e) == -1)
		return -1;
	*known = ot.known;
	return 0;
}

int
mdm_pushcert_store(struct mdm_state *st, const char *topic, X509 *cert,
    EVP_PKEY *key, struct mdm_err *e)
{
	char rel[PATH_MAX];

	if (!mdm_x509_key_matches(cert, key))
		return mdm_err_set(e, MDM_E_DATA, "the key does not belong to "
		    "the certificate");
	if (mdm_pushcert_topic_check(topic, e) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "push/%s.key", topic);
	if (mdm_state_write_pem(st, rel, NULL, key, 0, e) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "push/%s.pem", topic);
	return mdm_state_write_pem(st, rel, cert, NULL, 0, e);
}

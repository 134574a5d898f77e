#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "buf.h"
#include "cms.h"
#include "enroll.h"
#include "file.h"
#include "plist.h"
#include "pushcert.h"
#include "queue.h"
#include "scep.h"
#include "state.h"
#include "x509.h"
#include "mdm_int.h"

/* "https://" + host + the longest path we add, with room to spare. */
#define URL_BUF		(MDM_ENROLL_URL_MAX + 32)
#define SIGNING_STEM	"signing/signing"
#define INIT_HINT	"run 'mdm-certs init' first"
#define ID_MAX		(MDM_ENROLL_URL_MAX + 16)

/* The host part of a URL check_url accepted. */
static const char *
url_host(const char *url)
{
	return strstr(url, "://") + 3;
}

static int
check_url(const char *what, const char *url, int https_only,
    struct mdm_err *e)
{
	const char *host;

	if (url == NULL || *url == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "the %s is required", what);
	if (strlen(url) > MDM_ENROLL_URL_MAX)
		return mdm_err_set(e, MDM_E_USAGE, "the %s is longer than %d "
		    "bytes", what, MDM_ENROLL_URL_MAX);
	if (strncmp(url, "https://", 8) != 0 &&
	    (https_only || strncmp(url, "http://", 7) != 0))
		return mdm_err_set(e, MDM_E_USAGE, "the %s '%s' does not start "
		    "with %s", what, url, https_only ? "https://" :
		    "http:// or https://");
	if (strpbrk(url, " ?#") != NULL || !mdm_queue_printable(url))
		return mdm_err_set(e, MDM_E_USAGE, "the %s '%s' holds a space, "
		    "a control character, a query or a fragment", what, url);
	host = url_host(url);
	if (*host == '\0' || *host == '/' || *host == ':')
		return mdm_err_set(e, MDM_E_USAGE, "the %s '%s' has no host",
		    what, url);
	return 0;
}

int
mdm_enroll_config_check(const struct mdm_enroll_config *cfg,
    struct mdm_err *e)
{
	size_t n;

	if (check_url("server URL", cfg->base_url, !cfg->allow_http, e) == -1)
		return -1;
	if (cfg->scep_url != NULL &&
	    check_url("SCEP URL", cfg->scep_url, 0, e) == -1)
		return -1;
	if (cfg->challenge != NULL) {
		n = strlen(cfg->challenge);
		if (n == 0 || n > MDM_ENROLL_CHALLENGE_MAX ||
		    !mdm_queue_printable(cfg->challenge))
			return mdm_err_set(e, MDM_E_USAGE, "the SCEP challenge "
			    "must be 1 to %d bytes of printable text",
			    MDM_ENROLL_CHALLENGE_MAX);
	}
	if (cfg->challenge_ttl < 0)
		return mdm_err_set(e, MDM_E_USAGE, "the challenge lifetime "
		    "is negative");
	if (cfg->organization != NULL) {
		n = strlen(cfg->organization);
		if (n == 0 || n > MDM_ENROLL_ORG_MAX ||
		    !mdm_queue_printable(cfg->organization))
			return mdm_err_set(e, MDM_E_USAGE, "the organization "
			    "must be 1 to %d bytes of printable text",
			    MDM_ENROLL_ORG_MAX);
	}
	if (cfg->topic != NULL &&
	    mdm_pushcert_topic_check(cfg->topic, e) == -1)
		return -1;
	return 0;
}

struct topics {
	size_t n;
	char first[MDM_PUSHCERT_TOPIC_MAX];
	char second[MDM_PUSHCERT_TOPIC_MAX];
};

static int
count_topic(const char *topic, void *arg, struct mdm_err *e)
{
	struct topics *t = arg;

	(void)e;
	if (t->n == 0)
		snprintf(t->first, sizeof(t->first), "%s", topic);
	else if (t->n == 1)
		snprintf(t->second, sizeof(t->second), "%s", topic);
	t->n++;
	return 0;
}

int
mdm_enroll_topic(struct mdm_state *st, const char *want, char *out,
    size_t outlen, struct mdm_err *e)
{
	struct topics t;
	char path[PATH_MAX], rel[MDM_PUSHCERT_TOPIC_MAX + 16];
	const char *topic;

	memset(&t, 0, sizeof(t));
	if (want != NULL) {
		if (mdm_pushcert_topic_check(want, e) == -1)
			return -1;
		snprintf(rel, sizeof(rel), "push/%s.pem", want);
		if (mdm_state_path(st, rel, path, sizeof(path), e) == -1)
			return -1;
		if (!mdm_file_exists(path))
			return mdm_err_set(e, MDM_E_CONFIG, "no push certificate "
			    "for topic %s (%s): import it with 'mdm-certs "
			    "push-import'", want, path);
		topic = want;
	} else {
		if (mdm_state_path(st, "push", path, sizeof(path), e) == -1 ||
		    mdm_pushcert_foreach(st, count_topic, &t, e) == -1)
			return -1;
		if (t.n == 0)
			return mdm_err_set(e, MDM_E_CONFIG, "no push certificate "
			    "in %s: get one with 'mdm-certs push-csr' and "
			    "'mdm-certs push-import'", path);
		if (t.n > 1)
			return mdm_err_set(e, MDM_E_CONFIG, "%zu push "
			    "certificates in %s (%s, %s%s): choose the topic "
			    "with --topic", t.n, path, t.first, t.second,
			    t.n > 2 ? ", ..." : "");
		topic = t.first;
	}
	if (strlen(topic) >= outlen)
		return mdm_err_set(e, MDM_E_SOFTWARE, "topic buffer too small");
	memcpy(out, topic, strlen(topic) + 1);
	return 0;
}

/*
 * The PayloadIdentifier prefix: the server's host name reversed
 * ("mdm.example.org" gives "org.example.mdm.enroll"), the same for every
 * build against one server, so a newer profile replaces an older one.
 */
static void
identifier(const char *base_url, char out[ID_MAX])
{
	const char *host = url_host(base_url), *end, *dot, *c;
	size_t used = 0;

	/* No longer than the host, which check_url capped. */
	end = host + strspn(host, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
	while (end > host) {
		for (dot = end; dot > host && dot[-1] != '.'; dot--)
			;
		if (dot < end) {
			if (used > 0)
				out[used++] = '.';
			for (c = dot; c < end; c++)
				out[used++] = (char)tolower((unsigned char)*c);
		}
		end = dot > host ? dot - 1 : host;
	}
	snprintf(out + used, ID_MAX - used, "%s.enroll", used > 0 ? "" :
	    "mdm");
}

/* Profiles conventionally carry uppercase UUIDs. */
static int
new_uuid(char out[37], struct mdm_err *e)
{
	char *p;

	if (mdm_queue_uuid_new(out, e) == -1)
		return -1;
	for (p = out; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	return 0;
}

/* Takes node; -1 (node freed) when there is none or dict is not a dict. */
static int
put(plist_t dict, const char *key, plist_t node)
{
	if (node == NULL)
		return -1;
	if (plist_get_node_type(dict) != PLIST_DICT) {
		plist_free(node);
		return -1;
	}
	plist_dict_set_item(dict, key, node);
	return 0;
}

static int
append(plist_t array, plist_t node)
{
	if (node == NULL)
		return -1;
	if (plist_get_node_type(array) != PLIST_ARRAY) {
		plist_free(node);
		return -1;
	}
	plist_array_append_item(array, node);
	return 0;
}

/* The keys every payload has. */
static plist_t
payload_new(const char *type, const char *id_prefix, const char *id_suffix,
    const char *uuid, const char *display)
{
	char id[ID_MAX + 16];
	plist_t p;

	snprintf(id, sizeof(id), "%s%s", id_prefix, id_suffix);
	if ((p = plist_new_dict()) == NULL)
		return NULL;
	if (mdm_plist_set_string(p, "PayloadType", type) == -1 ||
	    mdm_plist_set_int(p, "PayloadVersion", 1) == -1 ||
	    mdm_plist_set_string(p, "PayloadIdentifier", id) == -1 ||
	    mdm_plist_set_string(p, "PayloadUUID", uuid) == -1 ||
	    mdm_plist_set_string(p, "PayloadDisplayName", display) == -1) {
		plist_free(p);
		return NULL;
	}
	return p;
}

/* One RDN of a SCEP Subject: [[type, value]]. */
static plist_t
rdn(const char *type, const char *value)
{
	plist_t set, pair;

	if ((set = plist_new_array()) == NULL)
		return NULL;
	if ((pair = plist_new_array()) == NULL || append(set, pair) == -1 ||
	    append(pair, plist_new_string(type)) == -1 ||
	    append(pair, plist_new_string(value)) == -1) {
		plist_free(set);
		return NULL;
	}
	return set;
}

struct parts {
	const struct mdm_enroll_config *cfg;
	const char *id;			/* PayloadIdentifier prefix */
	const char *topic;
	const char *challenge;
	const char *scep_url, *server_url, *checkin_url;
	const unsigned char *ca_der;
	size_t ca_der_len;
	char ca_name[128];
	char uuid[4][37];		/* profile, CA, SCEP, MDM */
	char cn[37];			/* the device's SCEP subject */
};

static plist_t
ca_payload(const struct parts *pt)
{
	plist_t p;

	if ((p = payload_new("com.apple.security.root", pt->id, ".ca",
	    pt->uuid[1], pt->ca_name)) == NULL)
		return NULL;
	if (mdm_plist_set_data(p, "PayloadContent", pt->ca_der,
	    pt->ca_der_len) == -1 ||
	    mdm_plist_set_string(p, "PayloadCertificateFileName",
	    "ca.cer") == -1) {
		plist_free(p);
		return NULL;
	}
	return p;
}

static plist_t
scep_payload(const struct parts *pt)
{
	const char *org = pt->cfg->organization;
	plist_t p, c = NULL, subject = NULL;

	if ((p = payload_new("com.apple.security.scep", pt->id, ".scep",
	    pt->uuid[2], "Device identity")) == NULL)
		return NULL;
	if ((c = plist_new_dict()) == NULL || put(p, "PayloadContent", c) ==
	    -1)
		goto fail;
	if ((subject = plist_new_array()) == NULL ||
	    put(c, "Subject", subject) == -1 ||
	    (org != NULL && append(subject, rdn("O", org)) == -1) ||
	    append(subject, rdn("CN", pt->cn)) == -1)
		goto fail;
	if (mdm_plist_set_string(c, "URL", pt->scep_url) == -1 ||
	    mdm_plist_set_string(c, "Challenge", pt->challenge) == -1 ||
	    mdm_plist_set_int(c, "Keysize", 2048) == -1 ||
	    mdm_plist_set_string(c, "Key Type", "RSA") == -1 ||
	    mdm_plist_set_int(c, "Key Usage", 5) == -1)
		goto fail;
	return p;
fail:
	plist_free(p);
	return NULL;
}

static plist_t
mdm_payload(const struct parts *pt)
{
	plist_t p, caps = NULL;

	if ((p = payload_new("com.apple.mdm", pt->id, ".mdm", pt->uuid[3],
	    "Device management")) == NULL)
		return NULL;
	if (mdm_plist_set_string(p, "ServerURL", pt->server_url) == -1 ||
	    mdm_plist_set_string(p, "CheckInURL", pt->checkin_url) == -1 ||
	    mdm_plist_set_string(p, "Topic", pt->topic) == -1 ||
	    mdm_plist_set_string(p, "IdentityCertificateUUID",
	    pt->uuid[2]) == -1 ||
	    mdm_plist_set_bool(p, "SignMessage",
	    !pt->cfg->no_sign_message) == -1 ||
	    mdm_plist_set_int(p, "AccessRights", 8191) == -1 ||
	    mdm_plist_set_bool(p, "CheckOutWhenRemoved", 1) == -1)
		goto fail;
	/* per-user-connections cannot be added by a later update. */
	if ((caps = plist_new_array()) == NULL ||
	    put(p, "ServerCapabilities", caps) == -1 ||
	    append(caps, plist_new_string(
	    "com.apple.mdm.per-user-connections")) == -1 ||
	    append(caps, plist_new_string("com.apple.mdm.bootstraptoken")) ==
	    -1)
		goto fail;
	return p;
fail:
	plist_free(p);
	return NULL;
}

static plist_t
profile_tree(const struct parts *pt)
{
	const char *org = pt->cfg->organization;
	char display[MDM_ENROLL_ORG_MAX + 32];
	plist_t top, content = NULL;

	snprintf(display, sizeof(display), "%s%sMDM enrollment",
	    org != NULL ? org : "", org != NULL ? " " : "");
	if ((top = plist_new_dict()) == NULL)
		return NULL;
	if (mdm_plist_set_string(top, "PayloadType", "Configuration") == -1 ||
	    mdm_plist_set_int(top, "PayloadVersion", 1) == -1 ||
	    mdm_plist_set_string(top, "PayloadIdentifier", pt->id) == -1 ||
	    mdm_plist_set_string(top, "PayloadUUID", pt->uuid[0]) == -1 ||
	    mdm_plist_set_string(top, "PayloadDisplayName", display) == -1 ||
	    mdm_plist_set_string(top, "PayloadDescription", "Enrolls this "
	    "device in device management") == -1 ||
	    (org != NULL && mdm_plist_set_string(top, "PayloadOrganization",
	    org) == -1))
		goto fail;
	if ((content = plist_new_array()) == NULL ||
	    put(top, "PayloadContent", content) == -1 ||
	    append(content, ca_payload(pt)) == -1 ||
	    append(content, scep_payload(pt)) == -1 ||
	    append(content, mdm_payload(pt)) == -1)
		goto fail;
	return top;
fail:
	plist_free(top);
	return NULL;
}

int
mdm_enroll_profile(struct mdm_state *st, const struct mdm_enroll_config *cfg,
    struct mdm_buf *out, struct mdm_err *e)
{
	struct parts pt;
	struct mdm_buf ca_der, xml, cms;
	char topic[MDM_PUSHCERT_TOPIC_MAX], id[ID_MAX];
	char scep[URL_BUF], server[URL_BUF], checkin[URL_BUF];
	char minted[64];
	X509 *ca = NULL, *signer = NULL;
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *chain = NULL;
	plist_t tree = NULL;
	size_t n, i;
	int rc = -1;

	memset(&pt, 0, sizeof(pt));
	mdm_buf_init(&ca_der, MDM_CAP_CERT);
	/* The XML holds the challenge until the device has it. */
	mdm_buf_init_secret(&xml, MDM_CAP_PLIST);
	mdm_buf_init(&cms, out->cap);
	minted[0] = '\0';

	if (mdm_enroll_config_check(cfg, e) == -1 ||
	    mdm_enroll_topic(st, cfg->topic, topic, sizeof(topic), e) == -1)
		goto out;
	n = strlen(cfg->base_url);
	while (n > 0 && cfg->base_url[n - 1] == '/')
		n--;
	snprintf(server, sizeof(server), "%.*s/mdm/connect", (int)n,
	    cfg->base_url);
	snprintf(checkin, sizeof(checkin), "%.*s/mdm/checkin", (int)n,
	    cfg->base_url);
	if (cfg->scep_url != NULL)
		snprintf(scep, sizeof(scep), "%s", cfg->scep_url);
	else
		snprintf(scep, sizeof(scep), "%.*s/scep", (int)n,
		    cfg->base_url);
	identifier(cfg->base_url, id);

	if (cfg->ca != NULL && X509_up_ref(cfg->ca))
		ca = cfg->ca;
	else if (mdm_state_ca_cert(st, &ca, e) == -1)
		goto out;
	if (mdm_x509_cert_to_der(ca, &ca_der, e) == -1)
		goto out;
	if (mdm_x509_subject_attr(ca, NID_commonName, pt.ca_name,
	    sizeof(pt.ca_name), NULL) == -1)
		snprintf(pt.ca_name, sizeof(pt.ca_name), "MDM certificate "
		    "authority");
	if (!cfg->unsigned_profile && cfg->signer != NULL &&
	    cfg->signer_key != NULL && X509_up_ref(cfg->signer)) {
		signer = cfg->signer;
		if (!EVP_PKEY_up_ref(cfg->signer_key)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "EVP_PKEY_up_ref");
			goto out;
		}
		key = cfg->signer_key;
	} else if (!cfg->unsigned_profile && mdm_state_identity(st,
	    SIGNING_STEM, INIT_HINT, &signer, &key, e) == -1)
		goto out;
	for (i = 0; i < MDM_ARRAY_LEN(pt.uuid); i++)
		if (new_uuid(pt.uuid[i], e) == -1)
			goto out;
	if (new_uuid(pt.cn, e) == -1)
		goto out;
	/* Minted last: nothing after it fails for want of a file. */
	if (cfg->challenge == NULL && mdm_scep_challenge_new(st,
	    cfg->challenge_ttl > 0 ? cfg->challenge_ttl :
	    MDM_ENROLL_CHALLENGE_TTL, minted, sizeof(minted), e) == -1)
		goto out;

	pt.cfg = cfg;
	pt.id = id;
	pt.topic = topic;
	pt.challenge = cfg->challenge != NULL ? cfg->challenge : minted;
	pt.scep_url = scep;
	pt.server_url = server;
	pt.checkin_url = checkin;
	pt.ca_der = ca_der.data;
	pt.ca_der_len = ca_der.len;
	if ((tree = profile_tree(&pt)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory building the "
		    "enrollment profile");
		goto out;
	}
	if (mdm_plist_to_xml(tree, &xml, e) == -1)
		goto out;
	if (cfg->unsigned_profile) {
		rc = mdm_buf_append(out, xml.data, xml.len, e);
		goto out;
	}
	/* The CA rides along so a device can build the chain it trusts. */
	if ((chain = sk_X509_new_null()) == NULL || !sk_X509_push(chain, ca)) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (mdm_cms_sign(xml.data, xml.len, signer, key, chain, 0, &cms,
	    e) == -1) {
		mdm_err_prefix(e, "signing the enrollment profile");
		goto out;
	}
	rc = mdm_buf_append(out, cms.data, cms.len, e);
out:
	OPENSSL_cleanse(minted, sizeof(minted));
	plist_free(tree);
	sk_X509_free(chain);
	X509_free(ca);
	X509_free(signer);
	EVP_PKEY_free(key);
	mdm_buf_release(&ca_der);
	mdm_buf_release_secret(&xml);
	mdm_buf_release(&cms);
	return rc;
}

/* The string fields of MachineInfo, where they go, and which are needed. */
static const struct {
	const char *key;
	size_t off;
	int required;
} fields[] = {
	{ "UDID", offsetof(struct mdm_enroll_machineinfo, udid), 1 },
	{ "SERIAL", offsetof(struct mdm_enroll_machineinfo, serial), 1 },
	{ "PRODUCT", offsetof(struct mdm_enroll_machineinfo, product), 0 },
	{ "VERSION", offsetof(struct mdm_enroll_machineinfo, version), 0 },
	{ "OS_VERSION", offsetof(struct mdm_enroll_machineinfo, os_version),
	    0 },
	{ "IMEI", offsetof(struct mdm_enroll_machineinfo, imei), 0 },
	{ "MEID", offsetof(struct mdm_enroll_machineinfo, meid), 0 },
	{ "LANGUAGE", offsetof(struct mdm_enroll_machineinfo, language), 0 },
	{ "SOFTWARE_UPDATE_DEVICE_ID",
	    offsetof(struct mdm_enroll_machineinfo, software_update_device_id),
	    0 },
};

static int
machineinfo_fields(plist_t dict, struct mdm_enroll_machineinfo *info,
    struct mdm_err *e)
{
	const char *s;
	plist_t node;
	size_t i;

	for (i = 0; i < MDM_ARRAY_LEN(fields); i++) {
		node = plist_dict_get_item(dict, fields[i].key);
		if (node == NULL) {
			if (fields[i].required)
				return mdm_err_set(e, MDM_E_DATA, "machine info "
				    "has no %s", fields[i].key);
			continue;
		}
		if ((s = mdm_plist_as_string(node)) == NULL)
			return mdm_err_set(e, MDM_E_DATA, "machine info %s is "
			    "a %s, not a string", fields[i].key,
			    mdm_plist_type_name(node));
		if (fields[i].required && *s == '\0')
			return mdm_err_set(e, MDM_E_DATA, "machine info %s is "
			    "empty", fields[i].key);
		if (strlen(s) >= MDM_ENROLL_FIELD_MAX ||
		    !mdm_queue_printable(s))
			return mdm_err_set(e, MDM_E_DATA, "machine info %s is "
			    "longer than %d bytes or holds control characters",
			    fields[i].key, MDM_ENROLL_FIELD_MAX - 1);
		memcpy((char *)info + fields[i].off, s, strlen(s) + 1);
	}
	node = plist_dict_get_item(dict, "MDM_CAN_REQUEST_SOFTWARE_UPDATE");
	if (node != NULL &&
	    mdm_plist_as_bool(node, &info->can_request_software_update) == -1)
		return mdm_err_set(e, MDM_E_DATA, "machine info "
		    "MDM_CAN_REQUEST_SOFTWARE_UPDATE is a %s, not a boolean",
		    mdm_plist_type_name(node));
	return 0;
}

int
mdm_enroll_machineinfo(const void *body, size_t len, X509 *apple_ca,
    struct mdm_enroll_machineinfo *info, struct mdm_err *e)
{
	struct mdm_cms_verified v;
	plist_t dict = NULL;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	memset(&v, 0, sizeof(v));
	if (len > MDM_ENROLL_MACHINEINFO_MAX) {
		mdm_err_set(e, MDM_E_TOOBIG, "machine info request of %zu "
		    "bytes is over the %u-byte limit", len,
		    MDM_ENROLL_MACHINEINFO_MAX);
		goto out;
	}
	if (mdm_cms_verify(body, len, NULL, 0, apple_ca, &v, e) == -1) {
		mdm_err_prefix(e, "machine info");
		goto out;
	}
	if (mdm_plist_parse_dict(v.content.data, v.content.len, &dict,
	    e) == -1) {
		mdm_err_prefix(e, "machine info");
		goto out;
	}
	if (machineinfo_fields(dict, info, e) == -1)
		goto out;
	if (mdm_x509_name_str(X509_get_subject_name(v.signer), info->signer,
	    sizeof(info->signer), NULL, e) == -1)
		goto out;
	info->verified = apple_ca != NULL;
	rc = 0;
out:
	if (rc == -1)
		memset(info, 0, sizeof(*info));
	plist_free(dict);
	mdm_cms_verified_release(&v);
	return rc;
}

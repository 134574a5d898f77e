#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "buf.h"
#include "cms.h"
#include "device.h"
#include "file.h"
#include "log.h"
#include "plist.h"
#include "queue.h"
#include "scep_client.h"
#include "x509.h"
#include "banned.h"

#define CT_CHECKIN	"application/x-apple-aspen-mdm-checkin"
#define CT_REPORT	"application/x-apple-aspen-mdm"
#define MAX_COMMANDS	10000	/* per session: a server that never stops */
#define MAX_PROFILES	1000	/* installed at once */

/* What the device looks like: a recent Apple silicon MacBook Air. */
#define MODEL		"Mac14,2"
#define MODEL_NAME	"MacBook Air"
#define MODEL_NUMBER	"MLY33LL/A"
#define OS_VERSION	"14.4.1"
#define BUILD_VERSION	"23E224"

/* HTTP. */

int
device_http_init(struct device_http *h, const char *server_ca,
    struct mdm_err *e)
{
	memset(h, 0, sizeof(*h));
	if ((h->curl = curl_easy_init()) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "curl_easy_init failed");
	h->server_ca = server_ca;
	h->timeout_ms = 30000;
	return 0;
}

void
device_http_release(struct device_http *h)
{
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	h->curl = NULL;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct mdm_buf *b = arg;

	/* A short count makes curl stop: the answer is over its cap. */
	if (mdm_buf_append(b, p, size * n, NULL) == -1)
		return 0;
	return size * n;
}

struct req {
	const char *method, *url, *content_type;
	const void *body;
	size_t len;
	const struct device *signer;	/* Mdm-Signature or mTLS, or NULL */
};

static int
http(struct device_http *h, const struct req *r, struct mdm_buf *resp,
    long *status, struct mdm_err *e)
{
	struct curl_slist *hdrs = NULL;
	struct mdm_buf sig, b64, line;
	char errbuf[CURL_ERROR_SIZE], path[4200];
	CURLcode cc;
	int rc = -1;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	mdm_buf_init(&b64, MDM_CAP_CMS);
	mdm_buf_init(&line, MDM_CAP_CMS);
	mdm_buf_reset(resp);
	errbuf[0] = '\0';
	curl_easy_reset(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_URL, r->url);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT,
	    "mdmclient/1.0 CFNetwork/1494.0.7 Darwin/23.4.0 (mdm-devsim)");
	if (h->server_ca != NULL)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, h->server_ca);
	if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, r->method);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS,
		    r->body != NULL ? r->body : "");
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->len);
	}
	if (r->content_type != NULL) {
		if (mdm_buf_printf(&line, e, "Content-Type: %s",
		    r->content_type) == -1 ||
		    (hdrs = curl_slist_append(hdrs, (char *)line.data)) ==
		    NULL)
			goto oom;
	}
	/* curl adds "Expect: 100-continue" to big bodies; devices do not. */
	if ((hdrs = curl_slist_append(hdrs, "Expect:")) == NULL)
		goto oom;
	if (r->signer != NULL && r->signer->mtls) {
		snprintf(path, sizeof(path), "%s/cert.pem", r->signer->dir);
		curl_easy_setopt(h->curl, CURLOPT_SSLCERT, path);
		snprintf(path, sizeof(path), "%s/key.pem", r->signer->dir);
		curl_easy_setopt(h->curl, CURLOPT_SSLKEY, path);
	} else if (r->signer != NULL && r->signer->sign_message) {
		mdm_buf_reset(&line);
		if (mdm_cms_sign(r->body, r->len, r->signer->cert,
		    r->signer->key, NULL, MDM_CMS_DETACHED, &sig, e) == -1 ||
		    mdm_base64_encode(sig.data, sig.len, &b64, e) == -1 ||
		    mdm_buf_printf(&line, e, "Mdm-Signature: %s",
		    (char *)b64.data) == -1)
			goto out;
		if ((hdrs = curl_slist_append(hdrs, (char *)line.data)) ==
		    NULL)
			goto oom;
	}
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	if ((cc = curl_easy_perform(h->curl)) != CURLE_OK) {
		if (cc == CURLE_WRITE_ERROR)
			mdm_err_set(e, MDM_E_TOOBIG, "%s %s: answer over %zu "
			    "bytes", r->method, r->url, resp->cap);
		else
			mdm_err_set(e, MDM_E_UNAVAILABLE, "%s %s: %s",
			    r->method, r->url, errbuf[0] != '\0' ? errbuf :
			    curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
	rc = 0;
	goto out;
oom:
	mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
out:
	curl_slist_free_all(hdrs);
	mdm_buf_release(&sig);
	mdm_buf_release(&b64);
	mdm_buf_release(&line);
	return rc;
}

/* http, and anything but 200 is an error naming what. */
static int
http_ok(struct device_http *h, const struct req *r, const char *what,
    struct mdm_buf *resp, struct mdm_err *e)
{
	long status = 0;

	if (http(h, r, resp, &status, e) == -1) {
		mdm_err_prefix(e, "%s", what);
		return -1;
	}
	if (status != 200)
		return mdm_err_set(e, status == 429 || status >= 500 ?
		    MDM_E_TEMPFAIL : MDM_E_UNAVAILABLE, "%s: HTTP %ld",
		    what, status);
	return 0;
}

/* Randomness. */

static double
chance(void)
{
	uint32_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		return 1.0;
	return (double)v / 4294967296.0;
}

static void
random_chars(char *out, size_t n, const char *alphabet)
{
	unsigned char r[64];
	size_t i, k = strlen(alphabet);

	if (n > sizeof(r) || RAND_bytes(r, (int)n) != 1)
		memset(r, 0, sizeof(r));
	for (i = 0; i < n; i++)
		out[i] = alphabet[r[i] % k];
	out[n] = '\0';
}

static void
upper(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)toupper((unsigned char)*s);
}

/* Storage. */

void
device_release(struct device *d)
{
	X509_free(d->cert);
	EVP_PKEY_free(d->key);
	if (d->profiles != NULL)
		plist_free(d->profiles);
	OPENSSL_cleanse(d, sizeof(*d));
}

static int
save(const struct device *d, struct mdm_err *e)
{
	plist_t p = plist_new_dict();
	struct mdm_buf xml;
	char path[4200];
	int rc = -1;

	mdm_buf_init(&xml, MDM_CAP_PLIST);
	if (p == NULL ||
	    mdm_plist_set_string(p, "UDID", d->udid) == -1 ||
	    mdm_plist_set_string(p, "SerialNumber", d->serial) == -1 ||
	    mdm_plist_set_string(p, "DeviceName", d->name) == -1 ||
	    mdm_plist_set_string(p, "ServerURL", d->server_url) == -1 ||
	    mdm_plist_set_string(p, "CheckInURL", d->checkin_url) == -1 ||
	    mdm_plist_set_string(p, "Topic", d->topic) == -1 ||
	    mdm_plist_set_string(p, "PushMagic", d->magic) == -1 ||
	    mdm_plist_set_data(p, "Token", d->token, sizeof(d->token)) == -1 ||
	    mdm_plist_set_bool(p, "SignMessage", d->sign_message) == -1 ||
	    mdm_plist_set_bool(p, "MutualTLS", d->mtls) == -1) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	plist_dict_set_item(p, "InstalledProfiles", plist_copy(d->profiles));
	snprintf(path, sizeof(path), "%s/device.plist", d->dir);
	if (mdm_plist_to_xml(p, &xml, e) == -1 ||
	    mdm_file_write_atomic(path, xml.data, xml.len, 0600, 0, e) == -1)
		goto out;
	rc = 0;
out:
	if (p != NULL)
		plist_free(p);
	mdm_buf_release(&xml);
	return rc;
}

static int
copy_str(plist_t p, const char *key, char *out, size_t outlen,
    struct mdm_err *e)
{
	const char *s = mdm_plist_get_string(p, key);

	if (s == NULL || strlen(s) >= outlen)
		return mdm_err_set(e, MDM_E_DATA, "device.plist: no valid %s",
		    key);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int
device_load(const char *dir, const char *udid, struct device *d,
    struct mdm_err *e)
{
	struct mdm_buf b;
	const unsigned char *tok;
	char path[4200];
	plist_t p = NULL, arr;
	size_t n;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (strchr(udid, '/') != NULL || strcmp(udid, ".") == 0 ||
	    strcmp(udid, "..") == 0 || *udid == '\0') {
		mdm_err_set(e, MDM_E_USAGE, "not a device UDID: %s", udid);
		goto out;
	}
	snprintf(d->dir, sizeof(d->dir), "%s/%s", dir, udid);
	snprintf(path, sizeof(path), "%s/device.plist", d->dir);
	if (mdm_plist_parse_file(path, &p, e) == -1)
		goto out;
	if (copy_str(p, "UDID", d->udid, sizeof(d->udid), e) == -1 ||
	    copy_str(p, "SerialNumber", d->serial, sizeof(d->serial),
	    e) == -1 ||
	    copy_str(p, "DeviceName", d->name, sizeof(d->name), e) == -1 ||
	    copy_str(p, "ServerURL", d->server_url, sizeof(d->server_url),
	    e) == -1 ||
	    copy_str(p, "CheckInURL", d->checkin_url, sizeof(d->checkin_url),
	    e) == -1 ||
	    copy_str(p, "Topic", d->topic, sizeof(d->topic), e) == -1 ||
	    copy_str(p, "PushMagic", d->magic, sizeof(d->magic), e) == -1)
		goto out;
	if ((tok = mdm_plist_get_data(p, "Token", &n)) == NULL ||
	    n != sizeof(d->token)) {
		mdm_err_set(e, MDM_E_DATA, "%s: no valid Token", path);
		goto out;
	}
	memcpy(d->token, tok, n);
	if (mdm_plist_get_bool(p, "SignMessage", &d->sign_message) == -1)
		d->sign_message = 1;
	if (mdm_plist_get_bool(p, "MutualTLS", &d->mtls) == -1)
		d->mtls = 0;
	arr = mdm_plist_get_array(p, "InstalledProfiles");
	d->profiles = arr != NULL ? plist_copy(arr) : plist_new_array();
	snprintf(path, sizeof(path), "%s/cert.pem", d->dir);
	if (mdm_x509_load_cert(path, &d->cert, e) == -1)
		goto out;
	snprintf(path, sizeof(path), "%s/key.pem", d->dir);
	if (mdm_file_read_private(path, &b, e) == -1 ||
	    mdm_x509_key_from_mem(b.data, b.len, NULL, &d->key, e) == -1) {
		mdm_err_prefix(e, "%s", path);
		goto out;
	}
	rc = 0;
out:
	if (p != NULL)
		plist_free(p);
	mdm_buf_release_secret(&b);
	if (rc == -1)
		device_release(d);
	return rc;
}

/* Profiles. */

/* A profile's plist dict, out of its CMS signature if it has one. */
static int
unwrap_profile(const void *data, size_t len, X509 *trust, int need_signed,
    plist_t *out, struct mdm_err *e)
{
	struct mdm_cms_verified v;
	const unsigned char *p = data;
	int rc;

	memset(&v, 0, sizeof(v));
	*out = NULL;
	/* A plist starts with '<', a BOM or "bplist"; DER with 0x30. */
	if (len > 0 && p[0] == 0x30) {
		if (mdm_cms_verify(data, len, NULL, 0, trust, &v, e) == -1)
			return -1;
		rc = mdm_plist_parse_dict(v.content.data, v.content.len, out,
		    e);
		mdm_cms_verified_release(&v);
		return rc;
	}
	if (need_signed)
		return mdm_err_set(e, MDM_E_CRYPTO, "profile is not signed");
	return mdm_plist_parse_dict(data, len, out, e);
}

/* The ProfileList entry of an installed profile. */
static plist_t
profile_entry(plist_t prof)
{
	static const char *const keys[] = { "PayloadIdentifier",
	    "PayloadUUID", "PayloadDisplayName", "PayloadOrganization",
	    "PayloadDescription" };
	static const char *const pkeys[] = { "PayloadIdentifier",
	    "PayloadType", "PayloadUUID", "PayloadDisplayName" };
	plist_t ent = plist_new_dict(), content, arr = plist_new_array(), it;
	const char *s;
	uint32_t i;
	size_t k;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if ((s = mdm_plist_get_string(prof, keys[k])) != NULL)
			mdm_plist_set_string(ent, keys[k], s);
	mdm_plist_set_int(ent, "PayloadVersion", 1);
	mdm_plist_set_bool(ent, "IsManaged", 1);
	mdm_plist_set_bool(ent, "IsEncrypted", 0);
	mdm_plist_set_bool(ent, "HasRemovalPasscode", 0);
	mdm_plist_set_bool(ent, "PayloadRemovalDisallowed", 0);
	if ((content = mdm_plist_get_array(prof, "PayloadContent")) != NULL) {
		for (i = 0; i < plist_array_get_size(content) && i < 1000;
		    i++) {
			plist_t pd = plist_array_get_item(content, i);

			if (plist_get_node_type(pd) != PLIST_DICT)
				continue;
			it = plist_new_dict();
			for (k = 0; k < sizeof(pkeys) / sizeof(pkeys[0]); k++)
				if ((s = mdm_plist_get_string(pd, pkeys[k])) !=
				    NULL)
					mdm_plist_set_string(it, pkeys[k], s);
			mdm_plist_set_int(it, "PayloadVersion", 1);
			plist_array_append_item(arr, it);
		}
	}
	plist_dict_set_item(ent, "PayloadContent", arr);
	return ent;
}

/* Index of the installed profile with this identifier, or -1. */
static int
find_profile(const struct device *d, const char *id)
{
	uint32_t i;
	const char *s;

	for (i = 0; i < plist_array_get_size(d->profiles); i++) {
		s = mdm_plist_get_string(plist_array_get_item(d->profiles, i),
		    "PayloadIdentifier");
		if (s != NULL && strcmp(s, id) == 0)
			return (int)i;
	}
	return -1;
}

/* Installs (or replaces, by PayloadIdentifier) a parsed profile. */
static int
install_profile(struct device *d, plist_t prof, struct mdm_err *e)
{
	const char *id = mdm_plist_get_string(prof, "PayloadIdentifier");
	int i;

	if (id == NULL || mdm_plist_get_string(prof, "PayloadUUID") == NULL)
		return mdm_err_set(e, MDM_E_DATA, "profile has no "
		    "PayloadIdentifier or PayloadUUID");
	if ((i = find_profile(d, id)) >= 0)
		plist_array_remove_item(d->profiles, (uint32_t)i);
	else if (plist_array_get_size(d->profiles) >= MAX_PROFILES)
		return mdm_err_set(e, MDM_E_TOOBIG, "%d profiles installed "
		    "already", MAX_PROFILES);
	plist_array_append_item(d->profiles, profile_entry(prof));
	return 0;
}

/* Enrolment. */

static int
fetch(struct device_http *h, const char *url, size_t cap, struct mdm_buf *out,
    struct mdm_err *e)
{
	struct req r = { .method = "GET", .url = url };

	mdm_buf_init(out, cap);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) !=
	    0)
		return mdm_buf_read_file(out, url, e);
	return http_ok(h, &r, url, out, e);
}

/* The profile's Subject (array of RDNs of [type, value] pairs). */
static int
subject_of(plist_t scep, const char *fallback_cn, X509_NAME **out,
    struct mdm_err *e)
{
	plist_t subj = mdm_plist_get_array(scep, "Subject"), rdn, pair;
	X509_NAME *n = X509_NAME_new();
	const char *type, *val;
	uint32_t i, j;

	*out = NULL;
	if (n == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	for (i = 0; subj != NULL && i < plist_array_get_size(subj) && i < 64;
	    i++) {
		rdn = plist_array_get_item(subj, i);
		if (plist_get_node_type(rdn) != PLIST_ARRAY)
			goto bad;
		for (j = 0; j < plist_array_get_size(rdn) && j < 16; j++) {
			pair = plist_array_get_item(rdn, j);
			if (plist_get_node_type(pair) != PLIST_ARRAY ||
			    plist_array_get_size(pair) != 2 ||
			    (type = mdm_plist_as_string(
			    plist_array_get_item(pair, 0))) == NULL ||
			    (val = mdm_plist_as_string(
			    plist_array_get_item(pair, 1))) == NULL ||
			    !X509_NAME_add_entry_by_txt(n, type, MBSTRING_UTF8,
			    (const unsigned char *)val, -1, -1, j > 0 ? -1 : 0))
				goto bad;
		}
	}
	if (X509_NAME_entry_count(n) == 0 &&
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)fallback_cn, -1, -1, 0))
		goto bad;
	*out = n;
	return 0;
bad:
	X509_NAME_free(n);
	return mdm_err_set(e, MDM_E_DATA, "scep payload Subject is not an "
	    "array of RDNs of [type, value] pairs");
}

/* op URL for the SCEP endpoint: URL?operation=OP[&message=M]. */
static int
scep_url(struct device_http *h, const char *base, const char *op,
    const char *msg, char *out, size_t outlen, struct mdm_err *e)
{
	char *esc = NULL;
	int n;

	if (msg != NULL && (esc = curl_easy_escape(h->curl, msg, 0)) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	n = snprintf(out, outlen, "%s%soperation=%s%s%s", base,
	    strchr(base, '?') != NULL ? "&" : "?", op,
	    esc != NULL ? "&message=" : "", esc != NULL ? esc : "");
	curl_free(esc);
	if (n < 0 || (size_t)n >= outlen)
		return mdm_err_set(e, MDM_E_USAGE, "scep URL too long");
	return 0;
}

static int
scep_enroll(struct device_http *h, const struct device_scep *sp,
    EVP_PKEY *key, X509 **cert, struct mdm_err *e)
{
	struct mdm_scep_client_req cr;
	struct mdm_scep_client *c = NULL;
	struct mdm_scep_caps caps;
	struct mdm_buf b, msg, b64;
	struct req r = { .method = "GET" };
	X509 *ca = NULL, *ra = NULL;
	char *url = NULL, *esc = NULL;
	size_t ulen;
	int rc = -1;

	memset(&cr, 0, sizeof(cr));
	mdm_buf_init(&b, MDM_SCEP_CLIENT_MAX_CERTREP);
	mdm_buf_init(&msg, MDM_CAP_CMS);
	mdm_buf_init(&b64, MDM_CAP_CMS);
	ulen = strlen(sp->url) + 4 * MDM_CAP_CERT / 3 * 3 + 256;
	if ((url = malloc(ulen)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	r.url = url;
	b.cap = MDM_SCEP_CLIENT_MAX_CAPS;
	if (scep_url(h, sp->url, "GetCACaps", sp->name, url, ulen, e) == -1 ||
	    http_ok(h, &r, "GetCACaps", &b, e) == -1 ||
	    mdm_scep_client_parse_caps(b.data, b.len, &caps, e) == -1)
		goto out;
	b.cap = MDM_SCEP_CLIENT_MAX_CACERT;
	if (scep_url(h, sp->url, "GetCACert", sp->name, url, ulen, e) == -1 ||
	    http_ok(h, &r, "GetCACert", &b, e) == -1 ||
	    mdm_scep_client_parse_cacert(b.data, b.len, &ca, &ra, e) == -1)
		goto out;
	cr.ca = ca;
	cr.ra = ra;
	cr.caps = &caps;
	cr.key = key;
	cr.subject = sp->subject;
	cr.challenge = sp->challenge;
	if (mdm_scep_client_new(&cr, &msg, &c, e) == -1)
		goto out;
	b.cap = MDM_SCEP_CLIENT_MAX_CERTREP;
	if (caps.post) {
		if (scep_url(h, sp->url, "PKIOperation", NULL, url, ulen,
		    e) == -1)
			goto out;
		r.method = "POST";
		r.content_type = "application/x-pki-message";
		r.body = msg.data;
		r.len = msg.len;
	} else {
		if (mdm_base64_encode(msg.data, msg.len, &b64, e) == -1 ||
		    scep_url(h, sp->url, "PKIOperation", (char *)b64.data, url,
		    ulen, e) == -1)
			goto out;
	}
	if (http_ok(h, &r, "PKIOperation", &b, e) == -1 ||
	    mdm_scep_client_certrep(c, b.data, b.len, cert, NULL, e) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		mdm_err_prefix(e, "scep");
	free(url);
	curl_free(esc);
	mdm_scep_client_free(c);
	X509_free(ca);
	X509_free(ra);
	mdm_buf_release(&b);
	mdm_buf_release(&msg);
	mdm_buf_release(&b64);
	return rc;
}

/* The payload of this type in a profile, or NULL. */
static plist_t
payload_of(plist_t prof, const char *type)
{
	plist_t arr = mdm_plist_get_array(prof, "PayloadContent"), p;
	const char *t;
	uint32_t i;

	for (i = 0; arr != NULL && i < plist_array_get_size(arr); i++) {
		p = plist_array_get_item(arr, i);
		if ((t = mdm_plist_get_string(p, "PayloadType")) != NULL &&
		    strcmp(t, type) == 0)
			return p;
	}
	return NULL;
}

static int
url_copy(const char *s, char *out, const char *what, struct mdm_err *e)
{
	if (s == NULL || (strncmp(s, "http://", 7) != 0 &&
	    strncmp(s, "https://", 8) != 0) || strlen(s) >= DEVICE_URL_MAX)
		return mdm_err_set(e, MDM_E_DATA, "mdm payload: %s is not an "
		    "http(s) URL", what);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int
checkin(struct device *d, struct device_http *h, plist_t msg,
    const char *what, struct mdm_err *e)
{
	struct mdm_buf body, resp;
	struct req r = { .method = "PUT", .url = d->checkin_url,
	    .content_type = CT_CHECKIN, .signer = d };
	int rc = -1;

	mdm_buf_init(&body, MDM_CAP_PLIST);
	mdm_buf_init(&resp, DEVICE_MAX_CHECKIN);
	if (mdm_plist_to_xml(msg, &body, e) == -1)
		goto out;
	r.body = body.data;
	r.len = body.len;
	rc = http_ok(h, &r, what, &resp, e);
out:
	mdm_buf_release(&body);
	mdm_buf_release(&resp);
	return rc;
}

static int
authenticate(struct device *d, struct device_http *h, struct mdm_err *e)
{
	plist_t m = plist_new_dict();
	int rc;

	mdm_plist_set_string(m, "MessageType", "Authenticate");
	mdm_plist_set_string(m, "Topic", d->topic);
	mdm_plist_set_string(m, "UDID", d->udid);
	mdm_plist_set_string(m, "SerialNumber", d->serial);
	mdm_plist_set_string(m, "Model", MODEL);
	mdm_plist_set_string(m, "ModelName", MODEL_NAME);
	mdm_plist_set_string(m, "ProductName", MODEL);
	mdm_plist_set_string(m, "OSVersion", OS_VERSION);
	mdm_plist_set_string(m, "BuildVersion", BUILD_VERSION);
	mdm_plist_set_string(m, "DeviceName", d->name);
	rc = checkin(d, h, m, "Authenticate", e);
	plist_free(m);
	return rc;
}

static int
token_update(struct device *d, struct device_http *h, struct mdm_err *e)
{
	plist_t m = plist_new_dict();
	int rc;

	mdm_plist_set_string(m, "MessageType", "TokenUpdate");
	mdm_plist_set_string(m, "Topic", d->topic);
	mdm_plist_set_string(m, "UDID", d->udid);
	mdm_plist_set_data(m, "Token", d->token, sizeof(d->token));
	mdm_plist_set_string(m, "PushMagic", d->magic);
	mdm_plist_set_bool(m, "AwaitingConfiguration", 0);
	rc = checkin(d, h, m, "TokenUpdate", e);
	plist_free(m);
	return rc;
}

/* Reads the profile into d's URLs and sp. */
static int
read_profile(const struct device_enroll_opts *o, plist_t prof,
    struct device *d, struct device_scep *sp, struct mdm_err *e)
{
	plist_t scep, mdm, sc;
	const char *s;
	int64_t bits = 0;

	if ((scep = payload_of(prof, "com.apple.security.scep")) == NULL ||
	    (sc = mdm_plist_get_dict(scep, "PayloadContent")) == NULL)
		return mdm_err_set(e, MDM_E_DATA, "profile has no "
		    "com.apple.security.scep payload with a PayloadContent "
		    "dict");
	if ((mdm = payload_of(prof, "com.apple.mdm")) == NULL)
		return mdm_err_set(e, MDM_E_DATA, "profile has no "
		    "com.apple.mdm payload");
	if ((sp->url = mdm_plist_get_string(sc, "URL")) == NULL)
		return mdm_err_set(e, MDM_E_DATA, "scep payload has no URL");
	sp->name = mdm_plist_get_string(sc, "Name");
	sp->challenge = o->challenge != NULL ? o->challenge :
	    mdm_plist_get_string(sc, "Challenge");
	if (mdm_plist_get_int(sc, "Keysize", &bits) == -1)
		bits = 2048;
	sp->bits = o->key_bits > 0 ? o->key_bits : bits < 2048 ? 2048 :
	    bits > 4096 ? 4096 : (int)bits;
	s = mdm_plist_get_string(scep, "PayloadIdentifier");
	if (subject_of(sc, s != NULL ? s : "mdm-devsim", &sp->subject,
	    e) == -1)
		return -1;
	if (url_copy(mdm_plist_get_string(mdm, "ServerURL"), d->server_url,
	    "ServerURL", e) == -1)
		return -1;
	s = mdm_plist_get_string(mdm, "CheckInURL");
	if (url_copy(s != NULL ? s : d->server_url, d->checkin_url,
	    "CheckInURL", e) == -1)
		return -1;
	if ((s = mdm_plist_get_string(mdm, "Topic")) == NULL ||
	    strlen(s) >= sizeof(d->topic))
		return mdm_err_set(e, MDM_E_DATA, "mdm payload has no valid "
		    "Topic");
	memcpy(d->topic, s, strlen(s) + 1);
	if (mdm_plist_get_bool(mdm, "SignMessage", &d->sign_message) == -1)
		d->sign_message = 0;
	if (o->sign)
		d->sign_message = 1;
	d->mtls = o->mtls;
	if (!d->sign_message && !d->mtls)
		d->mtls = 1;		/* as a device: TLS is all it has left */
	if (d->mtls)
		d->sign_message = 0;
	return 0;
}

int
device_read_profile(const struct device_enroll_opts *o, const void *data,
    size_t len, struct device *d, struct device_scep *sp, plist_t *prof,
    struct mdm_err *e)
{
	if (unwrap_profile(data, len, o->profile_ca, o->profile_ca != NULL,
	    prof, e) == -1)
		return -1;
	return read_profile(o, *prof, d, sp, e);
}

static int
write_identity(struct device *d, struct mdm_err *e)
{
	struct mdm_buf pem;
	char path[4200];
	int rc = -1;

	mdm_buf_init_secret(&pem, MDM_CAP_CERT);
	if (mdm_file_mkdir_p(d->dir, 0700, e) == -1)
		goto out;
	snprintf(path, sizeof(path), "%s/key.pem", d->dir);
	if (mdm_x509_key_to_pem(d->key, &pem, e) == -1 ||
	    mdm_file_write_atomic(path, pem.data, pem.len, 0600, 0, e) == -1)
		goto out;
	mdm_buf_release_secret(&pem);
	snprintf(path, sizeof(path), "%s/cert.pem", d->dir);
	if (mdm_x509_cert_to_pem(d->cert, &pem, e) == -1 ||
	    mdm_file_write_atomic(path, pem.data, pem.len, 0644, 0, e) == -1)
		goto out;
	rc = 0;
out:
	mdm_buf_release_secret(&pem);
	return rc;
}

int
device_enroll(const struct device_enroll_opts *o, struct device_http *h,
    struct device *d, struct mdm_err *e)
{
	struct device_scep sp;
	struct mdm_buf raw;
	char uuid[37];
	plist_t prof = NULL;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	memset(&sp, 0, sizeof(sp));
	if ((d->profiles = plist_new_array()) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (fetch(h, o->url, DEVICE_MAX_PROFILE, &raw, e) == -1) {
		mdm_err_prefix(e, "profile");
		goto release;
	}
	if (device_read_profile(o, raw.data, raw.len, d, &sp, &prof,
	    e) == -1) {
		mdm_err_prefix(e, "profile %s", o->url);
		goto release;
	}
	if (mdm_queue_uuid_new(uuid, e) == -1)
		goto release;
	upper(uuid);
	snprintf(d->udid, sizeof(d->udid), "%s", uuid);
	random_chars(d->serial + 3, 9, "0123456789ABCDEFGHJKLMNPQRTUVWXYZ");
	memcpy(d->serial, "C02", 3);
	snprintf(d->name, sizeof(d->name), "devsim-%d", o->index);
	if (mdm_queue_uuid_new(uuid, e) == -1)
		goto release;
	upper(uuid);
	snprintf(d->magic, sizeof(d->magic), "%s", uuid);
	if (RAND_bytes(d->token, sizeof(d->token)) != 1) {
		mdm_err_set(e, MDM_E_SOFTWARE, "RAND_bytes failed");
		goto release;
	}
	snprintf(d->dir, sizeof(d->dir), "%s/%s", o->dir, d->udid);
	if (mdm_x509_gen_rsa(sp.bits, &d->key, e) == -1 ||
	    scep_enroll(h, &sp, d->key, &d->cert, e) == -1 ||
	    write_identity(d, e) == -1)
		goto release;
	/* The enrollment profile is the first one a device lists. */
	if (install_profile(d, prof, e) == -1 || save(d, e) == -1 ||
	    authenticate(d, h, e) == -1 || token_update(d, h, e) == -1)
		goto release;
	rc = 0;
release:
	mdm_buf_release(&raw);
out:
	if (prof != NULL)
		plist_free(prof);
	X509_NAME_free(sp.subject);
	return rc;
}

/* Commands. */

static void
error_chain(plist_t rep, int64_t code, const char *domain, const char *text)
{
	plist_t arr = plist_new_array(), it = plist_new_dict();

	mdm_plist_set_int(it, "ErrorCode", code);
	mdm_plist_set_string(it, "ErrorDomain", domain);
	mdm_plist_set_string(it, "LocalizedDescription", text);
	mdm_plist_set_string(it, "USEnglishDescription", text);
	plist_array_append_item(arr, it);
	plist_dict_set_item(rep, "ErrorChain", arr);
}

static void
set_real(plist_t d, const char *k, double v)
{
	plist_dict_set_item(d, k, plist_new_real(v));
}

/* Fills the answer to one query; 0 if the device does not know it. */
static int
query(const struct device *d, plist_t qr, const char *q)
{
	static const struct {
		const char *key, *val;
	} strs[] = {
		{ "Model", MODEL }, { "ModelName", MODEL_NAME },
		{ "ModelNumber", MODEL_NUMBER }, { "ProductName", MODEL },
		{ "OSVersion", OS_VERSION }, { "BuildVersion", BUILD_VERSION },
		{ "WiFiMAC", "f0:18:98:12:34:56" },
		{ "BluetoothMAC", "f0:18:98:12:34:57" },
		{ "EthernetMAC", "" },
	};
	static const struct {
		const char *key;
		int val;
	} bools[] = {
		{ "IsSupervised", 0 }, { "IsMultiUser", 0 },
		{ "IsActivationLockEnabled", 0 },
		{ "IsDeviceLocatorServiceEnabled", 0 },
		{ "AwaitingConfiguration", 0 },
		{ "SystemIntegrityProtectionEnabled", 1 },
		{ "IsAppleSilicon", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (strcmp(q, strs[i].key) == 0)
			return mdm_plist_set_string(qr, q, strs[i].val) == 0;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (strcmp(q, bools[i].key) == 0)
			return mdm_plist_set_bool(qr, q, bools[i].val) == 0;
	if (strcmp(q, "UDID") == 0)
		return mdm_plist_set_string(qr, q, d->udid) == 0;
	if (strcmp(q, "SerialNumber") == 0)
		return mdm_plist_set_string(qr, q, d->serial) == 0;
	if (strcmp(q, "DeviceName") == 0 || strcmp(q, "HostName") == 0 ||
	    strcmp(q, "LocalHostName") == 0)
		return mdm_plist_set_string(qr, q, d->name) == 0;
	if (strcmp(q, "PushToken") == 0)
		return mdm_plist_set_data(qr, q, d->token,
		    sizeof(d->token)) == 0;
	if (strcmp(q, "DeviceCapacity") == 0) {
		set_real(qr, q, 460.43);
		return 1;
	}
	if (strcmp(q, "AvailableDeviceCapacity") == 0) {
		set_real(qr, q, 213.87);
		return 1;
	}
	return 0;
}

static void
device_information(const struct device *d, plist_t cmd, plist_t rep)
{
	static const char *const all[] = { "UDID", "SerialNumber",
	    "DeviceName", "Model", "ModelName", "ModelNumber", "ProductName",
	    "OSVersion", "BuildVersion", "IsSupervised", "WiFiMAC",
	    "BluetoothMAC", "DeviceCapacity", "AvailableDeviceCapacity",
	    "IsAppleSilicon", "SystemIntegrityProtectionEnabled" };
	plist_t qs = mdm_plist_get_array(cmd, "Queries");
	plist_t qr = plist_new_dict();
	const char *q;
	uint32_t i;
	size_t k;

	if (qs == NULL) {
		for (k = 0; k < sizeof(all) / sizeof(all[0]); k++)
			query(d, qr, all[k]);
	} else {
		for (i = 0; i < plist_array_get_size(qs) && i < 1000; i++)
			if ((q = mdm_plist_as_string(
			    plist_array_get_item(qs, i))) != NULL)
				query(d, qr, q);
	}
	plist_dict_set_item(rep, "QueryResponses", qr);
}

static void
security_info(plist_t rep)
{
	plist_t si = plist_new_dict(), fw = plist_new_dict();

	mdm_plist_set_bool(si, "FDE_Enabled", 1);
	mdm_plist_set_bool(si, "FDE_HasPersonalRecoveryKey", 1);
	mdm_plist_set_bool(si, "FDE_HasInstitutionalRecoveryKey", 0);
	mdm_plist_set_bool(si, "SystemIntegrityProtectionEnabled", 1);
	mdm_plist_set_bool(si, "PasscodePresent", 1);
	mdm_plist_set_bool(si, "PasscodeCompliant", 1);
	mdm_plist_set_bool(si, "PasscodeCompliantWithProfiles", 1);
	mdm_plist_set_bool(si, "AuthenticatedRootVolumeEnabled", 1);
	mdm_plist_set_bool(si, "RemoteDesktopEnabled", 0);
	mdm_plist_set_bool(si, "IsRecoveryLockEnabled", 0);
	mdm_plist_set_string(si, "BootstrapTokenAllowedForAuthentication",
	    "allowed");
	mdm_plist_set_bool(fw, "FirewallEnabled", 1);
	mdm_plist_set_bool(fw, "BlockAllIncoming", 0);
	mdm_plist_set_bool(fw, "StealthMode", 0);
	plist_dict_set_item(si, "FirewallSettings", fw);
	plist_dict_set_item(rep, "SecurityInfo", si);
}

static void
app_list(plist_t rep)
{
	static const struct {
		const char *id, *name, *version, *short_version;
	} apps[] = {
		{ "com.apple.Safari", "Safari", "19618.1.15.11.14", "17.4.1" },
		{ "com.apple.dt.Xcode", "Xcode", "22618", "15.3" },
		{ "com.microsoft.Word", "Microsoft Word", "16.83.24031120",
		  "16.83" },
	};
	plist_t arr = plist_new_array(), a;
	size_t i;

	for (i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
		a = plist_new_dict();
		mdm_plist_set_string(a, "Identifier", apps[i].id);
		mdm_plist_set_string(a, "Name", apps[i].name);
		mdm_plist_set_string(a, "Version", apps[i].version);
		mdm_plist_set_string(a, "ShortVersion", apps[i].short_version);
		mdm_plist_set_int(a, "BundleSize", 104857600 * (int64_t)(i + 1));
		mdm_plist_set_bool(a, "Installing", 0);
		plist_array_append_item(arr, a);
	}
	plist_dict_set_item(rep, "InstalledApplicationList", arr);
}

static int
cert_list(const struct device *d, plist_t rep, struct mdm_err *e)
{
	plist_t arr = plist_new_array(), c = plist_new_dict();
	struct mdm_buf der;
	char cn[256];
	int rc = -1;

	mdm_buf_init(&der, MDM_CAP_CERT);
	if (mdm_x509_cert_to_der(d->cert, &der, e) == -1)
		goto out;
	if (mdm_x509_subject_attr(d->cert, NID_commonName, cn, sizeof(cn),
	    NULL) == -1)
		snprintf(cn, sizeof(cn), "%s", d->udid);
	mdm_plist_set_string(c, "CommonName", cn);
	mdm_plist_set_bool(c, "IsIdentity", 1);
	mdm_plist_set_data(c, "Data", der.data, der.len);
	plist_array_append_item(arr, c);
	c = NULL;
	plist_dict_set_item(rep, "CertificateList", arr);
	arr = NULL;
	rc = 0;
out:
	if (c != NULL)
		plist_free(c);
	if (arr != NULL)
		plist_free(arr);
	mdm_buf_release(&der);
	return rc;
}

/*
 * Runs one command: its result keys into rep; the status it ends with.
 * *changed says the device must be saved.
 */
static const char *
execute(struct device *d, const char *type, plist_t cmd, plist_t rep,
    int *changed)
{
	struct mdm_err e;
	const unsigned char *p;
	const char *id;
	plist_t prof;
	size_t n;
	int i;

	if (strcmp(type, "DeviceInformation") == 0)
		device_information(d, cmd, rep);
	else if (strcmp(type, "ProfileList") == 0)
		plist_dict_set_item(rep, "ProfileList", plist_copy(d->profiles));
	else if (strcmp(type, "SecurityInfo") == 0)
		security_info(rep);
	else if (strcmp(type, "InstalledApplicationList") == 0)
		app_list(rep);
	else if (strcmp(type, "CertificateList") == 0) {
		if (cert_list(d, rep, &e) == -1) {
			error_chain(rep, 1, "MDMClientError", e.msg);
			return "Error";
		}
	} else if (strcmp(type, "InstallProfile") == 0) {
		if ((p = mdm_plist_get_data(cmd, "Payload", &n)) == NULL ||
		    unwrap_profile(p, n, NULL, 0, &prof, &e) == -1) {
			error_chain(rep, 1000, "MCProfileErrorDomain",
			    "The profile could not be read.");
			return "Error";
		}
		i = install_profile(d, prof, &e);
		plist_free(prof);
		if (i == -1) {
			error_chain(rep, 1000, "MCProfileErrorDomain", e.msg);
			return "Error";
		}
		*changed = 1;
	} else if (strcmp(type, "RemoveProfile") == 0) {
		if ((id = mdm_plist_get_string(cmd, "Identifier")) == NULL ||
		    (i = find_profile(d, id)) < 0) {
			error_chain(rep, 12013, "MCMDMErrorDomain",
			    "The profile is not managed by MDM.");
			return "Error";
		}
		plist_array_remove_item(d->profiles, (uint32_t)i);
		*changed = 1;
	} else if (strcmp(type, "DeviceLock") != 0 &&
	    strcmp(type, "RestartDevice") != 0 &&
	    strcmp(type, "ShutDownDevice") != 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "Unknown command: %s", type);
		error_chain(rep, 12021, "MCMDMErrorDomain", msg);
		return "Error";
	}
	return "Acknowledged";
}

int
device_answer(struct device *d, const void *body, size_t len,
    const struct device_session_opts *o, plist_t *rep, int *changed,
    struct mdm_err *e)
{
	struct device_result res;
	plist_t cmd = NULL, c;
	const char *uuid, *type, *status;

	*rep = NULL;
	if (mdm_plist_parse_dict(body, len, &cmd, e) == -1) {
		mdm_err_prefix(e, "command");
		return -1;
	}
	*rep = plist_new_dict();
	uuid = mdm_plist_get_string(cmd, "CommandUUID");
	c = mdm_plist_get_dict(cmd, "Command");
	type = mdm_plist_get_string(c, "RequestType");
	if (uuid == NULL || type == NULL) {
		/* What a device does with a command it cannot read. */
		status = "CommandFormatError";
		if (uuid == NULL)
			uuid = "";
	} else if (chance() < o->notnow_rate)
		status = "NotNow";
	else if (chance() < o->error_rate) {
		error_chain(*rep, 1, "com.github.mdm.devsim",
		    "Simulated failure.");
		status = "Error";
	} else
		status = execute(d, type, c, *rep, changed);
	mdm_plist_set_string(*rep, "Status", status);
	mdm_plist_set_string(*rep, "CommandUUID", uuid);
	if (o->on_result != NULL) {
		res.uuid = uuid;
		res.request_type = type != NULL ? type : "";
		res.status = status;
		o->on_result(o->arg, d, &res);
	}
	/* rep holds copies; the command may go now. */
	plist_free(cmd);
	return 0;
}

/* PUTs a report to ServerURL; the next command (or nothing) into resp. */
static int
report(struct device *d, struct device_http *h, plist_t rep,
    struct mdm_buf *resp, struct mdm_err *e)
{
	struct mdm_buf body;
	struct req r = { .method = "PUT", .url = d->server_url,
	    .content_type = CT_REPORT, .signer = d };
	int rc = -1;

	mdm_buf_init(&body, MDM_CAP_PLIST);
	mdm_plist_set_string(rep, "UDID", d->udid);
	if (mdm_plist_to_xml(rep, &body, e) == -1)
		goto out;
	r.body = body.data;
	r.len = body.len;
	rc = http_ok(h, &r, "command report", resp, e);
out:
	mdm_buf_release(&body);
	return rc;
}

int
device_session(struct device *d, struct device_http *h,
    const struct device_session_opts *o, int *n_results, struct mdm_err *e)
{
	struct mdm_buf resp;
	plist_t rep = NULL;
	int n = 0, changed = 0, rc = -1;

	mdm_buf_init(&resp, DEVICE_MAX_COMMAND);
	rep = plist_new_dict();
	mdm_plist_set_string(rep, "Status", "Idle");
	for (;;) {
		if (report(d, h, rep, &resp, e) == -1)
			goto out;
		plist_free(rep);
		rep = NULL;
		if (resp.len == 0)
			break;
		if (n >= MAX_COMMANDS) {
			mdm_err_set(e, MDM_E_DATA, "server sent over %d commands "
			    "in one session", MAX_COMMANDS);
			goto out;
		}
		if (device_answer(d, resp.data, resp.len, o, &rep, &changed,
		    e) == -1)
			goto out;
		n++;
	}
	rc = 0;
out:
	if (changed && save(d, changed && rc == 0 ? e : NULL) == -1)
		rc = -1;
	if (rep != NULL)
		plist_free(rep);
	mdm_buf_release(&resp);
	if (n_results != NULL)
		*n_results = n;
	return rc;
}

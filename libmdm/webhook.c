#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "json.h"
#include "queue.h"
#include "version.h"
#include "webhook.h"
#include "x509.h"
#include "mdm_int.h"

#define SHA256_LEN 32

static const char *const topics[] = {
	"mdm.Authenticate", "mdm.TokenUpdate", "mdm.CheckOut",
	"mdm.UserAuthenticate", "mdm.SetBootstrapToken",
	"mdm.GetBootstrapToken", "mdm.DeclarativeManagement", "mdm.GetToken",
	"mdm.Connect",
};

static int
known_topic(const char *t)
{
	size_t i;

	for (i = 0; t != NULL && i < MDM_ARRAY_LEN(topics); i++)
		if (strcmp(t, topics[i]) == 0)
			return 1;
	return 0;
}

/* NanoMDM's names for its enrollment types (the ids object). */
static const char *
ids_type(enum mdm_queue_enroll_type t)
{
	switch (t) {
	case MDM_QUEUE_DEVICE:
		return "Device";
	case MDM_QUEUE_USER:
		return "User";
	case MDM_QUEUE_UE_DEVICE:
		return "User Enrollment (Device)";
	case MDM_QUEUE_UE:
		return "User Enrollment";
	case MDM_QUEUE_SHARED_IPAD:
		return "Shared iPad";
	}
	return NULL;
}

int64_t
mdm_webhook_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Go's RFC3339Nano: UTC, the fraction without trailing zeros, if any. */
static int
format_time(int64_t ns, char *out, size_t outlen, struct mdm_err *e)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;
	char f[16];
	int i;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: created_at out "
		    "of range");
	f[0] = '\0';
	if (frac != 0) {
		snprintf(f, sizeof(f), ".%09d", (int)frac);
		for (i = (int)strlen(f) - 1; f[i] == '0'; i--)
			f[i] = '\0';
	}
	if (strlen(out) + strlen(f) + 2 > outlen)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: created_at out "
		    "of range");
	snprintf(out + strlen(out), outlen - strlen(out), "%sZ", f);
	return 0;
}

/* Go's QueryUnescape into out (reset first); -1 on a broken escape. */
static int
unescape(const char *p, size_t n, struct mdm_buf *out, struct mdm_err *e)
{
	unsigned char c;
	size_t i;
	int hi, lo;

	mdm_buf_reset(out);
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (n - i < 3)
				return -1;
			if ((hi = mdm_hex_digit(p[i + 1])) == -1 ||
			    (lo = mdm_hex_digit(p[i + 2])) == -1)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (mdm_buf_append(out, &c, 1, e) == -1)
			return -2;
	}
	return 0;
}

/*
 * The length of the valid UTF-8 sequence at s (at most n bytes), or 0:
 * no overlong forms, surrogates or code points past U+10FFFF.
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/*
 * A JSON string of the bytes in b, each byte that does not start valid
 * UTF-8 replaced by U+FFFD as Go's encoder does.  Owned; NULL if out of
 * memory.
 */
static json_t *
string_repaired(const struct mdm_buf *b, struct mdm_buf *tmp,
    struct mdm_err *e)
{
	static const unsigned char fffd[] = { 0xef, 0xbf, 0xbd };
	size_t i = 0, k;

	mdm_buf_reset(tmp);
	while (i < b->len) {
		if ((k = utf8_seq(b->data + i, b->len - i)) == 0) {
			if (mdm_buf_append(tmp, fffd, sizeof(fffd), e) == -1)
				return NULL;
			i++;
			continue;
		}
		if (mdm_buf_append(tmp, b->data + i, k, e) == -1)
			return NULL;
		i += k;
	}
	return json_stringn(tmp->len ? (const char *)tmp->data : "",
	    tmp->len);
}

/*
 * url_params from query: *out is an owned object, or NULL when no pair
 * is left.
 */
static int
url_params(const char *query, json_t **out, struct mdm_err *e)
{
	struct mdm_buf k, v, tmp;
	const char *p = query, *amp, *eq;
	json_t *obj = NULL, *s = NULL, *ks = NULL;
	size_t n;
	int rc = -1, r1, r2;

	*out = NULL;
	mdm_buf_init(&k, MDM_CAP_JSON);
	mdm_buf_init(&v, MDM_CAP_JSON);
	mdm_buf_init(&tmp, MDM_CAP_JSON);
	if ((obj = json_object()) == NULL)
		goto nomem;
	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		if (n == 0 || memchr(p, ';', n) != NULL)
			goto next;
		eq = memchr(p, '=', n);
		r1 = unescape(p, eq ? (size_t)(eq - p) : n, &k, e);
		r2 = eq ? unescape(eq + 1, n - (size_t)(eq + 1 - p), &v, e) :
		    (mdm_buf_reset(&v), 0);
		if (r1 == -2 || r2 == -2)
			goto out;
		if (r1 == -1 || r2 == -1)
			goto next;
		if ((ks = string_repaired(&k, &tmp, e)) == NULL)
			goto nomem;
		if (json_object_get(obj, json_string_value(ks)) == NULL) {
			if ((s = string_repaired(&v, &tmp, e)) == NULL ||
			    json_object_setn_new(obj, json_string_value(ks),
			    json_string_length(ks), s) == -1) {
				s = NULL;
				goto nomem;
			}
		}
		json_decref(ks);
		ks = NULL;
next:
		p = amp ? amp + 1 : NULL;
	}
	if (json_object_size(obj) > 0) {
		*out = obj;
		obj = NULL;
	}
	rc = 0;
	goto out;
nomem:
	mdm_err_set(e, MDM_E_SOFTWARE, "webhook: out of memory");
out:
	json_decref(ks);
	json_decref(obj);
	mdm_buf_release(&k);
	mdm_buf_release(&v);
	mdm_buf_release(&tmp);
	return rc;
}

static int
check_event_id(const char *id, struct mdm_err *e)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return mdm_err_set(e, MDM_E_USAGE, "webhook: event_id "
			    "holds a character that is not printable");
	if (i == 0 || i > MDM_WEBHOOK_EVENT_ID_MAX)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: event_id must "
		    "be 1 to %d characters", MDM_WEBHOOK_EVENT_ID_MAX);
	return 0;
}

/* Sets key to a copy of s, unless s is NULL or empty (omitempty). */
static int
set_opt_str(json_t *obj, const char *key, const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	return json_object_set_new(obj, key, json_string(s));
}

int
mdm_webhook_event_json(const struct mdm_webhook_event *ev,
    struct mdm_buf *out, struct mdm_err *e)
{
	const struct mdm_queue_ident *id = ev->ident;
	json_t *root = NULL, *sub = NULL, *ids = NULL, *params = NULL;
	struct mdm_buf b64;
	char when[64], uuid[37];
	const char *event_id = ev->event_id, *type;
	int64_t ns = ev->created_at_ns;
	int connect, bad = 0, rc = -1;

	mdm_buf_init(&b64, MDM_WEBHOOK_BODY_MAX);
	if (!known_topic(ev->topic)) {
		mdm_err_set(e, MDM_E_USAGE, "webhook: unknown topic %.64s",
		    ev->topic ? ev->topic : "(none)");
		goto out;
	}
	connect = strcmp(ev->topic, "mdm.Connect") == 0;
	if (id == NULL || id->id[0] == '\0' ||
	    (type = ids_type(id->type)) == NULL) {
		mdm_err_set(e, MDM_E_USAGE, "webhook: event without an "
		    "enrollment");
		goto out;
	}
	if (ev->raw == NULL || (connect && (ev->status == NULL ||
	    *ev->status == '\0'))) {
		mdm_err_set(e, MDM_E_USAGE, "webhook: event without %s",
		    ev->raw == NULL ? "a raw payload" : "a status");
		goto out;
	}
	if (event_id == NULL) {
		if (mdm_queue_uuid_new(uuid, e) == -1)
			goto out;
		event_id = uuid;
	} else if (check_event_id(event_id, e) == -1) {
		goto out;
	}
	if (ns == 0)
		ns = mdm_webhook_now_ms() * 1000000;
	if (format_time(ns, when, sizeof(when), e) == -1)
		goto out;
	if (mdm_base64_encode(ev->raw, ev->raw_len, &b64, e) == -1)
		goto out;
	if (ev->query != NULL && url_params(ev->query, &params, e) == -1)
		goto out;

	if ((root = json_object()) == NULL || (sub = json_object()) == NULL ||
	    (ids = json_object()) == NULL)
		goto nomem;
	bad |= json_object_set_new(ids, "id", json_string(id->id));
	if (!mdm_queue_enroll_type_is_device(id->type))
		bad |= set_opt_str(ids, "parent_id", id->device_id);
	bad |= json_object_set_new(ids, "type", json_string(type));

	bad |= set_opt_str(sub, "udid", id->udid);
	bad |= set_opt_str(sub, "enrollment_id", id->enrollment_id);
	if (connect) {
		bad |= json_object_set_new(sub, "status",
		    json_string(ev->status));
		bad |= set_opt_str(sub, "command_uuid", ev->command_uuid);
	}
	if (params != NULL) {
		bad |= json_object_set_new(sub, "url_params", params);
		params = NULL;
	}
	bad |= json_object_set_new(sub, "raw_payload",
	    json_stringn(b64.len ? (const char *)b64.data : "", b64.len));
	bad |= json_object_set_new(sub, "ids", ids);
	ids = NULL;
	if (ev->token_update_tally > 0 &&
	    strcmp(ev->topic, "mdm.TokenUpdate") == 0)
		bad |= json_object_set_new(sub, "token_update_tally",
		    json_integer(ev->token_update_tally));

	bad |= json_object_set_new(root, "topic", json_string(ev->topic));
	bad |= json_object_set_new(root, "event_id", json_string(event_id));
	bad |= json_object_set_new(root, "created_at", json_string(when));
	bad |= json_object_set_new(root, connect ? "acknowledge_event" :
	    "checkin_event", sub);
	sub = NULL;
	/*
	 * json_string refuses invalid UTF-8: the ids and status come from a
	 * parsed plist and are UTF-8, so this is a caller's mistake.
	 */
	if (bad) {
		mdm_err_set(e, MDM_E_USAGE, "webhook: a field is not UTF-8 or "
		    "out of memory");
		goto out;
	}
	if (mdm_json_dump(root, out, 0, e) == -1)
		goto out;
	rc = 0;
	goto out;
nomem:
	mdm_err_set(e, MDM_E_SOFTWARE, "webhook: out of memory");
out:
	json_decref(params);
	json_decref(ids);
	json_decref(sub);
	json_decref(root);
	mdm_buf_release(&b64);
	return rc;
}

int
mdm_webhook_hmac(const void *key, size_t key_len, const void *body,
    size_t len, struct mdm_buf *b64_out, struct mdm_err *e)
{
	unsigned char mac[SHA256_LEN];
	size_t maclen = 0;
	int rc;

	if (key == NULL || key_len == 0)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: empty HMAC key");
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len,
	    body, len, mac, sizeof(mac), &maclen) == NULL ||
	    maclen != sizeof(mac))
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "webhook: HMAC");
	rc = mdm_base64_encode(mac, maclen, b64_out, e);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

int64_t
mdm_webhook_backoff_ms(int64_t attempts)
{
	int64_t d = MDM_WEBHOOK_BACKOFF_BASE_MS, j;
	uint32_t r;

	while (--attempts > 0 && d < MDM_WEBHOOK_BACKOFF_MAX_MS)
		d *= 2;
	if (d > MDM_WEBHOOK_BACKOFF_MAX_MS)
		d = MDM_WEBHOOK_BACKOFF_MAX_MS;
	j = d / 5;
	/* Without randomness the jitter is lost, not the retry. */
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		return d;
	return d - j + (int64_t)(r % (uint32_t)(2 * j + 1));
}

struct mdm_webhook_client {
	const struct mdm_webhook_config *cfg;
	CURL *curl;
	size_t got;		/* reply bytes read (and dropped) */
	int capped;		/* the reply went over MDM_WEBHOOK_REPLY_MAX */
	char errbuf[CURL_ERROR_SIZE];
};

static size_t
drop_reply(char *p, size_t size, size_t n, void *arg)
{
	struct mdm_webhook_client *c = arg;

	(void)p;
	c->got += size * n;
	if (c->got > MDM_WEBHOOK_REPLY_MAX) {
		c->capped = 1;
		return 0;	/* curl aborts the transfer */
	}
	return size * n;
}

int
mdm_webhook_client_new(const struct mdm_webhook_config *cfg,
    struct mdm_webhook_client **out, struct mdm_err *e)
{
	struct mdm_webhook_client *c = NULL;
	long timeout;
	int rc = -1;

	*out = NULL;
	if (cfg->url == NULL || *cfg->url == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "webhook: no URL");
	if (strncasecmp(cfg->url, "http://", 7) != 0 &&
	    strncasecmp(cfg->url, "https://", 8) != 0)
		return mdm_err_set(e, MDM_E_CONFIG, "webhook: the URL must "
		    "start with http:// or https://");
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->curl = curl_easy_init()) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "webhook: cannot start libcurl");
		goto out;
	}
	c->cfg = cfg;
	timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms :
	    MDM_WEBHOOK_DEFAULT_TIMEOUT_MS;
	if (curl_easy_setopt(c->curl, CURLOPT_URL, cfg->url) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR,
	    "http,https") != CURLE_OK ||
#else
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK ||
#endif
	    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) !=
	    CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout) !=
	    CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout < 10000 ? timeout : 10000L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_USERAGENT,
	    "mdm/" MDM_VERSION) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, drop_reply) !=
	    CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf) !=
	    CURLE_OK) {
		mdm_err_set(e, MDM_E_SOFTWARE, "webhook: cannot set up libcurl");
		goto out;
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	mdm_webhook_client_free(c);
	return rc;
}

void
mdm_webhook_client_free(struct mdm_webhook_client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

int
mdm_webhook_client_post(struct mdm_webhook_client *c, const void *body,
    size_t len, int *status, struct mdm_err *e)
{
	const struct mdm_webhook_config *cfg = c->cfg;
	struct curl_slist *h = NULL, *t;
	struct mdm_buf sig;
	CURLcode cc;
	long code = 0;
	int sign = cfg->hmac_key != NULL && cfg->hmac_key_len > 0, rc = -1;

	*status = 0;
	mdm_buf_init(&sig, 256);
	if (sign && (mdm_buf_append_str(&sig, "X-Hmac-Signature: ",
	    e) == -1 || mdm_webhook_hmac(cfg->hmac_key, cfg->hmac_key_len,
	    body, len, &sig, e) == -1))
		goto out;
	if ((h = curl_slist_append(NULL,
	    "Content-Type: application/json; charset=utf-8")) == NULL)
		goto nomem;
	/* "Expect:" stops curl from waiting for a 100 Continue. */
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto nomem;
	h = t;
	if (sign) {
		if ((t = curl_slist_append(h, (const char *)sig.data)) == NULL)
			goto nomem;
		h = t;
	}
	c->got = 0;
	c->capped = 0;
	c->errbuf[0] = '\0';
	if (curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS,
	    body != NULL ? body : "") != CURLE_OK) {
		mdm_err_set(e, MDM_E_SOFTWARE, "webhook: cannot set up libcurl");
		goto out;
	}
	cc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	/* An answer too long to read still said what its status is. */
	if (cc != CURLE_OK && !(c->capped && code >= 100)) {
		mdm_err_set(e, MDM_E_UNAVAILABLE, "webhook: %s",
		    c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	*status = (int)code;
	if (code >= 200 && code <= 299)
		rc = 0;
	else if (code == 429 || code >= 500)
		mdm_err_set(e, MDM_E_TEMPFAIL, "webhook: the receiver answered "
		    "%ld", code);
	else
		mdm_err_set(e, MDM_E_DATA, "webhook: the receiver answered %ld",
		    code);
	goto out;
nomem:
	mdm_err_set(e, MDM_E_SOFTWARE, "webhook: out of memory");
out:
	/* The list must outlive the transfer, not the handle. */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	mdm_buf_release(&sig);
	return rc;
}

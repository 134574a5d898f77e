#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "json.h"
#include "plist.h"
#include "tap.h"

static int
parse_str(const char *s, json_t **out, struct mdm_err *e)
{
	return mdm_json_parse(s, strlen(s), out, e);
}

static void
refused(const char *what, int rc, json_t *j, const struct mdm_err *e,
    enum mdm_errc want)
{
	ok(rc == -1 && j == NULL && e->code == want && e->msg[0] != '\0' &&
	    strchr(e->msg, '\n') == NULL, "%s refused (%s: %s)", what,
	    mdm_err_code_name(e->code), e->msg);
}

static char *
nested(int n)
{
	char *s = malloc(2 * (size_t)n + 1);
	int i;

	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + i] = ']';
	}
	s[2 * n] = '\0';
	return s;
}

static void
test_basic(void)
{
	static const char doc[] = "{\"s\":\"caf\xc3\xa9\",\"i\":-42,"
	    "\"big\":9223372036854775807,\"t\":true,\"f\":false,\"r\":1.0,"
	    "\"n\":null,\"o\":{\"k\":\"v\"},\"a\":[1,2]}";
	struct mdm_buf b;
	struct mdm_err e;
	json_t *j = NULL, *k = NULL;
	int64_t i = 0;
	int v = -1;

	ok(parse_str(doc, &j, &e) == 0, "object parses");
	is_str(mdm_json_get_string(j, "s"), "caf\xc3\xa9", "get_string");
	ok(mdm_json_get_int(j, "i", &i) == 0 && i == -42, "get_int");
	ok(mdm_json_get_int(j, "big", &i) == 0 && i == INT64_MAX,
	    "get_int INT64_MAX");
	ok(mdm_json_get_bool(j, "t", &v) == 0 && v == 1, "get_bool true");
	ok(mdm_json_get_bool(j, "f", &v) == 0 && v == 0, "get_bool false");
	ok(mdm_json_get_int(j, "r", &i) == -1, "1.0 is not an integer");
	ok(mdm_json_get_string(j, "n") == NULL, "null is not a string");
	ok(mdm_json_get_string(j, "i") == NULL, "integer is not a string");
	ok(mdm_json_get_bool(j, "i", &v) == -1, "integer is not a bool");
	ok(mdm_json_get_int(j, "missing", &i) == -1, "missing key");
	is_str(mdm_json_get_string(mdm_json_get_object(j, "o"), "k"), "v",
	    "get_object");
	ok(mdm_json_get_array(j, "a") != NULL &&
	    mdm_json_get_array(j, "o") == NULL &&
	    mdm_json_get_object(j, "a") == NULL, "get_array and types");
	ok(mdm_json_get_string(NULL, "s") == NULL &&
	    mdm_json_get_int(NULL, "i", &i) == -1 &&
	    mdm_json_get_bool(NULL, "t", &v) == -1 &&
	    mdm_json_get_object(NULL, "o") == NULL &&
	    mdm_json_get_string(j, NULL) == NULL &&
	    mdm_json_get_string(mdm_json_get_array(j, "a"), "0") == NULL,
	    "getters on NULL and non-objects fail");

	mdm_buf_init(&b, 1 << 16);
	mdm_buf_append_str(&b, "> ", &e);
	ok(mdm_json_dump(j, &b, JSON_SORT_KEYS | JSON_INDENT(4), &e) == 0,
	    "dump");
	ok(strchr((char *)b.data, '\n') == NULL, "dump is one line");
	ok(strncmp((char *)b.data, "> {\"a\":[1,2],\"big\":", 19) == 0,
	    "dump appends, compact and sorted: %s", (char *)b.data);
	ok(mdm_json_parse(b.data + 2, b.len - 2, &k, &e) == 0 &&
	    json_equal(j, k), "dump output parses back equal");
	json_decref(k);
	mdm_buf_release(&b);

	mdm_buf_init(&b, 16);
	mdm_buf_append_str(&b, "x", &e);
	ok(mdm_json_dump(j, &b, 0, &e) == -1 && e.code == MDM_E_TOOBIG &&
	    b.len == 1 && strcmp((char *)b.data, "x") == 0,
	    "dump over the cap fails and leaves the buffer as it was");
	mdm_buf_release(&b);
	ok(mdm_json_dump(NULL, &b, 0, &e) == -1, "dump of NULL fails");
	k = json_string("x");
	mdm_buf_init(&b, 64);
	ok(mdm_json_dump(k, &b, 0, &e) == -1, "bare string needs ENCODE_ANY");
	ok(mdm_json_dump(k, &b, JSON_ENCODE_ANY, &e) == 0 &&
	    strcmp((char *)b.data, "\"x\"") == 0, "with it, it dumps");
	json_decref(k);
	mdm_buf_release(&b);
	json_decref(j);

	ok(parse_str("[1, {\"a\": []}]", &j, &e) == 0 && json_is_array(j),
	    "array top level");
	json_decref(j);
}

static void
test_bad(void)
{
	static const struct {
		const char *doc, *what;
	} bad[] = {
		{ "{\"a\":1", "truncated" },
		{ "{\"a\":\"b", "truncated inside a string" },
		{ "{\"a\":1,\"a\":2}", "duplicate key" },
		{ "{\"a\":1}x", "trailing garbage" },
		{ "{\"a\":\"\\u0000\"}", "\\u0000 in a string" },
		{ "{\"a\":\"\xc3\x28\"}", "invalid UTF-8" },
		{ "{\"a\":\"\xed\xa0\x80\"}", "UTF-8 encoded surrogate" },
		{ "{\"a\":\"\\ud800\"}", "lone surrogate escape" },
		{ "{\"a\":01}", "leading zero" },
		{ "{\"a\":99999999999999999999}", "integer overflow" },
		{ "{'a':1}", "single quotes" },
		{ "\"bare string\"", "bare string at the top" },
		{ "   ", "whitespace only" },
		{ "{\"a\":1,}", "trailing comma" },
	};
	struct mdm_err e;
	json_t *j = NULL;
	char *s, *big;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parse_str(bad[i].doc, &j, &e);
		refused(bad[i].what, rc, j, &e, MDM_E_DATA);
	}
	rc = parse_str("{\n  \"a\": 1,\n  \"a\": 2\n}", &j, &e);
	ok(rc == -1 && strstr(e.msg, "line 3") != NULL,
	    "error names the line: %s", e.msg);
	rc = mdm_json_parse("", 0, &j, &e);
	refused("empty input", rc, j, &e, MDM_E_DATA);
	rc = mdm_json_parse(NULL, 0, &j, &e);
	refused("NULL input", rc, j, &e, MDM_E_DATA);

	s = nested(MDM_JSON_MAX_DEPTH);
	ok(parse_str(s, &j, &e) == 0, "nested %d deep accepted",
	    MDM_JSON_MAX_DEPTH);
	json_decref(j);
	free(s);
	s = nested(MDM_JSON_MAX_DEPTH + 1);
	rc = parse_str(s, &j, &e);
	refused("nested one too deep", rc, j, &e, MDM_E_TOOBIG);
	free(s);
	s = nested(100000);
	rc = parse_str(s, &j, &e);
	refused("nested 100000 deep", rc, j, &e, MDM_E_TOOBIG);
	free(s);
	rc = parse_str("{\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\":1}", &j, &e);
	ok(rc == 0, "brackets inside a string do not count as depth");
	json_decref(j);

	big = malloc(MDM_CAP_JSON + 1);
	memset(big, ' ', MDM_CAP_JSON + 1);
	big[0] = '[';
	big[MDM_CAP_JSON] = ']';
	rc = mdm_json_parse(big, MDM_CAP_JSON + 1, &j, &e);
	refused("input over MDM_CAP_JSON", rc, j, &e, MDM_E_TOOBIG);
	/* Many small values inside the byte cap. */
	for (i = 1; i + 2 < 2 * (MDM_JSON_MAX_VALUES + 2); i += 2) {
		big[i] = '0';
		big[i + 1] = ',';
	}
	big[i] = '0';
	big[i + 1] = ']';
	rc = mdm_json_parse(big, i + 2, &j, &e);
	refused("more than MDM_JSON_MAX_VALUES values", rc, j, &e,
	    MDM_E_TOOBIG);
	free(big);

	ok(mdm_json_parse_file("/nonexistent/x.json", &j, &e) == -1 &&
	    j == NULL && e.code == MDM_E_NOINPUT, "missing file is NOINPUT");
}

static json_t *
load_fixture(const char *rel)
{
	struct mdm_err e;
	const char *path;
	json_t *j = NULL;
	int rc;

	if ((path = tap_fixture(rel)) == NULL)
		return NULL;
	rc = mdm_json_parse_file(path, &j, &e);
	ok(rc == 0, "%s parses%s%s", rel, rc ? ": " : "", rc ? e.msg : "");
	return j;
}

static void
test_fixtures(void)
{
	struct mdm_err e;
	json_t *j, *d, *v;
	const char *s;
	unsigned char *raw;
	plist_t p = NULL;
	int64_t n = 0;
	size_t i, len;
	int b = -1, found = 0;

	if (tap_fixture("micromdm/dep/testdata") == NULL) {
		tap_skip(1, "fixtures absent");
		return;
	}
	j = load_fixture("micromdm/dep/testdata/device_response.json");
	d = json_array_get(mdm_json_get_array(j, "devices"), 0);
	is_str(mdm_json_get_string(d, "serial_number"), "C02T0HL0GGC0",
	    "devices[0].serial_number");
	is_str(mdm_json_get_string(d, "profile_status"), "assigned",
	    "devices[0].profile_status");
	ok(mdm_json_get_bool(j, "more_to_follow", &b) == 0 && b == 0,
	    "more_to_follow false");
	ok(mdm_json_get_string(j, "cursor") != NULL, "cursor present");
	json_decref(j);

	j = load_fixture("micromdm/dep/testdata/empty_sync_response.json");
	ok(json_array_size(mdm_json_get_array(j, "devices")) == 0,
	    "empty sync has no devices");
	is_str(mdm_json_get_string(j, "fetched_until"),
	    "2018-09-08T17:41:29Z", "fetched_until");
	json_decref(j);

	j = load_fixture("micromdm/dep/testdata/device_details_response.json");
	d = mdm_json_get_object(mdm_json_get_object(j, "devices"),
	    "C02T0HL0GGC0");
	is_str(mdm_json_get_string(d, "response_status"), "SUCCESS",
	    "devices map keyed by serial");
	json_decref(j);

	j = load_fixture("micromdm/dep/testdata/account_response.json");
	is_str(mdm_json_get_string(j, "server_uuid"),
	    "6666ED66666666666666666666666666", "server_uuid");
	json_array_foreach(mdm_json_get_array(j, "urls"), i, v) {
		if (mdm_json_get_int(mdm_json_get_object(v, "limit"),
		    "maximum", &n) == 0) {
			found = 1;
			break;
		}
	}
	ok(found && n == 5000, "a url with limit.maximum 5000");
	json_decref(j);

	j = load_fixture("micromdm/dep/testdata/fetch_profile_response.json");
	ok(mdm_json_get_bool(j, "allow_pairing", &b) == 0 && b == 1,
	    "allow_pairing true");
	is_str(json_string_value(json_array_get(mdm_json_get_array(j,
	    "skip_setup_items"), 1)), "Android", "skip_setup_items[1]");
	json_decref(j);

	j = load_fixture("nanomdm/service/webhook/testdata/Authenticate.2.json");
	is_str(mdm_json_get_string(j, "topic"), "mdm.Authenticate", "topic");
	is_str(mdm_json_get_string(mdm_json_get_object(mdm_json_get_object(j,
	    "checkin_event"), "ids"), "type"), "Device", "ids.type");
	json_decref(j);

	j = load_fixture(
	    "nanomdm/service/webhook/testdata/DeviceInformation.1.json");
	d = mdm_json_get_object(j, "acknowledge_event");
	is_str(mdm_json_get_string(d, "status"), "Acknowledged", "status");
	/* The raw payload is the device's plist: decode and read it. */
	s = mdm_json_get_string(d, "raw_payload");
	ok(s != NULL, "raw_payload present");
	if (s != NULL) {
		len = strlen(s);
		raw = malloc(len);
		i = (size_t)EVP_DecodeBlock(raw, (const unsigned char *)s,
		    (int)len);
		while (i > 0 && raw[i - 1] == '\0')
			i--;
		ok(mdm_plist_parse_dict(raw, i, &p, &e) == 0,
		    "raw_payload is a plist dict");
		is_str(mdm_plist_get_string(p, "CommandUUID"),
		    mdm_json_get_string(d, "command_uuid"),
		    "plist CommandUUID matches command_uuid");
		plist_free(p);
		free(raw);
	}
	json_decref(j);
}

int
main(void)
{
	test_basic();
	test_bad();
	test_fixtures();
	return tap_done();
}

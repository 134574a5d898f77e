#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "plist.h"
#include "tap.h"

#define HDR "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" " \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" \
	"<plist version=\"1.0\">\n"

static int
parse_str(const char *s, plist_t *out, struct mdm_err *e)
{
	return mdm_plist_parse(s, strlen(s), out, e);
}

/* A message is one non-empty line, as the tools print it. */
static int
one_line(const struct mdm_err *e)
{
	return e->msg[0] != '\0' && strchr(e->msg, '\n') == NULL;
}

/* Expects a clean refusal with one of the two input-error codes. */
static void
refused(const char *what, int rc, plist_t p, const struct mdm_err *e,
    enum mdm_errc want)
{
	ok(rc == -1 && p == NULL && e->code == want && one_line(e),
	    "%s refused (%s: %s)", what, mdm_err_code_name(e->code), e->msg);
}

/* XML of n nested arrays around <true/>. */
static char *
nested_xml(int n)
{
	struct mdm_buf b;
	int i;

	mdm_buf_init(&b, 1 << 20);
	mdm_buf_append_str(&b, HDR, NULL);
	for (i = 0; i < n; i++)
		mdm_buf_append_str(&b, "<array>", NULL);
	mdm_buf_append_str(&b, "<true/>", NULL);
	for (i = 0; i < n; i++)
		mdm_buf_append_str(&b, "</array>", NULL);
	mdm_buf_append_str(&b, "</plist>\n", NULL);
	return (char *)b.data;
}

static plist_t
nested_tree(int n)
{
	plist_t root = plist_new_bool(1), a;
	int i;

	for (i = 0; i < n; i++) {
		a = plist_new_array();
		plist_array_append_item(a, root);
		root = a;
	}
	return root;
}

/* Same tree after a trip through the given writer and our parser. */
static int
round_trips(plist_t p, int bin)
{
	struct mdm_buf b1, b2, b3;
	struct mdm_err e;
	plist_t q = NULL;
	int same = 0;

	mdm_buf_init(&b1, MDM_CAP_PLIST);
	mdm_buf_init(&b2, MDM_CAP_PLIST);
	mdm_buf_init(&b3, MDM_CAP_PLIST);
	if ((bin ? mdm_plist_to_bin(p, &b1, &e) :
	    mdm_plist_to_xml(p, &b1, &e)) == -1)
		goto out;
	if (mdm_plist_parse(b1.data, b1.len, &q, &e) == -1) {
		tap_diag("reparse: %s", e.msg);
		goto out;
	}
	if (mdm_plist_to_xml(p, &b2, &e) == -1 ||
	    mdm_plist_to_xml(q, &b3, &e) == -1)
		goto out;
	same = b2.len == b3.len && memcmp(b2.data, b3.data, b2.len) == 0;
out:
	plist_free(q);
	mdm_buf_release(&b1);
	mdm_buf_release(&b2);
	mdm_buf_release(&b3);
	return same;
}

static void
test_getters(void)
{
	static const char doc[] = HDR
	    "<dict>\n"
	    "\t<key>Command</key>\n\t<dict>\n"
	    "\t\t<key>RequestType</key>\n\t\t<string>InstallProfile</string>\n"
	    "\t\t<key>Payload</key>\n\t\t<data>\n\t\tZm9vYmFyYmF6\n\t\t</data>\n"
	    "\t</dict>\n"
	    "\t<key>N</key>\t<integer>-42</integer>\n"
	    "\t<key>Big</key>\t<integer>18446744073709551615</integer>\n"
	    "\t<key>Min</key>\t<integer>-9223372036854775808</integer>\n"
	    "\t<key>Hex</key>\t<integer>0x10</integer>\n"
	    "\t<key>Version</key>\t<real>1</real>\n"
	    "\t<key>Half</key>\t<real>1.5</real>\n"
	    "\t<key>Yes</key>\t<true/>\n"
	    "\t<key>No</key>\t<false></false>\n"
	    "\t<key>Empty</key>\t<data></data>\n"
	    "\t<key>Name</key>\t<string>a &lt;&amp;&gt; &#x263A; "
	    "<![CDATA[<dict>]]></string>\n"
	    "\t<key></key>\t<string>empty key</string>\n"
	    "\t<key>List</key>\t<array><string>x</string><dict>"
	    "<key>Deep</key><integer>7</integer></dict></array>\n"
	    "\t<key>When</key>\t<date>2020-01-02T03:04:05Z</date>\n"
	    "</dict>\n</plist>\n";
	struct mdm_err e;
	plist_t p = NULL, cmd;
	const unsigned char *d;
	int64_t i = 0;
	double r = 0;
	size_t n = 99;
	int b = -1;

	mdm_err_clear(&e);
	mdm_plist_parse_dict(doc, sizeof(doc) - 1, &p, &e);
	ok(p != NULL, "hand-written dict parses%s%s", p ? "" : ": ", e.msg);
	if (p == NULL)
		return;
	cmd = mdm_plist_get_dict(p, "Command");
	ok(cmd != NULL, "get_dict");
	is_str(mdm_plist_get_string(cmd, "RequestType"), "InstallProfile",
	    "get_string");
	is_str(mdm_plist_as_string(mdm_plist_get_path(p,
	    "Command.RequestType")), "InstallProfile", "get_path");
	d = mdm_plist_get_data(cmd, "Payload", &n);
	ok(d != NULL && n == 9 && memcmp(d, "foobarbaz", 9) == 0,
	    "get_data borrows decoded bytes");
	d = mdm_plist_get_data(p, "Empty", &n);
	ok(d != NULL && n == 0, "empty <data></data> is present, length 0");
	ok(mdm_plist_get_int(p, "N", &i) == 0 && i == -42, "negative integer");
	ok(mdm_plist_get_int(p, "Min", &i) == 0 && i == INT64_MIN,
	    "INT64_MIN");
	ok(mdm_plist_get_int(p, "Big", &i) == -1,
	    "integer above INT64_MAX does not fit");
	ok(mdm_plist_get_real(p, "Big", &r) == -1,
	    "nor as a real through get_real");
	ok(mdm_plist_get_int(p, "Hex", &i) == 0 && i == 16, "hex integer");
	ok(mdm_plist_get_int(p, "Version", &i) == 0 && i == 1,
	    "<real>1</real> read as integer 1");
	ok(mdm_plist_get_int(p, "Half", &i) == -1, "1.5 is not an integer");
	ok(mdm_plist_get_real(p, "Half", &r) == 0 && r == 1.5, "get_real");
	ok(mdm_plist_get_real(p, "N", &r) == 0 && r == -42.0,
	    "get_real accepts an integer");
	ok(mdm_plist_get_bool(p, "Yes", &b) == 0 && b == 1, "true");
	ok(mdm_plist_get_bool(p, "No", &b) == 0 && b == 0,
	    "<false></false> is false");
	is_str(mdm_plist_get_string(p, "Name"), "a <&> \xe2\x98\xba <dict>",
	    "entities, character reference and CDATA decoded");
	is_str(mdm_plist_get_string(p, ""), "empty key", "empty key");
	ok(mdm_plist_get_array(p, "List") != NULL, "get_array");
	ok(mdm_plist_as_int(mdm_plist_get_path(p, "List.1.Deep"), &i) == 0 &&
	    i == 7, "path through an array index");
	is_str(mdm_plist_as_string(mdm_plist_get_path(p, "List.0")), "x",
	    "path ending at an array item");
	ok(mdm_plist_get_path(p, "List.2") == NULL, "index past the end");
	ok(mdm_plist_get_path(p, "List.x") == NULL, "non-numeric index");
	ok(mdm_plist_get_path(p, "Command..RequestType") == NULL,
	    "empty path component");
	ok(mdm_plist_get_path(p, "Command.RequestType.More") == NULL,
	    "path through a string");
	ok(mdm_plist_get_path(p, "") == NULL, "empty path");
	is_str(mdm_plist_type_name(mdm_plist_get_path(p, "When")), "date",
	    "date parsed");

	/* Missing key and wrong type fail alike; NULL and non-dicts too. */
	ok(mdm_plist_get_string(p, "Missing") == NULL, "missing key");
	ok(mdm_plist_get_string(p, "N") == NULL, "string of an integer");
	ok(mdm_plist_get_int(p, "Name", &i) == -1, "integer of a string");
	ok(mdm_plist_get_bool(p, "N", &b) == -1, "bool of an integer");
	ok(mdm_plist_get_data(p, "Name", &n) == NULL && n == 0,
	    "data of a string");
	ok(mdm_plist_get_dict(p, "List") == NULL, "dict of an array");
	ok(mdm_plist_get_array(p, "Command") == NULL, "array of a dict");
	ok(mdm_plist_get_string(NULL, "N") == NULL &&
	    mdm_plist_get_int(NULL, "N", &i) == -1 &&
	    mdm_plist_get_bool(NULL, "N", &b) == -1 &&
	    mdm_plist_get_data(NULL, "N", &n) == NULL &&
	    mdm_plist_get_dict(NULL, "N") == NULL &&
	    mdm_plist_get_array(NULL, "N") == NULL &&
	    mdm_plist_get_path(NULL, "N") == NULL &&
	    mdm_plist_get_string(p, NULL) == NULL,
	    "getters on NULL fail");
	ok(mdm_plist_get_string(mdm_plist_get_array(p, "List"), "0") == NULL,
	    "get_string on an array fails");
	ok(round_trips(p, 0), "XML round trip keeps the tree");
	ok(round_trips(p, 1), "binary round trip keeps the tree");
	plist_free(p);
}

static void
test_setters(void)
{
	struct mdm_buf b;
	struct mdm_err e;
	plist_t d = plist_new_dict(), q = NULL, a = plist_new_array();
	const unsigned char *p;
	int64_t i = 0;
	size_t n;
	int v = 0;

	ok(mdm_plist_set_string(d, "RequestType", "ProfileList") == 0 &&
	    mdm_plist_set_int(d, "Neg", -5) == 0 &&
	    mdm_plist_set_int(d, "Max", INT64_MAX) == 0 &&
	    mdm_plist_set_bool(d, "Flag", 1) == 0 &&
	    mdm_plist_set_data(d, "Blob", "\0\1\2", 3) == 0 &&
	    mdm_plist_set_data(d, "None", NULL, 0) == 0, "setters");
	ok(mdm_plist_set_string(a, "k", "v") == -1 &&
	    mdm_plist_set_int(NULL, "k", 1) == -1 &&
	    mdm_plist_set_string(d, NULL, "v") == -1 &&
	    mdm_plist_set_string(d, "k", NULL) == -1,
	    "setters refuse a non-dict, a NULL key or value");
	mdm_buf_init(&b, MDM_CAP_PLIST);
	ok(mdm_plist_to_bin(d, &b, &e) == 0 &&
	    mdm_plist_parse_dict(b.data, b.len, &q, &e) == 0,
	    "built dict survives binary");
	ok(mdm_plist_get_int(q, "Neg", &i) == 0 && i == -5,
	    "negative integer survives binary");
	ok(mdm_plist_get_int(q, "Max", &i) == 0 && i == INT64_MAX,
	    "INT64_MAX survives binary");
	ok(mdm_plist_get_bool(q, "Flag", &v) == 0 && v == 1, "bool survives");
	p = mdm_plist_get_data(q, "Blob", &n);
	ok(p != NULL && n == 3 && memcmp(p, "\0\1\2", 3) == 0,
	    "data with NUL survives");
	p = mdm_plist_get_data(q, "None", &n);
	ok(p != NULL && n == 0, "empty data survives");
	plist_free(q);
	q = NULL;
	mdm_buf_reset(&b);
	ok(mdm_plist_to_xml(d, &b, &e) == 0 &&
	    mdm_plist_parse_dict(b.data, b.len, &q, &e) == 0 &&
	    mdm_plist_get_int(q, "Neg", &i) == 0 && i == -5,
	    "built dict survives XML");
	plist_free(q);
	mdm_buf_release(&b);

	/* Appends keep what the caller had; the caller's cap holds. */
	mdm_buf_init(&b, 64);
	mdm_buf_append_str(&b, "x", &e);
	ok(mdm_plist_to_xml(d, &b, &e) == -1 && e.code == MDM_E_TOOBIG &&
	    b.len == 1, "output over the caller's cap refused");
	mdm_buf_release(&b);
	ok(mdm_plist_to_xml(NULL, &b, &e) == -1, "to_xml of NULL fails");
	plist_free(d);
	plist_free(a);
}

static void
test_limits(void)
{
	struct mdm_buf b;
	struct mdm_err e;
	plist_t p = NULL, t;
	char *s;
	size_t i;
	int rc;

	rc = mdm_plist_parse("", 0, &p, &e);
	refused("empty input", rc, p, &e, MDM_E_DATA);
	rc = mdm_plist_parse(NULL, 0, &p, &e);
	refused("NULL input", rc, p, &e, MDM_E_DATA);
	rc = parse_str("   \n", &p, &e);
	refused("whitespace only", rc, p, &e, MDM_E_DATA);

	s = calloc(1, MDM_CAP_PLIST + 1);
	rc = mdm_plist_parse(s, MDM_CAP_PLIST + 1, &p, &e);
	refused("input over MDM_CAP_PLIST", rc, p, &e, MDM_E_TOOBIG);
	free(s);

	s = nested_xml(MDM_PLIST_MAX_DEPTH);
	ok(parse_str(s, &p, &e) == 0, "XML nested %d deep accepted",
	    MDM_PLIST_MAX_DEPTH);
	plist_free(p);
	free(s);
	s = nested_xml(MDM_PLIST_MAX_DEPTH + 1);
	rc = parse_str(s, &p, &e);
	refused("XML nested one too deep", rc, p, &e, MDM_E_TOOBIG);
	free(s);
	s = nested_xml(100000);
	rc = parse_str(s, &p, &e);
	refused("XML nested 100000 deep", rc, p, &e, MDM_E_TOOBIG);
	free(s);

	mdm_buf_init(&b, MDM_CAP_PLIST);
	t = nested_tree(MDM_PLIST_MAX_DEPTH);
	mdm_plist_to_bin(t, &b, &e);
	ok(mdm_plist_parse(b.data, b.len, &p, &e) == 0,
	    "binary nested %d deep accepted", MDM_PLIST_MAX_DEPTH);
	plist_free(p);
	plist_free(t);
	mdm_buf_reset(&b);
	t = nested_tree(MDM_PLIST_MAX_DEPTH + 1);
	mdm_plist_to_bin(t, &b, &e);
	rc = mdm_plist_parse(b.data, b.len, &p, &e);
	refused("binary nested one too deep", rc, p, &e, MDM_E_TOOBIG);
	plist_free(t);
	mdm_buf_reset(&b);
	t = nested_tree(1);
	mdm_plist_to_bin(t, &b, &e);
	b.data[7] = '1';
	rc = mdm_plist_parse(b.data, b.len, &p, &e);
	refused("bplist01", rc, p, &e, MDM_E_DATA);
	b.data[7] = '0';
	rc = mdm_plist_parse(b.data, b.len - 1, &p, &e);
	refused("binary cut by one byte", rc, p, &e, MDM_E_DATA);
	plist_free(t);
	mdm_buf_release(&b);

	mdm_buf_init(&b, MDM_CAP_PLIST);
	mdm_buf_append_str(&b, HDR "<array>", &e);
	for (i = 0; i < MDM_PLIST_MAX_NODES; i++)
		mdm_buf_append_str(&b, "<true/>", &e);
	mdm_buf_append_str(&b, "</array></plist>", &e);
	rc = mdm_plist_parse(b.data, b.len, &p, &e);
	refused("more than MDM_PLIST_MAX_NODES values", rc, p, &e,
	    MDM_E_TOOBIG);
	mdm_buf_release(&b);
}

/* Small malformed documents, each refused with a clear message. */
static void
test_malformed_inline(void)
{
	static const char *const bad[] = {
		"<",
		"<plist>",
		"<plist></plist>",
		"<plist/>",
		"<true/>",
		"<plist><true/>",
		"<plist><true/></plist><plist>",
		"<plist><true/></plist>junk",
		"<plist><true/><false/></plist>",
		"<plist><key>a</key></plist>",
		"<plist><dict><key/><true/></dict></plist>",
		"<plist><dict><key>a</key><key>b</key><true/></dict></plist>",
		"<plist><dict><key>a</key><true/><true/></dict></plist>",
		"<plist><dict>junk</dict></plist>",
		"<plist><array x=\"1\"></array></plist>",
		"<plist><string>x</strin></plist>",
		"<plist><string>&foo;</string></plist>",
		"<plist><string>a&#0;b</string></plist>",
		"<plist><string>&#x110000;</string></plist>",
		"<plist><string>a&b</string></plist>",
		"<plist><string>a<!-- c -->b</string></plist>",
		"<plist><string><![CDATA[x</string></plist>",
		"<plist><integer>abc</integer></plist>",
		"<plist><integer></integer></plist>",
		"<plist><integer>18446744073709551616</integer></plist>",
		"<plist><integer>-9223372036854775809</integer></plist>",
		"<plist><integer>-0x10</integer></plist>",
		"<plist><real>x1</real></plist>",
		"<plist><real/></plist>",
		"<plist><date>garbage</date></plist>",
		"<plist><date>2020-13-01T00:00:00Z</date></plist>",
		"<plist><date>12020-01-01T00:00:00Z</date></plist>",
		"<plist><date>0000-01-01T00:00:00Z</date></plist>",
		"<plist><date>2020-01-01T00:00:00</date></plist>",
		"<plist><date>2020-01-01 00:00:00Z</date></plist>",
		"<plist><data>!!!!</data></plist>",
		"<plist><data>QQ=Q</data></plist>",
		"<plist><data>Q===</data></plist>",
		"<plist><true>x</true></plist>",
		"<plist><dict><key>a</key><true/></dict>",
		"<!DOCTYPE plist SYSTEM \"x\" [<!ENTITY a \"b\">]>"
		    "<plist><string>&a;</string></plist>",
		"<!ENTITY a \"b\"><plist><true/></plist>",
		"<?xml version=\"1.0\"<plist><true/></plist>",
		"<?xml version=\"1.0\" encoding\"?><plist><true/></plist>",
		"<?xml version=\"?>\"?><plist><true/></plist>",
		"<!DOCTYPE plist \"a>b\"><plist><true/></plist>",
		"<!DOCTYPE plist \"a><plist><true/></plist>",
		"\xfe\xff\0<\0p",
		"bplist00",
	};
	struct mdm_err e;
	plist_t p = NULL;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parse_str(bad[i], &p, &e);
		ok(rc == -1 && p == NULL && e.code == MDM_E_DATA && one_line(&e),
		    "malformed %zu refused: %s", i, e.msg);
		plist_free(p);
		p = NULL;
	}

	/* Forms libplist 2.2 or Apple's writer produce, which must pass. */
	{
		static const char *const good[] = {
			"<plist><true></true></plist>",
			"<plist><string/></plist>",
			"<plist><data/></plist>",
			"<plist><dict/></plist>",
			"<plist><array></array></plist>",
			"<?xml version='1.0' encoding=\"UTF-8\"?><!DOCTYPE "
			    "plist SYSTEM 'p.dtd'><plist><true/></plist>",
			"  \r\n<?xml version=\"1.0\"?>\r\n<!-- c -->\r\n<plist>"
			    "\r\n<array >\r\n<true />\r\n</array>\r\n</plist >"
			    "\r\n<!-- trailing -->\r\n",
			"<plist><real>nan</real></plist>",
			"<plist><real>-infinity</real></plist>",
			"<plist><real> 2.5e3 </real></plist>",
			"<plist><integer> +12 </integer></plist>",
			"<plist><data>  QU\n\tJD  </data></plist>",
			"<plist><date>2070-12-31T23:59:59Z</date></plist>",
			"<plist><date>1-01-01T00:00:00Z</date></plist>",
			"\xef\xbb\xbf<plist><true/></plist>",
		};

		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			rc = parse_str(good[i], &p, &e);
			ok(rc == 0 && p != NULL, "well-formed %zu accepted%s%s",
			    i, rc ? ": " : "", rc ? e.msg : "");
			plist_free(p);
			p = NULL;
		}
	}
}

struct badfile {
	const char *name;
	enum mdm_errc code;
};

static void
test_data_files(void)
{
	static const struct badfile bad[] = {
		{ "deep.plist", MDM_E_TOOBIG },
		{ "deep_dict.plist", MDM_E_TOOBIG },
		{ "truncated.plist", MDM_E_DATA },
		{ "entity.plist", MDM_E_DATA },
		{ "key_no_value.plist", MDM_E_DATA },
		{ "value_no_key.plist", MDM_E_DATA },
		{ "bad_integer.plist", MDM_E_DATA },
		{ "bad_data.plist", MDM_E_DATA },
		{ "nul.plist", MDM_E_DATA },
		{ "bad_utf8.plist", MDM_E_DATA },
		{ "unknown_element.plist", MDM_E_DATA },
		{ "surrogate_ref.plist", MDM_E_DATA },
		{ "mismatched.plist", MDM_E_DATA },
		{ "two_values.plist", MDM_E_DATA },
		{ "garbage.bin", MDM_E_DATA },
		{ "bin_garbage.plist", MDM_E_DATA },
		{ "fuzz_date_year0.plist", MDM_E_DATA },
		{ "fuzz_date_leap_9999.plist", MDM_E_DATA },
		{ "fuzz_prolog_quote.plist", MDM_E_DATA },
		{ "bin_cycle.plist", MDM_E_DATA },
		{ "bin_selfref.plist", MDM_E_DATA },
		{ "bin_badref.plist", MDM_E_DATA },
		{ "bin_badoffset.plist", MDM_E_DATA },
		{ "bin_badtable.plist", MDM_E_DATA },
		{ "bin_longstring.plist", MDM_E_DATA },
		{ "bin_laughs.plist", MDM_E_TOOBIG },
		{ "bin_laughs_small.plist", MDM_E_TOOBIG },
		{ "bin_deep.plist", MDM_E_TOOBIG },
		{ "bin_intkey.plist", MDM_E_DATA },
		{ "bin_surrogate.plist", MDM_E_DATA },
		{ "bin_truncated.plist", MDM_E_DATA },
	};
	const char *dir = getenv("MDM_TEST_DATA");
	char path[4096];
	struct mdm_err e;
	plist_t p = NULL;
	int64_t i = 0;
	size_t k;
	int rc;

	if (dir == NULL) {
		tap_skip(1, "MDM_TEST_DATA not set");
		return;
	}
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		snprintf(path, sizeof(path), "%s/plist/%s", dir, bad[k].name);
		rc = mdm_plist_parse_file(path, &p, &e);
		refused(bad[k].name, rc, p, &e, bad[k].code);
		ok(strstr(e.msg, bad[k].name) != NULL,
		    "%s: message names the file", bad[k].name);
		plist_free(p);
		p = NULL;
	}

	snprintf(path, sizeof(path), "%s/plist/bin_valid.plist", dir);
	ok(mdm_plist_parse_file(path, &p, &e) == 0, "valid binary plist");
	is_str(mdm_plist_get_string(p, "MessageType"), "Authenticate",
	    "binary string");
	ok(mdm_plist_get_int(p, "Num", &i) == 0 && i == 5, "binary integer");
	plist_free(p);

	/* Found by fuzz_plist: XML dates the binary check used to refuse. */
	for (k = 0; k < 2; k++) {
		const char *name = k ? "fuzz_date_roundtrip.plist" :
		    "dates.plist";

		snprintf(path, sizeof(path), "%s/plist/%s", dir, name);
		rc = mdm_plist_parse_file(path, &p, &e);
		ok(rc == 0 && round_trips(p, 1),
		    "%s: accepted and read back from binary", name);
		plist_free(p);
		p = NULL;
	}

	snprintf(path, sizeof(path), "%s/plist/bom.plist", dir);
	ok(mdm_plist_parse_file(path, &p, &e) == 0 &&
	    mdm_plist_get_string(p, "MessageType") != NULL,
	    "UTF-8 byte order mark skipped");
	plist_free(p);

	snprintf(path, sizeof(path), "%s/plist/array_top.plist", dir);
	ok(mdm_plist_parse_file(path, &p, &e) == 0, "array top level parses");
	plist_free(p);
	{
		struct mdm_buf b;

		mdm_buf_init(&b, MDM_CAP_PLIST);
		mdm_buf_read_file(&b, path, &e);
		rc = mdm_plist_parse_dict(b.data, b.len, &p, &e);
		refused("array where a dict is needed", rc, p, &e, MDM_E_DATA);
		ok(strstr(e.msg, "an array, not a dict") != NULL,
		    "message says what the top level is");
		mdm_buf_release(&b);
	}

	ok(mdm_plist_parse_file("/nonexistent/x.plist", &p, &e) == -1 &&
	    p == NULL && e.code == MDM_E_NOINPUT, "missing file is NOINPUT");
}

struct fixture {
	const char *rel;
	const char *key;	/* a string key and its expected value */
	const char *want;
};

static void
test_fixtures(void)
{
	static const struct fixture fx[] = {
		{ "nanomdm/mdm/testdata/Authenticate.1.plist",
		    "MessageType", "Authenticate" },
		{ "nanomdm/mdm/testdata/Authenticate.2.plist",
		    "SerialNumber", "C02MT66KFLHH" },
		{ "nanomdm/mdm/testdata/TokenUpdate.1.plist",
		    "MessageType", "TokenUpdate" },
		{ "nanomdm/mdm/testdata/TokenUpdate.2.plist",
		    "PushMagic", "888CEB39-BFFA-40F6-89FA-B60752EB63C2" },
		{ "nanomdm/mdm/testdata/DeviceInformation.1.plist",
		    "QueryResponses.HostName", "fruit.example.com" },
		{ "micromdm/checkin/testdata/TokenUpdate.plist",
		    "UDID", "FA01680E-98CA-5557-8F59-7716ECFEE964" },
		{ "micromdm/mdm/mdm/testdata/InstallProfile.plist",
		    "Command.RequestType", "InstallProfile" },
		{ "micromdm/command/testdata/DeviceInformation.plist",
		    "Command.Queries.1", "bar" },
		{ "micromdm/command/testdata/Settings_hostname_devicename.plist",
		    "Command.RequestType", "Settings" },
		{ "micromdm/workflow/profile/inventory/testdata/response.plist",
		    "ProfileList.0.PayloadContent.1.PayloadType",
		    "com.apple.security.scep" },
		{ "scep/testdata/testca/sceptest.mobileconfig",
		    "PayloadContent.0.PayloadType", "com.apple.security.scep" },
		{ "nanomdm/docs/enroll.mobileconfig",
		    "PayloadType", "Configuration" },
	};
	struct mdm_err e;
	const char *path;
	const unsigned char *d;
	plist_t p = NULL;
	int64_t i = 0;
	size_t k, n = 0;
	int b = -1, rc;

	if (tap_fixture("nanomdm") == NULL) {
		tap_skip(1, "fixtures absent");
		return;
	}
	for (k = 0; k < sizeof(fx) / sizeof(fx[0]); k++) {
		if ((path = tap_fixture(fx[k].rel)) == NULL) {
			tap_skip(4, fx[k].rel);
			continue;
		}
		rc = mdm_plist_parse_file(path, &p, &e);
		ok(rc == 0 && plist_get_node_type(p) == PLIST_DICT,
		    "%s parses%s%s", fx[k].rel, rc ? ": " : "", rc ? e.msg : "");
		is_str(mdm_plist_as_string(mdm_plist_get_path(p, fx[k].key)),
		    fx[k].want, fx[k].key);
		ok(round_trips(p, 0), "%s: XML round trip", fx[k].rel);
		ok(round_trips(p, 1), "%s: binary round trip", fx[k].rel);

		/* Per-file forms worth checking beyond one string. */
		if (strcmp(fx[k].rel,
		    "micromdm/checkin/testdata/TokenUpdate.plist") == 0) {
			ok(mdm_plist_get_bool(p, "AwaitingConfiguration",
			    &b) == 0 && b == 0, "<false></false> read as false");
			d = mdm_plist_get_data(p, "UnlockToken", &n);
			ok(d != NULL && n == 0, "empty <data></data> present");
			d = mdm_plist_get_data(p, "Token", &n);
			ok(d != NULL && n == 32, "Token is 32 bytes");
			is_str(mdm_plist_get_string(p, "BuildVersion"), "",
			    "empty <string></string>");
		} else if (strcmp(fx[k].rel,
		    "scep/testdata/testca/sceptest.mobileconfig") == 0) {
			ok(mdm_plist_as_int(mdm_plist_get_path(p,
			    "PayloadContent.0.PayloadVersion"), &i) == 0 &&
			    i == 1, "PayloadVersion <real>1</real> reads as 1");
			is_str(mdm_plist_type_name(mdm_plist_get_path(p,
			    "PayloadContent.0.PayloadVersion")), "real",
			    "and is stored as a real");
		} else if (strcmp(fx[k].rel,
		    "micromdm/mdm/mdm/testdata/InstallProfile.plist") == 0) {
			d = mdm_plist_as_data(mdm_plist_get_path(p,
			    "Command.Payload"), &n);
			ok(d != NULL && n == 9 && memcmp(d, "foobarbaz", 9) == 0,
			    "Command.Payload decoded");
		} else if (strcmp(fx[k].rel,
		    "nanomdm/docs/enroll.mobileconfig") == 0) {
			ok(mdm_plist_as_bool(mdm_plist_get_path(p,
			    "PayloadContent.1.SignMessage"), &b) == 0 && b == 1,
			    "SignMessage true");
			ok(mdm_plist_get_int(p, "PayloadVersion", &i) == 0 &&
			    i == 1, "PayloadVersion 1");
		} else if (strcmp(fx[k].rel,
		    "nanomdm/mdm/testdata/Authenticate.2.plist") == 0) {
			d = mdm_plist_get_data(p, "Challenge", &n);
			ok(d != NULL && n == 5 && memcmp(d, "apple", 5) == 0,
			    "Challenge data decoded");
		}
		plist_free(p);
		p = NULL;
	}
}

int
main(void)
{
	test_getters();
	test_setters();
	test_limits();
	test_malformed_inline();
	test_data_files();
	test_fixtures();
	return tap_done();
}

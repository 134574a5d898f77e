#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plist/plist.h>

#include "buf.h"
#include "plist.h"
#include "mdm_int.h"

/*
 * XML check.  This is a small validating reader for the subset of XML
 * Apple writes for property lists.  It does not build anything; it only
 * decides whether libplist 2.2 may see the bytes, so where the two could
 * disagree it refuses.
 */

enum xel {
	X_PLIST, X_DICT, X_ARRAY, X_KEY, X_STRING, X_INTEGER, X_REAL,
	X_DATE, X_DATA, X_TRUE, X_FALSE
};

static const char *const xnames[] = {
	"plist", "dict", "array", "key", "string", "integer", "real",
	"date", "data", "true", "false"
};

struct xframe {
	enum xel el;
	int want_key;		/* dict: next child must be a <key> */
	int want_value;		/* plist: still waiting for its value */
};

struct xscan {
	const unsigned char *start, *p, *end;
	struct mdm_err *e;
	size_t nodes;
	int top;		/* frames in use; frame 0 is <plist> */
	struct xframe stk[MDM_PLIST_MAX_DEPTH + 1];
};

static int
xfail(struct xscan *x, enum mdm_errc code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
xfail(struct xscan *x, enum mdm_errc code, const char *fmt, ...)
{
	const unsigned char *q;
	char msg[MDM_ERR_MSG_MAX];
	va_list ap;
	int line = 1;

	for (q = x->start; q < x->p && q < x->end; q++)
		if (*q == '\n')
			line++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mdm_err_set(x->e, code, "XML property list, line %d: %s",
	    line, msg);
}

static int
starts(const struct xscan *x, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
skip_ws(struct xscan *x)
{
	while (x->p < x->end && is_ws(*x->p))
		x->p++;
}

/* Moves past the next occurrence of lit; -1 when there is none. */
static int
skip_past(struct xscan *x, const char *lit)
{
	size_t n = strlen(lit);

	for (; (size_t)(x->end - x->p) >= n; x->p++)
		if (memcmp(x->p, lit, n) == 0) {
			x->p += n;
			return 0;
		}
	x->p = x->end;
	return -1;
}

/*
 * Whole-document UTF-8 check: overlong forms, surrogates and code points
 * past U+10FFFF are refused, and so is NUL, which XML never allows and
 * which would cut libplist's C strings short.
 */
static size_t
utf8_bad(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp, min;

	while (i < n) {
		unsigned char c = s[i];

		if (c == 0)
			return i + 1;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else
			return i + 1;
		if (n - i - 1 < need)
			return i + 1;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i + 1;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i + 1;
		i += need + 1;
	}
	return 0;
}

static int
name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '.' ||
	    c == '-';
}

/*
 * Reads a start or end tag at x->p ('<').  Only <plist> may carry
 * attributes, and their values may not hold markup.
 */
static int
read_tag(struct xscan *x, enum xel *el, int *closing, int *selfclose)
{
	const unsigned char *name;
	size_t n, i;
	unsigned char q;

	x->p++;
	*closing = *selfclose = 0;
	if (x->p < x->end && *x->p == '/') {
		*closing = 1;
		x->p++;
	}
	name = x->p;
	while (x->p < x->end && name_char(*x->p))
		x->p++;
	n = (size_t)(x->p - name);
	for (i = 0; i < MDM_ARRAY_LEN(xnames); i++)
		if (strlen(xnames[i]) == n && memcmp(xnames[i], name, n) == 0)
			break;
	if (n == 0)
		return xfail(x, MDM_E_DATA, "malformed tag");
	if (i == MDM_ARRAY_LEN(xnames))
		return xfail(x, MDM_E_DATA, "unknown element <%.*s>",
		    (int)(n > 32 ? 32 : n), (const char *)name);
	*el = (enum xel)i;
	for (;;) {
		skip_ws(x);
		if (x->p == x->end)
			return xfail(x, MDM_E_DATA, "truncated in <%s> tag",
			    xnames[*el]);
		if (*x->p == '>') {
			x->p++;
			return 0;
		}
		if (!*closing && starts(x, "/>")) {
			*selfclose = 1;
			x->p += 2;
			return 0;
		}
		if (*closing || *el != X_PLIST || !name_char(*x->p))
			return xfail(x, MDM_E_DATA, "unexpected attribute "
			    "or character in <%s> tag", xnames[*el]);
		while (x->p < x->end && name_char(*x->p))
			x->p++;
		skip_ws(x);
		if (x->p == x->end || *x->p != '=')
			return xfail(x, MDM_E_DATA, "malformed attribute");
		x->p++;
		skip_ws(x);
		if (x->p == x->end || (*x->p != '"' && *x->p != '\''))
			return xfail(x, MDM_E_DATA, "malformed attribute");
		q = *x->p++;
		while (x->p < x->end && *x->p != q) {
			if (*x->p == '<' || *x->p == '&')
				return xfail(x, MDM_E_DATA,
				    "markup in an attribute value");
			x->p++;
		}
		if (x->p == x->end)
			return xfail(x, MDM_E_DATA, "truncated attribute");
		x->p++;
	}
}

/* One entity reference at x->p ('&'): the five XML names or &#...; */
static int
read_entity(struct xscan *x)
{
	static const char *const names[] = { "lt", "gt", "amp", "quot", "apos" };
	const unsigned char *s = x->p + 1, *semi;
	unsigned long cp = 0;
	size_t n, i;
	int hex;

	for (semi = s; semi < x->end && semi - s < 12 && *semi != ';'; semi++)
		;
	if (semi == x->end || *semi != ';')
		return xfail(x, MDM_E_DATA, "unterminated entity reference");
	n = (size_t)(semi - s);
	for (i = 0; i < MDM_ARRAY_LEN(names); i++)
		if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
			goto good;
	if (n < 2 || s[0] != '#')
		return xfail(x, MDM_E_DATA, "unknown entity &%.*s;", (int)n,
		    (const char *)s);
	hex = s[1] == 'x';
	if (hex && n < 3)
		return xfail(x, MDM_E_DATA, "malformed character reference");
	for (i = hex ? 2 : 1; i < n; i++) {
		int c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (hex && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (hex && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return xfail(x, MDM_E_DATA,
			    "malformed character reference");
		cp = cp * (hex ? 16 : 10) + (unsigned long)d;
		if (cp > 0x10ffff)
			break;
	}
	/* libplist would write a NUL or a lone surrogate into the string. */
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return xfail(x, MDM_E_DATA, "character reference &%.*s; is "
		    "not a valid character", (int)n, (const char *)s);
good:
	x->p = semi + 1;
	return 0;
}

static void
trim(const unsigned char **s, size_t *n)
{
	while (*n > 0 && is_ws((*s)[0]))
		(*s)++, (*n)--;
	while (*n > 0 && is_ws((*s)[*n - 1]))
		(*n)--;
}

static int
digit_val(int c, int hex)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (hex && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (hex && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * libplist reads "abc" as 0 and saturates on overflow; refuse both.
 * Negative values go down to INT64_MIN, positive ones up to UINT64_MAX.
 */
static int
check_int(const unsigned char *s, size_t n)
{
	uint64_t v = 0;
	int neg = 0, hex = 0, d;
	size_t i = 0;

	trim(&s, &n);
	if (n > 0 && (s[0] == '-' || s[0] == '+'))
		neg = s[0] == '-', i = 1;
	if (i == 0 && n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		hex = 1, i = 2;
	if (i == n)
		return -1;
	for (; i < n; i++) {
		if ((d = digit_val(s[i], hex)) == -1)
			return -1;
		if (v > (UINT64_MAX - (uint64_t)d) / (hex ? 16 : 10))
			return -1;
		v = v * (hex ? 16 : 10) + (uint64_t)d;
	}
	if (neg && v > (uint64_t)INT64_MAX + 1)
		return -1;
	return 0;
}

static int
check_real(const unsigned char *s, size_t n)
{
	char tmp[128], *endp;

	trim(&s, &n);
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	(void)strtod(tmp, &endp);
	return endp == tmp + n ? 0 : -1;
}

/*
 * Apple writes YYYY-MM-DDTHH:MM:SSZ; libplist writes years before 1000
 * without leading zeros and reads both.  Anything else it guesses at.
 */
static int
check_date(const unsigned char *s, size_t n)
{
	static const char pat[] = "-dd-ddTdd:dd:ddZ";
	size_t i, y;
	int mo, dd, hh, mi, ss;

	trim(&s, &n);
	for (y = 0; y < n && y < 5 && s[y] >= '0' && s[y] <= '9'; y++)
		;
	if (y < 1 || y > 4 || n != y + sizeof(pat) - 1)
		return -1;
	/* Year 0 has no binary form the check below accepts. */
	for (i = 0; i < y && s[i] == '0'; i++)
		;
	if (i == y)
		return -1;
	s += y;
	for (i = 0; i < sizeof(pat) - 1; i++)
		if (pat[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pat[i])
			return -1;
#define D2(o) ((s[o] - '0') * 10 + (s[(o) + 1] - '0'))
	mo = D2(1), dd = D2(4), hh = D2(7), mi = D2(10), ss = D2(13);
#undef D2
	if (mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 ||
	    ss > 60)
		return -1;
	/*
	 * libplist rolls a leap second into the next minute; on the last
	 * minute of 9999 that is year 10000, which no plist can hold.
	 */
	if (ss == 60 && y == 4 && memcmp(s - 4, "9999-12-31T23:59", 16) == 0)
		return -1;
	return 0;
}

/* libplist drops data it cannot decode whole without a word. */
static int
check_base64(const unsigned char *s, size_t n)
{
	size_t i, q = 0, pad = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (is_ws(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0)
			return -1;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')
			q++;
		else
			return -1;
	}
	return pad <= 2 && (q + pad) % 4 == 0 ? 0 : -1;
}

/* The content of a leaf element up to and including its end tag. */
static int
read_leaf(struct xscan *x, enum xel el)
{
	const unsigned char *s = x->p;
	int text = el == X_STRING || el == X_KEY;
	int closing, selfclose, bad;
	enum xel end;
	size_t n;

	while (x->p < x->end) {
		if (*x->p == '<') {
			if (starts(x, "</"))
				break;
			if (text && starts(x, "<![CDATA[")) {
				if (skip_past(x, "]]>") == -1)
					return xfail(x, MDM_E_DATA,
					    "unterminated CDATA section");
				continue;
			}
			return xfail(x, MDM_E_DATA, "markup inside <%s>",
			    xnames[el]);
		}
		if (*x->p == '&') {
			if (!text)
				return xfail(x, MDM_E_DATA,
				    "entity reference inside <%s>", xnames[el]);
			if (read_entity(x) == -1)
				return -1;
			continue;
		}
		x->p++;
	}
	if (x->p == x->end)
		return xfail(x, MDM_E_DATA, "truncated inside <%s>",
		    xnames[el]);
	n = (size_t)(x->p - s);
	if (read_tag(x, &end, &closing, &selfclose) == -1)
		return -1;
	if (end != el)
		return xfail(x, MDM_E_DATA, "</%s> closes <%s>", xnames[end],
		    xnames[el]);
	switch (el) {
	case X_TRUE:
	case X_FALSE:
		trim(&s, &n);
		bad = n != 0;
		break;
	case X_INTEGER:
		bad = check_int(s, n);
		break;
	case X_REAL:
		bad = check_real(s, n);
		break;
	case X_DATE:
		bad = check_date(s, n);
		break;
	case X_DATA:
		bad = check_base64(s, n);
		break;
	default:
		bad = 0;
		break;
	}
	if (bad)
		return xfail(x, MDM_E_DATA, "malformed <%s> value", xnames[el]);
	return 0;
}

/*
 * Moves past a processing instruction or DOCTYPE up to its closing lit.
 * libplist reads quoted literals there and ends the declaration at the
 * first lit outside them; so that the two agree whatever it does with
 * quotes, a literal must be closed and hold none of < > ? [, and no <
 * or [ may stand outside one.  -1 (and x->err set) otherwise.
 */
static int
skip_decl(struct xscan *x, const char *lit, const char *what)
{
	unsigned char q;

	while (x->p < x->end) {
		if (starts(x, lit)) {
			x->p += strlen(lit);
			return 0;
		}
		if (*x->p == '"' || *x->p == '\'') {
			q = *x->p++;
			while (x->p < x->end && *x->p != q) {
				if (strchr("<>?[", *x->p) != NULL)
					return xfail(x, MDM_E_DATA, "markup "
					    "character inside a quoted literal "
					    "of the %s", what);
				x->p++;
			}
			if (x->p == x->end)
				break;
			x->p++;
			continue;
		}
		if (*x->p == '[')
			return xfail(x, MDM_E_DATA, "DOCTYPE internal subsets "
			    "and entity declarations are not allowed");
		if (*x->p == '<')
			return xfail(x, MDM_E_DATA, "markup inside the %s",
			    what);
		x->p++;
	}
	return xfail(x, MDM_E_DATA, "unterminated %s", what);
}

/* Before <plist>: whitespace, the XML declaration, comments, DOCTYPE. */
static int
read_prolog(struct xscan *x)
{
	enum xel el;
	int closing, selfclose;

	for (;;) {
		skip_ws(x);
		if (x->p == x->end)
			return xfail(x, MDM_E_DATA, "no <plist> element");
		if (starts(x, "<?")) {
			x->p += 2;
			if (skip_decl(x, "?>", "processing instruction") ==
			    -1)
				return -1;
		} else if (starts(x, "<!--")) {
			if (skip_past(x, "-->") == -1)
				return xfail(x, MDM_E_DATA,
				    "unterminated comment");
		} else if (starts(x, "<!DOCTYPE")) {
			/*
			 * An internal subset is where entities are declared;
			 * Apple never sends one, and refusing it (skip_decl
			 * does) rules out entity expansion whatever the
			 * parser below does.
			 */
			x->p += 9;
			if (skip_decl(x, ">", "DOCTYPE") == -1)
				return -1;
		} else if (starts(x, "<!"))
			return xfail(x, MDM_E_DATA,
			    "markup declarations are not allowed");
		else if (*x->p == '<') {
			if (read_tag(x, &el, &closing, &selfclose) == -1)
				return -1;
			if (el != X_PLIST || closing)
				return xfail(x, MDM_E_DATA,
				    "top element is not <plist>");
			if (selfclose)
				return xfail(x, MDM_E_DATA,
				    "<plist> holds no value");
			x->stk[0].el = X_PLIST;
			x->stk[0].want_value = 1;
			x->stk[0].want_key = 0;
			x->top = 1;
			return 0;
		} else
			return xfail(x, MDM_E_DATA, "text before <plist>");
	}
}

/* Places a child element in its parent: dict keys and values alternate. */
static int
place_child(struct xscan *x, enum xel el)
{
	struct xframe *f = &x->stk[x->top - 1];

	if (el == X_PLIST)
		return xfail(x, MDM_E_DATA, "nested <plist>");
	if (f->el == X_DICT) {
		if (f->want_key && el != X_KEY)
			return xfail(x, MDM_E_DATA, "dict value without a key");
		if (!f->want_key && el == X_KEY)
			return xfail(x, MDM_E_DATA, "dict key without a value");
		f->want_key = !f->want_key;
	} else if (el == X_KEY)
		return xfail(x, MDM_E_DATA, "<key> outside a dict");
	else if (f->el == X_PLIST) {
		if (!f->want_value)
			return xfail(x, MDM_E_DATA,
			    "more than one value in <plist>");
		f->want_value = 0;
	}
	if (++x->nodes > MDM_PLIST_MAX_NODES)
		return xfail(x, MDM_E_TOOBIG, "more than %u values",
		    MDM_PLIST_MAX_NODES);
	return 0;
}

static int
xml_check(const unsigned char *data, size_t len, struct mdm_err *e)
{
	struct xscan x;
	struct xframe *f;
	enum xel el;
	int closing, selfclose;
	size_t bad;

	memset(&x, 0, sizeof(x));
	x.start = x.p = data;
	x.end = data + len;
	x.e = e;
	if ((bad = utf8_bad(data, len)) != 0) {
		x.p = data + bad - 1;
		return xfail(&x, MDM_E_DATA, "%s at byte %zu",
		    data[bad - 1] == 0 ? "NUL byte" : "invalid UTF-8", bad - 1);
	}
	if (read_prolog(&x) == -1)
		return -1;
	while (x.top > 0) {
		skip_ws(&x);
		f = &x.stk[x.top - 1];
		if (x.p == x.end)
			return xfail(&x, MDM_E_DATA, "truncated: <%s> not closed",
			    xnames[f->el]);
		if (starts(&x, "<!--")) {
			if (skip_past(&x, "-->") == -1)
				return xfail(&x, MDM_E_DATA,
				    "unterminated comment");
			continue;
		}
		if (*x.p != '<')
			return xfail(&x, MDM_E_DATA, "text outside a value");
		if (starts(&x, "<!") || starts(&x, "<?"))
			return xfail(&x, MDM_E_DATA, "markup inside <%s>",
			    xnames[f->el]);
		if (read_tag(&x, &el, &closing, &selfclose) == -1)
			return -1;
		if (closing) {
			if (el != f->el)
				return xfail(&x, MDM_E_DATA,
				    "</%s> closes <%s>", xnames[el],
				    xnames[f->el]);
			if (f->el == X_DICT && !f->want_key)
				return xfail(&x, MDM_E_DATA,
				    "dict key without a value");
			if (f->el == X_PLIST && f->want_value)
				return xfail(&x, MDM_E_DATA,
				    "<plist> holds no value");
			x.top--;
			continue;
		}
		if (place_child(&x, el) == -1)
			return -1;
		if (el == X_DICT || el == X_ARRAY) {
			if (selfclose)
				continue;
			if (x.top > MDM_PLIST_MAX_DEPTH)
				return xfail(&x, MDM_E_TOOBIG,
				    "nested deeper than %d levels",
				    MDM_PLIST_MAX_DEPTH);
			f = &x.stk[x.top++];
			f->el = el;
			f->want_key = el == X_DICT;
			f->want_value = 0;
			continue;
		}
		if (selfclose) {
			/* libplist 2.2 refuses <key/> and reads the rest as 0. */
			if (el != X_TRUE && el != X_FALSE && el != X_STRING &&
			    el != X_DATA)
				return xfail(&x, MDM_E_DATA, "empty <%s/>",
				    xnames[el]);
			continue;
		}
		if (read_leaf(&x, el) == -1)
			return -1;
	}
	for (;;) {
		skip_ws(&x);
		if (x.p == x.end)
			return 0;
		if (starts(&x, "<!--")) {
			if (skip_past(&x, "-->") == -1)
				return xfail(&x, MDM_E_DATA,
				    "unterminated comment");
		} else if (starts(&x, "<?")) {
			if (skip_past(&x, "?>") == -1)
				return xfail(&x, MDM_E_DATA,
				    "unterminated processing instruction");
		} else
			return xfail(&x, MDM_E_DATA, "text after </plist>");
	}
}

/*
 * Binary check.  bplist00 layout: the 8-byte magic, objects, an offset
 * table with one big-endian offset per object, and a 32-byte trailer
 * giving the offset and reference widths, the object count, the root
 * object and where the offset table starts.
 */

struct bobj {
	uint64_t bytes;		/* payload bytes in the expanded subtree */
	uint32_t nodes;		/* values and keys in the expanded subtree */
	uint8_t state;		/* 0 unseen, 1 on the current path, 2 done */
	uint8_t height;		/* dicts/arrays on the longest path down */
};

/*
 * Writers share scalars but not dicts or arrays, so a real binary plist
 * holds fewer values than bytes.  Only a hand-made file sharing whole
 * containers expands further, and each value costs libplist work.
 */
#define BIN_VALUES_PER_BYTE	8

struct bscan {
	const unsigned char *d;
	size_t len;
	size_t max_nodes;	/* the lesser of the cap and the byte ratio */
	uint64_t table;		/* offset table start; objects end before it */
	uint64_t nobj;
	unsigned osize, rsize;
	struct bobj *obj;
	struct mdm_err *e;
};

static uint64_t
be_uint(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

static int
bfail(struct bscan *b, enum mdm_errc code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
bfail(struct bscan *b, enum mdm_errc code, const char *fmt, ...)
{
	char msg[MDM_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mdm_err_set(b->e, code, "binary property list: %s", msg);
}

/*
 * An object's count: the marker's low nibble, or 0xF and an integer
 * object right after the marker.  *hdr is the marker plus that integer.
 */
static int
obj_count(struct bscan *b, uint64_t off, uint64_t *count, uint64_t *hdr)
{
	unsigned low = b->d[off] & 0x0f, w;

	if (low != 0x0f) {
		*count = low;
		*hdr = 1;
		return 0;
	}
	if (off + 2 > b->table || (b->d[off + 1] & 0xf0) != 0x10 ||
	    (b->d[off + 1] & 0x0f) > 3)
		return bfail(b, MDM_E_DATA, "bad length at offset %llu",
		    (unsigned long long)off);
	w = 1u << (b->d[off + 1] & 0x0f);
	if (off + 2 + w > b->table)
		return bfail(b, MDM_E_DATA, "bad length at offset %llu",
		    (unsigned long long)off);
	*count = be_uint(b->d + off + 2, w);
	*hdr = 2 + w;
	return 0;
}

static int
add_sat(struct bscan *b, struct bobj *o, const struct bobj *c)
{
	o->nodes += c->nodes;
	o->bytes += c->bytes;
	if (o->nodes > b->max_nodes)
		return bfail(b, MDM_E_TOOBIG, "expands to more than %zu values",
		    b->max_nodes);
	if (o->bytes > MDM_PLIST_MAX_EXPANDED)
		return bfail(b, MDM_E_TOOBIG, "expands to more than %u bytes",
		    MDM_PLIST_MAX_EXPANDED);
	return 0;
}

static int bcheck_obj(struct bscan *, uint64_t, int);

/* Checks reference i of the container at payload p and returns its index. */
static int
bref(struct bscan *b, const unsigned char *p, uint64_t i, uint64_t *idx)
{
	*idx = be_uint(p + i * b->rsize, b->rsize);
	if (*idx >= b->nobj)
		return bfail(b, MDM_E_DATA, "object reference %llu out of range",
		    (unsigned long long)*idx);
	return 0;
}

static int
bcheck_container(struct bscan *b, uint64_t idx, uint64_t off, int depth)
{
	struct bobj *o = &b->obj[idx];
	uint64_t count, hdr, nrefs, i, ref;
	const unsigned char *p;
	int isdict = (b->d[off] & 0xf0) == 0xd0;
	unsigned kt;

	if (obj_count(b, off, &count, &hdr) == -1)
		return -1;
	if (depth >= MDM_PLIST_MAX_DEPTH)
		return bfail(b, MDM_E_TOOBIG, "nested deeper than %d levels",
		    MDM_PLIST_MAX_DEPTH);
	if (count > MDM_PLIST_MAX_NODES)
		return bfail(b, MDM_E_TOOBIG, "container of %llu items",
		    (unsigned long long)count);
	nrefs = isdict ? 2 * count : count;
	if (nrefs * b->rsize > b->table - off - hdr)
		return bfail(b, MDM_E_DATA, "object %llu runs past its end",
		    (unsigned long long)idx);
	p = b->d + off + hdr;
	o->state = 1;
	o->nodes = 1;
	o->bytes = 0;
	o->height = 1;
	for (i = 0; i < nrefs; i++) {
		if (bref(b, p, i, &ref) == -1)
			return -1;
		if (bcheck_obj(b, ref, depth + 1) == -1)
			return -1;
		if (isdict && i < count) {
			kt = b->d[be_uint(b->d + b->table + ref * b->osize,
			    b->osize)] & 0xf0;
			if (kt != 0x50 && kt != 0x60)
				return bfail(b, MDM_E_DATA,
				    "dict key is not a string");
		}
		if (add_sat(b, o, &b->obj[ref]) == -1)
			return -1;
		if (b->obj[ref].height + 1 > o->height)
			o->height = b->obj[ref].height + 1;
	}
	return 0;
}

static int
bcheck_utf16(const unsigned char *p, uint64_t n)
{
	uint64_t i;
	unsigned u;

	for (i = 0; i < n; i++) {
		u = (unsigned)p[2 * i] << 8 | p[2 * i + 1];
		if (u == 0)
			return -1;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 1 == n)
				return -1;
			u = (unsigned)p[2 * i + 2] << 8 | p[2 * i + 3];
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			i++;
		} else if (u >= 0xdc00 && u <= 0xdfff)
			return -1;
	}
	return 0;
}

static int
bcheck_obj(struct bscan *b, uint64_t idx, int depth)
{
	struct bobj *o = &b->obj[idx];
	uint64_t off, count, hdr, size, room, i;
	unsigned char m;
	double dv;
	uint64_t bits;

	if (o->state == 1)
		return bfail(b, MDM_E_DATA, "object %llu contains itself",
		    (unsigned long long)idx);
	if (o->state == 2) {
		/* Shared: reached again, possibly deeper than before. */
		if (depth + o->height > MDM_PLIST_MAX_DEPTH)
			return bfail(b, MDM_E_TOOBIG,
			    "nested deeper than %d levels",
			    MDM_PLIST_MAX_DEPTH);
		return 0;
	}
	off = be_uint(b->d + b->table + idx * b->osize, b->osize);
	if (off < 8 || off >= b->table)
		return bfail(b, MDM_E_DATA, "object %llu offset out of range",
		    (unsigned long long)idx);
	room = b->table - off;
	m = b->d[off];
	switch (m >> 4) {
	case 0x0:
		if (m != 0x08 && m != 0x09)
			return bfail(b, MDM_E_DATA, "unsupported object type "
			    "0x%02x", m);
		size = 1;
		break;
	case 0x1:
		/* 16-byte integers are how Apple writes values past INT64_MAX. */
		if ((m & 0x0f) > 4)
			return bfail(b, MDM_E_DATA, "bad integer size");
		size = 1 + (1u << (m & 0x0f));
		break;
	case 0x2:
		if ((m & 0x0f) != 2 && (m & 0x0f) != 3)
			return bfail(b, MDM_E_DATA, "bad real size");
		size = 1 + (1u << (m & 0x0f));
		break;
	case 0x3:
		if (m != 0x33)
			return bfail(b, MDM_E_DATA, "bad date marker");
		size = 9;
		if (room >= size) {
			bits = be_uint(b->d + off + 1, 8);
			memcpy(&dv, &bits, sizeof(dv));
			/*
			 * Years 1 to 9999 (seconds from 2001), what an XML
			 * date can say, so XML and binary accept the same.
			 */
			if (!(dv >= -63113904000.0 && dv < 252423993600.0))
				return bfail(b, MDM_E_DATA,
				    "date out of range");
		}
		break;
	case 0x4:
	case 0x5:
	case 0x6:
		if (obj_count(b, off, &count, &hdr) == -1)
			return -1;
		if ((m >> 4) == 0x6 ? count > (room - hdr) / 2 :
		    count > room - hdr)
			return bfail(b, MDM_E_DATA,
			    "object %llu runs past its end",
			    (unsigned long long)idx);
		size = hdr + ((m >> 4) == 0x6 ? 2 * count : count);
		if ((m >> 4) == 0x5) {
			for (i = 0; i < count; i++)
				if (b->d[off + hdr + i] == 0 ||
				    b->d[off + hdr + i] > 0x7f)
					return bfail(b, MDM_E_DATA,
					    "ASCII string holds a NUL or "
					    "non-ASCII byte");
		} else if ((m >> 4) == 0x6 &&
		    bcheck_utf16(b->d + off + hdr, count) == -1)
			return bfail(b, MDM_E_DATA,
			    "UTF-16 string holds a NUL or a lone surrogate");
		o->state = 2;
		o->nodes = 1;
		o->bytes = size;
		o->height = 0;
		return 0;
	case 0xa:
	case 0xd:
		if (bcheck_container(b, idx, off, depth) == -1)
			return -1;
		o->state = 2;
		return 0;
	default:
		return bfail(b, MDM_E_DATA, "unsupported object type 0x%02x",
		    m);
	}
	if (size > room)
		return bfail(b, MDM_E_DATA, "object %llu runs past its end",
		    (unsigned long long)idx);
	o->state = 2;
	o->nodes = 1;
	o->bytes = size;
	o->height = 0;
	return 0;
}

static int
bin_check(const unsigned char *d, size_t len, struct mdm_err *e)
{
	struct bscan b;
	const unsigned char *t;
	uint64_t root;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	b.d = d;
	b.len = len;
	b.e = e;
	b.max_nodes = len < MDM_PLIST_MAX_NODES / BIN_VALUES_PER_BYTE ?
	    len * BIN_VALUES_PER_BYTE : MDM_PLIST_MAX_NODES;
	if (len < 8 + 1 + 32 || memcmp(d, "bplist00", 8) != 0)
		return bfail(&b, MDM_E_DATA, len < 8 + 1 + 32 ?
		    "too short" : "unsupported version");
	t = d + len - 32;
	b.osize = t[6];
	b.rsize = t[7];
	b.nobj = be_uint(t + 8, 8);
	root = be_uint(t + 16, 8);
	b.table = be_uint(t + 24, 8);
	if (b.osize < 1 || b.osize > 8 || b.rsize < 1 || b.rsize > 8)
		return bfail(&b, MDM_E_DATA, "bad offset or reference size");
	if (b.nobj == 0)
		return bfail(&b, MDM_E_DATA, "no objects");
	if (b.nobj > MDM_PLIST_MAX_NODES)
		return bfail(&b, MDM_E_TOOBIG, "more than %u objects",
		    MDM_PLIST_MAX_NODES);
	if (root >= b.nobj)
		return bfail(&b, MDM_E_DATA, "root object out of range");
	if (b.table < 9 || b.table > len - 32 ||
	    b.nobj * b.osize > len - 32 - b.table)
		return bfail(&b, MDM_E_DATA, "offset table out of range");
	if ((b.obj = calloc(b.nobj, sizeof(*b.obj))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	if (bcheck_obj(&b, root, 0) == -1)
		goto out;
	rc = 0;
out:
	free(b.obj);
	return rc;
}

int
mdm_plist_parse(const void *data, size_t len, plist_t *out,
    struct mdm_err *e)
{
	const unsigned char *d = data;
	plist_t p = NULL;
	int rc = -1;

	*out = NULL;
	if (d == NULL || len == 0) {
		mdm_err_set(e, MDM_E_DATA, "empty property list");
		goto out;
	}
	if (len > MDM_CAP_PLIST) {
		mdm_err_set(e, MDM_E_TOOBIG, "property list larger than the "
		    "limit of %u bytes", MDM_CAP_PLIST);
		goto out;
	}
	if (len >= 6 && memcmp(d, "bplist", 6) == 0) {
		if (bin_check(d, len, e) == -1)
			goto out;
		plist_from_bin((const char *)d, (uint32_t)len, &p);
		if (p == NULL) {
			mdm_err_set(e, MDM_E_DATA,
			    "malformed binary property list");
			goto out;
		}
	} else {
		/* libplist 2.2 refuses a byte order mark; CoreFoundation not. */
		if (len >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
			d += 3, len -= 3;
		if (len >= 2 && ((d[0] == 0xfe && d[1] == 0xff) ||
		    (d[0] == 0xff && d[1] == 0xfe))) {
			mdm_err_set(e, MDM_E_DATA,
			    "UTF-16 property lists are not supported");
			goto out;
		}
		if (xml_check(d, len, e) == -1)
			goto out;
		plist_from_xml((const char *)d, (uint32_t)len, &p);
		if (p == NULL) {
			mdm_err_set(e, MDM_E_DATA,
			    "malformed XML property list");
			goto out;
		}
	}
	*out = p;
	p = NULL;
	rc = 0;
out:
	plist_free(p);
	return rc;
}

int
mdm_plist_parse_dict(const void *data, size_t len, plist_t *out,
    struct mdm_err *e)
{
	const char *t;

	if (mdm_plist_parse(data, len, out, e) == -1)
		return -1;
	if (plist_get_node_type(*out) != PLIST_DICT) {
		t = mdm_plist_type_name(*out);
		mdm_err_set(e, MDM_E_DATA, "property list top level is %s %s, "
		    "not a dict", strchr("aeiou", t[0]) != NULL ? "an" : "a", t);
		plist_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
mdm_plist_parse_file(const char *path, plist_t *out, struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	*out = NULL;
	mdm_buf_init(&b, MDM_CAP_PLIST);
	if (mdm_buf_read_file(&b, path, e) == -1)
		goto out;
	if (mdm_plist_parse(b.data, b.len, out, e) == -1) {
		mdm_err_prefix(e, "%s", strcmp(path, "-") == 0 ? "stdin" :
		    path);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release(&b);
	return rc;
}

int
mdm_plist_to_xml(plist_t p, struct mdm_buf *out, struct mdm_err *e)
{
	char *s = NULL;
	uint32_t n = 0;
	int rc;

	if (p == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "no property list to write");
	plist_to_xml(p, &s, &n);
	if (s == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE,
		    "cannot write property list as XML");
	rc = mdm_buf_append(out, s, n, e);
	free(s);
	return rc;
}

int
mdm_plist_to_bin(plist_t p, struct mdm_buf *out, struct mdm_err *e)
{
	char *s = NULL;
	uint32_t n = 0;
	int rc;

	if (p == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "no property list to write");
	plist_to_bin(p, &s, &n);
	if (s == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE,
		    "cannot write property list as binary");
	rc = mdm_buf_append(out, s, n, e);
	free(s);
	return rc;
}

const char *
mdm_plist_as_string(plist_t node)
{
	if (node == NULL || plist_get_node_type(node) != PLIST_STRING)
		return NULL;
	return plist_get_string_ptr(node, NULL);
}

/*
 * libplist 2.2 keeps integers as uint64 with a private flag for values
 * above INT64_MAX, so a set top bit is either a negative number or one
 * of those.  Only the writers see the flag: ask the XML writer, which
 * prints the first with a minus sign.  Rare, so the cost does not matter.
 */
static int
uint_is_negative(plist_t node)
{
	char *s = NULL;
	uint32_t n = 0;
	int neg;

	plist_to_xml(node, &s, &n);
	neg = s != NULL && strstr(s, "<integer>-") != NULL;
	free(s);
	return neg;
}

int
mdm_plist_as_int(plist_t node, int64_t *out)
{
	uint64_t u = 0;
	double d = 0;

	if (node == NULL)
		return -1;
	switch (plist_get_node_type(node)) {
	case PLIST_UINT:
		plist_get_uint_val(node, &u);
		if (u > (uint64_t)INT64_MAX && !uint_is_negative(node))
			return -1;
		/* Two's complement: the value was stored from an int64. */
		*out = u > (uint64_t)INT64_MAX ?
		    -(int64_t)(~u) - 1 : (int64_t)u;
		return 0;
	case PLIST_REAL:
		plist_get_real_val(node, &d);
		/* Written so that NaN fails too; the cast is then defined. */
		if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
			return -1;
		if ((double)(int64_t)d != d)
			return -1;
		*out = (int64_t)d;
		return 0;
	default:
		return -1;
	}
}

int
mdm_plist_as_real(plist_t node, double *out)
{
	int64_t i;

	if (node == NULL)
		return -1;
	if (plist_get_node_type(node) == PLIST_REAL) {
		plist_get_real_val(node, out);
		return 0;
	}
	if (plist_get_node_type(node) == PLIST_UINT &&
	    mdm_plist_as_int(node, &i) == 0) {
		*out = (double)i;
		return 0;
	}
	return -1;
}

int
mdm_plist_as_bool(plist_t node, int *out)
{
	uint8_t v = 0;

	if (node == NULL || plist_get_node_type(node) != PLIST_BOOLEAN)
		return -1;
	plist_get_bool_val(node, &v);
	*out = v != 0;
	return 0;
}

const unsigned char *
mdm_plist_as_data(plist_t node, size_t *len)
{
	static const unsigned char empty[1];
	const char *p;
	uint64_t n = 0;

	*len = 0;
	if (node == NULL || plist_get_node_type(node) != PLIST_DATA)
		return NULL;
	p = plist_get_data_ptr(node, &n);
	if (p == NULL || n == 0)
		return empty;
	*len = (size_t)n;
	return (const unsigned char *)p;
}

static plist_t
dict_item(plist_t dict, const char *key)
{
	if (dict == NULL || key == NULL ||
	    plist_get_node_type(dict) != PLIST_DICT)
		return NULL;
	return plist_dict_get_item(dict, key);
}

const char *
mdm_plist_get_string(plist_t dict, const char *key)
{
	return mdm_plist_as_string(dict_item(dict, key));
}

int
mdm_plist_get_int(plist_t dict, const char *key, int64_t *out)
{
	return mdm_plist_as_int(dict_item(dict, key), out);
}

int
mdm_plist_get_real(plist_t dict, const char *key, double *out)
{
	return mdm_plist_as_real(dict_item(dict, key), out);
}

int
mdm_plist_get_bool(plist_t dict, const char *key, int *out)
{
	return mdm_plist_as_bool(dict_item(dict, key), out);
}

const unsigned char *
mdm_plist_get_data(plist_t dict, const char *key, size_t *len)
{
	return mdm_plist_as_data(dict_item(dict, key), len);
}

plist_t
mdm_plist_get_dict(plist_t dict, const char *key)
{
	plist_t v = dict_item(dict, key);

	return v != NULL && plist_get_node_type(v) == PLIST_DICT ? v : NULL;
}

plist_t
mdm_plist_get_array(plist_t dict, const char *key)
{
	plist_t v = dict_item(dict, key);

	return v != NULL && plist_get_node_type(v) == PLIST_ARRAY ? v : NULL;
}

plist_t
mdm_plist_get_path(plist_t root, const char *dotted)
{
	char comp[256];
	const char *s, *dot;
	plist_t cur = root;
	size_t n, i;
	unsigned long idx;

	if (root == NULL || dotted == NULL)
		return NULL;
	for (s = dotted; cur != NULL; s = dot + 1) {
		if ((dot = strchr(s, '.')) == NULL)
			dot = s + strlen(s);
		n = (size_t)(dot - s);
		if (n == 0 || n >= sizeof(comp))
			return NULL;
		memcpy(comp, s, n);
		comp[n] = '\0';
		switch (plist_get_node_type(cur)) {
		case PLIST_DICT:
			cur = plist_dict_get_item(cur, comp);
			break;
		case PLIST_ARRAY:
			idx = 0;
			for (i = 0; i < n; i++) {
				if (comp[i] < '0' || comp[i] > '9' ||
				    idx > UINT32_MAX / 10)
					return NULL;
				idx = idx * 10 + (unsigned long)(comp[i] - '0');
			}
			if (idx >= plist_array_get_size(cur))
				return NULL;
			cur = plist_array_get_item(cur, (uint32_t)idx);
			break;
		default:
			return NULL;
		}
		if (*dot == '\0')
			return cur;
	}
	return NULL;
}

const char *
mdm_plist_type_name(plist_t node)
{
	if (node == NULL)
		return "nothing";
	switch (plist_get_node_type(node)) {
	case PLIST_BOOLEAN:
		return "boolean";
	case PLIST_UINT:
		return "integer";
	case PLIST_REAL:
		return "real";
	case PLIST_STRING:
		return "string";
	case PLIST_ARRAY:
		return "array";
	case PLIST_DICT:
		return "dict";
	case PLIST_DATE:
		return "date";
	case PLIST_DATA:
		return "data";
	case PLIST_KEY:
		return "key";
	case PLIST_UID:
		return "uid";
	default:
		return "unknown";
	}
}

static int
set_item(plist_t dict, const char *key, plist_t v)
{
	if (v == NULL)
		return -1;
	if (dict == NULL || key == NULL ||
	    plist_get_node_type(dict) != PLIST_DICT) {
		plist_free(v);
		return -1;
	}
	plist_dict_set_item(dict, key, v);
	return 0;
}

int
mdm_plist_set_string(plist_t dict, const char *key, const char *val)
{
	if (val == NULL)
		return -1;
	return set_item(dict, key, plist_new_string(val));
}

int
mdm_plist_set_int(plist_t dict, const char *key, int64_t val)
{
	/* A node made from a uint64 is printed signed, so this round-trips. */
	return set_item(dict, key, plist_new_uint((uint64_t)val));
}

int
mdm_plist_set_bool(plist_t dict, const char *key, int val)
{
	return set_item(dict, key, plist_new_bool(val != 0));
}

int
mdm_plist_set_data(plist_t dict, const char *key, const void *p, size_t len)
{
	if (p == NULL && len > 0)
		return -1;
	return set_item(dict, key, plist_new_data(p != NULL ?
	    (const char *)p : "", (uint64_t)len));
}

#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "json.h"
#include "mdm_int.h"

/*
 * jansson recurses once per nesting level up to 2048 and allocates per
 * value; this pass over the raw bytes bounds both before it starts.  It
 * only needs to know where strings are: brackets and commas inside them
 * do not count.  One plus the openings plus the commas is an upper
 * bound on the values jansson will make.
 */
static int
prescan(const unsigned char *s, size_t n, struct mdm_err *e)
{
	size_t i, values = 1, line = 1, col0 = 0;
	int depth = 0, instr = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (instr) {
			if (c == '\\')
				i++;
			else if (c == '"')
				instr = 0;
			continue;
		}
		switch (c) {
		case '\n':
			line++;
			col0 = i + 1;
			break;
		case '"':
			instr = 1;
			break;
		case '[':
		case '{':
			if (++depth > MDM_JSON_MAX_DEPTH)
				return mdm_err_set(e, MDM_E_TOOBIG, "json: line "
				    "%zu column %zu: nested deeper than %d levels",
				    line, i - col0 + 1, MDM_JSON_MAX_DEPTH);
			values++;
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		case ',':
			values++;
			break;
		default:
			break;
		}
		if (values > MDM_JSON_MAX_VALUES)
			return mdm_err_set(e, MDM_E_TOOBIG, "json: line %zu "
			    "column %zu: more than %u values", line,
			    i - col0 + 1, MDM_JSON_MAX_VALUES);
	}
	return 0;
}

int
mdm_json_parse(const void *data, size_t len, json_t **out,
    struct mdm_err *e)
{
	json_error_t je;
	json_t *j;

	*out = NULL;
	if (data == NULL || len == 0)
		return mdm_err_set(e, MDM_E_DATA, "json: empty input");
	if (len > MDM_CAP_JSON)
		return mdm_err_set(e, MDM_E_TOOBIG, "json: larger than the "
		    "limit of %u bytes", MDM_CAP_JSON);
	if (prescan(data, len, e) == -1)
		return -1;
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		/* jansson reports column -1 when it has no position. */
		if (je.line > 0 && je.column > 0)
			return mdm_err_set(e, MDM_E_DATA,
			    "json: line %d column %d: %s", je.line,
			    je.column, je.text);
		return mdm_err_set(e, MDM_E_DATA, "json: %s", je.text);
	}
	*out = j;
	return 0;
}

int
mdm_json_parse_file(const char *path, json_t **out, struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	*out = NULL;
	mdm_buf_init(&b, MDM_CAP_JSON);
	if (mdm_buf_read_file(&b, path, e) == -1)
		goto out;
	if (mdm_json_parse(b.data, b.len, out, e) == -1) {
		mdm_err_prefix(e, "%s", strcmp(path, "-") == 0 ? "stdin" :
		    path);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release(&b);
	return rc;
}

struct dumpctx {
	struct mdm_buf *out;
	struct mdm_err *e;
	int failed;
};

static int
dump_cb(const char *p, size_t n, void *arg)
{
	struct dumpctx *c = arg;

	if (mdm_buf_append(c->out, p, n, c->e) == -1) {
		c->failed = 1;
		return -1;
	}
	return 0;
}

int
mdm_json_dump(const json_t *j, struct mdm_buf *out, size_t flags,
    struct mdm_err *e)
{
	struct dumpctx c = { out, e, 0 };
	size_t start = out->len;

	if (j == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "json: nothing to write");
	flags = (flags & ~(size_t)JSON_MAX_INDENT) | JSON_COMPACT;
	if (json_dump_callback(j, dump_cb, &c, flags) == -1) {
		/* Leave the buffer as it was: no half record in the output. */
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		if (!c.failed)
			mdm_err_set(e, MDM_E_USAGE, "json: cannot encode value");
		return -1;
	}
	return 0;
}

static json_t *
member(const json_t *obj, const char *key)
{
	if (obj == NULL || key == NULL || !json_is_object(obj))
		return NULL;
	return json_object_get(obj, key);
}

const char *
mdm_json_get_string(const json_t *obj, const char *key)
{
	json_t *v = member(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
mdm_json_get_int(const json_t *obj, const char *key, int64_t *out)
{
	json_t *v = member(obj, key);

	if (!json_is_integer(v))
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int
mdm_json_get_bool(const json_t *obj, const char *key, int *out)
{
	json_t *v = member(obj, key);

	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 0;
}

json_t *
mdm_json_get_object(const json_t *obj, const char *key)
{
	json_t *v = member(obj, key);

	return json_is_object(v) ? v : NULL;
}

json_t *
mdm_json_get_array(const json_t *obj, const char *key)
{
	json_t *v = member(obj, key);

	return json_is_array(v) ? v : NULL;
}

/*
 * json: reading and writing JSON (DEP responses, webhook events, the
 * admin API, the tools' --json output) on top of jansson, whose json_t
 * the callers use directly.
 *
 * Parsing is bounded before jansson sees the bytes: at most MDM_CAP_JSON
 * bytes, MDM_JSON_MAX_DEPTH nested arrays/objects and about
 * MDM_JSON_MAX_VALUES values.  Duplicate object keys, invalid UTF-8 and
 * \u0000 in strings are refused, so every string in a parsed tree is a
 * NUL-free UTF-8 C string.  The top level must be an object or array.
 *
 * Getters never crash on a NULL or non-object argument, and a missing
 * key fails the same way as a value of the wrong type.  Returned
 * pointers are borrowed from the tree.
 */
#ifndef MDM_JSON_H
#define MDM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

/* A DEP fetch page of 1000 devices is about half a megabyte. */
#define MDM_CAP_JSON		(8u << 20)
#define MDM_JSON_MAX_DEPTH	64
#define MDM_JSON_MAX_VALUES	(1u << 18)

/*
 * Parses data.  On success *out is owned (json_decref); on failure it is
 * NULL and e says why, with line and column: MDM_E_TOOBIG over a cap,
 * else MDM_E_DATA.
 */
int mdm_json_parse(const void *data, size_t len, json_t **out,
    struct mdm_err *e);

/* Reads path ("-" is stdin) capped at MDM_CAP_JSON and parses it. */
int mdm_json_parse_file(const char *path, json_t **out, struct mdm_err *e);

/*
 * Appends j to out as one line without a trailing newline (JSON Lines
 * callers add it).  flags are jansson's dump flags; JSON_COMPACT is
 * always added and JSON_INDENT is ignored, so the output stays one line.
 * A non-container j needs JSON_ENCODE_ANY, as in jansson.
 */
int mdm_json_dump(const json_t *j, struct mdm_buf *out, size_t flags,
    struct mdm_err *e);

const char *mdm_json_get_string(const json_t *obj, const char *key); /* borrowed */
/* Integers only: 1.0 is a real in JSON and fails. */
int mdm_json_get_int(const json_t *obj, const char *key, int64_t *out);
int mdm_json_get_bool(const json_t *obj, const char *key, int *out);
json_t *mdm_json_get_object(const json_t *obj, const char *key); /* borrowed */
json_t *mdm_json_get_array(const json_t *obj, const char *key);  /* borrowed */

#endif

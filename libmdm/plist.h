/*
 * plist: reading and writing Apple property lists (check-ins, command
 * results, commands, profiles) on top of libplist 2.2, whose plist_t the
 * callers use directly for anything these helpers do not cover.
 *
 * libplist 2.2 trusts its input: its parsers recurse, copy a shared
 * binary object once per reference, and quietly turn bad values into
 * zero.  So every byte string is checked here before libplist sees it:
 *  - XML must be well-formed UTF-8 made only of the plist elements, with
 *    no DOCTYPE internal subset or entity declarations, dict keys and
 *    values alternating, and <integer>, <real>, <date> and <data> text
 *    that libplist can read without guessing;
 *  - binary must start with "bplist00", have a trailer and offset table
 *    that lie inside the data, objects of known types that end before
 *    the offset table, references in range and free of cycles, and
 *    strings without NULs.
 * Both forms are held to MDM_PLIST_MAX_DEPTH nested dicts/arrays and
 * MDM_PLIST_MAX_NODES values and keys, and input to MDM_CAP_PLIST bytes.
 * Binary values are counted after shared objects are expanded, and may
 * number at most 8 per input byte: real writers share strings and
 * numbers but never whole dicts or arrays, so only a crafted file (a
 * "billion laughs" of arrays) comes near that.  A tree that
 * comes out of mdm_plist_parse therefore has strings that are valid,
 * NUL-free UTF-8 and is shallow enough for libplist's recursive walkers.
 *
 * Getters never crash on a NULL or non-dict argument: they fail, and a
 * missing key and a value of the wrong type fail the same way.  Pointers
 * they return are borrowed from the tree and live until it is freed or
 * that entry is replaced.
 */
#ifndef MDM_PLIST_H
#define MDM_PLIST_H

#include <stddef.h>
#include <stdint.h>

#include <plist/plist.h>

#include "buf.h"
#include "err.h"

/* Apple's MDM plists nest 4 or 5 deep; a profile inside a result, 8. */
#define MDM_PLIST_MAX_DEPTH	32
/* A large InstalledApplicationList is a few tens of thousands. */
#define MDM_PLIST_MAX_NODES	(1u << 18)
/*
 * Binary plists share objects, so a small file can name the same big
 * string many times; this bounds the bytes the expanded tree may hold.
 */
#define MDM_PLIST_MAX_EXPANDED	(4u * MDM_CAP_PLIST)

/*
 * Parses an XML or binary ("bplist00") property list of any top-level
 * type.  A UTF-8 byte order mark before XML is skipped.  On success *out
 * is an owned tree (free with plist_free); on failure *out is NULL and
 * e says why: MDM_E_TOOBIG over the size, depth or node caps, else
 * MDM_E_DATA.
 */
int mdm_plist_parse(const void *data, size_t len, plist_t *out,
    struct mdm_err *e);

/* Like mdm_plist_parse, and the top level must be a dict. */
int mdm_plist_parse_dict(const void *data, size_t len, plist_t *out,
    struct mdm_err *e);

/*
 * Reads path ("-" is stdin) through a struct mdm_buf capped at
 * MDM_CAP_PLIST and parses it; *out is owned.  Messages name the file.
 */
int mdm_plist_parse_file(const char *path, plist_t *out, struct mdm_err *e);

/*
 * Append the serialised tree to out (which keeps its own cap).  XML
 * output is libplist's: tab-indented with Apple's DOCTYPE.
 */
int mdm_plist_to_xml(plist_t p, struct mdm_buf *out, struct mdm_err *e);
int mdm_plist_to_bin(plist_t p, struct mdm_buf *out, struct mdm_err *e);

/*
 * Node accessors, for array items and path results.  Each fails (NULL or
 * -1) when node is NULL or of another type.
 *
 * Integers: libplist 2.2 keeps a 64-bit value and a flag for unsigned
 * values above INT64_MAX; those do not fit and fail.  A <real> holding a
 * whole number in int64_t range is accepted too, because profiles carry
 * PayloadVersion as <real>1</real> as often as <integer>1</integer>.
 * Reals accept integers as well.  Booleans accept only <true/>/<false/>.
 * Data may be empty: then the pointer is to a static empty byte, never
 * NULL.
 */
const char *mdm_plist_as_string(plist_t node);		/* borrowed */
int mdm_plist_as_int(plist_t node, int64_t *out);
int mdm_plist_as_real(plist_t node, double *out);
int mdm_plist_as_bool(plist_t node, int *out);
const unsigned char *mdm_plist_as_data(plist_t node, size_t *len); /* borrowed */

/* Typed getters on a dict: the accessors above applied to dict[key]. */
const char *mdm_plist_get_string(plist_t dict, const char *key); /* borrowed */
int mdm_plist_get_int(plist_t dict, const char *key, int64_t *out);
int mdm_plist_get_real(plist_t dict, const char *key, double *out);
int mdm_plist_get_bool(plist_t dict, const char *key, int *out);
const unsigned char *mdm_plist_get_data(plist_t dict, const char *key,
    size_t *len);						/* borrowed */
plist_t mdm_plist_get_dict(plist_t dict, const char *key);	/* borrowed */
plist_t mdm_plist_get_array(plist_t dict, const char *key);	/* borrowed */

/*
 * Follows a dotted path from root: "Command.RequestType".  A component
 * that is all digits indexes an array ("ProfileList.0.PayloadUUID").
 * Keys that themselves hold a dot cannot be reached this way; chain
 * mdm_plist_get_dict instead.  Returns the borrowed node, or NULL.
 */
plist_t mdm_plist_get_path(plist_t root, const char *dotted);

/* "dict", "array", "string", ...: for messages.  Static storage. */
const char *mdm_plist_type_name(plist_t node);

/*
 * Set dict[key] to a new value, replacing any old one (whose borrowed
 * pointers then dangle).  Return -1 when dict is not a dict or key is
 * NULL.  Data is copied.
 */
int mdm_plist_set_string(plist_t dict, const char *key, const char *val);
int mdm_plist_set_int(plist_t dict, const char *key, int64_t val);
int mdm_plist_set_bool(plist_t dict, const char *key, int val);
int mdm_plist_set_data(plist_t dict, const char *key, const void *p,
    size_t len);

#endif

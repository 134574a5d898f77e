/*
 * file: the few file operations every tool needs to get right, done once.
 * A file that matters after a crash (a key, a certificate, a profile) is
 * written to a temp file in the same directory, fsynced and renamed over
 * its name, so a reader sees the old contents or the new ones, never a
 * torn file, and a crash leaves at worst a dot-named temp file behind.
 * Key files are read only when no one but their owner can touch them.
 *
 * Invariants: a file is never, even for a moment, more open than the mode
 * its caller asked for; paths are never followed through a symlink where a
 * key is concerned; every path is capped at PATH_MAX.
 */
#ifndef MDM_FILE_H
#define MDM_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

enum {
	MDM_FILE_NOREPLACE = 1,	/* fail with MDM_E_EXISTS if path exists */
};

/*
 * Writes len bytes of data to path atomically.  The temp file is created
 * beside path (".NAME.XXXXXXXXXXXX.tmp", O_CREAT|O_EXCL|O_NOFOLLOW) with
 * mode narrowed by the umask, and is set to exactly mode before it gets
 * its name, so the result has the mode asked for whatever the umask and
 * is never wider on the way.  The data is fsynced, renamed over path (with
 * NOREPLACE: hard-linked, or renameat2 RENAME_NOREPLACE where links are
 * not supported, so a racing writer cannot be replaced), and the directory
 * is fsynced.  A symlink at path is replaced, never followed.
 *
 * On any failure before the rename the temp file is removed and path is
 * untouched.  Only a failing fsync of the directory after the rename is
 * reported with path already holding the new contents (MDM_E_IO).
 * data is not copied, so the caller wipes key material as usual.
 */
int mdm_file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, unsigned flags, struct mdm_err *e);

/*
 * Refuses a key file that group or others may read, write or execute
 * (any bit of 077), a symlink, anything but a regular file, or (unless
 * running as root, who administers a state directory another user owns)
 * a file not owned by the effective user: MDM_E_PERM, with a message that
 * names the file and the fix ("chmod 600 FILE").  Missing: MDM_E_NOINPUT.
 */
int mdm_file_check_private(const char *path, struct mdm_err *e);

/*
 * Opens path with O_NOFOLLOW, applies mdm_file_check_private's rules to
 * the open file (fstat, so the file checked is the file read) and appends
 * its contents to out, within out->cap (MDM_E_TOOBIG, nothing read).
 * The bytes pass through no other heap or stack copy that is not wiped;
 * on failure out is left as it was.  Free out with
 * mdm_buf_release_secret.
 */
int mdm_file_read_private(const char *path, struct mdm_buf *out,
    struct mdm_err *e);

/*
 * A secret kept as the first line of a private file (a challenge, an HMAC
 * key): mdm_file_read_private, then out holds the line without its end
 * (it stops at CR, LF or NUL) and the rest of what was read is wiped.  An
 * empty line is MDM_E_CONFIG, "PATH: the WHAT is empty".
 */
int mdm_file_read_secret_line(const char *path, const char *what,
    struct mdm_buf *out, struct mdm_err *e);

/*
 * mkdir -p: creates path and any missing parents.  Each directory it
 * creates gets exactly mode (chmod after mkdir: the umask can only have
 * narrowed it meanwhile); directories that already exist are left alone.
 * A component that exists and is not a directory: MDM_E_CONFIG.
 */
int mdm_file_mkdir_p(const char *path, mode_t mode, struct mdm_err *e);

/* 1 if something exists at path (lstat: a dangling symlink counts), else 0. */
int mdm_file_exists(const char *path);

/*
 * Calls fn(dir, name, arg, e) for each entry of dir whose name ends in
 * suffix (NULL: every entry), in strcmp order.  Dot files are always
 * skipped: they are temp files of mdm_file_write_atomic or not ours.
 * fn returns 0 to go on, or -1 with e filled to stop; foreach then
 * returns -1 with fn's error.  name is borrowed for the call only.
 * A missing dir is not an error (no calls).  At most 100000 entries
 * are listed (MDM_E_TOOBIG beyond).
 */
int mdm_file_foreach(const char *dir, const char *suffix,
    int (*fn)(const char *dir, const char *name, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e);

#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "file.h"
#include "mdm_int.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define FOREACH_MAX	100000
#define TEMP_TRIES	16

static enum mdm_errc
errno_code(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return MDM_E_NOINPUT;
	case EACCES:
	case EPERM:
		return MDM_E_PERM;
	case EEXIST:
		return MDM_E_EXISTS;
	default:
		return MDM_E_IO;
	}
}

/*
 * Splits path into the directory that will hold it and its last name, so
 * the temp file lands in the same directory (rename is atomic only within
 * one file system) and every later step works relative to one open fd.
 */
static int
split(const char *path, char *dir, size_t dirlen, const char **base,
    struct mdm_err *e)
{
	const char *slash;
	size_t n;

	if (path == NULL || *path == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "empty file name");
	if (strlen(path) >= PATH_MAX)
		return mdm_err_set(e, MDM_E_USAGE, "%.64s...: path too long",
		    path);
	if ((slash = strrchr(path, '/')) == NULL) {
		snprintf(dir, dirlen, ".");
		*base = path;
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= dirlen)
			return mdm_err_set(e, MDM_E_USAGE, "%s: path too long",
			    path);
		memcpy(dir, path, n);
		dir[n] = '\0';
		*base = slash + 1;
	}
	if (**base == '\0' || strcmp(*base, ".") == 0 ||
	    strcmp(*base, "..") == 0)
		return mdm_err_set(e, MDM_E_USAGE, "%s: not a file name", path);
	return 0;
}

/*
 * Creates a dot-named temp file beside base.  It starts owner-only (mode
 * & 0700, and the umask may narrow it further): the caller sets the final
 * mode once the contents are in, so the file is never wider than asked.
 * The process umask is left alone: it is shared by every thread.
 */
static int
create_temp(int dfd, const char *base, mode_t mode, char *tmp, size_t tmplen,
    struct mdm_err *e)
{
	static unsigned long counter;
	unsigned char r[6];
	char hex[sizeof(r) * 2 + 1];
	struct timespec ts;
	unsigned long v;
	size_t i;
	int fd, tries;

	for (tries = 0; tries < TEMP_TRIES; tries++) {
		if (RAND_bytes(r, sizeof(r)) != 1) {
			/* Unpredictable names only spare a retry; O_EXCL is the guard. */
			clock_gettime(CLOCK_REALTIME, &ts);
			v = (unsigned long)ts.tv_nsec ^
			    ((unsigned long)getpid() << 16) ^ ++counter;
			for (i = 0; i < sizeof(r); i++)
				r[i] = (unsigned char)(v >> (8 * (i % 4)));
		}
		for (i = 0; i < sizeof(r); i++)
			snprintf(hex + 2 * i, 3, "%02x", r[i]);
		/* Long names are cut so the temp name stays under NAME_MAX. */
		snprintf(tmp, tmplen, ".%.200s.%s.tmp", base, hex);
		fd = openat(dfd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    mode & 0700);
		if (fd != -1)
			return fd;
		if (errno != EEXIST)
			return mdm_err_set_sys(e, errno_code(errno), errno,
			    "cannot create temp file");
	}
	return mdm_err_set(e, MDM_E_IO, "cannot create temp file: "
	    "too many name collisions");
}

static int
write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Gives tmp the name base unless base exists.  link() fails with EEXIST
 * instead of replacing, which rename() cannot promise; renameat2 is the
 * fallback on Linux file systems without hard links.  On success tmp is
 * gone (or, if only its unlink failed, left as a harmless dot file).
 */
static int
place_noreplace(int dfd, const char *tmp, const char *base, const char *path,
    struct mdm_err *e)
{
	if (linkat(dfd, tmp, dfd, base, 0) == 0) {
		unlinkat(dfd, tmp, 0);
		return 0;
	}
	if (errno == EEXIST)
		return mdm_err_set(e, MDM_E_EXISTS, "%s: already exists", path);
#if defined(__linux__) && defined(SYS_renameat2)
	if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS ||
	    errno == EMLINK) {
		if (syscall(SYS_renameat2, dfd, tmp, dfd, base,
		    RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST)
			return mdm_err_set(e, MDM_E_EXISTS,
			    "%s: already exists", path);
	}
#endif
	return mdm_err_set_sys(e, errno_code(errno), errno, "%s", path);
}

int
mdm_file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, unsigned flags, struct mdm_err *e)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1];
	const char *base = NULL;
	struct stat st;
	int dfd = -1, fd = -1, have_tmp = 0, rc = -1;

	if (split(path, dir, sizeof(dir), &base, e) == -1)
		return -1;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		mdm_err_set_sys(e, errno_code(errno), errno, "%s", dir);
		goto out;
	}
	/* Fail early; place_noreplace is what makes it race-free. */
	if ((flags & MDM_FILE_NOREPLACE) &&
	    fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		mdm_err_set(e, MDM_E_EXISTS, "%s: already exists", path);
		goto out;
	}
	if ((fd = create_temp(dfd, base, mode, tmp, sizeof(tmp), e)) == -1) {
		mdm_err_prefix(e, "%s", path);
		goto out;
	}
	have_tmp = 1;
	if (write_all(fd, data, len) == -1) {
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s: write", path);
		goto out;
	}
	if (fchmod(fd, mode & 07777) == -1) {
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s: chmod", path);
		goto out;
	}
	if (fsync(fd) == -1) {
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s: fsync", path);
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s: close", path);
		goto out;
	}
	fd = -1;
	if (flags & MDM_FILE_NOREPLACE) {
		if (place_noreplace(dfd, tmp, base, path, e) == -1)
			goto out;
	} else if (renameat(dfd, tmp, dfd, base) == -1) {
		mdm_err_set_sys(e, errno_code(errno), errno, "%s", path);
		goto out;
	}
	have_tmp = 0;
	/* The rename is durable only once the directory is. */
	if (fsync(dfd) == -1 && errno != EINVAL && errno != ENOTSUP) {
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s: fsync", dir);
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (have_tmp)
		unlinkat(dfd, tmp, 0);
	if (dfd != -1)
		close(dfd);
	return rc;
}

static int
check_stat(const char *path, const struct stat *st, struct mdm_err *e)
{
	uid_t me = geteuid();

	if (S_ISLNK(st->st_mode))
		return mdm_err_set(e, MDM_E_PERM, "%s: is a symlink; a key "
		    "file must be a regular file: replace the link with its "
		    "target", path);
	if (!S_ISREG(st->st_mode))
		return mdm_err_set(e, MDM_E_PERM,
		    "%s: not a regular file", path);
	if (me != 0 && st->st_uid != me)
		return mdm_err_set(e, MDM_E_PERM, "%s: owned by uid %lu, not "
		    "by you (uid %lu): chown %lu %s", path,
		    (unsigned long)st->st_uid, (unsigned long)me,
		    (unsigned long)me, path);
	if (st->st_mode & 077)
		return mdm_err_set(e, MDM_E_PERM, "%s: group or others can "
		    "access this key file (mode %04o): chmod 600 %s", path,
		    (unsigned)(st->st_mode & 07777), path);
	return 0;
}

int
mdm_file_check_private(const char *path, struct mdm_err *e)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return mdm_err_set_sys(e, errno_code(errno), errno, "%s", path);
	return check_stat(path, &st, e);
}

int
mdm_file_read_private(const char *path, struct mdm_buf *out,
    struct mdm_err *e)
{
	unsigned char *p = NULL;
	struct stat st;
	size_t size = 0, got = 0;
	ssize_t n;
	int fd = -1, rc = -1;

	/* O_NONBLOCK: a FIFO planted at path must not hang the open. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		int err = errno;

		/* ELOOP from O_NOFOLLOW: path is a symlink; say so. */
		if (err == ELOOP && lstat(path, &st) == 0 &&
		    check_stat(path, &st, e) == -1)
			goto out;
		mdm_err_set_sys(e, errno_code(err), err, "%s", path);
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s", path);
		goto out;
	}
	if (check_stat(path, &st, e) == -1)
		goto out;
	if (st.st_size < 0 ||
	    (unsigned long long)st.st_size > out->cap - out->len) {
		mdm_err_set(e, MDM_E_TOOBIG,
		    "%s: larger than the limit of %zu bytes", path, out->cap);
		goto out;
	}
	/*
	 * One buffer of the file's size, wiped afterwards, so no growing
	 * realloc leaves a copy of the key in freed memory.  One byte more
	 * tells a file that grew since fstat.
	 */
	size = (size_t)st.st_size;
	if ((p = malloc(size + 1)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	while (got < size + 1) {
		n = read(fd, p + got, size + 1 - got);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			mdm_err_set_sys(e, MDM_E_IO, errno, "%s: read", path);
			goto out;
		}
		got += (size_t)n;
	}
	if (got > size) {
		mdm_err_set(e, MDM_E_IO, "%s: changed while being read", path);
		goto out;
	}
	if (mdm_buf_append(out, p, got, e) == -1) {
		mdm_err_prefix(e, "%s", path);
		goto out;
	}
	rc = 0;
out:
	if (p != NULL) {
		OPENSSL_cleanse(p, size + 1);
		free(p);
	}
	if (fd != -1)
		close(fd);
	return rc;
}

int
mdm_file_read_secret_line(const char *path, const char *what,
    struct mdm_buf *out, struct mdm_err *e)
{
	size_t n;

	if (mdm_file_read_private(path, out, e) == -1)
		return -1;
	n = strcspn((const char *)out->data, "\r\n");
	OPENSSL_cleanse(out->data + n, out->len - n);
	out->len = n;
	if (n == 0)
		return mdm_err_set(e, MDM_E_CONFIG, "%s: the %s is empty", path,
		    what);
	return 0;
}

static int
mkdir_one(const char *path, mode_t mode, struct mdm_err *e)
{
	struct stat st;
	int err;

	if (mkdir(path, mode & 07777) == 0) {
		if (chmod(path, mode & 07777) == -1)
			return mdm_err_set_sys(e, MDM_E_IO, errno, "%s: chmod",
			    path);
		return 0;
	}
	err = errno;
	/* EEXIST, or EROFS/EACCES on a directory that is already there. */
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		return mdm_err_set(e, MDM_E_CONFIG,
		    "%s: exists and is not a directory", path);
	}
	return mdm_err_set_sys(e, errno_code(err), err, "mkdir %s", path);
}

int
mdm_file_mkdir_p(const char *path, mode_t mode, struct mdm_err *e)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len;
	char *p, c;

	if (path == NULL || *path == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "empty directory name");
	if ((len = strlen(path)) >= sizeof(buf))
		return mdm_err_set(e, MDM_E_USAGE, "%.64s...: path too long",
		    path);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir_one(buf, mode, e) == -1)
			return -1;
		*p = c;
		if (c == '\0')
			break;
		while (p[1] == '/')
			p++;
	}
	return 0;
}

int
mdm_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
mdm_file_foreach(const char *dir, const char *suffix,
    int (*fn)(const char *dir, const char *name, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e)
{
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL, **grown;
	size_t count = 0, alloc = 0, slen, nlen, i;
	int rc = -1;

	slen = suffix != NULL ? strlen(suffix) : 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return mdm_err_set_sys(e, errno_code(errno), errno, "%s", dir);
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				mdm_err_set_sys(e, MDM_E_IO, errno, "%s", dir);
				goto out;
			}
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		nlen = strlen(de->d_name);
		if (suffix != NULL && (nlen < slen ||
		    memcmp(de->d_name + nlen - slen, suffix, slen) != 0))
			continue;
		if (count == FOREACH_MAX) {
			mdm_err_set(e, MDM_E_TOOBIG, "%s: more than %d entries",
			    dir, FOREACH_MAX);
			goto out;
		}
		if (count == alloc) {
			alloc = alloc ? alloc * 2 : 32;
			if ((grown = realloc(names,
			    alloc * sizeof(*names))) == NULL) {
				mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
				goto out;
			}
			names = grown;
		}
		if ((names[count] = strdup(de->d_name)) == NULL) {
			mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
			goto out;
		}
		count++;
	}
	closedir(d);
	d = NULL;
	if (count > 0)
		qsort(names, count, sizeof(*names), cmp_names);
	for (i = 0; i < count; i++)
		if (fn(dir, names[i], arg, e) == -1)
			goto out;
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return rc;
}

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "mdm_int.h"

void
mdm_buf_init(struct mdm_buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
	b->secret = 0;
}

void
mdm_buf_init_secret(struct mdm_buf *b, size_t cap)
{
	mdm_buf_init(b, cap);
	b->secret = 1;
}

void
mdm_buf_release(struct mdm_buf *b)
{
	int secret;

	if (b == NULL)
		return;
	secret = b->secret;
	if (secret && b->data != NULL)
		OPENSSL_cleanse(b->data, b->alloc);
	free(b->data);
	mdm_buf_init(b, b->cap);
	b->secret = secret;
}

void
mdm_buf_release_secret(struct mdm_buf *b)
{
	if (b == NULL)
		return;
	b->secret = 1;
	mdm_buf_release(b);
}

void
mdm_buf_reset(struct mdm_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Makes room for n more bytes plus the terminating NUL. */
static int
grow(struct mdm_buf *b, size_t n, struct mdm_err *e)
{
	size_t want, alloc;
	unsigned char *p;

	if (n > b->cap || b->len > b->cap - n)
		return mdm_err_set(e, MDM_E_TOOBIG,
		    "input larger than the limit of %zu bytes", b->cap);
	want = b->len + n + 1;
	if (want <= b->alloc)
		return 0;
	alloc = b->alloc ? b->alloc : 64;
	while (alloc < want)
		alloc = alloc > SIZE_MAX / 2 ? want : alloc * 2;
	if (b->secret) {
		if ((p = malloc(alloc)) == NULL)
			return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		if (b->data != NULL) {
			memcpy(p, b->data, b->len + 1);
			OPENSSL_cleanse(b->data, b->alloc);
			free(b->data);
		}
	} else if ((p = realloc(b->data, alloc)) == NULL) {
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	}
	b->data = p;
	b->alloc = alloc;
	return 0;
}

int
mdm_buf_append(struct mdm_buf *b, const void *p, size_t n, struct mdm_err *e)
{
	if (grow(b, n, e) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
mdm_buf_append_str(struct mdm_buf *b, const char *s, struct mdm_err *e)
{
	return mdm_buf_append(b, s, strlen(s), e);
}

int
mdm_buf_printf(struct mdm_buf *b, struct mdm_err *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return mdm_err_set(e, MDM_E_SOFTWARE, "bad format string");
	if (grow(b, (size_t)n, e) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int
mdm_buf_read_fd(struct mdm_buf *b, int fd, struct mdm_err *e)
{
	unsigned char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mdm_err_set_sys(e, MDM_E_IO, errno, "read");
		}
		if (mdm_buf_append(b, chunk, (size_t)n, e) == -1)
			return -1;
	}
}

int
mdm_buf_read_file(struct mdm_buf *b, const char *path, struct mdm_err *e)
{
	struct stat st;
	int fd = -1;
	int rc = -1;

	if (strcmp(path, "-") == 0) {
		rc = mdm_buf_read_fd(b, STDIN_FILENO, e);
		if (rc == -1)
			mdm_err_prefix(e, "stdin");
		return rc;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		mdm_err_set_sys(e, errno == ENOENT ? MDM_E_NOINPUT :
		    errno == EACCES ? MDM_E_PERM : MDM_E_IO, errno, "%s", path);
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		mdm_err_set_sys(e, MDM_E_IO, errno, "%s", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		mdm_err_set(e, MDM_E_NOINPUT, "%s: is a directory", path);
		goto out;
	}
	/* Refuse a regular file over the cap without reading any of it. */
	if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > b->cap) {
		mdm_err_set(e, MDM_E_TOOBIG,
		    "%s: larger than the limit of %zu bytes", path, b->cap);
		goto out;
	}
	if (mdm_buf_read_fd(b, fd, e) == -1) {
		mdm_err_prefix(e, "%s", path);
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	return rc;
}

unsigned char *
mdm_buf_detach(struct mdm_buf *b, size_t *len)
{
	unsigned char *p = b->data;
	int secret = b->secret;

	*len = b->len;
	mdm_buf_init(b, b->cap);
	b->secret = secret;
	return p;
}

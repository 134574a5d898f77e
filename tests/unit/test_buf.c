#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "tap.h"

int
main(void)
{
	struct mdm_buf b;
	struct mdm_err e;
	char path[4200];
	unsigned char *p;
	size_t len;
	FILE *f;

	mdm_buf_init(&b, 16);
	ok(mdm_buf_append_str(&b, "hello", &e) == 0, "append under cap");
	is_int((long long)b.len, 5, "length counted");
	is_str((const char *)b.data, "hello", "data is NUL-terminated");
	ok(mdm_buf_printf(&b, &e, " %d", 42) == 0, "printf appends");
	is_str((const char *)b.data, "hello 42", "printf result");
	ok(mdm_buf_append(&b, "0123456789", 10, &e) == -1, "over cap refused");
	is_int(e.code, MDM_E_TOOBIG, "over cap is TOOBIG");
	is_int((long long)b.len, 8, "failed append leaves contents alone");
	ok(mdm_buf_append(&b, "\0x", 2, &e) == 0, "binary with NUL accepted");
	is_int((long long)b.len, 10, "binary length");
	mdm_buf_reset(&b);
	is_int((long long)b.len, 0, "reset empties");
	ok(mdm_buf_printf(&b, &e, "%s", "0123456789abcdefXYZ") == -1,
	    "printf over cap refused");
	mdm_buf_release(&b);
	ok(b.data == NULL && b.cap == 16, "release keeps the cap");
	mdm_buf_release(NULL);

	snprintf(path, sizeof(path), "%s/file", tap_tmpdir());
	f = fopen(path, "w");
	fputs("0123456789abcdefghij", f);
	fclose(f);

	mdm_buf_init(&b, 16);
	ok(mdm_buf_read_file(&b, path, &e) == -1, "file over cap refused");
	is_int(e.code, MDM_E_TOOBIG, "file over cap is TOOBIG");
	is_int((long long)b.len, 0, "file over cap read nothing");
	b.cap = 64;
	ok(mdm_buf_read_file(&b, path, &e) == 0, "file under cap read");
	is_int((long long)b.len, 20, "whole file read");
	p = mdm_buf_detach(&b, &len);
	ok(p != NULL && len == 20 && b.data == NULL, "detach hands over data");
	free(p);

	ok(mdm_buf_read_file(&b, "/nonexistent/x", &e) == -1, "missing file");
	is_int(e.code, MDM_E_NOINPUT, "missing file is NOINPUT");
	ok(strstr(e.msg, "/nonexistent/x") != NULL, "message names the file");
	ok(mdm_buf_read_file(&b, tap_tmpdir(), &e) == -1, "directory refused");
	is_int(e.code, MDM_E_NOINPUT, "directory is NOINPUT");

	/* A secret buffer keeps its contents across moves to bigger blocks. */
	{
		int i, same = 1;

		mdm_buf_init_secret(&b, 1 << 20);
		for (i = 0; i < 1000; i++)
			mdm_buf_printf(&b, &e, "%04d", i);
		for (i = 0; i < 1000 && same; i++) {
			char want[5];

			snprintf(want, sizeof(want), "%04d", i);
			same = memcmp(b.data + 4 * i, want, 4) == 0;
		}
		ok(same && b.len == 4000, "secret buffer grows intact");
		mdm_buf_release(&b);
		ok(b.data == NULL && b.secret, "secret buffer stays secret");
	}

	/* A stream (no size known up front) is cut off at the cap. */
	{
		int fd = open("/dev/zero", O_RDONLY);

		mdm_buf_init(&b, 1 << 20);
		ok(mdm_buf_read_fd(&b, fd, &e) == -1 && e.code == MDM_E_TOOBIG,
		    "endless stream stops at the cap");
		close(fd);
		mdm_buf_release_secret(&b);
	}
	return tap_done();
}

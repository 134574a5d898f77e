#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"
#include "tap.h"

#define NOBODY 65534

static char root[4096];

static const char *
at(const char *rel)
{
	static char bufs[4][4200];
	static int n;
	char *p = bufs[n++ % 4];

	snprintf(p, sizeof(bufs[0]), "%s/%s", root, rel);
	return p;
}

static int
mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return -1;
	return (int)(st.st_mode & 07777);
}

static void
put(const char *path, const char *s, mode_t mode)
{
	FILE *f;

	unlink(path);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(99);
	}
	fputs(s, f);
	fclose(f);
	chmod(path, mode);
}

/* The contents of a small file, or "" when it cannot be read. */
static const char *
slurp(const char *path)
{
	static char buf[4096];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY)) == -1)
		return buf;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* Entries of dir whose name starts with a dot (temp files), . and .. aside. */
static int
dot_files(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

struct seen {
	char names[16][64];
	int n;
	int stop_at;
};

static int
collect(const char *dir, const char *name, void *arg, struct mdm_err *e)
{
	struct seen *s = arg;

	(void)dir;
	if (s->n == s->stop_at)
		return mdm_err_set(e, MDM_E_DATA, "stopped at %s", name);
	if (s->n < 16)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->n++;
	return 0;
}

static void
test_write_atomic(void)
{
	struct mdm_err e;
	struct stat st1, st2;
	char buf[8];
	int fd;

	umask(0);
	ok(mdm_file_write_atomic(at("key.pem"), "secret", 6, 0600, 0, &e) == 0,
	    "atomic write of a key");
	is_int(mode_of(at("key.pem")), 0600, "key is 0600 even with umask 0");
	is_str(slurp(at("key.pem")), "secret", "key contents written");

	umask(077);
	ok(mdm_file_write_atomic(at("ca.pem"), "cert", 4, 0644, 0, &e) == 0,
	    "atomic write of a certificate under umask 077");
	is_int(mode_of(at("ca.pem")), 0644, "the mode asked for, not the umask");
	umask(022);

	/* A reader holding the old file keeps it whole: rename, not rewrite. */
	put(at("cfg"), "old!", 0644);
	stat(at("cfg"), &st1);
	fd = open(at("cfg"), O_RDONLY);
	ok(mdm_file_write_atomic(at("cfg"), "new contents", 12, 0644, 0, &e) ==
	    0, "replace an existing file");
	stat(at("cfg"), &st2);
	is_str(slurp(at("cfg")), "new contents", "new contents in place");
	ok(st1.st_ino != st2.st_ino, "replaced by rename (new inode)");
	memset(buf, 0, sizeof(buf));
	ok(fd != -1 && read(fd, buf, 4) == 4 && memcmp(buf, "old!", 4) == 0,
	    "an open reader still sees the old contents whole");
	if (fd != -1)
		close(fd);

	ok(mdm_file_write_atomic(at("cfg"), "x", 1, 0600, MDM_FILE_NOREPLACE,
	    &e) == -1, "NOREPLACE refuses an existing file");
	is_int(e.code, MDM_E_EXISTS, "NOREPLACE failure is EXISTS");
	ok(strstr(e.msg, "cfg") != NULL, "message names the file: %s", e.msg);
	is_str(slurp(at("cfg")), "new contents", "existing file left intact");
	ok(mdm_file_write_atomic(at("fresh.key"), "k", 1, 0600,
	    MDM_FILE_NOREPLACE, &e) == 0, "NOREPLACE creates a new file");
	is_int(mode_of(at("fresh.key")), 0600, "NOREPLACE file has its mode");
	is_str(slurp(at("fresh.key")), "k", "NOREPLACE file contents");

	/* A symlink at path is replaced, never written through. */
	put(at("target"), "target", 0644);
	symlink("target", at("link"));
	ok(mdm_file_write_atomic(at("link"), "via", 3, 0644, 0, &e) == 0,
	    "write over a symlink");
	is_str(slurp(at("target")), "target", "the symlink target is untouched");
	ok(mode_of(at("link")) != -1 && slurp(at("link"))[0] == 'v',
	    "the symlink itself was replaced");
	symlink("nowhere", at("dangling"));
	ok(mdm_file_write_atomic(at("dangling"), "x", 1, 0600,
	    MDM_FILE_NOREPLACE, &e) == -1 && e.code == MDM_E_EXISTS,
	    "NOREPLACE refuses a dangling symlink too");
	ok(mdm_file_exists(at("nowhere")) == 0, "nothing created through it");

	/* Failures leave no temp file behind. */
	mkdir(at("adir"), 0755);
	ok(mdm_file_write_atomic(at("adir"), "x", 1, 0600, 0, &e) == -1,
	    "path that is a directory refused: %s", e.msg);
	is_int(dot_files(root), 0, "no temp file left after a failed rename");
	ok(mdm_file_write_atomic(at("missing/x"), "x", 1, 0600, 0, &e) == -1,
	    "missing parent directory refused");
	is_int(e.code, MDM_E_NOINPUT, "missing parent is NOINPUT");
	ok(mdm_file_write_atomic(at("adir/"), "x", 1, 0600, 0, &e) == -1 &&
	    e.code == MDM_E_USAGE, "trailing slash is not a file name");
	ok(mdm_file_write_atomic("", "x", 1, 0600, 0, &e) == -1 &&
	    e.code == MDM_E_USAGE, "empty path refused");
	is_int(dot_files(root), 0, "still no temp files");
}

/*
 * A write cut short (file size limit) fails cleanly: old file intact, no
 * temp file.  Run in a child so the limit stays there.
 */
static void
test_write_fails_midway(void)
{
	char big[4096];
	pid_t pid;
	int status;

	memset(big, 'A', sizeof(big));
	put(at("limited"), "old", 0600);
	if ((pid = fork()) == 0) {
		struct rlimit rl = { 100, 100 };
		struct mdm_err e;

		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		if (mdm_file_write_atomic(at("limited"), big, sizeof(big), 0600,
		    0, &e) != -1)
			_exit(1);
		_exit(e.code == MDM_E_IO ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "write over the file size limit fails with IO");
	is_str(slurp(at("limited")), "old", "old contents intact after a failed "
	    "write");
	is_int(dot_files(root), 0, "no temp file left after a failed write");
}

static void
test_check_private(void)
{
	struct mdm_err e;

	put(at("k644"), "k", 0644);
	ok(mdm_file_check_private(at("k644"), &e) == -1, "0644 key refused");
	is_int(e.code, MDM_E_PERM, "refusal is PERM");
	ok(strstr(e.msg, "chmod 600") != NULL && strstr(e.msg, "k644") != NULL,
	    "message names the file and the fix: %s", e.msg);
	put(at("k640"), "k", 0640);
	ok(mdm_file_check_private(at("k640"), &e) == -1 &&
	    e.code == MDM_E_PERM, "0640 key refused");
	put(at("k602"), "k", 0602);
	ok(mdm_file_check_private(at("k602"), &e) == -1 &&
	    e.code == MDM_E_PERM, "0602 (others may write) refused");
	put(at("k600"), "k", 0600);
	ok(mdm_file_check_private(at("k600"), &e) == 0, "0600 key accepted");
	put(at("k400"), "k", 0400);
	ok(mdm_file_check_private(at("k400"), &e) == 0, "0400 key accepted");
	symlink("k600", at("klink"));
	ok(mdm_file_check_private(at("klink"), &e) == -1 &&
	    e.code == MDM_E_PERM, "symlink to a 0600 key refused");
	ok(strstr(e.msg, "symlink") != NULL, "message says symlink: %s", e.msg);
	ok(mdm_file_check_private(at("nokey"), &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "missing key is NOINPUT");
	ok(mdm_file_check_private(root, &e) == -1 && e.code == MDM_E_PERM,
	    "a directory is refused");
}

static void
test_read_private(void)
{
	struct mdm_buf b;
	struct mdm_err e;

	put(at("r600"), "-----BEGIN KEY-----", 0600);
	mdm_buf_init(&b, 1024);
	ok(mdm_file_read_private(at("r600"), &b, &e) == 0, "read a 0600 key");
	is_str((const char *)b.data, "-----BEGIN KEY-----", "key contents");
	ok(mdm_file_read_private(at("r600"), &b, &e) == 0 && b.len == 38,
	    "a second read appends");
	mdm_buf_reset(&b);

	put(at("r644"), "leaked", 0644);
	ok(mdm_file_read_private(at("r644"), &b, &e) == -1 &&
	    e.code == MDM_E_PERM, "0644 key not read");
	is_int((long long)b.len, 0, "nothing read from a refused key");
	symlink("r600", at("rlink"));
	ok(mdm_file_read_private(at("rlink"), &b, &e) == -1 &&
	    e.code == MDM_E_PERM, "symlink not followed");
	ok(strstr(e.msg, "symlink") != NULL, "message says symlink: %s", e.msg);
	ok(mdm_file_read_private(at("rmissing"), &b, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "missing key is NOINPUT");
	mkfifo(at("fifo"), 0600);
	ok(mdm_file_read_private(at("fifo"), &b, &e) == -1 &&
	    e.code == MDM_E_PERM, "a FIFO is refused without hanging");
	mdm_buf_release_secret(&b);

	mdm_buf_init(&b, 10);
	ok(mdm_file_read_private(at("r600"), &b, &e) == -1 &&
	    e.code == MDM_E_TOOBIG, "key over the cap is TOOBIG");
	is_int((long long)b.len, 0, "nothing read over the cap");
	mdm_buf_release_secret(&b);
}

static void
test_read_secret_line(void)
{
	struct mdm_buf b;
	struct mdm_err e;

	mdm_buf_init_secret(&b, 1024);
	put(at("s1"), "s3cret\r\nsecond line\n", 0600);
	ok(mdm_file_read_secret_line(at("s1"), "key", &b, &e) == 0,
	    "secret line read");
	is_str((const char *)b.data, "s3cret", "the first line, without CRLF");
	is_int((long long)b.len, 6, "and its length");
	mdm_buf_reset(&b);
	put(at("s2"), "one-line-no-newline", 0600);
	ok(mdm_file_read_secret_line(at("s2"), "key", &b, &e) == 0 &&
	    strcmp((const char *)b.data, "one-line-no-newline") == 0,
	    "a file without a newline");
	mdm_buf_reset(&b);
	put(at("s3"), "\nafter an empty line\n", 0600);
	ok(mdm_file_read_secret_line(at("s3"), "challenge", &b, &e) == -1 &&
	    e.code == MDM_E_CONFIG &&
	    strstr(e.msg, "the challenge is empty") != NULL,
	    "an empty first line: %s", e.msg);
	mdm_buf_reset(&b);
	put(at("s4"), "", 0600);
	ok(mdm_file_read_secret_line(at("s4"), "key", &b, &e) == -1 &&
	    e.code == MDM_E_CONFIG, "an empty file");
	mdm_buf_reset(&b);
	put(at("s5"), "open\n", 0644);
	ok(mdm_file_read_secret_line(at("s5"), "key", &b, &e) == -1 &&
	    e.code == MDM_E_PERM, "a readable-by-others file is refused");
	mdm_buf_release_secret(&b);
}

/*
 * Ownership: root may read keys another user owns (it administers their
 * state directory); anyone else only their own.  Checked from a child
 * that drops to nobody, so it runs when the tests run as root.
 */
static void
test_owner(void)
{
	struct mdm_err e;
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		put(at("own600"), "k", 0600);
		ok(mdm_file_check_private(at("own600"), &e) == 0,
		    "own 0600 key accepted");
		tap_skip(3, "ownership checks need root to set up");
		return;
	}
	put(at("nobody.key"), "k", 0600);
	put(at("root.key"), "k", 0600);
	if (chown(at("nobody.key"), NOBODY, NOBODY) == -1) {
		tap_skip(4, "chown failed");
		return;
	}
	ok(mdm_file_check_private(at("nobody.key"), &e) == 0,
	    "root accepts a 0600 key owned by another user");
	chmod(root, 0755);
	if ((pid = fork()) == 0) {
		struct mdm_err ce;
		int r = 0;

		if (setgid(NOBODY) == -1 || setuid(NOBODY) == -1)
			_exit(99);
		if (mdm_file_check_private(at("nobody.key"), &ce) != 0)
			r |= 1;
		if (mdm_file_check_private(at("root.key"), &ce) != -1 ||
		    ce.code != MDM_E_PERM || strstr(ce.msg, "owned") == NULL)
			r |= 2;
		/* No write access to the directory: clean PERM, no temp. */
		if (mdm_file_write_atomic(at("x.key"), "k", 1, 0600, 0, &ce) !=
		    -1 || ce.code != MDM_E_PERM)
			r |= 4;
		_exit(r);
	}
	waitpid(pid, &status, 0);
	chmod(root, 0700);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 99) {
		tap_skip(3, "cannot drop to nobody");
		return;
	}
	ok(WIFEXITED(status) && !(WEXITSTATUS(status) & 1),
	    "a user accepts their own 0600 key");
	ok(WIFEXITED(status) && !(WEXITSTATUS(status) & 2),
	    "a user refuses a key another user owns");
	ok(WIFEXITED(status) && !(WEXITSTATUS(status) & 4),
	    "unwritable directory is PERM");
}

static void
test_mkdir_exists_foreach(void)
{
	struct mdm_err e;
	struct seen s;

	umask(0);
	ok(mdm_file_mkdir_p(at("m/a/b/c"), 0700, &e) == 0, "mkdir -p");
	is_int(mode_of(at("m/a/b/c")), 0700, "created with 0700 under umask 0");
	is_int(mode_of(at("m/a")), 0700, "parents too");
	ok(mdm_file_mkdir_p(at("m/a/b/c"), 0700, &e) == 0, "existing is fine");
	umask(077);
	ok(mdm_file_mkdir_p(at("m/p//q/"), 0755, &e) == 0,
	    "doubled and trailing slashes");
	is_int(mode_of(at("m/p/q")), 0755, "exact mode under umask 077");
	umask(022);
	chmod(at("m/a"), 0711);
	ok(mdm_file_mkdir_p(at("m/a/d"), 0700, &e) == 0 &&
	    mode_of(at("m/a")) == 0711, "existing parent's mode left alone");
	put(at("m/file"), "", 0644);
	ok(mdm_file_mkdir_p(at("m/file/sub"), 0700, &e) == -1 &&
	    e.code == MDM_E_CONFIG, "a file in the way is CONFIG: %s", e.msg);

	ok(mdm_file_exists(at("m/file")) == 1, "exists: file");
	ok(mdm_file_exists(at("dangling")) == 1, "exists: dangling symlink");
	ok(mdm_file_exists(at("m/none")) == 0, "exists: missing");

	mkdir(at("f"), 0755);
	put(at("f/b.pem"), "", 0644);
	put(at("f/a.pem"), "", 0644);
	put(at("f/c.key"), "", 0644);
	put(at("f/.hidden.pem"), "", 0644);
	put(at("f/d.pem"), "", 0644);
	put(at("f/pem"), "", 0644);
	memset(&s, 0, sizeof(s));
	s.stop_at = -1;
	ok(mdm_file_foreach(at("f"), ".pem", collect, &s, &e) == 0,
	    "foreach with a suffix");
	ok(s.n == 3 && strcmp(s.names[0], "a.pem") == 0 &&
	    strcmp(s.names[1], "b.pem") == 0 &&
	    strcmp(s.names[2], "d.pem") == 0,
	    "suffix matches, sorted, dot files skipped");
	memset(&s, 0, sizeof(s));
	s.stop_at = -1;
	ok(mdm_file_foreach(at("f"), NULL, collect, &s, &e) == 0 && s.n == 5 &&
	    strcmp(s.names[2], "c.key") == 0 && strcmp(s.names[4], "pem") == 0,
	    "NULL suffix lists every entry but dot files, sorted");
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	ok(mdm_file_foreach(at("f"), ".pem", collect, &s, &e) == -1 &&
	    e.code == MDM_E_DATA && strstr(e.msg, "b.pem") != NULL,
	    "callback stops the walk with its error");
	memset(&s, 0, sizeof(s));
	s.stop_at = -1;
	ok(mdm_file_foreach(at("nodir"), NULL, collect, &s, &e) == 0 &&
	    s.n == 0, "missing directory: no calls, no error");
	ok(mdm_file_foreach(at("f/a.pem"), NULL, collect, &s, &e) == -1,
	    "a file is not a directory");
}

int
main(void)
{
	snprintf(root, sizeof(root), "%s", tap_tmpdir());
	test_write_atomic();
	test_write_fails_midway();
	test_check_private();
	test_read_private();
	test_read_secret_line();
	test_owner();
	test_mkdir_exists_foreach();
	return tap_done();
}

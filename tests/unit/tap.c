#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "x509.h"
#include "tap.h"

static int tap_count;
static int tap_failed;
static char tap_dir[4096];

static int
vreport(int cond, const char *fmt, va_list ap)
{
	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	return cond;
}

int
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cond, fmt, ap);
	va_end(ap);
	return cond;
}

int
tap_is_int(long long got, long long want, const char *what)
{
	if (!tap_ok(got == want, "%s", what))
		tap_diag("got %lld, want %lld", got, want);
	return got == want;
}

int
tap_is_str(const char *got, const char *want, const char *what)
{
	int same = got != NULL && want != NULL ? strcmp(got, want) == 0 :
	    got == want;

	if (!tap_ok(same, "%s", what))
		tap_diag("got \"%s\", want \"%s\"", got ? got : "(null)",
		    want ? want : "(null)");
	return same;
}

void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void
tap_skip(int n, const char *why)
{
	while (n-- > 0)
		printf("ok %d # skip %s\n", ++tap_count, why);
}

const char *
tap_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tap_dir[0] != '\0')
		return tap_dir;
	snprintf(tap_dir, sizeof(tap_dir), "%s/mdm-unit-XXXXXX",
	    base && *base ? base : "/tmp");
	if (mkdtemp(tap_dir) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	return tap_dir;
}

const char *
tap_fixture(const char *rel)
{
	static char path[4096];
	const char *root = getenv("MDM_FIXTURES");
	struct stat st;

	if (root == NULL || stat(root, &st) == -1 || !S_ISDIR(st.st_mode))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return path;
}

int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_count);
	if (tap_dir[0] != '\0') {
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tap_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tap_dir);
	}
	return tap_failed ? 1 : 0;
}

int
tap_spawn(const char *const *argv, const char *portfile, pid_t *pid,
    char *port, size_t portlen)
{
	struct timespec ts = { 0, 20 * 1000000 };
	FILE *f;
	int i;

	port[0] = '\0';
	if ((*pid = fork()) == -1)
		return -1;
	if (*pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if ((f = fopen(portfile, "r")) != NULL) {
			if (fgets(port, (int)portlen, f) != NULL)
				port[strcspn(port, "\n")] = '\0';
			fclose(f);
			if (port[0] != '\0')
				return 0;
		}
		nanosleep(&ts, NULL);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	return -1;
}

void
tap_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int
tap_write_pem(const char *path, X509 *c, EVP_PKEY *k)
{
	struct mdm_buf b;
	struct mdm_err e = { 0 };
	FILE *f;
	int rc = -1;

	mdm_buf_init(&b, 1 << 20);
	if ((c != NULL && mdm_x509_cert_to_pem(c, &b, &e) == -1) ||
	    (k != NULL && mdm_x509_key_to_pem(k, &b, &e) == -1))
		goto out;
	if ((f = fopen(path, "w")) == NULL)
		goto out;
	fwrite(b.data, 1, b.len, f);
	rc = fclose(f);
out:
	mdm_buf_release_secret(&b);
	return rc;
}

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "proc.h"
#include "tap.h"

#define MIB (1u << 20)
#define NTHREADS 8
#define ROUNDS 4

/* Writes an executable script into the test directory; returns its path. */
static const char *
script(const char *name, const char *body, mode_t mode)
{
	static char bufs[32][4200];
	static int n;
	char *p = bufs[n++ % 32];
	FILE *f;

	snprintf(p, sizeof(bufs[0]), "%s/%s", tap_tmpdir(), name);
	if ((f = fopen(p, "w")) == NULL) {
		perror(p);
		exit(99);
	}
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	if (chmod(p, mode) == -1) {
		perror(p);
		exit(99);
	}
	return p;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes that are not all alike, so a reordering or a loss shows. */
static unsigned char *
pattern(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len);
	size_t i;

	if (p == NULL) {
		perror("malloc");
		exit(99);
	}
	for (i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 131 + seed * 7 + i / 997) & 0xff);
	return p;
}

static void
test_echo(const char *cat)
{
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	unsigned char *big = pattern(MIB, 1);

	mdm_buf_init(&out, 4 * MIB);
	is_int(mdm_proc_run(cat, NULL, "hello\n", 6, &out, 5000, &res, &e), 0,
	    "cat runs");
	is_str((char *)out.data, "hello\n", "cat echoes stdin");
	ok(res.exited && res.code == 0 && !res.timed_out &&
	    !res.out_truncated, "cat exits 0");

	mdm_buf_reset(&out);
	is_int(mdm_proc_run(cat, NULL, NULL, 0, &out, 5000, &res, &e), 0,
	    "cat with no input runs");
	ok(out.len == 0 && res.exited && res.code == 0,
	    "cat with no input reads EOF at once");

	mdm_buf_reset(&out);
	is_int(mdm_proc_run(cat, NULL, big, MIB, &out, 10000, &res, &e), 0,
	    "cat with 1 MiB runs");
	ok(out.len == MIB && memcmp(out.data, big, MIB) == 0,
	    "1 MiB comes back whole and in order");
	ok(res.exited && res.code == 0 && !res.timed_out, "and exits 0");
	mdm_buf_release(&out);
	free(big);
}

/* It writes 1 MiB before reading any input: only concurrent I/O works. */
static void
test_write_first(void)
{
	const char *p = script("write-first", "head -c 1048576 /dev/zero\n"
	    "cat >/dev/null\nexit 0", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	unsigned char *big = pattern(MIB, 2);

	mdm_buf_init(&out, 4 * MIB);
	is_int(mdm_proc_run(p, NULL, big, MIB, &out, 10000, &res, &e), 0,
	    "write-before-read program runs");
	ok(out.len == MIB && !res.timed_out && res.exited && res.code == 0,
	    "write-before-read does not deadlock");
	mdm_buf_release(&out);
	free(big);
}

static void
test_exit_codes(void)
{
	const char *zero = script("exit0", "exit 0", 0755);
	const char *three = script("exit3", "exit 3", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };

	is_int(mdm_proc_run(zero, NULL, NULL, 0, NULL, 5000, &res, &e), 0,
	    "exit 0 runs");
	ok(res.exited && res.code == 0, "exit 0 reported");
	is_int(mdm_proc_run(three, NULL, NULL, 0, NULL, 5000, &res, &e), 0,
	    "exit 3 is still a run");
	ok(res.exited && res.code == 3 && !res.timed_out, "exit 3 reported");
}

/* Runs before the test changes its own signals: a SIGPIPE would kill it. */
static void
test_ignores_stdin(void)
{
	const char *p = script("ignore-stdin", "exit 0", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	size_t len = 8 * MIB;
	unsigned char *big = pattern(len, 3);
	int i, good = 1;

	for (i = 0; i < 5; i++)
		if (mdm_proc_run(p, NULL, big, len, NULL, 5000, &res, &e) != 0 ||
		    !res.exited || res.code != 0 || res.timed_out)
			good = 0;
	ok(good, "a program that exits without reading 8 MiB costs no SIGPIPE");
	free(big);
}

/*
 * The test blocks and ignores signals as a server might: the program
 * must still get the defaults.
 */
static void
test_signals(void)
{
	const char *term = script("term", "kill -TERM $$\nexit 0", 0755);
	const char *pipe_ = script("pipe", "kill -PIPE $$\nexit 0", 0755);
	const char *hup = script("hup", "kill -HUP $$\nexit 0", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	sigset_t set;

	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	is_int(mdm_proc_run(term, NULL, NULL, 0, NULL, 5000, &res, &e), 0,
	    "a program killed by a signal is a run");
	ok(!res.exited && res.code == SIGTERM && !res.timed_out,
	    "killed by SIGTERM reported, though ignored here");
	is_int(mdm_proc_run(pipe_, NULL, NULL, 0, NULL, 5000, &res, &e), 0,
	    "SIGPIPE program runs");
	ok(!res.exited && res.code == SIGPIPE,
	    "SIGPIPE is back to its default in the program");
	is_int(mdm_proc_run(hup, NULL, NULL, 0, NULL, 5000, &res, &e), 0,
	    "SIGHUP program runs");
	ok(!res.exited && res.code == SIGHUP,
	    "the program starts with an empty signal mask");

	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGTERM, SIG_DFL);
}

static void
test_timeout(void)
{
	const char *p = script("sleep", "exec sleep 10", 0755);
	const char *bg = script("background", "sleep 3 2>/dev/null &\n"
	    "echo hi\nexit 0", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	long long t0, took;

	mdm_buf_init(&out, 1024);
	t0 = now_ms();
	is_int(mdm_proc_run(p, NULL, "x", 1, &out, 300, &res, &e), 0,
	    "a timed out program is still a run");
	took = now_ms() - t0;
	ok(res.timed_out && !res.exited && res.code == SIGKILL,
	    "sleep 10 is killed at the deadline");
	ok(took >= 290 && took < 1000, "and the call returns in time");
	if (took < 290 || took >= 1000)
		tap_diag("took %lld ms", took);

	/* It exits, but what it started still holds stdout open. */
	mdm_buf_reset(&out);
	t0 = now_ms();
	is_int(mdm_proc_run(bg, NULL, NULL, 0, &out, 300, &res, &e), 0,
	    "a program leaving stdout to a descendant runs");
	took = now_ms() - t0;
	ok(res.timed_out && res.exited && res.code == 0 && took < 1000,
	    "its run ends at the deadline, with its own exit status");
	is_str((char *)out.data, "hi\n", "its output up to then is kept");
	mdm_buf_release(&out);
}

static void
test_env(void)
{
	const char *p = script("env", "printf '%s %s %s\\n' \"$MDM_PROC_A\" "
	    "\"$MDM_PROC_B\" \"$MDM_PROC_C\"", 0755);
	const char *env[] = { "MDM_PROC_A=new", "MDM_PROC_B=b c", NULL };
	const char *bad[] = { "MDM_PROC_A=x", "NOEQUALS", NULL };
	const char *noname[] = { "=x", NULL };
	const char **many;
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	size_t i;

	setenv("MDM_PROC_A", "old", 1);
	setenv("MDM_PROC_C", "kept", 1);
	mdm_buf_init(&out, 1024);
	is_int(mdm_proc_run(p, env, NULL, 0, &out, 5000, &res, &e), 0,
	    "env program runs");
	is_str((char *)out.data, "new b c kept\n",
	    "env adds, overrides and inherits");

	mdm_buf_reset(&out);
	is_int(mdm_proc_run(p, NULL, NULL, 0, &out, 5000, &res, &e), 0,
	    "no env runs");
	is_str((char *)out.data, "old  kept\n", "no env: only what we have");

	is_int(mdm_proc_run(p, bad, NULL, 0, &out, 5000, &res, &e), -1,
	    "an entry without = is refused");
	is_int(e.code, MDM_E_USAGE, "as a usage error");
	is_int(mdm_proc_run(p, noname, NULL, 0, &out, 5000, &res, &e), -1,
	    "an entry without a name is refused");

	if ((many = calloc(MDM_PROC_ENV_MAX + 2, sizeof(*many))) == NULL)
		exit(99);
	for (i = 0; i < MDM_PROC_ENV_MAX + 1; i++)
		many[i] = "MDM_PROC_MANY=1";
	e.code = MDM_E_OK;
	is_int(mdm_proc_run(p, many, NULL, 0, &out, 5000, &res, &e), -1,
	    "more variables than the cap are refused");
	is_int(e.code, MDM_E_CONFIG, "as a configuration error");
	free(many);
	mdm_buf_release(&out);
	unsetenv("MDM_PROC_A");
	unsetenv("MDM_PROC_C");
}

static void
test_devnull(void)
{
	/* A character device that is not a terminal: /dev/null. */
	const char *p = script("devnull", "echo 'not ok - leaked stdout'\n"
	    "[ -c /dev/fd/1 ] && [ ! -t 1 ] && exit 7\nexit 1", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };

	is_int(mdm_proc_run(p, NULL, NULL, 0, NULL, 5000, &res, &e), 0,
	    "out NULL runs");
	ok(res.exited && res.code == 7, "out NULL: stdout is /dev/null");
}

static void
test_cap(void)
{
	const char *p = script("flood", "head -c 100000 /dev/zero\nexit 4",
	    0755);
	const char *exact = script("exact", "printf 0123456789", 0755);
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;

	mdm_buf_init(&out, 100);
	is_int(mdm_proc_run(p, NULL, NULL, 0, &out, 5000, &res, &e), 0,
	    "output over the cap is still a run");
	ok(res.out_truncated && out.len == 100, "kept up to the cap, flagged");
	ok(res.exited && res.code == 4 && !res.timed_out,
	    "the program ran to its end, not killed");

	mdm_buf_release(&out);
	mdm_buf_init(&out, 10);
	is_int(mdm_proc_run(exact, NULL, NULL, 0, &out, 5000, &res, &e), 0,
	    "output of exactly the cap runs");
	ok(!res.out_truncated && out.len == 10, "exactly the cap: not flagged");
	mdm_buf_release(&out);
}

static void
test_cannot_run(void)
{
	const char *plain = script("plain", "exit 0", 0644);
	char missing[4200];
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };

	snprintf(missing, sizeof(missing), "%s/no-such-program", tap_tmpdir());
	is_int(mdm_proc_run(missing, NULL, "x", 1, NULL, 5000, &res, &e), -1,
	    "a missing program fails");
	is_int(e.code, MDM_E_CONFIG, "as a configuration error");
	ok(strstr(e.msg, "No such file") != NULL, "saying why: %s", e.msg);

	e.code = MDM_E_OK;
	is_int(mdm_proc_run(plain, NULL, "x", 1, NULL, 5000, &res, &e), -1,
	    "a non-executable file fails");
	is_int(e.code, MDM_E_CONFIG, "as a configuration error");

	e.code = MDM_E_OK;
	is_int(mdm_proc_run(tap_tmpdir(), NULL, NULL, 0, NULL, 5000, &res,
	    &e), -1, "a directory fails");
	is_int(e.code, MDM_E_CONFIG, "as a configuration error");

	e.code = MDM_E_OK;
	is_int(mdm_proc_run(plain, NULL, NULL, 0, NULL, 0, &res, &e), -1,
	    "a zero timeout is refused");
	is_int(e.code, MDM_E_USAGE, "as a usage error");
}

static void
test_relative(void)
{
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	char cwd[4096];

	script("rel", "echo relative", 0755);
	if (getcwd(cwd, sizeof(cwd)) == NULL || chdir(tap_tmpdir()) == -1) {
		tap_skip(1, "cannot change directory");
		return;
	}
	mdm_buf_init(&out, 1024);
	mdm_proc_run("./rel", NULL, NULL, 0, &out, 5000, &res, &e);
	is_str((char *)out.data, "relative\n", "a relative path runs");
	mdm_buf_release(&out);
	if (chdir(cwd) == -1)
		exit(99);
}

/* A daemon that closed 0 and 1 gets them back from socketpair(). */
static void
test_closed_stdio(const char *cat)
{
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	int saved_in, saved_out, rc;

	fflush(stdout);
	if ((saved_in = dup(0)) == -1 || (saved_out = dup(1)) == -1) {
		tap_skip(2, "cannot save stdin and stdout");
		return;
	}
	close(0);
	close(1);
	mdm_buf_init(&out, 1024);
	rc = mdm_proc_run(cat, NULL, "stdio\n", 6, &out, 5000, &res, &e);
	if (dup2(saved_in, 0) == -1 || dup2(saved_out, 1) == -1)
		exit(99);
	close(saved_in);
	close(saved_out);
	is_int(rc, 0, "cat runs with our stdin and stdout closed");
	is_str((char *)out.data, "stdio\n", "and still echoes");
	mdm_buf_release(&out);
}

struct job {
	const char *prog;
	int id;
	int failures;
	char why[256];
};

static void *
run_job(void *arg)
{
	struct job *j = arg;
	struct mdm_proc_result res;
	struct mdm_err e = { 0 };
	struct mdm_buf out;
	char idvar[64], head[32];
	const char *env[] = { idvar, NULL };
	size_t len = 200000 + (size_t)j->id * 4099, hl;
	unsigned char *in = pattern(len, (unsigned)j->id + 10);
	int r;

	snprintf(idvar, sizeof(idvar), "MDM_PROC_ID=%d", j->id);
	hl = (size_t)snprintf(head, sizeof(head), "%d\n", j->id);
	mdm_buf_init(&out, MIB);
	for (r = 0; r < ROUNDS; r++) {
		mdm_buf_reset(&out);
		if (mdm_proc_run(j->prog, env, in, len, &out, 20000, &res,
		    &e) != 0) {
			j->failures++;
			snprintf(j->why, sizeof(j->why), "%s", e.msg);
		} else if (!res.exited || res.code != 0 || res.timed_out ||
		    out.len != hl + len || memcmp(out.data, head, hl) != 0 ||
		    memcmp(out.data + hl, in, len) != 0) {
			j->failures++;
			snprintf(j->why, sizeof(j->why), "wrong output: %zu "
			    "bytes, exit %d", out.len, res.code);
		}
	}
	mdm_buf_release(&out);
	free(in);
	return NULL;
}

static void
test_threads(void)
{
	const char *p = script("ident", "printf '%s\\n' \"$MDM_PROC_ID\"\n"
	    "exec cat", 0755);
	pthread_t tids[NTHREADS];
	struct job jobs[NTHREADS];
	int i, bad = 0;

	for (i = 0; i < NTHREADS; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].prog = p;
		jobs[i].id = i;
		if (pthread_create(&tids[i], NULL, run_job, &jobs[i]) != 0) {
			perror("pthread_create");
			exit(99);
		}
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(tids[i], NULL);
	for (i = 0; i < NTHREADS; i++)
		if (jobs[i].failures) {
			bad++;
			tap_diag("thread %d: %d failures: %s", i,
			    jobs[i].failures, jobs[i].why);
		}
	ok(bad == 0, "%d threads x %d runs each get their own output",
	    NTHREADS, ROUNDS);
}

int
main(void)
{
	const char *cat = script("cat", "exec cat", 0755);

	test_echo(cat);
	test_write_first();
	test_exit_codes();
	test_ignores_stdin();
	test_timeout();
	test_env();
	test_devnull();
	test_cap();
	test_cannot_run();
	test_relative();
	test_closed_stdio(cat);
	test_threads();
	test_signals();
	return tap_done();
}

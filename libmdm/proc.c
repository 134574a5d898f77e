#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "proc.h"
#include "mdm_int.h"

extern char **environ;

/* Bytes read from the program per recv(): stack, so keep it modest. */
#define CHUNK 16384

/* The length of NAME in "NAME=VALUE" (the whole string when no '='). */
static size_t
name_len(const char *var)
{
	const char *eq = strchr(var, '=');

	return eq != NULL ? (size_t)(eq - var) : strlen(var);
}

static int
replaced(const char *var, const char *const *add, size_t nadd)
{
	size_t n = name_len(var), i;

	for (i = 0; i < nadd; i++)
		if (name_len(add[i]) == n && memcmp(add[i], var, n) == 0)
			return 1;
	return 0;
}

static int
too_many(struct mdm_err *e)
{
	return mdm_err_set(e, MDM_E_CONFIG, "more than %d environment "
	    "variables for the program", MDM_PROC_ENV_MAX);
}

/*
 * environ plus add, add winning on a name both have.  The array is
 * owned (free it); the strings are borrowed from environ and add.
 */
static int
make_env(const char *const *add, char ***envp, struct mdm_err *e)
{
	size_t nadd = 0, ninh = 0, i, k = 0;
	char **v;

	/* The counts stop one past the cap: enough to refuse. */
	while (add != NULL && add[nadd] != NULL && nadd <= MDM_PROC_ENV_MAX) {
		if (add[nadd][0] == '=' || strchr(add[nadd], '=') == NULL)
			return mdm_err_set(e, MDM_E_USAGE, "environment entry "
			    "%zu is not NAME=VALUE", nadd);
		nadd++;
	}
	while (environ != NULL && environ[ninh] != NULL &&
	    ninh <= MDM_PROC_ENV_MAX)
		ninh++;
	if (nadd > MDM_PROC_ENV_MAX || ninh > MDM_PROC_ENV_MAX)
		return too_many(e);
	if ((v = calloc(ninh + nadd + 1, sizeof(*v))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	for (i = 0; i < ninh; i++)
		if (!replaced(environ[i], add, nadd))
			v[k++] = environ[i];
	/* exec never writes through envp: dropping const is safe. */
	for (i = 0; i < nadd; i++)
		v[k++] = (char *)add[i];
	if (k > MDM_PROC_ENV_MAX) {
		free(v);
		return too_many(e);
	}
	*envp = v;
	return 0;
}

static void
close_fd(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/*
 * A server that closed 0 or 1 gets those numbers back from socketpair;
 * moving our descriptors above 2 keeps the child's dup2 onto 0 and 1
 * from ever overwriting one of them, whatever numbers the kernel hands
 * out and in whichever order.
 */
static int
lift(int *fd)
{
	int n;

	if (*fd > 2)
		return 0;
	if ((n = fcntl(*fd, F_DUPFD_CLOEXEC, 3)) == -1)
		return -1;
	close(*fd);
	*fd = n;
	return 0;
}

/* A socket pair, both ends close-on-exec and above 2, ours nonblocking. */
static int
make_pair(int sv[2], struct mdm_err *e)
{
	int fl;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return mdm_err_set_sys(e, MDM_E_IO, errno, "socketpair");
	if (lift(&sv[0]) == -1 || lift(&sv[1]) == -1 ||
	    (fl = fcntl(sv[0], F_GETFL)) == -1 ||
	    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) == -1)
		return mdm_err_set_sys(e, MDM_E_IO, errno, "fcntl");
	return 0;
}

/* Why a program did not start, as the caller should treat it. */
static enum mdm_errc
spawn_errc(int err)
{
	switch (err) {
	case ENOENT:
	case EACCES:
	case EPERM:
	case ENOEXEC:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case ENAMETOOLONG:
		return MDM_E_CONFIG;	/* the operator named the wrong file */
	case ETXTBSY:			/* being written right now */
	case EAGAIN:			/* out of processes */
		return MDM_E_TEMPFAIL;
	}
	return MDM_E_IO;
}

static int
spawn(const char *prog, char **envp, int in_fd, int out_fd, pid_t *pid,
    struct mdm_err *e)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t none, dfl;
	char *argv[2];
	int err, fa_ok = 0, sa_ok = 0, rc = -1;

	if ((err = posix_spawn_file_actions_init(&fa)) != 0)
		goto failed;
	fa_ok = 1;
	if ((err = posix_spawnattr_init(&sa)) != 0)
		goto failed;
	sa_ok = 1;
	/* A server may block or ignore signals; the program gets defaults. */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGCHLD);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	if ((err = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) != 0 ||
	    (err = out_fd != -1 ?
	    posix_spawn_file_actions_adddup2(&fa, out_fd, 1) :
	    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY,
	    0)) != 0 ||
	    (err = posix_spawnattr_setsigmask(&sa, &none)) != 0 ||
	    (err = posix_spawnattr_setsigdefault(&sa, &dfl)) != 0 ||
	    (err = posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF)) != 0)
		goto failed;
	/* exec never writes through argv: dropping const is safe. */
	argv[0] = (char *)prog;
	argv[1] = NULL;
	if ((err = posix_spawn(pid, prog, &fa, &sa, argv, envp)) != 0) {
		*pid = -1;
		mdm_err_set_sys(e, spawn_errc(err), err, "cannot run %s",
		    prog);
		goto out;
	}
	rc = 0;
	goto out;
failed:
	mdm_err_set_sys(e, MDM_E_SOFTWARE, err, "cannot set up %s", prog);
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (sa_ok)
		posix_spawnattr_destroy(&sa);
	return rc;
}

/* Writes what stdin takes now; closes it when done or refused. */
static void
feed(int *fd, const unsigned char *in, size_t len, size_t *off)
{
	ssize_t n;

	n = send(*fd, in + *off, len - *off, MSG_NOSIGNAL);
	if (n > 0)
		*off += (size_t)n;
	else if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	/* EPIPE or ECONNRESET: the program stopped reading, its choice. */
	if (n <= 0 || *off == len)
		close_fd(fd);
}

/* Reads what stdout has now; closes it at EOF.  -1 only out of memory. */
static int
drain(int *fd, struct mdm_buf *out, unsigned char *chunk,
    struct mdm_proc_result *res, struct mdm_err *e)
{
	size_t room;
	ssize_t n;

	n = recv(*fd, chunk, CHUNK, 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return 0;
	if (n <= 0) {
		close_fd(fd);
		return 0;
	}
	room = out->cap - out->len;
	if ((size_t)n > room) {
		res->out_truncated = 1;
		n = (ssize_t)room;
	}
	return n > 0 ? mdm_buf_append(out, chunk, (size_t)n, e) : 0;
}

/*
 * Waits for pid alone (never -1: other threads have children too), in
 * short naps so the deadline holds without a SIGCHLD handler; at the
 * deadline, or at once when *timed_out is already set, kills it.
 */
static int
reap(pid_t pid, long long deadline, int *status, int *timed_out,
    struct mdm_err *e)
{
	struct timespec nap;
	long long left;
	pid_t w;
	int delay = 1;

	for (;;) {
		w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 0;
		if (w == -1 && errno != EINTR)
			return mdm_err_set_sys(e, MDM_E_SOFTWARE, errno,
			    "lost the exit status of the program");
		if (w == -1)
			continue;
		if (*timed_out || (left = deadline - mdm_monotonic_ms()) <= 0)
			break;
		if (delay > left)
			delay = (int)left;
		nap.tv_sec = 0;
		nap.tv_nsec = (long)delay * 1000000;
		nanosleep(&nap, NULL);
		if (delay < 20)
			delay *= 2;
	}
	*timed_out = 1;
	kill(pid, SIGKILL);
	while ((w = waitpid(pid, status, 0)) == -1 && errno == EINTR)
		;
	if (w != pid)
		return mdm_err_set_sys(e, MDM_E_SOFTWARE, errno,
		    "lost the exit status of the program");
	return 0;
}

int
mdm_proc_run(const char *prog, const char *const *env, const void *in,
    size_t in_len, struct mdm_buf *out, int timeout_ms,
    struct mdm_proc_result *res, struct mdm_err *e)
{
	unsigned char chunk[CHUNK];
	struct pollfd pfd[2];
	char **envp = NULL;
	int in_sv[2] = { -1, -1 }, out_sv[2] = { -1, -1 };
	int status = 0, rc = -1, r, ii, oi, np;
	size_t off = 0;
	long long deadline, left;
	pid_t pid = -1;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (res == NULL || prog == NULL || *prog == '\0' || timeout_ms <= 0 ||
	    (in == NULL && in_len > 0)) {
		mdm_err_set(e, MDM_E_USAGE, "bad arguments to mdm_proc_run");
		goto out;
	}
	if (make_env(env, &envp, e) == -1 || make_pair(in_sv, e) == -1 ||
	    (out != NULL && make_pair(out_sv, e) == -1))
		goto out;
	if (spawn(prog, envp, in_sv[1], out_sv[1], &pid, e) == -1)
		goto out;
	deadline = mdm_monotonic_ms() + timeout_ms;
	close_fd(&in_sv[1]);
	close_fd(&out_sv[1]);
	if (in_len == 0)
		close_fd(&in_sv[0]);
	while (in_sv[0] != -1 || out_sv[0] != -1) {
		if ((left = deadline - mdm_monotonic_ms()) <= 0) {
			res->timed_out = 1;
			break;
		}
		np = 0;
		ii = oi = -1;
		if (in_sv[0] != -1) {
			pfd[np].fd = in_sv[0];
			pfd[np].events = POLLOUT;
			ii = np++;
		}
		if (out_sv[0] != -1) {
			pfd[np].fd = out_sv[0];
			pfd[np].events = POLLIN;
			oi = np++;
		}
		if ((r = poll(pfd, (nfds_t)np, (int)left)) == -1 &&
		    errno != EINTR) {
			mdm_err_set_sys(e, MDM_E_IO, errno, "poll");
			goto out;
		}
		if (r <= 0)
			continue;
		if (ii != -1 && pfd[ii].revents != 0)
			feed(&in_sv[0], in, in_len, &off);
		if (oi != -1 && pfd[oi].revents != 0 &&
		    drain(&out_sv[0], out, chunk, res, e) == -1)
			goto out;
	}
	close_fd(&in_sv[0]);
	close_fd(&out_sv[0]);
	r = reap(pid, deadline, &status, &res->timed_out, e);
	pid = -1;
	if (r == -1)
		goto out;
	if (WIFEXITED(status)) {
		res->exited = 1;
		res->code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		res->code = WTERMSIG(status);
	}
	rc = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	close_fd(&in_sv[0]);
	close_fd(&in_sv[1]);
	close_fd(&out_sv[0]);
	close_fd(&out_sv[1]);
	if (out != NULL && out->secret)
		OPENSSL_cleanse(chunk, sizeof(chunk));
	free(envp);
	return rc;
}

/*
 * proc: runs an operator-supplied program (a CSR check, a token maker)
 * from inside a server, safely for the server.  The program gets bytes
 * on stdin and may answer on stdout; it never runs through a shell, so
 * nothing in its input or name is interpreted.
 *
 * Invariants: the server never sees a SIGPIPE (stdin is a socket written
 * with MSG_NOSIGNAL, so a program that exits without reading costs an
 * EPIPE that is ignored); no run outlives its deadline (the program is
 * sent SIGKILL, and reaped, when it passes); no process-wide state is
 * touched (no signal handlers or masks change, only the program's own pid
 * is waited for, every descriptor is close-on-exec), so threads may run
 * programs at the same time.  The child gets an empty signal mask and
 * default dispositions for SIGPIPE, SIGCHLD, SIGINT, SIGTERM and SIGHUP,
 * whatever the server blocked or ignored.
 *
 * What the caller must do: keep SIGCHLD at its default (a server that
 * ignores it has its children reaped by the kernel, and the exit status
 * is lost), not reap children with waitpid(-1) in another thread, not
 * change the environment while a program starts, and open its own
 * descriptors close-on-exec, or the program inherits them.
 */
#ifndef MDM_PROC_H
#define MDM_PROC_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

/* The most environment variables a program gets, inherited plus added. */
#define MDM_PROC_ENV_MAX 4096

struct mdm_proc_result {
	int exited;		/* 1: exited normally, status in code */
	int code;		/* exit status, or the signal number when !exited */
	int timed_out;		/* the deadline came first: killed if running */
	int out_truncated;	/* stdout went past out's cap: tail dropped */
};

/*
 * Runs prog (a path, absolute or relative to the working directory; no
 * PATH search, no shell; argv is {prog, NULL}).
 *
 * Its environment is this process's plus the NAME=VALUE strings in env
 * (NULL-terminated; env may be NULL); a name given in env replaces the
 * inherited variable of that name; an entry that is not NAME=VALUE fails
 * with MDM_E_USAGE, more than MDM_PROC_ENV_MAX variables in all with
 * MDM_E_CONFIG.
 *
 * in/in_len (borrowed) is fed to its stdin, which then reads EOF; a
 * program that exits or closes stdin before reading it all is not an
 * error.  Its stdout is appended to out; output past out's cap is read
 * and dropped, and res->out_truncated set, so the program is never
 * blocked or killed for writing too much: a caller that needs the whole
 * output must check out_truncated.  A secret out (a token) has our copies
 * of the bytes wiped too.  With out NULL, stdout is /dev/null.
 * stderr is inherited, so the program's complaints reach the server log.
 * stdin and stdout are read and written together, so a program that
 * writes a lot before reading does not deadlock.
 *
 * timeout_ms (> 0) bounds the whole run: when it passes before the
 * program has exited and closed its stdout, the program is sent SIGKILL
 * (a descendant holding stdout open is not), reaped, and res->timed_out
 * set; exited/code then say how it ended.
 *
 * Returns 0 when the program ran, whatever it exited with: res (required)
 * says.  Returns -1 when it could not be started (MDM_E_CONFIG with the
 * reason: missing, not executable; MDM_E_TEMPFAIL: out of processes, or
 * the file is being written), on a bad argument (MDM_E_USAGE), on a
 * system error (MDM_E_IO, MDM_E_SOFTWARE); a program already started is
 * then killed and reaped first.
 */
int mdm_proc_run(const char *prog, const char *const *env, const void *in,
    size_t in_len, struct mdm_buf *out, int timeout_ms,
    struct mdm_proc_result *res, struct mdm_err *e);

#endif

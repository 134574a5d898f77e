/*
 * mdm-devsim: simulated Apple devices for tests, demos and load.  This
 * file's module parses the command lines (enroll, run, list, bench),
 * spreads devices over worker threads (each with its own keep-alive
 * HTTP connection) and prints one record per device or command result;
 * device.c plays each device on the wire.  main.c only runs it.
 */
#ifndef MDM_DEVSIM_H
#define MDM_DEVSIM_H

#include "cli.h"

extern const struct mdm_cli_tool mdm_devsim_tool;

#endif

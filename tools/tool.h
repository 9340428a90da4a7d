/* tool.h - shared pieces of the cbffi command-line tool. */
#ifndef CBFFI_TOOL_H
#define CBFFI_TOOL_H

#include "cbffi.h"

/* Create a client for connstr with an operation timeout (seconds, 0 =
   default).  Prints the reason and returns NULL on a bad string. */
cbffi_client *tool_connect(const char *connstr, const char *user,
                           const char *pass, double timeout, int *rc_out);

/* `cbffi bench`. */
int tool_bench(int argc, char **argv);

#endif

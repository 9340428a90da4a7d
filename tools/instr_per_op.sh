#!/usr/bin/env bash
# Userland instructions per operation of a Python client path, deterministically:
# valgrind --tool=callgrind total for N2 operations minus the total for N1, over N2-N1
# (startup and JIT warm-up cancel out).  Needs a memcached on PORT (default 11211).
#   tools/instr_per_op.sh INTERP OP N1 N2 [PORT] [cbffi|pylibmc]
#   e.g. tools/instr_per_op.sh /usr/bin/python3 get 2000 12000 22122
#        tools/instr_per_op.sh /usr/bin/pypy3 get_multi 1000 4000 22122
# Multi ops also print instructions per key (batches of 100).  The C core alone:
#   valgrind --tool=callgrind build/cbffi bench -U memcached://127.0.0.1:PORT --op get
#   then callgrind_annotate --inclusive=yes: cbffi_get + cbffi_wait per call.
set -euo pipefail
interp=$1; op=$2; n1=$3; n2=$4; port=${5:-11211}; client=${6:-cbffi}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$here/../python:/usr/lib/python3/dist-packages
total() {
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    "$interp" "$here/ops_loop.py" "$op" "$1" "$port" "$client" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(total "$n1"); b=$(total "$n2")
per=$(( (b - a) / (n2 - n1) ))
case $op in *multi) echo "$interp $op $client: $per instructions/op, $(( per / 100 )) per key";;
                 *) echo "$interp $op $client: $per instructions/op";; esac

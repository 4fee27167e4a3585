"""The request loop both dnf helpers share (dnf4-helper.py, dnf5-helper.py): one request per stdin
line, one answer per stdout line, in order. One process serves every architecture of a run, so
Python and dnf are started once, and only one architecture's sack is in memory at a time."""
import ctypes
import gc
import json
import os
import sys
import traceback

try:
    MALLOC_TRIM = ctypes.CDLL('libc.so.6').malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to trim
    MALLOC_TRIM = None


def serve(resolve_arch):
    answers = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # whatever dnf or its C libraries print must not corrupt the answers
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            answer = resolve_arch(req)
        except Exception:  # one architecture's crash must not cost the others their answers
            answer = {'error': traceback.format_exc()}
        answer['id'] = req.get('id')
        answers.write(json.dumps(answer) + '\n')
        answers.flush()
        # The previous architecture's sack is freed before the next one loads, and given back to the
        # system: glibc keeps freed memory otherwise, and the helper would hold the largest sack seen.
        gc.collect()
        if MALLOC_TRIM is not None:
            MALLOC_TRIM(0)

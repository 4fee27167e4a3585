"""The request loop both dnf helpers share (dnf4-helper.py, dnf5-helper.py): one request per stdin
line, one answer per stdout line, each carrying its request's id. One process serves every
architecture of a run, so Python and dnf are started once. With `threads` above one, that many
architectures are resolved at once: loading repo metadata into libsolv (most of an architecture's
time) runs without the GIL, so the loads of different architectures use different cores, while
Python and `import dnf` are paid once."""
import ctypes
import gc
import json
import os
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

try:
    MALLOC_TRIM = ctypes.CDLL('libc.so.6').malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to trim
    MALLOC_TRIM = None


def threads_from_argv(argv):
    """`--threads N` (default 1)."""
    for i, arg in enumerate(argv):
        if arg == '--threads' and i + 1 < len(argv):
            return max(1, int(argv[i + 1]))
    return 1


def serve(resolve_arch, threads=1):
    answers = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # whatever dnf or its C libraries print must not corrupt the answers
    writing = threading.Lock()

    def handle(req):
        # Every request is answered, whatever fails: a pool thread's exception would otherwise be
        # kept in its future, unseen, and the caller would wait for the answer forever.
        try:
            answer = resolve_arch(req)
            answer['id'] = req.get('id')
            line = json.dumps(answer) + '\n'
            del answer
        except Exception:  # one architecture's crash must not cost the others their answers
            line = json.dumps({'error': traceback.format_exc(), 'id': req.get('id')}) + '\n'
        with writing:
            answers.write(line)
            answers.flush()
        # The architecture's sack is freed and given back to the system: glibc keeps freed memory
        # otherwise, and the helper would hold the largest sacks seen.
        gc.collect()
        if MALLOC_TRIM is not None:
            MALLOC_TRIM(0)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(handle, json.loads(line))

"""Runs a command and prints its wall time, CPU time (user + system) and peak resident memory
(of the child), so the benchmark scripts need nothing beyond Python.

usage: python measure.py LABEL COMMAND [ARGS...]
"""

import resource
import subprocess
import sys
import time

label, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
result = subprocess.run(command, stdout=subprocess.DEVNULL)
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak_mib = usage.ru_maxrss / 1024
cpu = usage.ru_utime + usage.ru_stime
if result.returncode != 0:
    sys.exit(f"{label}: {' '.join(command)} failed with exit code {result.returncode}")
print(f"{label}\t{elapsed:.3f}\t{peak_mib:.0f}\t{cpu:.2f}")

"""jointspace: semantic image search where words and images share one learnt vector space."""

import os

__version__ = "0.1.0"

# torch's OpenMP threads wait for the next parallel region by spinning (libgomp's default) unless
# told otherwise. Between the layers of a batch, and while the calling thread decodes and resizes
# pictures, the spinning thread burns a core the caller could use: on 2 shared cores one batch of 64
# pictures took 4.7-5.3 s of user CPU spinning against 1.5-1.7 s waiting passively, and ~1.7 × the
# wall time (bench/omp_wait.py). Set before any module imports torch (this package is imported
# first by every entry point); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

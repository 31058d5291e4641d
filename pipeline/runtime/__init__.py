"""How the work runs, whatever the stage: the engine (local threads or dask.distributed), the
resume cache of finished zonal partitions, input checksums, atomic file replacement, the
``--progress json`` stream (:mod:`pipeline.runtime.progress`, used as a module), and the
ahead-of-time compile of the numba kernels (``python -m pipeline.runtime.kernels``; not imported
here, so that ``-m`` runs it fresh)."""

from pipeline.runtime.atomic import PARTIAL_PREFIX, final_name, partial_path, replacing
from pipeline.runtime.checksums import checksum, prefetch
from pipeline.runtime.engine import Engine, in_background
from pipeline.runtime.resume import PartitionCache, cached

__all__ = [
    "PARTIAL_PREFIX",
    "Engine",
    "PartitionCache",
    "cached",
    "checksum",
    "final_name",
    "in_background",
    "partial_path",
    "prefetch",
    "replacing",
]

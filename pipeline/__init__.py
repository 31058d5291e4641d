"""EcoVoucher: ecological-land vouchers (生态券) from land-use maps, and site VEP.

Data flow, one module per stage:
    catalog/config → ingest → zonal → accounting → export   (run.py ties them together)
    vep (site valuation), demo (synthetic demo data), cli (argument parsing only).
"""

__version__ = "0.1.0"


def _numba_cache_dir() -> None:
    """numba caches compiled kernels beside the modules, else in the user's cache folder; when
    neither can be written (an install owned by root, HOME read-only or missing) it fails with
    "no locator available". Give it a folder of this user's in the system's temporary folder
    then (NUMBA_CACHE_DIR, which a user may also set)."""
    import os
    import tempfile

    if "NUMBA_CACHE_DIR" in os.environ or os.access(os.path.dirname(__file__), os.W_OK):
        return
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    probe = cache
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.access(probe, os.W_OK):
        return
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"ecovoucher-numba-{uid}")


_numba_cache_dir()

"""Python processes started by the tests get the same read guard as the tests (tests/readguard.py):
this folder is put on PYTHONPATH, and EMOTIONSITE_READ_GUARD names the repository."""

import os

if os.environ.get("EMOTIONSITE_READ_GUARD"):
    import importlib.util
    import sys

    _spec = importlib.util.spec_from_file_location(
        "_emotionsite_readguard", os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "readguard.py")
    )
    _guard = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _guard
    _spec.loader.exec_module(_guard)
    _guard.install(os.environ["EMOTIONSITE_READ_GUARD"], child=True)

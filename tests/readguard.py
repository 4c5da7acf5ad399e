"""The test suite reads nothing beside the repository.

The datasets live in ``../shared`` on the development machine and nowhere on a fresh clone, so a
test that reads them passes here and fails for everyone else. ``install`` adds an audit hook
(``sys.addaudithook``; it sees every ``open``, ``io.open``, ``os.open``, ``Path.read_*``,
``np.load``, ``shutil.copy``, ... and every directory listing: ``os.listdir``, ``os.scandir``,
``glob``, ``Path.glob``, ``os.walk``) that raises ``OutsideRepoRead`` naming the path when it is
under the repository's parent folder but not under the repository. Commands started with
``subprocess`` are checked too (their program, working folder and path-like arguments), and
Python children run the same hook through ``SITE_DIR/sitecustomize.py`` when ``ENV`` is set
(tests/conftest.py sets it and ``PYTHONPATH``).

Paths are checked as written (``..`` removed) and with symbolic links resolved. Allowed under the
parent folder all the same: the Python installation (a virtualenv elsewhere), the temporary
folder when it sits there, and in a clone directly in the temporary folder (git clone . /tmp/x)
what the run makes there (``TEMP_NAMES``, or entries that were not there when the guard was
installed),
and dot-folders of the home folder when the
repository sits directly in it (~/.cache, ~/.keras); ``<parent>/shared`` never is.

Audit hooks cannot be removed: the hook does nothing unless the guard is enabled, and every hit is
also recorded (``take_violations``) so that catching the exception does not hide it: the
conftest fails the test. Files opened by native code (``cv2.imread``, libsndfile) are not seen;
the listing that found them is.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import tempfile
from functools import lru_cache

ENV = "EMOTIONSITE_READ_GUARD"  # the repository's path, for Python children
REFUSED_ENV = "EMOTIONSITE_READ_GUARD_REFUSED"  # names given to ``refuse``, for Python children
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "readguard_site")

_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "subprocess.Popen", "os.exec", "os.posix_spawn"})
_state = {"on": False, "installed": False, "repo": "", "parent": "", "shared": "", "allowed": (), "home_dots": False, "parent_is_temp": False,
          "before": frozenset(), "refused": frozenset(), "child": False}
_violations: list[str] = []


class OutsideRepoRead(AssertionError):
    """A test touched a path beside the repository (where ../shared lives)."""


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder if folder.endswith(os.sep) else folder + os.sep)


@lru_cache(maxsize=16384)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _real(path: str) -> str:
    """os.path.realpath, with the folders' answers cached (an lstat per call, not one per part)."""
    folder, name = os.path.split(path)
    real = os.path.join(_real_folder(folder), name)
    return os.path.realpath(real) if os.path.islink(real) else real


def _forbidden(path: str) -> bool:
    s = _state
    if not _under(path, s["parent"]) or _under(path, s["repo"]):
        return False
    if _under(path, s["shared"]):
        return True
    if s["home_dots"] and path[len(s["parent"]) :].lstrip(os.sep).startswith("."):
        return False
    name = path[len(s["parent"]) :].lstrip(os.sep).split(os.sep)[0]
    if name in s["refused"]:
        return True
    if s["parent_is_temp"] and name and _made_by_the_run(name):  # (the folder itself stays refused)
        return False
    return not any(_under(path, allowed) for allowed in s["allowed"])


# Names a test run makes in the temporary folder (tempfile's default prefix, pytest's folders,
# multiprocessing, the suite's lock files and its tempfile prefixes).
TEMP_NAMES = ("tmp*", "pytest-of-*", "pymp-*", ".*", "emotionsite-*", "bench-*", "voice-formats-*",
              "listener-*", "editor-*", "playwright*")


def _made_by_the_run(name: str) -> bool:
    """In a clone whose parent is the temporary folder: is ``name`` (an entry of that folder)
    one the run makes? Its name says so, or it was not there when the guard was installed (a
    file or folder a library makes with its own prefix, such as TensorFlow's
    ``__autograph_generated_file*.py``). What was there before the run stays refused."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in TEMP_NAMES) or name not in _state["before"]


def refuse(name: str) -> None:
    """Refuse the entry ``name`` of the repository's parent folder whatever the rules above say:
    the guard's own tests probe with a name that need not exist, which a clone in the temporary
    folder would otherwise take for one the run made."""
    _state["refused"] = _state["refused"] | {name}
    os.environ[REFUSED_ENV] = os.pathsep.join(sorted(_state["refused"]))  # for Python children


def outside(path, cwd: str | None = None) -> str | None:
    """The offending absolute path if ``path`` lies beside the repository, else None."""
    if path is None or isinstance(path, int):
        return None
    try:
        text = os.fsdecode(path)
    except TypeError:
        return None
    if cwd is not None and not os.path.isabs(text):
        text = os.path.join(os.fsdecode(cwd), text)
    written = os.path.abspath(text)
    if _forbidden(written):
        return written
    real = _real(written)
    return real if real != written and _forbidden(real) else None


def _is_parent(path) -> bool:
    try:
        return os.path.abspath(os.fsdecode(path)) == _state["parent"]
    except TypeError:
        return False


def _command_paths(program: list, args) -> list[str]:
    """What a started command could read: its program and path-like arguments (``--data=X``)."""
    if isinstance(args, (str, bytes)) or hasattr(args, "__fspath__"):
        args = os.fsdecode(args).split()  # a shell command line
    found = []
    for arg in [*program, *(args or ())]:
        try:
            text = os.fsdecode(arg)
        except TypeError:
            continue
        text = text.rpartition("=")[2]
        if os.sep in text or text.startswith(".."):
            found.append(text)
    return found


def _hook(event: str, args: tuple) -> None:
    if event not in _EVENTS or not _state["on"]:
        return
    if event == "subprocess.Popen":  # (executable, args, cwd, env)
        executable, argv, cwd = args[0], args[1], args[2]
        candidates = [(cwd, None)] + [(a, cwd) for a in _command_paths([executable], argv)]
    elif event in ("os.exec", "os.posix_spawn"):  # (path, argv, env)
        candidates = [(a, None) for a in _command_paths([args[0]], args[1])]
    elif event == "open" and _state["parent_is_temp"] and args and _is_parent(args[0]):
        # tempfile's NamedTemporaryFile and TemporaryFile "open" the temporary folder itself (their
        # opener makes the file); a folder opened cannot be read, and listing it stays refused
        return
    else:  # open: (path, mode, flags); os.listdir / os.scandir: (path,)
        candidates = [(args[0] if args else None, None)]
    for path, cwd in candidates:
        bad = outside(path, cwd)
        if bad is not None:
            message = (
                f"read outside the repository: {event} {bad} (beside {_state['repo']}, where "
                "../shared lives and a fresh clone has nothing): use a fixture under tests/media"
            )
            _violations.append(message)
            if _state["child"]:
                print(f"{OutsideRepoRead.__name__}: {message}", file=sys.stderr, flush=True)
            raise OutsideRepoRead(message)


def install(repo, *, child: bool = False) -> None:
    """Guard reads beside ``repo`` from now on (idempotent: the hook is added once)."""
    repo = os.path.abspath(os.fsdecode(repo))
    parent = os.path.dirname(repo)
    allowed = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)}
    allowed |= {os.path.abspath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)}
    temp = os.path.realpath(tempfile.gettempdir())
    if _under(temp, parent) and not _under(temp, repo):
        allowed.add(temp)
    home = os.path.expanduser("~")
    _state.update(repo=repo, parent=parent, shared=os.path.join(parent, "shared"), child=child,
                  allowed=tuple(a for a in allowed if not _under(repo, a)),  # never an ancestor
                  home_dots=parent in (home, os.path.realpath(home)),
                  parent_is_temp=os.path.realpath(parent) == temp)
    _state["refused"] = _state["refused"] | {n for n in os.environ.get(REFUSED_ENV, "").split(os.pathsep) if n}
    if _state["parent_is_temp"]:
        was_on, _state["on"] = _state["on"], False
        try:
            _state["before"] = frozenset(os.listdir(parent)) - {"shared"}
        finally:
            _state["on"] = was_on
    if not _state["installed"]:
        sys.addaudithook(_hook)
        _state["installed"] = True
    _state["on"] = True


def enable() -> None:
    _state["on"] = _state["installed"]


def disable() -> None:
    _state["on"] = False


def enabled() -> bool:
    return _state["on"]


def take_violations() -> list[str]:
    """The reads refused since the last call (and forgets them)."""
    taken = list(_violations)
    del _violations[: len(taken)]
    return taken

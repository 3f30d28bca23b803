"""The user's processor modules: found beside the config file and loaded by path.

A module named in the config (`"rules:route"`, `"mypkg.rules:route"`) whose top-level
file or package sits in the config's folder is executed under a private module name
(`_inboxd_user_<folder hash>_rules`), so it may be called `web`, `store`, `processors`, `watcher` or
`daemon` without shadowing inboxd's own packages, and inboxd's packages never shadow it.
The folder is also appended (not prepended) to `sys.path`, so that `import helpers`
inside a user module finds its siblings while inboxd's own imports stay its own.
"""

from __future__ import annotations

import importlib
import sys
import zlib
from pathlib import Path
from types import ModuleType

PRIVATE_PREFIX = "_inboxd_user_"
OWN_PACKAGES = frozenset({"cli", "processors", "sinks", "store", "watcher", "web", "daemon"})
# The folder holding inboxd's own packages: a config kept there names them, not copies.
INBOXD_ROOT = Path(__file__).resolve().parent.parent

_user_dirs: list[Path] = []


def add_user_dir(folder: Path) -> None:
    """Look for user modules in `folder` (the config's) from now on."""
    folder = folder.resolve()
    if folder not in _user_dirs:
        _user_dirs.append(folder)
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def user_dirs() -> list[Path]:
    return list(_user_dirs)


def find_user_source(module_name: str, folders: list[Path]) -> Path | None:
    """The file that defines the top level of `module_name` in `folders`, if any."""
    head = module_name.partition(".")[0]
    for folder in (f.resolve() for f in folders):
        if head in OWN_PACKAGES and folder == INBOXD_ROOT:
            continue
        for source in (folder / f"{head}.py", folder / head / "__init__.py"):
            if source.is_file():
                return source
    return None


def private_name(module_name: str, folder: Path) -> str:
    """The name a user module from `folder` lives under in `sys.modules`.

    The folder is part of it, so that two configs' modules of the same name never mix.
    """
    digest = zlib.crc32(str(folder).encode("utf-8", "surrogateescape"))
    return f"{PRIVATE_PREFIX}{digest:08x}_{module_name}"


def import_user_module(module_name: str, source: Path, *, fresh: set[str] | None) -> ModuleType:
    """Import `module_name` whose top level is `source`, under its private name.

    With `fresh` (a SIGHUP reload), a module executed before is executed again, once
    per reload: `fresh` collects the top-level names already renewed. Raises ImportError
    (or whatever the module's own code raises) like `importlib.import_module`.
    """
    head, _, rest = module_name.partition(".")
    top = private_name(
        head, source.parent.parent if source.name == "__init__.py" else source.parent
    )
    if fresh is not None and top not in fresh:
        fresh.add(top)
        _forget(top)
    module = sys.modules.get(top)
    if module is None:
        module = _exec_top(top, source)
    if not rest:
        return module
    if not hasattr(module, "__path__"):
        raise ImportError(f"{head!r} ({source}) is a module, not a package")
    return importlib.import_module(f"{top}.{rest}")


def forget_helpers(folders: list[Path]) -> None:
    """Drop the sibling modules user code imported from `folders`, so a reload renews them.

    inboxd's own packages and the standard library are never dropped.
    """
    folders = [f.resolve() for f in folders]
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top in OWN_PACKAGES or top in sys.stdlib_module_names or name == "__main__":
            continue
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            continue
        where = Path(file).resolve()
        if any(folder in where.parents and folder != INBOXD_ROOT for folder in folders):
            del sys.modules[name]


def _forget(top: str) -> None:
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def _exec_top(top: str, source: Path) -> ModuleType:
    import importlib.util  # only when a config has modules of its own

    is_package = source.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        top, source, submodule_search_locations=[str(source.parent)] if is_package else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        _forget(top)
        raise
    return module

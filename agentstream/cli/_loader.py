"""Find the tools a command line names: a module, a `.py` file, or a folder of them.

Every `Tool` bound at the top level of a loaded module is collected; nothing is
registered anywhere. Every failure is a `SetupError` whose message fits on one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

from .._exceptions import SetupError
from ..tools._tool import Tool

__all__ = ["demo_tools_folder", "import_spec", "load_default_tools", "load_tools"]

# The demo tools are imported under this name wherever they come from (the package's
# own copy in a regular install, the repository's `tools/` in a checkout), so another
# distribution's top-level `tools` package is never imported, nor shadowed.
DEMO_TOOLS_MODULE = "agentstream._demo_tools"


def load_tools(specs: Sequence[str]) -> list[Tool]:
    """The tools found in each spec, in order, each tool once."""
    found: dict[int, Tool] = {}
    for spec in specs:
        tools = _tools_of(spec)
        if not tools:
            raise SetupError(
                f"--tools {spec}: no agentstream.Tool at the top level "
                "(decorate a function with @tool)"
            )
        for item in tools:
            found.setdefault(id(item), item)
    return list(found.values())


def demo_tools_folder() -> Path | None:
    """Where the demo tools are: shipped in the package, or the repository's `tools/`."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_demo_tools"
    if (shipped / "__init__.py").is_file():
        return shipped
    # Only in a checkout of this repository: beside an installed package, `tools/` is
    # whatever another distribution put in site-packages.
    checkout = package.parent
    project = checkout / "pyproject.toml"
    if not (checkout / "tools" / "__init__.py").is_file() or not project.is_file():
        return None
    text = project.read_text(encoding="utf-8", errors="replace")
    return checkout / "tools" if 'name = "agentstream"' in text else None


def load_default_tools(folder: Path) -> list[Tool]:
    """`ALL_TOOLS` of the demo tools package in `folder`."""
    init = (folder / "__init__.py").resolve()
    loaded = sys.modules.get(DEMO_TOOLS_MODULE)
    if loaded is None or getattr(loaded, "__file__", None) != str(init):
        spec = importlib.util.spec_from_file_location(
            DEMO_TOOLS_MODULE, init, submodule_search_locations=[str(init.parent)]
        )
        if spec is None or spec.loader is None:
            raise SetupError(f"{folder}: the demo tools cannot be imported")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[DEMO_TOOLS_MODULE] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as exc:
            del sys.modules[DEMO_TOOLS_MODULE]
            raise SetupError(f"{folder}: cannot import the demo tools: {_cause(exc)}") from None
    tools = getattr(loaded, "ALL_TOOLS", None)
    if not isinstance(tools, (list, tuple)) or not all(isinstance(t, Tool) for t in tools):
        raise SetupError(f"{folder} has no ALL_TOOLS list of agentstream.Tool values")
    return list(tools)


def _tools_of(spec: str) -> list[Tool]:
    path = Path(spec).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SetupError(f"--tools {spec[:80]}...: cannot read it: {reason}") from None
    looks_like_path = spec.endswith(".py") or "/" in spec or "\\" in spec or exists
    if not looks_like_path:
        return _module_tools([_import_module(spec)])
    if path.is_file():
        return _module_tools([_import_file(path, _module_name(path), package=False)])
    if path.is_dir():
        return _module_tools(_import_folder(path))
    raise SetupError(f"--tools {spec}: no such file or folder")


def import_spec(spec: str, flag: str) -> ModuleType:
    """The module a flag names: a module name or a `.py` file (`SetupError` if it fails)."""
    path = Path(spec).expanduser()
    try:
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            if not path.is_file():
                raise SetupError(f"--tools {spec}: no such file")
            return _import_file(path, _module_name(path), package=False)
        return _import_module(spec)
    except SetupError as exc:
        raise SetupError(str(exc).replace("--tools", flag, 1)) from None


def _module_tools(modules: Iterable[ModuleType]) -> list[Tool]:
    return [
        value for module in modules for value in vars(module).values() if isinstance(value, Tool)
    ]


def _import_module(name: str) -> ModuleType:
    # Like `python -m`, let a module in the working directory be found by name.
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise SetupError(f"--tools {name}: no such module, file or folder") from None
        raise SetupError(f"--tools {name}: cannot import it: {_cause(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise SetupError(f"--tools {name}: cannot import it: {_cause(exc)}") from None


def _import_folder(folder: Path) -> list[ModuleType]:
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if (folder / "__init__.py").is_file():
        package = _import_file(folder / "__init__.py", folder.name, package=True)
        modules = [package]
        for file in files:
            name = f"{package.__name__}.{file.stem}"
            try:
                modules.append(importlib.import_module(name))
            except (Exception, SystemExit) as exc:
                raise SetupError(f"--tools {file}: cannot import it: {_cause(exc)}") from None
        return modules
    if not files:
        raise SetupError(f"--tools {folder}: the folder holds no .py files")
    return [_import_file(file, _module_name(file), package=False) for file in files]


def _import_file(path: Path, name: str, *, package: bool) -> ModuleType:
    """Import `path` as module `name`, with its folder importable as a script's would be."""
    path = path.resolve()
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    home = str(path.parent.parent if package else path.parent)
    if home not in sys.path:
        sys.path.insert(0, home)
    locations = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise SetupError(f"--tools {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered first, as a normal import would, so dataclasses and pickling find it.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, SystemExit):
            raise SetupError(
                f"--tools {path}: it called exit({exc.code!r}) while being imported"
            ) from None
        if not isinstance(exc, Exception):
            raise
        raise SetupError(f"--tools {path}: cannot import it: {_cause(exc)}") from None
    return module


def _module_name(path: Path) -> str:
    """The name to import a loose file by: its stem unless that would shadow a module."""
    stem = path.stem
    safe = "_agentstream_tools_" + re.sub(r"\W", "_", stem)
    for name in (stem, safe):
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None) == str(path.resolve()):
            return name  # already imported from this very file
    if stem.isidentifier() and stem not in sys.modules and stem not in sys.stdlib_module_names:
        return stem
    return safe


def _cause(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called exit({exc.code!r}) while being imported"
    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename).name}, line {exc.lineno})" if exc.filename else ""
        return f"SyntaxError: {exc.msg}{where}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""House rules that keep plugins honest: they import only `gateway`, and the core never a plugin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIRS = sorted(
    p for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name != "__pycache__"
)
EXAMPLE = ROOT / "tests" / "fixtures" / "example-plugin" / "src"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def python_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*.py")]


def test_the_five_builtin_plugins_exist():
    assert {p.name for p in PLUGIN_DIRS} >= {"meta", "linkedin", "tiktok", "gbp", "mailchimp"}


@pytest.mark.parametrize(
    "path", python_files(*PLUGIN_DIRS, EXAMPLE), ids=lambda p: str(p.relative_to(ROOT))
)
def test_plugins_import_only_the_public_gateway_surface(path):
    own = path.relative_to(ROOT).parts[1] if path.is_relative_to(ROOT / "plugins") else None
    for lineno, module in imported_modules(path):
        assert not module.startswith("gateway."), f"{path}:{lineno} imports {module}; use `gateway`"
        if module.startswith("plugins."):
            assert module.split(".")[1] == own, f"{path}:{lineno} imports another plugin ({module})"


@pytest.mark.parametrize(
    "path", python_files(ROOT / "gateway"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_core_never_imports_a_plugin(path):
    for lineno, module in imported_modules(path):
        assert module != "plugins" and not module.startswith("plugins."), f"{path}:{lineno}"


def test_every_module_opens_with_a_docstring():
    for path in python_files(ROOT / "gateway", *PLUGIN_DIRS):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no module docstring"


WALL_CLOCK_READS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}


def wall_clock_reads(path: Path) -> list[str]:
    """Each ``datetime.now()``, ``time.time()`` and the like in ``path``, as ``line: call``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (name, node.func.attr) in WALL_CLOCK_READS:
                found.append(f"{node.lineno}: {name}.{node.func.attr}()")
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in python_files(ROOT / "gateway", *PLUGIN_DIRS, EXAMPLE) if p.name != "clock.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_time_is_read_from_the_gateway_clock_only(path):
    # One clock, shiftable as a whole (GATEWAY_CLOCK_OFFSET): a read of the wall clock anywhere
    # else would take its decision on another date than the rest of the gateway.
    assert wall_clock_reads(path) == [], f"{path.relative_to(ROOT)}: use gateway.clock.now()"


# Packages that call URLs clients gave (webhook endpoints, media to fetch): netguard's rooms.
CLIENT_URL_PACKAGES = [ROOT / "gateway" / name for name in ("webhooks", "media")]


@pytest.mark.parametrize(
    "path",
    python_files(*(p for p in CLIENT_URL_PACKAGES if p.is_dir())),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_client_given_urls_are_called_through_netguard_only(path):
    # A session of its own would resolve and connect wherever DNS or a redirect says:
    # these packages open their connections with gateway.netguard's Guard.session().
    tree = ast.parse(path.read_text(), filename=str(path))
    own = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in ("ClientSession", "TCPConnector"))
        or (isinstance(node, ast.Name) and node.id in ("ClientSession", "TCPConnector"))
    ]
    assert own == [], f"{path.relative_to(ROOT)}:{own}: open sessions with gateway.netguard"

"""The package layout's rules, checked: the worker loads no web framework, and the domain and
the infrastructure never import the HTTP package."""

import ast
import subprocess
import sys

import pytest

from tests.helpers import ROOT

WEB = ("fastapi", "starlette", "api")
ALLOWED_IN_INFRA = {"domain.errors", "domain.models"}


def test_the_worker_loads_no_web_framework() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, worker.main, worker.once, worker.__main__\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({WEB!r})))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def _imported(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["domain", "infra", "worker"])
def test_below_the_routes_nothing_imports_http(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported(str(path.relative_to(ROOT))) & set(WEB))
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_infra_imports_no_domain_rule_but_the_error_catalogue() -> None:
    """Infrastructure sits below the domain: it may raise the catalogue's errors, nothing more."""
    offenders: dict[str, str] = {}
    for path in (ROOT / "infra").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith("domain.") and module not in ALLOWED_IN_INFRA:
                offenders[str(path.relative_to(ROOT))] = module
    assert offenders == {}

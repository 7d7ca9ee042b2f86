"""The environment the tests run in is the one setup.py asks for: a version setup.py rules out (a
stale virtual environment, a pin added later) is named here, not met as an odd failure elsewhere."""
import ast
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

from conftest import ROOT


def setup_requirements(extra=None):
    """install_requires (or one extra's list) of setup.py, as Requirement objects."""
    call = next(node for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("install_requires", "extras_require")}
    return [Requirement(r) for r in (keywords["extras_require"][extra] if extra else keywords["install_requires"])]


def test_installed_versions_meet_setup_py():
    wrong = []
    for requirement in setup_requirements() + setup_requirements("test"):
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            installed = None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            wrong.append(f"{requirement} (installed: {installed})")
    assert not wrong, f"pip install -e '.[test]' again: {wrong}"

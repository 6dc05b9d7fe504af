"""Importing codeprobe changes nothing interpreter-wide: not the recursion limit, not the
environment, not matplotlib's backend; drawing a figure does not select a backend either. And
the test oracles are not part of the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent("""
    import json, os, sys
    import matplotlib
    calls = []
    matplotlib.use = lambda *a, **k: calls.append(a)  # records a backend choice, makes none
    env, limit = dict(os.environ), sys.getrecursionlimit()
    backend = matplotlib.rcParams._get_backend_or_none()

    import importlib, pkgutil
    import codeprobe.pipeline, codeprobe.probes
    after_pipeline = (dict(os.environ) == env, sys.getrecursionlimit())
    # scikit-learn (CATProbe's base class) sets KMP_DUPLICATE_LIB_OK and KMP_INIT_AT_FORK at its
    # own import: that is its doing, not codeprobe's.
    import sklearn
    env = dict(os.environ)
    import codeprobe
    names = sorted(m.name for m in pkgutil.walk_packages(codeprobe.__path__, "codeprobe."))
    for name in names:
        importlib.import_module(name)

    import numpy as np
    from codeprobe.probes.cat.plot import plot_snippet
    n, layers = 3, np.zeros(2)
    plot_snippet(sys.argv[1], labels=["a", "b", "c"], attention=np.eye(n), distance=np.ones((n, n)),
                 layer=0, scores=layers, random_baseline=layers, positional_baseline=layers)
    print(json.dumps({
        "after_pipeline": after_pipeline,
        "env_changed": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
        "limit": [limit, sys.getrecursionlimit()],
        "use_calls": len(calls),
        "backend": [backend, matplotlib.rcParams._get_backend_or_none()],
        "pyplot": "matplotlib.pyplot" in sys.modules,
        "modules": len(names),
    }))
""")


def test_importing_codeprobe_leaves_the_interpreter_alone(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MPLBACKEND"))}
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "figure.png")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state["after_pipeline"] == [True, state["limit"][0]]
    assert state["env_changed"] == []
    assert state["limit"][0] == state["limit"][1]
    assert state["use_calls"] == 0 and state["backend"][0] == state["backend"][1] and not state["pyplot"]
    assert state["modules"] > 50 and (tmp_path / "figure.png").stat().st_size > 0


PREFECT_CHECK = textwrap.dedent("""
    import os, sys
    from codeprobe.pipeline import server
    if sys.argv[1] == "prefect-first":
        import prefect  # already imported when the run starts: its settings are read again
        server.use_prefect_defaults()
    else:
        assert "prefect" not in sys.modules
        server.check_prefect_server()  # what `codeprobe run` and `main_job` call first
    from prefect.settings import get_current_settings
    settings = get_current_settings().server
    print(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"],
          settings.ephemeral.startup_timeout_seconds, settings.analytics_enabled)
""")


@pytest.mark.parametrize(
    "order, user_timeout, expected",
    [
        ("codeprobe-first", None, ["180", "180", "False"]),
        ("prefect-first", "77", ["77", "77", "False"]),  # the user's own setting wins
    ],
)
def test_prefect_defaults_are_set_where_a_run_starts(tmp_path, order, user_timeout, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    if user_timeout:
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = user_timeout
    out = subprocess.run(
        [sys.executable, "-c", PREFECT_CHECK, order], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == expected


def test_the_oracles_are_not_in_the_package():
    """pyproject's package selection over the current tree: codeprobe and its subpackages, no
    test oracles (they live in tests/oracles/)."""
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=config["include"], exclude=config.get("exclude", ()))
    assert "codeprobe" in packages and "codeprobe.probes.cat" in packages
    assert not [p for p in packages if "reference" in p or "oracle" in p or not p.startswith("codeprobe")]
    assert not (ROOT / "codeprobe" / "reference").exists() and (ROOT / "tests" / "oracles" / "astprobe.py").is_file()


def test_the_oracles_raise_the_recursion_limit_only_while_they_run():
    import oracles.astprobe as oracle

    from codeprobe.syntax import parse

    before = sys.getrecursionlimit()
    tree = parse("x = " + "-" * 600 + "1\n", "python")  # recursion deeper than the default limit
    d, c, u = oracle.oracle_tuple(tree)
    assert len(d) == 602 and sys.getrecursionlimit() == before
    seen = []
    oracle.deep(lambda: seen.append(sys.getrecursionlimit()))()
    assert seen == [max(before, oracle.DEPTH)] and sys.getrecursionlimit() == before

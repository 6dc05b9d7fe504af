"""Faults a real run meets (issue 27): a damaged file of a finished run is recomputed with a
warning naming it; a full disk is one typed error naming the folder, leaves no temporary file
and a rerun finishes with the same numbers; two runs into one folder compute each step once."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config

from codeprobe.errors import DiskFullError
from codeprobe.files import is_temporary, temporary_dir
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment


def _scores(run: Path) -> list:
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    ast, cat = result["astprobe"], result["cat"]
    return [(p["hidden_state"], p["rank"], p["f1"], p["valid_f1"]) for p in ast["hidden_states"]] + [
        (p["layer"], p["score"], p["score_ci"]) for p in cat["layers"]
    ]


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if is_temporary(p.name)]


@pytest.fixture(scope="module")
def config(tiny_model_dir, python_jsonl):  # noqa: F811
    return parse_config(small_config(tiny_model_dir, python_jsonl, probe_seeds=2, explorer_snippets=4))


@pytest.fixture(scope="module")
def finished(config, tmp_path_factory):
    run = tmp_path_factory.mktemp("faults") / "run"
    run_experiment(config, run)
    return run


# --- damage, same size -------------------------------------------------------------------------


def _flip(path: Path, offset: int, n: int = 8) -> None:
    """Overwrite `n` bytes at `offset` with others (the file keeps its size)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0x5A for b in old))


def _damage_npz_member(path: Path) -> str:
    """Damage the data of the largest member other than the step key; returns its name."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if i.filename != "_key.npy"), key=lambda i: i.file_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
    start = info.header_offset + 30 + int(name_len) + int(extra_len)
    _flip(path, start + info.file_size - 16)  # past the .npy header: the numbers
    return info.filename


def _damage_json_number(path: Path) -> None:
    """Change one digit of a number: still valid JSON, still recording its key."""
    text = path.read_text(encoding="utf-8")
    at = max(i for i, c in enumerate(text) if c in "123456789" and text[i - 1] in "0123456789.")
    text = text[:at] + ("2" if text[at] == "1" else "1") + text[at + 1 :]
    path.write_text(text, encoding="utf-8")


def _damage_text(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    at = text.index("return")
    path.write_text(text[:at] + "retura" + text[at + 6 :], encoding="utf-8")


def test_damaged_files_are_recomputed_with_a_warning(finished, config, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    cat = next(run.glob("cat/*/*"))
    ast = next(run.glob("astprobe/*/*"))
    data = next(run.glob("data/*"))
    cache = next(p for p in (run / "cache" / "hidden_states").iterdir() if p.is_dir())
    probe = next(ast.glob("probes/hidden_state_*"))
    (explorer,) = run.glob("explorer/*/*.json")
    _damage_npz_member(cat / "shard-0000.npz")
    _damage_npz_member(cat / "heads-0001.npz")
    _flip(cat / "layers.parquet", (cat / "layers.parquet").stat().st_size // 2)
    _damage_json_number(cat / "summary.json")  # the reduce is redone, so the shards are read
    _damage_json_number(ast / "hidden_states.json")
    _flip(probe / "probe.safetensors", (probe / "probe.safetensors").stat().st_size - 8)
    _flip(cache / "hidden_state_01.f16", 64)
    _damage_json_number(ast / "ranks.json")
    _damage_json_number(ast / "random.json")  # so that every cache is opened again
    _damage_text(data / "snippets.jsonl")
    _damage_json_number(explorer)
    damaged = [
        cat / "shard-0000.npz",
        cat / "heads-0001.npz",
        cat / "layers.parquet",
        cat / "summary.json",
        ast / "hidden_states.json",
        probe / "probe.safetensors",
        cache / "hidden_state_01.f16",
        ast / "ranks.json",
        ast / "random.json",
        data / "snippets.jsonl",
        explorer,
    ]
    with caplog.at_level(logging.WARNING):
        run_experiment(config, run)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "damaged" in r.getMessage()]
    for path in damaged:
        assert any(str(path) in w for w in warnings), (path, warnings)
    assert _scores(run) == _scores(finished)
    with caplog.at_level(logging.WARNING):  # all recomputed: a rerun finds nothing damaged
        caplog.clear()
        run_experiment(config, run)
    assert not [r for r in caplog.records if "damaged" in r.getMessage()]


def test_a_damaged_store_is_ignored(tiny_model_dir, tmp_path, caplog):  # noqa: F811
    """A CAT shard's hidden-state store whose file is damaged is not copied from: the cache
    computes those hidden states itself, equal to the undamaged store's."""
    from codeprobe.model import Extractor, ModelInput, load_model
    from codeprobe.probes.astprobe.cache import cached_hidden_states, reusable, write_store
    from codeprobe.syntax import parse

    codes = [f"def f{k}(a, b):\n    return a + b * {k}\n" for k in range(6)]
    items = [ModelInput.from_tokens(str(k), c, parse(c, "python").tokens()) for k, c in enumerate(codes)]
    extractor = Extractor(
        load_model(str(tiny_model_dir), device="cpu"),
        batch_size=1,
        attention=False,
        hidden_states=True,
        length_policy="skip",
    )
    results = {it.id: r for it, r in zip(items, extractor.extract(items))}
    model = json.loads(json.dumps(extractor.info.as_dict()))
    store = write_store(
        tmp_path / "shard-0000.hidden_states",
        ((it, np.stack(results[it.id].hidden_states)) for it in items),
        model,
        "k",
    )
    assert [s.path for s in reusable([store])] == [store]
    fresh = cached_hidden_states(tmp_path / "a", items, extractor, reuse=reusable([store]))
    assert fresh.reused == len(items)
    _flip(store / "hidden_state_02.f16", 32)
    with caplog.at_level(logging.WARNING):
        assert reusable([store]) == []
    assert any(str(store / "hidden_state_02.f16") in r.getMessage() for r in caplog.records)
    again = cached_hidden_states(tmp_path / "b", items, extractor, reuse=reusable([store]))
    assert again.reused == 0
    np.testing.assert_allclose(
        np.asarray(again.hidden_state(2), np.float32)[_order(again, fresh)],
        np.asarray(fresh.hidden_state(2), np.float32),
        atol=1e-2,
    )


def _order(a, b) -> np.ndarray:
    rows_a = a.rows()
    return np.concatenate([np.arange(rows_a[d].start, rows_a[d].stop) for d in b.digests])


# --- a full disk -------------------------------------------------------------------------------


class _Budget:
    """Files opened for writing under `root` share `left` bytes; past them a write raises
    ENOSPC, as a full disk does."""

    def __init__(self, root: Path, left: int) -> None:
        self.root, self.left, self.hit = str(root), left, 0

    def wrap(self, f, name):
        budget = self

        class Limited:
            def __getattr__(self, attr):
                return getattr(f, attr)

            def __enter__(self):
                f.__enter__()
                return self

            def __exit__(self, *exc):
                return f.__exit__(*exc)

            def __iter__(self):
                return iter(f)

            def write(self, data):
                n = len(memoryview(data).cast("B"))
                if n > budget.left:
                    budget.hit += 1
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                budget.left -= n
                return f.write(data)

        return Limited() if str(name).startswith(self.root) else f


@pytest.fixture
def disk_budget(monkeypatch):
    import builtins

    real_open, real_fdopen = builtins.open, os.fdopen

    def install(root: Path, left: int) -> _Budget:
        budget = _Budget(root, left)

        def limited_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            return budget.wrap(f, file) if any(c in mode for c in "wax+") and isinstance(file, (str, Path)) else f

        def limited_fdopen(fd, mode="r", *args, **kwargs):
            f = real_fdopen(fd, mode, *args, **kwargs)
            return budget.wrap(f, os.readlink(f"/proc/self/fd/{fd}")) if "w" in mode else f

        monkeypatch.setattr(builtins, "open", limited_open)
        monkeypatch.setattr(os, "fdopen", limited_fdopen)
        return budget

    return install


@pytest.mark.parametrize("where", ["store", "cache"])
def test_a_full_disk_is_one_error_naming_the_folder(where, finished, config, tmp_path, disk_budget, monkeypatch):
    """Filled while CAT-probing's pass writes its hidden-state store, or while AST-Probe builds
    its cache: a DiskFullError naming the folder, no temporary file left; after space is freed
    the rerun finishes with the same numbers."""
    run = tmp_path / "run"
    if where == "cache":  # the CAT steps done: the disk fills in AST-Probe's cache
        shutil.copytree(finished, run)
        shutil.rmtree(run / "cache")
        for name in ("hidden_states.json", "random.json", "ranks.json"):
            next(run.glob(f"astprobe/*/*/{name}")).unlink()
        folder = run / "cache" / "hidden_states"
    else:
        folder = next(finished.glob("cat/*/*")).relative_to(finished)
        folder = run / folder
    budget = disk_budget(folder, 20_000)
    with pytest.raises(DiskFullError) as raised:
        run_experiment(config, run)
    monkeypatch.undo()
    message = str(raised.value)
    assert budget.hit and message.startswith(f"no space left on device in {folder} (the step needed ")
    assert "\n" not in message and "free)" in message
    assert _temporaries(run) == []
    run_experiment(config, run)
    assert _scores(run) == _scores(finished)
    assert _temporaries(run) == []


def test_a_full_disk_on_a_small_tmpfs(finished, config, tmp_path):
    """The same on a real full file system (a 400 KiB tmpfs; skipped where mounting is not
    permitted), then the rerun after the file system has grown."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        run = mount / "run"
        with pytest.raises(DiskFullError, match=rf"^no space left on device in {mount}/run/\S+ \(the step needed "):
            run_experiment(config, run)
        assert _temporaries(run) == []
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        run_experiment(config, run)
        assert _scores(run) == _scores(finished)
        assert _temporaries(run) == []
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def test_a_killed_runs_temporaries_are_removed_at_start(finished, config, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    shard = next(run.glob("cat/*/*/shard-0000.npz"))
    live = temporary_dir(shard.with_suffix(".hidden_states"))  # this process's: alive, kept
    stale_dir = live.with_name(live.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    stale_dir.mkdir()
    (stale_dir / "hidden_state_00.f16").write_bytes(b"\0" * 100)
    stale_file = shard.with_name(f".shard-0000.npz.{live.name.split('.')[-2]}.tmp.npz")
    stale_file = stale_file.with_name(stale_file.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    stale_file.write_bytes(b"x")
    other = shard.with_name(".user-file.tmp")  # not codeprobe's name: kept
    other.write_bytes(b"x")
    run_experiment(config, run)
    assert not stale_dir.exists() and not stale_file.exists()
    assert live.exists() and other.exists()


# --- two runs into one folder ------------------------------------------------------------------

_RUN = textwrap.dedent("""
    import json, logging, sys, time
    from codeprobe.pipeline.config import parse_config
    from codeprobe.pipeline.experiment import run_experiment

    config, out, start = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("codeprobe.pipeline").setLevel(logging.INFO)
    cfg = parse_config(config)
    while time.time() < start:  # both processes start the run at the same moment
        time.sleep(0.005)
    run_experiment(cfg, out)
""")


def test_two_runs_into_one_folder_compute_each_step_once(finished, config, tmp_path):
    import time

    script = tmp_path / "run.py"
    script.write_text(_RUN)
    run = tmp_path / "run"
    start = time.time() + 20  # after both interpreters have imported torch
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), config.to_json(), str(run), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-3000:] for _, err in outs]
    lines = [line for _, err in outs for line in err.splitlines()]
    computed = [line.split(": computing ", 1)[1] for line in lines if line.startswith("codeprobe.pipeline: computing ")]
    assert any(line.startswith("codeprobe.pipeline: waiting for another process computing ") for line in lines)
    shards = [c for c in computed if "/cat/" in c and "/shard-" in c]
    assert len(shards) == len(list(run.glob("cat/*/*/shard-*.npz"))) >= 2
    assert sorted(computed) == sorted(set(computed)), "a step computed twice"
    assert _scores(run) == _scores(finished)


def test_write_atomic_on_a_full_disk_names_the_folder(tmp_path, disk_budget):
    from codeprobe.files import write_npz

    disk_budget(tmp_path, 1000)
    with pytest.raises(DiskFullError, match=rf"^no space left on device in {tmp_path} \(the step needed about \d"):
        write_npz(tmp_path / "x.npz", {"a": np.zeros(10_000)})
    assert list(tmp_path.iterdir()) == []  # no temporary file, no record


def test_the_cli_prints_a_full_disk_as_one_line(tmp_path):
    import click
    from click.testing import CliRunner

    from codeprobe.cli import _Group
    from codeprobe.files import disk_full

    @click.group(cls=_Group)
    def cli() -> None:
        pass

    @cli.command()
    def fill() -> None:
        raise disk_full(tmp_path, needed=340 << 20)

    result = CliRunner().invoke(cli, ["fill"])
    assert result.exit_code == 74
    assert result.output.startswith(
        f"codeprobe: error: no space left on device in {tmp_path} (the step needed about 340 MiB more; "
    )
    assert result.output.count("\n") == 1

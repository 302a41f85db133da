"""SIGTERM (`kill`, a scheduler's time limit, a container stopping) ends a command as Ctrl-C
does: what it was building is cleaned up, exit status 143. Before, the process died on the spot
and left a run's `.NAME.partial` folder (or a report's temporary file) behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "synthgate", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def terminate_once(
    process: subprocess.Popen[bytes],
    started: Callable[[], bool],
    signum: signal.Signals = signal.SIGTERM,
) -> str:
    """`signum` as soon as `started()` holds (the command is mid-way); its stderr."""
    deadline = time.monotonic() + 60
    while not started():
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "the command never got going"
        time.sleep(0.02)
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"still running 60 s after {signum.name}: {stderr.decode()[-2000:]}")
    return stderr.decode()


@pytest.mark.parametrize(
    ("signum", "said"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_a_stopped_run_says_so_and_leaves_no_partial_folder(
    tmp_path: Path, signum: signal.Signals, said: str
) -> None:
    """Stopped, a run said nothing while it removed its unfinished folder (90 s of silence for
    256k images); it now says it stopped, and why, before it cleans up."""
    config = tmp_path / "big.yaml"
    config.write_text(
        "name: big\nseed: 1\ncategories: [circle, square]\n"
        "image: {generator: procedural, count: 50000, size: [64, 64], objects_per_image: [1, 2]}\n"
    )
    partial = tmp_path / "new" / "runs" / ".out.partial"
    process = start(["run", str(config), "--out", "new/runs/out"], tmp_path)

    def writing_images() -> bool:
        return any((partial / "images").glob("*.png")) if partial.is_dir() else False

    stderr = terminate_once(process, writing_images, signum)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr, stderr
    assert f"synthgate: stopped by {said}; cleaning up what it had not finished" in stderr
    # no out, no .out.partial, and not the folders made for them (new/runs/)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.yaml"]


def test_sigterm_during_validate_leaves_no_temporary_report(tmp_path: Path) -> None:
    # A COCO file large enough that the report is still being written when the signal comes.
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(4000)]
    annotations = [
        {
            "id": n,
            "image_id": n // 10,
            "category_id": 1,
            "bbox": [10, 10, 50, 40],
            "area": 2000,
            "iscrowd": 0,
            "segmentation": [[10, 10, 60, 10, 60, 50, 10, 50]],
        }
        for n in range(40_000)
    ]
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "big.json").write_text(json.dumps(coco))
    process = start(["validate", "big.json", "--json", "report.json"], tmp_path)

    def writing_report() -> bool:
        return any(p.name.endswith(".partial") for p in tmp_path.iterdir())

    stderr = terminate_once(process, writing_report)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json"]


def test_main_in_process_gives_back_the_callers_handlers_after_a_signal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After one Ctrl-C, main() left SIGINT at the default action (its handler sets that for a
    second signal), so a caller running it in process lost its own KeyboardInterrupt."""
    from synthgate import cli

    def interrupted(prog_name: str) -> None:
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(cli, "command_app", lambda args: interrupted)
    monkeypatch.setattr(cli.gc, "freeze", lambda: None)  # not this test process's objects
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        cli.main()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert "stopped by Ctrl-C" in capsys.readouterr().err


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_a_library_turns_into_its_own_error_still_exits_as_the_signal_says(
    signum: signal.Signals,
    status: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """numpy answers a KeyboardInterrupt or SystemExit raised while it calls pycocotools'
    `Masks.__array__` again without `copy` (every mask decode: copy-paste, validate, merge)
    with the TypeError of its first call: a copy-paste balance stopped by SIGTERM printed that
    traceback and exited 1 in 1 of 8 tries, a double Ctrl-C likewise, instead of 143 / 130."""
    from synthgate import cli

    def stopped_in_a_library(prog_name: str) -> None:
        try:
            signal.raise_signal(signum)  # the handler raises here, as between two bytecodes
        except BaseException:
            raise TypeError("__array__() got an unexpected keyword argument 'copy'") from None

    monkeypatch.setattr(cli, "command_app", lambda args: stopped_in_a_library)
    monkeypatch.setattr(cli.gc, "freeze", lambda: None)  # not this test process's objects
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == status
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert "synthgate: stopped by" in capsys.readouterr().err

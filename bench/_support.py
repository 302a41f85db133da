"""What several benches share: timing a child process (`measure`), a free port, a throwaway
redis-server, and the CPU time of process trees. The benches import it by name (`python
bench/<script>.py` puts this folder on the path)."""

from __future__ import annotations

import compileall
import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Measured:
    """One child process: wall seconds, CPU seconds (user + system, every thread) and peak RSS."""

    wall: float
    cpu: float
    rss_mib: float


def shared_data() -> Path:
    """../shared/data/coco-tiny-val2017 beside the repository (or a worktree of it), wherever
    the bench is started from; the relative path when there is none (its error names it)."""
    for folder in Path(__file__).resolve().parents:
        found = folder / "shared" / "data" / "coco-tiny-val2017"
        if found.is_dir():
            return found
    return Path("../shared/data/coco-tiny-val2017")


@functools.cache
def compile_bytecode() -> None:
    """Write synthgate's bytecode caches once, as `pip install` does. A checkout installed
    editable under PYTHONDONTWRITEBYTECODE=1 (this machine's environment) would otherwise compile
    every synthgate module from source in every process timed: ~60 ms of start-up no installed
    copy spends, while a floor's libraries load theirs from site-packages."""
    import synthgate

    compileall.compile_dir(
        Path(synthgate.__file__).parent, quiet=1, rx=re.compile(r"[/\\](tests|bench|\.git)[/\\]")
    )


def same_threads() -> dict[str, str]:
    """The environment of every timed process: numpy's OpenBLAS on the threads the `synthgate`
    command gives it (`cli.BLAS_THREADS`, unless this environment names them), so a floor's
    numpy runs as synthgate's does. Idle OpenBLAS threads spin between calls: CPU no floor's
    work needs, and it would count for the floor only."""
    from synthgate.cli import BLAS_THREADS, blas_threads

    return {**os.environ, BLAS_THREADS[0]: blas_threads(os.environ)}


def measure(command: list[str]) -> Measured:
    """Run `command` to its end, timed by the kernel (`os.wait4`); exit with its stderr if it
    fails. Synthgate's bytecode is compiled first (`compile_bytecode`); every command runs with
    the same BLAS threads (`same_threads`)."""
    compile_bytecode()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=same_threads()
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        assert process.stderr is not None
        raise SystemExit(f"{command[:5]} failed: {process.stderr.read().decode()[-2000:]}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def best_of(commands: dict[str, list[str]], rounds: int) -> dict[str, Measured]:
    """Each command `rounds` times, interleaved; the run with the least CPU of each."""
    runs: dict[str, list[Measured]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            runs[name].append(measure(command))
    return {name: min(found, key=lambda m: m.cpu) for name, found in runs.items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on a free port, saving nothing; (process, "redis://127.0.0.1:PORT")."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by these processes and their children (an exited one counts 0)."""
    total = 0.0
    for pid in pids:
        try:
            main = psutil.Process(pid)
            for member in (main, *main.children(recursive=True)):
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total

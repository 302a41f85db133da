"""`synthgate serve --port N` where N is already taken (a second server, a forgotten one): a
user error like any other, exit 2 naming --port and the fix, and no line claiming it serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import synthgate


def test_serve_on_a_port_in_use_exits_2_naming_the_port(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'synthgate.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        package_parent = str(Path(synthgate.__file__).parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_parent, *sys.path])}
        done = subprocess.run(
            [
                *(sys.executable, "-m", "synthgate", "serve", "--db", db),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"--port {port}" in output, output
    assert "synthgate serving" not in output, output

"""Shared fixtures: small batch configs written to a temp folder, and PostgreSQL databases."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from factories import small_config
from postgres_support import PostgresCluster

# Reference fingerprints are cached between runs (validators/fingerprint_cache.py): the tests
# keep theirs in a folder of their own, removed at the end, never in the user's ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="synthgate-test-cache-")
os.environ["SYNTHGATE_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(
        data: dict[str, Any] | str | None = None, name: str = "batch.yaml", **overrides: Any
    ) -> Path:
        path = tmp_path / name
        content = (
            data if isinstance(data, str) else yaml.safe_dump(data or small_config(**overrides))
        )
        path.write_text(content)
        return path

    return write


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole session (skips, or fails under CI=true,
    without the server binaries); modules take their own databases from it."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_scratch_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL database the review tests may wipe: SYNTHGATE_TEST_POSTGRES_URL when set,
    else database `review` in the session's cluster, apart from other modules' databases."""
    named = os.environ.get("SYNTHGATE_TEST_POSTGRES_URL")
    if named:
        return named
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.database("review")

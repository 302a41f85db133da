"""A diffusion batch through the workers' code path, on a tiny local pipeline (no broker).

Its chunks go to the `gpu` queue, one model batch each; the worker process loads the model once;
the run folder is judged and written without loading the model there, and holds the same bytes
as `synthgate run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tiny_diffusers import CATEGORIES, KIND_OF_GENERATOR, image_section

from synthgate.config import parse_config
from synthgate.generators.diffusion import common
from synthgate.pipeline import batch_id_for
from synthgate.runner import run_batch
from synthgate.workers.app import WorkerSettings
from synthgate.workers.chunks import WorkerContext, chunk_rows, run_chunk
from synthgate.workers.runner import assemble_from_store

pytest_plugins = ["diffusion_fixtures"]  # tiny_models

GENERATOR = "diffusion_layout"


def test_a_diffusion_batch_on_the_gpu_queue_gives_the_run_folder_of_run(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = image_section(GENERATOR, tiny_models[KIND_OF_GENERATOR[GENERATOR]], count=5)
    data = {"name": "tiny-workers", "seed": 9, "categories": CATEGORIES, "image": section}
    config = parse_config(data, source=tmp_path / "batch.yaml")
    settings = WorkerSettings(
        db_url=f"sqlite:///{tmp_path / 'shared.db'}", blob_url=str(tmp_path / "blobs")
    )
    context = WorkerContext.from_settings(settings)
    batch_id = batch_id_for(config)
    context.store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    rows = chunk_rows(config, batch_id, gpu_generators=settings.gpu_generators)
    assert {r["queue"] for r in rows} == {"gpu"}
    assert rows[0]["stop"] - rows[0]["start"] == config.image.model.batch_size
    context.store.chunks.put(rows)
    loads: list[Any] = []
    real_load = common.load_model
    monkeypatch.setattr(common, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    for chunk in context.store.chunks.of_batch(batch_id):
        assert run_chunk(context, chunk.id).endswith("generated")
    assert len(loads) == 1  # one model load in this worker process, for every chunk

    def no_model_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the run folder's writer must not load the model")

    monkeypatch.setattr(common, "load_model", no_model_here)
    assemble_from_store(
        config, tmp_path / "submitted", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    monkeypatch.setattr(common, "load_model", real_load)
    run_batch(config, tmp_path / "embedded")
    for name in ("coco.json", "accepted.coco.json", "report.md"):
        assert (tmp_path / "submitted" / name).read_bytes() == (
            tmp_path / "embedded" / name
        ).read_bytes()
    for image in (tmp_path / "embedded" / "images").iterdir():
        assert (tmp_path / "submitted" / "images" / image.name).read_bytes() == image.read_bytes()

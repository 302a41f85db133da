"""synthgate: labelled synthetic data, judged by a rubric and by people before it is merged.

The library, for notebooks and scripts (the `synthgate` command is a thin skin over it):

    import synthgate as sg

    config = sg.load_config("configs/quickstart.yaml")          # or a dict
    samples = sg.generate(config, limit=8)                       # in memory, nothing written
    reports = sg.validate(samples)                               # one RubricReport each
    rubric = sg.load_rubric("my-rubric.yaml")                    # a Rubric; or a shipped name
    reports = sg.validate(samples, rubric=rubric)                # rubric= takes one everywhere
    sg.show(samples[0], reports[0])                              # boxes, masks, findings
    result = sg.validate_coco("annotations.json", images="images/")
    run = sg.run(config, out="runs/quickstart")                  # the run folder
    balanced = sg.balance("annotations.json", images="images/", out="balanced/")
    sg.export(balanced.out, format="yolo", out="balanced-yolo/")
    sg.calibrate("runs/quickstart", rubric="detection", out="calibrated.yaml")  # after review

Names load on first use (PEP 562), so `import synthgate` loads no torch, diffusers, SQLAlchemy,
FastAPI, Celery, matplotlib or albumentations. Bad input raises `synthgate.InputError`, which
names the parameter (`field`), the problem and the fix.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from synthgate.errors import InputError

__version__ = "0.1.0"

# public name -> "module:attribute", imported when the name is first used
_LAZY = {
    "load_config": "synthgate.config:load_config",
    "BatchConfig": "synthgate.config:BatchConfig",
    "generate": "synthgate.pipeline:generate",
    "validate": "synthgate.validators.validate:validate",
    "validate_coco": "synthgate.validators.validate:validate_coco",
    "validate_file": "synthgate.validators.validate:validate_file",
    "ValidationResult": "synthgate.validators.validate:ValidationResult",
    "run": "synthgate.runner:run",
    "RunResult": "synthgate.runner:RunResult",
    "balance": "synthgate.workflows.balance:balance",
    "balance_text": "synthgate.workflows.balance_text:balance_text",
    "BalanceResult": "synthgate.workflows.balance:BalanceResult",
    "merge": "synthgate.workflows.merge:merge",
    "MergeResult": "synthgate.workflows.merge:MergeResult",
    "export": "synthgate.workflows.export:export",
    "ExportResult": "synthgate.workflows.export:ExportResult",
    "show": "synthgate.reports.show:show",
    "load_rubric": "synthgate.validators.rubric:load_rubric",
    "Rubric": "synthgate.validators.rubric:Rubric",
    "calibrate": "synthgate.review.calibration:calibrate",
    "Calibration": "synthgate.review.calibration:Calibration",
    "Sample": "synthgate.samples:Sample",
    "GeneratedSample": "synthgate.samples:GeneratedSample",
    "RubricReport": "synthgate.samples:RubricReport",
}

__all__ = [
    "BalanceResult",
    "BatchConfig",
    "Calibration",
    "ExportResult",
    "GeneratedSample",
    "InputError",
    "MergeResult",
    "Rubric",
    "RubricReport",
    "RunResult",
    "Sample",
    "ValidationResult",
    "__version__",
    "balance",
    "balance_text",
    "calibrate",
    "export",
    "generate",
    "load_config",
    "load_rubric",
    "merge",
    "run",
    "show",
    "validate",
    "validate_coco",
    "validate_file",
]

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from synthgate.config import BatchConfig, load_config
    from synthgate.pipeline import generate
    from synthgate.reports.show import show
    from synthgate.review.calibration import Calibration, calibrate
    from synthgate.runner import RunResult, run
    from synthgate.samples import GeneratedSample, RubricReport, Sample
    from synthgate.validators.rubric import Rubric, load_rubric
    from synthgate.validators.validate import (
        ValidationResult,
        validate,
        validate_coco,
        validate_file,
    )
    from synthgate.workflows.balance import BalanceResult, balance
    from synthgate.workflows.balance_text import balance_text
    from synthgate.workflows.export import ExportResult, export
    from synthgate.workflows.merge import MergeResult, merge


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'synthgate' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value  # the next use is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

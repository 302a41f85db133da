"""The agreement report of a review database: what `synthgate review agreement` prints.

`agreement_report(store)` reads the decisions and computes, with review/agreement.py:
inter-annotator agreement on verdicts (Cohen per pair, Fleiss, Krippendorff nominal) and on each
criterion's level (Krippendorff ordinal); annotator accuracy and per-criterion sensitivity on
gold tasks; and validator-vs-human agreement — Cohen's kappa between the rubric's route and the
route the final human verdict implies (accept -> accepted, fix -> review, reject -> rejected) —
with a suggestion of where `accept_at` / `reject_below` should move, per modality where image
and text samples were both reviewed (one rubric routes one modality). `exclude=[names]` leaves
annotators (a careless one) out of the agreement between annotators, saying who and how many
decisions that drops.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from sqlalchemy import func, select

from synthgate.errors import InputError
from synthgate.review import agreement, gold, priority
from synthgate.review.adjudication import ROUTE_OF_VERDICT
from synthgate.samples import CRITERIA, Sample
from synthgate.storage.store import Store
from synthgate.storage.tables import decisions, gold_answers, review_items, samples
from synthgate.validators.rubric import Rubric

TARGET = 0.95  # share of human agreement a threshold must reach to be suggested


def agreement_report(
    store: Store,
    *,
    accept_at: float | None = None,
    reject_below: float | None = None,
    rubric: Rubric | None = None,
    min_items: int = 10,
    exclude: Collection[str] = (),
) -> dict[str, Any]:
    """Every agreement table as plain data (JSON-able). The suggestions are compared with the
    routing cut-offs (scores, 1 to 5) of `rubric`, else of the rubric that routed the reviewed
    samples (`routing_cutoffs`); `accept_at`, `reject_below` given replace either. `exclude`:
    annotators (a careless one) whose decisions the agreement between annotators (verdicts and
    levels) leaves out; the report's `excluded` says who and how many decisions that drops."""
    for field, cut in (("accept_at", accept_at), ("reject_below", reject_below)):
        if cut is not None and not 1 <= cut <= 5:  # NaN too
            raise InputError(
                field=field, value=cut, problem="a rubric score cut-off is between 1 and 5"
            )
    # first: a wrong --rubric is said before a wrong --exclude, as it was
    validator = rubric_vs_humans(
        store, rubric=rubric, accept_at=accept_at, reject_below=reject_below, min_items=min_items
    )
    rows = _annotator_decisions(store)
    real = [r for r in rows if r["kind"] == "sample"]
    excluded = None
    if exclude:
        excluded = excluded_annotators(rows, exclude)
        real = [r for r in real if r["annotator"] not in excluded["decisions"]]
    verdicts = [(r["item_id"], r["annotator"], r["verdict"]) for r in real]
    criteria: dict[str, list[agreement.Rating]] = defaultdict(list)
    for r in real:
        for criterion, level in (r["levels"] or {}).items():
            criteria[criterion].append((r["item_id"], r["annotator"], int(level)))
    report = {
        "verdicts": {
            "cohen_pairs": [a.as_dict() for a in agreement.cohen_pairs(verdicts)],
            "fleiss": agreement.fleiss(verdicts).as_dict(),
            "alpha_nominal": agreement.alpha(
                verdicts, level="nominal", value_domain=["accept", "fix", "reject"]
            ).as_dict(),
        },
        "levels": {
            criterion: agreement.alpha(
                criteria[criterion], level="ordinal", value_domain=agreement.LEVEL_DOMAIN
            ).as_dict()
            for criterion in sorted(criteria, key=_criterion_order)
        },
        "gold": gold_table([r for r in rows if r["kind"] == "gold"]),
        "validator": validator,
    }
    # `excluded` only when annotators are left out: a report without any has no such key
    return report if excluded is None else {"excluded": excluded, **report}


def rubric_vs_humans(
    store: Store,
    *,
    rubric: Rubric | None = None,
    accept_at: float | None = None,
    reject_below: float | None = None,
    min_items: int = 10,
) -> dict[str, Any]:
    """The report's `validator`: `validator_vs_human` over the final reviewed samples, with the
    `cutoffs` its suggestions are compared with. Where image and text samples were both
    reviewed, one table of both would pool two rubrics' routes and scores (a detection score of
    4 is no ner score of 4): each modality then has its own under `modalities`, and the keys
    of a one-modality report are there empty, with a note saying where to look."""
    reviewed = sorted({modality for _, modality, _ in _reviewed_batches(store)})
    if len(reviewed) < 2:
        cutoffs = routing_cutoffs(store, rubric, accept_at=accept_at, reject_below=reject_below)
        return {
            **validator_vs_human(
                _final_items(store),
                accept_at=cutoffs["accept_at"],
                reject_below=cutoffs["reject_below"],
                min_items=min_items,
            ),
            "cutoffs": cutoffs,
        }
    if rubric is not None and (accept_at is None or reject_below is None):
        _check_modality(store, rubric)  # no one rubric fits both: refused, as routing_cutoffs does
    modalities = {}
    for modality in reviewed:
        cutoffs = routing_cutoffs(
            store, accept_at=accept_at, reject_below=reject_below, modality=modality
        )
        modalities[modality] = {
            **validator_vs_human(
                _final_items(store, modality=modality),
                accept_at=cutoffs["accept_at"],
                reject_below=cutoffs["reject_below"],
                min_items=min_items,
            ),
            "cutoffs": cutoffs,
        }
    note = (
        f"{' and '.join(reviewed)} samples were reviewed, each routed by a rubric of its own "
        "modality: rubric vs humans is compared per modality (validator.modalities)"
    )
    kappa = agreement.Agreement("cohen_kappa", None, 0, 0, None, note, ["rubric", "humans"])
    return {
        "kappa": kappa.as_dict(),
        "confusion": {},
        "suggestions": {"target": TARGET, "min_items": min_items, "notes": []},
        "cutoffs": {"accept_at": None, "reject_below": None, "source": None, "note": note},
        "modalities": modalities,
    }


def excluded_annotators(rows: list[dict[str, Any]], names: Collection[str]) -> dict[str, Any]:
    """Who `exclude` leaves out of the agreement and how many of their decisions on real items
    that drops; a name no annotator decision carries is an `InputError` (a typo would leave the
    report unchanged while saying someone was left out)."""
    known = sorted({r["annotator"] for r in rows})
    unknown = sorted(set(names) - set(known))
    if unknown:
        listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        raise InputError(
            field="exclude",
            value=", ".join(map(repr, unknown)),
            problem="no annotator of that name decided an item here",
            fix=f"annotators: {listed or 'none yet'}",
        )
    dropped = Counter(
        r["annotator"] for r in rows if r["kind"] == "sample" and r["annotator"] in names
    )
    counts = {name: dropped[name] for name in sorted(set(names))}
    return {
        "decisions": counts,
        "dropped": sum(counts.values()),
        "note": "left out of the agreement between annotators (verdicts and levels); the gold "
        "table still lists them, and rubric vs humans reads the final verdicts their decisions "
        "helped make",
    }


def routing_cutoffs(
    store: Store,
    rubric: Rubric | None = None,
    *,
    accept_at: float | None = None,
    reject_below: float | None = None,
    modality: str | None = None,
) -> dict[str, Any]:
    """The routing cut-offs the threshold suggestions are compared with, and where they come
    from: those given, else `rubric`'s, else those of the rubric that routed the reviewed
    samples (`rubric_that_routed`; of `modality`'s samples only, when given). `rubric` of
    another modality than the reviewed samples is an `InputError`: its cut-offs were never
    those of their scores."""
    if accept_at is not None and reject_below is not None:  # the rubric's are not used
        return {"accept_at": accept_at, "reject_below": reject_below, "source": "given", "note": ""}
    if rubric is not None:
        _check_modality(store, rubric)
    if rubric is not None:
        routing = rubric.routing
        found = {
            "accept_at": routing.accept_at,
            "reject_below": routing.reject_below,
            "source": f"rubric {rubric.name!r}",
            "note": "",
        }
    else:
        found = rubric_that_routed(store, modality=modality)
    if accept_at is None and reject_below is None:
        return found
    merged = {
        "accept_at": found["accept_at"] if accept_at is None else accept_at,
        "reject_below": found["reject_below"] if reject_below is None else reject_below,
        "source": "given" + (f", the rest from {found['source']}" if found["source"] else ""),
    }
    return merged | {"note": found["note"] if None in merged.values() else ""}


def _check_modality(store: Store, rubric: Rubric) -> None:
    """An `InputError` where reviewed samples are of another modality than `rubric` (a text
    rubric named for image samples): its cut-offs would be compared with another rubric's
    scores."""
    reviewed = sorted({modality for _, modality, _ in _reviewed_batches(store)})
    if any(modality != rubric.modality for modality in reviewed):
        raise InputError(
            field="rubric",
            value=rubric.name,
            problem=f"a rubric of {rubric.modality} samples, and the reviewed samples are "
            f"{' and '.join(reviewed)}: its cut-offs are not those of their scores",
            fix="name a rubric of their modality, or give {accept_at} and {reject_below}"
            + (" (reviewed samples of both kinds fit no one rubric)" if len(reviewed) > 1 else ""),
            options=("accept_at", "reject_below"),
        )


def rubric_that_routed(store: Store, *, modality: str | None = None) -> dict[str, Any]:
    """The cut-offs of the rubric that routed the reviewed samples: each batch's
    `<modality>.rubric`, else the shipped rubric its samples' reports name (found as `review
    enqueue` finds it: priority.resolve_rubric), read from one final sample of each batch and
    modality. None, with a note saying why, where that rubric is not found, is not the one the
    reports name (a batch run again with another rubric) or batches were routed by different
    cut-offs. `modality`: of that modality's samples only."""
    found: dict[tuple[float, float], set[str]] = defaultdict(set)
    missing: list[str] = []
    others: list[str] = []  # batches whose rubric now is not the one their reports name
    loaded: dict[str, Rubric | None] = {}  # a rubric file read once for every batch naming it
    for batch_id, kind, sample in _reviewed_batches(store, modality=modality):
        named = sample.report.rubric if sample.report is not None else None
        config = (store.get_batch(batch_id) or {}).get("config")
        key = json.dumps([(config or {}).get(kind), kind, named], default=str)
        if key not in loaded:
            loaded[key] = priority.resolve_rubric(config, kind, named)
        judged_by = loaded[key]
        if judged_by is None:
            missing.append(f"{batch_id} ({kind}, rubric {named!r})")
            continue
        why = _not_routed_by(judged_by, sample)
        if why is not None:
            others.append(f"batch {batch_id} ({kind}): {why}")
            continue
        routing = judged_by.routing
        found[routing.accept_at, routing.reject_below].add(judged_by.name)
    cutoffs: dict[str, Any] = {"accept_at": None, "reject_below": None, "source": None, "note": ""}
    fix = "pass --rubric NAME|YAML, or --accept-at and --reject-below, to compare with"
    if missing:
        cutoffs["note"] = f"the rubric that routed batch {', '.join(missing)} is not found: {fix}"
    elif others:
        cutoffs["note"] = f"{'; '.join(others)}: {fix}"
    elif len(found) > 1:
        each = "; ".join(
            f"{', '.join(sorted(names))}: accept_at {a:g}, reject_below {r:g}"
            for (a, r), names in sorted(found.items())
        )
        cutoffs["note"] = f"the reviewed samples were routed by different cut-offs ({each}): {fix}"
    elif found:
        ((accept_at, reject_below), names) = next(iter(found.items()))
        cutoffs.update(
            accept_at=accept_at,
            reject_below=reject_below,
            source=f"rubric {', '.join(map(repr, sorted(names)))}, which routed the samples",
        )
    return cutoffs


def _not_routed_by(rubric: Rubric, sample: Sample) -> str | None:
    """Why `rubric`, found for `sample`'s batch, is not the one that routed it (its report names
    another), or None. The rubric is not part of a batch's id: run again with another one, the
    batch's config is replaced, while the samples reviewed before keep their reports."""
    if sample.report is None or sample.report.rubric == rubric.name:
        return None
    return (
        f"its config names rubric {rubric.name!r} now, while its reviewed samples' reports name "
        f"{sample.report.rubric!r} (run again with another rubric?)"
    )


def _reviewed_batches(
    store: Store, *, modality: str | None = None
) -> Iterator[tuple[str, str, Sample]]:
    """Each batch and modality (`modality` only, when given) with a final reviewed sample, and
    its first such sample (whose report names the rubric that judged it)."""
    reviewed = (
        select(func.min(samples.c.id).label("id"))
        .join(review_items, review_items.c.sample_id == samples.c.id)
        .where(review_items.c.kind == "sample", review_items.c.status == "final")
    )
    if modality is not None:
        reviewed = reviewed.where(samples.c.modality == modality)
    first = reviewed.group_by(samples.c.batch_id, samples.c.modality).subquery()
    query = (
        select(samples.c.batch_id, samples.c.modality, samples.c.data)
        .join(first, first.c.id == samples.c.id)
        .order_by(samples.c.batch_id, samples.c.modality)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    for batch_id, modality, data in rows:
        yield batch_id, modality, Sample.model_validate_json(data)


def _criterion_order(name: str) -> tuple[int, str]:
    return (CRITERIA.index(name) if name in CRITERIA else len(CRITERIA), name)


def _annotator_decisions(store: Store) -> list[dict[str, Any]]:
    query = (
        select(
            decisions.c.item_id,
            decisions.c.annotator,
            decisions.c.verdict,
            decisions.c.levels,
            review_items.c.kind,
            gold_answers.c.expected,
            gold_answers.c.criterion,
        )
        .join(review_items, review_items.c.id == decisions.c.item_id)
        .outerjoin(gold_answers, gold_answers.c.item_id == decisions.c.item_id)
        .where(decisions.c.role == "annotator")
        .order_by(decisions.c.item_id, decisions.c.annotator)
    )
    with store.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def gold_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per annotator and, per criterion, the share of honeypots whose defect they
    flagged with a level below 5 (sensitivity; decisions without that level do not count)."""
    people: dict[str, dict[str, Any]] = defaultdict(lambda: {"decided": 0, "correct": 0})
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in rows:
        person = people[r["annotator"]]
        person["decided"] += 1
        person["correct"] += int(gold.is_correct(r["verdict"], r["expected"] or []))
        flagged = gold.detected(r["levels"] or {}, r["criterion"])
        if flagged is not None:
            counts = hits[r["annotator"]][r["criterion"]]
            counts[0] += int(flagged)
            counts[1] += 1
    table = {}
    for who, person in sorted(people.items()):
        table[who] = {
            **person,
            "accuracy": person["correct"] / person["decided"],
            "sensitivity": {
                c: {"flagged": f, "honeypots": n, "rate": f / n}
                for c, (f, n) in sorted(hits[who].items(), key=lambda kv: _criterion_order(kv[0]))
            },
        }
    return table


def _final_items(store: Store, *, modality: str | None = None) -> Iterator[tuple[Sample, str]]:
    """Each reviewed sample (of `modality`, when given) with its final verdict, parsed one at a
    time as the rows come: a caller keeps what it needs of each (its report), not every
    sample's labels at once."""
    query = (
        select(samples.c.data, review_items.c.final_verdict)
        .join(samples, samples.c.id == review_items.c.sample_id)
        .where(review_items.c.kind == "sample", review_items.c.status == "final")
        .order_by(review_items.c.id)
    )
    if modality is not None:
        query = query.where(samples.c.modality == modality)
    with store.engine.connect() as connection:
        for data, verdict in connection.execute(query):
            yield Sample.model_validate_json(data), verdict


def validator_vs_human(
    finals: Iterable[tuple[Sample, str]],
    *,
    accept_at: float | None = None,
    reject_below: float | None = None,
    min_items: int = 10,
) -> dict[str, Any]:
    """Kappa between the rubric's route and the route the human verdict implies, plus where the
    thresholds could move (the sample's status after review no longer shows the rubric's route:
    the report does)."""
    finals = list(finals)
    judged = [(s.report, v) for s, v in finals if s.report is not None]
    routes = [report.route for report, _ in judged]
    wanted = [ROUTE_OF_VERDICT[v] for _, v in judged]
    kappa = agreement.cohen_kappa(routes, wanted)
    kappa.raters = ["rubric", "humans"]
    if not judged:
        kappa.note = "no reviewed sample has a final human verdict yet"
    elif kappa.value is not None:  # 0 where the rubric routed every sample alike (audits)
        kappa.note = agreement.one_value_note({"the rubric": routes, "people": wanted})
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for route, human in zip(routes, wanted, strict=True):
        confusion[route][human] += 1
    scored = [(report.score, v) for report, v in judged]
    return {
        "kappa": kappa.as_dict(),
        "confusion": {r: dict(h) for r, h in sorted(confusion.items())},
        "suggestions": suggest_thresholds(
            scored,
            accept_at=accept_at,
            reject_below=reject_below,
            min_items=min_items,
            # with none final, the scores of the samples still in review are not looked at
            unscored="no reviewed sample has a rubric score yet"
            if finals
            else "no reviewed sample has a final human verdict yet",
        ),
    }


def suggest_thresholds(
    scored: list[tuple[float, str]],
    *,
    accept_at: float | None = None,
    reject_below: float | None = None,
    min_items: int = 10,
    target: float = TARGET,
    unscored: str = "no reviewed sample has a rubric score yet",
) -> dict[str, Any]:
    """The lowest score above which humans accepted >= target of samples, and the highest score
    below which they rejected >= target, each over at least `min_items` reviewed samples.
    `unscored`: the note when `scored` is empty (why none is)."""
    suggestion: dict[str, Any] = {"target": target, "min_items": min_items, "notes": []}
    scores = sorted({score for score, _ in scored})
    best_accept = None
    for threshold in reversed(scores):  # widen downwards while humans still accept
        above = [v for s, v in scored if s >= threshold]
        if len(above) >= min_items and _share(above, "accept") >= target:
            best_accept = float(threshold)
        elif len(above) >= min_items:
            break
    best_reject = None
    for threshold in scores[1:]:  # widen upwards while humans still reject
        below = [v for s, v in scored if s < threshold]
        if len(below) >= min_items and _share(below, "reject") >= target:
            best_reject = float(threshold)
        elif len(below) >= min_items:
            break
    suggestion["accept_at"] = best_accept
    suggestion["reject_below"] = best_reject
    suggestion["notes"] = (
        _threshold_notes(
            scored, best_accept, best_reject, accept_at, reject_below, target, min_items
        )
        if scored
        else [unscored]
    )
    return suggestion


def _share(verdicts: list[str], verdict: str) -> float:
    return sum(v == verdict for v in verdicts) / len(verdicts)


def _threshold_notes(
    scored: list[tuple[float, str]],
    best_accept: float | None,
    best_reject: float | None,
    accept_at: float | None,
    reject_below: float | None,
    target: float,
    min_items: int,
) -> list[str]:
    notes = []
    if best_accept is None:
        notes.append(
            f"no score band with >= {min_items} reviewed samples is accepted by humans "
            f">= {target:.0%} of the time: keep accept_at"
            + ("" if accept_at is None else f" ({accept_at}) or raise it")
        )
    elif accept_at is None or abs(best_accept - accept_at) > 1e-9:
        share = _share([v for s, v in scored if s >= best_accept], "accept")
        move = " set" if accept_at is None else (" lower" if best_accept < accept_at else " raise")
        notes.append(
            f"accept_at:{move} to {best_accept:g}: humans accepted {share:.0%} of reviewed "
            f"samples scoring >= {best_accept:g}"
        )
    if accept_at is not None:
        above = [v for s, v in scored if s >= accept_at]
        if above and _share(above, "accept") < target:
            notes.append(
                f"accept_at {accept_at:g} lets through samples humans accept only "
                f"{_share(above, 'accept'):.0%} of the time (n={len(above)}): raise it"
            )
    if best_reject is not None and (reject_below is None or abs(best_reject - reject_below) > 1e-9):
        share = _share([v for s, v in scored if s < best_reject], "reject")
        move = (
            " set"
            if reject_below is None
            else (" raise" if best_reject > reject_below else " lower")
        )
        notes.append(
            f"reject_below:{move} to {best_reject:g}: humans rejected {share:.0%} of reviewed "
            f"samples scoring < {best_reject:g}"
        )
    return notes

"""Queue statistics: depth, decisions, per-annotator throughput and accuracy on gold tasks, how
many final verdicts changed the rubric's route (`route_changes`), and the open items nobody the
queue knows may take (`blocked_items`: a lead adjudicates them, or a new annotator takes them),
and the open items that need more annotators than may ever take them, those the queue gave
work to and the annotator users yet to ask for work (`short_of_annotators`: a lead lowers their
k, `review set-k`); the latest decisions (`latest_decisions`, for the admin page).

An annotator's `decisions_per_hour` counts their decisions from the first task they took to the
last they decided, of those whose time on the task is known: one imported from Label Studio is
timed by its `created_at` and `lead_time`, and without them was assigned when it was decided
(review/interop.py); such decisions are counted as `untimed` instead. It stays None until that
span reaches `RATE_SPAN_S`: four decisions within a second of scripted work read as six million
an hour.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Select, func, literal, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from synthgate.errors import counted
from synthgate.review import gold
from synthgate.review.adjudication import ROUTE_OF_VERDICT
from synthgate.review.items import GOLD_KEYS, IDS_PER_QUERY
from synthgate.storage.tables import (
    annotator_counts,
    assignments,
    decisions,
    gold_answers,
    removed_users,
    review_items,
    taken_back,
    users,
)

NAMES_SHOWN = 5  # annotators a line of `short_of_annotators` names

RATE_SPAN_S = 60  # seconds of work before decisions_per_hour says a rate


def route_changes(connection: Connection) -> dict[str, Any]:
    """How many final verdicts sent a sample elsewhere than the rubric's route, and where."""
    final = connection.execute(
        select(review_items.c.route, review_items.c.final_verdict, func.count())
        .where(review_items.c.kind == "sample", review_items.c.status == "final")
        .group_by(review_items.c.route, review_items.c.final_verdict)
    ).all()
    moves: dict[str, int] = defaultdict(int)
    for route, verdict, n in final:
        if route is not None and ROUTE_OF_VERDICT[verdict] != route:
            moves[f"{route} -> {ROUTE_OF_VERDICT[verdict]}"] += n
    return {
        "final": sum(n for _, _, n in final),
        "with_route": sum(n for route, _, n in final if route is not None),
        "changed": sum(moves.values()),
        "moves": dict(sorted(moves.items())),
    }


def annotators_per_item(connection: Connection, k: int) -> int:
    """The k the queue's sample items ask for (each keeps the k it was enqueued with; the most
    common one among the open items, else among all, the larger on a tie), or `k`, what new
    items get, while there are none: old batches finished at k = 2 do not hide an open one at 3."""
    counts = connection.execute(
        select(review_items.c.k, review_items.c.status, func.count())
        .where(review_items.c.kind == "sample")
        .group_by(review_items.c.k, review_items.c.status)
    ).all()
    if not counts:
        return k
    open_items = [(each, n) for each, status, n in counts if status != "final"]
    asked: Counter[int] = Counter()
    for each, n in open_items or [(each, n) for each, _, n in counts]:
        asked[each] += n
    return max(asked, key=lambda each: (asked[each], each))


def queue_team(connection: Connection) -> list[str]:
    """The annotators the queue gave work to, by name: those who may take its items. Admins are
    left out: the server handed them items before it refused to (api/review.py `refuse_admin`),
    and hands them none now; what such an admin still holds waits for `review release`. So are
    the users `synthgate users remove` took away (api_removed_users, storage/users.py), until
    one is added again under the name. Everyone else given work is in it, users or not: one
    who works outside the API (Label Studio through `review import`, `ReviewQueue` in Python,
    a queue worked from the CLI alone) is never a user, and decides items all the same."""
    admins = select(users.c.name).where(users.c.role == "admin")
    team = select(annotator_counts.c.annotator).where(
        annotator_counts.c.annotator.not_in(admins),
        annotator_counts.c.annotator.not_in(select(removed_users.c.name)),
    )
    return list(connection.execute(team.order_by(annotator_counts.c.annotator)).scalars())


def annotators_to_come(connection: Connection) -> list[str]:
    """The annotator users the queue never gave work to, by name: they have not asked for work
    yet, and may take its items when they do (admins and requesters are given none)."""
    given_work = select(annotator_counts.c.annotator)
    waiting = select(users.c.name).where(
        users.c.role == "annotator", users.c.name.not_in(given_work)
    )
    return list(connection.execute(waiting.order_by(users.c.name)).scalars())


def _met_as_gold(prefix: str, item: int | None) -> Select[Any]:
    """(item, sample, people it still needs, who met the sample as gold) of the open sample items
    with slots left whose sample has a gold item keyed `prefix` + its id with assignments. For
    one item, its gold key is sought from it; for all, each gold item seeks its sample's real
    item (gold items are a fraction of the open ones, and most have none)."""
    gold_item = review_items.alias("gold_item")
    only: tuple[ColumnElement[bool], ...]
    if item is None:
        real_key = literal("sample:") + func.substr(gold_item.c.key, len(prefix) + 1)
        joined = gold_item.join(review_items, review_items.c.key == real_key)
        only = (gold_item.c.kind == "gold", gold_item.c.key.startswith(prefix, autoescape=True))
    else:
        gold_key = literal(prefix) + review_items.c.sample_id
        joined = review_items.join(gold_item, gold_item.c.key == gold_key)
        only = (review_items.c.id == item,)
    return (
        select(
            review_items.c.id,
            review_items.c.sample_id,
            review_items.c.k - review_items.c.taken,
            assignments.c.annotator,
        )
        .select_from(joined.join(assignments, assignments.c.item_id == gold_item.c.id))
        .where(
            *only,
            review_items.c.kind == "sample",
            review_items.c.status == "open",
            review_items.c.taken < review_items.c.k,
        )
    )


def _benched_from(item: int | None) -> Select[Any]:
    """(item, sample, people it still needs, who `review reopen --annotator` benched from it) of
    the open sample items with slots left (with `item`, that one) a reopen benched someone from
    (claims.py NOT_BENCHED)."""
    query = (
        select(
            review_items.c.id,
            review_items.c.sample_id,
            review_items.c.k - review_items.c.taken,
            taken_back.c.annotator,
        )
        .select_from(review_items.join(taken_back, taken_back.c.item_id == review_items.c.id))
        .where(
            taken_back.c.benched.is_(true()),
            review_items.c.kind == "sample",
            review_items.c.status == "open",
            review_items.c.taken < review_items.c.k,
        )
    )
    return query if item is None else query.where(review_items.c.id == item)


def blocked_items(connection: Connection, *, item: int | None = None) -> list[dict[str, Any]]:
    """The open sample items (with `item`, that one if it is) the blind rule keeps from the
    team: nobody is given the real item of a sample they met as gold (review/claims.py
    NOT_SEEN_AS_GOLD), so a sample made gold before it was enqueued may find fewer people who
    neither met it nor hold it, among everyone the queue gave work to, than it still needs.
    So may an item `review reopen --annotator` benched people from (nobody is given an item
    their careless decision was taken back from). No claim hands it out until someone new asks
    for work; a lead may adjudicate it instead (queue.py `adjudicate`), or, where two or more
    decisions are in and nobody holds it undecided, lower k to them (`review set-k`: final
    where they agree, else adjudication), as a reopen at k = 3 leaves every item it touched.
    Each: item, sample, needs (people still wanted), met_as_gold (who holds or held its gold
    task), benched, why and fix (for people). Only items whose sample someone met as gold, or
    that benched someone, are counted: a team still smaller than k blocks none.
    """
    met: dict[int, set[str]] = defaultdict(set)
    benched: dict[int, set[str]] = defaultdict(set)
    wanted: dict[int, tuple[str, int]] = {}
    for prefix in GOLD_KEYS:
        for item_id, sample_id, needs, who in connection.execute(_met_as_gold(prefix, item)):
            met[item_id].add(who)
            wanted[item_id] = (sample_id, needs)
    for item_id, sample_id, needs, who in connection.execute(_benched_from(item)):
        benched[item_id].add(who)
        wanted[item_id] = (sample_id, needs)
    if not wanted:
        return []
    team = set(queue_team(connection))
    holding: dict[int, set[str]] = defaultdict(set)
    decided: Counter[int] = Counter()
    ids = sorted(wanted)
    for start in range(0, len(ids), IDS_PER_QUERY):
        for item_id, who, decided_at in connection.execute(
            select(assignments.c.item_id, assignments.c.annotator, assignments.c.decided_at).where(
                assignments.c.item_id.in_(ids[start : start + IDS_PER_QUERY])
            )
        ):
            holding[item_id].add(who)
            decided[item_id] += decided_at is not None
    blocked = []
    for item_id in ids:
        sample_id, needs = wanted[item_id]
        free = team - met[item_id] - benched[item_id] - holding[item_id]
        if len(free) >= needs:
            continue
        people, careless = sorted(met[item_id]), sorted(benched[item_id])
        more = needs - len(free)
        kept_off = []
        if people:
            kept_off.append(
                f"{', '.join(people)} met its sample as a gold task, and nobody is given one "
                "sample twice"
            )
        if careless:
            kept_off.append(
                f"review reopen took back the decision of {', '.join(careless)} on it, and "
                "nobody is given such an item again"
            )
        fix = f"an annotator new to the queue ({more} more) takes it, or an admin adjudicates it"
        if decided[item_id] >= 2 and decided[item_id] == len(holding[item_id]):
            fix += (
                f", or `synthgate review set-k {decided[item_id]}` (with this --run or --db; POST "
                "/api/review/annotators-per-item) finishes it from the "
                f"{decided[item_id]} decisions it has, final where they agree, else awaiting "
                "adjudication (it lowers the k of every open item: --batch for some batches)"
            )
        blocked.append(
            {
                "item": item_id,
                "sample": sample_id,
                "needs": needs,
                "met_as_gold": people,
                "benched": careless,
                "why": f"{'; '.join(kept_off)}; of the annotators the queue knows, {len(free)} "
                f"could take it and it needs {needs}",
                "fix": fix,
            }
        )
    return blocked


def short_of_annotators(connection: Connection) -> list[dict[str, Any]]:
    """The open sample items that need more annotators than may ever take them, by the k they
    need: the queue's team (those it gave work to) and the annotator users who have not asked
    for work yet (`annotators_to_come`). Each person decides an item once, so their last slots
    wait for someone new (`next` gives the team nothing more); a lead lowers their k instead
    (review/set_k.py). Each: k, items, team (how many people were given work), names (the first
    few), waiting (the annotators to come), why and fix. None while the team is empty (nobody
    was given work yet, or only admins and users removed since): the team is still to come; nor
    for a k the annotators to come make up: they are the someone new."""
    team = queue_team(connection)
    if not team:
        return []
    waiting = annotators_to_come(connection)
    may_take = len(team) + len(waiting)
    short = connection.execute(
        select(review_items.c.k, func.count())
        .where(
            review_items.c.kind == "sample",
            review_items.c.status == "open",
            review_items.c.k > may_take,
        )
        .group_by(review_items.c.k)
        .order_by(review_items.c.k)
    ).all()
    size = "the team's size with those to come" if waiting else "the team's size"
    to_come = (
        f", and {counted(len(waiting), 'annotator who has', 'annotators who have')} not asked "
        f"for work yet ({_first_names(waiting)})"
        if waiting
        else ""
    )
    return [
        {
            "k": k,
            "items": n,
            "team": len(team),
            "names": team[:NAMES_SHOWN],
            "waiting": waiting[:NAMES_SHOWN],
            "why": f"{n} open items need {k} annotators each, and the queue has given work to "
            f"{len(team)} ({_first_names(team)}){to_come}; nobody decides an item twice, so "
            "their last slots wait for someone new",
            "fix": f"lower their k to {size}: `synthgate review set-k {may_take}` (with this "
            "--run or --db; POST /api/review/annotators-per-item), or a new annotator asks for "
            "work",
        }
        for k, n in short
    ]


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")


def latest_decisions(connection: Connection, limit: int) -> list[dict[str, Any]]:
    """The `limit` latest decisions, adjudications too, newest first, as review_decisions rows
    (the admin page lists them with their comments)."""
    found = connection.execute(
        select(decisions)
        .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in found]


def queue_stats(connection: Connection, k: int) -> dict[str, Any]:
    by_status = {
        (kind, status): n
        for kind, status, n in connection.execute(
            select(review_items.c.kind, review_items.c.status, func.count()).group_by(
                review_items.c.kind, review_items.c.status
            )
        )
    }
    open_slots = connection.execute(
        select(func.coalesce(func.sum(review_items.c.k - review_items.c.taken), 0)).where(
            review_items.c.kind == "sample", review_items.c.status == "open"
        )
    ).scalar_one()
    people: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"assigned": 0, "decided": 0, "gold_decided": 0, "gold_correct": 0}
    )
    spans: dict[str, list[float]] = defaultdict(list)
    timed: Counter[str] = Counter()
    for who, assigned_at, decided_at in connection.execute(
        select(assignments.c.annotator, assignments.c.assigned_at, assignments.c.decided_at)
    ):
        people[who]["assigned"] += 1
        if decided_at is not None:
            people[who]["decided"] += 1
        if decided_at is not None and decided_at > assigned_at:
            timed[who] += 1
            spans[who] += [assigned_at, decided_at]
    for who, verdict, expected in connection.execute(
        select(decisions.c.annotator, decisions.c.verdict, gold_answers.c.expected)
        .join(gold_answers, gold_answers.c.item_id == decisions.c.item_id)
        .where(decisions.c.role == "annotator")
    ):
        people[who]["gold_decided"] += 1
        people[who]["gold_correct"] += int(gold.is_correct(verdict, expected))
    for who, row in people.items():
        row["gold_accuracy"] = (
            row["gold_correct"] / row["gold_decided"] if row["gold_decided"] else None
        )
        seconds = max(spans[who]) - min(spans[who]) if spans[who] else 0.0
        row["decisions_per_hour"] = (
            round(timed[who] / (seconds / 3600), 1) if seconds >= RATE_SPAN_S else None
        )
        row["untimed"] = row["decided"] - timed[who]
    return {
        "route_changes": route_changes(connection),
        # not the reading queue's k: `review stats` opens the queue with the default, and
        # serve with its own, while the items keep the k of `review enqueue -k`
        "annotators_per_item": annotators_per_item(connection, k),
        "items": {
            status: sum(n for (kind, s), n in by_status.items() if kind == "sample" and s == status)
            for status in ("open", "adjudication", "final")
        },
        "gold_items": sum(n for (kind, _), n in by_status.items() if kind == "gold"),
        "blocked": blocked_items(connection),
        "short_of_annotators": short_of_annotators(connection),
        "queue_depth": int(open_slots),
        "decisions": connection.execute(select(func.count()).select_from(decisions)).scalar_one(),
        # of them, final words on items their annotators split on (not in `annotators`)
        "adjudications": connection.execute(
            select(func.count()).where(decisions.c.role == "adjudicator")
        ).scalar_one(),
        "annotators": dict(sorted(people.items())),
    }

"""The human review queue (DESIGN.md §6): blind multi-annotator review, gold tasks,
adjudication, agreement statistics, Label Studio interop, and the rubric learning from it.

queue.py        ReviewQueue: enqueue, next_item, decide, adjudicate, stats (the API and CLI use it)
decision.py     Decision and ReviewTask, and the checks a decision must pass
items.py        an item's row and shown sample, and making its result final (in a transaction)
enqueue.py      items from routed samples, honeypots from accepted ones, the gold set
set_k.py        a new k for the open items (`review set-k`), finishing those that have their decisions
priority.py     the claim order: uncertainty, random, fifo; a gold item's place in the gold order
value.py        what reviewing an item is worth: nearness to a threshold, checks people overrule
prelabels.py    a detector's predictions judged by `validate --coco` as a review batch
gold.py         honeypot defects and how gold decisions are scored
adjudication.py majority, else an adjudicator; the final sample
agreement.py    Cohen / Fleiss / Krippendorff via scikit-learn, statsmodels, krippendorff
report.py       the agreement report: annotators, gold, rubric vs humans, threshold suggestions
stats.py        queue depth, per-annotator throughput, verdicts that changed the rubric's route
verdicts.py     reviewed samples: stored measurements, rubric route, people's route and levels
routes.py       a rubric's levels and routes recomputed from stored measurements (numpy)
calibration.py  thresholds and routing refit on people's verdicts (`synthgate rubric calibrate`)
labelstudio.py  Label Studio formats (config XML, regions, results), pure functions
interop.py      Label Studio export/import against a ReviewQueue

The queue's tables live with every other table in storage/tables.py.
"""

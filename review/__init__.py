"""The human review queue (DESIGN.md §6): blind multi-annotator review, gold tasks,
adjudication, agreement statistics and Label Studio interop.

`queue.ReviewQueue` is the database-backed queue the API and the CLI share; `agreement` computes
kappa / alpha over its decisions; `labelstudio` converts tasks and decisions at the edge.
"""

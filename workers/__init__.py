"""The distributed runner: the same pipeline on Celery workers with a Redis broker (DESIGN.md §7).

- app.py: the Celery app and `WorkerSettings` (env `SYNTHGATE_*`); routing to `cpu` / `gpu`.
- tasks.py: the thin `make_chunk` task (acks, retries) and each worker's lease sweep.
- chunks.py: what a chunk task does, under the chunk's lease: generate, measure (the per-sample
  checks), store PNGs, partial reports and `pending` rows; time limits end it.
- partial.py: a sample's partial report (validators/measure.py), kept in the blob store.
- submit.py: publish a batch's chunks, send again those whose worker was lost, and follow them in
  the database.
- runner.py: `CeleryRunner`, the runner interface's Celery backend: submit, then judge each
  generated chunk in index order (batch checks compare each sample with the earlier ones: hash
  comparisons) into the same sinks as `synthgate run`.

Deploying: every worker and `synthgate submit` share one database (`--db`, PostgreSQL for
several machines) and one blob store (`--blobs`, a shared folder or an fsspec URL). Production
timings: soft/hard time limits 600/900 s, Redis visibility timeout 3600 s (must stay above the
hard limit), chunk leases of 10 s renewed every 2 s (a lost worker's chunk is taken up by
another worker once its lease runs out, long before the visibility timeout), a chunk gives up
its sample in flight after 3 lost workers. Run Redis with `appendonly yes` so a broker restart
keeps the queue; without it, `submit --wait` notices the stall and publishes the unfinished
chunks again.
"""

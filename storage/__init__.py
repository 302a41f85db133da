"""Storage: one SQLAlchemy MetaData for every table, migrations, the store, chunk bookkeeping,
requesters and blobs. (The output folders and files every command writes are guarded in
outputs.py, below every layer that writes one.)"""

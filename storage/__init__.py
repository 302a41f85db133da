"""Storage: one SQLAlchemy MetaData for every table, migrations, the store, chunk bookkeeping,
requesters, blobs and the output folders it guards."""

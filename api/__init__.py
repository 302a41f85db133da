"""The web service: a FastAPI app for batches (requesters), the review queue (annotators) and
its health (admins), plus the server-rendered review and admin pages. `create_app` builds it;
`synthgate serve` runs it with uvicorn."""

from pathlib import Path

API_DIR = Path(__file__).resolve().parent  # templates/ and static/ live here

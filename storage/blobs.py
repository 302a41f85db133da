"""The blob store: image bytes by key, under a local folder or any fsspec URL.

Workers write the PNGs (and each sample's partial report, workers/partial.py) here; `submit` reads them back to
write the run folder. A shared folder or object storage (s3://, gs://, …) serves several machines.
A write that finds the store full is `NoSpaceLeft` (files.py), which workers retry later.
"""

from __future__ import annotations

from pathlib import Path

from synthgate.arguments import environment_value
from synthgate.errors import InputError, quoted
from synthgate.files import no_space_left, write_atomic


class BlobStore:
    """Image bytes by key, under a local folder or an fsspec URL (a shared path, s3://…)."""

    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        self._local = Path(self.url) if "://" not in self.url else None
        if self._local is not None:
            try:
                self._local.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # a file there, a folder that cannot be made
                raise _refused(
                    self.url,
                    problem=f"cannot be the blob folder ({error.strerror or error})",
                    fix="pass a folder every worker and this process can write (or an fsspec URL)",
                ) from None
        else:
            _refuse_unknown_protocols(self.url)

    def put(self, key: str, data: bytes) -> None:
        if self._local is not None:
            # A temporary file of its own per write: two deliveries of one task may write the
            # same key at once, and a reader never sees half a file.
            write_atomic(self._local / key, data, field="blobs")
            return
        import fsspec  # only for remote blob stores

        url = f"{self.url.rstrip('/')}/{key}"
        with no_space_left("blobs", url), fsspec.open(url, "wb") as handle:
            handle.write(data)

    def get(self, key: str) -> bytes:
        if self._local is not None:
            return (self._local / key).read_bytes()
        import fsspec

        with fsspec.open(f"{self.url.rstrip('/')}/{key}", "rb") as handle:
            return handle.read()

    def exists(self, key: str) -> bool:
        """Whether a blob is there, without reading it."""
        if self._local is not None:
            return (self._local / key).is_file()
        import fsspec

        filesystem, path = fsspec.core.url_to_fs(f"{self.url.rstrip('/')}/{key}")
        return bool(filesystem.exists(path))


def _refuse_unknown_protocols(url: str) -> None:
    """Refuse an fsspec URL whose protocol fsspec does not know, or whose package is not
    installed here (s3fs for s3://): a worker took every task only to fail each sample."""
    import fsspec

    for part in url.split("::"):  # a chained URL (simplecache::s3://...)
        protocol = part.partition("://")[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as error:
            raise _refused(
                url,
                problem=f"cannot be the blob store ({error})",
                fix="install the fsspec package of its protocol (s3fs for s3://, gcsfs for "
                "gs://) where this runs, or pass a folder every worker and this process reach",
            ) from None


BLOB_VARIABLE = "SYNTHGATE_BLOB_URL"


def _refused(url: str, *, problem: str, fix: str) -> InputError:
    """The refusal of blob store `url`: naming SYNTHGATE_BLOB_URL where the URL is its value (a
    worker's environment), not a --blobs nobody passed (one passed with the same URL is named
    either way)."""
    if environment_value(BLOB_VARIABLE) == url:
        return InputError(f"{BLOB_VARIABLE}={quoted(url)}: {problem}; {fix}")
    return InputError(field="blobs", value=url, problem=problem, fix=fix)

"""Checksum-verified downloads for users who have a network.

Without one, a loader raises an error that says which files to put where; nothing is
fetched during tests.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from dfnas.errors import DatasetError
from dfnas.io import atomic_path


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str) -> Path:
    """Fetch ``url`` to ``dest`` unless a copy with the right MD5 is already there."""
    if dest.exists() and md5sum(dest) == md5:
        return dest
    print(f"downloading {url} -> {dest}", flush=True)
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            got = md5sum(tmp)
            if got != md5:
                raise DatasetError(f"{url}: MD5 {got} does not match the published {md5}")
    except OSError as exc:
        raise DatasetError(f"could not download {url} ({exc})") from None
    return dest


def missing_files_error(name: str, folder: Path, files: list[str], reason: str) -> DatasetError:
    listed = ", ".join(files)
    return DatasetError(
        f"{name}: {reason}; put {listed} under {folder} "
        f"(or set download: true in the dataset's config with a network)"
    )

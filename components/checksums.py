"""SHA-256 checksums of the committed model deltas (``sha256sum`` format files beside them).

Every shipped artefact (encoder delta, LLM adapter, PII tagger, offensive classifier) is
checked against its committed checksum before it is loaded, so a half-copied or edited file
fails with a message that says how to restore it instead of loading silently wrong weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from components.errors import ModelNotFoundError


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: Path, checksum_file: Path) -> str:
    """Write ``path``'s SHA-256 as ``checksum_file`` (``sha256sum`` format); returns it."""
    digest = sha256(path)
    Path(checksum_file).write_text(f"{digest}  {Path(path).name}\n", encoding="utf-8")
    return digest


def expected_checksum(checksum_file: Path) -> str:
    """The committed checksum (first field of the ``.sha256`` file).

    Raises:
        ModelNotFoundError: when the checksum file is missing.
    """
    checksum_file = Path(checksum_file)
    if not checksum_file.is_file():
        raise ModelNotFoundError(
            f"{checksum_file.name} is missing",
            hint="restore it from git, or rebuild the artefact (see its model card)",
            path=str(checksum_file),
        )
    return checksum_file.read_text(encoding="utf-8").split()[0]


def verify(path: Path, checksum_file: Path, rebuild: str = "see its model card") -> str:
    """Check a file against its committed checksum; returns the checksum.

    Args:
        path: The artefact.
        checksum_file: Its ``.sha256`` file.
        rebuild: How to rebuild it (said in the error).

    Raises:
        ModelNotFoundError: when the file is missing or its checksum differs.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path.name} is missing",
            hint=f"restore it from git or rebuild it: {rebuild}",
            path=str(path),
        )
    actual, wanted = sha256(path), expected_checksum(checksum_file)
    if actual != wanted:
        raise ModelNotFoundError(
            f"{path.name} does not match its checksum ({actual[:12]} != {wanted[:12]})",
            hint="restore the committed file, or commit the checksum of a rebuilt one",
            path=str(path),
        )
    return actual

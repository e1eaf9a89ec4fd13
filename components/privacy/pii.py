"""Masking of personal data with stable keyed tokens, reversible with a :class:`Vault`.

Masking replaces each span found by :func:`components.privacy.recognisers.find_pii` by
``[TYPE_xxxxxxxx]`` where the suffix is a keyed hash of the value: the same value always gets the
same token, tokens never match a recogniser (masking is idempotent), and with a
:class:`components.privacy.vault.Vault` the original can be recovered by whoever holds the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from components.privacy.recognisers import find_pii
from components.privacy.vault import Vault


class PIIMasker:
    """Masks personal data with stable keyed tokens.

    Args:
        key: Token key; default ``KEFU_VAULT_KEY`` or a random per-process key.
        vault: Where originals are kept when masking must be reversible.
    """

    def __init__(self, key: str | None = None, vault: Vault | None = None) -> None:
        self.vault = vault
        secret = key or os.environ.get("KEFU_VAULT_KEY") or secrets.token_hex(16)
        self._key = vault.key if vault else secret.encode()

    @classmethod
    def from_env(cls, vault_path: str | Path | None = None) -> PIIMasker:
        """Reversible (with a vault) when ``KEFU_VAULT_KEY`` is set, one-way otherwise."""
        key = os.environ.get("KEFU_VAULT_KEY")
        if key and vault_path:
            return cls(vault=Vault(key, vault_path))
        return cls(key)

    def token(self, kind: str, value: str) -> str:
        """The stable token for one value."""
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}_{digest[:8]}]"

    def mask(self, text: str) -> str:
        """``text`` with every personal-data span replaced by its token."""
        if not text:
            return text
        spans = find_pii(text)
        if not spans:
            return text
        out, last = [], 0
        for span in spans:
            token = self.token(span.type, span.value)
            if self.vault:
                self.vault.put(token, span.value)
            out += [text[last : span.start], token]
            last = span.end
        out.append(text[last:])
        return "".join(out)

"""The keyring: HMAC-SHA256 signing keys by id, with rotation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections.abc import Mapping

__all__ = ["Keyring"]


def _check_key_id(key_id: str) -> None:
    # Key ids go into TOCSIN_KEYS ("id:secret,...") and into every message.
    if (
        not isinstance(key_id, str)
        or not key_id
        or len(key_id) > 64
        or not key_id.isascii()
        or not all(c.isalnum() or c in "-_." for c in key_id)
    ):
        raise ValueError(f"invalid key id {key_id!r}: use 1-64 of [A-Za-z0-9._-]")


class Keyring:
    """HMAC-SHA256 keys by id: the current one signs, all of them verify.

    Rotate by adding the new key everywhere, then making it current on the publishers,
    then removing the old one once no event signed with it can still be in flight.
    Use long random secrets (``secrets.token_bytes(32)``).
    """

    def __init__(self, keys: Mapping[str, bytes], current: str | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        for key_id, key in keys.items():
            self._store(key_id, key)
        if current is None:
            if len(self._keys) != 1:
                raise ValueError("Keyring needs current= to choose among several keys")
            current = next(iter(self._keys))
        if current not in self._keys:
            raise ValueError(f"current key {current!r} is not in the keyring")
        self._current = current

    @classmethod
    def from_env(
        cls,
        name: str = "TOCSIN_KEYS",
        *,
        current: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Keyring:
        """Return a keyring from an environment variable ``"k1:base64,k2:base64"``.

        The first key listed is current unless ``current`` says otherwise. Secrets are in
        standard or URL-safe base64. Raises ``ValueError`` (never quoting a secret).
        """
        env = os.environ if environ is None else environ
        text = env.get(name)
        if text is None or not text.strip():
            raise ValueError(f"environment variable {name} is not set")
        keys: dict[str, bytes] = {}
        for item in text.split(","):
            key_id, sep, encoded = item.strip().partition(":")
            if not sep:
                raise ValueError(f"{name}: each key must be written id:base64secret")
            _check_key_id(key_id)
            if key_id in keys:
                raise ValueError(f"{name}: key id {key_id!r} is listed twice")
            encoded = encoded.strip()
            if "-" in encoded or "_" in encoded:
                encoded = encoded.replace("-", "+").replace("_", "/")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{name}: the secret of key {key_id!r} is not base64") from None
        return cls(keys, current=current if current is not None else next(iter(keys)))

    def _store(self, key_id: str, key: bytes) -> None:
        _check_key_id(key_id)
        if not isinstance(key, bytes) or not key:
            raise TypeError(f"key {key_id!r} must be non-empty bytes")
        self._keys[key_id] = key

    @property
    def current(self) -> str:
        """The id of the key that signs."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of all keys accepted for verifying."""
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def add(self, key_id: str, key: bytes, *, make_current: bool = False) -> None:
        """Add (or replace) a key; make it the signing key if ``make_current``."""
        with self._lock:
            self._store(key_id, key)
            if make_current:
                self._current = key_id

    def set_current(self, key_id: str) -> None:
        """Sign with the key ``key_id`` from now on."""
        with self._lock:
            if key_id not in self._keys:
                raise ValueError(f"key {key_id!r} is not in the keyring")
            self._current = key_id

    def remove(self, key_id: str) -> None:
        """Stop accepting the key ``key_id`` (which must not be the current one)."""
        with self._lock:
            if key_id == self._current:
                raise ValueError("cannot remove the current key; set another current first")
            del self._keys[key_id]

    def sign(self, message: bytes) -> tuple[str, str]:
        """Return ``(key id, hex HMAC-SHA256 of message)`` with the current key."""
        with self._lock:
            key_id, key = self._current, self._keys[self._current]
        return key_id, hmac.new(key, message, hashlib.sha256).hexdigest()

    def verify(self, key_id: str, message: bytes, signature: str) -> bool:
        """Return whether ``signature`` is the key's HMAC of ``message`` (constant time).

        Raises ``KeyError`` if the keyring has no key ``key_id``.
        """
        key = self._keys[key_id]
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        # compare_digest takes str only when ASCII; anything else cannot match anyway.
        return signature.isascii() and hmac.compare_digest(expected, signature)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self.key_ids!r}, current={self._current!r})"

"""Helpers for the OAuth tests: real RSA keys, and a collector that issues tokens for them."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "app-logbridge-test"
KEY_ID = "key-logbridge-test"


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """An RSA key pair as PEM texts: the client's private key and the server's public one."""

    private_pem: str
    public_pem: str

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write both halves as files; their paths (private, public)."""
        private, public = directory / "private.pem", directory / "public.pem"
        private.write_text(self.private_pem)
        public.write_text(self.public_pem)
        return private, public


def new_key_pair() -> KeyPair:
    """A fresh 2048-bit RSA key pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return KeyPair(private, public)


@functools.lru_cache(maxsize=2)
def key_pair(name: str = "client") -> KeyPair:
    """A key pair made once per test session for ``name`` (key generation takes a while)."""
    return new_key_pair()


def leaks(text: str, pem: str) -> bool:
    """Whether any line of the key's body appears in ``text``."""
    return any(line in text for line in pem.splitlines() if line and not line.startswith("-----"))

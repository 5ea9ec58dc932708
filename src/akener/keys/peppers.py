"""The set of peppers one process knows, current version first."""

from __future__ import annotations

from dataclasses import dataclass

from akener.keys import tokens


@dataclass(frozen=True, slots=True)
class Peppers:
    """Derived HMAC keys per version; new keys use ``current``, old ones still verify."""

    current: int
    by_version: dict[int, bytes]

    @classmethod
    def from_secrets(cls, secrets_by_version: dict[int, bytes], current: int) -> Peppers:
        """Derive a pepper from each configured secret."""
        if current not in secrets_by_version:
            raise ValueError("the current secret is missing")
        derived = {v: tokens.derive_pepper(s, v) for v, s in secrets_by_version.items()}
        return cls(current=current, by_version=derived)

    def digest_current(self, key: str) -> str:
        """Digest of ``key`` under the current pepper."""
        return tokens.digest(key, self.by_version[self.current])

    def candidates(self, key: str) -> list[str]:
        """Digests of ``key`` under every known pepper, current first."""
        order = [
            self.current,
            *sorted((v for v in self.by_version if v != self.current), reverse=True),
        ]
        return [tokens.digest(key, self.by_version[v]) for v in order]

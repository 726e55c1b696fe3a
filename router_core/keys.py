"""API keys: read only from the OS keyring or an environment variable the user names.

Settings hold a reference (`keyring:NAME` or `env:VAR`), never the key itself. A cloud
provider with no reference looks in the keyring under its own name, then in its preset's
variable (ANTHROPIC_API_KEY, ...). Nothing here logs, returns in an error, or prints a key.
"""

from __future__ import annotations

import os
import threading
import time

from router_core.errors import HybridgeError, UpstreamError
from router_core.redact import remember_secret

KEYRING_SERVICE = "hybridge"
# How long a provider found without a key waits before looking again (routing asks on every
# request; a key stored meanwhile with `hybridge keys set` is seen within this long).
RECHECK_S = 10.0


class KeyStoreError(HybridgeError):
    """The OS keyring cannot be used (none installed, locked, refused)."""

    status = 500
    kind = "keyring_error"


def resolve_key(ref: str) -> str | None:
    """The key a reference points to, or None when it is unset or empty."""
    if not ref:
        return None
    scheme, _, name = ref.partition(":")
    key: str | None = None
    if scheme == "env":
        key = os.environ.get(name) or None
    elif scheme == "keyring":
        import keyring  # here, not at the top: an idle router with no cloud key need not load it
        import keyring.errors

        try:
            key = keyring.get_password(KEYRING_SERVICE, name) or None
        except keyring.errors.KeyringError:
            return None
    # From here on, logs and error messages mask this value wherever it shows up.
    remember_secret(key)
    return key


def keyring_name(provider: str, ref: str) -> str:
    """The keyring entry a provider's key lives under: its `keyring:NAME`, else its own name."""
    scheme, _, name = ref.partition(":")
    return name if scheme == "keyring" and name else provider


def key_refs(provider: str, ref: str, env_fallback: str) -> list[str]:
    """Where a provider's key is looked for, in order."""
    if ref:
        return [ref]
    refs = [f"keyring:{provider}"]
    if env_fallback:
        refs.append(f"env:{env_fallback}")
    return refs


def _keyring_failure(action: str, exc: Exception) -> KeyStoreError:
    # The backend's message says what is wrong with the keyring; it never holds the key.
    return KeyStoreError(
        f"cannot {action} the OS keyring ({type(exc).__name__}: {exc}); "
        'reference an environment variable instead: api_key = "env:VAR"'
    )


def store_key(name: str, secret: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, name, secret)
    except keyring.errors.KeyringError as exc:
        raise _keyring_failure("write to", exc) from None


def delete_key(name: str) -> bool:
    """Remove a stored key; False when there was none."""
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(KEYRING_SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise _keyring_failure("delete from", exc) from None
    return True


def find_key(provider: str, ref: str, env_fallback: str = "") -> tuple[str | None, str]:
    """(the key, the reference it came from), or (None, "") when none is set."""
    for candidate in key_refs(provider, ref, env_fallback):
        key = resolve_key(candidate)
        if key:
            return key, candidate
    return None, ""


def how_to_set(provider: str, ref: str, env_fallback: str) -> str:
    if ref.startswith("env:"):
        return f"set the environment variable {ref[4:]}"
    fix = f"store one with `hybridge keys set {provider}`"
    if not ref and env_fallback:
        fix += f" or set {env_fallback}"
    return fix


class KeySource:
    """A cloud provider's key, looked up on first use and again after a rejection, so a key
    set while the router runs is picked up without a restart."""

    def __init__(self, provider: str, ref: str = "", env_fallback: str = "") -> None:
        self.provider = provider
        self.ref = ref
        self.env_fallback = env_fallback
        self._key: str | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._key is None:
                self._key, _ = find_key(self.provider, self.ref, self.env_fallback)
            if self._key is None:
                raise UpstreamError(
                    f"{self.provider}: no API key; {how_to_set(self.provider, self.ref, self.env_fallback)}",
                    kind="auth",
                    status=502,
                    provider=self.provider,
                )
            return self._key

    def missing(self, now: float | None = None) -> str | None:
        """The fix (`hybridge keys set NAME`...) while this provider has no key; None once it
        has one. Looks again at most every RECHECK_S seconds."""
        with self._lock:
            if self._key is None:
                at = time.monotonic() if now is None else now
                if self._checked_at is None or at - self._checked_at >= RECHECK_S:
                    self._checked_at = at
                    self._key, _ = find_key(self.provider, self.ref, self.env_fallback)
            if self._key is not None:
                return None
            return how_to_set(self.provider, self.ref, self.env_fallback)

    def forget(self) -> None:
        """Drop the cached key (the upstream rejected it)."""
        with self._lock:
            self._key = None

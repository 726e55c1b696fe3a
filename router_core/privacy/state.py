"""The live privacy switch: one object that plans, the egress guard and the API all read.

Toggling it takes effect on the next request (and the next outbound connection) without
rebuilding providers; `changed` tells listeners (the runtime aborts cloud streams, the tray
redraws its icon).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router_core.addresses import TrustedHosts
from router_core.signals import Signal
from router_core.types import EscalationAction

if TYPE_CHECKING:
    from router_core.settings import PrivacySettings


@dataclass(frozen=True, slots=True)
class PrivacyStatus:
    enabled: bool
    escalation: EscalationAction
    trusted_hosts: tuple[str, ...]


class PrivacyState:
    def __init__(
        self, enabled: bool = False, escalation: EscalationAction = "keep-local", trusted_hosts: Iterable[str] = ()
    ) -> None:
        self._lock = threading.Lock()
        self._enabled = enabled
        self._escalation: EscalationAction = escalation
        self._trusted_entries = tuple(trusted_hosts)
        self._trusted = TrustedHosts.parse(self._trusted_entries)
        # Ollama models seen with remote fields in /api/tags (cloud models under any name).
        self._remote_models: frozenset[str] = frozenset()
        self.changed: Signal[PrivacyStatus] = Signal()

    @classmethod
    def from_settings(cls, conf: PrivacySettings) -> PrivacyState:
        return cls(conf.enabled, conf.escalation, conf.trusted_hosts)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def escalation(self) -> EscalationAction:
        return self._escalation

    @property
    def trusted(self) -> TrustedHosts:
        return self._trusted

    @property
    def remote_models(self) -> frozenset[str]:
        return self._remote_models

    def status(self) -> PrivacyStatus:
        return PrivacyStatus(self._enabled, self._escalation, self._trusted_entries)

    def update(
        self,
        *,
        enabled: bool | None = None,
        escalation: EscalationAction | None = None,
        trusted_hosts: Iterable[str] | None = None,
    ) -> PrivacyStatus:
        with self._lock:
            if trusted_hosts is not None:
                entries = tuple(trusted_hosts)
                self._trusted = TrustedHosts.parse(entries)
                self._trusted_entries = entries
            if escalation is not None:
                self._escalation = escalation
            if enabled is not None:
                self._enabled = enabled
            status = self.status()
        self.changed.emit(status)
        return status

    def note_remote_models(self, names: Iterable[str]) -> None:
        with self._lock:
            self._remote_models = self._remote_models | frozenset(names)

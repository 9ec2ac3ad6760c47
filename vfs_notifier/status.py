"""What the service tells systemd it is doing (STATUS=), in one line a person reads.

It names the roots and the store, so that `systemctl status` alone says what this
instance watches and where its rows go, and it is made afresh every turn (sent at most
once a second), so it is current within a second of a registration.
"""

from __future__ import annotations

from .service import Service


def describe(service: Service) -> str:
    registrar, gate = service.registrar, service.gate
    parts = []
    roots = ", ".join(sorted(r.path for r in service.active)) or "nothing yet"
    if gate.walking:
        parts.append(f"Scanning {roots}: {gate.counts.found:,} files seen")
    else:
        parts.append(f"Watching {roots} ({service.watcher.watch_count():,} directories)")
    parts.append(f"into {registrar.store.description}")
    if registrar.connected:
        parts.append(f"{len(registrar.memory or ()):,} files registered ({registrar.registered:,} since start)")
    else:
        parts.append(f"database unavailable ({registrar.problem or 'connecting'}), retrying")
    if registrar.pending:
        parts.append(f"{registrar.pending:,} changes waiting")
    settling = len(service.judge.settling)
    held = len(service.judge.held) - settling
    if held:
        parts.append(f"{held:,} held as incomplete")
    if settling:
        parts.append(f"{settling:,} settling")
    if registrar.standby:
        parts.append("standing by for " + ", ".join(f"{root} (held by {holder})"
                                                  for root, holder in sorted(registrar.standby.items())))
    if service.missing:
        parts.append("waiting for " + ", ".join(sorted(r.path for r in service.missing)))
    if service.watcher.refused:
        parts.append(f"{len(service.watcher.refused):,} directories rescanned (watch limit)")
    return "; ".join(parts)

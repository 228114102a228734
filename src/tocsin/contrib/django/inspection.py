"""What ``manage.py tocsin_inspect`` and ``tocsin_graph`` show: every signal of the
project, Django's own included, with its local and remote receivers.

:func:`project_signals` imports the receiver modules of every installed app (as the
worker does: ``receivers`` and ``signals``), then describes every signal alive with
:func:`tocsin.inspect.describe_all` (Django's signals are tocsin signals once the app
is installed) and adds the remote receivers declared for each
(:func:`tocsin.remote.remote_receivers`): their groups are the consumer groups a worker
runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils.module_loading import autodiscover_modules

from tocsin.inspect import ReceiverInfo, SignalInfo, describe, describe_all, receiver_location
from tocsin.inspect import sender_label as _sender_label
from tocsin.remote import RemoteReceiver, remote_receivers

__all__ = ["ProjectSignal", "graph_signals", "project_signals", "rows", "to_json"]

DEFAULT_MODULES = ("receivers", "signals")


@dataclasses.dataclass(frozen=True)
class ProjectSignal:
    """A signal: its description (local receivers) and the remote receivers declared."""

    info: SignalInfo
    remote: list[RemoteReceiver]


def _inside(module: str | None, packages: Sequence[str]) -> bool:
    return module is not None and any(
        module == package or module.startswith(package + ".") for package in packages
    )


def project_signals(
    modules: Iterable[str] = DEFAULT_MODULES,
    *,
    everything: bool = False,
    only: Sequence[str] = (),
) -> list[ProjectSignal]:
    """The project's signals, sorted by name: those with a receiver, local or remote
    (every signal alive, with *everything*). Imports each app's *modules* first. With
    *only* (package names), just the receivers defined in those packages."""
    autodiscover_modules(*modules)
    declared = remote_receivers()
    if only:
        declared = [entry for entry in declared if _inside(entry.receiver.__module__, only)]
    infos = {id(info.signal): info for info in describe_all()}
    for entry in declared:
        if id(entry.signal) not in infos:
            infos[id(entry.signal)] = describe(entry.signal)
    found = []
    for info in sorted(infos.values(), key=lambda i: (i.name, id(i.signal))):
        if only:
            kept = [r for r in info.receivers if _inside(r.module, only)]
            if not kept and not everything:
                info = dataclasses.replace(info, receivers=[])
            else:
                info = dataclasses.replace(info, receivers=kept)
        remote = [entry for entry in declared if entry.signal is info.signal]
        if everything or info.receivers or remote:
            found.append(ProjectSignal(info, remote))
    return found


def _flags(receiver: ReceiverInfo) -> str:
    flags = ["async" if receiver.is_async else "sync", "weak" if receiver.weak else "strong"]
    if receiver.after_commit:
        flags.append("after commit")
    if receiver.priority:
        flags.append(f"priority={receiver.priority}")
    if receiver.dispatch_uid is not None:
        flags.append(f"uid={receiver.dispatch_uid}")
    return ", ".join(flags)


def _where(file: str | None, line: int | None) -> str:
    if file is None:
        return "?"
    relative = os.path.relpath(file)
    file = file if relative.startswith("..") else relative
    return f"{file}:{line}" if line else file


def _remote_name(entry: RemoteReceiver) -> str:
    function = entry.receiver
    return f"{function.__module__}.{function.__qualname__}"


def _remote_flags(entry: RemoteReceiver) -> str:
    kind = "broadcast" if entry.broadcast else f"group={entry.group}"
    return f"remote, {kind}, {'async' if entry.is_async else 'sync'}"


def rows(signals: Sequence[ProjectSignal]) -> list[tuple[str, str, str, str, str]]:
    """The table: (signal, receiver, sender, how, defined at), one row per receiver."""
    table = []
    for item in signals:
        entries: list[tuple[str, str, str, str]] = [
            (r.name, r.sender or "any", _flags(r), _where(r.file, r.line))
            for r in item.info.receivers
        ]
        for remote in item.remote:
            sender = "any" if remote.sender is None else _sender_label(remote.sender)
            file, line = receiver_location(remote.receiver, exact=True)
            entries.append(
                (_remote_name(remote), sender, _remote_flags(remote), _where(file, line))
            )
        if not entries:
            table.append((item.info.name, "(no receivers)", "", "", ""))
        for number, entry in enumerate(entries):
            table.append((item.info.name if number == 0 else "", *entry))
    return table


def to_json(signals: Sequence[ProjectSignal]) -> list[dict[str, Any]]:
    """The signals as JSON-ready dicts: ``SignalInfo.to_dict()`` plus ``"remote"``."""
    result = []
    for item in signals:
        data = item.info.to_dict()
        data["remote"] = [
            {
                "name": _remote_name(entry),
                "group": entry.group,
                "broadcast": entry.broadcast,
                "stream": entry.stream,
                "sender": None if entry.sender is None else _sender_label(entry.sender),
                "is_async": entry.is_async,
                "file": receiver_location(entry.receiver, exact=True)[0],
                "line": receiver_location(entry.receiver, exact=True)[1],
            }
            for entry in item.remote
        ]
        result.append(data)
    return result


def graph_signals(signals: Sequence[ProjectSignal]) -> list[SignalInfo]:
    """The signals for :func:`tocsin.graph.render`, remote receivers drawn as receivers
    named ``function [remote: group]``."""
    drawn = []
    for item in signals:
        extra = []
        for entry in item.remote:
            file, line = receiver_location(entry.receiver, exact=True)
            where = "broadcast" if entry.broadcast else entry.group
            extra.append(
                ReceiverInfo(
                    name=f"{_remote_name(entry)} [remote: {where}]",
                    module=entry.receiver.__module__,
                    qualname=f"{entry.receiver.__qualname__} [remote: {where}]",
                    kind="remote",
                    file=file,
                    line=line,
                    sender=None if entry.sender is None else _sender_label(entry.sender),
                    weak=True,
                    dispatch_uid=None,
                    priority=0,
                    is_async=entry.is_async,
                    after_commit=False,
                    receiver=entry.receiver,
                )
            )
        drawn.append(dataclasses.replace(item.info, receivers=[*item.info.receivers, *extra]))
    return drawn

"""A state machine drives random connect / disconnect / send / drop sequences.

After every step the signal is compared with a small reference model that says which
receivers are connected, which objects are alive, and which receivers a send must call,
in which order:

- higher priority first, then connection order; sync receivers before async ones;
- the first registration of a key (receiver or dispatch_uid, with the sender) wins;
  disconnecting and reconnecting moves a receiver to the end;
- a receiver connected both for any sender and for a sender is called twice;
- a weakly connected bound method goes when its instance dies; a strongly connected one
  keeps its instance alive;
- when a sender that can be weakly referenced dies, its receivers go, even strong ones
  (Django 6.0); a sender that cannot be (a list, a plain ``object()``) is held strongly
  while it has receivers, so they stay.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tocsin import Signal

Label = tuple[Any, ...]

# Sync receivers record their calls here, in call order.
CALLS: list[Label] = []


def plain_a(**kwargs: Any) -> Label:
    CALLS.append(("plain_a",))
    return ("plain_a",)


def plain_b(**kwargs: Any) -> Label:
    CALLS.append(("plain_b",))
    return ("plain_b",)


async def async_plain(**kwargs: Any) -> Label:
    return ("async_plain",)


FUNCTIONS: dict[str, Any] = {
    "plain_a": plain_a,
    "plain_b": plain_b,
    "async_plain": async_plain,
}
ASYNC_NAMES = {"async_plain", "later"}


class Holder:
    """An instance whose bound methods are receivers."""

    def __init__(self, serial: int) -> None:
        self.serial = serial

    def first(self, **kwargs: Any) -> Label:
        CALLS.append(("first", self.serial))
        return ("first", self.serial)

    def second(self, **kwargs: Any) -> Label:
        CALLS.append(("second", self.serial))
        return ("second", self.serial)

    async def later(self, **kwargs: Any) -> Label:
        return ("later", self.serial)


METHOD_NAMES = ("first", "second", "later")


class Sender:
    """A sender that can be weakly referenced."""

    def __init__(self, serial: int) -> None:
        self.serial = serial


@dataclass
class ModelEntry:
    label: Label  # what the receiver returns; identifies it
    instance: int | None  # the serial of the instance, for bound methods
    weak: bool
    priority: int
    seq: int

    @property
    def is_async(self) -> bool:
        return self.label[0] in ASYNC_NAMES


@dataclass
class InstanceRecord:
    ref: weakref.ref[Holder]
    held: Holder | None  # the machine's own strong reference
    dead: bool = False


@dataclass
class SenderSlot:
    serial: int
    kind: str  # "weak" (a Sender), "list" (unhashable) or "object" (no weak references)
    obj: Any = field(repr=False)

    @property
    def weakly_referenceable(self) -> bool:
        return self.kind == "weak"


SENDER_KINDS = ("weak", "weak", "weak", "list", "object")
ANY = "any"  # the model's bucket for receivers connected with sender=None


class DispatchMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.signal = Signal()
        self.serials = iter(range(10**9))
        self.seq = iter(range(10**9))
        self.instances: dict[int, InstanceRecord] = {}
        self.slots: list[SenderSlot] = []
        # Bucket (ANY or a sender serial) -> key -> entry, in connection order.
        self.buckets: dict[Any, dict[Any, ModelEntry]] = {}
        CALLS.clear()

    # -- building ------------------------------------------------------------------------

    def new_sender(self, kind: str) -> SenderSlot:
        serial = next(self.serials)
        obj: Any
        if kind == "weak":
            obj = Sender(serial)
        elif kind == "list":
            obj = [serial]
        else:
            obj = object()
        return SenderSlot(serial, kind, obj)

    def new_instance(self) -> None:
        serial = next(self.serials)
        holder = Holder(serial)
        self.instances[serial] = InstanceRecord(weakref.ref(holder), holder)

    @initialize()
    def setup(self) -> None:
        self.slots = [self.new_sender(kind) for kind in SENDER_KINDS]
        for _ in range(2):
            self.new_instance()

    # -- choosing ------------------------------------------------------------------------

    def live_labels(self) -> list[Label]:
        labels: list[Label] = [(name,) for name in FUNCTIONS]
        for serial, record in self.instances.items():
            if not record.dead:
                labels.extend((name, serial) for name in METHOD_NAMES)
        return labels

    def receiver_for(self, label: Label) -> Any:
        if len(label) == 1:
            return FUNCTIONS[label[0]]
        instance = self.instances[label[1]].ref()
        assert instance is not None, f"the model thinks instance {label[1]} is alive"
        return getattr(instance, label[0])

    def draw_sender(self, data: st.DataObject) -> tuple[Any, int | None]:
        """Return (bucket id, slot index or None for 'any sender')."""
        index = data.draw(st.none() | st.integers(0, len(self.slots) - 1), label="sender")
        if index is None:
            return ANY, None
        return self.slots[index].serial, index

    def sender_object(self, index: int | None) -> Any:
        return None if index is None else self.slots[index].obj

    @staticmethod
    def model_key(label: Label, uid: Any) -> Any:
        return ("uid", uid) if uid else ("receiver", label)

    # -- the model's garbage collector ---------------------------------------------------

    def settle(self) -> None:
        """Kill instances nothing holds strongly any more, and their weak entries."""
        kept = {
            entry.instance
            for bucket in self.buckets.values()
            for entry in bucket.values()
            if not entry.weak and entry.instance is not None
        }
        dying = []
        for serial, record in self.instances.items():
            if not record.dead and record.held is None and serial not in kept:
                record.dead = True
                dying.append(record)
                for bucket in self.buckets.values():
                    for key in [k for k, e in bucket.items() if e.instance == serial]:
                        assert bucket[key].weak
                        del bucket[key]
        if any(record.ref() is not None for record in dying):
            # Reference cycles elsewhere (asyncio futures holding the responses of an
            # earlier send, say) may still hold it: those are garbage, so collect them.
            gc.collect()

    # -- rules ---------------------------------------------------------------------------

    @rule(
        data=st.data(),
        weak=st.booleans(),
        uid=st.sampled_from([None, None, None, 0, "", "u1", "u2"]),
        priority=st.sampled_from([0, 0, 0, 1, -1]),
    )
    def connect(self, data: st.DataObject, weak: bool, uid: Any, priority: int) -> None:
        label = data.draw(st.sampled_from(self.live_labels()), label="receiver")
        bucket_id, index = self.draw_sender(data)
        receiver = self.receiver_for(label)
        self.signal.connect(
            receiver,
            sender=self.sender_object(index),
            weak=weak,
            dispatch_uid=uid,
            priority=priority,
        )
        del receiver
        bucket = self.buckets.setdefault(bucket_id, {})
        key = self.model_key(label, uid)
        if key not in bucket:  # the first registration wins
            instance = label[1] if len(label) == 2 else None
            bucket[key] = ModelEntry(label, instance, weak, priority, next(self.seq))

    @rule(data=st.data(), uid=st.sampled_from([None, None, 0, "u1", "u2"]))
    def disconnect(self, data: st.DataObject, uid: Any) -> None:
        label = data.draw(st.sampled_from(self.live_labels()), label="receiver")
        bucket_id, index = self.draw_sender(data)
        # With a uid the receiver is not needed (and is ignored).
        omit = bool(uid) and data.draw(st.booleans(), label="omit the receiver")
        receiver = None if omit else self.receiver_for(label)
        removed = self.signal.disconnect(
            receiver, sender=self.sender_object(index), dispatch_uid=uid
        )
        del receiver
        expected = self.buckets.get(bucket_id, {}).pop(self.model_key(label, uid), None)
        assert removed is (expected is not None)
        self.settle()

    @precondition(lambda self: sum(r.held is not None for r in self.instances.values()) < 3)
    @rule()
    def create_instance(self) -> None:
        self.new_instance()

    @precondition(lambda self: any(r.held is not None for r in self.instances.values()))
    @rule(data=st.data())
    def drop_instance(self, data: st.DataObject) -> None:
        held = sorted(serial for serial, r in self.instances.items() if r.held is not None)
        serial = data.draw(st.sampled_from(held), label="instance")
        self.instances[serial].held = None
        self.settle()

    @rule(data=st.data())
    def drop_sender(self, data: st.DataObject) -> None:
        """Drop the machine's reference to a sender, and put a fresh one in its place.

        The fresh sender often gets the same id as the dropped one.
        """
        index = data.draw(st.integers(0, len(self.slots) - 1), label="sender to drop")
        dropped = self.slots[index]
        ref = weakref.ref(dropped.obj) if dropped.weakly_referenceable else None
        self.slots[index] = self.new_sender(dropped.kind)
        dropped.obj = None
        if ref is not None:
            if ref() is not None:
                gc.collect()  # see settle()
            assert ref() is None, "nothing but the machine may hold a sender"
            # Its receivers went with it, strongly connected ones included.
            self.buckets.pop(dropped.serial, None)
        # Otherwise the signal holds the sender while it has receivers: they all stay,
        # though nobody can send from that sender any more.
        self.settle()

    @rule(data=st.data(), method=st.sampled_from(["send", "send", "send_robust", "asend"]))
    def send(self, data: st.DataObject, method: str) -> None:
        bucket_id, index = self.draw_sender(data)
        sender = self.sender_object(index)
        entries = list(self.buckets.get(ANY, {}).values())
        if bucket_id != ANY:
            entries += self.buckets.get(bucket_id, {}).values()
        entries.sort(key=lambda entry: (-entry.priority, entry.seq))
        sync = [entry.label for entry in entries if not entry.is_async]
        async_ = [entry.label for entry in entries if entry.is_async]

        assert self.signal.has_listeners(sender) is bool(entries)
        CALLS.clear()
        if method == "asend":
            responses = asyncio.run(self.signal.asend(sender))
        else:
            responses = getattr(self.signal, method)(sender)
        del sender
        assert [response for _, response in responses] == sync + async_
        assert sync == CALLS
        for receiver, response in responses:
            assert receiver == self.receiver_for(response)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def receiver_count_matches(self) -> None:
        expected = sum(len(bucket) for bucket in self.buckets.values())
        assert len(self.signal.receivers) == expected

    @invariant()
    def instance_lives_match(self) -> None:
        for serial, record in self.instances.items():
            assert (record.ref() is None) is record.dead, f"instance {serial}"


DispatchMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDispatchMachine = DispatchMachine.TestCase

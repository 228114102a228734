"""A "third-party app" module that makes Django signals at import, before the switch."""

from django.dispatch import Signal


class AuditSignal(Signal):  # type: ignore[misc]
    """A subclass that overrides send, as some apps' signals do."""

    def send(self, sender, **named):
        named.setdefault("audited", True)
        return super().send(sender, **named)


order_paid = Signal()
audited = AuditSignal(use_caching=True)
# A reference to Django's own class, kept by an app that makes signals later.
DjangoSignalClass = Signal


class Payment:
    """A sender that receivers connect to specifically."""

    def on_paid(self, sender, **kwargs):
        return "method"

"""Notifications: a run's failure or success, or a schedule's missed deadline, told by e-mail (SMTP), webhook or
command, as `[notify]` in `nbflow.toml` and each schedule's own settings ask.

`message` builds what a notice says (payload, text, e-mail with the reports), `channels` sends it one way and
chooses the channels of an event, `deliver` queues, retries and records deliveries (the store's `notifications`).
"""

from nbflow.notify.channels import Channel, DeliveryError, channels_for
from nbflow.notify.deliver import Notifier, deliver_after_run
from nbflow.notify.message import Notice, deadline_notice, email_message, run_notice

__all__ = [
    "Channel",
    "DeliveryError",
    "Notice",
    "Notifier",
    "channels_for",
    "deadline_notice",
    "deliver_after_run",
    "email_message",
    "run_notice",
]

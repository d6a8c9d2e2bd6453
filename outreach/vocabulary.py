"""The fixed lists every room shares: roles, contact statuses, signatory groups."""

from __future__ import annotations

# A contact's own fields besides its address, status and tags; anything else is a custom attribute.
CONTACT_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "honorific",
    "gender",
    "position",
    "role",
    "organization",
    "country",
    "language",
    "time_zone",
)

ROLES = (
    "head_of_state",
    "monarch",
    "head_of_government",
    "minister",
    "mp",
    "mep",
    "official",
    "prospect",
)

# A contact's standing: only `active` contacts receive mail.
STATUSES = ("active", "unsubscribed", "bounced", "do_not_contact")

# How the appeal prints its signatories, in this order.
GROUPS = ("signatories", "parliamentarians", "military_officials")

SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "do_not_contact", "forgotten")

# A campaign's standing: a draft is being prepared, an active one sends, a paused one waits, a cancelled one is over.
CAMPAIGN_STATUSES = ("draft", "active", "paused", "cancelled")

# The states of an outbox message (see outreach/outbox/states.py for what each means and the moves between them).
OUTBOX_STATES = ("queued", "sending", "committing", "sent", "failed", "unknown", "held", "cancelled")
# The copies waiting to go that no sender has taken: what cancelling or erasing withdraws, and what a template edit
# leaves stale until `campaigns refresh`.
UNSENT_STATES = ("queued", "held")
# The copies `campaigns refresh` makes again: those unsent, and those that failed (no server took their bytes).
REFRESHED_STATES = (*UNSENT_STATES, "failed")

# What an inbound message is (see outreach/responses/classify.py for how each is told apart); `unreadable` is one
# that could not be read or recorded, kept with the error and its raw bytes, and has no effect.
RESPONSE_KINDS = (
    "reply", "auto_reply", "hard_bounce", "soft_bounce", "delayed", "unsubscribe", "complaint", "unknown", "unreadable"
)  # fmt: skip

# How a response reached the campaign: an inbound email, or one logged by hand.
CHANNELS = ("email", "phone", "letter", "meeting")

# What a response came to, as the campaigner marks it; `signed` makes the contact a signatory.
OUTCOMES = ("signed", "declined", "interested", "none")

# What stands, after `contacts forget`, where a person's address, name or words were (a column that held nothing
# stays empty): lists and reports show it instead of a blank.
ERASED = "erased"

# What can hold a follow-up back (a contact who bounced or unsubscribed is never written to again anyway).
FOLLOW_UP_UNLESS = ("replied", "bounced", "unsubscribed")

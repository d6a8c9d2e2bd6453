"""The tables. Only the migrations change the schema; this module describes it for queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from outreach.vocabulary import (
    CAMPAIGN_STATUSES,
    CHANNELS,
    GROUPS,
    OUTBOX_STATES,
    OUTCOMES,
    RESPONSE_KINDS,
    ROLES,
    STATUSES,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Json(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL.

    The PostgreSQL type is looked up when a PostgreSQL connection needs it: naming it here (`with_variant(JSONB())`)
    would load SQLAlchemy's PostgreSQL dialect, about 30 ms, in every command of a SQLite workspace too. The same
    holds for the partial index below (`_where`)."""

    impl = JSON
    cache_ok = True
    hashable = False  # as JSON: a dict or list loaded from the column cannot be a key
    should_evaluate_none = True  # as JSON: None set on purpose is stored as JSON null, not left out

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def _where(index: Index, condition: str) -> Index:
    """A partial index: over the rows where `condition` holds. SQLite is told now; PostgreSQL when the tables are
    created there (`_partial_indexes_on_postgresql`), for the reason given under `Json`."""
    index.dialect_kwargs["sqlite_where"] = text(condition)
    index.info["where"] = condition
    return index


Instant = DateTime(timezone=True)


@overload
def as_utc(instant: datetime) -> datetime: ...
@overload
def as_utc(instant: None) -> None: ...
def as_utc(instant: datetime | None) -> datetime | None:
    """An Instant as read back: SQLite returns it naive, though it was stored in UTC; PostgreSQL, aware."""
    return instant.replace(tzinfo=UTC) if instant is not None and instant.tzinfo is None else instant


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can refer to."""

    metadata = MetaData(naming_convention=NAMING)


@event.listens_for(Base.metadata, "before_create")
def _partial_indexes_on_postgresql(metadata: MetaData, connection: Connection, **_: Any) -> None:
    """Give PostgreSQL the conditions of the partial indexes (`_where`) as it creates the tables."""
    if connection.dialect.name == "postgresql":
        for table in metadata.tables.values():
            for index in table.indexes:
                if "where" in index.info:
                    index.dialect_kwargs["postgresql_where"] = text(index.info["where"])


def _choice(values: tuple[str, ...], name: str) -> Enum:
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


class Import(Base):
    """One run of `contacts import`: where the rows came from and what became of them."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(1024))
    started_at: Mapped[datetime] = mapped_column(Instant)
    finished_at: Mapped[datetime | None] = mapped_column(Instant)
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)


class Contact(Base):
    """A person the campaign may write to. After `forget`, only id, role, country and status remain.

    Role, country and status have no index: each value is shared by thousands of rows, so a scan is as fast
    as the index for a segment, and every import would pay to maintain it.
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    honorific: Mapped[str | None] = mapped_column(String(60))
    gender: Mapped[str | None] = mapped_column(_choice(("f", "m"), "gender"))
    position: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str | None] = mapped_column(_choice(ROLES, "role"))
    organization: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(_choice(STATUSES, "status"), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Other addresses of the person (a list of them, as written; NULL for none): kept, never written to, until
    # `contacts edit --address` makes one of them the address.
    alternates: Mapped[list[str] | None] = mapped_column(Json)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)
    forgotten_at: Mapped[datetime | None] = mapped_column(Instant)


class Tag(Base):
    """A label for selecting contacts (`wave-1`)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class ContactTag(Base):
    """Which contact carries which tag."""

    __tablename__ = "contact_tags"
    # On SQLite the primary key is the table itself: one B-tree fewer to write for every tag of an import.
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy's declarative convention

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)


class Suppression(Base):
    """An address never to write to again, kept as a hash so it outlives the contact's data."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Instant)
    # The response that caused it (a bounce, an unsubscribe, a complaint): reclassifying that response undoes it.
    response_id: Mapped[int | None] = mapped_column(ForeignKey("responses.id", ondelete="SET NULL"), index=True)


class Signatory(Base):
    """Someone who signed the appeal, with the line printed under their name."""

    __tablename__ = "signatories"
    __table_args__ = (UniqueConstraint("name", "line", name="uq_signatories_name_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    line: Mapped[str] = mapped_column(String(1000), default="")
    group: Mapped[str] = mapped_column(_choice(GROUPS, "signatory_group"), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(320))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    signed_at: Mapped[datetime | None] = mapped_column(Instant)
    created_at: Mapped[datetime] = mapped_column(Instant)


class Campaign(Base):
    """A mailing: a segment of contacts, the sender, and a sequence of steps."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    segment: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str | None] = mapped_column(String(400))  # `Name <address>`; None: OUTREACH_FROM
    reply_to: Mapped[str | None] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(_choice(CAMPAIGN_STATUSES, "campaign_status"), default="draft")
    created_at: Mapped[datetime] = mapped_column(Instant)
    # When it sends (`campaigns schedule`): not before `send_at`; with `local_time`, at that hour in each
    # recipient's own zone; within `window` ("09:00-17:00", local) and on weekdays only if asked. `time_zone` is
    # where --at is read and the zone of contacts whose own is unknown.
    send_at: Mapped[datetime | None] = mapped_column(Instant)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    local_time: Mapped[str | None] = mapped_column(String(5))
    window: Mapped[str | None] = mapped_column(String(11))
    weekdays_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CampaignStep(Base):
    """The first letter (position 0) or a follow-up `delay_seconds` after the contact's step before it, unless
    the contact has (in `unless`) replied, bounced or unsubscribed meanwhile."""

    __tablename__ = "campaign_steps"
    __table_args__ = (UniqueConstraint("campaign_id", "position", name="uq_campaign_steps_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(200))
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unless: Mapped[str] = mapped_column(
        String(100), default="replied,bounced,unsubscribed", server_default="replied,bounced,unsubscribed"
    )
    created_at: Mapped[datetime] = mapped_column(Instant)


class StepSkip(Base):
    """A follow-up not sent to a contact, and why (they replied, bounced or unsubscribed): decided once."""

    __tablename__ = "step_skips"

    step_id: Mapped[int] = mapped_column(ForeignKey("campaign_steps.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(Instant)


class SchedulerLease(Base):
    """Who leads `outreach run`, and when it was last seen alive: what fell due after that, while no scheduler
    ran, is sent on start within the grace period, else held."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(Instant)
    seen_at: Mapped[datetime] = mapped_column(Instant)


class OutboxMessage(Base):
    """One rendered copy on its way to one contact: the state machine of outreach/outbox/states.py."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # Never the same step twice to the same contact: enforced here, not only by code. A cancelled copy does
        # not count, so a step can be queued again after a typo is fixed.
        _where(Index("uq_outbox_messages_step_contact", "step_id", "contact_id", unique=True), "state != 'cancelled'"),
        Index("ix_outbox_messages_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("campaign_steps.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(_choice(OUTBOX_STATES, "outbox_state"), default="queued")
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Instant)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(Instant)
    last_reply: Mapped[str | None] = mapped_column(Text)
    thread_id: Mapped[str | None] = mapped_column(String(255))  # a follow-up's first message: In-Reply-To, References
    # The letter's envelope and From address, decided when it was queued (None only for rows from before 0006).
    sender: Mapped[str | None] = mapped_column(String(320))  # From: its domain's DKIM key signs
    envelope_sender: Mapped[str | None] = mapped_column(String(320))  # MAIL FROM
    template_digest: Mapped[str | None] = mapped_column(String(64))  # the template's files when it was rendered
    sent_at: Mapped[datetime | None] = mapped_column(Instant)
    created_at: Mapped[datetime] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)


class OutboxBody(Base):
    """The letter of one outbox message: its bytes as the server receives them, but for Date and DKIM-Signature
    (outreach/rendering/letters.py), written when it is queued and again only by `campaigns refresh`.

    Apart from the message's row, because SQLite rewrites a whole row whenever a column changes size: each move
    of a message through the outbox would rewrite its 20 kB letter.
    """

    __tablename__ = "outbox_bodies"

    message_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("outbox_messages.message_id", ondelete="CASCADE"), primary_key=True
    )
    letter: Mapped[bytes | None] = mapped_column(LargeBinary)  # None only for rows from before 0006
    # Before 0006 the outbox kept the rendered text and HTML and built the message when sending; kept for the
    # record of what those rows said, written by nothing since.
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)


class Proof(Base):
    """A copy sent to the campaigner before the real send (`campaigns proof`): never in the outbox or a report."""

    __tablename__ = "proofs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(320))  # the campaigner's address it went to
    message_id: Mapped[str] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(16))
    reply: Mapped[str | None] = mapped_column(Text)  # what the server said
    sent_at: Mapped[datetime] = mapped_column(Instant)


class Response(Base):
    """One answer to the appeal: an inbound message as classified and matched, or one logged by hand."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(_choice(CHANNELS, "response_channel"), default="email")
    kind: Mapped[str] = mapped_column(_choice(RESPONSE_KINDS, "response_kind"), index=True)
    detected_kind: Mapped[str | None] = mapped_column(String(32))  # what the classifier said, kept on correction
    reason: Mapped[str | None] = mapped_column(Text)  # why it was classified so
    status: Mapped[str | None] = mapped_column(String(16))  # a bounce's enhanced status code, e.g. 5.1.1
    # The SHA-256 of the raw message: the same message read twice (a re-poll, a new UIDVALIDITY) is one response.
    fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    source: Mapped[str | None] = mapped_column(String(300))  # imap, maildir:PATH, mbox:PATH
    source_key: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str | None] = mapped_column(String(500))  # the inbound message's own Message-ID
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)  # the new text of a reply, or the note of one logged by hand
    matched_by: Mapped[str | None] = mapped_column(String(32))  # in-reply-to, references, report, token, sender
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[str | None] = mapped_column(_choice(OUTCOMES, "response_outcome"))
    received_at: Mapped[datetime] = mapped_column(Instant, index=True)  # when it arrived (or was logged)
    recorded_at: Mapped[datetime] = mapped_column(Instant)
    # What the message's Date header said: the sender's clock, or a quoted old letter's (None: none that parses).
    date_header: Mapped[datetime | None] = mapped_column(Instant)
    sub_kind: Mapped[str | None] = mapped_column(String(32))  # how the kind was told: dsn, free-text, arf, rfc3834...
    # The Message-ID of ours the message names, and where: in-reply-to, references, report, quoted-text.
    original_message_id: Mapped[str | None] = mapped_column(String(500))
    original_found_in: Mapped[str | None] = mapped_column(String(32))
    bounced: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)  # address, action, status, diagnostic


class ResponseMessage(Base):
    """The raw bytes of an inbound response, kept so that a wrong classification can be corrected.

    Apart from the response's row for the reason outbox bodies are: rows that change stay small.
    """

    __tablename__ = "response_messages"

    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class InboxCursor(Base):
    """How far each inbox source has been read (IMAP: UIDVALIDITY and the last UID; mbox: file and offset)."""

    __tablename__ = "inbox_cursors"

    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    validity: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(Instant)


class User(Base):
    """A campaigner who may log in to the browser desk (`outreach users add`): a name and a password's hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lower case, letters, digits and .-_@ only (outreach/desk/accounts.py): `Alice` and `alice` are one user.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)  # outreach/desk/passwords.py: scrypt$LOG2N$R$P$SALT$HASH
    created_at: Mapped[datetime] = mapped_column(Instant)
    # When the password last changed (`outreach users password`): a desk session opened before it can be ended.
    password_changed_at: Mapped[datetime] = mapped_column(Instant)

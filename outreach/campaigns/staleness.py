"""Copies made from an older version of their template: found by the digest each copy keeps of the template it
was made from, without compiling a template (`queue` and `send` say so before they go on; `campaigns refresh`
makes such copies again)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.db.models import Campaign, CampaignStep, OutboxMessage
from outreach.rendering.folders import template_digest
from outreach.vocabulary import UNSENT_STATES


@dataclass(frozen=True)
class StaleStep:
    """A step with copies still to go that were made from an older version of its template."""

    campaign: str
    position: int
    template: str
    copies: int

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dict(self.__dict__)

    def notice(self) -> str:
        """What `queue` and `send` say of these copies."""
        return (f"The template {self.template!r} changed since {self.copies} copies of {self.campaign} step "
                f"{self.position} were made: `outreach campaigns refresh {self.campaign}` makes them "
                "again.")  # fmt: skip


def stale_steps(sessions: sessionmaker[Session], templates: Path, campaign: str | None = None) -> list[StaleStep]:
    """The steps (of one campaign, or of all) whose copies still to go (queued, held) were made from another
    version of their template than the one in `templates` now, with how many: `outreach campaigns refresh` makes
    them again. A step whose template is gone from the folder is left out: there is nothing to refresh it from."""
    query = (
        select(Campaign.name, CampaignStep.position, CampaignStep.template, OutboxMessage.template_digest,
               func.count())
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .where(OutboxMessage.state.in_(UNSENT_STATES))
        .group_by(Campaign.id, Campaign.name, CampaignStep.position, CampaignStep.template,
                  OutboxMessage.template_digest)
        .order_by(Campaign.id, CampaignStep.position)
    )  # fmt: skip
    if campaign is not None:
        query = query.where(Campaign.name == campaign)
    with sessions() as session:
        rows = session.execute(query).all()
    digests: dict[str, str | None] = {}
    stale: dict[tuple[str, int, str], int] = {}
    for name, position, template, digest, count in rows:
        if template not in digests:
            digests[template] = template_digest(templates, template) if (templates / template).is_dir() else None
        if digests[template] is not None and digest != digests[template]:  # no digest: queued before 0006
            stale[name, position, template] = stale.get((name, position, template), 0) + count
    return [StaleStep(name, position, template, count) for (name, position, template), count in stale.items()]

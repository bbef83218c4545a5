"""The report index: each drill's summary (what the monthly report and the handoff read) and action items.

Revision ID: 0002
Revises: 0001
Filled from the journals (and the drill's reports, for people's edits to action items) by ``drill history
reindex``; a database upgraded from 0001 gets them the first time a command reads the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drill_summaries",
        sa.Column("drill_id", sa.String, primary_key=True),
        sa.Column("scenario_id", sa.String, nullable=False),
        sa.Column("title", sa.String, nullable=False),
        sa.Column("category", sa.String, nullable=False),
        sa.Column("is_drill", sa.Boolean, nullable=False),
        sa.Column("started", sa.String),
        sa.Column("true_severity", sa.String, nullable=False),
        sa.Column("declared_severity", sa.String),
        sa.Column("outcome", sa.String, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("grade", sa.String, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("ttd", sa.Double),
        sa.Column("tta", sa.Double),
        sa.Column("ttm", sa.Double),
        sa.Column("ttr", sa.Double),
        sa.Column("resolved", sa.Boolean, nullable=False),
        sa.Column("team", sa.String),
        sa.Column("actions", sa.Text, nullable=False, server_default="[]"),
        sa.Column("postmortem", sa.String),
        sa.Column("postmortem_mtime_ns", sa.BigInteger),
    )
    op.create_index("summaries_by_started", "drill_summaries", ["started"])
    op.create_table(
        "action_items",
        sa.Column(
            "drill_id",
            sa.String,
            sa.ForeignKey("drill_summaries.drill_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("due", sa.String, nullable=False),
        sa.Column("check_id", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("drill_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("action_items")
    op.drop_table("drill_summaries")

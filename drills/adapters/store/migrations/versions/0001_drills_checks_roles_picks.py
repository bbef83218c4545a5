"""Drills, check results, roles held, monthly picks: the schema the hand-written SQLite store left (v3).

Revision ID: 0001
An old database (``schema_migrations`` at version 3) is stamped at this revision and upgraded from here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("scenario", sa.String, nullable=False),
        sa.Column("scenario_title", sa.String),
        sa.Column("category", sa.String),
        sa.Column("trainee", sa.String),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("outcome", sa.String),
        sa.Column("score", sa.Double),
        sa.Column("grade", sa.String),
        sa.Column("passed", sa.Integer),
        sa.Column("true_severity", sa.String),
        sa.Column("started", sa.String, nullable=False),
        sa.Column("ended", sa.String),
        sa.Column("is_drill", sa.Integer, nullable=False, server_default="1"),
        sa.Column("journal", sa.String),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String),
        sa.Column("plan_id", sa.String),
        sa.Column("team", sa.String),
        sa.Column("improve_next", sa.String),
        sa.CheckConstraint("status IN ('running', 'finished', 'crashed')", name="drills_status"),
    )
    op.create_index("drills_by_trainee", "drills", ["trainee", "started"])
    op.create_index("drills_by_status", "drills", ["status"])
    op.create_table(
        "check_results",
        sa.Column("drill_id", sa.String, sa.ForeignKey("drills.id", ondelete="CASCADE"), nullable=False),
        sa.Column("check_id", sa.String, nullable=False),
        sa.Column("family", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("target_seconds", sa.Double),
        sa.Column("measured_seconds", sa.Double),
        sa.PrimaryKeyConstraint("drill_id", "check_id"),
    )
    op.create_table(
        "roles_held",
        sa.Column("drill_id", sa.String, nullable=False),
        sa.Column("person", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("at", sa.String),
        sa.PrimaryKeyConstraint("drill_id", "person", "role"),
    )
    op.create_index("roles_by_person", "roles_held", ["person"])
    op.create_table(
        "monthly_picks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String, nullable=False),
        sa.Column("picked_at", sa.String, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("scenario", sa.String, nullable=False),
        sa.Column("slot", sa.String, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("drill_id", sa.String),
        sa.Column("status", sa.String, nullable=False, server_default="picked"),
        sa.CheckConstraint("status IN ('picked', 'ran', 'failed')", name="picks_status"),
    )
    op.create_index("picks_by_month", "monthly_picks", ["month", "picked_at"])


def downgrade() -> None:
    for table in ("monthly_picks", "roles_held", "check_results", "drills"):
        op.drop_table(table)

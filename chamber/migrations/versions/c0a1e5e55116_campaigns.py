"""campaigns: a message composed for a segment, who it went to, and the bookings it brought

Revision ID: c0a1e5e55116
Revises: c0a1e5e55115
Create Date: 2026-12-05 17:10:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c0a1e5e55116"
down_revision = "c0a1e5e55115"
branch_labels = None
depends_on = None


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=20)


def upgrade():
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=150), nullable=False),
        sa.Column("preview_text", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("survey_url", sa.String(length=500), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("topic", _enum("marketingtopic", "events", "newsletter", "surveys"), nullable=False),
        sa.Column(
            "status",
            _enum("campaignstatus", "draft", "scheduled", "sending", "paused", "sent", "cancelled"),
            nullable=False,
        ),
        sa.Column("scheduled_for", sa.DateTime(), nullable=True),
        sa.Column("scheduled_zone", sa.String(length=64), nullable=False),
        sa.Column("queued_through", sa.Integer(), nullable=False),
        sa.Column("queued_all_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("sent_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff_user.id"],
            name=op.f("fk_campaign_created_by_id_staff_user"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_campaign_event_id_event"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segment.id"],
            name=op.f("fk_campaign_segment_id_segment"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sent_by_id"], ["staff_user.id"],
            name=op.f("fk_campaign_sent_by_id_staff_user"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )  # fmt: skip
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_segment_id"), ["segment_id"], unique=False)
        batch_op.create_index(
            "ix_campaign_status_scheduled_for", ["status", "scheduled_for"], unique=False
        )
    op.create_table(
        "campaign_resource",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"],
            name=op.f("fk_campaign_resource_campaign_id_campaign"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"],
            name=op.f("fk_campaign_resource_resource_id_resource"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "resource_id", name=op.f("pk_campaign_resource")),
    )  # fmt: skip
    op.create_table(
        "campaign_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("outbox_message_id", sa.Integer(), nullable=True),
        sa.Column(
            "left_out",
            _enum("leftout", "bounced", "unsubscribed", "archived", "opted_out", "no_basis"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"],
            name=op.f("fk_campaign_recipient_campaign_id_campaign"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"],
            name=op.f("fk_campaign_recipient_contact_id_contact"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"], ["outbox_message.id"],
            name=op.f("fk_campaign_recipient_outbox_message_id_outbox_message"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipient")),
        sa.UniqueConstraint(
            "campaign_id", "contact_id", name=op.f("uq_campaign_recipient_campaign_id_contact_id")
        ),
    )  # fmt: skip
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_recipient_outbox_message_id"),
            ["outbox_message_id"],
            unique=False,
        )
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_booking_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_booking_campaign_id_campaign"),
            "campaign",
            ["campaign_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_booking_campaign_id_campaign"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_booking_campaign_id"))
        batch_op.drop_column("campaign_id")
    op.drop_table("campaign_recipient")
    op.drop_table("campaign_resource")
    op.drop_table("campaign")

"""event communications: an event's joining details and reminder settings, the reminders queued
for its delegates, and the messages staff send them

Revision ID: c0a1e5e55115
Revises: c0a1e5e55114
Create Date: 2026-12-05 17:20:00

`event.parking`, `event.access` and `event.what_to_bring` are Markdown shown on the event's page
and in the reminder; `event.reminder_enabled`, `reminder_days_before` (0 to 28) and
`reminder_time` (a wall-clock time in the event's zone) say when the reminder goes: every event
so far gets the default, two days before at 09:00. `delegate_reminder` holds one row per delegate
reminded (the claim that makes it once); `event_message` the messages to an event's delegates.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55115"
down_revision = "c0a1e5e55114"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parking", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("access", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("what_to_bring", sa.Text(), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("reminder_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("reminder_days_before", sa.Integer(), nullable=False, server_default="2")
        )
        batch_op.add_column(
            sa.Column("reminder_time", sa.Time(), nullable=False, server_default="09:00:00")
        )
        batch_op.create_check_constraint(
            op.f("ck_event_reminder_days_before_in_range"),
            "reminder_days_before >= 0 AND reminder_days_before <= 28",
        )

    op.create_table(
        "delegate_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("delegate_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delegate_id"],
            ["delegate.id"],
            name=op.f("fk_delegate_reminder_delegate_id_delegate"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("fk_delegate_reminder_event_id_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegate_reminder")),
        sa.UniqueConstraint("delegate_id", name=op.f("uq_delegate_reminder_delegate_id")),
    )
    with op.batch_alter_table("delegate_reminder", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delegate_reminder_event_id"), ["event_id"], unique=False
        )

    op.create_table(
        "event_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column(
            "audience",
            sa.Enum(
                "confirmed",
                "waitlisted",
                "checked_in",
                "no_show",
                name="messageaudience",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=150), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "sent",
                name="eventmessagestatus",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("written_by_email", sa.String(length=254), nullable=False),
        sa.Column("sent_by_id", sa.Integer(), nullable=True),
        sa.Column("sent_by_email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("fk_event_message_event_id_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sent_by_id"],
            ["staff_user.id"],
            name=op.f("fk_event_message_sent_by_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_message")),
    )
    with op.batch_alter_table("event_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_message_event_id"), ["event_id"], unique=False)


def downgrade():
    with op.batch_alter_table("event_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_message_event_id"))
    op.drop_table("event_message")
    with op.batch_alter_table("delegate_reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delegate_reminder_event_id"))
    op.drop_table("delegate_reminder")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_event_reminder_days_before_in_range"), type_="check")
        for column in (
            "reminder_time", "reminder_days_before", "reminder_enabled", "what_to_bring",
            "access", "parking",
        ):  # fmt: skip
            batch_op.drop_column(column)

"""Every model, imported in one place so that the metadata Alembic compares is complete."""

from chamber.auth.audit import AuditEntry
from chamber.auth.models import (
    PasswordReset,
    RecoveryCode,
    Role,
    StaffPolicy,
    StaffSession,
    StaffUser,
)
from chamber.campaigns.models import Campaign, CampaignRecipient, CampaignResource
from chamber.core.heartbeat import WorkerHeartbeat
from chamber.core.pagecache import PublicVersion
from chamber.directory.models import Segment
from chamber.events.models import (
    AgendaItem,
    AgendaItemSpeaker,
    AgendaKind,
    Event,
    EventStatus,
    Speaker,
)
from chamber.mail.models import (
    MailKind,
    MessageStatus,
    OutboxAttachment,
    OutboxMessage,
    Suppression,
    UnsubscribeToken,
)
from chamber.members.import_models import ImportJob, ImportJobRow, ImportStatus, RowAction
from chamber.members.models import (
    Consent,
    Contact,
    ContactRole,
    LegalForm,
    LinkPurpose,
    MarketingToken,
    MarketingTopic,
    MergeKind,
    MergeRecord,
    Organisation,
    OrganisationTag,
    SizeBand,
    SubscriptionRequest,
    TopicOptOut,
)
from chamber.privacy.models import PrivacyNotice, RetentionRun
from chamber.registration.models import (
    Booking,
    BookingToken,
    Delegate,
    DelegateReminder,
    DelegateStatus,
    EventMessage,
)
from chamber.resources.models import (
    AgendaItemResource,
    EventResource,
    LinkCheck,
    LinkCheckRun,
    LinkCheckSchedule,
    LinkState,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from chamber.surveys.models import (
    Answer,
    Invitation,
    Question,
    QuestionKind,
    Recipients,
    Response,
    Survey,
    SurveyStatus,
    SurveyToken,
)

__all__ = [
    "AgendaItem", "AgendaItemSpeaker", "AgendaKind", "Event", "EventStatus", "Role", "Speaker",
    "StaffUser", "MailKind", "MessageStatus", "OutboxAttachment", "OutboxMessage", "Suppression",
    "UnsubscribeToken", "Consent", "Contact", "ContactRole", "LegalForm", "MarketingTopic",
    "MergeKind", "MergeRecord", "Organisation", "OrganisationTag", "SizeBand", "TopicOptOut",
    "LinkPurpose", "MarketingToken", "SubscriptionRequest", "Booking", "BookingToken", "Delegate",
    "DelegateStatus", "AgendaItemResource", "EventResource", "LinkCheck", "LinkCheckRun",
    "LinkCheckSchedule", "LinkState", "Resource", "ResourceKind", "ResourceStatus", "Answer",
    "Invitation", "Question", "QuestionKind", "Recipients", "Response", "Survey", "SurveyStatus",
    "SurveyToken", "PublicVersion", "WorkerHeartbeat", "Segment", "ImportJob", "ImportJobRow",
    "ImportStatus", "RowAction", "DelegateReminder", "EventMessage", "Campaign",
    "CampaignRecipient", "CampaignResource", "PrivacyNotice", "AuditEntry", "PasswordReset",
    "RecoveryCode", "StaffPolicy", "StaffSession", "RetentionRun",
]  # fmt: skip

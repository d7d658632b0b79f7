"""Public pages for the chamber's mailings: subscribing with double opt-in (`/subscribe`), the
confirmation link, and the preferences page every marketing email links to. A wrong, tampered or
expired link is a plain 404."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from chamber.core.errors import form_status
from chamber.extensions import limiter
from chamber.mail import services as mail
from chamber.members import subscriptions
from chamber.members.forms import PreferencesForm, SubscribeForm
from chamber.members.models import Contact, SubscriptionRequest

bp = Blueprint("members", __name__)


@bp.after_request
def _secret_links_stay_here(response):
    """A page whose address holds a secret is never kept, nor sent to another site as a Referer;
    `same-origin`, not `no-referrer`, so its forms still post with this site's `Origin`."""
    if request.view_args and "token" in request.view_args:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.route("/subscribe", methods=["GET", "POST"])
# Only a form that went through counts: a sign-up tablet at a show shares one connection, and a
# form sent back for a missing field sends nobody an email.
@limiter.limit(
    lambda: current_app.config["SUBSCRIBE_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=lambda response: response.status_code < 400,
)
def subscribe():
    form = SubscribeForm()
    if form.validate_on_submit():
        # The next page is the same whether or not the address is known: it never tells a
        # stranger who is on the list.
        subscriptions.subscribe(form.details())
        session["subscribed"] = mail.normalise_address(form.email.data)
        return redirect(url_for(".check_email"))
    return render_template("members/subscribe.html", form=form), form_status(form)


@bp.get("/subscribe/check-your-email")
def check_email():
    address = session.get("subscribed")
    if not isinstance(address, str):
        return redirect(url_for(".subscribe"))
    return render_template(
        "members/check_email.html", address=address, confirm_days=subscriptions.CONFIRM_DAYS
    )


@bp.get("/subscribe/confirm/<token>")
def confirm_page(token: str):
    # Mail scanners open links, so opening one changes nothing: the page's button confirms.
    subscription = _subscription_or_404(token)
    return render_template(
        "members/confirm.html",
        token=token,
        address=subscription.contact.email,
        topics=subscriptions.requested_topics(subscription),
        done=subscription.confirmed_at is not None,
    )


@bp.post("/subscribe/confirm/<token>")
def confirm(token: str):
    subscriptions.confirm(_subscription_or_404(token))  # its form token checked by Flask-WTF
    return redirect(url_for(".confirm_page", token=token))


def _subscription_or_404(token: str) -> SubscriptionRequest:
    subscription = subscriptions.request_for_confirmation(token)
    if subscription is None:
        abort(404)
    return subscription


@bp.get("/preferences/<token>")
def preferences(token: str):
    contact = _contact_or_404(token)
    form = PreferencesForm()
    form.topics.data = [topic.value for topic in subscriptions.shown_ticked(contact)]
    return _preferences_page(form, token, contact.email, mail.is_suppressed(contact.email))


@bp.post("/preferences/<token>")
def save_preferences(token: str):
    contact = _contact_or_404(token)
    form = PreferencesForm()
    if not form.validate_on_submit():
        return _preferences_page(form, token, contact.email, mail.is_suppressed(contact.email))
    if form.unsubscribe.data:
        subscriptions.unsubscribe_from_all(contact)
        flash("You are unsubscribed: we will send you no more news or surveys.", "success")
    else:
        subscriptions.save_preferences(contact, form.topics.topics)
        flash("Your choices are saved.", "success")
    return redirect(url_for(".preferences", token=token))


def _contact_or_404(token: str) -> Contact:
    contact = subscriptions.contact_for_preferences(token)
    if contact is None:
        abort(404)
    return contact


def _preferences_page(form: PreferencesForm, token: str, address: str, suppressed: bool):
    return render_template(
        "members/preferences.html",
        form=form,
        token=token,
        address=address,
        suppressed=suppressed,
    ), form_status(form)

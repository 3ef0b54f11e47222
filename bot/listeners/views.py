"""Form submissions (the request form, the extension form and the review form), and the request
form following the cluster and role chosen in it.

A view submission is acknowledged at once: what can be checked without a call (the fields, against
the roster in memory) is answered in the ack with ``response_action="errors"`` (the form stays open
for a fix); anything else turns the form into "Submitting…" in the ack. Then, after the ack, come the
identity check (``users.info``, perhaps twice), the channel check (``conversations.info``) and the
service's Redis transaction, and the form is updated to show the outcome (``views.update`` by its
view id). Slack gives up on an ack after 3 seconds, tells the person the app did not respond and
leaves the form open; with the slow work before the ack, a second press of Submit would then make a
second request. The view id is the submission's key (``AccessService.submit(submission=…)``), so the
same form delivered twice makes one request.

What was submitted is checked against what the form offers *now* (``bot.slack.forms``), and then by
the service against stored state; ``private_metadata`` is only an id to look up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from slack_bolt import Ack, App

from bot.domain import policy
from bot.domain.ids import RequestId, SlackUserId, parse_request_id
from bot.domain.roster import Roster
from bot.listeners.deps import Deps, actor_from, log_unexpected
from bot.ports import BreakglassError
from bot.services.errors import Refused
from bot.slack import blocks, wording
from bot.slack.client import SlackError
from bot.slack.forms import (
    CLUSTER_INPUT,
    ROLE_INPUT,
    ExtensionForm,
    FieldErrors,
    RequestForm,
    ReviewForm,
    extension_field_problems,
    form_state,
    options_for,
    read_extension_form,
    read_request_form,
    read_review_form,
    state_values,
    typed,
)
from bot.slack.identity import Actor, IdentityRefused, Profile

log = logging.getLogger(__name__)

# How often, and how far apart, the outcome is put on the form again while Slack may still be
# applying the ack's "Submitting…" on top of it (see ``FormOutcome.show``).
_LOOKS = 4
_LOOK_AGAIN_SECONDS = 0.25


Submit = Callable[[Deps, Ack, dict[str, Any], dict[str, Any], Callable[[float], None]], None]


def register(app: App, deps: Deps, pause: Callable[[float], None] = time.sleep) -> None:
    forms: tuple[tuple[str, Submit], ...] = (
        (blocks.REQUEST_CALLBACK, submit_request),
        (blocks.EXTEND_CALLBACK, submit_extension),
        (blocks.REVIEW_CALLBACK, submit_review),
        (blocks.DENY_CALLBACK, submit_denial),
    )
    for callback_id, submit in forms:
        app.view(callback_id)(_on_submission(deps, submit, pause))

    # The cluster and role selects dispatch a block action on every choice (``dispatch_action``).
    for action_id in (CLUSTER_INPUT, ROLE_INPUT):

        @app.action(action_id)
        def on_choice(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            follow_choice(deps, body)


class FormOutcome:
    """Shows what became of a submitted form, on the form itself, after the ack."""

    def __init__(self, deps: Deps, view: Mapping[str, Any], pause: Callable[[float], None]) -> None:
        self.deps = deps
        self.view_id = str(view.get("id") or "")
        self.submitted_hash = str(view.get("hash") or "") or None
        self.pause = pause

    def refused(self, reason: str) -> None:
        self.show(blocks.notice_modal(wording.NOTHING_DONE, wording.refusal(reason)))

    def identified(self, body: Mapping[str, Any], action: str) -> Profile | None:
        """The checked person, or None with the identity refusal (audited by the gate) on the form."""
        try:
            return self.deps.identify(actor_from(body), action)
        except IdentityRefused as refused:
            self.refused(refused.reason)
            return None

    def refused_to(self, person: Profile, request_id: RequestId | None, action: str, reason: str) -> None:
        """A refusal of ``person``'s ``action``: audited (``Deps.record_refusal``), then on the form."""
        self.deps.record_refusal(request_id, person, action, reason)
        self.refused(reason)

    def done(self, title: str, text: str) -> None:
        self.show(blocks.notice_modal(title, text))

    def show(self, outcome: Mapping[str, Any]) -> None:
        """Put ``outcome`` on the form in place of "Submitting…".

        Slack applies the ack's "Submitting…" when our answer reaches it, which may be after this
        update, and would then cover it. So the first update is guarded by the submitted version's
        hash: ``hash_conflict`` means Slack has applied the ack (the version changed), and ours goes
        on top unguarded; success means we came first, so look again a moment later, guarded by the
        version we wrote."""
        if not self.view_id:
            return
        version = self.submitted_hash
        try:
            for _ in range(_LOOKS if version else 1):
                try:
                    version = self.deps.slack.update_view(self.view_id, outcome, view_hash=version) or None
                except SlackError as exc:
                    if exc.error != "hash_conflict":
                        raise
                    self.deps.slack.update_view(self.view_id, outcome)
                    return
                if version is None:
                    return
                self.pause(_LOOK_AGAIN_SECONDS)
        except BreakglassError as exc:
            # The person may have closed the form; the request (if any) is stored and will be posted.
            log.warning("could not show the outcome on the form", extra={"error": getattr(exc, "error", str(exc))})


def _submitting(ack: Ack) -> None:
    ack(response_action="update", view=blocks.notice_modal(wording.SUBMITTING_TITLE, wording.SUBMITTING))


@contextmanager
def _unexpected_shown(outcome: FormOutcome, body: Mapping[str, Any]) -> Iterator[None]:
    """After the ack the form says "Submitting…", and the app's error handler cannot answer a view
    submission (there is no response URL): without this, an unexpected failure (Redis down) would
    leave the form on "Submitting…" for good, perhaps with the request made. The failure is logged
    as the error handler logs it (once, with the reference the form shows) and not raised on: Bolt,
    handed an exception after the ack, forgets the ack it has not yet sent (``ack.response = None``)
    and Slack would hear nothing at all."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  (logged in log_unexpected, as the error handler logs)
        reference = log_unexpected(exc, body)
        outcome.show(blocks.notice_modal(wording.WENT_WRONG, wording.something_went_wrong(reference)))


def _on_submission(deps: Deps, submit: Submit, pause: Callable[[float], None]) -> Callable[..., None]:
    """A view-submission listener for one form (Bolt passes the arguments it finds by these names)."""

    def on_submission(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit(deps, ack, body, view, pause)

    return on_submission


def submit_request(
    deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any], pause: Callable[[float], None]
) -> None:
    actor = actor_from(body)
    roster = deps.roster()
    claimed = SlackUserId(actor.user_id)
    form = read_request_form(state_values(view), roster, claimed)
    # Field errors come from the roster in memory, before the ack. Someone the roster entitles to
    # nothing gets no field errors: the identity gate below says who they are not, and audits it.
    if not isinstance(form, RequestForm) and options_for(roster, claimed).entitled:
        ack(response_action="errors", errors=form)
        return
    _submitting(ack)
    outcome = FormOutcome(deps, view, pause)
    with _unexpected_shown(outcome, body):
        _decide_request(deps, view, roster, form, actor, outcome)


def _decide_request(
    deps: Deps,
    view: Mapping[str, Any],
    roster: Roster,
    form: RequestForm | FieldErrors,
    actor: Actor,
    outcome: FormOutcome,
) -> None:
    try:
        person = deps.identify(actor, "request")
    except IdentityRefused as refused:
        outcome.refused(refused.reason)
        return
    if not isinstance(form, RequestForm):
        outcome.refused_to(person, None, "request", wording.NOT_ENTITLED)
        return
    channel_problem = check_channel(deps, form.channel)
    if channel_problem:
        state = form_state(state_values(view))
        options = options_for(roster, person.user_id, state.cluster, state.role)
        outcome.show(blocks.request_modal(options, roster, state, notice=wording.form_problem(channel_problem)))
        return
    ask = policy.Ask(person.user_id, form.cluster, form.namespace, form.role, form.duration, form.reason, form.channel)
    try:
        if deps.needs_step_up("request", form.role):
            assert deps.step_up is not None
            deps.access.check_submit(ask)
            outcome.done(wording.STEP_UP_FIRST, deps.step_up.hold(person.user_id, "request", ask.held()).line)
            return
        request = deps.access.submit(ask, submission=outcome.view_id or None)
    except Refused as refused:
        outcome.refused_to(person, None, "request", refused.reason)
        return
    outcome.done(wording.REQUEST_SENT, deps.submitted(request, roster))


def check_channel(deps: Deps, channel: str) -> str | None:
    """Why the request could not be posted in ``channel``, or None. Only the incident channel and
    those the roster lists are allowed (the service checks that again), and never one shared with
    another organisation: reasons, approvals and recorded actions would be posted outside the company.
    A Slack hiccup is not a reason to refuse: the publish job falls back to the incident channel if
    the post fails."""
    allowed = policy.check_channel(deps.roster(), channel)
    if not allowed:
        return allowed.reason
    try:
        info = deps.slack.conversation_info(channel)
    except SlackError as exc:
        if exc.error == "channel_not_found":
            return wording.CHANNEL_UNSEEN
        log.warning("conversations.info refused; not checking the channel", extra={"error": exc.error})
        return None
    except BreakglassError:
        return None
    if info.get("is_ext_shared") or info.get("is_pending_ext_shared"):
        return wording.CHANNEL_SHARED
    if info.get("is_archived"):
        return wording.CHANNEL_ARCHIVED
    if info.get("is_member") is False:
        return wording.CHANNEL_NOT_JOINED
    return None


def follow_choice(deps: Deps, body: Mapping[str, Any]) -> None:
    """Render the request form again after a cluster or role was chosen, offering what follows from
    it. Nothing is decided here (the submission is checked in full), but every action passes the
    identity gate: the form shows what the roster offers someone only to that someone, from this
    workspace, not to a guest or a deactivated account holding an old form open."""
    view = body.get("view")
    if not isinstance(view, Mapping) or view.get("callback_id") != blocks.REQUEST_CALLBACK:
        return
    try:
        person = deps.identify(actor_from(body), "request")
    except IdentityRefused as refused:
        _render_choice(deps, view, blocks.notice_modal(wording.NOTHING_DONE, wording.refusal(refused.reason)))
        return
    roster = deps.roster()
    state = form_state(state_values(view))
    options = options_for(roster, person.user_id, state.cluster, state.role)
    if not options.entitled:
        return
    _render_choice(deps, view, blocks.request_modal(options, roster, state))


def _render_choice(deps: Deps, view: Mapping[str, Any], rendered: Mapping[str, Any]) -> None:
    try:
        # Guarded by the version the choice was made on: a later choice renders its own version.
        deps.slack.update_view(str(view.get("id") or ""), rendered, view_hash=str(view.get("hash") or "") or None)
    except SlackError as exc:
        if exc.error != "hash_conflict":
            raise


def submit_extension(
    deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any], pause: Callable[[float], None]
) -> None:
    metadata = str(view.get("private_metadata") or "")
    problems = extension_field_problems(state_values(view), metadata)
    if problems:
        ack(response_action="errors", errors=problems)
        return
    _submitting(ack)
    outcome = FormOutcome(deps, view, pause)
    with _unexpected_shown(outcome, body):
        _decide_extension(deps, body, view, metadata, outcome)


def _decide_extension(
    deps: Deps, body: Mapping[str, Any], view: Mapping[str, Any], metadata: str, outcome: FormOutcome
) -> None:
    grant_id = parse_request_id(metadata)
    assert grant_id is not None  # extension_field_problems answered a form naming no id in the ack
    person = outcome.identified(body, "extend")
    if person is None:
        return
    try:
        grant = deps.access.get_visible(grant_id, person.user_id)
    except Refused as refused:
        outcome.refused_to(person, grant_id, "extend", refused.reason)
        return
    form = read_extension_form(state_values(view), metadata, grant, deps.roster())
    if not isinstance(form, ExtensionForm):
        reason = next(iter(form.values()))
        outcome.refused_to(person, grant_id, "extend", reason)
        return
    try:
        extension = deps.access.extend(
            form.grant_id, person.user_id, form.duration, form.reason, submission=outcome.view_id or None
        )
    except Refused as refused:
        outcome.refused_to(person, form.grant_id, "extend", refused.reason)
        return
    outcome.done(wording.EXTENSION_ASKED, wording.extension_reply(extension))


def submit_review(
    deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any], pause: Callable[[float], None]
) -> None:
    metadata = str(view.get("private_metadata") or "")
    form = read_review_form(state_values(view), metadata)
    if not isinstance(form, ReviewForm):
        ack(response_action="errors", errors=form)
        return
    _submitting(ack)
    outcome = FormOutcome(deps, view, pause)
    with _unexpected_shown(outcome, body):
        _decide_review(deps, body, form, outcome)


def submit_denial(
    deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any], pause: Callable[[float], None]
) -> None:
    request_id = parse_request_id(str(view.get("private_metadata") or ""))
    if request_id is None:
        ack(response_action="errors", errors={blocks.DENY_REASON_INPUT: wording.FORM_NAMES_NOTHING})
        return
    reason = typed(state_values(view), blocks.DENY_REASON_INPUT)
    _submitting(ack)
    outcome = FormOutcome(deps, view, pause)
    with _unexpected_shown(outcome, body):
        person = outcome.identified(body, "deny")
        if person is None:
            return
        try:
            denied = deps.access.deny(request_id, person.user_id, reason)
        except Refused as refused:
            outcome.refused_to(person, request_id, "deny", refused.reason)
            return
        outcome.done(wording.DENY_TITLE, wording.denied_reply(denied.request))


def _decide_review(deps: Deps, body: Mapping[str, Any], form: ReviewForm, outcome: FormOutcome) -> None:
    person = outcome.identified(body, "review")
    if person is None:
        return
    try:
        request = deps.access.write_review(
            form.request_id, person.user_id, form.text, submission=outcome.view_id or None, follow_ups=form.follow_ups
        )
    except Refused as refused:
        outcome.refused_to(person, form.request_id, "review", refused.reason)
        return
    outcome.done(wording.REVIEW_SAVED, wording.reviewed_reply(request))

"""Every sentence breakglass says in Slack, as pure functions of already-decided facts.

Like Teleport's ``MsgStatusText``: wording lives here, blocks are built around it in ``blocks.py``.
Each function returns Slack mrkdwn in which everything a person typed, and everything that came from
outside (cluster errors, object names), has been passed through ``escape``; the only ``<…>`` tokens
are ours (user mentions of roster ids, date tokens, links Slack gave us).

Refusals about *who may do what* come from the domain (``bot.domain.policy``) and the services; the
sentences here are about Slack itself (identity, forms, commands).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain import automation_misses, policy
from bot.domain.audit import SYSTEM_ACTOR, AuditEntry, Event
from bot.domain.durations import format_duration
from bot.domain.end_reasons import end_sentence
from bot.domain.grant_failures import failure_sentence
from bot.domain.grants import parse_instant
from bot.domain.ids import SlackUserId, is_slack_user_id
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Roster
from bot.slack.text import TEXT_LIMIT, escape, truncate

COMMAND = "/breakglass"
EXAMPLE = "/breakglass prod/payments admin 1h INC-4411 checkout pods crash-looping"

STATE_EMOJI: Mapping[State, str] = {
    State.PENDING: ":hourglass_flowing_sand:",
    State.APPROVED: ":white_check_mark:",
    State.ACTIVE: ":unlock:",
    State.EXPIRED: ":lock:",
    State.REVOKED: ":no_entry:",
    State.DENIED: ":x:",
    State.CANCELLED: ":heavy_minus_sign:",
    State.TIMED_OUT: ":alarm_clock:",
    State.FAILED: ":warning:",
}

# --- small pieces --------------------------------------------------------------------------------


def who(actor: str) -> str:
    """A mention of a roster person, ``breakglass`` for the system; anything else shown inert."""
    if actor == SYSTEM_ACTOR:
        return "breakglass"
    return f"<@{actor}>" if is_slack_user_id(actor) else escape(actor)


def people(ids: Iterable[str]) -> str:
    names = [who(i) for i in ids]
    return ", ".join(names) if names else "nobody"


def code(text: str) -> str:
    """``text`` in a code span; backticks are dropped so it cannot close the span early."""
    return "`" + escape(text.replace("`", "'")) + "`"


def when(at: datetime) -> str:
    """A Slack date token: each reader sees ``at`` in their own timezone; the fallback is UTC."""
    epoch = int(at.timestamp())
    fallback = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"


def in_zone(at: datetime, tz: str | None) -> str:
    """``at`` as wall-clock time in the IANA zone ``tz`` with UTC beside it, e.g.
    ``14:05 CET on Fri 27 Nov (13:05 UTC)``; UTC alone when the zone is unknown."""
    utc = at.astimezone(UTC)
    utc_text = utc.strftime("%H:%M UTC on %a %d %b")
    if not tz:
        return utc_text
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return utc_text
    local = at.astimezone(zone)
    if local.utcoffset() == timedelta(0):
        return utc_text
    return f"{local.strftime('%H:%M %Z on %a %d %b')} ({utc.strftime('%H:%M UTC')})"


def left(delta: timedelta) -> str:
    """Time left, rounded down to what matters at a glance (``1h5m``, ``4m``, ``30s``)."""
    seconds = int(max(delta, timedelta(0)).total_seconds())
    if seconds >= 3600:
        seconds -= seconds % 60
    return format_duration(timedelta(seconds=seconds))


def target(request: AccessRequest) -> str:
    return escape(request.target)


def asked(request: AccessRequest) -> str:
    """``*admin* on *prod/payments* for *1h*``."""
    return f"*{escape(request.role)}* on *{target(request)}* for *{format_duration(request.duration)}*"


def state_text(request: AccessRequest) -> str:
    emoji = STATE_EMOJI.get(request.state, "")
    return f"{emoji} {request.state.label}".strip()


def approvals_text(request: AccessRequest) -> str:
    if request.self_service:
        return "none needed (self-service)"
    if request.automatic_rule is not None:
        return f"automatic (rule {escape(request.automatic_rule)})"
    count = f"{len(request.approvals)} of {request.approvals_required}"
    return f"{count}: {people(request.approved_by)}" if request.approvals else count


def reason_text(text: str, limit: int = 2900) -> str:
    return truncate(escape(text), limit)


# --- the request message ----------------------------------------------------------------------------


def request_title(request: AccessRequest) -> str:
    """Plain text (a header), so no escaping: Slack shows plain_text exactly as given."""
    kind = "Self-service break-glass" if request.self_service else "Access request"
    if request.extends:
        kind = "Extension request"
    return f"{kind} {request.id}"


def request_summary(request: AccessRequest) -> str:
    if request.extends:
        return (
            f"{who(request.requester)} asks to extend *{escape(request.extends)}* "
            f"({escape(request.role)} on *{target(request)}*) by *{format_duration(request.duration)}*."
        )
    if request.self_service:
        return f"{who(request.requester)} took {asked(request)} as self-service break-glass."
    return f"{who(request.requester)} asks for {asked(request)}."


def request_fallback(request: AccessRequest) -> str:
    """The message's ``text``: what notifications and screen readers show."""
    return (
        f"{request.id}: {who(request.requester)} asks for {escape(request.role)} on {target(request)} "
        f"for {format_duration(request.duration)} — {request.state.label}"
    )


def self_service_warning(request: AccessRequest, roster: Roster) -> str:
    approvers = people(sorted(policy.approvers_for(roster, request)))
    return f":rotating_light: *Granted at once, without approval.* The approvers ({approvers}) are told."


def lifecycle_text(request: AccessRequest, roster: Roster, now: datetime) -> str:
    """One line on where the request stands in time."""
    if request.state is State.PENDING:
        lapses = when(policy.pending_deadline(roster, request))
        return f"Requested {when(request.created_at)} · lapses {lapses} if undecided"
    if request.state is State.ACTIVE and request.expires_at is not None:
        return (
            f"Granted {when(request.granted_at or request.updated_at)} · ends {when(request.expires_at)} "
            f"({left(request.expires_at - now)} left)"
        )
    if request.state is State.APPROVED:
        return "Approved · the binding is being made"
    parts = [f"Requested {when(request.created_at)}"]
    if request.granted_at is not None:
        parts.append(f"granted {when(request.granted_at)}")
    if request.ended_at is not None:
        by = f" by {who(request.decided_by)}" if request.decided_by else ""
        parts.append(f"{request.state.label}{by} {when(request.ended_at)}")
    return " · ".join(parts)


def review_status(request: AccessRequest) -> str | None:
    if request.review is not None:
        return f":memo: Reviewed by {who(request.review.by)}."
    if request.self_service and request.granted_at is not None:
        account = f" {who(request.holder_account.by)} has added their account." if request.holder_account else ""
        when_owed = "" if request.state.terminal else ", once it ends"
        return f":memo: *A review by an approver is owed* for this break-glass use{when_owed}.{account}"
    return None


# --- thread replies, one per audit entry --------------------------------------------------------------


def _at(details: Mapping[str, Any], key: str) -> datetime | None:
    raw = details.get(key)
    if not isinstance(raw, str):
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        return None


def _ends(details: Mapping[str, Any]) -> str:
    at = _at(details, "expires_at")
    return when(at) if at else "(unknown)"


ACTION_PART_CHARS = 120  # a verb, resource, namespace or name in a listed action, before it is cut
_COUNT_ROOM = 100  # kept free in every action listing for its "… and N more" line


def _part(value: object) -> str:
    return truncate(str(value), ACTION_PART_CHARS)


def _action_lines(items: object, shown: int, room: int) -> tuple[list[str], int]:
    """Up to ``shown`` actions, one line each, in at most ``room`` characters; and how many of
    ``items`` were left out. Each part of a line is cut, so one long name cannot take the room of
    every other action, nor of the count of those left out (which the caller reserves room for)."""
    if not isinstance(items, list):
        return [], 0
    lines: list[str] = []
    used = 0
    for item in items[:shown]:
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        where = item.get("namespace")
        what = f"{_part(item.get('resource') or '?')}/{_part(name)}" if name else _part(item.get("resource") or "?")
        place = f" in {_part(where)}" if where else ""
        status = item.get("code")
        line = f"• {code(_part(item.get('verb') or '?'))} {code(what)}{escape(place)}"
        line += f" → {escape(truncate(str(status), 16))}" if status else ""
        if used + len(line) + 1 > room:
            break
        lines.append(line)
        used += len(line) + 1
    return lines, len(items) - len(lines)


def _digest(details: Mapping[str, Any]) -> str:
    count = details.get("count", 0)
    cluster = escape(_part(details.get("cluster") or "?"))
    lines = [f":mag: {escape(str(count))} change(s) on {cluster} since the last digest:"]
    listed, left_out = _action_lines(details.get("changes"), 10, TEXT_LIMIT - len(lines[0]) - _COUNT_ROOM)
    lines += listed
    more = details.get("more")
    more = (more if isinstance(more, int) and more > 0 else 0) + left_out
    if more > 0:
        lines.append(f"… and {more} more (the summary at the end lists them)")
    return "\n".join(lines)


def _bulleted(items: list[Any], line_of: Callable[[Mapping[str, Any]], str], room: int, more: str) -> list[str]:
    """One bullet per item (the first 20 mappings) within ``room`` characters, and "… and N more"."""
    lines: list[str] = []
    kept = 0
    for item in items[:20]:
        if not isinstance(item, Mapping):
            continue
        line = f"• {line_of(item)}"
        if len(line) + 1 > room:
            break
        lines.append(line)
        room -= len(line) + 1
        kept += 1
    if kept < len(items):
        lines.append(f"… and {len(items) - kept} more{f' {more}' if more else ''} (see the audit log)")
    return lines


def _open_session_line(session: Mapping[str, Any]) -> str:
    ref = session.get("name") or session.get("resource") or "?"
    where = f"{_part(session['namespace'])}/" if session.get("namespace") else ""
    started = _at(session, "at")
    since = f", started {when(started)}" if started else ""
    return f"{code(_part(session.get('verb') or '?'))} {code(where + _part(ref))}{since}"


def _still_granting_line(item: Mapping[str, Any]) -> str:
    where = f"{_part(item['namespace'])}/" if item.get("namespace") else ""
    unchecked = " (could not be checked)" if item.get("unchecked") else ""
    return (
        f"{code(_part(item.get('resource') or '?'))} {code(where + _part(item.get('name') or '?'))}: "
        f"{escape(str(item.get('what') or ''))}{unchecked}"
    )


STILL_GRANTING = (
    ":rotating_light: Made during the grant and still granting access after it (removing the binding "
    "does not touch these). Check them and delete what is not needed:"
)


def _summary(details: Mapping[str, Any]) -> str:
    count, changes = details.get("count", 0), details.get("change_count", 0)
    head = [f":clipboard: What was done: {escape(str(count))} action(s), {escape(str(changes))} of them changes."]
    kinds = details.get("by_verb_and_resource")
    if isinstance(kinds, list) and kinds:
        counted = ", ".join(
            f"{code(_part(k[0]))} {code(_part(k[1]))} ×{escape(str(k[2]))}" for k in kinds[:12] if len(k) == 3
        )
        head.append(counted + (f", and {len(kinds) - 12} more kinds" if len(kinds) > 12 else ""))
    tail: list[str] = []
    dropped = details.get("dropped")
    if isinstance(dropped, int) and dropped > 0:
        tail.append(f":warning: {dropped} further action(s) were counted but not kept (the per-grant limit).")
    sessions = details.get("open_sessions")
    if isinstance(sessions, list) and sessions:
        # What may still be open comes before the list of changes: it is what someone must act on.
        tail.append(
            ":warning: Possibly still open: removing the binding does not end a running exec, attach, "
            "port-forward or watch. Check these and end them (delete the pod, or end the process):"
        )
        room = TEXT_LIMIT // 2 - len("\n".join(head + tail))
        tail += _bulleted(sessions, _open_session_line, room, "possibly open")
    lingering = details.get("still_granting_access")
    if isinstance(lingering, list) and lingering:
        # Finding 8: what the holder made that grants access and outlives the grant; someone must act.
        tail.append(STILL_GRANTING)
        tail += _bulleted(lingering, _still_granting_line, TEXT_LIMIT // 2 - len("\n".join(head + tail)), "")
    room = TEXT_LIMIT - len("\n".join(head + tail)) - len("The first changes:") - _COUNT_ROOM - 2
    listed, left_out = _action_lines(details.get("changes"), 20, room)
    lines = list(head)
    if listed:
        lines.append("The first changes:")
        lines += listed
    more = details.get("more_changes")
    more = (more if isinstance(more, int) and more > 0 else 0) + left_out
    if more > 0:
        lines.append(f"… and {more} more (`breakglass audit export --request …` has them all)")
    return "\n".join(lines + tail)


def operator(details: Mapping[str, object]) -> str:
    """Who ran ``breakglass grant|revoke`` where the bot runs (while Slack was down)."""
    return f"operator *{escape(str(details.get('operator') or '?'))[:80]}* from the command line"


# --- automated approvals -------------------------------------------------------------------------


def ticket_link(ticket: Mapping[str, Any]) -> str:
    """``<url|INC-4411>``: the key, linked when the link is an http(s) one."""
    key = escape(str(ticket.get("key") or "?"))
    url = str(ticket.get("url") or "")
    if url.startswith(("https://", "http://")) and not any(c in url for c in "<>|"):
        return f"<{url}|{key}>"
    return key


def ticket_line(ticket: Mapping[str, Any]) -> str:
    """``<url|INC-4411> Checkout down (In Progress)``: key, title, status; the title is typed by
    whoever filed the ticket, so it is shown as plain text."""
    title = truncate(escape(str(ticket.get("title") or "")), 200)
    status = escape(str(ticket.get("status") or "?"))
    return f"{ticket_link(ticket)} {title} ({status})".replace("  ", " ")


def _until(raw: object, at: datetime) -> str:
    if not isinstance(raw, str):
        return ""
    try:
        end = parse_instant(raw).astimezone(UTC)
    except ValueError:
        return ""
    same_day = end.date() == at.astimezone(UTC).date()
    return f" until {end:%H:%M} UTC" if same_day else f" until {end:%H:%M} UTC on {end:%a %d %b}"


def automatic_evidence(requester: str, details: Mapping[str, Any], at: datetime) -> str:
    """In plain words why a rule approved: ``@alice is primary on call for Payments until 18:00 UTC``."""
    parts = []
    on_call = details.get("on_call")
    if isinstance(on_call, Mapping):
        level = on_call.get("level")
        level_text = automation_misses.level_name(level) if isinstance(level, int) else "on call"
        name = escape(str(on_call.get("schedule_name") or on_call.get("escalation_policy_name") or "?"))
        parts.append(f"{who(requester)} is {level_text} on call for {name}{_until(on_call.get('end'), at)}")
    ticket = details.get("ticket")
    if isinstance(ticket, Mapping):
        cites = "cites" if parts else f"{who(requester)} cites"
        parts.append(f"{cites} {ticket_link(ticket)} ({escape(str(ticket.get('status') or '?'))})")
    rule = escape(str(details.get("rule") or "?"))
    return f"{' and '.join(parts) or 'its rule holds'} (rule {rule})"


def event_text(entry: AuditEntry, request: AccessRequest) -> str | None:
    """What the thread says for ``entry``; None for entries that stay in the audit log only."""
    d = entry.details
    actor = who(entry.actor)
    match entry.event:
        case Event.REQUESTED:
            if d.get("operator"):
                return f":inbox_tray: Requested for {actor} by {operator(d)}: {asked(request)}."
            extra = f" as an extension of *{escape(str(d['extends']))}*" if d.get("extends") else ""
            ticket = d.get("ticket")
            cites = f" Ticket: {ticket_line(ticket)}." if isinstance(ticket, Mapping) else ""
            if d.get("ticket_unchecked"):
                unchecked = automation_misses.unchecked_sentence(d["ticket_unchecked"])
                cites = f" The ticket was not checked: {escape(unchecked)}"
            return f":inbox_tray: Requested by {actor}{extra}: {asked(request)}.{cites}"
        case Event.APPROVED:
            if d.get("operator"):
                return (
                    f":rotating_light: Granted at once by {operator(d)}, without an approver in Slack; "
                    "an approver owes a review once it ends."
                )
            if d.get("self_service"):
                return ":rotating_light: Self-service break-glass: approved at once, without an approver."
            if d.get("automatic"):
                evidence = automatic_evidence(request.requester, d, _entry_at(entry))
                return f":white_check_mark: Approved automatically: {evidence}; granting now."
            count, required = d.get("count"), d.get("required")
            tally = f" ({count} of {required})" if count is not None and required is not None else ""
            if isinstance(count, int) and isinstance(required, int) and count < required:
                return f":ballot_box_with_check: Approved by {actor}{tally}; {required - count} more needed."
            return f":white_check_mark: Approved by {actor}{tally}; granting now."
        case Event.LEFT_TO_APPROVERS:
            why = escape(automation_misses.miss_sentence(d) or "no rule held.")
            return f":information_source: Not approved automatically, so the approvers decide: {why}"
        case Event.ESCALATED:
            after = escape(str(d.get("after") or "a while"))
            incident = code(str(d.get("incident") or "?"))
            return f":bell: Still undecided after {after}: the approvers are paged through PagerDuty (incident {incident})."
        case Event.ESCALATION_RESOLVED:
            incident = code(str(d.get("incident") or "?"))
            decided = escape(str(d.get("decided") or "decided"))
            return f":bell: PagerDuty incident {incident} resolved: the request is {decided}."
        case Event.DENIED:
            why = f": {reason_text(str(d['reason']), 2000)}" if d.get("reason") else "."
            return f":x: Denied by {actor}{why}"
        case Event.CANCELLED:
            return f":heavy_minus_sign: Cancelled by {actor}."
        case Event.TIMED_OUT:
            after = escape(str(d.get("after") or ""))
            return f":alarm_clock: Timed out: nobody decided within {after}." if after else ":alarm_clock: Timed out."
        case Event.GRANTED:
            if d.get("extends"):
                return f":unlock: Extension applied to *{escape(str(d['extends']))}*: it now ends {_ends(d)}."
            subject = code(str(d.get("subject") or "?"))
            binding = code(str(d.get("binding") or "?"))
            note = (
                " The token outlives the grant; its ServiceAccount is deleted at the end, which kills it."
                if d.get("token_outlives_grant")
                else ""
            )
            return f":unlock: Granted: {binding} binds {subject}; ends {_ends(d)}.{note}"
        case Event.GRANT_FAILED:
            return f":warning: The grant failed: {escape(failure_sentence(d))}."
        case Event.REMINDER_SENT:
            return f":bell: Reminder sent to {who(request.requester)}: access ends {_ends(d)}."
        case Event.EXTENSION_REQUESTED:
            by = escape(str(d.get("by") or "?"))
            extension = escape(str(d.get("extension") or "?"))
            reason = reason_text(str(d.get("reason") or ""), 1500)
            return f":heavy_plus_sign: {actor} asks to extend by *{by}* as *{extension}*: {reason}"
        case Event.EXTENDED:
            return f":heavy_plus_sign: Extended by *{escape(str(d.get('extension') or '?'))}*: now ends {_ends(d)}."
        case Event.REVOKED:
            said = end_sentence(d)
            why = f": {escape(said)}" if said else ""
            return f":no_entry: Revoked early by {operator(d) if d.get('operator') else actor}{why}."
        case Event.EXPIRED:
            return f":lock: Expired {_ends(d)}."
        case Event.BINDING_DELETED:
            late = d.get("late_by_seconds")
            since_revoke = d.get("after_revoke_seconds")
            lateness = ""
            if isinstance(late, int | float):
                lateness = " on time" if late < 1 else f", {late:.1f}s after the expiry"
            elif isinstance(since_revoke, int | float):
                lateness = f", {since_revoke:.1f}s after the revoke"
            said = end_sentence(d)
            why = f" ({escape(said)})" if said else ""
            return f":broom: Binding {code(str(d.get('binding') or '?'))} removed{lateness}{why}."
        case Event.REVIEW_WRITTEN:
            text = reason_text(str(d.get("review") or ""), 2500)
            if d.get("follow_ups"):
                text += "\n*Follow-ups:*\n" + reason_text(str(d["follow_ups"]), 1500)
            if d.get("holder_account"):
                return f":memo: The holder's account, by {actor} (an approver's review is still owed):\n{text}"
            return f":memo: Review by {actor}:\n{text}"
        case Event.REVIEW_REMINDED:
            owers = d.get("owed_by")
            named = people(str(p) for p in owers) if isinstance(owers, list) and owers else "nobody"
            return f":hourglass: The review is overdue; reminded {named}."
        case Event.ACTIONS_RECORDED:
            return None  # the log keeps every action; the thread gets digests and the summary
        case Event.ACTIONS_DIGEST:
            return _digest(d)
        case Event.ACTIONS_SUMMARY:
            return _summary(d)
        case Event.SWEEP_DELETED | Event.SWEEP_RECOVERED:
            return lost_request_text(entry)
        case Event.SWEEP_RESCHEDULED:
            return f":repeat: The reconcile sweep re-queued the {escape(str(d.get('job') or '?'))} job."
        case Event.SWEEP_GRANT_REQUEUED:
            return ":repeat: The reconcile sweep re-queued the grant job, which had been lost."
        case Event.SWEEP_REVOKED_OVERDUE:
            return f":broom: The reconcile sweep is ending this grant: {escape(end_sentence(d) or 'its time is up')}."
        case Event.SWEEP_SERVICE_ACCOUNT_DELETED:
            account = code(str(d.get("service_account") or "?"))
            why = escape(end_sentence(d) or "")
            return f":broom: The reconcile sweep removed the ServiceAccount {account}: {why}."
        case Event.JOB_GAVE_UP:
            return _gave_up(str(d.get("job") or "?"), d.get("attempts"), str(d.get("error") or "unknown error"))
        case Event.JOB_FAILED:
            job = escape(str(d.get("job") or "a"))
            return (
                f":warning: The {job} job failed: {escape(str(d.get('error') or 'unknown error'))}. A person must look."
            )
        case Event.IDENTITY_VERIFIED:
            method = escape(", ".join(str(m) for m in d.get("amr") or []) or str(d.get("acr") or "?"))
            signed_at = _at(d, "auth_time")
            signed_in = when(signed_at) if signed_at else "at an unknown time"
            return (
                f":closed_lock_with_key: {actor} verified at {escape(str(d.get('provider') or '?'))} "
                f"({method}), signed in {signed_in}."
            )
        case Event.REFUSED:
            return None  # an attempt that changed nothing: audit log only, never the channel
        case _:
            return f"{escape(entry.event)} by {actor}."


def _gave_up(job: str, attempts: object, error: str) -> str:
    tries = f" after {attempts} attempts" if isinstance(attempts, int) else ""
    said = f"The {escape(job)} job gave up{tries}: {escape(error)}."
    then = {
        "revoke": "The reconcile sweep keeps trying until the binding is gone.",
        "grant": (
            "The reconcile sweep will try again; once the approval is older than the request timeout "
            "the grant is refused instead, and must be asked for again."
        ),
        "publish": "This thread may have missed updates; they are posted once Slack answers again.",
    }.get(job, "A person must look.")
    return f":hourglass: {said} {then}"


def _entry_at(entry: AuditEntry) -> datetime:
    try:
        return parse_instant(entry.at)
    except ValueError:
        return datetime.now(UTC)


def lost_request_text(entry: AuditEntry) -> str | None:
    """What the thread says for an entry that needs no request to be told: the sweep's keeping or
    removing a binding, which a request Redis has lost still gets in its thread."""
    d = entry.details
    match entry.event:
        case Event.SWEEP_RECOVERED:
            binding = code(str(d.get("binding") or "?"))
            until = escape(str(d.get("expires_at") or "?"))
            return (
                f":shield: Redis had lost this grant; its binding {binding} carries a valid warrant, "
                f"so it stays until its signed expiry ({until})."
            )
        case Event.SWEEP_DELETED:
            why = escape(end_sentence(d) or "")
            return f":broom: The reconcile sweep removed {code(str(d.get('binding') or '?'))}: {why}."
    return None


def event_fallback(entry: AuditEntry) -> str:
    return f"{entry.request_id}: {entry.event.replace('_', ' ')} ({entry.at})"


# --- direct messages -----------------------------------------------------------------------------


def dm_approved(request: AccessRequest) -> str:
    return (
        f":white_check_mark: *{request.id}* ({asked(request)}) was approved by {people(request.approved_by)}. "
        "The binding is being made; you will hear when it is in place."
    )


def dm_denied(request: AccessRequest, by: str, reason: str | None = None) -> str:
    why = f": {reason_text(reason, 2000)}" if reason else "."
    return f":x: *{request.id}* ({asked(request)}) was denied by {who(by)}{why}"


def dm_timed_out(request: AccessRequest) -> str:
    return (
        f":alarm_clock: *{request.id}* ({asked(request)}) lapsed: nobody decided in time. "
        "Ask again if you still need it."
    )


def dm_granted(request: AccessRequest, expires_at: datetime, use: str, link: str | None) -> str:
    """``use``: how to use the access (``how_to_use``); ``link``: the request's thread, if known."""
    thread = f" <{link}|Open the thread>." if link else ""
    if request.extends:
        return (
            f":unlock: Your extension *{request.id}* is applied: *{escape(request.extends)}* now ends "
            f"{when(expires_at)}.{thread}"
        )
    return (
        f":unlock: You now have *{escape(request.role)}* on *{target(request)}* until {when(expires_at)} "
        f"(*{request.id}*). {use}{thread}"
    )


def how_to_use(request: AccessRequest, context: str | None, token_mode: bool) -> str:
    """One sentence on using a grant: the kubectl context and namespace, or the kubeconfig (token mode)."""
    if token_mode:
        return "Use it with the kubeconfig sent to you in this DM: `kubectl --kubeconfig <that file>`."
    words = ["kubectl"]
    if context and context != "in-cluster":
        words.append(f"--context {escape(context)}")
    if request.namespace:
        words.append(f"-n {escape(request.namespace)}")
    return f"Use it with `{' '.join(words)}`."


def dm_reminder(request: AccessRequest, expires_at: datetime, can_extend: bool) -> str:
    ask = " Press *Extend* to ask for more time." if can_extend else " It cannot be extended further."
    return f":bell: *{request.id}* ({escape(request.role)} on *{target(request)}*) ends {when(expires_at)}.{ask}"


def dm_ended(request: AccessRequest, how: str, by: str | None, why: str | None = None) -> str:
    """``why``: the reason the ending entry records (breakglass's own, or a person's), if any."""
    cause = f"was revoked by {who(by)}" if how == "revoked" and by else "has expired"
    if why:
        cause += f" ({reason_text(why, 1000)})"
    review = (
        " This was self-service break-glass, so *an approver of the role owes a review*; "
        "press *Add your account* to tell them what was done."
        if request.self_service and request.review is None
        else " You may add a review of what was done."
    )
    return f":lock: Your access *{request.id}* ({escape(request.role)} on *{target(request)}*) {cause}.{review}"


def dm_grant_failed(request: AccessRequest, error: str) -> str:
    return (
        f":warning: *{request.id}* could not be granted: {escape(error)}. Nothing was left in the cluster; "
        "ask again, or ask your platform team if it keeps failing."
    )


def dm_approvers_pending(request: AccessRequest, link: str | None) -> str:
    where = f" <{escape(link)}|Open the request>." if link and link.startswith(("https://", "http://")) else ""
    needed = request.approvals_required
    return (
        f":bell: {who(request.requester)} asks for {asked(request)} and needs {needed} approval"
        f"{'s' if needed != 1 else ''} from your group.{where}\n*Reason:* {reason_text(request.reason, 1500)}"
    )


def dm_approvers_automatic(request: AccessRequest, details: Mapping[str, Any], at: datetime) -> str:
    return (
        f":white_check_mark: *Approved automatically.* {who(request.requester)} gets {asked(request)} ({request.id}) "
        f"without a click: {automatic_evidence(request.requester, details, at)}. You are an approver of this "
        "role: check it was warranted, and revoke it (/breakglass revoke "
        f"{request.id}) if not.\n*Reason:* {reason_text(request.reason, 1500)}"
    )


def dm_approvers_self_service(request: AccessRequest, expires_at: datetime | None) -> str:
    until = f" until {when(expires_at)}" if expires_at else ""
    return (
        f":rotating_light: *Self-service break-glass used.* {who(request.requester)} took "
        f"*{escape(request.role)}* on *{target(request)}*{until} ({request.id}) without approval. "
        "You are an approver of this role: check it was warranted. Once it ends, one of you owes the review "
        "(a *Write review* button comes then, and it is listed on the Home tab).\n"
        f"*Reason:* {reason_text(request.reason, 1500)}"
    )


def credentials_comment(request: AccessRequest, token_expires_at: datetime, outlives: bool, tz: str | None) -> str:
    lines = [
        f":key: The kubeconfig for *{request.id}* ({escape(request.role)} on *{target(request)}*). "
        "Keep it to yourself: it is shown only in this DM.",
        f"Its token is valid until {in_zone(token_expires_at, tz)}.",
    ]
    if outlives:
        lines.append(
            "The token outlives your grant (Kubernetes issues tokens for at least 10 minutes), but the grant's "
            "ServiceAccount is deleted when the grant ends, which makes the token useless from then on."
        )
    return "\n".join(lines)


# --- replies to people ------------------------------------------------------------------------


def refusal(reason: str) -> str:
    """A refusal as shown to the person. ``reason`` is a raw sentence (it may quote what they typed),
    so it is escaped here, once, for every refusal."""
    return f":no_entry_sign: {escape(reason)}"


def may_approve(named: policy.NamedApprovers) -> str:
    """Who may approve, as named on the card and in the requester's reply: a handful, then a count."""
    if not named.shown:
        return f"{named.more} people" if named.more else "nobody in Slack now"
    names = [who(p) for p in named.shown]
    if named.more:
        return f"{', '.join(names)} and {named.more} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def admin_alerts(alerts: Sequence[str], shown: int = 5) -> str:
    """What an admin must fix, on their Home tab: one line each, the first few, then a count."""
    lines = [f":warning: {escape(alert)}" for alert in alerts[:shown]]
    if len(alerts) > shown:
        lines.append(f"… and {len(alerts) - shown} more; `breakglass doctor` lists them all.")
    return truncate("*Needs an admin*\n" + "\n".join(lines), TEXT_LIMIT)


def submitted(
    request: AccessRequest,
    roster: Roster,
    not_automatic: str | None = None,
    approvers: policy.NamedApprovers | None = None,
) -> str:
    """The requester's answer; ``not_automatic``: why no automatic-approval rule approved it;
    ``approvers``: who may approve it, chosen by the caller."""
    channel = f"<#{request.channel}>"
    if request.automatic_rule is not None:
        return (
            f":white_check_mark: *{request.id}*: {asked(request)} is approved automatically (rule "
            f"{escape(request.automatic_rule)}) and is being granted; you get a DM when it works. It is posted "
            f"in {channel}, and the approvers are told."
        )
    if request.self_service:
        return (
            f":rotating_light: *{request.id}*: {asked(request)} is granted at once; you get a DM when it works. "
            f"It is posted in {channel} and an approver reviews it once it ends."
        )
    role = roster.roles.get(request.role)
    groups = ", ".join(role.approvers) if role else "the approvers"
    needed = request.approvals_required
    why = f" It was not approved automatically: {escape(not_automatic)}" if not_automatic else ""
    who_may = f" ({may_approve(approvers)})" if approvers is not None and request.state is State.PENDING else ""
    return (
        f":inbox_tray: *{request.id}*: {asked(request)} is being posted in {channel} and needs {needed} "
        f"approval{'s' if needed != 1 else ''} from {escape(groups)}{who_may}. You will get a DM when it is decided.{why}"
    )


def approved_reply(request: AccessRequest, counted: int, required: int) -> str:
    if counted < required:
        more = required - counted
        return f":ballot_box_with_check: You approved *{request.id}* ({counted} of {required}); {more} more needed."
    return f":white_check_mark: You approved *{request.id}* ({counted} of {required}); it is being granted."


def denied_reply(request: AccessRequest) -> str:
    return f":x: You denied *{request.id}*."


def cancelled_reply(request: AccessRequest) -> str:
    return f":heavy_minus_sign: *{request.id}* is cancelled."


def revoked_reply(request: AccessRequest) -> str:
    return f":no_entry: *{request.id}* is revoked; its binding is being removed now."


def extension_reply(extension: AccessRequest) -> str:
    if extension.automatic_rule is not None:
        return (
            f":heavy_plus_sign: *{extension.id}* extends *{escape(extension.extends or '')}* by "
            f"{format_duration(extension.duration)}, approved automatically (rule {escape(extension.automatic_rule)})."
        )
    if extension.self_service:
        return (
            f":heavy_plus_sign: *{extension.id}* extends *{escape(extension.extends or '')}* by "
            f"{format_duration(extension.duration)} at once (self-service)."
        )
    return (
        f":heavy_plus_sign: *{extension.id}* asks to extend *{escape(extension.extends or '')}* by "
        f"{format_duration(extension.duration)}; it is posted for approval like a new request."
    )


def reviewed_reply(request: AccessRequest) -> str:
    if request.review is None and request.holder_account is not None:
        return (
            f":memo: Thank you: your account of *{request.id}* is recorded and posted in its thread; "
            f"an approver of {code(request.role)} still owes the review."
        )
    return f":memo: Thank you: the review of *{request.id}* is recorded and posted in its thread."


def review_prefill(actions: Mapping[str, Any]) -> str:
    """Plain text (a form's starting value, not mrkdwn): what the cluster recorded, for the reviewer to edit."""
    kinds = actions.get("by_verb_and_resource")
    counted = ", ".join(f"{k[0]} {k[1]} ×{k[2]}" for k in kinds[:12] if len(k) == 3) if isinstance(kinds, list) else ""
    lines = [
        f"Recorded by breakglass: {actions.get('count', 0)} action(s), {actions.get('change_count', 0)} of them changes"
        + (f" ({counted})." if counted else ".")
    ]
    changes = actions.get("changes")
    for change in changes[:10] if isinstance(changes, list) else []:
        if isinstance(change, dict):
            where = f"{change['namespace']}/" if change.get("namespace") else ""
            lines.append(
                f"- {change.get('verb', '?')} {change.get('resource', '?')} {where}{change.get('name') or ''}".rstrip()
            )
    sessions = actions.get("open_sessions")
    if isinstance(sessions, list) and sessions:
        lines.append(f"{len(sessions)} session(s) possibly still open when access ended.")
    lingering = actions.get("still_granting_access")
    if isinstance(lingering, list) and lingering:
        lines.append("Made during the grant and still granting access after it (removed? why kept?):")
        for item in lingering[:10]:
            if isinstance(item, dict):
                where = f"{item['namespace']}/" if item.get("namespace") else ""
                lines.append(f"- {item.get('resource', '?')} {where}{item.get('name') or '?'}")
    lines += ["", "Was it warranted, and was what was done right? "]
    return "\n".join(lines)


def review_form_intro(request: AccessRequest, closes: bool) -> str:
    what = f"*{request.id}* ({code(request.role)} on *{target(request)}*)"
    if not closes:
        return (
            f"Your account of {what}: what you did, and why it was needed. It is posted in the request's thread "
            "for the approver who reviews this self-service break-glass use."
        )
    if request.self_service:
        return (
            f"Review of {what}, self-service break-glass by {who(request.requester)}: was it warranted, and was "
            "what was done (see the thread's recorded actions) right? This closes the review; it is posted in "
            "the thread and kept in the audit log."
        )
    return (
        f"Review of {what}: what was done, and why it was needed. It is posted in the request's thread and kept "
        "in the audit log."
    )


def review_owed_line(request: AccessRequest, holder: bool) -> str:
    if holder:
        return "An approver owes the review; you may add your account of what was done."
    account = " The holder has added their account." if request.holder_account else ""
    return f"Self-service break-glass by {who(request.requester)}: your review is owed.{account}"


def dm_review_overdue(request: AccessRequest, days: object) -> str:
    ago = f"{days} day{'s' if days != 1 else ''} ago" if isinstance(days, int) else "a while ago"
    return (
        f":hourglass: *A review is overdue.* *{request.id}* ({escape(request.role)} on *{target(request)}*, held by "
        f"{who(request.requester)}) ended {ago} and its review is not written yet. Check what was done (the "
        "request's thread lists it) and press *Write review*. You are reminded daily until it is written."
    )


def dm_approvers_review_owed(request: AccessRequest, how: str) -> str:
    ended = "was revoked" if how == "revoked" else "has ended"
    return (
        f":memo: *A review is owed.* {who(request.requester)}'s self-service break-glass *{request.id}* "
        f"({escape(request.role)} on *{target(request)}*) {ended}. As an approver of this role, check what was "
        "done (the request's thread lists the recorded actions) and press *Write review*; one approver's review "
        "closes it."
    )


def status_line(request: AccessRequest, now: datetime) -> str:
    line = f"*{request.id}* · {asked(request)} · {state_text(request)}"
    if request.state is State.ACTIVE and request.expires_at is not None:
        line += f" · {left(request.expires_at - now)} left"
    return line


# --- the forms' guidance, and what the lists say when empty ---------------------------------------

FORM_INTRO = "Ask for time-boxed access. Approvers are told at once; everything is audited."
ROLE_HINT = "Choose a cluster first to see only the roles you have there."
NAMESPACE_OR_TYPED_HINT = "Or type another namespace below instead."
NAMESPACE_ONLY_LISTED_HINT = "Leave empty only for a cluster-wide role."
REASON_HINT = "The incident and what you need to do. Shown to approvers and kept in the audit log."
EXTENSION_REASON_HINT = "Why more time is needed."
FOLLOW_UPS_PLACEHOLDER = "What must still be done: tickets, fixes, access to change"
NONE_YET = "None yet."
NOTHING_WAITING = "Nothing is waiting for you."
NO_ACTIVE_GRANTS = "No active grants."
NOTHING_PENDING = "Nothing pending."


def cluster_wide_role(role: str) -> str:
    return f"{code(role)} is granted cluster-wide: no namespace to choose."


def typed_namespace_hint(any_namespace: bool, patterns: Sequence[str]) -> str:
    """What may be typed as the other namespace, exactly as the entitlements allow it (plain text)."""
    if any_namespace:
        return "Any namespace: a valid Kubernetes name."
    return "A namespace matching " + ", ".join(patterns) + "."


def duration_hint(role: str | None, least: timedelta | None = None, most: timedelta | None = None) -> str:
    """Plain text; ``least`` and ``most``: the chosen role's limits."""
    if role and least is not None and most is not None:
        return (
            f"Counted from the moment access is in place; {role} allows "
            f"{format_duration(least)} to {format_duration(most)}."
        )
    return "Counted from the moment access is in place; each role has its own maximum."


def extension_form_intro(grant: AccessRequest, time_left: timedelta) -> str:
    return (
        f"Extend *{grant.id}* ({code(grant.role)} on *{target(grant)}*), "
        f"{left(time_left)} left. An extension is approved like a new request."
    )


def home_footer(now: datetime) -> str:
    return f"Or type `{COMMAND}` anywhere. Updated {when(now)}."


def listing_fallback(mine: int, waiting: int) -> str:
    return f"{mine} request(s) of yours, {waiting} waiting for you"


# --- command help ------------------------------------------------------------------------------

COMMANDS: Sequence[tuple[str, str]] = (
    (COMMAND, "open the request form"),
    (f"{COMMAND} <cluster>[/<namespace>] <role> <duration> <reason…>", "ask in one line"),
    (f"{COMMAND} list", "my requests and grants, and those I may approve"),
    (f"{COMMAND} status <id>", "one request in full"),
    (f"{COMMAND} cancel <id>", "withdraw a pending request"),
    (f"{COMMAND} revoke <id>", "end an active grant now (holder, approvers, admins)"),
    (f"{COMMAND} extend <id> <duration> <reason…>", "ask for more time (approved like a new request)"),
    (f"{COMMAND} help", "this help"),
)


def mfa_statement(roster: Roster) -> str:
    if roster.mfa == "has_2fa":
        return (
            "*MFA:* `mfa: has_2fa` — every action checks, with a workspace admin's token, that your Slack "
            "account has two-factor authentication on; without it you are refused."
        )
    return (
        "*MFA:* `mfa: slack_enforced` — the operator asserts that this workspace enforces two-factor "
        "authentication (or SSO with MFA) for everyone; breakglass does not check it per person."
    )


def neither_command_nor_cluster(word: str, clusters: Iterable[str]) -> str:
    known = ", ".join(code(c) for c in sorted(clusters))
    return f"{code(word)} is neither a breakglass command nor a cluster (clusters: {known}); here is what I do:"


def help_text(
    roster: Roster, person: SlackUserId | None, unknown: str | None = None, unknown_word: str | None = None
) -> str:
    lines: list[str] = []
    if unknown_word:
        lines.append(neither_command_nor_cluster(unknown_word, roster.clusters))
    elif unknown:
        lines.append(f"I do not know {code(unknown)}. Here is what I do:")
    lines.append("*breakglass*: time-boxed, approved and audited access to production Kubernetes.")
    lines.extend(f"• {code(usage)} — {what}" for usage, what in COMMANDS)
    lines.append("Durations: `90s`, `15m`, `2h`, `1h30m`. Request ids look like `BG-7K2QXM`.")
    lines.append(f"Example: {code(EXAMPLE)}")
    if person is not None:
        targets = policy.entitled_targets(roster, person)
        if targets:
            lines.append("*You may ask for:*")
            for cluster, role_name, globs in targets:
                role = roster.roles[role_name]
                where = (
                    "cluster-wide"
                    if role.scope == "cluster"
                    else ("any namespace" if globs is None else "namespaces " + ", ".join(code(g) for g in globs))
                )
                approvals = "self-service" if role.approvals == 0 else f"{role.approvals} approval(s)"
                lines.append(
                    f"• {code(role_name)} on {code(cluster)} ({where}), up to {format_duration(role.max_duration)}, "
                    f"{approvals}"
                )
        else:
            lines.append(NOT_ENTITLED)
    return "\n".join(lines)


# --- identity refusals (one sentence: what is wrong, what to do) -----------------------------------

WRONG_WORKSPACE = (
    "This Slack workspace is not the one breakglass serves; use it from the workspace named in its roster."
)
NOT_IN_ROSTER = "You are not in the breakglass roster; ask your platform team to add you."
EMAIL_UNCONFIRMED = (
    "Your Slack email address is not confirmed, so breakglass cannot use it as your Kubernetes user; "
    "confirm it in Slack, or ask your platform team to list you under people: in the roster."
)
UNKNOWN_ACCOUNT = (
    "Slack does not know your account in this workspace; use breakglass from the workspace named in its roster."
)
DEACTIVATED = "Your Slack account is deactivated; breakglass serves active members only."
NOT_A_PERSON = "Bots and apps cannot use breakglass; a person must act."
GUEST = "Guest accounts cannot use breakglass; ask a full member of the workspace to act."
INVITED = "Your Slack invitation is not accepted yet; accept it, then try again."
OTHER_TEAM = "Your Slack account belongs to another workspace; use breakglass from the workspace named in its roster."
TWO_FA_UNCHECKABLE = (
    "breakglass must check your two-factor authentication (mfa: has_2fa) but SLACK_ADMIN_TOKEN is not set; "
    "ask your platform team to set it."
)
NO_2FA = "Your Slack account has no two-factor authentication; turn it on in your Slack account settings and try again."
TWO_FA_UNKNOWN = (
    "Slack did not say whether your account has two-factor authentication (the admin token may lack the "
    "right); ask your platform team to check SLACK_ADMIN_TOKEN."
)


def identity_lookup_failed(what: str, error: str) -> str:
    return f"breakglass could not confirm {what} with Slack ({error}); nothing was done, try again in a minute."


# --- command and form problems (raw sentences: ``refusal`` escapes them) ----------------------------


def bad_request_id(text: str) -> str:
    return f"'{text[:40]}' is not a request id; ids look like BG-7K2QXM (see `{COMMAND} list`)."


def usage(subcommand: str) -> str:
    for line, _ in COMMANDS:
        if line.startswith(f"{COMMAND} {subcommand}"):
            return f"Type `{line}`."
    return f"Type `{COMMAND} help`."


DENY_CONFIRM = ("Deny this request?", "The requester is told, with the reason you give next (optional).", "Deny")
REVOKE_CONFIRM = ("Revoke this grant?", "The binding is removed now and the holder loses the access.", "Revoke")
REQUEST_ACCESS = "Request access"
DENY_TITLE = "Deny the request"
FORM_NAMES_NOTHING = "This form names no request; close it and start again."
DENY_REASON_LABEL = "Why (optional; the requester and the thread see it)"


def deny_form_intro(request: AccessRequest) -> str:
    return f"Deny *{request.id}*: {who(request.requester)} asks for {asked(request)}."


def missing_parts() -> str:
    return f"A request needs a cluster, a role, a duration and a reason, e.g. `{EXAMPLE}`."


def missing_reason() -> str:
    return f"Add a reason after the duration, e.g. `{EXAMPLE}`."


def target_without_slash(cluster: str, namespace: str) -> str:
    return f"Write the target as cluster/namespace: `{cluster[:40]}/{namespace[:63]}`, e.g. `{EXAMPLE}`."


def form_expired() -> str:
    return f"The form could not open in time; type `{COMMAND}` again."


def button_form_expired() -> str:
    return "The form could not open in time; press the button again."


NOT_ENTITLED = "You are not entitled to any access yet; ask your platform team."
BROKEN_BUTTON = "That button names no request; use /breakglass list to find yours."
CHANNEL_ARCHIVED = "That channel is archived; choose another."
CHANNEL_UNSEEN = "breakglass cannot see that channel; invite it (/invite @breakglass) or choose another."
CHANNEL_SHARED = "That channel is shared with another organisation (Slack Connect); choose one of this workspace's."
CHANNEL_NOT_JOINED = "breakglass is not in that channel; invite it (/invite @breakglass) or choose another."

# Titles of the notice a form turns into once it has been handled.
NOTHING_DONE = "Nothing was done"
WENT_WRONG = "Something went wrong"
REQUEST_SENT = "Request sent"
EXTENSION_ASKED = "Extension asked"
REVIEW_SAVED = "Review saved"
SUBMITTING_TITLE = "Submitting…"
SUBMITTING = "Checking who you are and sending it… this form shows the outcome in a moment."


def form_problem(problem: str) -> str:
    """A field problem found after the form was accepted, shown above the form offered again."""
    return f":warning: Nothing was sent yet: {escape(problem)}"


def something_went_wrong(reference: str) -> str:
    return f":warning: Something went wrong on our side; nothing more was done. Reference: `{reference}`."


# --- step-up verification at the identity provider (mfa: oidc) ----------------------------------------

STEP_UP_ACTION_WORDS = {"request": "your request is posted", "approve": "your approval counts"}


def step_up_needed(provider: str, action: str) -> str:
    then = STEP_UP_ACTION_WORDS.get(action, "it goes ahead")
    return (
        f":closed_lock_with_key: Verify with {escape(provider)} first: sign in with your second factor and "
        f"{then}. The link is yours alone, works once, and expires in 5 minutes."
    )


def step_up_no_email(provider: str) -> str:
    return (
        f"Your Slack account has no confirmed email address, so a sign-in at {provider} could not be matched to you; "
        "confirm your email in Slack, or ask your platform team to set your email under people: in the roster."
    )


def step_up_link(provider: str, action: str, url: str) -> str:
    return f"{step_up_needed(provider, action)} <{url}|{escape(step_up_button(provider))}>"


def step_up_button(provider: str) -> str:
    return f"Verify with {provider}"[:75]


STEP_UP_DONE_PAGE = "Verified. You can return to Slack."
STEP_UP_LINK_GONE = "This verification link is unknown, used or expired; ask again in Slack for a new one."
STEP_UP_STATE_GONE = "This sign-in is unknown, used or expired; nothing was changed. Ask again in Slack."
STEP_UP_OFF = "Step-up verification is not set up here (mfa: oidc with BREAKGLASS_PUBLIC_URL)."


STEP_UP_FIRST = "Verify first"


def step_up_provider_refused(provider: str, error: str) -> str:
    """The identity provider's own refusal, by its error code only (never its prose)."""
    return f"{provider} did not sign you in ({error})."


def step_up_refused_page(reason: str) -> str:
    return f"Not verified: {reason} Nothing was changed."


def step_up_unavailable(provider: str) -> str:
    return f"{provider} could not be reached to verify you; nothing was changed. Try again in a minute."


def step_up_not_set_up() -> str:
    return (
        "This workspace requires verification at the identity provider (mfa: oidc), but "
        "BREAKGLASS_PUBLIC_URL or BREAKGLASS_OIDC_CLIENT_SECRET is not set; ask an admin to run breakglass doctor."
    )

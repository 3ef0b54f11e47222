"""The ``/breakglass`` grammar: the text after the command, parsed into one typed command.

    (empty)                                        OpenForm
    help                                           Help
    list                                           ListRequests
    status|cancel|revoke <id>                      Status / Cancel / Revoke
    extend <id> <duration> <reason…>               Extend
    <cluster>[/<namespace>] <role> <duration> <reason…>   Ask

Only the *shape* is checked here (a request id, a duration, enough words); whether the person may
have what they ask for is the domain's question, asked by the service. A text that is neither a known
subcommand nor long enough to be a request gets the help text, and so does one whose first word is
neither a subcommand nor one of the roster's clusters (when the caller passes them): ``approve BG-…
now please`` is a mistyped command, not a request for a cluster called ``approve``. Pure.

Reasons in ``CommandError`` are raw sentences that may quote what was typed: whoever shows them
escapes them (``wording.refusal``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from bot.domain import policy
from bot.domain.durations import DurationError, parse_duration, split_duration
from bot.domain.ids import RequestId, SlackUserId, parse_request_id
from bot.slack import wording


class CommandError(ValueError):
    """The text is not a command breakglass understands; ``reason`` says why and what to type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OpenForm:
    action = "request"


@dataclass(frozen=True)
class Help:
    # Either the text that was not understood, or (instead: the help then names only the word) its
    # first word, when that is neither a subcommand nor a cluster.
    unknown: str | None = None
    unknown_word: str | None = None
    action = "help"


@dataclass(frozen=True)
class ListRequests:
    action = "list"


@dataclass(frozen=True)
class Status:
    request_id: RequestId
    action = "status"


@dataclass(frozen=True)
class Cancel:
    request_id: RequestId
    action = "cancel"


@dataclass(frozen=True)
class Revoke:
    request_id: RequestId
    action = "revoke"


@dataclass(frozen=True)
class Extend:
    request_id: RequestId
    duration: timedelta
    reason: str
    action = "extend"


@dataclass(frozen=True)
class Ask:
    cluster: str
    namespace: str | None
    role: str
    duration: timedelta
    reason: str
    action = "request"

    def by(self, requester: SlackUserId) -> policy.Ask:
        """What ``requester`` asks for with this command."""
        return policy.Ask(requester, self.cluster, self.namespace, self.role, self.duration, self.reason)


Command = OpenForm | Help | ListRequests | Status | Cancel | Revoke | Extend | Ask

_BY_ID: dict[str, type[Status] | type[Cancel] | type[Revoke]] = {"status": Status, "cancel": Cancel, "revoke": Revoke}
SUBCOMMANDS = frozenset({"help", "list", "extend", *_BY_ID})


def _request_id(text: str) -> RequestId:
    request_id = parse_request_id(text)
    if request_id is None:
        raise CommandError(wording.bad_request_id(text))
    return request_id


def _duration(text: str, example: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise CommandError(f"{exc}. {example}") from None


def parse_command(text: str, clusters: Collection[str] | None = None) -> Command:
    """The command in ``text`` (what follows ``/breakglass``), or CommandError. ``clusters`` are the
    roster's cluster names; without them any first word may name a cluster."""
    words = text.split()
    if not words:
        return OpenForm()
    verb = words[0].lower()
    cluster_word = words[0].partition("/")[0]
    if clusters is not None and verb not in SUBCOMMANDS and cluster_word and cluster_word not in clusters:
        return Help(unknown_word=cluster_word[:100])
    if verb == "help":
        return Help()
    if verb == "list":
        if len(words) > 1:
            raise CommandError(f"`list` takes nothing after it. {wording.usage('list')}")
        return ListRequests()
    if verb in _BY_ID:
        if len(words) != 2:
            raise CommandError(f"`{verb}` takes one request id. {wording.usage(verb)}")
        return _BY_ID[verb](_request_id(words[1]))
    if verb == "extend":
        parts = text.split(None, 2)
        taken = split_duration(parts[2]) if len(parts) == 3 else None
        if taken is None or not taken[1]:
            if len(parts) == 3 and taken is None:
                _duration(parts[2].split()[0], wording.usage("extend"))
            raise CommandError(f"`extend` needs an id, a duration and a reason. {wording.usage('extend')}")
        return Extend(_request_id(parts[1]), _duration(taken[0], wording.usage("extend")), taken[1])
    if len(words) < 3:
        return Help(unknown=text.strip()[:100])
    target, role, rest = text.split(None, 2)
    cluster, slash, namespace = target.partition("/")
    if not cluster:
        raise CommandError(f"'{target}' names no cluster. {wording.missing_parts()}")
    if slash and not namespace:
        raise CommandError(f"'{target}' names no namespace after the '/'. {wording.missing_parts()}")
    taken = split_duration(rest)
    if taken is None and not slash and len(words) >= 4 and split_duration(rest.split(None, 1)[1]) is not None:
        # `prod payments admin 1h …`: the namespace was typed as a word of its own.
        raise CommandError(wording.target_without_slash(target, role))
    if taken is None:
        if len(words) < 4:
            return Help(unknown=text.strip()[:100])
        _duration(rest.split()[0], f"Example: `{wording.EXAMPLE}`.")  # raises: says what a duration is
    assert taken is not None
    duration, reason = taken
    if not reason:
        raise CommandError(wording.missing_reason())
    return Ask(
        cluster=cluster,
        namespace=namespace or None,
        role=role,
        duration=_duration(duration, f"Example: `{wording.EXAMPLE}`."),
        reason=reason,
    )

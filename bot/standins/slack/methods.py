"""The Web API methods of the Slack double, each answering as Slack does (``chat.postMessage`` is
``_m_chat_postMessage``), and the HTTP entry points that authenticate, inject faults and record calls.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from bot.standins.slack.blockkit import MESSAGE_TEXT_LIMIT, VIEW_STACK_LIMIT, JsonDict
from bot.standins.slack.workspace import (
    RESPONSE_URL_LIFETIME_SECONDS,
    RESPONSE_URL_USES,
    Answer,
    ApiCall,
    Caller,
    Channel,
    MessageVersion,
    ResponseUrl,
    SlackError,
    StoredMessage,
    StoredView,
    Upload,
    UploadedFile,
    Workspace,
    as_json,
    json_copy,
    refusal,
)

# Which scope lets a token call a method; any one of those listed will do.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.permissions.info": (),
    "apps.connections.open": ("connections:write",),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.getPermalink": (),
    "conversations.open": ("im:write", "mpim:write", "channels:manage", "groups:write"),
    "conversations.info": (),  # depends on the conversation's kind; checked in the method
    "users.info": ("users:read",),
    "users.lookupByEmail": ("users:read.email",),
    "usergroups.users.list": ("usergroups:read",),
    "views.open": (),
    "views.update": (),
    "views.push": (),
    "views.publish": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "files.delete": ("files:write",),
}

# ---------------------------------------------------------------------------------------------------
# Request parsing


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        fields[name] = raw if part.get_filename() else raw.decode("utf-8", "replace")
    return fields


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


class WebApi(Workspace):
    """The workspace answering Web API calls; ``SlackApiDouble`` puts it behind HTTP."""

    # -- HTTP entry points (called by the handler threads) -------------------------------------------

    def _serve_api(self, method: str, headers: Mapping[str, str], query: str, body: bytes) -> Answer:
        params: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
        warnings: list[str] = []
        content_type = headers.get("content-type", "")
        token: str | None = None
        body_token: Any = None
        refusal: SlackError | None = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        token_in_header = token is not None
        try:
            if body:
                if content_type.startswith("application/json"):
                    if "charset" not in content_type:
                        warnings.append("missing_charset")
                    parsed = json.loads(body)
                    if not isinstance(parsed, dict):
                        raise SlackError("invalid_json")
                    body_token = parsed.pop("token", None)  # Slack does not read a token from a JSON body
                    params.update(parsed)
                elif content_type.startswith("application/x-www-form-urlencoded"):
                    params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                elif content_type.startswith("multipart/form-data"):
                    params.update(_parse_multipart(content_type, body))
                else:
                    raise SlackError("invalid_post_type")
            if token is None and isinstance(params.get("token"), str):
                token = params["token"]
        except ValueError:
            refusal = SlackError("invalid_json")
        except SlackError as caught:
            refusal = caught
        if "token" in params or body_token is not None:
            params["token"] = "[redacted]"  # noqa: S105 - the record never keeps a credential
        if refusal is not None:
            return self._finish(method, params, "none", refusal, None)

        if method not in METHOD_SCOPES:
            return self._finish(method, params, "none", SlackError("unknown_method", req_method=method), None)
        caller, kind = self._authenticate(token)
        if caller is None:
            error = {"none": "not_authed", "revoked": "token_revoked"}.get(kind, "invalid_auth")
            return self._finish(method, params, kind, SlackError(error), None)
        if (method == "apps.connections.open") != (caller.kind == "app"):
            # An app-level token opens Socket Mode connections and nothing else; no other token may.
            return self._finish(method, params, kind, SlackError("not_allowed_token_type"), caller)
        if caller.kind == "app" and not token_in_header:
            # Slack's reference: for this method the token must come in the Authorization header.
            return self._finish(method, params, kind, SlackError("invalid_auth"), None)

        delay = self._delay_for(method)
        if delay > 0:
            time.sleep(delay)  # outside the lock: a slow Slack must not stall the other HTTP threads
        held = self._hold_for(method)
        if held is not None:
            held.pass_through()  # outside the lock too
        with self._lock:
            fault = self._take_fault(method)
            if fault is not None:
                headers_out = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                injected = SlackError(fault.error, status=fault.status)
                return self._finish(method, params, kind, injected, caller, headers_out)
            accepted = METHOD_SCOPES[method]
            if accepted and not set(accepted) & set(caller.scopes):
                unscoped = SlackError("missing_scope", needed=accepted[0], provided=",".join(caller.scopes))
                return self._finish(method, params, kind, unscoped, caller)
            handler = getattr(self, "_m_" + method.replace(".", "_"))
            try:
                result = handler(params, caller)
            except SlackError as refused:
                return self._finish(method, params, kind, refused, caller)
            if warnings:
                result["warning"] = ",".join(warnings)
                result.setdefault("response_metadata", {})["warnings"] = warnings
            return self._finish(method, params, kind, result, caller)

    def _finish(
        self,
        method: str,
        params: JsonDict,
        kind: str,
        outcome: JsonDict | SlackError,
        caller: Caller | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Answer:
        headers = dict(extra_headers or {})
        if caller is not None:
            headers["x-oauth-scopes"] = ",".join(caller.scopes)
            headers["x-accepted-oauth-scopes"] = ",".join(METHOD_SCOPES.get(method, ()))
        if isinstance(outcome, SlackError):
            status, body = outcome.status, {"ok": False, "error": outcome.error, **outcome.extra}
        else:
            status, body = 200, {"ok": True, **outcome}
        with self._lock:
            self._calls.append(
                ApiCall(
                    method=method,
                    params=json_copy(params),
                    token_kind=kind,
                    status=status,
                    ok=bool(body["ok"]),
                    error=None if body["ok"] else str(body["error"]),
                    at=self.now(),
                )
            )
        return Answer(status, body, headers)

    def _serve_upload(self, key: str, body: bytes) -> Answer:
        with self._lock:
            upload = self._uploads.get(key)
            if upload is None or upload.completed:
                return Answer(404, b"Not Found")
            upload.content = body
            return Answer(200, f"OK - {len(body)}".encode())

    def _serve_response_url(self, key: str, body: bytes) -> Answer:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return Answer(400, {"ok": False, "error": "invalid_payload"})
        if not isinstance(payload, dict):
            return Answer(400, {"ok": False, "error": "invalid_payload"})
        with self._lock:
            hook = self._response_urls.get(key)
            if hook is None or self.now() - hook.issued_at > RESPONSE_URL_LIFETIME_SECONDS:
                return Answer(404, {"ok": False, "error": "expired_url"})
            if hook.uses >= RESPONSE_URL_USES:
                return Answer(404, {"ok": False, "error": "used_url"})
            hook.uses += 1
            try:
                self._respond(hook, payload)
            except SlackError as refusal:
                return Answer(400, {"ok": False, "error": refusal.error, **refusal.extra})
            return Answer(200, {"ok": True})

    def _respond(self, hook: ResponseUrl, payload: JsonDict) -> None:
        original = None
        if hook.message_ts is not None and not hook.message_is_ephemeral:
            original = self._messages.get((hook.channel, hook.message_ts))
        original_ephemeral = None
        if hook.message_ts is not None and hook.message_is_ephemeral:
            original_ephemeral = next(
                (e for e in self._ephemerals if e.message_ts == hook.message_ts and e.user == hook.user), None
            )
        if _as_bool(payload.get("delete_original", False)):
            if original is not None:
                original.deleted = True
            if original_ephemeral is not None:
                original_ephemeral.deleted = True
            return
        text, blocks = self._content(payload, require=True)
        if _as_bool(payload.get("replace_original", False)):
            if original is not None:
                original.edits.append(MessageVersion(original.text, tuple(original.blocks), self._next_ts()))
                original.text, original.blocks = text, blocks
                return
            if original_ephemeral is not None:
                original_ephemeral.edits.append(
                    MessageVersion(original_ephemeral.text, tuple(original_ephemeral.blocks), self._next_ts())
                )
                original_ephemeral.text, original_ephemeral.blocks = text, blocks
                return
        thread_ts = payload.get("thread_ts")
        if payload.get("response_type") == "in_channel":
            message = StoredMessage(
                channel=hook.channel,
                ts=self._next_ts(),
                text=text,
                blocks=blocks,
                user=self.bot_user_id,
                bot_id=self.bot_id,
            )
            self._place(message, thread_ts if isinstance(thread_ts, str) else None)
        else:
            self._add_ephemeral(
                hook.user, hook.channel, text, blocks, "response_url", thread_ts if isinstance(thread_ts, str) else None
            )

    # -- Web API methods ----------------------------------------------------------------------------

    def _m_auth_test(self, params: JsonDict, caller: Caller) -> JsonDict:
        result: JsonDict = {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "breakglass" if caller.kind == "bot" else self.user_name(self.admin_user_id),
            "team_id": self.team_id,
            "user_id": self.bot_user_id if caller.kind == "bot" else self.admin_user_id,
            "is_enterprise_install": False,
        }
        if caller.kind == "bot":
            result["bot_id"] = self.bot_id
        if self.enterprise_id:
            result["enterprise_id"] = self.enterprise_id
        return result

    def _m_apps_permissions_info(self, params: JsonDict, caller: Caller) -> JsonDict:
        empty: JsonDict = {"scopes": [], "resources": {"ids": []}}
        return {
            "info": {
                "team": {"scopes": list(caller.scopes), "resources": {"ids": [], "excluded_ids": []}},
                "app_home": copy.deepcopy(empty),
                "channel": copy.deepcopy(empty),
                "group": copy.deepcopy(empty),
                "im": copy.deepcopy(empty),
                "mpim": copy.deepcopy(empty),
            }
        }

    def _m_apps_connections_open(self, params: JsonDict, caller: Caller) -> JsonDict:
        if self._socket_mode is None:
            # Slack does not document its answer for an app with Socket Mode off; access_denied is
            # the nearest error its reference lists for this method.
            raise SlackError("access_denied")
        return {"url": self._socket_mode(self.app_id)}

    def _m_chat_postMessage(self, params: JsonDict, caller: Caller) -> JsonDict:
        channel = self._postable_channel(params.get("channel"), caller)
        text, blocks = self._content(params, require=True)
        message = StoredMessage(
            channel=channel.id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            reply_broadcast=_as_bool(params.get("reply_broadcast", False)),
            metadata=as_json(params["metadata"], "invalid_metadata_format") if params.get("metadata") else None,
            attachments=self._attachments(params),
        )
        thread_ts = params.get("thread_ts")
        self._place(message, str(thread_ts) if thread_ts not in (None, "") else None)
        return {"channel": channel.id, "ts": message.ts, "message": self._message_json(message)}

    def _m_chat_update(self, params: JsonDict, caller: Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        ts = str(params.get("ts") or "")
        found = self._messages.get((channel.id, ts))
        if found is None or found.deleted:
            raise SlackError("message_not_found")
        if found.bot_id != self.bot_id:
            raise SlackError("cant_update_message")
        # Slack keeps the previous blocks (and text) when the update leaves them out; [] removes blocks.
        text = params["text"] if params.get("text") is not None else None
        blocks = params["blocks"] if "blocks" in params and params["blocks"] is not None else None
        merged: JsonDict = {
            "text": found.text if text is None else text,
            "blocks": found.blocks if blocks is None else blocks,
        }
        if params.get("markdown_text") is not None:
            merged["markdown_text"] = params["markdown_text"]
        new_text, new_blocks = self._content(merged, require=True)
        found.edits.append(MessageVersion(found.text, tuple(copy.deepcopy(found.blocks)), self._next_ts()))
        found.text, found.blocks = new_text, new_blocks
        if params.get("attachments") is not None:
            found.attachments = self._attachments(params)
        return {"channel": channel.id, "ts": ts, "text": found.text, "message": self._message_json(found)}

    def _m_chat_delete(self, params: JsonDict, caller: Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        ts = str(params.get("ts") or "")
        found = self._messages.get((channel.id, ts))
        if found is None or found.deleted:
            raise SlackError("message_not_found")
        if found.bot_id != self.bot_id:
            raise SlackError("cant_delete_message")
        found.deleted = True
        return {"channel": channel.id, "ts": ts}

    def _m_chat_postEphemeral(self, params: JsonDict, caller: Caller) -> JsonDict:
        user = str(params.get("user") or "")
        raw = params.get("channel")
        if isinstance(raw, str) and raw[:1] in ("U", "W"):
            raise SlackError("channel_not_found")
        channel = self._visible_channel(raw)
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.bot_is_member:
            raise SlackError("not_in_channel")
        if user not in self._users:
            raise SlackError("user_not_found")
        if user not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(params, require=True)
        thread_ts = params.get("thread_ts")
        entry = self._add_ephemeral(
            user, channel.id, text, blocks, "chat.postEphemeral", str(thread_ts) if thread_ts else None
        )
        return {"message_ts": entry.message_ts}

    def _m_chat_getPermalink(self, params: JsonDict, caller: Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        ts = str(params.get("message_ts") or "")
        found = self._messages.get((channel.id, ts))
        if found is None or found.deleted:
            raise SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        if found.thread_ts and found.thread_ts != found.ts:
            link += f"?thread_ts={found.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _m_conversations_open(self, params: JsonDict, caller: Caller) -> JsonDict:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            channel = self._visible_channel(params["channel"])
            return {"channel": {"id": channel.id}}
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError(
                "internal_error", response_metadata={"messages": ["group DMs are not modelled by the double"]}
            )
        if users[0] not in self._users:
            raise SlackError("user_not_found")
        if self._users[users[0]]["is_bot"]:
            raise SlackError("cannot_dm_bot")
        existed = self.dm_channel_id(users[0]) in self._channels
        channel = self._open_dm(users[0])
        result: JsonDict = {"channel": {"id": channel.id}}
        if existed:
            result.update(no_op=True, already_open=True)
        if _as_bool(params.get("return_im", False)):
            result["channel"] = self._channel_json(channel)
        return result

    def _m_conversations_info(self, params: JsonDict, caller: Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        needed = "im:read" if channel.is_im else "groups:read" if channel.is_private else "channels:read"
        if needed not in caller.scopes:
            raise SlackError("missing_scope", needed=needed, provided=",".join(caller.scopes))
        return {"channel": self._channel_json(channel)}

    def _m_usergroups_users_list(self, params: JsonDict, caller: Caller) -> JsonDict:
        # Slack answers with every member at once (no cursor), and no_such_subteam for an unknown or
        # deleted group; disabled groups only with include_disabled.
        group = self._usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group)}

    def _m_users_lookupByEmail(self, params: JsonDict, caller: Caller) -> JsonDict:
        # Slack matches the address case-insensitively and answers users_not_found for no member.
        wanted = str(params.get("email") or "").strip().lower()
        found = next((user for user, email in self._emails.items() if email.lower() == wanted), None)
        if not wanted or found is None or found not in self._users:
            raise SlackError("users_not_found")
        return {"user": self._user_view(found, admin=caller.kind == "admin", scopes=caller.scopes)}

    def _m_users_info(self, params: JsonDict, caller: Caller) -> JsonDict:
        user = str(params.get("user") or "")
        if user not in self._users:
            raise SlackError("user_not_found")
        shown = self._user_view(user, admin=caller.kind == "admin", scopes=caller.scopes)
        if _as_bool(params.get("include_locale", False)):
            shown["locale"] = "en-US"
        return {"user": shown}

    def _m_views_open(self, params: JsonDict, caller: Caller) -> JsonDict:
        trigger = self._exchange_trigger(params)
        view = self._checked_view(params.get("view"), "modal")
        view_id = self._new_view_id()
        stored = self._stored_view(view, view_id, trigger.user, view_id)
        self._views[view_id] = StoredView(view_id, trigger.user, stored, "views.open", str(params["trigger_id"]))
        for old in self._stacks.get(trigger.user, []):
            self._views[old].is_open = False
        self._stacks[trigger.user] = [view_id]
        return {"view": stored}

    def _m_views_push(self, params: JsonDict, caller: Caller) -> JsonDict:
        trigger = self._exchange_trigger(params)
        view = self._checked_view(params.get("view"), "modal")
        stack = self._stacks.setdefault(trigger.user, [])
        if len(stack) >= VIEW_STACK_LIMIT:
            raise SlackError("push_limit_reached")
        view_id = self._new_view_id()
        stored = self._stored_view(view, view_id, trigger.user, stack[0] if stack else view_id)
        stored["previous_view_id"] = stack[-1] if stack else None
        self._views[view_id] = StoredView(view_id, trigger.user, stored, "views.push", str(params["trigger_id"]))
        stack.append(view_id)
        return {"view": stored}

    def _m_views_update(self, params: JsonDict, caller: Caller) -> JsonDict:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        found: StoredView | None = None
        if view_id:
            found = self._views.get(str(view_id))
        elif external_id:
            found = next((v for v in self._views.values() if v.view.get("external_id") == external_id), None)
        else:
            raise refusal("invalid_arguments", ["missing required field: view_id"])
        if found is None:
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != found.view.get("hash"):
            raise SlackError("hash_conflict")
        view = self._checked_view(params.get("view"), str(found.view.get("type")))
        found.view = self._stored_view(view, found.id, found.user, found.view.get("root_view_id"))
        return {"view": found.view}

    def _m_views_publish(self, params: JsonDict, caller: Caller) -> JsonDict:
        user = str(params.get("user_id") or "")
        if user not in self._users:
            raise SlackError("user_not_found")
        view = self._checked_view(params.get("view"), "home")
        view_id = self._home.get(user)
        if view_id is not None and params.get("hash") and params["hash"] != self._views[view_id].view.get("hash"):
            raise SlackError("hash_conflict")
        if view_id is None:
            view_id = self._new_view_id()
        stored = self._stored_view(view, view_id, user, None)
        self._views[view_id] = StoredView(view_id, user, stored, "views.publish", "")
        self._home[user] = view_id
        return {"view": stored}

    def _m_files_getUploadURLExternal(self, params: JsonDict, caller: Caller) -> JsonDict:
        name = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except (TypeError, ValueError) as exc:
            raise refusal("invalid_arguments", ["missing required field: length"]) from exc
        if not name:
            raise refusal("invalid_arguments", ["missing required field: filename"])
        self._counter += 1
        file_id = f"F{self._counter:010d}"
        key = secrets.token_urlsafe(18)
        self._uploads[key] = Upload(id=file_id, name=str(name), length=length)
        return {"upload_url": f"{self.base_url}/upload/v1/{key}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: JsonDict, caller: Caller) -> JsonDict:
        entries = as_json(params.get("files"), "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise refusal("invalid_arguments", ["missing required field: files"])
        by_id = {u.id: u for u in self._uploads.values()}
        uploads: list[tuple[Upload, str]] = []
        for entry in entries:
            upload = by_id.get(str(entry.get("id"))) if isinstance(entry, dict) else None
            if upload is None or upload.completed or upload.content is None:
                raise SlackError("file_not_found")
            uploads.append((upload, str(entry.get("title") or upload.name)))
        channel_ids = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            channel_ids.insert(0, str(params["channel_id"]))
        channels = [self._postable_channel(c, caller) for c in channel_ids]
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        comment = str(params["initial_comment"]) if params.get("initial_comment") else None
        if comment is not None and len(comment) > MESSAGE_TEXT_LIMIT:
            raise SlackError("msg_too_long")
        shared = []
        for upload, title in uploads:
            upload.completed = True
            shared.append(
                {
                    "id": upload.id,
                    "name": upload.name,
                    "title": title,
                    "size": len(upload.content or b""),
                    "created": int(self.now()),
                    "user": self.bot_user_id,
                    "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{upload.id}",
                }
            )
        destinations: list[Channel | None] = list(channels) or [None]
        for channel in destinations:
            for upload, title in uploads:
                self._files.append(
                    UploadedFile(
                        id=upload.id,
                        name=upload.name,
                        title=title,
                        content=upload.content or b"",
                        channel=channel.id if channel else None,
                        thread_ts=thread_ts,
                        initial_comment=comment,
                        user=self.bot_user_id,
                    )
                )
            if channel is not None:
                message = StoredMessage(
                    channel=channel.id,
                    ts=self._next_ts(),
                    text=comment or "",
                    blocks=[],
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                    files=[u.id for u, _ in uploads],
                )
                self._place(message, thread_ts)
        return {"files": shared}

    def _m_files_delete(self, params: JsonDict, caller: Caller) -> JsonDict:
        # As Slack: a bot token deletes only the files its bot uploaded; the file leaves every
        # conversation it was shared in.
        file_id = str(params.get("file") or "")
        found = [f for f in self._files if f.id == file_id]
        if not found:
            raise SlackError("file_not_found")
        if any(f.user != self.bot_user_id for f in found):
            raise SlackError("cant_delete_file")
        self._files[:] = [f for f in self._files if f.id != file_id]
        for message in self._messages.values():
            if file_id in (message.files or []):
                message.files = [f for f in message.files if f != file_id]
        return {}

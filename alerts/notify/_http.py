"""Shared pieces of the HTTP notifiers: one POST mapped to NotifyError, robot answers,
and the markdown text the DingTalk and WeCom group robots show."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from alerts.notify.errors import NotifyError
from alerts.notify.model import Notification

USER_AGENT = "spcmon-notify/1"
SEVERITY_LABEL = {"info": "提示 info", "warning": "警告 warning", "critical": "严重 critical"}


def new_client(timeout_s: float) -> httpx.AsyncClient:
    """An HTTP client for one notifier; redirects are not followed (a webhook moved is an
    error to fix in the configuration, not something to chase with a signed body)."""
    return httpx.AsyncClient(timeout=timeout_s, headers={"User-Agent": USER_AGENT})


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST ``body`` as JSON; return a 2xx response or raise ``NotifyError``.

    Network errors, 5xx and 429 are retryable; other statuses are not. Messages name
    ``what`` (the receiver), never the URL, whose query may carry a robot's token.
    """
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    try:
        response = await client.post(url, content=body, headers=merged, params=params)
    except httpx.HTTPError as exc:
        raise NotifyError(True, f"{what}: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    retryable = status == 429 or status >= 500
    excerpt = response.text[:200].replace("\n", " ")
    raise NotifyError(retryable, f"{what} answered HTTP {status}: {excerpt}")


def check_robot_answer(response: httpx.Response, what: str, retryable: Collection[int]) -> None:
    """Group robots answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero
    errcode is a failure, retryable only when it is in ``retryable`` (rate limits)."""
    try:
        answer: Any = response.json()
        errcode = int(answer["errcode"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NotifyError(False, f"{what} gave an answer without errcode: {exc}") from exc
    if errcode != 0:
        message = str(answer.get("errmsg", ""))[:200]
        raise NotifyError(errcode in retryable, f"{what} errcode {errcode}: {message}")


def robot_markdown(n: Notification, *, colour: bool) -> str:
    """The markdown both group robots show: title, severity, where, text, link.

    ``colour`` adds WeCom's ``<font color=...>`` (DingTalk's markdown does not have it).
    """
    label = SEVERITY_LABEL[n.severity]
    if colour:
        tint = {"info": "info", "warning": "warning", "critical": "warning"}[n.severity]
        label = f'<font color="{tint}">{label}</font>'
    lines = [f"### {n.title}", f"**级别 Severity:** {label}"]
    where = " / ".join(part for part in (n.line, n.process) if part)
    if where:
        lines.append(f"**产线 Line:** {where}")
    if n.characteristics:
        lines.append(f"**特性 Characteristics:** {', '.join(n.characteristics)}")
    lines.append(f"**时间 Time:** {n.to_dict()['at']}")
    lines.extend(["", n.text])
    if n.url:
        lines.extend(["", f"[打开看板 Open dashboard]({n.url})"])
    return "\n".join(lines)


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", errors="ignore") + "..."


def dumps(document: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Chinese text stays readable in receivers' logs)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

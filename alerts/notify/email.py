"""E-mail over SMTP (smtplib, run in a worker thread: one short session per message).

Subject ``[spcmon <severity>] <title>``; plain-text UTF-8 body with the text, where it
happened, the characteristics and the dashboard link. The notification key travels in
``X-Spcmon-Key`` so mail rules and tickets can de-duplicate.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from alerts.notify.errors import NotifyError
from alerts.notify.model import Notification

Security = Literal["none", "starttls", "tls"]
"""``none``: plain SMTP; ``starttls``: upgrade after EHLO (port 587); ``tls``: implicit
TLS from the first byte (port 465)."""


def build_message(n: Notification, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The e-mail for ``n``."""
    msg = EmailMessage()
    msg["Subject"] = f"[spcmon {n.severity}] {n.title}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(n.at)
    msg["Message-ID"] = make_msgid(domain="spcmon")
    msg["X-Spcmon-Key"] = n.key
    facts = [f"Severity: {n.severity}", f"Event: {n.kind}", f"Time: {n.to_dict()['at']}"]
    if n.line or n.process:
        facts.append(f"Line: {' / '.join(p for p in (n.line, n.process) if p)}")
    if n.characteristics:
        facts.append(f"Characteristics: {', '.join(n.characteristics)}")
    if n.url:
        facts.append(f"Dashboard: {n.url}")
    msg.set_content(f"{n.text}\n\n" + "\n".join(facts) + "\n")
    return msg


def _classify(exc: Exception) -> NotifyError:
    """SMTP replies 4xx are transient (retry), 5xx permanent; lost connections retry."""
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return NotifyError(False, f"{type(exc).__name__}: {exc}")  # configuration, not luck
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        transient = all(400 <= code < 500 for code in codes)
        return NotifyError(transient, f"recipients refused: {exc.recipients}")
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = exc.smtp_error
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return NotifyError(400 <= code < 500, f"SMTP server answered {code}: {text}")
    return NotifyError(True, f"{type(exc).__name__}: {exc}")


class EmailNotifier:
    """Sends each notification as one e-mail through ``host:port``.

    Login happens when ``username`` is set; ``timeout_s`` bounds each socket operation
    (seconds).
    """

    def __init__(
        self,
        name: str,
        host: str,
        sender: str,
        recipients: Sequence[str],
        *,
        port: int = 587,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        min_severity: str = "info",
        timeout_s: float = 20.0,
    ) -> None:
        if not recipients:
            raise ValueError("EmailNotifier needs at least one recipient")
        self.name = name
        self.min_severity = min_severity
        self._host, self._port, self._security = host, port, security
        self._sender, self._recipients = sender, list(recipients)
        self._username, self._password = username, password
        self._timeout_s = timeout_s

    async def send(self, n: Notification) -> None:
        message = build_message(n, self._sender, self._recipients)
        try:
            await asyncio.to_thread(self._deliver, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc

    def _deliver(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self._security == "tls":
            smtp = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
        with smtp:
            if self._security == "starttls":
                smtp.starttls(context=context)
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message, self._sender, self._recipients)

    async def aclose(self) -> None:
        """Nothing to release: each message opens and closes its own SMTP session."""

"""E-mail out: the one-time codes that prove a customer owns the address on their record."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol


class MailNotSent(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    """Plain SMTP through `smtplib`, with STARTTLS or implicit TLS when configured."""

    host: str
    port: int = 25
    sender: str = "Concierge <no-reply@localhost>"
    user: str | None = None
    password: str | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    timeout_s: float = 10.0

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        try:
            if self.security == "tls":
                context = ssl.create_default_context()
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.user and self.password:
                    client.login(self.user, self.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            # The server's words only: never the credentials or the message.
            raise MailNotSent(f"{type(error).__name__}: {str(error)[:200]}") from error

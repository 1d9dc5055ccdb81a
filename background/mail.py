"""E-mail over SMTP, configured from the environment.

OCOP_SMTP_URL    smtp://host:port (plain), smtp+starttls://user:pass@host:port,
                 smtps://user:pass@host:port (TLS from the first byte);
                 unset: no e-mail at all (notifications stay in-app).
OCOP_MAIL_FROM   the sender, e.g. "Chương trình OCOP <ocop@quangtri.gov.vn>".
OCOP_BASE_URL    where the web application is reached, for links in mails.
"""
from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

DEFAULT_SENDER = "Chương trình OCOP <ocop@localhost>"
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
SECURITY_BY_SCHEME = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "ssl": 465}
TIMEOUT_SECONDS = 30


class MailUnavailable(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    security: str  # plain | starttls | ssl
    username: str | None
    password: str | None
    sender: str

    @classmethod
    def from_environment(cls) -> MailSettings | None:
        """The configured server, or None when OCOP_SMTP_URL is unset."""
        url = os.environ.get("OCOP_SMTP_URL", "").strip()
        if not url:
            return None
        parts = urlsplit(url)
        security = SECURITY_BY_SCHEME.get(parts.scheme)
        if security is None or not parts.hostname:
            raise ValueError(f"OCOP_SMTP_URL: expected smtp://, smtp+starttls:// or smtps://host:port, got {url!r}")
        return cls(host=parts.hostname, port=parts.port or DEFAULT_PORTS[security], security=security,
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   sender=os.environ.get("OCOP_MAIL_FROM", "").strip() or DEFAULT_SENDER)


def mail_domain() -> str:
    """The sender's domain: names Message-IDs and calendar UIDs, so they
    stay the same from one run (and one machine) to the next."""
    address = parseaddr(os.environ.get("OCOP_MAIL_FROM", "") or DEFAULT_SENDER)[1]
    return address.rpartition("@")[2] or "localhost"


def mailbox(name: str, address: str) -> str | None:
    """A To header for the user, or None for an address that cannot be one
    (callers skip that user with a log line instead of failing forever)."""
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (HeaderParseError, ValueError, IndexError):
        return None


def public_url(path: str) -> str:
    return os.environ.get("OCOP_BASE_URL", DEFAULT_BASE_URL).rstrip("/") + path


class Mailer:
    """One SMTP connection for a run of a job, opened at the first message.
    Once the server cannot be reached, later messages of the same run fail
    at once instead of waiting for the same timeout again."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._unreachable: str | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.settings.sender
        smtp = self._connection()
        try:
            smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as err:
            self.close()  # the next message opens a fresh connection
            raise MailUnavailable(f"SMTP {self.settings.host}:{self.settings.port}: {err}") from err

    def _connection(self) -> smtplib.SMTP:
        if self._unreachable:
            raise MailUnavailable(self._unreachable)
        if self._smtp is not None:
            return self._smtp
        s = self.settings
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT_SECONDS,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_SECONDS)
                if s.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password or "")
        except (smtplib.SMTPException, OSError) as err:
            self._unreachable = f"SMTP {s.host}:{s.port}: {err}"
            raise MailUnavailable(self._unreachable) from err
        self._smtp = smtp
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None

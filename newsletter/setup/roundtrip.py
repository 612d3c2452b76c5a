"""The doctor's round trip: a test copy of the issue carrying a unique token goes to the test
address over SMTP, is found again over IMAP (the configured folder, then the junk folders),
and what arrived is judged: the receiving server's Authentication-Results (spf, dkim,
dmarc), the HTML's size against Gmail's clip, and the List-Unsubscribe headers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr

from ..common.config import Settings
from ..common.errors import ConfigError, NewsletterError
from ..common.limits import GMAIL_CLIP_BYTES, GMAIL_CLIP_KB, HTML_WARN_BYTES
from ..domain.dnschecks import aligned
from ..domain.findings import CheckId, Finding, Problem, failed, passed, skipped, warned
from ..mail.envelope import Envelope
from ..mail.failures import SendFailure
from ..mail.imap import Mailbox
from ..mail.providers import info, provider_from_smtp_host
from ..mail.smtp import Transport

TOKEN_HEADER = "X-Newsletter-Doctor"
JUNK_FOLDERS = ("Junk", "Junk E-mail", "Junk Email", "Spam", "[Gmail]/Spam", "Bulk Mail")
POLL_EVERY = 3.0  # seconds between looks into the mailbox
AFTER_SEND = (CheckId.RECEIVED_SPF, CheckId.RECEIVED_DKIM, CheckId.RECEIVED_DMARC)
ON_ARRIVAL = (*AFTER_SEND, CheckId.SIZE, CheckId.LIST_UNSUBSCRIBE)


@dataclass(frozen=True)
class Arrived:
    raw: bytes
    folder: str
    junk: bool
    waited: float


def _skip_rest(reason: str, problem: Problem) -> list[Finding]:
    return [skipped(check, reason, problem) for check in ON_ARRIVAL]


def round_trip_checks(
    settings: Settings,
    slug: str | None,
    *,
    to: str | None = None,
    timeout: float = 120.0,
    transport_factory: Callable[[], Transport] | None = None,
    open_mailbox: Callable[[], Mailbox] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Finding]:
    """Send, find, judge. Collaborators default to the real SMTP and IMAP of the settings."""
    from ..content.issuefiles import issue_slug, newest_issue
    from ..sending import campaign as campaign_mod
    from ..sending.plan import test_recipient
    from ..sending.testcopy import test_addresses

    try:
        slug = (
            issue_slug(slug, settings.issues_dir)
            if slug
            else newest_issue(settings.issues_dir).stem
        )
        camp = campaign_mod.prepare(settings, slug, allow_example=True)
    except NewsletterError as error:
        return [
            failed(
                CheckId.ROUND_TRIP,
                Problem.NO_ISSUE,
                f"no test copy to send: {error}",
                "write an issue first (newsletter new SLUG), or run doctor --no-send",
            ),
            *_skip_rest("nothing was sent", Problem.NO_ISSUE),
        ]
    addresses = [to] if to else test_addresses(settings, ())[0]
    if not addresses:
        return [
            failed(
                CheckId.ROUND_TRIP,
                Problem.MISSING_SETTING,
                "no address to send the test copy to",
                "set NEWSLETTER_TEST_TO to a mailbox NEWSLETTER_IMAP_* reads (newsletter setup)",
                "NEWSLETTER_TEST_TO",
            ),
            *_skip_rest("nothing was sent", Problem.MISSING_SETTING),
        ]
    token = secrets.token_hex(8)
    builder = camp.builder(subject_prefix=f"[TEST doctor {token}] ")
    member = test_recipient(camp, None)
    built = builder.build(member, to=addresses[0], unsubscribe_as=addresses[0])
    probe = Envelope(
        built.to,
        0,
        built.message_id,
        f"{TOKEN_HEADER}: {token}\r\n".encode("ascii") + built.data,
    )
    try:
        _send(settings, probe, camp.sender.address, transport_factory)
    except (NewsletterError, SendFailure) as error:
        reply = error.reply if isinstance(error, SendFailure) else str(error)
        return [
            failed(
                CheckId.ROUND_TRIP,
                Problem.SEND_FAILED,
                f"the test copy to {addresses[0]} was not sent: {reply}",
                "fix what the error names (newsletter send SLUG --test shows the same)",
                "NEWSLETTER_SMTP_HOST",
            ),
            *_skip_rest("nothing was sent", Problem.SEND_FAILED),
        ]
    try:
        opener = open_mailbox or _mailbox_opener(settings)
        arrived = _find(opener, token, timeout, clock, sleep, settings.imap_folder)
    except ConfigError as error:
        return [
            warned(
                CheckId.ROUND_TRIP,
                Problem.MISSING_SETTING,
                f"the test copy was sent to {addresses[0]}, but cannot be read back: {error}",
                "set NEWSLETTER_IMAP_HOST (newsletter setup asks) to let doctor read it",
                error.setting or "NEWSLETTER_IMAP_HOST",
            ),
            *_skip_rest("the mailbox cannot be read", Problem.MISSING_SETTING),
        ]
    except NewsletterError as error:
        return [
            failed(
                CheckId.ROUND_TRIP,
                Problem.NOT_FOUND,
                f"the test copy was sent, but the mailbox cannot be read: {error}",
                "check NEWSLETTER_IMAP_* (newsletter feedback --dry-run shows the same)",
                "NEWSLETTER_IMAP_HOST",
            ),
            *_skip_rest("the mailbox cannot be read", Problem.NOT_FOUND),
        ]
    if arrived is None:
        return [
            failed(
                CheckId.ROUND_TRIP,
                Problem.NOT_FOUND,
                f"the test copy (token {token}) sent to {addresses[0]} did not arrive in "
                f"{timeout:g} s",
                "make NEWSLETTER_TEST_TO the mailbox NEWSLETTER_IMAP_* reads, look in its "
                "spam folder, or wait longer: doctor --timeout 300",
                "NEWSLETTER_TEST_TO",
            ),
            *_skip_rest("the copy did not arrive", Problem.NOT_FOUND),
        ]
    return judge(arrived, settings)


def _send(
    settings: Settings,
    probe: Envelope,
    sender: str,
    factory: Callable[[], Transport] | None,
) -> None:
    if factory is None:
        from ..mail.smtp import transport_factory

        settings.require_smtp()
        factory = transport_factory(settings)
    transport = factory()
    try:
        transport.connect()
        transport.send(probe, sender)
    finally:
        transport.close()


def _mailbox_opener(settings: Settings) -> Callable[[], Mailbox]:
    from ..mail.imap import authenticator_for, connect, imap_params

    params = imap_params(settings)  # ConfigError: no IMAP server configured
    login = authenticator_for(settings, params)
    return lambda: connect(params, login)


def _find(
    opener: Callable[[], Mailbox],
    token: str,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    folder: str,
) -> Arrived | None:
    """Poll the folder, then the junk folders, until the copy is there or time is up."""
    start = clock()
    while True:
        mailbox = opener()
        try:
            names = set(mailbox.folder_names())
            for name, junk in ((folder, False), *((j, True) for j in JUNK_FOLDERS)):
                if junk and name not in names:
                    continue
                mailbox.open_folder(name, readonly=True)
                for uid in mailbox.search_subject(token):
                    raw = mailbox.fetch(uid)
                    if raw and token.encode() in raw:
                        return Arrived(raw, name, junk, clock() - start)
        finally:
            mailbox.close()
        if clock() - start >= timeout:
            return None
        sleep(min(POLL_EVERY, max(0.0, timeout - (clock() - start))))


def _auth_results(message: EmailMessage) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """method -> [(result, properties)] from the topmost Authentication-Results header
    that parses and says anything about spf, dkim or dmarc (the receiving server's own)."""
    import authres

    for value in message.get_all("Authentication-Results") or []:
        try:
            header = authres.AuthenticationResultsHeader.parse(
                "Authentication-Results: " + " ".join(str(value).split())
            )
        except Exception:  # noqa: BLE001 - authres raises its own SyntaxError kinds
            continue
        found: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for result in header.results:
            props = {f"{p.type}.{p.name}": str(p.value) for p in result.properties}
            found.setdefault(str(result.method).lower(), []).append(
                (str(result.result).lower(), props)
            )
        if found.keys() & {"spf", "dkim", "dmarc"}:
            return found
    return {}


def judge(arrived: Arrived, settings: Settings) -> list[Finding]:
    """The findings on what arrived."""
    message = message_from_bytes(arrived.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    from_domain = parseaddr(str(message.get("From", "")))[1].rpartition("@")[2].lower()
    where = f"{arrived.folder} after {arrived.waited:.0f} s"
    findings = [
        warned(
            CheckId.ROUND_TRIP,
            Problem.IN_JUNK,
            f"the test copy arrived, but in the junk folder ({where})",
            "fix the failures and warnings below; then mark it 'not junk' and run doctor again",
        )
        if arrived.junk
        else passed(CheckId.ROUND_TRIP, f"the test copy arrived in {where}")
    ]
    results = _auth_results(message)
    if not results:
        findings += [
            skipped(
                check,
                "the receiving server added no Authentication-Results (mail inside one "
                "organisation is often not checked): send the copy to an outside mailbox "
                "with doctor --to",
                Problem.NO_AUTH_RESULTS,
            )
            for check in AFTER_SEND
        ]
    else:
        carrier = info(provider_from_smtp_host(settings.smtp_host))
        findings += [
            _received_spf(results, from_domain, carrier.spf_include),
            _received_dkim(results, from_domain, carrier.dkim_how),
            _received_dmarc(results, from_domain),
        ]
    findings += [_size(message), _list_unsubscribe(message)]
    return findings


def _verdict(results: dict, method: str) -> tuple[str, dict[str, str]]:
    entries = results.get(method) or [("none", {})]
    passing = [e for e in entries if e[0] == "pass"]
    return (passing or entries)[0]


def _received_spf(results: dict, from_domain: str, include: str) -> Finding:
    verdict, props = _verdict(results, "spf")
    domain = props.get("smtp.mailfrom", "").rpartition("@")[2] or from_domain
    if verdict == "pass":
        return passed(CheckId.RECEIVED_SPF, f"the receiving server says spf=pass ({domain})")
    fix = (
        f"add include:{include} to the SPF record of {domain}"
        if include
        else f"authorise your SMTP server in the SPF record of {domain}"
    )
    if verdict in ("neutral", "none"):
        return warned(
            CheckId.RECEIVED_SPF,
            Problem.VERDICT,
            f"the receiving server says spf={verdict} ({domain})",
            fix,
            domain,
        )
    return failed(
        CheckId.RECEIVED_SPF,
        Problem.VERDICT,
        f"the receiving server says spf={verdict} ({domain})",
        fix,
        domain,
    )


def _received_dkim(results: dict, from_domain: str, how: str) -> Finding:
    entries = results.get("dkim") or [("none", {})]
    good = [props for verdict, props in entries if verdict == "pass"]
    fix = f"publish the DKIM key for {from_domain} and switch signing on ({how})"
    for props in good:
        if aligned(props.get("header.d", ""), from_domain, "r"):
            return passed(
                CheckId.RECEIVED_DKIM,
                f"the receiving server says dkim=pass, signed as {props.get('header.d')}",
            )
    if good:
        signer = good[0].get("header.d", "another domain")
        return warned(
            CheckId.RECEIVED_DKIM,
            Problem.UNALIGNED_SIGNATURE,
            f"dkim=pass, but signed as {signer}, which does not align with From {from_domain}",
            fix,
            from_domain,
        )
    return failed(
        CheckId.RECEIVED_DKIM,
        Problem.VERDICT,
        f"the receiving server says dkim={entries[0][0]}",
        fix,
        from_domain,
    )


def _received_dmarc(results: dict, from_domain: str) -> Finding:
    verdict, _ = _verdict(results, "dmarc")
    if verdict == "pass":
        return passed(CheckId.RECEIVED_DMARC, "the receiving server says dmarc=pass")
    fix = (
        f"publish a DMARC record at _dmarc.{from_domain}"
        if verdict == "none"
        else "make DKIM or SPF align with the From domain (see the dkim, spf and alignment "
        "checks above)"
    )
    return failed(
        CheckId.RECEIVED_DMARC,
        Problem.VERDICT,
        f"the receiving server says dmarc={verdict}: Gmail, Yahoo and Outlook.com reject or "
        "junk such mail",
        fix,
        from_domain,
    )


def _size(message: EmailMessage) -> Finding:
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return skipped(CheckId.SIZE, "the copy has no HTML part", Problem.NONE)
    size = len(part.get_content().encode("utf-8"))
    shown = f"{size / 1024:.0f} KB"
    fix = "shorten the issue, or move long articles to the web archive and link to them"
    if size > GMAIL_CLIP_BYTES:
        return failed(
            CheckId.SIZE,
            Problem.CLIPPED,
            f"the HTML is {shown}: Gmail cuts messages over {GMAIL_CLIP_KB} KB ('[Message "
            "clipped]'), hiding the end and the unsubscribe link",
            fix,
        )
    if size > HTML_WARN_BYTES:
        return warned(
            CheckId.SIZE, Problem.NEAR_CLIP, f"the HTML is {shown}, near Gmail's clip", fix
        )
    return passed(CheckId.SIZE, f"the HTML is {shown} of Gmail's {GMAIL_CLIP_KB} KB clip")


def _list_unsubscribe(message: EmailMessage) -> Finding:
    header = message.get("List-Unsubscribe")
    post = message.get("List-Unsubscribe-Post")
    if not header:
        return failed(
            CheckId.LIST_UNSUBSCRIBE,
            Problem.NO_LIST_UNSUBSCRIBE,
            "the copy arrived without a List-Unsubscribe header",
            "set NEWSLETTER_UNSUBSCRIBE_URL or NEWSLETTER_UNSUBSCRIBE_MAILTO",
            "NEWSLETTER_UNSUBSCRIBE_URL",
        )
    if not post:
        return warned(
            CheckId.LIST_UNSUBSCRIBE,
            Problem.NO_ONE_CLICK,
            "List-Unsubscribe arrived, but no List-Unsubscribe-Post: no one-click "
            "unsubscribe (RFC 8058), which Gmail and Yahoo require of bulk senders",
            "set NEWSLETTER_UNSUBSCRIBE_URL to an https page that unsubscribes on POST",
            "NEWSLETTER_UNSUBSCRIBE_URL",
        )
    return passed(
        CheckId.LIST_UNSUBSCRIBE,
        "List-Unsubscribe and List-Unsubscribe-Post (one-click) both arrived",
    )

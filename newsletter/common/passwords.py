"""The SMTP password in the operating system's keyring (macOS Keychain, Windows Credential
Locker, the Secret Service on Linux), through the ``keyring`` library.

``newsletter setup`` stores it there where a keyring is available, and writes
``NEWSLETTER_PASSWORD_STORE=keyring`` so that the send and ``feedback`` read it back
(``config.load_settings``). The password is never returned in an error message.
"""

from __future__ import annotations

KEYRING = "keyring"  # NEWSLETTER_PASSWORD_STORE: the password is in the keyring
ENV = "env"  # ... in .env or the environment (the default)
STORES = (ENV, KEYRING)


class KeyringUnavailable(Exception):
    """No usable keyring, or it refused (locked, no permission)."""


def service_name(smtp_host: str) -> str:
    """The keyring entry's service: one per SMTP server, the username is the account."""
    return f"newsletter SMTP {smtp_host.lower().rstrip('.')}"


def keyring_available() -> bool:
    """True when a real keyring backend is there (not keyring's "fail" or a null one)."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken backend configuration is "no keyring"
        return False
    return not isinstance(backend, (fail.Keyring, null.Keyring))


def read_password(smtp_host: str, username: str) -> str:
    """The stored password ("" when there is none); KeyringUnavailable when it cannot ask."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(service_name(smtp_host), username or "") or ""
    except KeyringError as error:
        raise KeyringUnavailable(type(error).__name__) from None


def store_password(smtp_host: str, username: str, password: str) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordSetError

    try:
        keyring.set_password(service_name(smtp_host), username or "", password)
    except (KeyringError, PasswordSetError) as error:
        raise KeyringUnavailable(type(error).__name__) from None

"""Getting a chair from nothing to a trusted first send: ``setup`` (the settings asked for
once, written to ``.env`` and the keyring) and ``doctor`` (one report on the set-up, the
sending domain's DNS and a real round trip over SMTP and IMAP).

May import: common, content, domain, feedback, mail, members, records, sending, signin.
"""

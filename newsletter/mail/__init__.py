"""The wire: one finished message (envelope), the SMTP transport, the IMAP mailbox, and
what servers' refusals mean.

May import: common, content, members, signin.
"""

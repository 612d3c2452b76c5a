"""The wire: one finished message (envelope), the SMTP transport (``connect``: set-up;
``smtp``: the transactions; ``writes``: a write that tells what went out; ``failures``:
what can go wrong, typed), the IMAP mailbox, and
what servers' words mean (``replies``: set-up replies and TLS errors; ``refusals``: refusals
of the sender).

May import: common, content, members, signin.
"""

"""Signing in to the mailbox with OAuth 2.0: Microsoft (MSAL), Google (Authlib), the IT
department's token command, the loopback listener and the token store.

May import: common.
"""

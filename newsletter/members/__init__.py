"""The people: the members list (CSV), the suppression list, and unsubscribe tokens.

May import: common.
"""

"""A send from plan to summary: the per-member message, the campaign, the pre-flight
checks, the send policy, the delivery engine, the daily cap and the status report.

May import: common, content, domain, mail, members, records, signin.
"""

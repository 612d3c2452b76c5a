"""A send from plan to summary: the per-member message, the campaign, the pre-flight
checks, the send policy, the delivery engine (``engine``: the run; ``workers``: its
threads, claims and transactions; ``pacing``: rate limit and back-off; ``outcomes``: what
it reports; ``stops``: why a run stopped early, typed), the daily cap and the status report.

May import: common, content, domain, mail, members, records, signin.
"""

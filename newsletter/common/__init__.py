"""What every room shares: the error family and exit status, settings, limits, CSV files,
atomic writes and output folders.

May import: nothing.
"""

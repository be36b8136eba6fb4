"""Use cases: one function each, guards first, then the write, then its side effects.

Services take a Context and plain values, raise posterr.errors, and know nothing of HTTP.
"""

"""Reading pages the way a client does: the ids on a page, and the chain of Link rel="next" headers."""

from __future__ import annotations

import re


def next_url(response) -> str | None:
    link = response.headers.get("Link")
    return re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None


def walk(api, url: str, max_pages: int = 500) -> list[list[int]]:
    """The ids of every page, following Link headers (a chain that does not end fails)."""
    pages = []
    while url:
        assert len(pages) < max_pages, f"still a Link after {max_pages} pages: {pages[-3:]}"
        response = api.get(url)
        assert response.status_code == 200, response.text
        pages.append([post["id"] for post in response.json()])
        url = next_url(response)
    return pages


def ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [post["id"] for post in response.json()]

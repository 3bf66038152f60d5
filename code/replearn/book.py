"""Put numbers computed in a chapter's cells into its prose.

`glue("ae_test_mse", value)` stores the value for the book's `{glue:text}` role (myst-nb) and
returns it. Where myst-nb is not installed (Colab), it only returns the value.
"""
from __future__ import annotations


def glue(name: str, value):
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=False)
    return value

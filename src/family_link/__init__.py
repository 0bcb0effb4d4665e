"""family_link: finds children (and expectant mothers) whose GP record lacks the
family-level safeguarding alert their household's codes call for.

The library is the product; ``family-link`` is a thin command line over it. Heavy modules
(pandas) are imported by the functions that need them, so ``family-link --help`` is quick.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

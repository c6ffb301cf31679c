"""jointspace: semantic image search where words and images share one learnt vector space."""

__version__ = "0.1.0"

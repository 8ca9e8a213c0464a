"""tierserve: an Allen Brain Atlas compatible download service for huge 2-D section images."""

__version__ = "0.1.0"

__all__ = ["__version__"]

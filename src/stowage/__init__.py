"""stowage: a self-hosted object store speaking the Runloop and Djinn CI Objects APIs."""

__version__ = "0.1.0"

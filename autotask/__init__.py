"""autotask: background tasks for Django that need nothing but its database."""

__version__ = "1.0.0.dev0"

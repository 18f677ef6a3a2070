"""Builtin plugins: registered exactly like third-party plugins, after them."""

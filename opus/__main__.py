"""``python -m opus``: the same as the ``opus`` command."""

from .cli import main

if __name__ == "__main__":
    main()

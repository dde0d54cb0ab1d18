"""``python -m ziggeo_async``: the ``ziggeo-async`` command line."""

from .cli import main

raise SystemExit(main())

"""CLI subcommands: one module per command, each with ``add_parser(subparsers)`` and ``run(args) -> int``.

Modules must keep heavy imports (torch, timm) inside ``run`` so that ``repro --help`` stays fast.
"""

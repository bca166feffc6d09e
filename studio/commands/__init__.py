"""The ``studio`` subcommands, grouped by what they do; each module registers its
commands on ``studio.cli.app`` when imported."""

"""How the command lines talk to a user: one-line errors, --help with each default once, one-line warnings.

Only the standard library, so that light commands (the data converters) can use it without importing torch.
"""
import argparse
import sys
import warnings


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default once: not when its help already names it, nor an empty one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.default == "":
            return text
        return super()._get_help_string(action)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag ends in one line naming the problem (no usage block), exit code 2;
    --help gives each flag's default (DefaultsHelpFormatter)."""

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        sys.stderr.write(f"error: {message} (see --help)\n")
        sys.exit(2)


def warnings_as_one_line():
    """Command lines: show each warning as one "warning: ..." line on stderr (no file, line and source)."""
    warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"

"""Mistakes a user can fix. The command line prints them as one line and exits with status 2.

    raise UserError("parameter 'device' = 'cuda': torch sees no CUDA device; use 'cpu' or 'auto'")

Every layer raises a subclass of :class:`UserError` for a bad parameter, file or
folder, so the command line needs one ``except`` and never shows a traceback
for them (``--debug`` does).
"""


class UserError(Exception):
    """A mistake the user can fix; its message names the parameter or file and what is accepted."""

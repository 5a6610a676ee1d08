"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (unknown name, impossible argument, missing data...).

    The message must say what is wrong and how to fix it, in one line.
    """

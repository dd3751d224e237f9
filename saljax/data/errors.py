"""One error type for bad input data, always naming the file (and CSV row) at fault."""


class DataError(ValueError):
    """Input data that cannot be read or does not make sense, with the file and row named."""

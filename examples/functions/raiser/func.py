"""Always fails: the record gets status "error", error_type "ValueError" and a traceback."""


def main(value=None):
    raise ValueError(f"cannot handle {value!r}")

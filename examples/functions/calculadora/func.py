"""A calculator: main(10, 20) -> 30; main(10, 20, "mul") -> 200."""

OPERATIONS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


def main(a, b, op="add"):
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; use one of {', '.join(OPERATIONS)}")
    return OPERATIONS[op](a, b)

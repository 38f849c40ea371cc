"""Uses a package from requirements.txt: main("Hello World!") -> "hello-world"."""
from slugify import slugify


def main(text):
    return slugify(text)

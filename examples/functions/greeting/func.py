"""A greeting: main("Ada") -> "Hello, Ada!"; main("Ada", lang="pt") -> "Olá, Ada!"."""

GREETINGS = {"en": "Hello", "pt": "Olá", "es": "Hola", "de": "Hallo"}


def main(name="world", lang="en"):
    return f"{GREETINGS.get(lang, GREETINGS['en'])}, {name}!"

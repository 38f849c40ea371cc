"""python3 -m libfaas: the command-line client (see libfaas.cli)."""
import sys

from .cli import main

sys.exit(main())

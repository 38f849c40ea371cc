"""The command-line client: deploy a folder, invoke, tail logs, list, delete, versions, settings, status, and
import what the original servers kept.

It drives an engine on the data dir directly, so it works beside running servers that share that data dir (they
pick up its uploads within a second), and with no server at all; or, with --url (FAAS_URL), a faas-http server
anywhere, through its HTTP API (libfaas.remote).
"""
import argparse
import getpass
import json
import os
import pathlib
import sys
import time

from . import Engine, Error
from .remote import RemoteEngine, RemoteError

EXAMPLES = """examples:
  python3 -m libfaas deploy examples/functions/calculadora
  python3 -m libfaas invoke calculadora 10 20 '"mul"'
  python3 -m libfaas invoke calculadora --args '[10, 20]' --kwargs '{"op": "sub"}'
  python3 -m libfaas logs calculadora --limit 5 --follow
  FAAS_URL=http://edge-1:8080 python3 -m libfaas list          # a remote server (FAAS_HTTP_PASSWORD, or asked)
  python3 -m libfaas settings calculadora --set timeout=5 --env MODE=fast --secret API_TOKEN
  python3 -m libfaas versions calculadora && python3 -m libfaas rollback calculadora 1
  python3 -m libfaas --data-dir faas-data import ../old-server      # its functions/ and data/*.json
"""


def parse_value(text):
    """A command-line argument as JSON when it is JSON (10, 2.5, [1], "s", null), otherwise as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_json(text, kind, what):
    try:
        value = json.loads(text)
    except ValueError as e:
        raise SystemExit(f"error: {what} is not JSON: {e}")
    if not isinstance(value, kind):
        raise SystemExit(f"error: {what} must be a JSON {'array' if kind is list else 'object'}")
    return value


def print_json(value):
    print(json.dumps(value, indent=2, ensure_ascii=False))


def deploy(engine, options):
    folder = pathlib.Path(options.folder)
    code_path = folder / "func.py"
    if not code_path.is_file():
        raise SystemExit(f"error: {code_path} does not exist")
    requirements_path = folder / "requirements.txt"
    requirements = requirements_path.read_text() if requirements_path.is_file() else None
    name = options.name or folder.resolve().name
    started = time.monotonic()
    if requirements is not None:  # pip may take a while: say so, and how long it took
        print(f"uploading {name}: installing its requirements…", file=sys.stderr, flush=True)
    info = engine.upload(name, code_path.read_bytes(), requirements)
    if requirements is not None:
        print(f"uploaded {name} v{info['version']} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    print_json(info)
    return 0


def invoke(engine, options):
    args = [parse_value(value) for value in options.values]
    if options.args is not None:
        args = parse_json(options.args, list, "--args") + args
    kwargs = parse_json(options.kwargs, dict, "--kwargs") if options.kwargs is not None else None
    if options.stream:  # a generator's chunks, one JSON line each as it is yielded, then the record
        chunks = engine.stream(options.name, args, kwargs, options.request_id, options.version)
        for chunk in chunks:
            print(json.dumps(chunk, ensure_ascii=False), flush=True)
        record = chunks.record
    else:
        record = engine.invoke(options.name, args, kwargs, options.request_id, options.version)
    print_json(record)
    return 0 if record["status"] == "success" else 1


def logs(engine, options):
    if options.follow and isinstance(engine, RemoteEngine):
        # The server pushes each record as it commits (an event stream), the newest `limit` first.
        try:
            for record in engine.follow(options.name, backlog=options.limit or 1000):
                print(json.dumps(record, ensure_ascii=False), flush=True)
        except KeyboardInterrupt:
            pass
        return 0
    seen = []
    for record in engine.logs(options.name, options.limit):
        print(json.dumps(record, ensure_ascii=False))
        seen.append(record["id"])
    if not options.follow:
        return 0
    sys.stdout.flush()
    # Records arrive from other processes too (servers sharing the data dir): poll the newest ones.
    window = 200
    try:
        while True:
            time.sleep(options.interval)
            known = set(seen)
            for record in engine.logs(options.name, window):
                if record["id"] not in known:
                    print(json.dumps(record, ensure_ascii=False))
                    seen.append(record["id"])
            del seen[: max(0, len(seen) - 4 * window)]
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0


def list_functions(engine, options):
    functions = engine.list()
    if options.json:
        print_json(functions)
    else:
        for info in functions:
            print(f"{info['name']}\tv{info['version']}\t{info['updated_at']}"
                  f"{chr(9) + 'requirements' if info['has_requirements'] else ''}")
    return 0


def delete(engine, options):
    engine.remove(options.name)
    print(f"deleted {options.name}")
    return 0


def split_assignment(text, option):
    name, equals, value = text.partition("=")
    if not name:
        raise SystemExit(f"error: {option} takes NAME=VALUE, not {text!r}")
    return name, equals, value


def versions(engine, options):
    kept = engine.versions(options.name)
    if options.json:
        print_json(kept)
    else:
        for version in kept:
            print(f"v{version['version']}\t{version['created_at']}\t{version['code_sha256'][:12]}"
                  f"{chr(9) + 'current' if version['current'] else ''}")
    return 0


def rollback(engine, options):
    print_json(engine.rollback(options.name, options.version))
    return 0


def settings(engine, options):
    patch = {}
    for assignment in options.set:
        key, equals, value = split_assignment(assignment, "--set")
        if not equals:
            raise SystemExit("error: --set takes KEY=VALUE (VALUE as JSON; null for the server's default)")
        patch[key] = parse_value(value)
    env, secrets = {}, {}
    for assignment in options.env:
        name, equals, value = split_assignment(assignment, "--env")
        env[name] = value if equals else None  # NAME alone removes it
    for assignment in options.secret:
        name, equals, value = split_assignment(assignment, "--secret")
        if not equals:  # asked for, so the value stays out of the shell's history
            value = getpass.getpass(f"value of secret {name}: ") if sys.stdin.isatty() else sys.stdin.readline()
            value = value.rstrip("\n")
        secrets[name] = value
    for name in options.remove_secret:
        secrets[name] = None
    if env:
        patch["env"] = env
    if secrets:
        patch["secrets"] = secrets
    print_json(engine.settings(options.name, **patch))
    return 0


def status(engine, options):
    print_json(engine.status())
    return 0


def read_json_file(path, skipped):
    """The JSON in `path`, or None (noted in `skipped`) when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        skipped.append((str(path), f"unreadable: {e}"))
        return None


def records_by_function(logs, skipped):
    """The original data/logs.json as {name: [records]}: an object of arrays keyed by function, or one array of
    records each naming its function."""
    out = {}
    if isinstance(logs, dict):
        for name, records in logs.items():
            if isinstance(records, list):
                out.setdefault(name, []).extend(records)
            else:
                skipped.append((f"logs of {name}", "not an array of records"))
    elif isinstance(logs, list):
        for record in logs:
            name = record.get("function") if isinstance(record, dict) else None
            if isinstance(name, str):
                out.setdefault(name, []).append(record)
            else:
                skipped.append(("a record of data/logs.json", "names no function"))
    elif logs is not None:
        skipped.append(("data/logs.json", "neither an object nor an array"))
    return out


def import_original(engine, options):
    """Brings over what an original Flask or paho-mqtt server kept: functions/{name}/func.py (and
    requirements.txt), data/functions.json (which functions there were) and data/logs.json (their records)."""
    root = pathlib.Path(options.folder)
    functions_dir, data_dir = root / "functions", root / "data"
    if not functions_dir.is_dir() and not data_dir.is_dir():
        raise SystemExit(f"error: {root} has neither functions/ nor data/: not an original server's folder")
    skipped = []
    listed = read_json_file(data_dir / "functions.json", skipped)
    listed_names = set()
    if isinstance(listed, dict):
        listed_names = set(listed)
    elif isinstance(listed, list):
        listed_names = {f if isinstance(f, str) else f.get("name") for f in listed if isinstance(f, (str, dict))}
    records = records_by_function(read_json_file(data_dir / "logs.json", skipped), skipped)
    folders = {p.name for p in functions_dir.iterdir() if p.is_dir()} if functions_dir.is_dir() else set()
    imported = 0
    for name in sorted(n for n in folders | listed_names | set(records) if isinstance(n, str)):
        code_path = functions_dir / name / "func.py"
        if not code_path.is_file():
            skipped.append((name, f"no {code_path.relative_to(root)}"))
            continue
        requirements_path = functions_dir / name / "requirements.txt"
        requirements = requirements_path.read_text() if requirements_path.is_file() else None
        try:
            info = engine.upload(name, code_path.read_bytes(), requirements)
        except Error as e:
            skipped.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        its_records = records.get(name, [])
        kept = [r for r in its_records if isinstance(r, dict)]
        if len(kept) < len(its_records):
            skipped.append((f"{len(its_records) - len(kept)} records of {name}", "not JSON objects"))
        added = engine.import_records(name, kept) if kept else 0
        imported += 1
        print(f"imported {name}: version {info['version']}, {added} of {len(kept)} records added"
              + (" (the others were there already)" if added < len(kept) else ""))
    for what, why in skipped:
        print(f"skipped {what}: {why}")
    print(f"{imported} functions imported, {len(skipped)} items skipped")
    return 0 if imported or not skipped else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python3 -m libfaas", description="Deploy, invoke and inspect libfaas functions.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("FAAS_DATA_DIR", "faas-data"),
                        help="the data dir the servers use (env FAAS_DATA_DIR, default ./faas-data)")
    parser.add_argument("--store", default=os.environ.get("FAAS_STORE", "sqlite"),
                        help="where functions and records are kept: sqlite (in the data dir) or the cluster's "
                             "PostgreSQL URI (env FAAS_STORE)")
    parser.add_argument("--url", default=os.environ.get("FAAS_URL"),
                        help="drive the faas-http server at this URL instead of a data dir (env FAAS_URL); "
                             "credentials from FAAS_HTTP_USER (default admin) and FAAS_HTTP_PASSWORD, else asked")
    parser.add_argument("--isolation", default=os.environ.get("FAAS_ISOLATION", "inprocess"),
                        choices=["inprocess", "process"], help="where invoke runs the function (env FAAS_ISOLATION)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("FAAS_TIMEOUT", "30")),
                        help="seconds per invocation (env FAAS_TIMEOUT, default 30)")
    parser.add_argument("--python", default="/usr/bin/python3",
                        help="the interpreter that builds virtualenvs for requirements")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("deploy", help="upload FOLDER/func.py and FOLDER/requirements.txt")
    command.add_argument("folder")
    command.add_argument("--name", help="the function's name (default: the folder's name)")
    command.set_defaults(run=deploy)

    command = commands.add_parser("invoke", help="run a function and print its record",
                                  description="Each VALUE is read as JSON (10, 2.5, [1], null, '\"text\"'); "
                                              "anything that is not JSON is passed as a string. "
                                              "Exits 1 when the function failed.")
    command.add_argument("name")
    command.add_argument("values", nargs="*", metavar="VALUE", help="positional arguments")
    command.add_argument("--args", help="positional arguments as one JSON array (before any VALUE)")
    command.add_argument("--kwargs", help="keyword arguments as one JSON object")
    command.add_argument("--request-id")
    command.add_argument("--version", type=int, help="run this kept version instead of the current one")
    command.add_argument("--stream", action="store_true",
                         help="print each chunk a generator function yields as it comes, then the record")
    command.set_defaults(run=invoke)

    command = commands.add_parser("logs", help="print a function's records, one JSON object per line")
    command.add_argument("name")
    command.add_argument("--limit", type=int, default=20, help="how many of the newest (0: all; default 20)")
    command.add_argument("-f", "--follow", action="store_true", help="keep printing new records until Ctrl-C")
    command.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    command.set_defaults(run=logs)

    command = commands.add_parser("list", help="list the functions")
    command.add_argument("--json", action="store_true", help="print the info of each as JSON")
    command.set_defaults(run=list_functions)

    command = commands.add_parser("versions", help="list a function's kept versions, newest first")
    command.add_argument("name")
    command.add_argument("--json", action="store_true", help="print them as JSON")
    command.set_defaults(run=versions)

    command = commands.add_parser("rollback", help="make a kept version the current one again")
    command.add_argument("name")
    command.add_argument("version", type=int)
    command.set_defaults(run=rollback)

    command = commands.add_parser("delete", help="delete a function, its files and its records")
    command.add_argument("name")
    command.set_defaults(run=delete)

    command = commands.add_parser(
        "settings", help="print a function's settings, or change them",
        description="Without options, prints the settings (secrets by name only). Changes apply from the next call; "
                    "keys: timeout, memory_mb, min_workers, max_workers, max_concurrency, network, public.")
    command.add_argument("name")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting (VALUE as JSON; null returns it to the server's default)")
    command.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                         help="an environment variable (NAME alone removes it)")
    command.add_argument("--secret", action="append", default=[], metavar="NAME[=VALUE]",
                         help="a secret environment variable; without =VALUE it is read from the terminal or stdin")
    command.add_argument("--remove-secret", action="append", default=[], metavar="NAME")
    command.set_defaults(run=settings)

    command = commands.add_parser("status", help="print the engine's status")
    command.set_defaults(run=status)

    command = commands.add_parser(
        "import", help="bring over an original server's folder (functions/, data/functions.json, data/logs.json)")
    command.add_argument("folder")
    command.set_defaults(run=import_original, local_only=True)
    return parser


def remote_engine(options):
    password = os.environ.get("FAAS_HTTP_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {os.environ.get('FAAS_HTTP_USER', 'admin')} at {options.url}: ")
    return RemoteEngine(options.url, user=os.environ.get("FAAS_HTTP_USER", "admin"), password=password,
                        timeout=max(options.timeout + 30, 60))


def main(argv=None):
    options = build_parser().parse_args(argv)
    try:
        if options.url:
            if getattr(options, "local_only", False):
                raise SystemExit(f"error: {options.command} works on a data dir (--data-dir), not with --url")
            with remote_engine(options) as engine:
                return options.run(engine, options)
        with Engine(data_dir=options.data_dir, isolation=options.isolation, timeout=options.timeout,
                    python=options.python, store=options.store) as engine:
            return options.run(engine, options)
    except (Error, RemoteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

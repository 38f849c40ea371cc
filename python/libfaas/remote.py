"""A faas-http server seen as an engine: the methods the command-line client uses, over the HTTP API.

    engine = RemoteEngine("http://edge-1:8080", user="admin", password="...")
    engine.upload("calc", "def main(a, b):\\n    return a + b\\n")
    engine.invoke("calc", [1, 2])["result"]      # 3

Only the standard library: urllib, with HTTP Basic credentials on every request. Errors raise RemoteError with
one line that says what went wrong (the server unreachable, credentials refused, a function not found, ...).
"""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import time


class RemoteError(Exception):
    """A request the server refused or could not be reached for; str() is one line for a user."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.status = status  # the HTTP status, None when the server was not reached
        self.code = code      # the engine's error code ("not_found", "invalid_input", ...) when it gave one


class RemoteEngine:
    def __init__(self, url, user=None, password=None, timeout=60.0, upload_timeout=3600.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RemoteError(f"--url must be http://HOST:PORT or https://HOST:PORT, not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.upload_timeout = upload_timeout  # an upload may run pip for a while
        self.headers = {"Accept": "application/json"}
        if password is not None:
            token = base64.b64encode(f"{user or 'admin'}:{password}".encode()).decode()
            self.headers["Authorization"] = "Basic " + token

    # The engine's methods, as the command-line client calls them.

    def upload(self, name, code, requirements=None, settings=None):
        body = {"name": name, "code_b64": base64.b64encode(_bytes(code)).decode()}
        if requirements is not None:
            body["req_b64"] = base64.b64encode(_bytes(requirements)).decode()
        if settings is not None:
            body["settings"] = settings
        answer = self._request("POST", "/admin/upload", body, timeout=self.upload_timeout)
        return self.info(answer["function"])

    def invoke(self, name, args=None, kwargs=None, request_id=None, version=None):
        return self._request("POST", *_invocation(name, args, kwargs, request_id, version))

    def stream(self, name, args=None, kwargs=None, request_id=None, version=None):
        """Runs a function, iterating over the chunks a generator main yields as they come (the server's event
        stream); the record is the iterator's .record once it is exhausted."""
        path, body = _invocation(name, args, kwargs, request_id, version)
        headers = dict(self.headers, Accept="text/event-stream", **{"Content-Type": "application/json"})
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers=headers)
        try:
            return _Chunks(urllib.request.urlopen(request, timeout=self.upload_timeout))
        except urllib.error.HTTPError as e:
            raise _refusal(e, path) from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise RemoteError(f"cannot reach {self.url}: {getattr(e, 'reason', e)}") from None

    def logs(self, name, limit=1000):
        return self._request("GET", f"/admin/logs/{_segment(name)}?limit={int(limit)}")

    def follow(self, name, backlog=0, reconnects=5):
        """Yields the function's records as the server commits them (first its newest `backlog`), read from its
        event stream (GET /admin/logs/{name}?follow=1). A dropped or broken stream is opened again with the last
        id seen, so nothing is missed or repeated; after `reconnects` failures in a row, RemoteError."""
        last_id, failures = None, 0
        path = f"/admin/logs/{_segment(name)}?follow=1&limit={int(backlog)}"
        while True:
            headers = dict(self.headers, Accept="text/event-stream")
            if last_id:
                headers["Last-Event-ID"] = last_id
            request = urllib.request.Request(self.url + path, headers=headers)
            try:
                # No read timeout: a quiet stream gets a heartbeat comment every 15 s.
                with urllib.request.urlopen(request, timeout=60) as stream:
                    failures = 0
                    for event_id, name_, data in _events(stream):
                        if name_ == "message":
                            last_id = event_id or last_id
                            yield json.loads(data)
            except urllib.error.HTTPError as e:
                raise _refusal(e, path) from None
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                failures += 1
                if failures > reconnects:
                    reason = getattr(e, "reason", e)
                    raise RemoteError(f"lost {self.url} while following: {reason}") from None
                time.sleep(min(0.5 * 2 ** failures, 8))

    def list(self):
        functions = self._request("GET", "/admin/functions")
        return [functions[name] for name in sorted(functions)]

    def info(self, name):
        return self._request("GET", f"/admin/functions/{_segment(name)}")

    def remove(self, name):
        self._request("DELETE", f"/admin/functions/{_segment(name)}")

    def status(self):
        return self._request("GET", "/admin/status")

    def versions(self, name):
        return self._request("GET", f"/admin/functions/{_segment(name)}/versions")

    def rollback(self, name, version):
        self._request("POST", f"/admin/functions/{_segment(name)}/rollback", {"version": int(version)},
                      timeout=self.upload_timeout)
        return self.info(name)

    def settings(self, name, **changes):
        if "is_public" in changes:
            changes["public"] = changes.pop("is_public")
        path = f"/admin/functions/{_segment(name)}/settings"
        return self._request("PATCH", path, changes) if changes else self._request("GET", path)

    # Context manager, like Engine.
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _request(self, method, path, body=None, timeout=None):
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            raise _refusal(e, path) from None
        except urllib.error.URLError as e:
            raise RemoteError(f"cannot reach {self.url}: {e.reason}") from None
        except (TimeoutError, OSError) as e:
            raise RemoteError(f"cannot reach {self.url}: {e}") from None
        except ValueError as e:
            raise RemoteError(f"{self.url}{path} answered with something that is not JSON: {e}") from None


def _invocation(name, args, kwargs, request_id, version):
    """The path and JSON body of POST /function/{name} for invoke() and stream()."""
    body = {"args": list(args or [])}
    if kwargs is not None:
        body["kwargs"] = kwargs
    if request_id is not None:
        body["request_id"] = request_id
    query = f"?version={int(version)}" if version is not None else ""
    return f"/function/{_segment(name)}{query}", body


class _Chunks:
    """The chunks of a streamed call as they arrive; .record once they are all in."""

    def __init__(self, response):
        self.record = None
        self._response = response
        self._events = _events(response)

    def __iter__(self):
        return self

    def __next__(self):
        for _, name, data in self._events:
            if name == "chunk":
                return json.loads(data)
            if name in ("record", "error"):
                answer = json.loads(data)
                self._response.close()
                if name == "error":
                    raise RemoteError(f"the call failed: {answer.get('message', answer)}", code=answer.get("code"))
                self.record = answer
        raise StopIteration


def _events(stream):
    """Server-Sent Events from a byte stream: (id, event name, data) for each event; comments are skipped."""
    event_id, name, data = None, "message", []
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield event_id, name, "\n".join(data)
            event_id, name, data = None, "message", []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)


def _segment(name):
    return urllib.parse.quote(str(name), safe="")


def _bytes(text):
    return text if isinstance(text, bytes) else str(text).encode()


def _refusal(error, path):
    try:
        answer = json.loads(error.read() or b"{}")
    except ValueError:
        answer = {}
    message = answer.get("message") if isinstance(answer, dict) else None
    code = answer.get("code") if isinstance(answer, dict) else None
    if error.code == 401:
        message = "the server refused the credentials (set FAAS_HTTP_USER and FAAS_HTTP_PASSWORD)"
    return RemoteError(f"HTTP {error.code}: {message or error.reason or 'refused'}", status=error.code, code=code)

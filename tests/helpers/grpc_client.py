"""A gRPC client for the tests, without generated stubs: the message classes come from protoc --python_out (run
here, into a temporary directory) and each method is called by its path with grpcio's generic calls."""
import base64
import importlib.util
import pathlib
import subprocess
import tempfile

import grpc

REPO = pathlib.Path(__file__).resolve().parents[2]
_modules = {}


def messages(proto):
    """The generated module of a .proto: "faas" (the server's), "health" or "reflection" (tests/helpers/protos)."""
    if proto not in _modules:
        root, name = ((REPO / "frontends" / "grpc", "libfaas/v1/faas.proto") if proto == "faas"
                      else (REPO / "tests" / "helpers" / "protos", f"{proto}.proto"))
        out = pathlib.Path(tempfile.mkdtemp(prefix="faas-proto-"))
        subprocess.run(["protoc", f"--proto_path={root}", f"--python_out={out}", name], check=True)
        path = out / name.replace(".proto", "_pb2.py")
        spec = importlib.util.spec_from_file_location(f"{proto}_pb2", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[proto] = module
    return _modules[proto]


def basic(user, password):
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


class FaasClient:
    """libfaas.v1.Faas over one channel; every call sends `metadata` (the credentials) unless told otherwise."""

    UNARY = {"Invoke": ("InvokeRequest", "Record"), "Upload": ("UploadRequest", "FunctionInfo"),
             "List": ("ListRequest", "ListReply"), "Delete": ("DeleteRequest", "DeleteReply"),
             "Status": ("StatusRequest", "StatusReply")}
    STREAMING = {"InvokeStream": ("InvokeRequest", "InvokeEvent"), "Logs": ("LogsRequest", "Record")}

    def __init__(self, channel, metadata=()):
        self.channel = channel
        self.metadata = list(metadata)
        self.pb = messages("faas")

    def __getattr__(self, method):
        if method in self.UNARY:
            request, reply = self.UNARY[method]
            call = self.channel.unary_unary(f"/libfaas.v1.Faas/{method}",
                                            request_serializer=getattr(self.pb, request).SerializeToString,
                                            response_deserializer=getattr(self.pb, reply).FromString)
        elif method in self.STREAMING:
            request, reply = self.STREAMING[method]
            call = self.channel.unary_stream(f"/libfaas.v1.Faas/{method}",
                                             request_serializer=getattr(self.pb, request).SerializeToString,
                                             response_deserializer=getattr(self.pb, reply).FromString)
        else:
            raise AttributeError(method)
        message_class = getattr(self.pb, request)

        def invoke(metadata=None, timeout=None, **fields):
            return call(message_class(**fields), metadata=self.metadata if metadata is None else metadata,
                        timeout=timeout)

        return invoke

"""What the Sparkplug B tests share: the schema compiled by protoc, and a listening host.

Payloads are decoded with classes built from ``simulators/sparkplug_b.proto`` compiled here
(protoc into a temporary folder, a private descriptor pool), never with the simulator's
generated module.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc
from paho.mqtt.enums import CallbackAPIVersion

from simulators.sparkplug import SparkplugOptions, epoch_ms
from tests.support.mosquitto import Broker

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO = "simulators/sparkplug_b.proto"
JSON_TOPIC = "demo/line2/vision/result"
OPTIONS = SparkplugOptions(group_id="demo", edge_node_id="camera1")
NODE = "spBv1.0/demo/{}/camera1"
DEVICE = "spBv1.0/demo/{}/camera1/line2.vision"
REBIRTH = "Node Control/Rebirth"
FEATURE_ALIASES = {"features/gap_mm": 5, "features/offset_mm": 6}


@dataclass(frozen=True)
class Schema:
    file: descriptor_pb2.FileDescriptorProto
    payload: Any  # the Payload class, built from the freshly compiled schema

    def decode(self, data: bytes) -> Any:
        return self.payload.FromString(data)


def compile_schema(out_dir: Path) -> Schema:
    """Compile the committed .proto with protoc into `out_dir` and load it privately."""
    out = out_dir / "sparkplug_b.desc"
    args = ["protoc", f"--proto_path={REPO_ROOT}", f"--descriptor_set_out={out}", PROTO]
    assert protoc.main(args) == 0, "protoc could not compile the schema"
    [file] = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    pool = descriptor_pool.DescriptorPool()  # private: independent of the generated module
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName(f"{file.package}.Payload")
    return Schema(file, message_factory.GetMessageClass(descriptor))


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class SparkplugHost:
    """A paho client that records every message on the Sparkplug and JSON topics."""

    def __init__(self, broker: Broker) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sparkplug-host")
        self.client.on_connect = lambda client, *_: client.subscribe(
            [("spBv1.0/#", 1), (JSON_TOPIC, 1)]
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(
            Received(msg.topic, msg.payload, msg.qos, msg.retain)
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5), "subscription was not acknowledged"

    def take(self, count: int, timeout: float = 5.0) -> list[Received]:
        return [self.messages.get(timeout=timeout) for _ in range(count)]

    def take_until(self, topic: str, timeout: float = 5.0) -> list[Received]:
        """Messages up to and including the first one on `topic`."""
        taken = [self.messages.get(timeout=timeout)]
        while taken[-1].topic != topic:
            taken.append(self.messages.get(timeout=timeout))
        return taken

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def ms(iso: str) -> int:
    """Milliseconds since the epoch of a JSON result's ``time``."""
    return epoch_ms(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC))

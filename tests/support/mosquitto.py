"""A real mosquitto broker on a free loopback port, for tests (the demo's own launcher)."""

from app.local_broker import Broker, free_port, mosquitto_binary, running_mosquitto

__all__ = ["Broker", "free_port", "mosquitto_binary", "running_mosquitto"]

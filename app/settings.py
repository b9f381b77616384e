"""Service settings: one pydantic-settings class, from the environment (prefix SPCMON_).

Nested groups use a double underscore: ``SPCMON_MQTT__URL=mqtt://broker:1883``.
"""

from __future__ import annotations

import importlib.metadata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.incident_policy import IncidentPolicy
from app.periods import parse_period
from ingest.opcua import OpcuaSecurity

PLACEHOLDER_SECRETS = {"changeme", "change-me", "changethis", "secret", "password"}


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    url: str | None = Field(
        default=None,
        description="mqtt://host[:1883] or mqtts://host[:8883] (TLS); unset = no MQTT",
    )
    client_id: str = Field(default="spcmon", description="stable: names the persistent session")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT version")
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle the broker's certificate must chain to "
        "(mqtts; unset: the system's CAs)"
    )  # fmt: skip
    cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    key_file: Path | None = Field(default=None, description="its private key (PEM)")

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {value!r}")
        return value

    @field_validator("password")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a placeholder; set the real broker password")
        return value

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _tls_consistent(self) -> MqttSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "SPCMON_MQTT__CERT_FILE and SPCMON_MQTT__KEY_FILE: set both for a client "
                "certificate"
            )
        files = [n for n in ("ca_file", "cert_file", "key_file") if getattr(self, n)]
        if files and not self.tls:
            names = ", ".join(f"SPCMON_MQTT__{n.upper()}" for n in files)
            raise ValueError(f"{names}: TLS files need an mqtts:// SPCMON_MQTT__URL")
        return self

    @property
    def tls(self) -> bool:
        return (self.url or "").startswith("mqtts://")

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url or "")
        return parts.hostname or "127.0.0.1", parts.port or (8883 if self.tls else 1883)


class SparkplugSettings(BaseModel):
    """The Sparkplug B host application, on the broker of SPCMON_MQTT__URL."""

    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    host_id: str = Field(
        default="spcmon",
        min_length=1,
        max_length=128,
        description="host application id: its STATE is spBv1.0/STATE/<host_id>; unique on "
        "the broker",
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id of the host (unset: SPCMON_MQTT__CLIENT_ID + '-sparkplug')",
    )
    reorder_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="a gap in an edge node's seq: wait this long, "
        "then ask the node for a rebirth"
    )  # fmt: skip

    @field_validator("host_id")
    @classmethod
    def _one_topic_level(cls, value: str) -> str:
        if any(c in value for c in "+/#"):
            raise ValueError(f"is one MQTT topic level, without + / #: {value!r}")
        return value


class OpcuaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    endpoint: str | None = Field(default=None, description="opc.tcp://host:port/path")
    publishing_interval_ms: int = Field(default=100, ge=10, le=60_000)
    queue_size: int = Field(default=100, ge=1, le=10_000)
    security_policy: Literal[
        "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"
    ] = Field(default="None", description="None: anonymous and unencrypted")
    security_mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: Path | None = Field(
        default=None, description="the service's application certificate (DER or PEM)"
    )
    private_key: Path | None = Field(default=None, description="its private key (PEM)")
    application_uri: str = Field(
        default="urn:spcmon:client", description="must be the certificate's SubjectAltName URI"
    )
    trust_dir: Path | None = Field(
        default=None, description="folder of trusted server certificates (the trust list)"
    )
    server_certificate: Path | None = Field(default=None, description="pin one server cert")
    username: str | None = None
    password: SecretStr | None = None

    @field_validator("endpoint")
    @classmethod
    def _opc_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("opc.tcp://"):
            raise ValueError(f"expected opc.tcp://host:port/..., got {value!r}")
        return value

    @field_validator("certificate", "private_key", "server_certificate")
    @classmethod
    def _file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("trust_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no such folder: {value}")
        return value

    @field_validator("password")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a placeholder; set the real OPC UA password")
        return value

    @model_validator(mode="after")
    def _secured_with_a_certificate(self) -> OpcuaSettings:
        if self.security_policy != "None" and (
            self.certificate is None or self.private_key is None
        ):
            raise ValueError(
                f"SPCMON_OPCUA__SECURITY_POLICY {self.security_policy} needs "
                "SPCMON_OPCUA__CERTIFICATE and SPCMON_OPCUA__PRIVATE_KEY"
            )
        if self.security_policy == "None" and (self.trust_dir or self.server_certificate):
            raise ValueError(
                "SPCMON_OPCUA__TRUST_DIR / SERVER_CERTIFICATE need a SPCMON_OPCUA__SECURITY_POLICY"
            )
        if self.security_policy != "None" and not (self.trust_dir or self.server_certificate):
            # without them any server's certificate is taken: encrypted, but to whom?
            raise ValueError(
                f"SPCMON_OPCUA__SECURITY_POLICY {self.security_policy} needs "
                "SPCMON_OPCUA__TRUST_DIR (trusted server certificates) or "
                "SPCMON_OPCUA__SERVER_CERTIFICATE: otherwise any server would be trusted "
                "with the login"
            )
        return self

    def security(self) -> OpcuaSecurity:
        """The collector's view of these settings."""

        def text(path: Path | None) -> str | None:
            return str(path) if path is not None else None

        return OpcuaSecurity(
            policy=self.security_policy,
            mode=self.security_mode,
            certificate=text(self.certificate),
            private_key=text(self.private_key),
            application_uri=self.application_uri,
            trust_dir=text(self.trust_dir),
            server_certificate=text(self.server_certificate),
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
        )


class DatabaseSettings(BaseModel):
    """PostgreSQL / TimescaleDB; without ``url`` the embedded SQLite file is the store."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = Field(
        default=None, description="postgresql://user:password@host:port/database"
    )
    pool_size: int = Field(default=4, ge=1, le=100, description="connections at most")
    timescaledb: Literal["auto", "require", "off"] = Field(
        default="auto", description="use TimescaleDB when the extension is there (auto)"
    )
    expected_rate: float = Field(
        default=1000.0, gt=0, description="measurements per second, plant-wide: sizes chunks"
    )
    compress_after_days: int = Field(default=7, ge=1, le=3650)
    retention_days: int | None = Field(
        default=None, ge=2, le=36_500, description="drop raw data older than this; unset: keep"
    )
    spool_dir: Path | None = Field(
        default=None, description="where writes wait while the database is away (data_dir/spool)"
    )
    schema_name: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema for the tables; unset: the server's default (public)",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        url = value.get_secret_value()
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise ValueError("expected postgresql://user:password@host:port/database")
        try:
            parts = conninfo_to_dict(url)
        except psycopg.Error:
            # libpq's message can quote the offending part, password included: not echoed
            raise ValueError(
                "is not a valid PostgreSQL URL (percent-encode special characters in the "
                "user name and password)"
            ) from None
        if str(parts.get("password", "")).lower() in PLACEHOLDER_SECRETS:
            raise ValueError("holds a placeholder password; set the real database password")
        return value

    @property
    def retention(self) -> timedelta | None:
        return timedelta(days=self.retention_days) if self.retention_days else None


class SpcSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    # 100: limits estimated from fewer points make false incidents several times likelier
    # than the textbook says (benchmarks/incident_policy.py, README "Alerts")
    # 300: the paging CUSUM's false-incident rate is designed for limits this well founded
    # (README, *Alerts*); fewer points give limits whose errors page much more often
    baseline_size: int = Field(default=300, ge=2, le=1000, description="Phase I points")
    window: int = Field(default=100, ge=2, le=100_000, description="rolling capability points")
    # attribute (p) charts of the first-pass inspection verdicts, per process
    attribute_subgroup_size: int = Field(
        default=50, ge=1, le=100_000, description="first-pass inspections per p-chart subgroup"
    )
    attribute_baseline_subgroups: int = Field(
        default=25, ge=2, le=1000, description="p-chart Phase I subgroups"
    )


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    paging: tuple[str, ...] = Field(
        default=("cusum@cusum",),
        description="signal kinds (rule@chart) that open incidents; the rest only chart "
        "(default: the CUSUM alone, see benchmarks/incident_policy.py)",
    )
    group_window_s: float = Field(
        default=60.0, ge=0, le=86_400, description="process signals this close join one incident"
    )
    resolve_after: int = Field(
        default=25, ge=1, le=10_000, description="in-control points that resolve an incident"
    )
    escalate_after_s: float = Field(
        default=900.0, gt=0, le=7 * 86_400, description="unacknowledged this long: escalate"
    )
    max_new_per_hour: int = Field(
        default=6, ge=1, le=1000, description="new incidents per process and hour, at most"
    )
    notifiers_file: Path | None = Field(
        default=None, description="YAML file of notifiers (deploy/examples/notifiers.yaml)"
    )
    dashboard_url: str | None = Field(
        default=None, description="public URL of the dashboard, for links in notifications"
    )

    @field_validator("paging")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for kind in value:
            rule, _, chart = kind.partition("@")
            if (rule, chart) not in PAGEABLE:
                known = ", ".join(sorted(f"{r}@{c}" for r, c in PAGEABLE))
                raise ValueError(f"unknown signal kind {kind!r}; choose from {known}")
        return value

    def policy(self) -> IncidentPolicy:
        """The incident policy these settings describe."""
        kinds = frozenset(tuple(k.split("@", 1)) for k in self.paging)
        return IncidentPolicy(
            paging=kinds,  # type: ignore[arg-type]
            group_window=timedelta(seconds=self.group_window_s),
            resolve_after=self.resolve_after,
            escalate_after=timedelta(seconds=self.escalate_after_s),
            max_new_per_hour=self.max_new_per_hour,
        )


PAGEABLE = frozenset(
    {(str(r), "i") for r in range(1, 9)}
    | {("1", "mr"), ("1", "r"), ("1", "s"), ("ewma", "ewma"), ("cusum", "cusum")}
)


class GradeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    period: str = Field(default="30d", description="grading period of the live grades")
    refresh_s: float = Field(default=60.0, ge=1, le=3600, description="recompute every")
    snapshot_interval_s: float = Field(
        default=3600.0, ge=10, le=7 * 86_400, description="store a snapshot every (history)"
    )

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        parse_period(value, datetime.now(UTC))  # raises with what is accepted
        return value


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: list[str] = Field(
        default_factory=list,
        description='browser origins allowed to call the API, e.g. ["https://mes.plant"]',
    )
    access_log: bool = Field(
        default=False,
        description="log every request (a dashboard wall polling each second makes many lines)",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, le=1024**3, description="larger requests get a 413"
    )
    status_front: bool = Field(
        default=False,
        description=(
            "answer status polls in a second process, from copies of the answers, so that "
            "heavy ingest does not delay them (README: Under load)"
        ),
    )
    status_front_refresh_s: float = Field(
        default=0.25,
        ge=0.05,
        le=5.0,
        description="how often the status front's copies are brought up to date (s)",
    )


class AuthSettings(BaseModel):
    """Who may call the API: API keys with roles (``spcmon keys create``)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt variable is an error

    anonymous_read: bool = Field(
        default=False,
        description="let callers without a key read (viewer role): closed plant networks only",
    )
    keys_file: Path | None = Field(
        default=None, description="where the hashed API keys are kept (data_dir/api-keys.json)"
    )


class Settings(BaseSettings):
    """Everything configurable about one service instance."""

    model_config = SettingsConfigDict(
        # an empty variable is unset (compose passes optional values through as "")
        env_prefix="SPCMON_",
        env_nested_delimiter="__",
        extra="forbid",
        env_ignore_empty=True,
    )

    config: Path = Field(
        default=Path("deploy/examples/demo-plant.yaml"), description="plant config (YAML)"
    )
    data_dir: Path = Field(default=Path("data"), description="SQLite file and local state")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one object per line, for log collectors"
    )
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    sparkplug: SparkplugSettings = SparkplugSettings()
    opcua: OpcuaSettings = OpcuaSettings()
    spc: SpcSettings = SpcSettings()
    grades: GradeSettings = GradeSettings()
    alerts: AlertSettings = AlertSettings()
    http: HttpSettings = HttpSettings()
    auth: AuthSettings = AuthSettings()

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "spcmon.sqlite3"

    @property
    def version(self) -> str:
        """The installed package's version (for build info)."""
        try:
            return importlib.metadata.version("spcmon")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    @property
    def keys_file(self) -> Path:
        return self.auth.keys_file or self.data_dir / "api-keys.json"

    @property
    def spool_dir(self) -> Path:
        return self.database.spool_dir or self.data_dir / "spool"

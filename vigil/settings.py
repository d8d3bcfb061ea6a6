"""Settings: grouped, validated once at start-up.

Sources, strongest first: command-line options, environment variables
(``VIGIL_`` prefix, ``__`` between group and field, e.g.
``VIGIL_SERVER__PORT=9000``), a YAML file (``--config`` or ``VIGIL_CONFIG``),
then the defaults below. A typo in a file or a bad value stops start-up with
a message naming the field, rather than being ignored.
"""

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/vigil``, else ``~/.local/share/vigil``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vigil"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Group):
    """Where the REST API listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(8770, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413.")


class StoreSettings(_Group):
    """The database. Empty ``url`` means SQLite at ``<data_dir>/vigil.db``. History (cleared
    faults and alarms, fault events, finished deliveries, resource events) older than
    ``retention_days`` is pruned at start and every ``retention_interval_s``."""

    url: str | None = None
    retention_days: float = Field(30.0, gt=0)
    retention_interval_s: float = Field(3600.0, gt=0)


class CloudSettings(_Group):
    """The embedded cloud: where its first topology comes from, and its timings.

    The topology is read only when the store is empty (first start); after
    that the store is the truth. With neither ``topology`` nor ``hosts``
    set, ``examples``-like defaults are generated.
    """

    topology: Path | None = None
    hosts: int = Field(4, ge=1)
    instances_per_host: int = Field(2, ge=0)
    projects: int = Field(2, ge=1)
    boot_s: float = Field(0.0, ge=0)
    cold_migration_s: float = Field(2.0, ge=0)
    live_migration_s: float = Field(1.0, ge=0)
    evacuate_s: float = Field(0.5, ge=0)


class NotifierSettings(_Group):
    """Delivery of notifications: per-request timeout and the retries of an unreachable
    endpoint (5xx, timeouts, refused connections): one probe at a time, spaced by
    exponential backoff with jitter from ``retry_initial_s`` up to ``retry_max_delay_s``,
    for ``retry_horizon_s`` from a notification's creation before it is given up
    (FAILED, and sent again when an admin asks). Callbacks may reach only globally
    routable addresses, and those in ``allowed_callback_networks``; a project has at
    most ``max_subscriptions_per_project`` subscriptions of at most
    ``max_callbacks_per_subscription`` callbacks each."""

    timeout_s: float = Field(5.0, gt=0)
    retry_initial_s: float = Field(0.1, gt=0)
    retry_max_delay_s: float = Field(60.0, gt=0)
    retry_horizon_s: float = Field(86_400.0, gt=0)
    allowed_callback_networks: list[str] = Field(
        default_factory=list,
        description="Networks callbacks may reach although not globally routable, e.g. 10.0.0.0/8 or 127.0.0.0/8.",
    )
    max_subscriptions_per_project: int = Field(20, ge=1)
    max_callbacks_per_subscription: int = Field(3, ge=1, le=10)

    @field_validator("allowed_callback_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network: {network!r} ({exc})") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "NotifierSettings":
        if self.retry_max_delay_s < self.retry_initial_s:
            raise ValueError("retry_max_delay_s must be at least retry_initial_s")
        return self


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) as a pair; ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, not {value!r}")
    return host, int(port)


class MonitorSettings(_Group):
    """The heartbeat monitor: the UDP address the hosts' agents send heartbeats to
    (``off`` disables it), the defaults for agents that do not advertise their
    interval and multiplier, the hold-down before a lost host counts as up again,
    an optional shared key for authenticated (HMAC-SHA256) heartbeats and
    southbound reports (required of every report with ``require_signed_reports``), and the
    mass-silence guard: when more than ``mass_silence_fraction`` of at least
    ``mass_silence_min_hosts`` hosts fall silent at once, the monitoring side is
    suspected and no host is declared lost (1.0 turns the guard off)."""

    listen: str | None = "127.0.0.1:8771"
    interval_ms: float = Field(20.0, ge=1, le=60_000)
    detect_mult: int = Field(3, ge=1, le=255)
    hold_down_s: float = Field(1.0, ge=0)
    restart_grace_s: float = Field(
        2.0,
        gt=0,
        description="After a restart or a takeover, how long a host the monitor watched before has to beat again "
        "before it is declared lost (a host that died while Vigil was down).",
    )
    key: str | None = Field(None, description="Shared HMAC key; heartbeats without a valid MAC are dropped.")
    require_signed_reports: bool = Field(
        False, description="Refuse (401) southbound reports without a valid X-Vigil-Signature made with the key."
    )
    mass_silence_fraction: float = Field(0.5, gt=0, le=1, description="More hosts silent at once: none declared lost.")
    mass_silence_min_hosts: int = Field(10, ge=1, description="Hosts UP below which the mass-silence guard is off.")

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off", "none", "disabled"):
            return None
        parse_host_port(value)
        return value

    @model_validator(mode="after")
    def _key_for_signatures(self) -> "MonitorSettings":
        if self.require_signed_reports and not self.key:
            raise ValueError("monitor.require_signed_reports needs monitor.key, the key reports are signed with")
        return self

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else parse_host_port(self.listen)

    @property
    def key_bytes(self) -> bytes | None:
        return self.key.encode() if self.key else None


FAMILIES = ("compute.host", "network.switch", "network.link", "compute.process", "compute.instance")


class InspectorSettings(_Group):
    """Which event families act at once (``critical``), and the aggregation of the
    others: ``aggregate_threshold`` distinct failures of one host (a NIC, the
    gateway, a process) within ``aggregate_window_s`` take the host down; fewer
    raise a ``host.degraded`` warning for admins. ``hold_down_s``: flap damping,
    a recovery counts only once its failure has stayed away this long (0: at once)."""

    critical: list[str] = Field(default_factory=lambda: ["compute.host", "network.switch"])
    aggregate_threshold: int = Field(2, ge=1)
    aggregate_window_s: float = Field(10.0, gt=0)
    hold_down_s: float = Field(1.0, ge=0, le=3600)

    @field_validator("critical")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown event families {unknown}; known: {', '.join(FAMILIES)}")
        if not {"compute.host", "network.switch"} <= set(value):
            raise ValueError("compute.host and network.switch are always critical")
        return value


class MaintenanceActionSettings(_Group):
    """One per-host maintenance action a session may name: the ``upgrade`` plug-in (a
    ``duration_s`` parameter), or a ``script`` running ``command`` (no shell) for at most
    ``timeout_s``, given the ``parameters`` a session passes (each ``string`` or ``number``)
    as ``VIGIL_PARAM_<NAME>`` in its environment, with ``VIGIL_HOST`` and ``VIGIL_SESSION``."""

    plugin: Literal["upgrade", "script"]
    command: list[str] = Field(default_factory=list)
    timeout_s: float = Field(600.0, gt=0)
    parameters: dict[str, Literal["string", "number"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _command(self) -> "MaintenanceActionSettings":
        if self.plugin == "script" and not self.command:
            raise ValueError("a script action needs a command (a list: the program and its arguments)")
        if self.plugin == "upgrade" and (self.command or self.parameters):
            raise ValueError("the upgrade plug-in takes no command and no parameters (only duration_s)")
        return self


def _default_actions() -> dict[str, MaintenanceActionSettings]:
    return {"upgrade": MaintenanceActionSettings(plugin="upgrade")}


class MaintenanceSettings(_Group):
    """Maintenance sessions: how long a project's app manager has to answer a
    message (its ``reply_at``), how long a migration may run before the
    session fails, and the API root put in each message's ``reply_url``
    (empty: the root the admin's request to open the session came to)."""

    reply_window_s: float = Field(30.0, gt=0)
    migration_timeout_s: float = Field(600.0, gt=0)
    public_url: str | None = None
    actions: dict[str, MaintenanceActionSettings] = Field(
        default_factory=_default_actions,
        description="The per-host actions sessions may name; a session never carries a command line.",
    )


class OpenStackSettings(_Group):
    """Where the OpenStack driver finds Keystone, and as whom it authenticates (a password, or an application
    credential). Endpoints come from the catalog unless ``endpoint_overrides`` names them by service type
    (``compute``, ``network``, ``identity``). Secrets are never logged or shown."""

    auth_url: str
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    application_credential_id: str | None = None
    application_credential_secret: SecretStr | None = None
    region_name: str | None = None
    interface: str = "public"
    endpoint_overrides: dict[str, str] = Field(default_factory=dict)
    push_concurrency: int = Field(
        128,
        ge=1,
        le=256,
        description="Fault actions in flight to Nova and Neutron. Nova queues what its threads cannot serve yet; "
        "a fault's calls sent at once are queued ahead of the queries its notification triggers.",
    )
    notifications_url: SecretStr | None = Field(
        None,
        description="The AMQP URL of Nova's notification bus (its transport_url's vhost). Unset: no notifications, "
        "the map follows Nova by reconciliation only.",
    )
    notifications_exchange: str = "nova"
    notifications_queue: str = Field(
        "versioned_notifications.info",
        description="Nova's versioned topic's queue. Where another service consumes it too, give Vigil a topic "
        "of its own in Nova's [notifications] versioned_notifications_topics and its queue here.",
    )
    reconcile_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="How often the map is compared with Nova's and Neutron's inventory."
    )
    monitor_roles: list[str] = Field(
        default_factory=lambda: ["service"],
        description="Keystone roles whose tokens are monitors of their project on Vigil's API (``admin`` is "
        "Vigil's admin; any other role a member of the token's project).",
    )
    operation_timeout_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="How long a migration, evacuation, stop, start or delete sent to Nova may take before it fails "
        "(a maintenance session's own maintenance.migration_timeout_s applies too).",
    )


class VimSettings(_Group):
    """Which VIM Vigil fronts. ``embedded`` (the default) is Vigil's own simulated cloud. ``openstack`` reads the
    inventory from Nova and Neutron, follows Nova's notifications and reconciles periodically, pushes the
    inspector's fault actions to them, and sends the API's and maintenance's operations to them (see the README)."""

    driver: Literal["embedded", "openstack"] = "embedded"
    openstack: OpenStackSettings | None = None

    @model_validator(mode="after")
    def _openstack_needs_its_settings(self) -> "VimSettings":
        if self.driver == "openstack" and self.openstack is None:
            raise ValueError("vim.driver openstack needs vim.openstack (auth_url and credentials)")
        return self


_FENCE_OPTION = re.compile(r"[a-z][a-z0-9_]*")
_FENCE_AGENT = re.compile(r"fence_[a-z0-9_]+")


class FenceDeviceSettings(_Group):
    """How one host is fenced: a fence agent (``fence_ipmilan``, ``fence_redfish``, ...: a program on
    ``agents_path``, or an absolute path) and the options it reads on stdin, as Pacemaker's fencer gives them.
    ``secrets`` are options never logged or shown (``password``); ``secret_files`` name files holding one (read
    at each call, so rotating a password needs no restart). ``timeout_s`` bounds each call of the agent."""

    agent: str
    options: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    secret_files: dict[str, Path] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, le=600)

    @field_validator("agent")
    @classmethod
    def _agent(cls, value: str) -> str:
        if not (value.startswith("/") or _FENCE_AGENT.fullmatch(value)):
            raise ValueError(f"{value!r}: a fence agent is a fence_* program name or an absolute path")
        return value

    @model_validator(mode="after")
    def _stdin_safe(self) -> "FenceDeviceSettings":
        """Options go to the agent as ``key=value`` lines: a key or value that could add a line (or set the
        action, which is Vigil's to choose) is refused here, not sent."""
        values = {**self.options, **{k: v.get_secret_value() for k, v in self.secrets.items()}}
        for key in [*values, *self.secret_files]:
            if not _FENCE_OPTION.fullmatch(key):
                raise ValueError(f"fence option {key!r}: lower-case letters, digits and _ only")
            if key in ("action", "option", "nodename"):
                raise ValueError(f"fence option {key!r} is Vigil's to set, not the configuration's")
        for key, value in values.items():
            if "\n" in value or "\r" in value or "\0" in value:
                raise ValueError(f"fence option {key!r}: a value must be one line")
        both = set(self.secrets) & set(self.secret_files) | (set(self.options) & {*self.secrets, *self.secret_files})
        if both:
            raise ValueError(f"fence options given twice: {sorted(both)}")
        return self


class FencingSettings(_Group):
    """Fencing: how each host is powered off before its instances are recovered elsewhere (``devices``, by host
    name). A host with no device is not fenced. ``agents_path`` is where agent names are looked up (Debian's
    fence-agents puts them in /usr/sbin)."""

    devices: dict[str, FenceDeviceSettings] = Field(default_factory=dict)
    timeout_s: float = Field(60.0, gt=0, le=600, description="A device's timeout_s when it sets none.")
    agents_path: list[Path] = Field(default_factory=lambda: [Path("/usr/sbin"), Path("/usr/bin")])


class RecoveryPolicySettings(_Group):
    """What becomes of a failed instance: ``none`` (its owner recovers it), ``restart`` (an instance-level failure,
    ``compute.instance.down``: restarted in place), or ``evacuate`` (its host failed and was fenced), by Masakari's
    ``method``: ``auto`` (any host the placement rules allow), ``reserved_host`` (only the reserved hosts),
    ``auto_priority`` (auto, then reserved), ``rh_priority`` (reserved, then auto)."""

    action: Literal["none", "evacuate", "restart"] = "none"
    method: Literal["auto", "reserved_host", "auto_priority", "rh_priority"] = "auto"


class RecoverySettings(_Group):
    """Recovery of a failed host's instances, only ever after its fence is confirmed (``fencing.devices``): the
    ``default`` policy, overridden per project and per server group (the group's wins). ``reserved_hosts`` are kept
    for recovery (disabled until used), as Masakari's reserved hosts."""

    default: RecoveryPolicySettings = RecoveryPolicySettings()
    projects: dict[str, RecoveryPolicySettings] = Field(default_factory=dict)
    groups: dict[str, RecoveryPolicySettings] = Field(default_factory=dict)
    reserved_hosts: list[str] = Field(default_factory=list)
    concurrency: int = Field(32, ge=1, le=256, description="Evacuations sent to the VIM at once.")

    @model_validator(mode="after")
    def _reserved(self) -> "RecoverySettings":
        policies = [self.default, *self.projects.values(), *self.groups.values()]
        wants = any(p.action == "evacuate" and p.method != "auto" for p in policies)
        if wants and not self.reserved_hosts:
            raise ValueError("a method using reserved hosts needs recovery.reserved_hosts")
        return self


_INGEST_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def _ingest_family(value: str) -> str:
    """The event family of a mapped type: ``compute.host`` from ``compute.host.down`` (or from itself)."""
    if not _INGEST_TYPE.fullmatch(value):
        raise ValueError(f"{value!r} is not an event type such as compute.host.down")
    family = value.removesuffix(".down").removesuffix(".up")
    if family not in FAMILIES:
        raise ValueError(f"{value!r}: unknown event family; known: {', '.join(FAMILIES)}")
    return family


class AlertmanagerIngestSettings(_Group):
    """``POST /v1/ingest/alertmanager``: the alerts (by ``alertname``) that mean an event type, e.g.
    ``{NodeDown: compute.host.down}`` (others are ignored); the label naming the host (``instance``, its ``:port``
    stripped with ``strip_port``), looked up in ``hosts`` (label value to Vigil host) or taken as it is; the label
    saying what failed on the host (``related_label``, else the alert's name)."""

    alerts: dict[str, str] = Field(default_factory=dict, description="alertname -> event type (compute.host.down)")
    host_label: str = Field("instance", min_length=1)
    strip_port: bool = True
    hosts: dict[str, str] = Field(default_factory=dict)
    related_label: str | None = "device"

    @field_validator("alerts")
    @classmethod
    def _families(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _ingest_family(kind) for name, kind in value.items()}


class ZabbixTriggerSettings(_Group):
    """Triggers whose rawtext or description ``match`` (a regular expression, searched) mean ``type``."""

    match: str
    type: str
    related_to: str | None = None

    @field_validator("match")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("type")
    @classmethod
    def _family(cls, value: str) -> str:
        return _ingest_family(value)


def _zabbix_triggers() -> list[ZabbixTriggerSettings]:
    # Zabbix's agent templates: "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes" (seed 004),
    # "Zabbix agent is not available (for {$AGENT.TIMEOUT})" (5.0 and later).
    return [ZabbixTriggerSettings(match=r"(?i)zabbix agent\b.*\b(unreachable|not available)", type="compute.host")]


Perceived = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"]


def _zabbix_severities() -> dict[int, Perceived]:
    return {0: "INDETERMINATE", 1: "WARNING", 2: "WARNING", 3: "MINOR", 4: "MAJOR", 5: "CRITICAL"}


class ZabbixIngestSettings(_Group):
    """``POST /v1/ingest/zabbix`` and, with ``amqp_url``, the queue Zabbix's media type publishes to (Vitrage's
    ``vitrage_notifications.info`` on exchange ``openstack``, declared as oslo.messaging does): the ``triggers``
    rules (first match wins; unmatched triggers are ignored), ``hosts`` (Zabbix host name to Vigil host), the
    severity of each NSEVERITY 0-5, and the time zone of ``lastchange`` (the Zabbix server's)."""

    triggers: list[ZabbixTriggerSettings] = Field(default_factory=_zabbix_triggers)
    hosts: dict[str, str] = Field(default_factory=dict)
    severities: dict[int, Perceived] = Field(default_factory=_zabbix_severities)
    timezone: str = "UTC"
    amqp_url: SecretStr | None = Field(None, description="Unset: no queue consumer.")
    queue: str = Field("vitrage_notifications.info", min_length=1)
    exchange: str = Field("openstack", min_length=1)
    durable: bool = Field(False, description="As oslo.messaging's amqp_durable_queues.")
    prefetch: int = Field(64, ge=1, le=10_000)

    @field_validator("severities")
    @classmethod
    def _nseverity(cls, value: dict[int, Perceived]) -> dict[int, Perceived]:
        if not set(value) <= set(range(6)):
            raise ValueError("Zabbix's NSEVERITY is 0 (not classified) to 5 (disaster)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC or Europe/Stockholm)") from None
        return value


class IngestSettings(_Group):
    """Events from monitors operators already run (see the README's "Ingest" section)."""

    alertmanager: AlertmanagerIngestSettings = AlertmanagerIngestSettings()
    zabbix: ZabbixIngestSettings = ZabbixIngestSettings()


class RulesSettings(_Group):
    """Rule templates in OpenStack Vitrage's format (versions 1 to 3), evaluated on Vigil's resources and alarms:
    ``paths`` are files or directories of templates (checked at start: a bad one stops it, naming its file and
    line; ``POST /v1/rules/reload`` reads them again), ``alarm_types`` alarm entity types they may name besides
    Vitrage's and Vigil's own (the monitors that report to Vigil)."""

    paths: list[Path] = Field(default_factory=list)
    alarm_types: list[str] = Field(default_factory=list)


class HaSettings(_Group):
    """High availability on PostgreSQL (``vigil.store.leader``): with ``enabled``, several ``vigil serve`` on one
    ``store.url`` elect one leader by a lease the database keeps; the others are standbys that answer 503 and take
    over once the lease has gone ``lease_s`` unrenewed (the leader renews it every ``renew_s``; a standby tries
    every ``poll_s``). A leader that cannot renew in time stops acting and exits (code 75), for its supervisor to
    start it again as a standby. Every process on one database must have it on."""

    enabled: bool = False
    lease_s: float = Field(1.5, gt=0, le=60)
    renew_s: float = Field(0.3, gt=0)
    poll_s: float = Field(0.1, gt=0, le=10)

    @model_validator(mode="after")
    def _renews_in_time(self) -> "HaSettings":
        if self.renew_s * 3 > self.lease_s:
            raise ValueError(f"renew_s ({self.renew_s}) must be at most a third of lease_s ({self.lease_s})")
        return self


class AuthSettings(_Group):
    """Empty ``tokens_file`` means ``<data_dir>/tokens.yaml``."""

    tokens_file: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    cloud: CloudSettings = CloudSettings()
    notifier: NotifierSettings = NotifierSettings()
    auth: AuthSettings = AuthSettings()
    monitor: MonitorSettings = MonitorSettings()
    inspector: InspectorSettings = InspectorSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    vim: VimSettings = VimSettings()
    fencing: FencingSettings = FencingSettings()
    recovery: RecoverySettings = RecoverySettings()
    rules: RulesSettings = RulesSettings()
    ingest: IngestSettings = IngestSettings()
    ha: HaSettings = HaSettings()

    @model_validator(mode="after")
    def _ha_on_postgresql(self) -> "Settings":
        if self.ha.enabled and not self.store_url.startswith("postgresql"):
            raise ValueError("ha.enabled needs a PostgreSQL store.url (postgresql+asyncpg://...)")
        return self

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite+aiosqlite:///{self.data_dir / 'vigil.db'}"

    @property
    def tokens_file(self) -> Path:
        return self.auth.tokens_file or self.data_dir / "tokens.yaml"


class SettingsError(Exception):
    """The configuration is invalid; the message says where."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Merge file, environment and ``overrides`` (nested dicts per group)."""
    path = config_file or (Path(os.environ["VIGIL_CONFIG"]) if os.environ.get("VIGIL_CONFIG") else None)
    from_file: dict[str, Any] = {}
    if path is not None:
        try:
            from_file = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(from_file, dict):
            raise SettingsError(f"config file {path} must hold a mapping")
    try:
        # Init arguments beat the environment in pydantic-settings, so the
        # file goes in as defaults and only explicit overrides as arguments.
        env = Settings()
        merged = _deep_merge(_deep_merge(from_file, _explicit_env(env)), overrides)
        return Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from exc


def _explicit_env(env: Settings) -> dict[str, Any]:
    """Only what the environment set, so it does not mask the file with defaults."""
    return env.model_dump(exclude_unset=True)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged

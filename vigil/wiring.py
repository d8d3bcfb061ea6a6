"""Wiring: the one place that knows every concrete adapter.

``running(settings)`` opens the store, starts the committer and the
embedded cloud, and on first start loads the initial topology (a YAML file
or a generated cloud); on later starts it restores the map from the store.
With ``monitor.listen`` set, it starts the heartbeat monitor on its UDP
listener, reporting to the inspector in process.
``create_server_app`` wraps that into the FastAPI app, and
:class:`BackgroundServer` runs an app on a real socket inside the current
event loop, for ``vigil serve``'s tests, the demos and the benchmarks.
"""

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from vigil.api.app import create_app
from vigil.api.auth import TokenRegistry
from vigil.api.deps import (
    ApiContext,
    ExternalTokens,
    FaultServices,
    ReportSigning,
    SubscriptionLimits,
    embedded_vim,
)
from vigil.bus.memory import InProcessBus
from vigil.bus.memory import Subscription as Feed
from vigil.controller.changes import Committer
from vigil.controller.cloud import CloudTimings, EmbeddedCloud
from vigil.controller.generate import generate
from vigil.controller.journal import Journal
from vigil.controller.resource_map import ResourceMap
from vigil.controller.vim import Vim
from vigil.delivery.http import HttpSender
from vigil.domain.alarms import Alarm, AlarmKind
from vigil.domain.callbacks import CallbackPolicy
from vigil.domain.deliveries import DeliveryState
from vigil.domain.errors import NotFound
from vigil.domain.faults import Fault, Severity
from vigil.domain.findings import HostFindings
from vigil.domain.records import RecordKind
from vigil.domain.recovery import EvacuationMethod, RecoveryAction, RecoveryPolicies, RecoveryPolicy
from vigil.domain.retry import RetryPolicy
from vigil.domain.rules import ALARM_TYPES
from vigil.domain.states import HostStatus
from vigil.domain.subscriptions import Subscription
from vigil.domain.topology import Topology
from vigil.fencing.agents import FenceDevice
from vigil.fencing.fencer import AgentFencer
from vigil.heartbeat.udp import HeartbeatListener
from vigil.ingest.amqp import QueueConsumer
from vigil.inspector.inspector import Inspector
from vigil.inspector.intake import DEDUP_MEMORY, Intake
from vigil.inspector.policy import DEFAULT_POLICIES, FaultPolicy, Target
from vigil.inspector.rule_engine import RuleEngine
from vigil.inspector.watcher import watch
from vigil.maintenance.actions import ActionSpec
from vigil.maintenance.actions import configured as configured_actions
from vigil.maintenance.service import MaintenanceService
from vigil.maintenance.workflow import WorkflowConfig
from vigil.monitor.alertmanager import AlertMapping
from vigil.monitor.ingest import Ingest
from vigil.monitor.monitor import MONITOR_NAME, HeartbeatMonitor
from vigil.monitor.session import Timing
from vigil.monitor.zabbix import TriggerMapping, TriggerRule
from vigil.notifier.alarms import AlarmBook
from vigil.notifier.service import Notifier
from vigil.notifier.subscriptions import SubscriptionRegistry
from vigil.recovery.evacuation import Evacuator
from vigil.recovery.fence_first import FenceFirst
from vigil.recovery.restart import Restarter
from vigil.rules_runtime import AlarmTrigger, Report, RuleActionsHub, RulesControl, TemplateError, load_configured
from vigil.serving import BackgroundServer
from vigil.settings import (
    CloudSettings,
    FencingSettings,
    IngestSettings,
    InspectorSettings,
    MonitorSettings,
    NotifierSettings,
    RecoveryPolicySettings,
    RecoverySettings,
    Settings,
    SettingsError,
    StoreSettings,
    VimSettings,
)
from vigil.store.leader import LeaseTimings
from vigil.store.sql import SqlStore
from vigil.topology.yaml_file import load_topology
from vigil.vim.openstack.driver import DriverTimings, OpenStackVim
from vigil.vim.openstack.follow import FollowConfig, NovaFollower
from vigil.vim.openstack.inventory import first_topology
from vigil.vim.openstack.keystone_tokens import KeystoneTokens
from vigil.vim.openstack.pending import PendingPushes
from vigil.vim.openstack.push import FaultPusher, Resumed
from vigil.vim.openstack.services import ComputeServices
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: SqlStore
    bus: InProcessBus
    committer: Committer
    cloud: EmbeddedCloud
    faults: FaultServices
    monitor: HeartbeatMonitor | None = None
    maintenance: MaintenanceService | None = None
    vim: Vim | None = None  # the VIM driver, when it is not the embedded cloud (vim.driver openstack)
    external_tokens: ExternalTokens | None = None  # Keystone's tokens, with vim.driver openstack
    follower: NovaFollower | None = None  # what keeps the map following Nova, with vim.driver openstack
    fault_pusher: FaultPusher | None = None  # what makes Nova say the inspector's changes, with vim.driver openstack
    fencing: FenceFirst | None = None  # fences failed hosts, with fencing.devices set
    rules: RulesControl | None = None  # the rule templates, with rules.paths set

    def vim_state(self) -> dict[str, Any]:
        """What ``GET /v1/vim`` shows: the driver, how the map follows it, the fault actions pushed to it."""
        if self.follower is None:
            return embedded_vim()
        pushes = self.fault_pusher.state() if self.fault_pusher is not None else None
        return {**self.follower.state(), "pushes": pushes}

    def api_context(self, tokens: TokenRegistry) -> ApiContext:
        """What the API's routes need of this runtime."""
        return ApiContext(
            cloud=self.vim if self.vim is not None else self.cloud,
            transactions=self.cloud.transactions,
            events=self.store,
            tokens=tokens,
            faults=self.faults,
            maintenance=self.maintenance,
            external_tokens=self.external_tokens,
            vim_state=self.vim_state,
            rules=self.rules,
        )


def initial_topology(cloud: CloudSettings) -> Topology:
    if cloud.topology is not None:
        return load_topology(cloud.topology)
    return generate(cloud.hosts, cloud.instances_per_host, cloud.projects)


def timings(cloud: CloudSettings) -> CloudTimings:
    return CloudTimings(
        boot_s=cloud.boot_s,
        cold_migration_s=cloud.cold_migration_s,
        live_migration_s=cloud.live_migration_s,
        evacuate_s=cloud.evacuate_s,
    )


def fencer(fencing: FencingSettings, acting: Callable[[], bool] | None = None) -> AgentFencer:
    """The hosts' fence devices, as the settings give them (their secrets unwrapped only here); with ``acting``
    (high availability), nothing is fenced once this process no longer leads."""
    devices = {
        host: FenceDevice(
            host=host,
            agent=device.agent,
            options=dict(device.options),
            secrets={key: value.get_secret_value() for key, value in device.secrets.items()},
            secret_files=dict(device.secret_files),
            timeout_s=device.timeout_s or fencing.timeout_s,
        )
        for host, device in fencing.devices.items()
    }
    return AgentFencer(devices, fencing.agents_path, acting=acting)


def _start_rules(
    settings: Settings,
    cloud: EmbeddedCloud,
    alarms: AlarmBook,
    trigger: AlarmTrigger,
    bus: InProcessBus,
    fencing: FenceFirst | None,
    restarter: Restarter | None,
    report: Report,
) -> tuple[RulesControl, list[asyncio.Task[None]]]:
    """The rule engine on the operator's templates (a bad one stops the start, naming its file and line)."""
    try:
        rules = load_configured(settings.rules.paths, settings.rules.alarm_types)
    except TemplateError as exc:
        raise SettingsError(f"rules.paths: {exc}") from None
    hub = RuleActionsHub(report, clock=utcnow)
    hub.fencing, hub.restarter = fencing, restarter
    types = ALARM_TYPES | frozenset(settings.rules.alarm_types)
    engine = RuleEngine(rules, cloud.transactions, alarms, alarms, trigger, hub, alarm_types=types)
    trigger.engine = engine
    tasks = [
        asyncio.create_task(engine.run(), name="vigil.rules.evaluate"),
        asyncio.create_task(engine.follow(bus.subscribe().queue), name="vigil.rules.follow"),
    ]
    log.info("rule templates: %d loaded from %s", len(rules.templates), ", ".join(map(str, settings.rules.paths)))
    return RulesControl(engine, settings.rules.paths, settings.rules.alarm_types, hub), tasks


def recovery_policies(recovery: RecoverySettings) -> RecoveryPolicies:
    def policy(settings: RecoveryPolicySettings) -> RecoveryPolicy:
        return RecoveryPolicy(RecoveryAction(settings.action), EvacuationMethod(settings.method))

    return RecoveryPolicies(
        default=policy(recovery.default),
        projects={project: policy(p) for project, p in recovery.projects.items()},
        groups={group: policy(p) for group, p in recovery.groups.items()},
        reserved_hosts=frozenset(recovery.reserved_hosts),
    )


def retry_policy(notifier: NotifierSettings) -> RetryPolicy:
    """The backoff between probes of an unreachable endpoint (the horizon, not a count, ends them)."""
    return RetryPolicy(initial_s=notifier.retry_initial_s, max_delay_s=notifier.retry_max_delay_s)


def fault_policies(inspector: InspectorSettings) -> dict[str, FaultPolicy]:
    """The inspector's policies with the configured critical families and aggregation."""
    return {
        family: replace(
            policy,
            critical=family in inspector.critical or policy.target is Target.INSTANCE,
            threshold=inspector.aggregate_threshold,
            window_s=inspector.aggregate_window_s,
        )
        for family, policy in DEFAULT_POLICIES.items()
    }


def _start_monitor(
    settings: MonitorSettings,
    cloud: EmbeddedCloud,
    intake: Intake,
    alarms: AlarmBook,
    store: SqlStore,
    watched: Mapping[str, tuple[float, int]],
) -> tuple[HeartbeatMonitor, HeartbeatListener] | None:
    address = settings.address
    if address is None:
        return None
    writes: set[asyncio.Task[None]] = set()

    async def keep(host: str, interval_ms: float, mult: int) -> None:
        try:
            await store.set_monitored(host, interval_ms, mult, utcnow())
        except Exception as exc:  # the next start then waits for its first heartbeat, as before
            log.warning("could not record that host %s is monitored: %s", host, exc)

    def remember(host: str, interval_ms: float, mult: int) -> None:
        if watched.get(host) == (interval_ms, mult):
            return
        task = asyncio.create_task(keep(host, interval_ms, mult), name=f"vigil.monitor.remember.{host}")
        writes.add(task)
        task.add_done_callback(writes.discard)

    def known(host: str) -> bool:
        try:
            cloud.map.host(host)
        except NotFound:
            return False
        return True

    monitor = HeartbeatMonitor(
        intake.receive,
        timers=asyncio.get_running_loop(),
        clock=time.monotonic,
        known=known,
        timing=Timing(settings.interval_ms, settings.detect_mult, settings.hold_down_s),
        key=settings.key_bytes,
        mass_fraction=settings.mass_silence_fraction,
        mass_min_hosts=settings.mass_silence_min_hosts,
        remember=remember,
    )
    # Hosts this monitor had declared down before a restart come back after a hold-down.
    down = {
        h.name
        for h in cloud.map.hosts()
        if (alarm := alarms.active(AlarmKind.HOST_DOWN, h.name)) is not None
        and alarm.details.get("monitor") == MONITOR_NAME
    }
    monitor.assume_down(down)
    listener = HeartbeatListener(monitor.receive, *address)
    listener.start()
    host, port = listener.address
    monitor.listening = f"{host}:{port}"
    monitor.start(listener.drain)
    # The others it watched must beat again: one that died while Vigil was down (or during a takeover) is lost.
    up = {h.name for h in cloud.map.hosts() if h.status is HostStatus.UP}
    monitor.assume_up({h: t for h, t in watched.items() if h in up and h not in down}, settings.restart_grace_s)
    return monitor, listener


def ingest_mappings(settings: IngestSettings) -> tuple[AlertMapping, TriggerMapping]:
    """Alertmanager's and Zabbix's mappings to event families, as the ``ingest`` settings give them."""
    a, z = settings.alertmanager, settings.zabbix
    alerts = AlertMapping(
        alerts=dict(a.alerts),
        host_label=a.host_label,
        strip_port=a.strip_port,
        hosts=dict(a.hosts),
        related_label=a.related_label,
    )
    triggers = TriggerMapping(
        rules=[TriggerRule(re.compile(t.match), t.type, t.related_to) for t in z.triggers],
        hosts=dict(z.hosts),
        severities={level: Severity(name) for level, name in z.severities.items()},
        timezone=ZoneInfo(z.timezone),
    )
    return alerts, triggers


def _zabbix_queue(settings: IngestSettings, ingest: Ingest) -> QueueConsumer | None:
    """The consumer of the queue Zabbix's media type publishes to, with ``ingest.zabbix.amqp_url`` set."""
    z = settings.zabbix
    if z.amqp_url is None:
        return None
    consumer = QueueConsumer(
        z.amqp_url.get_secret_value(),
        ingest.zabbix_message,
        queue=z.queue,
        exchange=z.exchange,
        durable=z.durable,
        prefetch=z.prefetch,
    )
    ingest.queue_state = lambda: asdict(consumer.stats)
    return consumer


def _deposed(why: str) -> None:
    """What a leader does when it is no longer one: nothing more (``vigil serve`` passes an exit instead)."""
    log.critical("high availability: %s; this process stops acting", why)


@asynccontextmanager
async def running(settings: Settings, *, on_deposed: Callable[[str], None] = _deposed) -> AsyncIterator[Runtime]:
    """Vigil's engines on the configured store, stopped cleanly on exit.

    Opening the store takes its writer lease (``vigil.store.lease``): a store
    another process holds stops here with :class:`~vigil.store.lease.StoreInUse`.
    With high availability (``ha.enabled``) it waits instead, as a standby,
    until the leader's lease is this process's (``vigil.store.leader``), and
    ``on_deposed`` is called if it is lost.
    """
    ha = settings.ha
    lease = LeaseTimings(ha.lease_s, ha.renew_s, ha.poll_s) if ha.enabled else None
    store = SqlStore(settings.store_url, leader=lease)
    await store.open()
    keeper = (
        asyncio.create_task(store.leader.keep(on_deposed), name="vigil.store.leader")
        if store.leader is not None
        else None
    )
    acting = store.leader.acting if store.leader is not None else None  # what leaves the process asks it first
    bus = InProcessBus()
    committer = Committer(store, bus)
    committer.start()
    journal = Journal(store)
    journal.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, utcnow, timings=timings(settings.cloud))
    sender = HttpSender(
        policy=CallbackPolicy.allowing(settings.notifier.allowed_callback_networks),
        acting=acting,
    )
    await sender.start()
    alarms = AlarmBook()
    subscriptions = SubscriptionRegistry()
    notifier = Notifier(
        subscriptions=subscriptions,
        sender=sender,
        saver=cloud.transactions,
        clock=utcnow,
        alarms=alarms,
        policy=retry_policy(settings.notifier),
        horizon_s=settings.notifier.retry_horizon_s,
        timeout_s=settings.notifier.timeout_s,
    )
    trigger = AlarmTrigger(notifier)  # the notifier, telling the rule engine of alarm changes
    inspector = Inspector(
        cloud.transactions,
        alarms,
        trigger,
        policies=fault_policies(settings.inspector),
        hold_down_s=settings.inspector.hold_down_s,
        self_damping=frozenset({MONITOR_NAME}),
    )
    intake = Intake(inspector, cloud.transactions, journal, notifier, clock=utcnow)
    ingest = Ingest(intake.receive, *ingest_mappings(settings.ingest), clock=utcnow)
    zabbix_queue = _zabbix_queue(settings.ingest, ingest)
    zabbix_task: asyncio.Task[None] | None = None
    openstack = _openstack_session(settings.vim)
    if openstack is not None:
        openstack.acting = acting  # no VIM call once this process no longer leads
    pusher: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    pruner: asyncio.Task[None] | None = None
    maintenance: MaintenanceService | None = None
    heartbeats: tuple[HeartbeatMonitor, HeartbeatListener] | None = None
    follower: NovaFollower | None = None
    fault_pusher: FaultPusher | None = None
    resumed: Resumed | None = None
    fencing: FenceFirst | None = None
    fencer_task: asyncio.Task[None] | None = None
    restarter: Restarter | None = None
    restart_task: asyncio.Task[None] | None = None
    rules: RulesControl | None = None
    rule_tasks: list[asyncio.Task[None]] = []
    driver: OpenStackVim | None = None
    services: ComputeServices | None = None
    try:
        fresh = await store.is_empty()
        if fresh and openstack is not None:
            await cloud.bootstrap(await first_topology(openstack), as_is=True)
            log.info("read the inventory from OpenStack: %s", cloud.map.counts())
        elif fresh:
            await cloud.bootstrap(initial_topology(settings.cloud))
            log.info("bootstrapped the embedded cloud: %s", cloud.map.counts())
        else:
            interrupted = cloud.restore(await store.load())
            if openstack is None:  # Nova knows where an interrupted move ended: the reconciliation reads it
                await cloud.recover(interrupted)
            log.info("restored the map from the store: %s", cloud.map.counts())
        if openstack is not None:
            services = ComputeServices(openstack)  # the driver's and the fault pusher's, learnt once
            pending = PendingPushes()  # the pusher's, which the sync leaves alone until they land
            fault_pusher = _fault_pusher(openstack, settings.vim, store, notifier, services, pending)
            resumed = await fault_pusher.resume(cloud.map)  # pending before the sync's first read of Nova
            follower = _follow_nova(cloud, openstack, settings.vim, bus.subscribe(), pending)
            await follower.start()
            driver = _openstack_driver(cloud, openstack, settings.vim, follower, services)
        await _restore_faults(store, alarms, subscriptions, inspector, intake, notifier)
        # The map and the rest of start-up's objects live as long as the process:
        # move them out of the collector's sight, so a collection in the middle
        # of a fault's fan-out scans only what the fault itself allocated.
        gc.collect()
        gc.freeze()
        feed = bus.subscribe()
        watcher = asyncio.create_task(watch(feed, intake), name="vigil.inspector.watch")
        policies = recovery_policies(settings.recovery)
        if policies.restarts:  # before the journal's replay, which may open faults
            restarter = Restarter(cloud.transactions, inspector, alarms, trigger, driver or cloud, policies)
            restart_task = asyncio.create_task(restarter.run(bus.subscribe().queue), name="vigil.recovery.restart")
            log.info("restarting failed instances in place; resumed %d", restarter.resume())
        if settings.fencing.devices:
            evacuator = Evacuator(
                cloud.transactions,
                driver or cloud,
                alarms,
                trigger,
                policies,
                constraints=lambda group: cloud.group_constraints(group),  # set once maintenance starts
                concurrency=settings.recovery.concurrency,
            )
            fencing = FenceFirst(
                cloud.transactions,
                inspector,
                alarms,
                trigger,
                fencer(settings.fencing, acting),
                confirmed=evacuator.recover,
            )
            fence_feed = bus.subscribe()
            fencer_task = asyncio.create_task(fencing.run(fence_feed.queue), name="vigil.recovery.fence")
            log.info("fencing %d hosts; resumed %d fences", len(settings.fencing.devices), fencing.resume())
        if settings.rules.paths:
            rules, rule_tasks = _start_rules(settings, cloud, alarms, trigger, bus, fencing, restarter, intake.receive)
        if fault_pusher is not None and resumed is not None:
            pusher = asyncio.create_task(
                _push_faults(fault_pusher, resumed, cloud.map, bus.subscribe()), name="vigil.vim.openstack.push"
            )
        await intake.resume()
        watched = await store.monitored_hosts() if settings.monitor.address is not None else {}
        heartbeats = _start_monitor(settings.monitor, cloud, intake, alarms, store, watched)
        if zabbix_queue is not None:
            zabbix_task = asyncio.create_task(zabbix_queue.run(), name="vigil.ingest.zabbix")
        monitor = heartbeats[0] if heartbeats is not None else None
        limits = SubscriptionLimits(
            settings.notifier.max_subscriptions_per_project, settings.notifier.max_callbacks_per_subscription
        )
        signing = ReportSigning(settings.monitor.key_bytes, settings.monitor.require_signed_reports)
        faults = FaultServices(
            inspector, alarms, subscriptions, notifier, store, intake, monitor, limits, signing, ingest
        )
        maintenance = await _start_maintenance(settings, store, cloud, notifier, driver or cloud)
        pruner = asyncio.create_task(_retention(store, settings.store), name="vigil.store.retention")
        o = settings.vim.openstack
        keystone = KeystoneTokens(openstack, o.monitor_roles) if openstack is not None and o is not None else None
        yield Runtime(
            settings=settings,
            store=store,
            bus=bus,
            committer=committer,
            cloud=cloud,
            faults=faults,
            monitor=monitor,
            maintenance=maintenance,
            vim=driver,
            external_tokens=keystone,
            follower=follower,
            fault_pusher=fault_pusher,
            fencing=fencing,
            rules=rules,
        )
    finally:
        for task in (pruner, pusher, fencer_task, restart_task, *rule_tasks):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if rules is not None:
            await rules.aclose()
        if fencing is not None:
            await fencing.aclose()
        if restarter is not None:
            await restarter.aclose()
        if maintenance is not None:
            await maintenance.aclose()
        if driver is not None:
            await driver.aclose()
        if zabbix_task is not None:
            zabbix_task.cancel()
            await asyncio.gather(zabbix_task, return_exceptions=True)
        if zabbix_queue is not None:
            await zabbix_queue.aclose()
        if heartbeats is not None:
            heartbeats[1].close()
            await heartbeats[0].aclose()
        gc.unfreeze()
        if follower is not None:
            await follower.aclose()
        await intake.aclose()
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await notifier.aclose()
        await sender.close()
        await cloud.aclose()
        if openstack is not None:
            await openstack.aclose()
        await journal.stop()
        await committer.stop()
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        await store.close()


def _openstack_session(settings: VimSettings) -> OpenStackSession | None:
    if settings.driver != "openstack" or settings.openstack is None:
        return None
    o = settings.openstack
    secret = o.application_credential_secret
    auth = OpenStackAuth(
        auth_url=o.auth_url,
        username=o.username,
        password=o.password.get_secret_value() if o.password else None,
        project_name=o.project_name,
        user_domain_name=o.user_domain_name,
        project_domain_name=o.project_domain_name,
        application_credential_id=o.application_credential_id,
        application_credential_secret=secret.get_secret_value() if secret else None,
        region_name=o.region_name,
        interface=o.interface,
        endpoint_overrides=dict(o.endpoint_overrides),
    )
    return OpenStackSession(auth)


def _fault_pusher(
    session: OpenStackSession,
    settings: VimSettings,
    store: SqlStore,
    notifier: Notifier,
    services: ComputeServices,
    pending: PendingPushes,
) -> FaultPusher:
    """The inspector's fault actions to Nova and Neutron, marked in the store as they are done; the notifier
    raises ``vim.unreachable`` for admins while a service cannot be reached."""
    assert settings.openstack is not None
    return FaultPusher(
        session,
        concurrency=settings.openstack.push_concurrency,
        alarms=notifier,
        services=services,
        pending=pending,
        log=store,
    )


async def _push_faults(pusher: FaultPusher, resumed: Resumed, rmap: ResourceMap, feed: Feed) -> None:
    """First what a restart found unpushed (a crash may have cut a push off), then each committed change, as the
    bus publishes it after its notifications left."""
    await pusher.reconcile(rmap, resumed)
    await pusher.run(feed.queue)


def _follow_nova(
    cloud: EmbeddedCloud, session: OpenStackSession, settings: VimSettings, feed: Feed, pending: PendingPushes
) -> NovaFollower:
    """What keeps the map following Nova: its notifications, Vigil's own changes, and the reconciliation."""
    assert settings.openstack is not None
    o = settings.openstack
    config = FollowConfig(
        notifications_url=o.notifications_url.get_secret_value() if o.notifications_url else None,
        exchange=o.notifications_exchange,
        queue=o.notifications_queue,
        reconcile_interval_s=o.reconcile_interval_s,
    )
    return NovaFollower(cloud.transactions, session, config, feed, utcnow, pending)


def _openstack_driver(
    cloud: EmbeddedCloud,
    session: OpenStackSession,
    settings: VimSettings,
    follower: NovaFollower,
    services: ComputeServices,
) -> OpenStackVim:
    """The API's and maintenance's operations sent to Nova and Neutron, each followed to its end by the sync;
    Vigil's own settings (maintenance flag, alarm thresholds) kept by the embedded cloud's map."""
    assert settings.openstack is not None
    timings = DriverTimings(timeout_s=settings.openstack.operation_timeout_s)
    return OpenStackVim(cloud, session, follower.sync, services, timings=timings)


async def _retention(store: SqlStore, settings: StoreSettings) -> None:
    """Prune history older than ``retention_days``: once at start (after the restore), then hourly."""
    while True:
        before = utcnow() - timedelta(days=settings.retention_days)
        try:
            pruned = await store.prune(before)
        except Exception:  # the next round tries again; the store keeps its history meanwhile
            log.exception("pruning history older than %s failed", before.isoformat())
        else:
            if any(pruned.values()):
                log.info("pruned history older than %s: %s", before.isoformat(), pruned)
        await asyncio.sleep(settings.retention_interval_s)


async def _start_maintenance(
    settings: Settings, store: SqlStore, cloud: EmbeddedCloud, notifier: Notifier, vim: Vim
) -> MaintenanceService:
    """The maintenance service with the sessions and constraints the store holds;
    sessions a restart cut off are ended and their hosts rolled back (in the VIM: ``vim`` is the driver).
    The embedded cloud's map and transactions are Vigil's, whichever VIM runs."""
    config = WorkflowConfig(
        reply_window_s=settings.maintenance.reply_window_s,
        migration_timeout_s=settings.maintenance.migration_timeout_s,
        reply_url_root=settings.maintenance.public_url or "",
    )
    specs = {
        name: ActionSpec(a.plugin, tuple(a.command), a.timeout_s, dict(a.parameters))
        for name, a in settings.maintenance.actions.items()
    }
    service = MaintenanceService(
        cloud=vim,
        records=cloud.transactions,
        messenger=notifier,
        clock=utcnow,
        config=config,
        plugins=configured_actions(specs),
    )
    service.load(
        await store.maintenance_sessions(), await store.instance_constraints(), await store.group_constraints()
    )
    cloud.group_constraints = service.constraints.groups.get  # the scheduler honours FEAT03 as the planner does
    interrupted = await service.resume()
    if interrupted:
        log.warning("took up %d maintenance session(s) a restart cut off, where they stood", len(interrupted))
    return service


async def _restore_faults(
    store: SqlStore,
    alarms: AlarmBook,
    subscriptions: SubscriptionRegistry,
    inspector: Inspector,
    intake: Intake,
    notifier: Notifier,
) -> None:
    """The open alarms and faults, subscriptions, the inspector's findings and the outbox as the
    last run left them (history stays in the store); then the reports it journaled but did
    not apply, applied again in order."""
    alarms.load([r for r in await store.open_records(RecordKind.ALARM) if isinstance(r, Alarm)])
    subscriptions.load([r for r in await store.load_records(RecordKind.SUBSCRIPTION) if isinstance(r, Subscription)])
    faults = [r for r in await store.open_records(RecordKind.FAULT) if isinstance(r, Fault)]
    findings = [r for r in await store.load_records(RecordKind.HOST_FINDINGS) if isinstance(r, HostFindings)]
    named = {i for f in findings for i in (*f.suppressed.values(), *f.held.values())}
    inspector.load(faults, findings, await store.fault_events_by_id(named))
    last_seq, seen = await store.journal_state(DEDUP_MEMORY)
    intake.load(last_seq, seen)
    pending = await store.deliveries(state=DeliveryState.PENDING, limit=1_000_000)
    if pending:
        log.info("resuming %d pending deliveries", len(pending))
    await notifier.resume(pending, inspector.faults_by_id)
    unapplied = await store.journal_pending()
    if unapplied:
        log.warning("applying %d journaled reports a crash left unapplied", len(unapplied))
        await intake.replay(unapplied)


def create_server_app(settings: Settings, tokens: TokenRegistry) -> FastAPI:
    @asynccontextmanager
    async def start() -> AsyncIterator[ApiContext]:
        async with running(settings) as runtime:
            yield runtime.api_context(tokens)

    return create_app(start, max_body_bytes=settings.server.max_body_bytes)


__all__ = ["BackgroundServer", "Runtime", "create_server_app", "running"]

"""The planner: in which order hosts are maintained, and where a host's instances go.

It serves maintenance (:mod:`vigil.maintenance`: rolling sessions) and
recovery (:mod:`vigil.recovery.evacuation`: a fenced host's instances), so
both place on one search and the scheduler's rules.

Doctor's maintenance use case as Fenix runs it: the admin's hosts are
maintained one at a time, each only once it is empty. Hosts that are empty
already go first, as they cost nothing. Every other host is emptied by
migrating its instances, preferably onto hosts that are maintained already,
because an instance that lands there never has to move again. When no host
of the session is empty at the start, one has to be emptied onto the others
first (PREPARE_MAINTENANCE): the cheapest one whose instances fit elsewhere.

Every placement honours what the live scheduler honours (capacity in vCPUs,
anti-affinity, affinity) plus the FEAT03 group constraints
(``max_instances_per_host``), and the moves of one host are cut into waves so
that no more than ``max_impacted_members`` of a group are down at once, with
the group's ``recovery_time`` between waves.

The module is pure: it computes on a :class:`Layout` snapshot and never
touches the cloud, so the workflow can plan the whole session up front
(:func:`plan_rolling`) and check each live step with the same functions.
"""

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from vigil.domain.errors import Conflict
from vigil.domain.maintenance import GroupConstraints
from vigil.domain.model import ServerGroup
from vigil.domain.placement import GroupRules, NaturalKey, capacity_rejection, group_rejection, natural_key

SEARCH_BUDGET = 2_000
"""How many tentative placements one evacuation may try before giving up.

Placement with anti-affinity and capacity is bin packing, so an exhaustive
search can explode; the constrained-first order finds a placement in one pass
almost always, and the budget bounds the backtracking for the rest."""


@dataclass(frozen=True, slots=True)
class PlanInstance:
    """An instance where it runs; ``migrating_to``, the host a migration in flight is taking it to, which it holds
    (vCPUs and group membership) until the migration ends."""

    id: str
    host: str
    vcpus: int = 1
    group: str | None = None
    migrating_to: str | None = None


@dataclass(frozen=True, slots=True)
class PlanGroup:
    """An instance group's placement policy and FEAT03 constraints."""

    id: str
    anti_affinity: bool = False  # server-group policy anti-affinity, or FEAT03 anti_affinity_group
    affinity: bool = False
    max_instances_per_host: int = 0  # 0: no limit
    max_impacted_members: int = 0  # 0: no limit
    recovery_time: float = 0.0

    @property
    def rules(self) -> GroupRules:
        """The placement rules, as the scheduler applies them."""
        return GroupRules(self.id, self.id, self.anti_affinity, self.affinity, self.max_instances_per_host)


@dataclass(frozen=True, slots=True)
class Move:
    instance: str
    source: str
    target: str


class NoRoom(Conflict):
    """No placement honours every constraint; the message names the instance and why.

    The workflow answers it by asking the projects to scale in (SCALE_IN).
    ``instance`` and ``host`` name the instance that found no room and the
    host it was to leave, when one evacuation failed.
    """

    def __init__(self, message: str, *, instance: str | None = None, host: str | None = None) -> None:
        super().__init__(message)
        self.instance = instance
        self.host = host


@dataclass(slots=True)
class Layout:
    """Where instances are, what each host holds. ``capacity`` lists every host that may hold instances (vCPUs)."""

    capacity: dict[str, int]
    instances: dict[str, PlanInstance]
    groups: dict[str, PlanGroup] = field(default_factory=dict)

    def on(self, host: str) -> list[PlanInstance]:
        """The instances on ``host``, sorted by id."""
        return sorted((i for i in self.instances.values() if i.host == host), key=lambda i: i.id)

    def used(self, host: str) -> int:
        """vCPUs of the instances on ``host`` and of those migrating to it."""
        return sum(i.vcpus for i in self.instances.values() if host in (i.host, i.migrating_to))

    def free(self, host: str) -> int:
        """Free vCPUs; a host missing from ``capacity`` has none."""
        return self.capacity.get(host, 0) - self.used(host)

    def moved(self, moves: Iterable["Move"]) -> "Layout":
        """A new Layout with the moves applied in order; this one is left as it was.

        A move whose source is not where the instance is raises ValueError:
        replaying a stale plan must fail loudly, not teleport instances.
        """
        instances = dict(self.instances)
        for move in moves:
            inst = instances.get(move.instance)
            if inst is None:
                raise ValueError(f"move of unknown instance {move.instance!r}")
            if inst.host != move.source:
                raise ValueError(f"instance {move.instance} is on {inst.host}, not on {move.source}")
            instances[move.instance] = replace(inst, host=move.target)
        return Layout(dict(self.capacity), instances, dict(self.groups))

    def rejection(self, inst: PlanInstance, host: str) -> str | None:
        """Why ``host`` cannot take ``inst`` now (capacity, anti-affinity, affinity,
        max_instances_per_host), or None if it can.

        Affinity members still on the instance's own host are taken to follow
        it (an affinity set moves together), so replaying a set's moves one by
        one passes, while sending one member elsewhere than the others does not.
        """
        return _Board(self).rejection(inst, host)


class _Board:
    """A mutable, indexed copy of a layout for the search.

    The search places and takes back thousands of instances; recounting a
    host's vCPUs or a group's members from the whole layout each time would
    make it quadratic, so the board keeps the sums and updates them per move.
    """

    __slots__ = ("layout", "members", "rules", "used", "where")

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.where: dict[str, str] = {}
        self.used: Counter[str] = Counter()
        self.members: dict[str, Counter[str]] = {}
        self.rules = {group.id: group.rules for group in layout.groups.values()}
        for inst in layout.instances.values():
            self._count(inst, inst.host, +1)
            if inst.migrating_to is not None:
                self._count(inst, inst.migrating_to, +1)  # held until the migration ends
            self.where[inst.id] = inst.host

    def _count(self, inst: PlanInstance, host: str, sign: int) -> None:
        self.used[host] += sign * inst.vcpus
        if inst.group is not None:
            self.members.setdefault(inst.group, Counter())[host] += sign

    def free(self, host: str) -> int:
        return self.layout.capacity.get(host, 0) - self.used[host]

    def move(self, inst: PlanInstance, target: str) -> None:
        self._count(inst, self.where[inst.id], -1)
        self._count(inst, target, +1)
        self.where[inst.id] = target

    def rejection(self, inst: PlanInstance, host: str) -> str | None:
        current = self.where.get(inst.id, inst.host)
        if host == current:
            return f"instance {inst.id} already runs on {host}"
        if host not in self.layout.capacity:
            return f"host {host} takes no instances"
        reason = capacity_rejection(host, self.free(host), inst.vcpus)
        if reason is not None or inst.group is None or inst.group not in self.rules:
            return reason
        # Affinity members still on the instance's own host follow it: they are not "elsewhere".
        count = self.members.get(inst.group, Counter())
        elsewhere = [h for h, n in count.items() if n > 0 and h not in (host, current)]
        return group_rejection(self.rules[inst.group], host, count[host], elsewhere)


# -- order ---------------------------------------------------------------------


def maintenance_order(layout: Layout, hosts: Sequence[str]) -> list[str]:
    """Hosts cheapest to empty first: empty ones, then by instances, vCPUs used, natural name.

    Fewer instances means fewer migrations (each one an interruption for an
    application); among equals, fewer vCPUs leave more room for the moves.
    """
    count: Counter[str] = Counter()
    used: Counter[str] = Counter()
    for inst in layout.instances.values():  # one pass: sessions of hundreds of hosts re-order at every step
        count[inst.host] += 1
        used[inst.host] += inst.vcpus
    return sorted(dict.fromkeys(hosts), key=lambda h: (count[h], used[h], natural_key(h)))


def first_host_to_empty(layout: Layout, hosts: Sequence[str], *, targets: Sequence[str]) -> str | None:
    """The host to empty in PREPARE_MAINTENANCE, or None if one of ``hosts`` is empty already.

    It is the cheapest host (:func:`maintenance_order`) whose instances all fit
    on ``targets`` (minus itself, in the caller's order); a cheaper host that
    cannot be emptied is skipped rather than failing the session. NoRoom
    means no host can be emptied without the projects scaling in.
    """
    if not hosts or any(not layout.on(h) for h in hosts):
        return None
    failures: list[NoRoom] = []
    for host in maintenance_order(layout, hosts):
        try:
            evacuate(layout, host, preferred=(), others=[t for t in targets if t != host])
        except NoRoom as failure:
            failures.append(failure)
        else:
            return host
    raise _nothing_to_empty(failures)


def _nothing_to_empty(failures: Sequence[NoRoom]) -> NoRoom:
    """One NoRoom that tells why each host (the first few, in a big session) could not be emptied."""
    first = failures[0]
    reasons = _listed([str(f) for f in failures], " | ", "host that cannot be emptied")
    return NoRoom(f"no host can be emptied: {reasons}", instance=first.instance, host=first.host)


MAX_LISTED = 4
"""Reasons a NoRoom message lists; in a cloud of hundreds of hosts the rest are counted, not listed."""


def _listed(reasons: Sequence[str], separator: str, what: str) -> str:
    shown = separator.join(reasons[:MAX_LISTED])
    hidden = len(reasons) - MAX_LISTED
    return shown if hidden <= 0 else f"{shown}{separator}and {hidden} more {what}{'s' if hidden > 1 else ''}"


# -- evacuation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tier:
    """Target hosts of equal preference.

    ``ranked``: tried by most free vCPUs then natural name (spreading, as
    Nova's weigher does), else in the given order. ``final``: an instance
    placed there will not move again in the session.
    """

    hosts: tuple[str, ...]
    ranked: bool = True
    final: bool = True


@dataclass(frozen=True, slots=True)
class _Unit:
    """Instances that move together to one host: an affinity set, or a single instance.

    ``settled``: one of them has moved once already, so it may only go
    where it stays (final tiers).
    """

    members: tuple[PlanInstance, ...]
    settled: bool = False

    @property
    def vcpus(self) -> int:
        return sum(m.vcpus for m in self.members)

    def describe(self) -> str:
        ids = ", ".join(m.id for m in self.members)
        group = self.members[0].group
        if len(self.members) > 1 and group is not None:
            return f"affinity group {group}'s instances {ids} ({self.vcpus} vCPUs)"
        return f"instance {ids} ({self.vcpus} vCPUs)"


def evacuate(layout: Layout, host: str, *, preferred: Sequence[str], others: Sequence[str]) -> list[Move]:
    """A destination for every instance on ``host``; each moves exactly once.

    ``preferred`` hosts (the maintained ones) are tried first, by most free
    vCPUs then natural name; then ``others`` in the caller's order (hosts
    outside the session before hosts still to maintain, so that fewer
    instances move twice). ``host`` itself is never a target. Earlier moves
    of the evacuation count against later ones. Raises NoRoom naming the
    instance that fits nowhere.
    """
    return _evacuate(layout, host, (_Tier(tuple(preferred)), _Tier(tuple(others), ranked=False)))


def evacuate_in_tiers(layout: Layout, host: str, tiers: Sequence[Sequence[str]]) -> list[Move]:
    """As :func:`evacuate`, with the target hosts in ``tiers`` tried in order, each by most free vCPUs then natural
    name (recovery: the ordinary hosts and the reserved ones, in the order a policy's method gives)."""
    return _evacuate(layout, host, [_Tier(tuple(t)) for t in tiers])


def group_of(group: ServerGroup, constraints: GroupConstraints | None = None) -> PlanGroup:
    """A server group as the planner sees it outside a maintenance session: its policy and its FEAT03 placement
    constraints (the scheduler's rules; no waves)."""
    rules = GroupRules.of(group, constraints)
    return PlanGroup(rules.id, rules.anti_affinity, rules.affinity, rules.max_instances_per_host)


def _evacuate(layout: Layout, host: str, tiers: Sequence[_Tier], settled: Collection[str] = ()) -> list[Move]:
    """Place the units of ``host`` depth first, most constrained first, with a bounded search.

    Greedy placement in id order fails where a smarter order succeeds (a big
    instance left for last finds every host half full), so units are placed
    affinity sets first, then anti-affinity or per-host-limited members, then
    by vCPUs; when one still finds no host, the search takes back earlier
    placements and tries the next host, within :data:`SEARCH_BUDGET` tries.
    """
    search = _Search(_Board(layout), host, _units(layout, host, settled), tiers)
    moves = search.run()
    if moves is None:
        raise search.no_room()
    return moves


def _units(layout: Layout, host: str, settled: Collection[str]) -> list[_Unit]:
    """The instances of ``host`` as units, in the order the search places them."""
    affinity: dict[str, list[PlanInstance]] = {}
    singles: list[list[PlanInstance]] = []
    for inst in layout.on(host):
        group = layout.groups.get(inst.group) if inst.group is not None else None
        if group is not None and group.affinity:
            affinity.setdefault(group.id, []).append(inst)
        else:
            singles.append([inst])
    units = [_Unit(tuple(m), any(i.id in settled for i in m)) for m in [*affinity.values(), *singles]]
    return sorted(units, key=lambda u: _unit_order(layout, u))


def _unit_order(layout: Layout, unit: _Unit) -> tuple[int, bool, int, NaturalKey]:
    """Most constrained first: affinity sets, then members that exclude each other, then the rest.

    Within a rank, units restricted to final hosts and big units go first,
    as they have the fewest hosts to choose from.
    """
    first = unit.members[0]
    group = layout.groups.get(first.group) if first.group is not None else None
    if group is not None and group.affinity:
        rank = 0
    elif group is not None and (group.anti_affinity or group.max_instances_per_host):
        rank = 1
    else:
        rank = 2
    return rank, not unit.settled, -unit.vcpus, natural_key(first.id)


class _Search:
    """Depth-first placement of units with forward checking and a budget.

    Forward checking (after each placement, every unit still to place must
    have at least one host that takes it) cuts dead branches early, so the
    budget is rarely reached. The first dead end found is kept to explain
    a failure: it names a real instance and the reason each host refused it.
    """

    def __init__(self, board: _Board, source: str, units: list[_Unit], tiers: Sequence[_Tier]) -> None:
        self.board = board
        self.source = source
        self.units = units
        self.tiers = tiers
        self.budget = SEARCH_BUDGET
        self.dead_end: tuple[_Unit, dict[str, str]] | None = None

    def run(self) -> list[Move] | None:
        blocked = self._blocked(0)
        if blocked is not None:
            self.dead_end = blocked
            return None
        targets = self._place()
        if targets is None:
            return None
        return [Move(m.id, self.source, t) for unit, t in zip(self.units, targets, strict=True) for m in unit.members]

    def _place(self) -> list[str] | None:
        """A target per unit, in order, or None; the board keeps the placement.

        Depth-first with an explicit stack, not recursion: a host may hold more
        instances than Python's recursion limit allows frames."""
        if not self.units:
            return []
        placed: list[str] = []  # the target of each unit placed so far
        frames: list[tuple[list[str], int]] = [(self._candidates(self.units[0]), 0)]  # candidates, next to try
        while frames:
            index = len(frames) - 1
            unit = self.units[index]
            if len(placed) > index:  # back from a dead end below: undo this level's choice
                self._take_back(unit)
                placed.pop()
            candidates, position = frames[index]
            descended = False
            while position < len(candidates):
                target = candidates[position]
                position += 1
                if self.budget <= 0:
                    for done, _ in zip(self.units, placed, strict=False):
                        self._take_back(done)
                    return None
                self.budget -= 1
                if self._try(unit, target) is not None:
                    continue
                blocked = self._blocked(index + 1)
                if blocked is not None:
                    if self.dead_end is None:
                        self.dead_end = blocked
                    self._take_back(unit)
                    continue
                placed.append(target)
                if index + 1 == len(self.units):
                    return placed
                frames[index] = (candidates, position)
                frames.append((self._candidates(self.units[index + 1]), 0))
                descended = True
                break
            if not descended:
                frames.pop()
        return None

    def _candidates(self, unit: _Unit, *, ranked: bool = True) -> list[str]:
        """Target hosts for the unit, best first; hosts of a non-final tier only for unsettled units.

        ``ranked=False`` skips the ranking, for when only whether some host fits matters.
        """
        seen = {self.source}
        ordered: list[str] = []
        for tier in self.tiers:
            hosts = [h for h in dict.fromkeys(tier.hosts) if h not in seen]
            seen.update(hosts)
            if unit.settled and not tier.final:
                continue
            if ranked and tier.ranked:
                hosts.sort(key=lambda h: (-self.board.free(h), natural_key(h)))
            ordered.extend(hosts)
        return ordered

    def _try(self, unit: _Unit, target: str) -> str | None:
        """Move the unit's members to ``target`` one by one; on a refusal take them back and say why."""
        done: list[PlanInstance] = []
        for member in unit.members:
            reason = self.board.rejection(member, target)
            if reason is not None:
                for inst in done:
                    self.board.move(inst, self.source)
                return reason
            self.board.move(member, target)
            done.append(member)
        return None

    def _take_back(self, unit: _Unit) -> None:
        for member in unit.members:
            self.board.move(member, self.source)

    def _blocked(self, start: int) -> tuple[_Unit, dict[str, str]] | None:
        """The first unit from ``start`` on that no host takes now, with each host's reason."""
        for unit in self.units[start:]:
            if not any(self._fits(unit, target) for target in self._candidates(unit, ranked=False)):
                return unit, {target: self._why_not(unit, target) for target in self._candidates(unit)}
        return None

    def _fits(self, unit: _Unit, target: str) -> bool:
        if self._try(unit, target) is not None:
            return False
        self._take_back(unit)
        return True

    def _why_not(self, unit: _Unit, target: str) -> str:
        reason = self._try(unit, target)
        if reason is None:  # cannot happen when called on a blocked unit
            self._take_back(unit)
            return f"host {target} could take it"
        return reason

    def no_room(self) -> NoRoom:
        if self.dead_end is None:
            return NoRoom(f"found no room for the instances of host {self.source} in {SEARCH_BUDGET} tries")
        unit, reasons = self.dead_end
        why = _listed(list(reasons.values()), "; ", "host") or "no other host may take it"
        if unit.settled:
            why += " (it has moved once already, so it may only go where it stays)"
        what = unit.describe()
        return NoRoom(
            f"cannot move {what} off host {self.source}: {why}", instance=unit.members[0].id, host=self.source
        )


# -- waves -----------------------------------------------------------------------


def waves(layout: Layout, moves: Sequence[Move]) -> list[list[Move]]:
    """Split moves into consecutive waves, none moving more than ``max_impacted_members`` of a group.

    A group's k-th move goes to wave k // max_impacted_members, so the group
    never has more members down at once than it tolerates; ungrouped
    instances and unlimited groups all go in the first wave, as nothing
    limits them. Moves keep their order within a wave.
    """
    result: list[list[Move]] = []
    seen: Counter[str] = Counter()
    for move in moves:
        index = _wave_index(layout, move, seen)
        while len(result) <= index:
            result.append([])
        result[index].append(move)
    return result


def _wave_index(layout: Layout, move: Move, seen: Counter[str]) -> int:
    group = _group_of(layout, move)
    if group is None or group.max_impacted_members <= 0:
        return 0
    index = seen[group.id] // group.max_impacted_members
    seen[group.id] += 1
    return index


def _group_of(layout: Layout, move: Move) -> PlanGroup | None:
    group = layout.instances[move.instance].group
    return layout.groups.get(group) if group is not None else None


def wave_pause(layout: Layout, wave: Sequence[Move]) -> float:
    """Seconds to wait after this wave: the longest recovery_time of the groups it touched (0 if none).

    A group needs its recovery time before more of its members are touched;
    waiting for the slowest group it touched covers every one of them.
    """
    return max((g.recovery_time for g in (_group_of(layout, m) for m in wave) if g is not None), default=0.0)


# -- the whole session -------------------------------------------------------------

PLAN_BUDGET = 200
"""How many evacuations :func:`plan_rolling` may try after its first dead end.

Taking the cheapest host each time can strand big instances (small ones
fill the maintained hosts first); the planner then takes back steps and
tries the next choice, within this budget."""


@dataclass(slots=True)
class Step:
    host: str
    moves: list[Move]  # the evacuation of this host (empty if it was empty)
    waves: list[list[Move]]


@dataclass(slots=True)
class RollingPlan:
    prepare: Step | None  # the PREPARE_MAINTENANCE evacuation, None if no host had to be emptied onto session hosts
    steps: list[Step]  # one per host, in the order they are maintained, each after its moves

    @property
    def migrations(self) -> int:
        return sum(len(s.moves) for s in self.steps) + (len(self.prepare.moves) if self.prepare else 0)


@dataclass(frozen=True, slots=True)
class _Choice:
    """One step of the simulation: a host and its evacuation; ``prepare`` if it is PREPARE_MAINTENANCE's."""

    host: str
    moves: list[Move]
    prepare: bool = False


@dataclass(frozen=True, slots=True)
class _Progress:
    """The simulated session after some steps: the layout as it became, and which hosts are done."""

    layout: Layout
    remaining: tuple[str, ...]
    spare: tuple[str, ...]
    maintained: tuple[str, ...] = ()
    moved: frozenset[str] = frozenset()

    def final_tiers(self) -> tuple[_Tier, ...]:
        """Hosts an instance stays on: maintained ones first, then spare ones outside the session."""
        return _Tier(self.maintained), _Tier(self.spare)

    def all_tiers(self, host: str) -> tuple[_Tier, ...]:
        return *self.final_tiers(), _Tier(tuple(h for h in self.remaining if h != host), final=False)

    def prepare_targets(self) -> list[str]:
        """Spare hosts, then the session's, each by most free vCPUs: what PREPARE_MAINTENANCE empties onto."""
        return [*self._by_free(self.spare), *self._by_free(self.remaining)]

    def _by_free(self, hosts: Iterable[str]) -> list[str]:
        return sorted(hosts, key=lambda h: (-self.layout.free(h), natural_key(h)))

    def after(self, choice: _Choice) -> "_Progress":
        return _Progress(
            self.layout.moved(choice.moves),
            tuple(h for h in self.remaining if h != choice.host),
            self.spare,
            (*self.maintained, choice.host),
            self.moved | {m.instance for m in choice.moves},
        )


def plan_rolling(layout: Layout, hosts: Sequence[str], *, spare: Sequence[str] = ()) -> RollingPlan:
    """Simulate the whole session: which host is maintained when, and every migration.

    Each step maintains the cheapest remaining host (:func:`maintenance_order`)
    that can be emptied onto hosts its instances stay on (maintained hosts,
    then ``spare`` hosts outside the session), as those moves are final.
    Only when no host can, instances also go to hosts still to maintain: at
    the start that is the PREPARE_MAINTENANCE evacuation of
    :func:`first_host_to_empty`'s host (then maintained first), later an
    ordinary step. An instance moves at most twice: one that has moved once
    goes only where it stays. When the choices lead to a dead end, earlier
    steps are taken back and the next choice tried (:data:`PLAN_BUDGET`),
    so the prepared host may be another than first_host_to_empty's when
    that one leads nowhere; NoRoom tells why the first dead end was one.
    """
    session = tuple(dict.fromkeys(hosts))
    if len(session) != len(hosts):
        raise ValueError(f"hosts to maintain are listed twice: {', '.join(hosts)}")
    spare_hosts = tuple(h for h in dict.fromkeys(spare) if h not in session)
    search = _Rolling()
    choices = search.run(_Progress(layout, session, spare_hosts))
    if choices is None:
        raise search.no_room()
    return _plan(layout, choices)


def _plan(layout: Layout, choices: Sequence[_Choice]) -> RollingPlan:
    steps = [Step(c.host, c.moves, waves(layout, c.moves)) for c in choices]
    if choices and choices[0].prepare:
        return RollingPlan(steps[0], [Step(choices[0].host, [], []), *steps[1:]])
    return RollingPlan(None, steps)


class _Rolling:
    """Depth-first search over the order of steps, greedy first, then within :data:`PLAN_BUDGET`."""

    def __init__(self) -> None:
        self.budget = PLAN_BUDGET
        self.dead_end: NoRoom | None = None

    def run(self, start: _Progress) -> list[_Choice] | None:
        """The choices from ``start`` to a session with every host maintained, or None.

        An explicit stack rather than recursion: a session may hold more
        hosts than Python's recursion limit.
        """
        path: list[_Choice] = []
        stack: list[tuple[_Progress, Iterator[_Choice]]] = [(start, self._choices(start))]
        while stack:
            progress, choices = stack[-1]
            if not progress.remaining:
                return path
            choice = next(choices, None)
            if choice is None:
                stack.pop()
                if path:
                    path.pop()
                continue
            path.append(choice)
            following = progress.after(choice)
            stack.append((following, self._choices(following)))
        return None

    def no_room(self) -> NoRoom:
        return self.dead_end or NoRoom(f"found no plan in {PLAN_BUDGET} tries")

    def _choices(self, progress: _Progress) -> Iterator[_Choice]:
        """Possible next steps, best first: a host emptied onto final hosts, else one using hosts to maintain.

        An empty host is the only choice when there is one: maintaining it
        costs nothing and turns it into room that never moves again.
        """
        order = maintenance_order(progress.layout, progress.remaining)
        if not any(i.host == order[0] for i in progress.layout.instances.values()):
            yield _Choice(order[0], [])
            return
        unsettled: list[str] = []
        for host in order:
            moves = self._evacuate(progress.layout, host, progress.final_tiers())
            if moves is None:
                unsettled.append(host)
            else:
                yield _Choice(host, moves)
        yield from self._shuffles(progress, unsettled)

    def _shuffles(self, progress: _Progress, hosts: list[str]) -> Iterator[_Choice]:
        """Steps that put instances on hosts still to maintain (PREPARE_MAINTENANCE's when none is done)."""
        failures: list[NoRoom] = []
        targets = progress.prepare_targets()
        for host in hosts:
            if progress.maintained:
                tiers = progress.all_tiers(host)
            else:
                tiers = (_Tier(()), _Tier(tuple(t for t in targets if t != host), ranked=False))
            moves = self._evacuate(progress.layout, host, tiers, progress.moved, failures)
            if moves is not None:
                yield _Choice(host, moves, prepare=not progress.maintained)
        if self.dead_end is None and failures and len(failures) == len(hosts):
            self.dead_end = _nothing_to_empty(failures)

    def _evacuate(
        self,
        layout: Layout,
        host: str,
        tiers: Sequence[_Tier],
        settled: Collection[str] = (),
        failures: list[NoRoom] | None = None,
    ) -> list[Move] | None:
        """The evacuation of ``host``, or None if it fails or the budget is spent after a dead end."""
        if self.dead_end is not None:
            if self.budget <= 0:
                return None
            self.budget -= 1
        try:
            return _evacuate(layout, host, tiers, settled)
        except NoRoom as failure:
            if failures is not None:
                failures.append(failure)
            return None
